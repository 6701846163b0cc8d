"""Whose CPU a container start is: the daemon's, the zygote's, runc's, the container's (by hand, root).

    tests/sandbox.sh .venv/bin/python bench/daemoncpu.py [--starts 60] [--src DIR]

A private daemon (``--src``: the ``src`` tree it runs; roots on the sandbox's tmpfs) starts
``--starts`` containers over the API, one after the other, on one network.  The CPU each
kind of process spent over those starts comes from ``/proc/PID/stat`` (utime, stime and,
for what they waited for, cutime, cstime; clock ticks, so only sums over many starts
mean anything):

- the daemon (HTTP, engine, netlink, the namespace and the veth);
- the shim zygote (its own, and the first child of each shim's double fork, which it reaps);
- the shims' reaped children: ``runc run`` and runc's own init stages before the container's;
- the containers' processes (runc's init in the container, through seccomp, then ``sleep``).

Unlike the whole machine's busy time, these figures are little moved by other work on the
machine.  Prints ms per start; no timings live in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from cove.cli.client import Client  # noqa: E402
from harness import privdaemon  # noqa: E402

BODY = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "cpunet"},
        "NetworkingConfig": {"EndpointsConfig": {"cpunet": {}}}}


def ticks(pid: int) -> list[int]:
    """utime, stime, cutime, cstime of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cwd(pid: int) -> str:
    """A shim works in its container's state dir (under this daemon's exec root): others' are not ours."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=60)
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--root-dir", default="/var/lib/cove", help="where the daemon's roots go (the sandbox's tmpfs)")
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    tmp = tempfile.mkdtemp(prefix="cove-cpu-", dir=opts.root_dir)
    sock = f"unix://{tmp}/cove.sock"
    names: list[str] = []
    daemon, api, _ = privdaemon.launch(tmp, src=opts.src)
    try:
        api.post("/networks/create", {"Name": "cpunet", "IPAM": {"Config": [{"Subnet": "10.250.0.0/16"}]}})

        def start(name: str) -> None:
            cid = api.post("/containers/create", BODY, {"name": name})["Id"]
            api.post(f"/containers/{cid}/start")
            names.append(name)

        start("warm")                       # the zygote is started by the first start
        kids = [int(p) for p in subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                                               text=True).stdout.split()]
        d0, k0 = ticks(daemon.pid), {k: ticks(k) for k in kids}
        t0 = time.perf_counter()
        for i in range(opts.starts):
            start(f"c{i}")
        wall = time.perf_counter() - t0
        d1, k1 = ticks(daemon.pid), {k: ticks(k) for k in kids}
        hz = os.sysconf("SC_CLK_TCK")
        n = opts.starts

        def ms(v: float) -> str:
            return f"{v * 1000 / hz / n:5.1f}"

        print(f"{n} starts, {wall * 1000 / n:.1f} ms each (wall)")
        print(f"daemon            user {ms(d1[0] - d0[0])}  sys {ms(d1[1] - d0[1])}  ms per start")
        for k in kids:
            print(f"zygote {k:<10} user {ms(k1[k][0] - k0[k][0])}  sys {ms(k1[k][1] - k0[k][1])}  "
                  f"reaped children {ms(k1[k][2] - k0[k][2] + k1[k][3] - k0[k][3])}")
        shims = [p for p in _pids("cove.runtime.shim --zygote") if p not in kids and _cwd(p).startswith(tmp + "/")]
        per = [sum(x) for x in zip(*(ticks(p) for p in shims))] or [0, 0, 0, 0]
        conts = [p for p in _pids("sleep 3600") if _ppid(p) in shims]   # a shim is its container's parent
        inits = [sum(x) for x in zip(*(ticks(p) for p in conts))] or [0, 0, 0, 0]
        # the warm container's share is in these sums too: n + 1 of each
        scale = n / (n + 1)
        print(f"shims ({len(shims)})       user {ms(per[0] * scale)}  sys {ms(per[1] * scale)}  "
              f"reaped children (runc run, runc init's first stages) {ms((per[2] + per[3]) * scale)}")
        print(f"containers ({len(conts)})  user {ms(inits[0] * scale)}  sys {ms(inits[1] * scale)}  "
              "(runc init in the container, seccomp, then sleep)")
    finally:
        for name in names:
            try:
                Client(sock).delete(f"/containers/{name}", {"force": True})
            except Exception:  # noqa: BLE001 - clean-up goes on
                pass
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
