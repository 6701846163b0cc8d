"""The raw attach yardstick with 10 and with 1,000 ports on the bridge (by hand, root, in the sandbox).

    tests/sandbox.sh .venv/bin/python bench/rawscale.py [--points 10,1000,10] [--reps 30]
        [--perf DIR] [--v6 off|on] [--snoop on,off] [--inner-v6 on|off] [--out FILE.json]

Issue #17's "attach flat to 1,000": does the kernel's own attach grow with the ports of the bridge,
by how much, and in which request?  No cove daemon, no containers: one bridge (``rawbr0``, as
:mod:`harness.rawlimit`), and at each point ``N`` background ports, each a veth pair whose peer sits
in its own namespace as a container's ``eth0`` does (address, up, default route: made with
:func:`harness.rawlimit.endpoint_up` itself; the host end gets ``disable_ipv6=1`` right after the
create as cove's join does, unless ``--v6 on``).  ``--points 10,1000,10`` grows the bridge to 10,
then 1,000, then deletes back to 10: the last point tells "grows with N" from "grows with the
churn so far" (deleted links, namespaces being cleaned up).

At each point, ``--reps`` rounds (one warm-up) of:

- ``endpoint``: :func:`harness.rawlimit.endpoint_up` into a fresh namespace (made untimed), then
  ``teardown``: the delete of its host end (untimed namespace unbind after);
- ``endpoint_q1``, ``teardown_q1``: the same with the veth made with one queue each way (as cove makes
  it now: no ``synchronize_net`` in ``veth_init_queues``);
- ``steps``: the yardstick's requests again, timed one by one (``add`` the veth with its peer in the
  namespace, ``master_up`` enslave + up, ``inner`` address/up/lo/route inside, ``del``), so the
  growth can be put on one request.

Each sample is wall time and the thread's CPU time (``time.thread_time``: the kernel work of a
netlink request runs in the caller's syscall, and a busy machine inflates CPU time far less than
wall time).  ``--perf DIR``: ``perf record -a -g`` (all CPUs: kworkers too) during each point's
rounds, to ``DIR/rawscale.<i>.<N>.perf.data``; read with ``perf report --pid`` of this process.
``--snoop on,off``: each point's rounds first with the bridge's multicast snooping on (the kernel's
default, cove's), then again with it off (series suffixed ``_nosnoop``).  ``--inner-v6 off``: the
probe namespaces' interfaces start with IPv6 off (no link-local address: no DAD, MLD or router
solicitation for the bridge to flood).  Per point it also logs the softirq time of all CPUs per round
(``/proc/stat``) and the frames the bridge sent to the background ports per round (their host ends'
``tx_packets``): what the bridge floods costs a delivery into every namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

from pyroute2 import IPRoute  # noqa: E402

from harness import rawlimit  # noqa: E402
from harness.nskit import assert_sandboxed, log  # noqa: E402

NS = rawlimit.NETNS_DIR


def bg_name(i: int) -> tuple[str, str, str]:
    """(namespace path, host end, address) of background port ``i`` (1-based; 10.250.0.0/16)."""
    return f"{NS}/bg{i}", f"bgv{i}", f"10.250.{100 + i // 250}.{1 + i % 250}"


def sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
        f.write(value)


def softirq_and_flood(ipr: IPRoute) -> tuple[float, int]:
    """(softirq time of all CPUs so far in ms, from /proc/stat; frames the bridge has sent to the
    background ports so far: the sum of their host ends' tx_packets)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    softirq_ms = int(fields[7]) * 1000 / os.sysconf("SC_CLK_TCK")
    sent = 0
    for m in ipr.get_links():
        if (m.get_attr("IFLA_IFNAME") or "").startswith("bgv"):
            stats = m.get_attr("IFLA_STATS64")
            sent += stats["tx_packets"] if stats else 0
    return softirq_ms, sent


def timed(fn):  # type: ignore[no-untyped-def]
    w0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - w0) * 1000, (time.thread_time() - c0) * 1000


def make_ns(path: str, inner_v6: bool) -> None:
    """A probe namespace; without ``inner_v6`` its interfaces start with IPv6 off."""
    rawlimit.netns_create(path)
    if not inner_v6:
        with rawlimit.inside(path):
            sysctl("net.ipv6.conf.default.disable_ipv6", "1")


