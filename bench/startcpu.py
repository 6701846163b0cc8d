"""Starts one after the other: wall and system CPU per start, and the files a start and an exec create.

Run by hand, inside tests/sandbox.sh (it starts a private daemon on a temp socket)::

    tests/sandbox.sh .venv/bin/python bench/startcpu.py [--src DIR] [--n 60] [--parallel 1]
        [--execs 0] [--data-dir DIR] [--exec-root DIR] [--count 2] [--json OUT]

``--data-dir`` is where the temp dir with the daemon's ``--data-root`` (and its socket) is
made (default /tmp: this machine's root filesystem, ext4 without a journal; ``/var/lib/cove``
is a tmpfs inside the sandbox); ``--exec-root`` the daemon's exec root (default: in that temp
dir; ``/run/cove/NAME`` is a tmpfs inside the sandbox).  ``--src`` is the ``src`` directory
whose ``cove`` the daemon runs (default: this tree's), so an older commit's tree
(``git archive REV src | tar -x -C DIR``) can be timed in alternation with this one.

Timing: ``--n`` containers (``sleep 3600`` on a user network, as bench/startpath.py's BODY)
are created and started over the API, ``--parallel`` at a time (1: one after the other);
printed are the wall time per start, the machine's non-idle CPU time (``/proc/stat``: all
processes, so other users' load counts too) per start, and the CPU time of the daemon's tree (the
daemon, zygote, shims, runc: :class:`TreeCpu`, a cpuacct cgroup) per start.  ``--execs M``: then
M ``exec true`` (over the API, attached) into one running container, wall and the tree's CPU per exec.

Counting (``--count K``): then, with ``strace -f`` on the daemon and its children (the shim
zygote, so the shims, runc and runc's init too), K more starts and K ``exec true`` into a
running container; printed are, per start and per exec, the files each made: a path opened with
``O_CREAT`` (with no ``O_EXCL`` the file may have existed: in a new container's dirs none do),
``mkdir``, ``mknod`` (FIFOs), and ``memfd_create`` (memory, no inode on disk), each under the data
root, the exec root, the container's root (``in-rootfs``: runc's mount points, on the container's
tmpfs ``/dev`` or its layer) or elsewhere (cgroupfs, /proc), with container IDs and random names folded.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from cove.cli.client import Client  # noqa: E402
from harness import privdaemon  # noqa: E402
from startpath import BODY, api_exec  # noqa: E402

TRACED = "openat,open,creat,mkdir,mkdirat,mknod,mknodat,memfd_create"
_CALL = re.compile(r'^(\d+) +(\w+)\((.*)\) += (-?\d+)')


def cpu_seconds() -> float:
    """Non-idle CPU time of the whole machine (user+nice+system+irq+softirq+steal), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


class TreeCpu:
    """The CPU time of the daemon and all it starts but the containers (the zygote, shims, runc):
    a cpuacct cgroup of its own under the sandbox's cgroup parent (``COVE_CGROUP_PARENT``, which
    tests/sandbox.sh removes at its end), joined by the daemon before it starts anything.  Other
    users' load does not count there, as it does in :func:`cpu_seconds`.  The containers are in
    cgroups of their own, siblings of this one."""

    def __init__(self) -> None:
        parent = os.environ.get("COVE_CGROUP_PARENT", "")
        self.path = f"/sys/fs/cgroup/cpuacct{parent}/bench-startcpu-{os.getpid()}" if parent else ""
        if self.path and os.path.isdir("/sys/fs/cgroup/cpuacct"):
            os.makedirs(self.path, exist_ok=True)
        else:
            self.path = ""

    def join(self, pid: int) -> None:
        if self.path:
            Path(self.path, "cgroup.procs").write_text(f"{pid}\n")

    def seconds(self, which: str = "usage") -> float:
        """CPU seconds so far (``usage_sys``: in the kernel only, where the filesystem's part is)."""
        return int(Path(self.path, f"cpuacct.{which}").read_text()) / 1e9 if self.path else float("nan")

    def remove(self) -> None:
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def _fold(path: str, roots: dict[str, str], ids: list[str]) -> tuple[str, str]:
    """(where, path with the root, container IDs and random suffixes folded)."""
    where = "other"
    for name, root in roots.items():
        if path.startswith(root + "/"):
            where, path = name, path[len(root):]
            break
    for cid in ids:
        path = path.replace(cid, "ID")
    if where == "exec-root" and path.startswith("/containers/ID/rootfs/"):
        where = "in-rootfs"                      # runc's mount points: the container's tmpfs /dev, its layer
    path = re.sub(r"(state-|exec-)[0-9a-f]+", r"\1X", path)
    path = re.sub(r"\b[0-9]{6,}\b", "N", path)
    return where, path


