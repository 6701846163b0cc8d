"""CLI overhead: each hot command from the CLI vs the same requests over the API.

Run by hand, inside tests/sandbox.sh (it starts a private daemon on a temp socket):

    tests/sandbox.sh .venv/bin/python bench/cli_overhead.py [--reps 15] [--json OUT]

For ``network create``, ``network rm``, ``run -d``, ``rm -f``, ``exec``, ``ps``,
``inspect`` and ``--version`` it times, one after the other: the requests alone on a
:class:`cove.cli.client.Client` (the API time: what the CLI sends, one connection per
request like the CLI), the installed ``cove`` script (``.venv/bin/cove``: the ``-S``
launcher and :mod:`cove.cli.fast`) and the click entry point (``cove.cli.main``) as a
fresh interpreter each.  Prints a Markdown table of medians (ms) and CLI − API; ``--json``
also writes every median.  Each CLI column also has its CPU time (user + system of the
process, ``RUSAGE_CHILDREN``): on this shared machine wall times swing with the load, the
CPU a command costs much less.  No timings live in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

from cove.cli.client import Client

ROOT = Path(__file__).resolve().parent.parent
COVE = str(ROOT / ".venv" / "bin" / "cove") if (ROOT / ".venv").exists() else str(Path(sys.executable).parent / "cove")
ENTRIES = {"cove script": [COVE],
           "click": [sys.executable, "-c", "import sys; from cove.cli.main import main; sys.exit(main())"]}
RUN_BODY = {"Hostname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "ExposedPorts": {}, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": [],
            "Cmd": ["sleep", "3600"], "Image": "bb", "WorkingDir": "", "Entrypoint": None, "MacAddress": "",
            "Labels": {}, "HostConfig": {"NetworkMode": "ovnet", "AutoRemove": False},
            "NetworkingConfig": {"EndpointsConfig": {"ovnet": {}}}}


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


CPU: dict[str, float] = {}     # "op/entry" -> CPU ms of the last CLI process (user + system)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def run_cli(argv: list[str], env: dict[str, str], *args: str) -> float:
    """Wall ms of one CLI process; its CPU ms is left in CPU["last"] (steadier on a loaded machine)."""
    cpu = _children_cpu()
    t = time.perf_counter()
    done = subprocess.run([*argv, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    ms = (time.perf_counter() - t) * 1000
    CPU["last"] = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{args}: exit {done.returncode}: {done.stderr.decode()[-300:]}")
    return ms


def api_exec(api: Client, container: str, cmd: list[str]) -> None:
    """What ``exec C CMD`` sends (non-tty): create, start attached until the stream ends, inspect."""
    eid = api.post(f"/containers/{container}/exec", {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd})["Id"]
    with api.hijack("POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": False}) as stream:
        while stream.read():
            pass
    api.get(f"/exec/{eid}/json")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", default=None, help="also write the medians here")
    ap.add_argument("--root-dir", default="/var/lib/cove",
                    help="where the daemon's data and exec roots go (default: the sandbox's tmpfs)")
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    sys.path[:0] = [str(ROOT / "bench")]
    from harness import privdaemon
    from harness.covedaemon import launcher_problem

    problem = launcher_problem(Path(COVE))
    if problem:
        sys.exit(f"cli_overhead: {problem}")
    # the daemon's roots on the sandbox's tmpfs, as the bench's (harness/covedaemon.py): this
    # machine's /tmp is ext4 without a journal, ~12 ms of inode scans per start (results/2026-12-07-storage.md)
    tmp = tempfile.mkdtemp(prefix="cove-cliov-", dir=opts.root_dir)
    daemon, api, env = privdaemon.launch(tmp)
    try:
        api.post("/networks/create", {"Name": "ovnet"})
        run_cli([COVE], env, "run", "-d", "--name", "ovkeep", "--network", "ovnet", "bb", "sleep", "3600")
        rows: dict[str, dict[str, list[float]]] = {}
        for i in range(opts.reps + 1):       # round 0: warm-up, not recorded
            sample: dict[str, float] = {}
            sample["network create/API"] = timed(lambda: api.post("/networks/create", {"Name": f"ov-api-{i}"}))
            sample["network rm/API"] = timed(lambda: api.delete(f"/networks/ov-api-{i}"))
            sample["run -d/API"] = timed(lambda: api.post(
                f"/containers/{api.post('/containers/create', RUN_BODY, {'name': f'ov-api-c{i}'})['Id']}/start"))
            sample["rm -f/API"] = timed(lambda: api.delete(f"/containers/ov-api-c{i}", {"force": True}))
            sample["exec/API"] = timed(lambda: api_exec(api, "ovkeep", ["true"]))
            sample["ps/API"] = timed(lambda: api.get("/containers/json"))
            sample["inspect/API"] = timed(lambda: api.get("/containers/ovkeep/json"))
            sample["--version/API"] = 0.0
            sample["python -S -c pass/API"] = 0.0
            for label in ENTRIES:
                sample[f"python -S -c pass/{label}"] = run_cli([sys.executable, "-S", "-c", "pass"], env)
                sample[f"python -S -c pass/{label} CPU"] = CPU["last"]
            for label, argv in ENTRIES.items():
                tag = "s" if label == "cove script" else "k"
                name = f"ov-{tag}-{i}"
                for op, args in (("network create", ("network", "create", name)), ("network rm", ("network", "rm", name)),
                                 ("run -d", ("run", "-d", "--name", name, "--network", "ovnet", "bb", "sleep", "3600")),
                                 ("rm -f", ("rm", "-f", name)), ("exec", ("exec", "ovkeep", "true")), ("ps", ("ps",)),
                                 ("inspect", ("inspect", "ovkeep")), ("--version", ("--version",))):
                    sample[f"{op}/{label}"] = run_cli(argv, env, *args)
                    sample[f"{op}/{label} CPU"] = CPU["last"]
            if i:
                for key, ms in sample.items():
                    op, _, how = key.partition("/")
                    rows.setdefault(op, {}).setdefault(how, []).append(ms)
        medians = {op: {how: statistics.median(v) for how, v in hows.items()} for op, hows in rows.items()}
        print(f"| command ({opts.reps} reps, medians ms) | API | " + " | ".join(f"{k} | {k} CPU" for k in ENTRIES) +
              " | " + " | ".join(f"overhead {k}" for k in ENTRIES) + " |")
        print("|---|---:|" + "---:|" * (3 * len(ENTRIES)))
        for op, m in medians.items():
            a = m["API"]
            cli = [m[k] for k in ENTRIES]
            print(f"| {op} | {a:.1f} | " + " | ".join(f"{m[k]:.1f} | {m[k + ' CPU']:.1f}" for k in ENTRIES) + " | " +
                  " | ".join(f"+{c - a:.1f}" for c in cli) + " |")
        if opts.json:
            Path(opts.json).write_text(json.dumps({"reps": opts.reps, "medians_ms": medians}, indent=1) + "\n")
    finally:
        subprocess.run([COVE, "rm", "-f", "ovkeep"], env=env, check=False, capture_output=True)
        daemon.terminate()
        daemon.wait(timeout=30)
        subprocess.run(["pkill", "-KILL", "-f", f"{tmp}/exec"], check=False)   # shims of this run's exec root
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