def probe_round(ipr: IPRoute, bridge: int, gw: str, add, inner_v6: bool = True) -> None:  # type: ignore[no-untyped-def]
    """One round: the yardstick and its teardown, the same with one queue, then step by step.
    ``inner_v6=False``: each probe namespace's ``eth0`` is made with IPv6 off (``default.disable_ipv6=1``
    in the namespace before the veth arrives): no link-local address, so no DAD, MLD or RS frames for the
    bridge to flood to every port."""
    path = f"{NS}/probe"
    ip = f"{rawlimit.SUBNET}.0.2"
    make_ns(path, inner_v6)
    add("endpoint", timed(lambda: rawlimit.endpoint_up(ipr, bridge, path, "rawprobe", ip, gw)))
    add("teardown", timed(lambda: ipr.link("del", ifname="rawprobe")))
    rawlimit.netns_delete(path)
    make_ns(path, inner_v6)
    add("endpoint_q1", timed(lambda: rawlimit.endpoint_up(ipr, bridge, path, "rawprobe", ip, gw, one_queue=True)))
    add("teardown_q1", timed(lambda: ipr.link("del", ifname="rawprobe")))
    rawlimit.netns_delete(path)
    make_ns(path, inner_v6)
    fd = os.open(path, os.O_RDONLY)
    try:
        add("add", timed(lambda: ipr.link("add", ifname="rawprobe", kind="veth",
                                          peer={"ifname": "eth0", "net_ns_fd": fd})))
    finally:
        os.close(fd)
    index = ipr.link_lookup(ifname="rawprobe")[0]
    add("master_up", timed(lambda: ipr.link("set", index=index, master=bridge, state="up")))
    with rawlimit.inside(path):
        nsr = IPRoute()
    try:
        eth0 = nsr.link_lookup(ifname="eth0")[0]

        def inner() -> None:
            nsr.addr("add", index=eth0, address=ip, prefixlen=16)
            nsr.link("set", index=eth0, state="up")
            nsr.link("set", index=nsr.link_lookup(ifname="lo")[0], state="up")
            nsr.route("add", dst="0.0.0.0/0", gateway=gw)

        add("inner", timed(inner))
    finally:
        nsr.close()
    add("del", timed(lambda: ipr.link("del", ifname="rawprobe")))
    rawlimit.netns_delete(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", default="10,1000,10")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--perf", default="")
    ap.add_argument("--v6", choices=("off", "on"), default="off")
    ap.add_argument("--inner-v6", choices=("on", "off"), default="on",
                    help="off: the probe's eth0 without IPv6 (no link-local: no DAD/MLD/RS frames flooded)")
    ap.add_argument("--snoop", default="on", help="on,off: each point's rounds with the bridge's multicast "
                    "snooping on, then again with it off (series suffixed _nosnoop)")
    ap.add_argument("--out", default="/tmp/rawscale.json")
    a = ap.parse_args()
    assert_sandboxed()
    os.makedirs(NS, exist_ok=True)
    ipr = IPRoute()
    have = 0
    res: dict[str, object] = {"points": [], "v6": a.v6, "reps": a.reps, "pid": os.getpid()}
    log(f"pid {os.getpid()}")
    gw = f"{rawlimit.SUBNET}.0.1"
    try:
        ipr.link("add", ifname=rawlimit.BRIDGE, kind="bridge")
        bridge = ipr.link_lookup(ifname=rawlimit.BRIDGE)[0]
        ipr.addr("add", index=bridge, address=gw, prefixlen=16)
        ipr.link("set", index=bridge, state="up")
        for pi, point in enumerate(int(p) for p in a.points.split(",")):
            t0 = time.perf_counter()
            while have < point:
                have += 1
                path, host_if, ip = bg_name(have)
                rawlimit.netns_create(path)
                v6_off = (lambda h=host_if: sysctl(f"net.ipv6.conf.{h}.disable_ipv6", "1")) if a.v6 == "off" else None
                rawlimit.endpoint_up(ipr, bridge, path, host_if, ip, gw, before_up=v6_off)
            while have > point:
                path, host_if, _ = bg_name(have)
                ipr.link("del", ifname=host_if)
                rawlimit.netns_delete(path)
                have -= 1
            built = time.perf_counter() - t0
            ports = len([m for m in ipr.get_links() if m.get_attr("IFLA_MASTER") == bridge])
            log(f"point {pi}: {ports} ports on the bridge ({built:.1f} s to get there)")
            time.sleep(2.0)                     # let the kernel's deferred work (netns cleanup) settle
            perf = None
            if a.perf:
                perf = subprocess.Popen(["perf", "record", "-a", "-g", "-o",
                                         f"{a.perf}/rawscale.{pi}.{point}.perf.data"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            series: dict[str, list[list[float]]] = {}

            def add(name: str, sample: tuple[float, float], keep: bool) -> None:  # noqa: E306
                if keep:
                    series.setdefault(name, []).append(list(sample))

            load0 = os.getloadavg()[0]
            before = softirq_and_flood(ipr)
            try:
                for snoop in a.snoop.split(","):
                    subprocess.run(["ip", "link", "set", rawlimit.BRIDGE, "type", "bridge", "mcast_snooping",
                                    "1" if snoop == "on" else "0"], check=True)
                    sfx = "" if snoop == "on" else "_nosnoop"
                    for j in range(a.reps + 1):
                        probe_round(ipr, bridge, gw, lambda name, sample, j=j, sfx=sfx: add(name + sfx, sample, j > 0),
                                    inner_v6=a.inner_v6 == "on")
            finally:
                if perf is not None:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(120)
            after = softirq_and_flood(ipr)
            rounds = a.reps + 1
            flood = {"softirq_ms_per_round": (after[0] - before[0]) / rounds,
                     "frames_to_ports_per_round": (after[1] - before[1]) / rounds}
            row = {"point": point, "ports": ports, "load1": [load0, os.getloadavg()[0]], "series": series, **flood}
            log(f"N={ports}: softirq {flood['softirq_ms_per_round']:.1f} ms per round (all CPUs), "
                f"{flood['frames_to_ports_per_round']:.0f} frames sent to the background ports per round")
            res["points"].append(row)  # type: ignore[union-attr]
            med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
                   for k, v in series.items()}
            log(f"N={ports}: " + ", ".join(f"{k} {w:.2f} ms (cpu {c:.2f})" for k, (w, c) in med.items())
                + f"; load {load0:.1f}")
    finally:
        for i in range(have, 0, -1):
            path, host_if, _ = bg_name(i)
            try:
                ipr.link("del", ifname=host_if)
            except Exception:  # noqa: BLE001 - clean-up goes on
                pass
            rawlimit.netns_delete(path)
        for name in ("rawprobe", rawlimit.BRIDGE):
            try:
                ipr.link("del", ifname=name)
            except Exception:  # noqa: BLE001 - already gone
                pass
        rawlimit.netns_delete(f"{NS}/probe")
        ipr.close()
        with open(a.out, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()
