"""The bridge driver's join alone, as main did it and as this tree does it, interleaved (by hand, root).

    tests/sandbox.sh .venv/bin/python bench/joinbench.py [ROUNDS]

Why: on a 2-core machine shared with other runs, whole-daemon figures (bench/run.py) moved by
2-3x between runs (load 0.5 to 6), far more than one join's share, so this times the two join
sequences against one real bridge in the same process, one after the other, round by round,
and prints the medians: ``per-call`` is 9fd0896's (12 netlink requests, each handed to the kernel
thread on its own), ``batched`` is :func:`cove.drivers.bridge_plan.apply_join` (one hand-off;
10 requests at 7d80731, 5 since ``Netlink.add_veth_pair``, 2026-12-06, with the bridge's index
looked up here as nothing caches it: 6).  Each endpoint is deleted again before the next round (untimed).
"""

from __future__ import annotations

import statistics
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "src")]

from cove.drivers.base import DriverContext  # noqa: E402
from cove.drivers.bridge_plan import JoinPlan, apply_join  # noqa: E402
from cove.kernel.linux import LinuxKernel  # noqa: E402


def per_call(k: LinuxKernel, plan: JoinPlan, sandbox: str) -> None:
    """main's apply_join (9fd0896), request by request."""
    host, inside = k.host, k.get(sandbox)
    index = host.add_veth(plan.host_ifname, plan.ifname, sandbox, plan.alias, mtu=plan.mtu)
    host.set_link(index, master=host.index(plan.bridge))
    host.set_bridge_port(index, isolated=plan.isolated, hairpin=True)
    host.set_link(index, state="up")
    peer = inside.index(plan.ifname)
    inside.set_link(peer, address=plan.mac)
    for ip, plen in plan.addresses:
        inside.add_address(peer, ip, plen)
    inside.set_link(peer, state="up")
    for gateway in plan.routes:
        inside.add_default_route(gateway)


def main(rounds: int) -> None:
    if not Path("/proc/self/ns/net").exists() or "COVE_SANDBOX" not in __import__("os").environ:
        raise SystemExit("run me inside tests/sandbox.sh")
    k = LinuxKernel()
    ctx = DriverContext(kernel=k, firewall=None, mtu=0)  # type: ignore[arg-type]  # join touches no rules
    br = k.host.add_bridge("brjoin", "cove:net:joinbench")
    k.host.add_address(br, IPv4Address("10.250.0.1"), 16)
    k.host.set_link(br, state="up")
    times: dict[str, list[float]] = {"per-call": [], "batched": []}
    try:
        for i in range(rounds + 1):
            for name in (("per-call", "batched") if i % 2 else ("batched", "per-call")):
                ns = f"/run/netns/jb-{name}"
                k.create_netns(ns)
                plan = JoinPlan(host_ifname=f"vjb{i % 2}{name[0]}", ifname="eth0", alias="cove:ep:joinbench",
                                mtu=None, bridge="brjoin", isolated=False, mac="02:42:0a:fa:00:02", sysctls=(),
                                addresses=((IPv4Address("10.250.0.2"), 16),),
                                routes=(IPv4Address("10.250.0.1"),))
                t0 = time.perf_counter()
                if name == "per-call":
                    per_call(k, plan, ns)
                else:
                    apply_join(ctx, plan, ns)
                if i:                       # round 0 warms up
                    times[name].append(time.perf_counter() - t0)
                k.host.delete_link(plan.host_ifname)
                k.drop(ns)
                k.delete_netns(ns)
    finally:
        k.host.delete_link("brjoin")
        k.close()
    print("| join | rounds | p25 ms | median ms | p75 ms |\n|---|---:|---:|---:|---:|")
    for name, xs in times.items():
        q = statistics.quantiles(xs, n=4)
        print(f"| {name} | {len(xs)} | {q[0] * 1000:.2f} | {statistics.median(xs) * 1000:.2f} | {q[2] * 1000:.2f} |")
    print(f"\nbatched / per-call (medians): {statistics.median(times['batched']) / statistics.median(times['per-call']):.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
