"""Published-port benchmark (issue #4): cost per port at scale, teardown, HTTP through a port.

``python bench/portsbench.py [--reps 3] [--sizes 1,100,1000,10000] [--duration 5] [--no-docker]``

Run by hand as root (``make bench-ports``), never in tests or CI.  The outer process touches
no kernel state; it re-runs itself as ``tests/sandbox.sh ... --part cove-nftables``,
``... --part cove-iptables`` (a private cove daemon per firewall backend) and
``bench/refs/docker-sandbox.sh ... --part docker`` (HTTP only: Docker starts one
docker-proxy process per published port).

Scale: ports are published by ``run -d -p A-B:A-B`` containers of up to 1,000 ports each
until 1, 100, 1,000, 10,000 are published.  Each fill phase is timed (``fill_*``: seconds
per port added, container start included); at each size a probe container with 1,000
ports and the same container with none are started and removed ``--reps`` times
(``probe_*``: (t(1,000 ports) - t(0 ports)) / 1,000, the marginal cost of one port at that
size).  Then ``rm -f`` of every container (teardown).

HTTP: busybox ``httpd`` in a container published on 8080; ``wrk`` (1 thread, 10
connections, a new connection per request: busybox httpd closes each one) from a
``lan`` namespace playing a LAN host (to the host's 192.168.77.1:8080), from the host to
127.0.0.1:8080, and from the host straight to the container's address:80.
Results: ``bench/results/<date>-ports.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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

NET = "bports"
SUBNET = "10.78.0.0/16"
BASE = 20000          # fill ports 20000-29999, probe 31000-31999: below the ephemeral range (wrk's sockets)
PROBE = 31000
PER_CONTAINER = 1000
LAN_NS, LAN_HOST, LAN_PEER = "blan", "192.168.77.1", "192.168.77.2"
log = nskit.log


def _run_d(eng: Engine, name: str, *flags: str, cmd: tuple[str, ...] = ("sleep", "36000")) -> float:
    eng.track_container(name)
    return eng.ok("run", "-d", "--name", name, "--network", NET, *flags, "bb", *cmd, timeout=600).seconds


def _rm(eng: Engine, *names: str) -> float:
    t = eng.ok("rm", "-f", *names, timeout=600).seconds
    gone = set(names)
    eng.containers = [c for c in eng.containers if c not in gone]
    return t


def scale(eng: Engine, opts: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"fill": {}, "probe": {}, "probe_raw": {}}
    published = 0
    k = 0
    t_total = 0.0
    for size in opts.sizes:
        t_phase, added = 0.0, 0
        while published < size:
            n = min(PER_CONTAINER, size - published)
            k += 1
            lo = BASE + published
            t = _run_d(eng, f"bp-fill{k}", "-p", f"{lo}-{lo + n - 1}:{lo}-{lo + n - 1}" if n > 1 else f"{lo}:{lo}")
            t_phase += t
            added += n
            published += n
        t_total += t_phase
        res["fill"][str(size)] = {"ports_added": added, "seconds": t_phase, "per_port_s": t_phase / max(added, 1)}
        log(f"{eng.name}: {published} ports published (phase {t_phase:.2f}s for {added})")
        with_p, without = [], []
        for rep in range(opts.reps + 1):
            t1 = _run_d(eng, "bp-probe", "-p", f"{PROBE}-{PROBE + PER_CONTAINER - 1}:{PROBE}-{PROBE + PER_CONTAINER - 1}")
            r1 = _rm(eng, "bp-probe")
            t0 = _run_d(eng, "bp-probe0")
            r0 = _rm(eng, "bp-probe0")
            if rep:   # the first round is a warm-up
                with_p.append((t1, r1))
                without.append((t0, r0))
        per_add = [(a[0] - b[0]) / PER_CONTAINER for a, b in zip(with_p, without)]
        per_rm = [(a[1] - b[1]) / PER_CONTAINER for a, b in zip(with_p, without)]
        res["probe"][str(size)] = {"add_per_port_s": per_add, "rm_per_port_s": per_rm}
        res["probe_raw"][str(size)] = {"with_1000": with_p, "without": without}
    res["fill_total_seconds"] = t_total
    res["published"] = published
    names = [c for c in eng.containers if c.startswith("bp-fill")]
    res["teardown_seconds"] = _rm(eng, *names) if names else 0.0
    res["teardown_per_port_s"] = res["teardown_seconds"] / max(published, 1)
    return res


# -- HTTP -----------------------------------------------------------------------------------

def lan_up() -> None:
    nskit.sh("ip", "netns", "add", LAN_NS)
    nskit.sh("ip", "link", "add", "blan-h", "type", "veth", "peer", "name", "blan-p", "netns", LAN_NS)
    nskit.sh("ip", "addr", "add", f"{LAN_HOST}/24", "dev", "blan-h")
    nskit.sh("ip", "link", "set", "blan-h", "up")
    nskit.sh("ip", "-n", LAN_NS, "addr", "add", f"{LAN_PEER}/24", "dev", "blan-p")
    nskit.sh("ip", "-n", LAN_NS, "link", "set", "blan-p", "up")
    nskit.sh("ip", "-n", LAN_NS, "link", "set", "lo", "up")


def lan_down() -> None:
    subprocess.run(["ip", "link", "del", "blan-h"], capture_output=True)
    subprocess.run(["ip", "netns", "del", LAN_NS], capture_output=True)


def wrk(url: str, seconds: float, netns: str | None = None) -> dict[str, Any]:
    argv = ["wrk", "-t1", "-c10", f"-d{seconds:g}s", "--latency", "--timeout", "5s", url]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out: dict[str, Any] = {"raw": p.stdout[-1500:]}
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def ms(tok: str) -> float:
        for u in ("us", "ms", "s"):
            if tok.endswith(u):
                return float(tok[: -len(u)]) * unit[u]
        return float(tok)

    for line in p.stdout.splitlines():
        parts = line.split()
        if line.strip().startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif parts[:1] in (["50%"], ["99%"]):
            out[f"p{parts[0][:-1]}_ms"] = ms(parts[1])
        elif line.strip().startswith("Latency") and len(parts) >= 2 and "avg_ms" not in out:
            out["avg_ms"] = ms(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            out.setdefault("errors", []).append(line.strip())
    if "rps" not in out:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr[-300:]} {p.stdout[-300:]}")
    return out


def http(eng: Engine, opts: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {}
    lan_up()
    try:
        _run_d(eng, "bp-web", "-p", "8080:80",
               cmd=("sh", "-c", "mkdir -p /tmp/w && echo hello > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"))
        ip = nskit.container_ip(eng, "bp-web", NET)
        targets = {"direct_host_to_container": (f"http://{ip}:80/index.html", None),
                   "published_host_127": ("http://127.0.0.1:8080/index.html", None),
                   "published_from_lan": (f"http://{LAN_HOST}:8080/index.html", LAN_NS)}
        deadline = time.monotonic() + 30
        while subprocess.run(["wget", "-q", "-O-", "-T", "2", targets["direct_host_to_container"][0]],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("httpd in bp-web does not answer")
            time.sleep(0.2)
        for rep in range(opts.reps):
            for key, (url, ns) in targets.items():
                log(f"{eng.name}: http {key} rep {rep + 1}")
                try:
                    res.setdefault(key, []).append(wrk(url, opts.duration, ns))
                except Exception as exc:  # noqa: BLE001
                    res.setdefault("errors", []).append(f"{key}: {exc}")
        _rm(eng, "bp-web")
    finally:
        lan_down()
    return res


def part(name: str, opts: argparse.Namespace) -> dict[str, Any]:
    nskit.assert_sandboxed()
    data: dict[str, Any] = {"errors": []}
    if name.startswith("cove-"):
        daemon, eng = nskit.cove_engine(name.split("-", 1)[1])
    else:
        daemon, eng = None, nskit.docker_engine()
    try:
        eng.track_network(NET)
        eng.ok("network", "create", "--subnet", SUBNET, NET)
        if not opts.no_http:
            try:
                data["http"] = http(eng, opts)
            except Exception as exc:  # noqa: BLE001
                data["errors"].append(f"http: {exc}")
        if daemon is not None and not opts.no_scale:
            try:
                data["scale"] = scale(eng, opts)
            except Exception as exc:  # noqa: BLE001
                data["errors"].append(f"scale: {exc}")
                if daemon is not None:
                    data["errors"].append(daemon.log_tail(2000))
    finally:
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            data["errors"].append(f"clean-up: {exc}")
        data["errors"] += eng.cleanup_errors
        if daemon is not None:
            data["errors"] += daemon.stop()
    return data


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def mmm(vals: list[float]) -> dict[str, float]:
        return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}

    for eng, d in data.items():
        if not isinstance(d, dict) or eng == "meta":
            continue
        for key, runs in (d.get("http") or {}).items():
            if key == "errors":
                continue
            for metric in ("rps", "p50_ms", "p99_ms"):
                vals = [r[metric] for r in runs if metric in r]
                if vals:
                    out.setdefault(eng, {}).setdefault(f"http_{key}", {})[metric] = mmm(vals)
        sc = d.get("scale")
        if sc:
            s = out.setdefault(eng, {})
            for size, pr in sc["probe"].items():
                s[f"probe_add_per_port_ms_{size}"] = mmm([v * 1000 for v in pr["add_per_port_s"]])
                s[f"probe_rm_per_port_ms_{size}"] = mmm([v * 1000 for v in pr["rm_per_port_s"]])
            for size, f in sc["fill"].items():
                s[f"fill_per_port_ms_{size}"] = f["per_port_s"] * 1000
            s["fill_total_seconds"] = sc["fill_total_seconds"]
            s["teardown_seconds"] = sc["teardown_seconds"]
    return out


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, on_sigterm)
    p = argparse.ArgumentParser(prog="bench/portsbench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--sizes", default="1,100,1000,10000")
    p.add_argument("--no-docker", action="store_true")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--no-scale", action="store_true")
    p.add_argument("--only", choices=("cove-nftables", "cove-iptables", "docker"))
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument("--part", choices=("cove-nftables", "cove-iptables", "docker"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",")]
    if args.part:
        Path(args.out).write_text(json.dumps(part(args.part, args)))
        return 0
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 2
    common = ["--reps", str(args.reps), "--duration", str(args.duration), "--sizes", ",".join(map(str, args.sizes))]
    common += ["--no-http"] if args.no_http else []
    common += ["--no-scale"] if args.no_scale else []
    todo = [("cove-nftables", "tests/sandbox.sh"), ("cove-iptables", "tests/sandbox.sh")]
    if not args.no_docker:
        todo.append(("docker", "bench/refs/docker-sandbox.sh"))
    if args.only:
        todo = [t for t in todo if t[0] == args.only]
    data: dict[str, Any] = {"meta": {"date": dt.date.today().isoformat(), "machine": machine_facts(),
                                     "args": vars(args)}}
    with tempfile.TemporaryDirectory(prefix="bench-ports-") as tmp:
        for name, wrapper in todo:
            out = f"{tmp}/{name}.json"
            log(f"part {name} in {wrapper}")
            rc = subprocess.run([str(ROOT / wrapper), sys.executable, str(BENCH / "portsbench.py"), "--part", name,
                                 "--out", out, *common], cwd=ROOT, timeout=3 * 3600).returncode
            data[name] = json.loads(Path(out).read_text()) if os.path.exists(out) else {"failed": rc}
    data["summary"] = summarize(data)
    res = Path(args.results_dir)
    res.mkdir(parents=True, exist_ok=True)
    stem = f"{data['meta']['date']}-ports" + (f"-{args.only}" if args.only else "")
    (res / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data["summary"], indent=1))
    print(f"wrote {res / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
