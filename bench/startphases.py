"""Where a container start's wall time goes, phase by phase, from kernel tracepoints (issue 17).

Run by hand, inside tests/sandbox.sh, with ``perf`` installed (never in CI)::

    tests/sandbox.sh .venv/bin/python bench/startphases.py [--src DIR] [--reps 25]

A private daemon (``--src``: the ``src`` tree it runs, for an A/B of two commits) starts
``--reps`` containers over the API (beside ``--background`` running ones on the same
network), one at a time with a pause between them, while
``perf record -a -k CLOCK_MONOTONIC`` takes the scheduler's exec/fork/exit tracepoints and a
few syscalls (``unshare``, ``sendmsg``).  Each start is cut at:

- the container's network namespace made (``unshare(CLONE_NEWNET)`` in the daemon);
- the request sent to the shim zygote (the daemon's first ``sendmsg`` after it);
- the shim's own mount namespace (``unshare(CLONE_NEWNS)``);
- ``runc`` exec'ed, and the container's command exec'ed;
- the API's answer.

It prints each phase's median, min and max (ms).  The client's clock is the same
``CLOCK_MONOTONIC`` as perf's.  Tracing costs some time of its own: compare trees with
the same tool, not these figures with bench/startpath.py's.
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from harness import privdaemon  # noqa: E402
from harness.scale import each_at_once  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402
from startpath import BODY  # noqa: E402

EVENTS = ("sched:sched_process_exec", "sched:sched_process_fork", "sched:sched_process_exit",
          "syscalls:sys_enter_unshare", "syscalls:sys_enter_sendmsg")
CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000


def _many(sock: str, names: list[str], verb: str) -> None:
    """Start (``verb`` "start") or remove ("rm") the containers ``names``, four API clients at once."""
    def one(api: UnixAPI, name: str) -> None:
        if verb == "start":
            api.call("POST", f"/containers/create?name={name}", BODY)
            api.call("POST", f"/containers/{name}/start")
        else:
            api.call("DELETE", f"/containers/{name}?force=1")

    errors = each_at_once(lambda: UnixAPI(sock), 4, names, one)
    if errors:
        raise RuntimeError(f"{verb}: {'; '.join(errors)}")


def record(src: str | None, reps: int, data: str, background: int = 0) -> list[tuple[float, float]]:
    """Start ``reps`` containers under perf, beside ``background`` running ones on the same
    network; (sent, answered) of each start, CLOCK_MONOTONIC."""
    tmp = tempfile.mkdtemp(prefix="cove-phases-", dir="/var/lib/cove")
    daemon, api, _ = privdaemon.launch(tmp, src=src)
    sock = f"{tmp}/cove.sock"
    marks: list[tuple[float, float]] = []
    perf: subprocess.Popen[bytes] | None = None
    others = [f"bg{i}" for i in range(max(background, 3))]   # at least 3: the zygote, the bridge warm
    try:
        api.post("/networks/create", {"Name": "spnet", "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}})
        _many(sock, others, "start")
        args = ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-o", data]
        for e in EVENTS:
            args += ["-e", e]
        perf = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        for i in range(reps):
            cid = api.post("/containers/create", BODY, {"name": f"x{i}"})["Id"]
            t1 = time.monotonic()
            api.post(f"/containers/{cid}/start")
            marks.append((t1, time.monotonic()))
            time.sleep(0.15)
        time.sleep(0.3)
    finally:
        if perf is not None:
            perf.send_signal(2)
            perf.wait(timeout=60)
        try:
            _many(sock, others + [f"x{i}" for i in range(len(marks))], "rm")
        except Exception as exc:  # noqa: BLE001 - the sandbox's end reaps what is left
            print(f"removing the containers: {exc}", file=sys.stderr)
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return marks


def phases(data: str, marks: list[tuple[float, float]]) -> dict[str, list[float]]:
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    events: list[tuple[float, str, str, str]] = []
    for line in out:
        parts = line.split()
        try:
            t = float(parts[2].rstrip(":"))
        except (IndexError, ValueError):
            continue
        events.append((t, parts[0], parts[3], " ".join(parts[4:])))
    res: dict[str, list[float]] = {}
    for t1, t2 in marks:
        ev = [e for e in events if t1 <= e[0] <= t2]

        def first(after: float | None, kind: str, text: str, comm: str = "") -> float | None:
            if after is None:
                return None
            return next((e[0] for e in ev if e[0] >= after and kind in e[2] and text in e[3]
                         and e[1].startswith(comm)), None)

        netns = first(t1, "unshare", f"0x{CLONE_NEWNET:08x}")
        sent = first(netns, "sendmsg", "", "python")       # the daemon (its threads are "python")
        mntns = first(sent, "unshare", f"0x{CLONE_NEWNS:08x}")
        runc = first(sent, "exec", "runc")
        user = first(runc, "exec", "/bin/sleep")
        cuts = [("request -> netns made", t1, netns), ("netns -> shim asked", netns, sent),
                ("shim asked -> its mount ns", sent, mntns), ("shim asked -> runc exec'ed", sent, runc),
                ("runc exec'ed -> command exec'ed", runc, user), ("command exec'ed -> answer", user, t2),
                ("total", t1, t2)]
        for name, a, b in cuts:
            if a is not None and b is not None:
                res.setdefault(name, []).append((b - a) * 1000)
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=None)
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--background", type=int, default=0,
                    help="containers running on the same network during the measured starts")
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (apt-get install linux-perf)")
    data = tempfile.mktemp(prefix="cove-phases-", suffix=".data")
    try:
        marks = record(opts.src, opts.reps, data, opts.background)
        for name, v in phases(data, marks).items():
            print(f"{name:32s} median {statistics.median(v):6.2f}  min {min(v):6.2f}  max {max(v):6.2f}  n={len(v)}")
    finally:
        if os.path.exists(data):
            os.unlink(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
