"""CLI micro-measure: the installed ``cove`` launchers of one or more trees, interleaved, against one daemon.

Run by hand, inside tests/sandbox.sh (it starts a private daemon of this tree on a temp socket)::

    tests/sandbox.sh .venv/bin/python bench/cli_micro.py [--runs 60] [--cove OTHER/.venv/bin/cove ...]

Each round runs, for every launcher in turn (this tree's ``.venv/bin/cove`` first, then each
``--cove``): ``--version``, ``network create NAME``, ``network rm NAME``, ``ps``, ``inspect
NAME`` (a network: the container lookup answers 404 first), each a fresh process, and
``python -S -c pass`` once per round for scale.  A command's time is the process's wall time
(spawn to reaped) and its CPU time (user + system, ``wait4``'s rusage): on this shared 2-core
machine wall times swing with the load, the CPU a command costs much less, and its minimum and
first quartile less again.  Prints, per launcher and command, the median wall, the median,
first quartile and minimum CPU (ms), and the load average before and after.  Round 0 is a
warm-up, not recorded.  No timings live in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COVE = str(ROOT / ".venv" / "bin" / "cove")


def spawn(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU ms of one process (stdout to /dev/null); a non-zero exit stops the bench."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        t = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, usage = os.wait4(pid, 0)
        wall = (time.perf_counter() - t) * 1000
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv}: exit status {os.waitstatus_to_exitcode(status)}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=60, help="recorded rounds (each runs every command once)")
    ap.add_argument("--cove", action="append", default=[], help="another tree's installed launcher")
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    launchers = {"this tree": COVE, **{path: path for path in opts.cove}}
    tmp = tempfile.mkdtemp(prefix="cove-climicro-")
    sock = f"unix://{tmp}/cove.sock"
    env = dict(os.environ, COVE_HOST=sock, COVE_NO_AUTOSTART="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    daemon = subprocess.Popen([sys.executable, "-m", "cove", "daemon", "--host", sock, "--data-root", f"{tmp}/data",
                               "--exec-root", f"{tmp}/exec"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)
    try:
        for _ in range(400):
            if os.path.exists(f"{tmp}/cove.sock") and subprocess.run(
                    [COVE, "version"], env=env, capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run([COVE, "network", "create", "microkeep"], env=env, check=True, capture_output=True)
        samples: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        load_before = Path("/proc/loadavg").read_text().strip()
        for i in range(opts.runs + 1):
            rows = [("python -S -c pass", "-", [sys.executable, "-S", "-c", "pass"])]
            for j, (label, cove) in enumerate(launchers.items()):
                name = f"micro-{j}-{i}"
                rows += [("--version", label, [cove, "--version"]),
                         ("network create", label, [cove, "network", "create", name]),
                         ("network rm", label, [cove, "network", "rm", name]),
                         ("ps", label, [cove, "ps"]),
                         ("inspect", label, [cove, "inspect", "microkeep"])]
            for op, label, argv in rows:
                wall, cpu = spawn(argv, env)
                if i:
                    walls, cpus = samples.setdefault((op, label), ([], []))
                    walls.append(wall)
                    cpus.append(cpu)
        load_after = Path("/proc/loadavg").read_text().strip()
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{opts.runs} runs each, interleaved; load average before {load_before}, after {load_after}\n")
    print("| command | launcher | wall median | CPU median | CPU p25 | CPU min |")
    print("|---|---|---:|---:|---:|---:|")
    for (op, label), (walls, cpus) in sorted(samples.items(), key=lambda kv: (kv[0][0], kv[0][1] != "this tree")):
        p25 = statistics.quantiles(cpus, n=4)[0]
        print(f"| {op} | {label} | {statistics.median(walls):.2f} | {statistics.median(cpus):.2f} | {p25:.2f} |"
              f" {min(cpus):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
