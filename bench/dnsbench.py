"""DNS benchmark (issue #3): cove's 127.0.0.11 vs aardvark-dns (podman) vs Docker 20.10.

``python bench/dnsbench.py [--reps 3] [--duration 4] [--names 1,100,1000] [--no-docker] [--no-podman]``

Run by hand as root (``make bench-dns``), never in tests or CI.  The outer process touches
no kernel state: it re-runs itself as ``tests/sandbox.sh ... --part cove``,
``tests/sandbox.sh ... --part podman`` and ``bench/refs/docker-sandbox.sh ... --part docker``.
In each part: a dnsmasq upstream on the sandbox's lo (10.253.0.1, answers ``*.fwd.test``) named
by a bind-mounted /etc/resolv.conf, a user network ``bdns``, a client container and filler
containers carrying the names (container names plus ``--network-alias``es, 100 per
container).  The load generator is Debian's ``dnsperf``, run with ``nsenter`` in the client
container's network namespace against the resolver its /etc/resolv.conf names:

* ``qps``: 100 queries outstanding for ``--duration`` s (saturation), queries/s and the
  per-query latency p50/p99 under that load;
* ``lat``: a light 500 queries/s, 10 outstanding: p50/p99 latency when not saturated.

Both for container names (at each ``--names`` size) and for forwarded names
(``qN.fwd.test``, at the first size).  Results: ``bench/results/<date>-dns.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "src")]

from harness import nskit  # noqa: E402
from harness.engine import Engine  # noqa: E402
from harness.parts import machine_facts, on_sigterm  # noqa: E402

NET = "bdns"
SUBNET = "10.77.0.0/16"
CLIENT = "bdns-client"
ALIASES_PER_CONTAINER = 100
log = nskit.log


# -- dnsperf ------------------------------------------------------------------------------

def dnsperf(pid: int, server: str, queries: list[str], seconds: float, outstanding: int,
            rate: int | None = None) -> dict[str, Any]:
    """One dnsperf run in the netns of ``pid``: qps, lost, and per-query latency percentiles (ms)."""
    with tempfile.NamedTemporaryFile("w", prefix="bench-dnsq-", suffix=".txt", delete=False) as f:
        f.write("".join(f"{q} A\n" for q in queries))
        qfile = f.name
    argv = nskit.in_netns(pid, "dnsperf", "-s", server, "-d", qfile, "-l", str(seconds), "-c", "1", "-T", "1",
                          "-q", str(outstanding), "-t", "2", "-v")
    if rate:
        argv += ["-Q", str(rate)]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(qfile)
    lat: list[float] = []
    out: dict[str, Any] = {"rcodes": {}}
    for line in p.stdout.splitlines():
        parts = line.split()
        if line.startswith("> ") and len(parts) >= 5:
            out["rcodes"][parts[1]] = out["rcodes"].get(parts[1], 0) + 1
            try:
                lat.append(float(parts[-1]) * 1000.0)
            except ValueError:
                pass
        elif line.strip().startswith("Queries per second:"):
            out["qps"] = float(parts[-1])
        elif line.strip().startswith("Queries lost:"):
            out["lost"] = int(parts[2])
        elif line.strip().startswith("Queries completed:"):
            out["completed"] = int(parts[2])
    if "qps" not in out:
        raise RuntimeError(f"dnsperf failed ({p.returncode}): {p.stderr.strip()[:300]} {p.stdout[-300:]}")
    if lat:
        lat.sort()
        out["p50_ms"] = lat[len(lat) // 2]
        out["p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        out["mean_ms"] = statistics.fmean(lat)
    return out


# -- one engine ---------------------------------------------------------------------------

def resolver_of(eng: Engine, name: str) -> str:
    text = eng.ok("exec", name, "cat", "/etc/resolv.conf").out
    for line in text.splitlines():
        if line.startswith("nameserver"):
            return line.split()[1]
    raise RuntimeError(f"no nameserver in {name}'s resolv.conf: {text!r}")


def fill(eng: Engine, total: int, made: list[str]) -> list[str]:
    """Filler containers so that ``total`` names (the client's included) are on the network."""
    for c in list(made):
        eng.remove_containers([c])
        made.remove(c)
    names = [CLIENT]
    need = total - 1
    k = 0
    while need > 0:
        k += 1
        cname = eng.track_container(f"bdns-f{k}")
        aliases = [f"a{k}x{j}" for j in range(min(ALIASES_PER_CONTAINER - 1, need - 1))]
        flags = [x for a in aliases for x in ("--network-alias", a)]
        eng.ok("run", "-d", "--name", cname, "--network", NET, *flags, "bb", "sleep", "36000", timeout=300)
        made.append(cname)
        names += [cname, *aliases]
        need -= 1 + len(aliases)
    return names


def measure(eng: Engine, opts: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"runs": {}, "errors": []}
    up = nskit.Upstream()
    up.start()
    made: list[str] = []
    try:
        eng.track_network(NET)
        eng.ok("network", "create", "--subnet", SUBNET, NET)
        eng.track_container(CLIENT)
        eng.ok("run", "-d", "--name", CLIENT, "--network", NET, "bb", "sleep", "36000", timeout=300)
        pid = nskit.container_pid(eng, CLIENT)
        server = resolver_of(eng, CLIENT)
        res["server"] = server
        check = subprocess.run(nskit.in_netns(pid, "dnsperf", "-s", server, "-d", "/dev/stdin", "-n", "1", "-v"),
                               input=f"{CLIENT} A\nq1.{nskit.FWD_ZONE} A\n", capture_output=True, text=True,
                               timeout=30)
        res["check"] = check.stdout[-600:]
        for i, total in enumerate(opts.sizes):
            names = fill(eng, total, made)
            queried = random.Random(total).sample(names, min(50, len(names)))
            time.sleep(1.0)
            for rep in range(opts.reps):
                for kind, kw in (("qps", {"outstanding": 100}), ("lat", {"outstanding": 10, "rate": 500})):
                    key = f"names_{total}_{kind}"
                    log(f"{eng.name}: {key} rep {rep + 1}")
                    try:
                        r = dnsperf(pid, server, queried, opts.duration, **kw)
                        res["runs"].setdefault(key, []).append(r)
                    except Exception as exc:  # noqa: BLE001
                        res["errors"].append(f"{key}: {exc}")
                    if i == 0:
                        fkey = f"forward_{kind}"
                        fq = [f"q{j}.{nskit.FWD_ZONE}" for j in range(200)]
                        log(f"{eng.name}: {fkey} rep {rep + 1}")
                        try:
                            res["runs"].setdefault(fkey, []).append(dnsperf(pid, server, fq, opts.duration, **kw))
                        except Exception as exc:  # noqa: BLE001
                            res["errors"].append(f"{fkey}: {exc}")
    finally:
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            res["errors"].append(f"clean-up: {exc}")
        res["errors"] += eng.cleanup_errors
        up.stop()
    return res


def part(name: str, opts: argparse.Namespace) -> dict[str, Any]:
    nskit.assert_sandboxed()
    if name == "cove":
        daemon, eng = nskit.cove_engine("nftables")
        try:
            data = measure(eng, opts)
            data["version"] = eng.cli("--version").out.strip()
            return data
        finally:
            daemon.stop()
    if name == "podman":
        pm = nskit.Podman()
        try:
            eng = pm.start()
            data = measure(eng, opts)
            data["version"] = eng.cli("--version").out.strip()
            data["aardvark"] = nskit.run(["/usr/lib/podman/aardvark-dns", "--version"]).out.strip()
            return data
        finally:
            pm.stop(Engine("podman", pm.argv, pm.env, ""))
    eng = nskit.docker_engine()
    data = measure(eng, opts)
    data["version"] = eng.cli("version", "--format", "{{.Server.Version}}").out.strip()
    return data


# -- outer --------------------------------------------------------------------------------

def summarize(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for eng, d in data.items():
        if not isinstance(d, dict) or "runs" not in d:
            continue
        for key, runs in d["runs"].items():
            for metric in ("qps", "p50_ms", "p99_ms"):
                vals = [r[metric] for r in runs if metric in r]
                if vals:
                    out.setdefault(eng, {}).setdefault(key, {})[metric] = {
                        "min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}
    return out


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, on_sigterm)
    p = argparse.ArgumentParser(prog="bench/dnsbench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--names", default="1,100,1000")
    p.add_argument("--no-docker", action="store_true")
    p.add_argument("--no-podman", action="store_true")
    p.add_argument("--only", choices=("cove", "podman", "docker"))
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument("--part", choices=("cove", "podman", "docker"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.names.split(",")]
    if args.part:
        Path(args.out).write_text(json.dumps(part(args.part, args)))
        return 0
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 2
    common = ["--reps", str(args.reps), "--duration", str(args.duration), "--names", args.names]
    todo = [("cove", "tests/sandbox.sh")]
    if not args.no_podman:
        todo.append(("podman", "tests/sandbox.sh"))
    if not args.no_docker:
        todo.append(("docker", "bench/refs/docker-sandbox.sh"))
    if args.only:
        todo = [t for t in todo if t[0] == args.only]
    data: dict[str, Any] = {"meta": {"date": dt.date.today().isoformat(), "machine": machine_facts(),
                                     "args": vars(args) | {"sizes": args.sizes}}}
    with tempfile.TemporaryDirectory(prefix="bench-dns-") as tmp:
        for name, wrapper in todo:
            out = f"{tmp}/{name}.json"
            log(f"part {name} in {wrapper}")
            rc = subprocess.run([str(ROOT / wrapper), sys.executable, str(BENCH / "dnsbench.py"), "--part", name,
                                 "--out", out, *common], cwd=ROOT, timeout=3 * 3600).returncode
            data[name] = json.loads(Path(out).read_text()) if os.path.exists(out) else {"failed": rc}
    data["summary"] = summarize(data)
    res = Path(args.results_dir)
    res.mkdir(parents=True, exist_ok=True)
    stem = f"{data['meta']['date']}-dns" + (f"-{args.only}" if args.only else "")
    (res / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data["summary"], indent=1))
    print(f"wrote {res / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
