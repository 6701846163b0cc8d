"""Endpoint attach at 10 / 100 / 1,000 containers on one network, for A/B of two trees (by hand, root).

    tests/sandbox.sh .venv/bin/python bench/scaleprobe.py [--tree DIR] [--points 10,100,1000]
        [--reps 30] [--spy gil|idle|none] [--parallel K] [--out FILE.json]

Issue #17's "attach flat up to 1,000".  ``bench/run.py --scale`` measures the same thing but takes
~4 minutes more per run (every scenario, the raw limit, 10 reps); this does only the scale part, so
two trees can alternate in fresh sandboxes within one busy hour.  A private cove daemon runs the
tree ``--tree`` (its ``src`` on ``PYTHONPATH``; default this tree).  Containers ``p1..pN`` are created
and started over the API on ``sn`` (``--parallel K``: K clients at once, each its own connection);
at each point a probe container on another network is connected to ``sn`` and disconnected
``--reps`` times (one warm-up).  ``--spy gil`` records the daemon with py-spy ``--gil`` (only the
thread holding the GIL) during the probe at the last point, ``idle`` every thread with waits: the
stacks go to ``FILE.<point>.spy.txt`` (raw, one line per stack).  Everything is removed at the end
(timed: ``rm_total_s``).  Output: JSON with every sample (``--out``) and a line per point on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

from harness.covedaemon import CoveDaemon  # noqa: E402
from harness.nskit import assert_sandboxed, log  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402

PYSPY = "/tmp/benchvenv/bin/py-spy"


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (``/proc/PID/task/*/schedstat``: time on a
    CPU, user and kernel, whatever the load: what a busy machine does not inflate)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=str(BENCH.parent))
    ap.add_argument("--points", default="10,100,1000")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--spy", choices=("gil", "idle", "none"), default="none")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--perf", action="store_true", help="perf record -g of the daemon during each probe")
    ap.add_argument("--strace", action="store_true",
                    help="after the reps: 10 connects under strace -T of every daemon thread (FILE.<point>.strace)")
    ap.add_argument("--no-rm", action="store_true", help="leave removal to the daemon's stop (not timed)")
    ap.add_argument("--spy-all", action="store_true", help="py-spy at every point, not only the last")
    ap.add_argument("--out", default="/tmp/scaleprobe.json")
    a = ap.parse_args()
    assert_sandboxed()
    tree = a.tree

    d = CoveDaemon(src=f"{tree}/src")
    points = [int(p) for p in a.points.split(",")]
    res: dict[str, object] = {"tree": tree, "points": {}, "parallel": a.parallel}
    names: list[str] = []
    api: UnixAPI | None = None
    try:
        eng = d.start()
        d.import_busybox(eng)
        pid = d.proc.pid if d.proc else 0
        api = UnixAPI(d.sock)

        ok = UnixAPI.call                            # ok(api, ...): request() that must succeed

        ok(api, "POST", "/networks/create", {"Name": "sn", "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}})
        ok(api, "POST", "/networks/create", {"Name": "pn", "IPAM": {"Config": [{"Subnet": "10.241.0.0/24"}]}})
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "sn"}}
        ok(api, "POST", "/containers/create?name=probe",
           {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "pn"}})
        ok(api, "POST", "/containers/probe/start")
        names.append("probe")
        starts: list[float] = []
        have = 0
        t_all = time.perf_counter()
        for point in points:
            todo = list(range(have + 1, point + 1))
            lock = threading.Lock()

            def worker(api: UnixAPI) -> None:
                while True:
                    with lock:
                        if not todo:
                            return
                        i = todo.pop(0)
                        names.append(f"p{i}")
                    t = ok(api, "POST", f"/containers/create?name=p{i}", body)
                    t += ok(api, "POST", f"/containers/p{i}/start")
                    with lock:
                        starts.append(t)

            t0 = time.perf_counter()
            if a.parallel <= 1:
                worker(api)
            else:
                apis = [UnixAPI(d.sock) for _ in range(a.parallel)]
                ths = [threading.Thread(target=worker, args=(x,)) for x in apis]
                for th in ths:
                    th.start()
                for th in ths:
                    th.join()
                for x in apis:
                    x.close()
            phase = time.perf_counter() - t0
            have = point
            spy = None
            spyfile = f"{a.out}.{point}.spy.txt"
            if a.spy != "none" and (a.spy_all or point == points[-1]):
                mode = ["--gil"] if a.spy == "gil" else ["--idle"]
                spy = subprocess.Popen([PYSPY, "record", *mode, "--nonblocking", "-t", "-r", "500", "-f", "raw",
                                        "-o", spyfile, "-p", str(pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            perf = None
            if a.perf:
                perf = subprocess.Popen(["perf", "record", "-g", "-o", f"{a.out}.{point}.perf.data", "-p", str(pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            con: list[float] = []
            dis: list[float] = []
            con_cpu: list[float] = []
            try:
                for j in range(a.reps + 1):
                    c0 = cpu_ns(pid)
                    tc = ok(api, "POST", "/networks/sn/connect", {"Container": "probe"})
                    c1 = cpu_ns(pid)
                    td = ok(api, "POST", "/networks/sn/disconnect", {"Container": "probe"})
                    if j:
                        con.append(tc * 1000)
                        dis.append(td * 1000)
                        con_cpu.append((c1 - c0) / 1e6)
            finally:
                for tool in (spy, perf):
                    if tool is not None:
                        tool.send_signal(signal.SIGINT)
                        tool.wait(60)
            if a.strace:
                tids = [t for t in os.listdir(f"/proc/{pid}/task")]
                st = subprocess.Popen(["strace", "-T", "-ttt", "-e", "trace=%network,write,openat,ioctl,setns",
                                       "-o", f"{a.out}.{point}.strace", *[x for t in tids for x in ("-p", t)]],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.5)
                windows = []
                for _ in range(10):
                    w0 = time.time()
                    ok(api, "POST", "/networks/sn/connect", {"Container": "probe"})
                    windows.append((w0, time.time()))
                    ok(api, "POST", "/networks/sn/disconnect", {"Container": "probe"})
                st.send_signal(signal.SIGINT)
                st.wait(60)
                res.setdefault("strace_windows", {})[str(point)] = windows  # type: ignore[union-attr]
            rss = d.rss_kib()
            fds = d.fd_count()
            res["points"][str(point)] = {  # type: ignore[index]
                "connect_ms": con, "disconnect_ms": dis, "connect_cpu_ms": con_cpu, "rss_kib": rss, "fds": fds,
                "phase_s": phase, "since_start_s": time.perf_counter() - t_all}
            log(f"{tree} n={point}: attach p50 {statistics.median(con):.2f} ms (daemon CPU "
                f"{statistics.median(con_cpu):.2f} ms), detach p50 "
                f"{statistics.median(dis):.2f} ms, rss {rss} KiB, fds {fds}, phase {phase:.1f} s")
        res["start_ms"] = [x * 1000 for x in starts]
        res["start_total_s"] = sum(starts)
        t0 = time.perf_counter()
        if a.no_rm:
            names.clear()
        for name in reversed(names):
            ok(api, "DELETE", f"/containers/{name}?force=1")
        names.clear()
        res["rm_total_s"] = time.perf_counter() - t0
        log(f"start total {res['start_total_s']:.1f} s, rm total {res['rm_total_s']:.1f} s")
    finally:
        if api is not None:
            for name in reversed(names):
                try:
                    api.request("DELETE", f"/containers/{name}?force=1")
                except Exception as exc:  # noqa: BLE001 - clean up what can be
                    log(f"rm {name}: {exc}")
            api.close()
        notes = d.stop()
        if notes:
            log("; ".join(notes[:5]) + f" ({len(notes)} in all)")
        Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
