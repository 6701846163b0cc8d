"""cove's benchmark harness: ``python bench/run.py [--reps N] [--quick] [--no-docker] ...``.

Run by hand as root (``make bench``), never in CI.  This outer process touches no
kernel state: it re-executes itself once per part, each time inside a throwaway namespace,

* ``tests/sandbox.sh python bench/run.py --part sandbox --out F``: the raw pyroute2
  limit, then a private cove daemon through every scenario and the scale run;
* ``bench/refs/docker-sandbox.sh ... --part docker``: the same scenarios against a
  private dockerd 20.10 (skipped with ``--no-docker``);
* ``bench/refs/podman-sandbox.sh ... --part podman``: the same against podman 4.3 with
  netavark and aardvark-dns (``--no-podman``);
* ``tests/sandbox.sh ... --part cni``: the CNI bridge/host-local/portmap plugins called
  directly (``--no-cni``);
* ``tests/sandbox.sh ... --part iperf``: iperf3 through cove and through raw veth+bridge
  (``--no-iperf``);

then merges the JSON the parts wrote into ``bench/results/<date>.json`` (every raw
sample), ``bench/results/<date>.md`` (the table with the issue's targets) and
``bench/results/<date>-*.png`` (plots).  A ``--quick`` run writes ``<date>-quick.*`` so it
does not replace the day's full run; a second full run the same day gets ``<date>-2.*``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "src")]

from harness import parts, plots, report, targets

PART_TIMEOUT = 4 * 3600.0
CLEANUP_TIMEOUT = 300.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="bench/run.py")
    p.add_argument("--reps", type=int, default=None, help="repetitions per operation (default 20; --quick: 5)")
    p.add_argument("--quick", action="store_true", help="5 repetitions, scale points 1 and 50")
    p.add_argument("--no-docker", action="store_true", help="skip the Docker reference")
    p.add_argument("--no-podman", action="store_true", help="skip the Podman reference")
    p.add_argument("--no-cni", action="store_true", help="skip the CNI plugins reference")
    p.add_argument("--no-iperf", action="store_true", help="skip the iperf3 data-path run")
    p.add_argument("--networks", type=int, default=None, help="networks side by side (default 100; --quick: 20)")
    p.add_argument("--cni-scale", type=int, default=None, help="CNI containers on one network (default 200)")
    p.add_argument("--iperf-reps", type=int, default=None, help="iperf3 runs per path (default 5; --quick: 1)")
    p.add_argument("--parallel", type=int, default=32, help="clients of the parallel churn (bench/parallel.py; 0: skip)")
    p.add_argument("--parallel-rounds", type=int, default=None, help="rounds per parallel client (default 4; --quick: 1)")
    p.add_argument("--cli-reps", type=int, default=None, help="repetitions of --version (default 5x --reps)")
    p.add_argument("--scale", default=None, metavar="N,N,...",
                   help="container counts for the scale run (default 1,10,100,1000; --quick: 1,10,50)")
    p.add_argument("--scale-clients", type=int, default=4,
                   help="API clients at once for the scale run's burst (the largest --scale point started "
                        "again in parallel; 0: skip)")
    p.add_argument("--results-dir", default=str(BENCH / "results"), help="where to write <date>.json/.md")
    p.add_argument("--targets-from", metavar="RESULTS.json",
                   help="only print issue #17's targets table of an earlier run (measures nothing)")
    p.add_argument("--part", choices=tuple(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 5 if args.quick else 20
    if args.cli_reps is None:
        args.cli_reps = max(50, 5 * args.reps)
    if args.scale is None:
        args.scale = "1,10,50" if args.quick else "1,10,100,1000"
    if args.networks is None:
        args.networks = 20 if args.quick else 100
    if args.cni_scale is None:
        args.cni_scale = 50 if args.quick else 200
    if args.iperf_reps is None:
        args.iperf_reps = 1 if args.quick else 5
    if args.parallel_rounds is None:
        args.parallel_rounds = 1 if args.quick else 4
    points = sorted({int(x) for x in args.scale.split(",") if x.strip()})
    if args.reps < 1 or not points or points[0] < 1:
        p.error("--reps and every --scale point must be at least 1")
    args.scale_points = points
    return args


# part -> (the wrapper that makes its throwaway namespace, what runs inside it)
PARTS = {
    "sandbox": ("tests/sandbox.sh", parts.sandbox_part),
    "docker": ("bench/refs/docker-sandbox.sh", parts.docker_part),
    "podman": ("bench/refs/podman-sandbox.sh", parts.podman_part),
    "cni": ("tests/sandbox.sh", parts.cni_part),
    "iperf": ("tests/sandbox.sh", parts.iperf_part),
}


def run_part(args: argparse.Namespace) -> int:
    opts = parts.Options(reps=args.reps, cli_reps=args.cli_reps, scale_points=args.scale_points,
                         networks=args.networks, cni_scale=args.cni_scale, iperf_reps=args.iperf_reps,
                         parallel=args.parallel, parallel_rounds=args.parallel_rounds,
                         scale_clients=args.scale_clients)
    data = PARTS[args.part][1](opts)
    Path(args.out).write_text(json.dumps(data))
    return 0


def _child(part: str, args: argparse.Namespace, out: str) -> list[str]:
    return [str(ROOT / PARTS[part][0]), sys.executable, str(BENCH / "run.py"), "--part", part, "--out", out,
            "--reps", str(args.reps), "--cli-reps", str(args.cli_reps),
            "--scale", ",".join(map(str, args.scale_points)), "--networks", str(args.networks),
            "--cni-scale", str(args.cni_scale), "--iperf-reps", str(args.iperf_reps),
            "--parallel", str(args.parallel), "--parallel-rounds", str(args.parallel_rounds),
            "--scale-clients", str(args.scale_clients)]


def _stop_part(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the part's process group (it cleans up, then exits); SIGKILL if it hangs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parts.log(f"stopping the part (SIGTERM to process group {proc.pid}); waiting for its clean-up")
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(CLEANUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _launch(argv: list[str], out: str, what: str) -> dict[str, Any]:
    """Run one part in its own process group; on Ctrl-C/SIGTERM/timeout let it clean up."""
    parts.log(f"{what}: {shlex.join(argv)}")
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    try:
        rc = proc.wait(PART_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop_part(proc)
        rc = 124
    except KeyboardInterrupt:
        _stop_part(proc)
        raise
    if os.path.exists(out) and os.path.getsize(out):
        data: dict[str, Any] = json.loads(Path(out).read_text())
        return data
    return {"_failed": f"{what} exited {rc} without results"}


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "?"


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def outer(args: argparse.Namespace, argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("bench: run as root (namespaces, bridges and a private dockerd)", file=sys.stderr)
        return 2
    date = dt.date.today().isoformat()
    data: dict[str, Any] = {"meta": {
        "date": date, "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/run.py", *argv]), "commit": _commit(),
        "reps": args.reps, "cli_reps": args.cli_reps, "scale_points": args.scale_points, "scale_clients": args.scale_clients,
        "machine": parts.machine_facts()}}
    failures: list[str] = []
    wanted = ["sandbox"] + [p for p in ("docker", "podman", "cni", "iperf") if not getattr(args, f"no_{p}")]
    data["meta"]["load_before"] = _loadavg()
    with tempfile.TemporaryDirectory(prefix="cove-bench-out-") as tmp:
        for part in wanted:
            out = f"{tmp}/{part}.json"
            got = _launch(_child(part, args, out), out, f"{part} part ({PARTS[part][0]})")
            failures += [got.pop("_failed")] if "_failed" in got else []
            data.update(got)
    data["meta"]["load_after"] = _loadavg()
    data["meta"]["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    data["meta"]["failures"] = failures
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    stem = report.result_stem(results, date, args.quick)
    data["meta"]["stem"] = stem
    (results / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    pngs = plots.write_all(data, results, stem)
    data["meta"]["plots"] = pngs
    (results / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    md = report.markdown(data)
    (results / f"{stem}.md").write_text(md)
    print(report.table(data))
    dns, docker_dns = newest_dns(results)
    overlay = newest_overlay(results)
    tt = targets.table(data, dns, docker_dns, overlay)
    met, missed, unjudged = targets.count(data, dns, docker_dns, overlay)
    (results / f"{stem}-targets.md").write_text(
        f"# Issue #17 targets, {date} (`{data['meta']['command']}`, commit {data['meta']['commit']})\n\n"
        f"Load average before {data['meta']['load_before']}, after {data['meta']['load_after']}; "
        f"the full figures are in {stem}.md.  DNS rows: bench/dnsbench.py's newest results "
        f"({(dns or {}).get('meta', {}).get('date', '–')}).\n\n{tt}\n\n"
        f"{met} met, {missed} not met, {unjudged} not judged.\n")
    print(f"\n{tt}\n\n{met} met, {missed} not met, {unjudged} not judged")
    errors = sum(len((data.get(p) or {}).get("errors", [])) for p in report.PARTS)
    print(f"\nwrote {results / (stem + '.json')}, {results / (stem + '.md')} and {len(pngs)} plot(s)"
          f"{f'; {errors} error(s), see the .md' if errors else ''}")
    for f in failures:
        print(f"bench: {f}", file=sys.stderr)
    return 1 if failures else 0


def newest_overlay(results: Path) -> dict[str, Any] | None:
    """The newest bench/overlayscale.py results (its own bench: 3 etcd members and 100 simulated hosts)."""
    for f in sorted(results.glob("*-overlayscale.json"), reverse=True):
        try:
            data: dict[str, Any] = json.loads(f.read_text())
            return data
        except (OSError, ValueError):
            continue
    return None


def newest_dns(results: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The newest bench/dnsbench.py results with cove, and the newest with Docker (may be older)."""
    cove = docker = None
    for f in sorted(results.glob("*-dns*.json"), reverse=True):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        summary = d.get("summary") or {}
        if cove is None and summary.get("cove"):
            cove = d
        if docker is None and summary.get("docker"):
            docker = d
    return cove, docker


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, parts.on_sigterm)
    args = parse(argv)
    if args.targets_from:
        data = json.loads(Path(args.targets_from).read_text())
        dns, docker_dns = newest_dns(Path(args.results_dir))
        print(targets.table(data, dns, docker_dns, newest_overlay(Path(args.results_dir))))
        return 0
    try:
        return run_part(args) if args.part else outer(args, argv)
    except KeyboardInterrupt:
        print(f"bench{' ' + args.part if args.part else ''}: interrupted (clean-up done); no results written",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
