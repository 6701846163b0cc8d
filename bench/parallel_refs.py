#!/usr/bin/env python3
"""Issue 14's bench line: 32 clients at once, cove vs Docker 20.10 vs Podman, one table.

    .venv/bin/python bench/parallel_refs.py [--clients 32] [--rounds 4] [--only cove,docker,podman]
        -> bench/results/<date>-parallel-refs.md (and .json)

By hand, as root, never in CI.  The same Engine API workload as ``bench/parallel.py`` (each
client: ``POST /containers/create`` on ``par-a`` with ``-p 80``, start, inspect, ``POST
/networks/par-b/connect``, inspect, a host-port clash, ``DELETE ?force=1``), over a unix socket,
against three daemons, each private and inside a throwaway namespace of its own:

* cove: a private daemon in ``tests/sandbox.sh`` (image ``bb`` from busybox-static, as
  ``bench/parallel.py``);
* Docker: the dockerd 20.10 of ``bench/refs/docker-sandbox.sh`` (``--storage-driver vfs``, image
  ``bb`` imported from busybox-static);
* Podman: ``podman system service`` on a unix socket in a temp dir, inside
  ``bench/refs/podman-sandbox.sh`` (netavark backend, runc, vfs, image ``bb`` from busybox-static),
  driven through its Docker-compatible API.

The two networks are made with ``POST /networks/create`` and removed with ``DELETE
/networks/N`` (timed apart from the clients' operations).  Two Podman differences, both recorded
in the results: its compat API may resolve a short image name to ``docker.io/library/NAME``, so the
imported ``bb`` is also tagged ``docker.io/library/bb:latest`` (a tag, no pull; Podman 3 resolved
the short name there, 4.3 to ``localhost/bb``); and its
``DELETE ?force=1`` stops a container with the container's stop timeout (10 s by default: ``sleep``
as PID 1 ignores SIGTERM) where Docker and cove kill at once, so Podman's create bodies carry
``StopTimeout: 0`` (what ``rm -f -t 0`` does on its CLI).  Anything Podman's compat API refuses
shows in the statuses and in ``errors``; the rest of the workload still runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path[:0] = [str(BENCH), str(ROOT / "src")]

import parallel  # noqa: E402
from harness.engine import Engine  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402

SYSTEMS = {"cove": "tests/sandbox.sh", "docker": "bench/refs/docker-sandbox.sh",
           "podman": "bench/refs/podman-sandbox.sh"}
PODMAN_CREATE_EXTRA = {"StopTimeout": 0}


def log(msg: str) -> None:
    print(f"[parallel-refs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- inside a sandbox --------------------------------------------------------------------------------
def _net_call(eng: Engine, what: str, method: str, url: str, body: Any, out: dict[str, Any]) -> int:
    api = UnixAPI(eng.api_socket or "", timeout=120)
    try:
        t0 = time.perf_counter()
        status, reply, _ = api.request(method, url, body)
        out.setdefault(f"{what}_ms", []).append(round((time.perf_counter() - t0) * 1000, 1))
    finally:
        api.close()
    out.setdefault("statuses", {}).setdefault(f"{what} {status}", 0)
    out["statuses"][f"{what} {status}"] += 1
    if status >= 300:
        out.setdefault("errors", []).append(f"{method} {url}: {status} {str(reply)[:200]}")
    return status


def measure_api(eng: Engine, clients: int, rounds: int, create_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``bench/parallel.py``'s run over the API, the networks made and removed over the API too."""
    nets: dict[str, Any] = {}
    for net, subnet in parallel.NETS.items():
        eng.track_network(net)
        body = {"Name": net, "Driver": "bridge", "CheckDuplicate": True,
                "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet}]}}
        if _net_call(eng, "network_create", "POST", "/networks/create", body, nets) >= 300:
            eng.ok("network", "create", "--subnet", subnet, net)     # the rest still runs
    try:
        run = parallel.Run(eng, clients, rounds, create_extra)
        out = run.go()
    finally:
        eng.remove_containers(eng.cli("ps", "-aq").out.split())
        for net in parallel.NETS:
            if _net_call(eng, "network_rm", "DELETE", f"/networks/{net}", None, nets) >= 300:
                eng.cli("network", "rm", net)
            if net in eng.networks:
                eng.networks.remove(net)
    out["networks"] = nets
    out["create_extra"] = dict(create_extra or {})
    return out


def _wait_ping(sock: str, proc: subprocess.Popen[bytes] | None, timeout: float, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited early: {Path(log_path).read_text(errors='replace')[-2000:]}")
        if os.path.exists(sock):
            api = UnixAPI(sock, timeout=5)
            try:
                if api.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            finally:
                api.close()
        time.sleep(0.1)
    raise RuntimeError(f"no answer on {sock} within {timeout:.0f}s")


def _cove(args: argparse.Namespace) -> dict[str, Any]:
    from harness.covedaemon import CoveDaemon

    daemon = CoveDaemon()
    eng = daemon.engine()
    try:
        daemon.start()
        daemon.import_busybox(eng)
        out = measure_api(eng, args.clients, args.rounds)
        out["version"] = eng.cli("--version").out.strip()
        return out
    finally:
        eng.cleanup()
        daemon.stop()


def _docker(args: argparse.Namespace) -> dict[str, Any]:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix:///run/docker/") or os.environ.get("COVE_SANDBOX") != "1":
        raise SystemExit("parallel_refs: the docker part must run inside bench/refs/docker-sandbox.sh")
    eng = Engine("docker", ["docker"], dict(os.environ), host[len("unix://"):])
    try:
        out = measure_api(eng, args.clients, args.rounds)
        out["version"] = "dockerd " + eng.cli("version", "--format", "{{.Server.Version}}").out.strip() + \
            ", storage " + eng.cli("info", "--format", "{{.Driver}}").out.strip()
        return out
    finally:
        eng.cleanup()


def _podman(args: argparse.Namespace) -> dict[str, Any]:
    argv = os.environ.get("PODMAN_ARGV", "").split()
    if not argv or os.environ.get("COVE_SANDBOX") != "1" or not os.environ.get("CONTAINERS_CONF"):
        raise SystemExit("parallel_refs: the podman part must run inside bench/refs/podman-sandbox.sh")
    tmp = tempfile.mkdtemp(prefix="podman-api-")
    sock, log_path = f"{tmp}/podman.sock", f"{tmp}/service.log"
    env = dict(os.environ)
    eng = Engine("podman", argv, env, sock, rm_args=("rm", "-f", "-t", "0"))
    eng.ok("tag", "bb", "docker.io/library/bb:latest")
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen([*argv, "system", "service", "--time=0", f"unix://{sock}"], env=env,
                                    stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_ping(sock, proc, 60, log_path)
        out = measure_api(eng, args.clients, args.rounds, PODMAN_CREATE_EXTRA)
        info = json.loads(eng.cli("info", "--format", "json").out or "{}")
        host = info.get("host") or {}
        out["version"] = (f"podman {info.get('version', {}).get('Version', '?')} system service, "
                          f"{host.get('networkBackend', '?')}, {host.get('ociRuntime', {}).get('name', '?')}, "
                          f"storage {info.get('store', {}).get('graphDriverName', '?')}")
        return out
    finally:
        try:
            eng.cleanup()
        finally:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            shutil.rmtree(tmp, ignore_errors=True)


def inside(args: argparse.Namespace) -> int:
    fn = {"cove": _cove, "docker": _docker, "podman": _podman}[args.inside]
    try:
        out = fn(args)
    except Exception as exc:  # noqa: BLE001 - recorded: the other systems still run
        out = {"failed": f"{type(exc).__name__}: {exc}"}
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0 if "failed" not in out else 1


# -- outside: one sandbox per system, then the table ---------------------------------------------------
def _launch(system: str, args: argparse.Namespace, out: str) -> dict[str, Any]:
    argv = [str(ROOT / SYSTEMS[system]), sys.executable, str(Path(__file__).resolve()), "--inside", system,
            "--out", out, "--clients", str(args.clients), "--rounds", str(args.rounds)]
    log(f"{system}: {shlex.join(argv)}")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    try:
        rc = proc.wait(args.timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        log(f"{system}: stopping (SIGTERM to process group {proc.pid}); its sandbox cleans up")
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        if isinstance(exc, KeyboardInterrupt):
            raise
        rc = 124
    log(f"{system}: exited {rc} after {time.monotonic() - t0:.0f}s")
    if os.path.exists(out) and os.path.getsize(out):
        data: dict[str, Any] = json.loads(Path(out).read_text())
        return data
    return {"failed": f"exited {rc} without results"}


def _ms(values: list[float] | None) -> str:
    return "–" if not values else f"{max(values):.0f}"


ROWS: list[tuple[str, Any]] = [
    ("version", lambda p: p.get("version", "?")),
    ("clients × rounds", lambda p: f"{p['clients']} × {p['rounds']}"),
    ("operations (wall s)", lambda p: f"{p['ops']} ({p['seconds']})"),
    ("**operations/s**", lambda p: f"**{p['ops_per_s']}**"),
    # cove refuses a clash at create (no clash start or rm follows): fewer operations per round
    ("rounds/s (a round: create to rm -f)", lambda p: f"{p['clients'] * p['rounds'] / p['seconds']:.2f}"),
    ("p50 (ms)", lambda p: f"{p['p50_ms']}"),
    ("**p99 (ms)** (goal < 300)", lambda p: f"**{p['p99_ms']}**"),
    ("5xx answers (all)", lambda p: f"{p['responses_5xx']}"),
    ("5xx outside the clash", lambda p: f"{p.get('responses_5xx_outside_clash', '?')}"),
    ("duplicate address or port", lambda p: f"{p['duplicate_count']}"),
    ("clash answers", lambda p: ", ".join(f"{k.removeprefix('clash-')}×{v}" for k, v in sorted(p["statuses"].items())
                                          if k.startswith("clash-")) or "–"),
    ("client errors", lambda p: f"{len(p.get('errors') or [])}"),
    ("network create, slowest of 2 (ms)", lambda p: _ms(p.get("networks", {}).get("network_create_ms"))),
    ("network rm, slowest of 2 (ms)", lambda p: _ms(p.get("networks", {}).get("network_rm_ms"))),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    systems = [s for s in SYSTEMS if s in results]
    lines = ["| | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for label, fn in ROWS:
        cells = []
        for s in systems:
            p = results[s]
            cells.append(f"failed: {p['failed']}" if "failed" in p else str(fn(p)))
        lines.append(f"| {label} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def op_table(results: dict[str, dict[str, Any]]) -> str:
    systems = [s for s in SYSTEMS if s in results and "failed" not in results[s]]
    ops = sorted({op for s in systems for op in results[s].get("p99_ms_by_op", {})})
    lines = ["| p99 by operation (ms) | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(str(results[s]["p99_ms_by_op"].get(op, "–")) for s in systems) + " |")
    return "\n".join(lines)


def details(results: dict[str, dict[str, Any]]) -> str:
    out = []
    for s in SYSTEMS:
        p = results.get(s)
        if not p or "failed" in p:
            continue
        st = ", ".join(f"{k}×{v}" for k, v in p["statuses"].items())
        net = ", ".join(f"{k}×{v}" for k, v in p.get("networks", {}).get("statuses", {}).items())
        out.append(f"* **{s}**: statuses {st}; networks {net}"
                   + (f"; create bodies also carry {json.dumps(p['create_extra'])}" if p.get("create_extra") else ""))
        for e in (p.get("errors") or [])[:5] + (p.get("networks", {}).get("errors") or [])[:3]:
            out.append(f"  * error: `{str(e)[:300]}`")
        for d in (p.get("duplicates") or [])[:5]:
            out.append(f"  * duplicate: `{d}`")
    return "\n".join(out)


def _stem(results_dir: Path, date: str) -> str:
    stem, n = f"{date}-parallel-refs", 1
    while (results_dir / f"{stem}.md").exists() or (results_dir / f"{stem}.json").exists():
        n += 1
        stem = f"{date}-parallel-refs-{n}"
    return stem


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "?"


def outer(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("bench/parallel_refs.py: run as root (each system runs in a throwaway namespace)", file=sys.stderr)
        return 2
    wanted = [s for s in args.only.split(",") if s]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown:
        print(f"bench/parallel_refs.py: unknown system(s) {unknown}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc)
    load_before = _loadavg()
    results: dict[str, dict[str, Any]] = {}
    if args.keep_from:     # an earlier run's results for the systems not run again
        earlier = json.loads(Path(args.keep_from).read_text())
        results.update({s: earlier[s] for s in SYSTEMS if s in earlier and s not in wanted})
    with tempfile.TemporaryDirectory(prefix="parallel-refs-") as tmp:
        for system in wanted:
            results[system] = _launch(system, args, f"{tmp}/{system}.json")
    load_after = _loadavg()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(results_dir, started.date().isoformat())
    meta = {"started": started.isoformat(timespec="seconds"), "commit": commit, "clients": args.clients,
            "kept_from": args.keep_from,
            "rounds": args.rounds, "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
            "command": shlex.join(["python", "bench/parallel_refs.py", *sys.argv[1:]])}
    (results_dir / f"{stem}.json").write_text(json.dumps({"meta": meta, **results}, indent=1) + "\n")
    md = render(meta, results)
    (results_dir / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {results_dir / (stem + '.md')} and .json")
    return 0 if all("failed" not in r for r in results.values()) else 1


def render(meta: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    commit, load_before, load_after = meta["commit"], meta["load_before"], meta["load_after"]
    return (f"# {meta['clients']} parallel clients: cove vs Docker 20.10 vs Podman (issue #14)\n\n"
          f"`{meta['command']}`, commit {commit}, started {meta['started']}, {meta['cpus']} CPUs, "
          f"load average before {load_before}, after {load_after}.  Each client: create `-p 80` on par-a, "
          f"start, inspect, connect par-b, inspect, a host-port clash (create + start, refused), "
          f"`rm -f`; all over the Engine API on a unix socket.  Every daemon is private, in a "
          f"throwaway namespace (`bench/parallel_refs.py`'s docstring).\n\n"
          f"{table(results)}\n\n{op_table(results)}\n\n"
          f"A clash is refused with 409 (cove) or 500 (Docker, Podman: \"port is already allocated\", "
          f"\"address already in use\"); a clash-start that succeeds (204) found its port freed "
          f"meanwhile (the holder was removed): the ledger of live containers counts a duplicate "
          f"only when two live containers hold one address or host port.\n\n{details(results)}\n")


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--only", default="cove,docker,podman", help="comma-separated systems, in order")
    p.add_argument("--timeout", type=float, default=600, help="seconds per system before it is stopped")
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument("--keep-from", metavar="JSON", help="take the systems --only leaves out from an earlier run's .json")
    p.add_argument("--inside", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--render", metavar="JSON", help="rewrite the .md next to an earlier run's .json, measuring nothing")
    args = p.parse_args()
    if args.render:
        data = json.loads(Path(args.render).read_text())
        meta = data.pop("meta")
        Path(args.render).with_suffix(".md").write_text(render(meta, data))
        return 0
    if args.inside:
        return inside(args)
    return outer(args)


if __name__ == "__main__":
    raise SystemExit(main())