def created(trace: str, roots: dict[str, str], ids: list[str]) -> collections.Counter[tuple[str, str]]:
    """What the calls in an ``strace -f -y`` output created: (where, folded path) -> times."""
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in trace.splitlines():
        m = _CALL.match(line)
        if not m or int(m.group(4)) < 0:
            continue
        call, args = m.group(2), m.group(3)
        if call == "memfd_create":
            out[("memory", "memfd " + args.split(",")[0])] += 1
            continue
        strs = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
        if not strs:
            continue
        path = strs[0]
        if call in ("openat", "open") and "O_CREAT" not in args:
            continue
        if call.endswith("at") and not path.startswith("/"):
            d = re.match(r'(?:AT_FDCWD|\d+<([^>]*)>)', args)
            if d and d.group(1):
                path = os.path.join(d.group(1), path)
        if path.startswith("/proc/self/fd/"):
            continue                              # runc opening its --log memfd: no new file
        out[_fold(path, roots, ids)] += 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--n", type=int, default=60, help="starts timed")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--data-dir", default="/tmp", help="where the temp dir holding --data-root is made")
    ap.add_argument("--exec-root", default=None, help="the daemon's --exec-root (default: in the temp dir)")
    ap.add_argument("--execs", type=int, default=0, help="execs of `true` timed (one after the other)")
    ap.add_argument("--count", type=int, default=0, help="starts and execs traced to count the files they make")
    ap.add_argument("--json", default=None)
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    tmp = tempfile.mkdtemp(prefix="cove-sc-", dir=opts.data_dir)
    exec_root = opts.exec_root or f"{tmp}/exec"
    sock = f"unix://{tmp}/cove.sock"
    result: dict[str, Any] = {"src": opts.src, "data_dir": opts.data_dir, "exec_root": exec_root}
    names: list[str] = []
    daemon, api, _ = privdaemon.launch(tmp, src=opts.src, exec_root=exec_root)
    tree = TreeCpu()
    tree.join(daemon.pid)                         # before its first start makes the zygote
    try:
        api.post("/networks/create", {"Name": "spnet", "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}})

        def one(name: str) -> str:
            c = Client(sock)
            cid = str(c.post("/containers/create", BODY, {"name": name})["Id"])
            c.post(f"/containers/{cid}/start")
            names.append(name)
            return cid

        one("warm")                               # the zygote, the image, the network's first endpoint
        c0, d0, s0, t0 = cpu_seconds(), tree.seconds(), tree.seconds("usage_sys"), time.perf_counter()
        with futures.ThreadPoolExecutor(opts.parallel) as ex:
            list(ex.map(one, (f"p{i}" for i in range(opts.n))))
        t1, s1, d1, c1 = time.perf_counter(), tree.seconds("usage_sys"), tree.seconds(), cpu_seconds()
        result.update(wall_ms=1000 * (t1 - t0) / opts.n, cpu_ms=1000 * (c1 - c0) / opts.n,
                      tree_cpu_ms=1000 * (d1 - d0) / opts.n, tree_sys_ms=1000 * (s1 - s0) / opts.n, n=opts.n,
                      parallel=opts.parallel, loadavg=os.getloadavg()[0])
        print(f"n={opts.n} parallel={opts.parallel}  wall/start {result['wall_ms']:.1f} ms  "
              f"cpu/start {result['cpu_ms']:.1f} ms (machine), {result['tree_cpu_ms']:.1f} ms (daemon's tree; "
              f"{result['tree_sys_ms']:.1f} in the kernel)  (load {result['loadavg']:.2f})", flush=True)
        if opts.execs:
            t0, d0, s0 = time.perf_counter(), tree.seconds(), tree.seconds("usage_sys")
            for _ in range(opts.execs):
                api_exec(api, "warm", ["true"])
            t1, s1, d1 = time.perf_counter(), tree.seconds("usage_sys"), tree.seconds()
            result.update(exec_wall_ms=1000 * (t1 - t0) / opts.execs, exec_tree_cpu_ms=1000 * (d1 - d0) / opts.execs,
                          exec_tree_sys_ms=1000 * (s1 - s0) / opts.execs, execs=opts.execs)
            print(f"execs={opts.execs}  wall/exec {result['exec_wall_ms']:.1f} ms  "
                  f"cpu/exec {result['exec_tree_cpu_ms']:.1f} ms (daemon's tree; {result['exec_tree_sys_ms']:.1f} "
                  f"in the kernel)", flush=True)
        if opts.count and shutil.which("strace"):
            result["files"] = count(api, one, daemon.pid, opts.count, tmp,
                                    {"data-root": f"{tmp}/data", "exec-root": exec_root})
    finally:
        with futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda n: Client(sock).delete(f"/containers/{n}", {"force": True}), list(names)))
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
        tree.remove()
        if opts.exec_root:
            shutil.rmtree(opts.exec_root, ignore_errors=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(result) + "\n")
    return 0


def count(api: Client, one: Any, daemon_pid: int, k: int, tmp: str, roots: dict[str, str]) -> dict[str, Any]:
    """Files made by ``k`` starts and by ``k`` execs (strace of the daemon's tree), printed per start/exec."""
    found: dict[str, Any] = {}
    for what in ("start", "exec"):
        kids = subprocess.run(["pgrep", "-P", str(daemon_pid)], capture_output=True, text=True).stdout.split()
        out = f"{tmp}/strace-{what}.txt"
        st = subprocess.Popen(["strace", "-f", "-y", "-o", out, "-e", "trace=" + TRACED,
                               *sum((["-p", p] for p in [str(daemon_pid), *kids]), [])], stderr=subprocess.DEVNULL)
        time.sleep(1.0)                           # strace attached
        ids = []
        for i in range(k):
            if what == "start":
                ids.append(one(f"t{i}"))
            else:
                api_exec(api, "warm", ["true"])
        time.sleep(0.5)
        st.terminate()
        st.wait()
        ids += [c["Id"] for c in api.get("/containers/json", {"all": 1})]
        made = created(Path(out).read_text(), roots, ids)
        per = {f"{w} {p}": n / k for (w, p), n in sorted(made.items())}
        totals: dict[str, float] = collections.defaultdict(float)
        for (w, _), n in made.items():
            totals[w] += n / k
        found[what] = {"files": per, "totals": dict(totals)}
        print(f"-- per {what} (of {k}): " + ", ".join(f"{w} {n:g}" for w, n in sorted(totals.items())))
        for name, share in per.items():
            print(f"   {share:4g}  {name}")
    return found


if __name__ == "__main__":
    raise SystemExit(main())
