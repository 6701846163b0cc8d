"""Endpoint attach with 10 and with 1,000 containers on the network, beside the raw yardstick on the
same bridge (by hand, root, in the sandbox).

    tests/sandbox.sh .venv/bin/python bench/attachflat.py [--tree DIR] [--points 10,1000] [--reps 20]
        [--data-root tmpfs|tmp] [--settle S] [--snoop-ab] [--perf DIR] [--spy DIR] [--offcpu DIR] [--out FILE.json]
    .venv/bin/python bench/attachflat.py --report RUN.json...     # the Markdown tables of earlier runs

Issue #17's "attach at 1,000 ≤ 1.2× at 10".  A private cove daemon runs ``--tree`` (its ``src`` on
``PYTHONPATH``); its data-root is on tmpfs (``/var/lib/cove`` of ``tests/sandbox.sh``; ``--data-root
tmp``: under ``/tmp`` as ``bench/run.py`` has it, a disk file system).  Containers ``p1..pN`` start
over the API (create + start, sequential) on ``sn`` (10.240.0.0/16); a probe container lives on
``pn``.  At each point, ``--reps`` rounds (one warm-up) of, in turn:

- ``connect`` / ``disconnect``: ``POST /networks/sn/connect`` / ``disconnect`` of the probe over one
  kept-open API connection (wall), and ``connect_cpu``: the daemon's on-CPU time (every thread,
  ``/proc/PID/task/*/schedstat``) during the connect; per point, ``connect_user_ms`` /
  ``connect_sys_ms``: the daemon's user (Python) and system (kernel) CPU per connect, from the clock
  ticks (``/proc/PID/task/*/stat``) summed over all of the point's connects;
- ``raw`` / ``raw_del``: :func:`harness.rawlimit.endpoint_up` into a namespace made beforehand, on
  **cove's own bridge of ``sn``** (so with the same N ports), then the delete of its host end;
  ``raw_cpu``: this thread's CPU time during ``raw``; ``raw_q1``: the same with the veth made with one
  queue each way (``endpoint_up(one_queue=True)``, as cove makes it since this bench).

``--snoop-ab``: every other round runs with the bridge's multicast snooping off (``ip link set BR type
bridge mcast_snooping 0`` before it, on again after), its series suffixed ``_nosnoop``.

So cove/raw at 10 and at 1,000 compare like with like, and the growth of each is read from the same
sandbox.  ``--perf DIR``: after the timed rounds, ``perf record -a -g`` during 20 more connect +
disconnect pairs (``DIR/attachflat.<N>.perf.data``; the daemon's pid is in the output).  ``--spy
DIR``: py-spy ``--idle`` of the daemon during 20 more pairs (``DIR/attachflat.<N>.spy.txt``, raw).
Containers are not removed one by one: the daemon is stopped and its shims killed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

from pyroute2 import IPRoute  # noqa: E402

from harness import rawlimit  # noqa: E402
from harness.covedaemon import CoveDaemon  # noqa: E402
from harness.nskit import assert_sandboxed, log  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402

PYSPY = "/tmp/benchvenv/bin/py-spy"
RAW_IP = "10.240.255.250"           # far above what cove's IPAM hands out to 1,000 containers
GATEWAY = "10.240.0.1"


def cpu_ns(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def report(files: list[str]) -> str:
    """A Markdown table of runs written by ``--out``: per run and point, the medians; then, per tree,
    the samples of all its runs pooled (medians) and the ratios at the largest point to the smallest."""
    keys = ("connect", "connect_cpu", "raw", "raw_cpu", "raw_q1", "raw_q1_cpu", "disconnect", "connect_nosnoop",
            "connect_cpu_nosnoop")
    lines = ["| run | tree | N | load | " + " | ".join(keys) + " | cove/raw |", "|---|---|---:|---:|"
             + "---:|" * (len(keys) + 1)]
    pooled: dict[tuple[str, int], dict[str, list[float]]] = {}
    for f in files:
        r = json.loads(Path(f).read_text())
        tree = Path(r["tree"]).name
        for p in r["points"]:
            s = p["series"]
            med = {k: statistics.median(s[k]) if s.get(k) else float("nan") for k in keys}
            lines.append(f"| {Path(f).stem} | {tree} | {p['ports']} | {p['load1'][0]:.1f} | "
                         + " | ".join(f"{med[k]:.2f}" for k in keys) + f" | {med['connect'] / med['raw']:.2f} |")
            acc = pooled.setdefault((tree, p["ports"]), {})
            for k in keys:
                acc.setdefault(k, []).extend(s.get(k, []))
    lines += ["", "| tree | N | samples | " + " | ".join(keys) + " | cove/raw |",
              "|---|---:|---:|" + "---:|" * (len(keys) + 1)]
    trees = sorted({t for t, _ in pooled})
    for tree in trees:
        points = sorted(n for t, n in pooled if t == tree)
        meds = {n: {k: statistics.median(v) if v else float("nan") for k, v in pooled[(tree, n)].items()}
                for n in points}
        for n in points:
            m = meds[n]
            lines.append(f"| {tree} | {n} | {len(pooled[(tree, n)]['connect'])} | "
                         + " | ".join(f"{m[k]:.2f}" for k in keys) + f" | {m['connect'] / m['raw']:.2f} |")
        lo, hi = meds[points[0]], meds[points[-1]]
        lines.append(f"| {tree} | {points[-1]} / {points[0]} | | "
                     + " | ".join(f"{hi[k] / lo[k]:.2f}×" for k in keys) + " | |")
    return "\n".join(lines)


def user_sys_ticks(pid: int) -> tuple[int, int]:
    """(user, system) CPU of every thread of ``pid`` so far, in clock ticks (``/proc/PID/task/*/stat``
    fields 14 and 15): too coarse for one request, not for the sum over all of a point's rounds."""
    user = system = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def main() -> None:
    if sys.argv[1:2] == ["--report"]:
        print(report(sys.argv[2:]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=str(BENCH.parent))
    ap.add_argument("--points", default="10,1000")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--data-root", choices=("tmpfs", "tmp"), default="tmpfs")
    ap.add_argument("--perf", default="")
    ap.add_argument("--spy", default="")
    ap.add_argument("--offcpu", default="", help="DIR: perf record -e sched:sched_switch -a -g during 20 pairs")
    ap.add_argument("--snoop-ab", action="store_true",
                    help="odd rounds with the bridge's multicast snooping off (series *_nosnoop)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait after the starts of a point")
    ap.add_argument("--out", default="/tmp/attachflat.json")
    a = ap.parse_args()
    assert_sandboxed()
    tree = a.tree

    base = "/var/lib/cove" if a.data_root == "tmpfs" else None
    d = CoveDaemon(src=f"{tree}/src", tmp=tempfile.mkdtemp(prefix="cove-bench-", dir=base))
    res: dict[str, object] = {"tree": tree, "data_root": f"{d.tmp}/lib ({a.data_root})", "points": []}
    ipr = IPRoute()
    raw_ns = f"{rawlimit.NETNS_DIR}/afraw"
    api: UnixAPI | None = None
    try:
        eng = d.start()
        d.import_busybox(eng)
        pid = d.proc.pid if d.proc else 0
        res["daemon_pid"] = pid
        api = UnixAPI(d.sock)

        ok = api.call                                # request() that must succeed (harness/unixhttp.py)

        ok("POST", "/networks/create", {"Name": "sn", "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}})
        ok("POST", "/networks/create", {"Name": "pn", "IPAM": {"Config": [{"Subnet": "10.241.0.0/24"}]}})
        ok("POST", "/containers/create?name=probe",
           {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "pn"}})
        ok("POST", "/containers/probe/start")
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "sn"}}
        os.makedirs(rawlimit.NETNS_DIR, exist_ok=True)
        rawlimit.netns_create(raw_ns)
        bridge_name = ""
        have = 0
        for point in (int(p) for p in a.points.split(",")):
            t0 = time.perf_counter()
            while have < point:
                have += 1
                ok("POST", f"/containers/create?name=p{have}", body)
                ok("POST", f"/containers/p{have}/start")
            started = time.perf_counter() - t0
            if not bridge_name:
                st, net, _ = api.request("GET", "/networks/sn")
                bridge_name = f"br-{net['Id'][:12]}"  # type: ignore[index]
            bridge = ipr.link_lookup(ifname=bridge_name)[0]
            ports = len([m for m in ipr.get_links() if m.get_attr("IFLA_MASTER") == bridge])
            time.sleep(a.settle)
            load0 = os.getloadavg()[0]
            series: dict[str, list[float]] = {}
            ticks = [0, 0]
            for j in range(a.reps + 1):
                sfx = "_nosnoop" if a.snoop_ab and j % 2 else ""
                if a.snoop_ab:
                    subprocess.run(["ip", "link", "set", bridge_name, "type", "bridge", "mcast_snooping",
                                    "0" if sfx else "1"], check=True)
                c0, t0 = cpu_ns(pid), user_sys_ticks(pid)
                tc = ok("POST", "/networks/sn/connect", {"Container": "probe"})
                c1, t1 = cpu_ns(pid), user_sys_ticks(pid)
                if j:
                    ticks[0] += t1[0] - t0[0]
                    ticks[1] += t1[1] - t0[1]
                td = ok("POST", "/networks/sn/disconnect", {"Container": "probe"})
                w0, r0 = time.perf_counter(), time.thread_time()
                rawlimit.endpoint_up(ipr, bridge, raw_ns, "afv0", RAW_IP, GATEWAY)
                w1, r1 = time.perf_counter(), time.thread_time()
                ipr.link("del", ifname="afv0")
                w2 = time.perf_counter()
                q0, s0 = time.perf_counter(), time.thread_time()
                rawlimit.endpoint_up(ipr, bridge, raw_ns, "afv0", RAW_IP, GATEWAY, one_queue=True)
                q1, s1 = time.perf_counter(), time.thread_time()
                ipr.link("del", ifname="afv0")
                if j:
                    for k, v in (("connect", tc * 1000), ("connect_cpu", (c1 - c0) / 1e6), ("disconnect", td * 1000),
                                 ("raw", (w1 - w0) * 1000), ("raw_cpu", (r1 - r0) * 1000),
                                 ("raw_del", (w2 - w1) * 1000), ("raw_q1", (q1 - q0) * 1000),
                                 ("raw_q1_cpu", (s1 - s0) * 1000)):
                        series.setdefault(k + sfx, []).append(v)
            if a.snoop_ab:
                subprocess.run(["ip", "link", "set", bridge_name, "type", "bridge", "mcast_snooping", "1"], check=True)
            row: dict[str, object] = {"point": point, "ports": ports, "start_s": started,
                                      "load1": [load0, os.getloadavg()[0]], "series": series,
                                      "rss_kib": d.rss_kib(), "fds": d.fd_count(),
                                      "connect_user_ms": ticks[0] * 1000 / os.sysconf("SC_CLK_TCK") / a.reps,
                                      "connect_sys_ms": ticks[1] * 1000 / os.sysconf("SC_CLK_TCK") / a.reps}
            for tool, kind in ((a.perf, "perf"), (a.spy, "spy"), (a.offcpu, "offcpu")):
                if not tool:
                    continue
                if kind == "perf":
                    argv = ["perf", "record", "-a", "-g", "-o", f"{tool}/attachflat.{point}.perf.data"]
                elif kind == "offcpu":
                    argv = ["perf", "record", "-e", "sched:sched_switch", "-a", "-g", "-o",
                            f"{tool}/attachflat.{point}.offcpu.data"]
                else:
                    argv = [PYSPY, "record", "--idle", "--nonblocking", "-t", "-r", "500", "-f", "raw",
                            "-o", f"{tool}/attachflat.{point}.spy.txt", "-p", str(pid)]
                prof = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.5)
                w0 = time.perf_counter()
                try:
                    for _ in range(20):
                        ok("POST", "/networks/sn/connect", {"Container": "probe"})
                        ok("POST", "/networks/sn/disconnect", {"Container": "probe"})
                finally:
                    prof.send_signal(signal.SIGINT)
                    prof.wait(120)
                row[f"{kind}_window_s"] = time.perf_counter() - w0
            res["points"].append(row)  # type: ignore[union-attr]
            med = {k: statistics.median(v) for k, v in series.items()}
            log(f"N={ports}: connect {med['connect']:.2f} ms (daemon cpu {med['connect_cpu']:.2f}), raw "
                f"{med['raw']:.2f} (cpu {med['raw_cpu']:.2f}), raw_q1 {med['raw_q1']:.2f}, cove/raw "
                f"{med['connect'] / med['raw']:.2f}; disconnect {med['disconnect']:.2f}, raw del {med['raw_del']:.2f}"
                + (f"; no snooping: connect {med['connect_nosnoop']:.2f} (cpu {med['connect_cpu_nosnoop']:.2f}), "
                   f"raw {med['raw_nosnoop']:.2f}" if a.snoop_ab else "")
                + f"; load {load0:.1f}; start phase {started:.1f} s; per connect, daemon user "
                f"{row['connect_user_ms']:.2f} ms, system {row['connect_sys_ms']:.2f} ms")
    finally:
        if api is not None:
            api.close()
        try:
            ipr.link("del", ifname="afv0")
        except Exception:  # noqa: BLE001 - not there
            pass
        ipr.close()
        if os.path.exists(raw_ns):
            rawlimit.netns_delete(raw_ns)
        t0 = time.perf_counter()
        notes = d.stop()
        res["stop_s"] = time.perf_counter() - t0
        res["stop_notes"] = len(notes)
        Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
