"""The raw kernel limit: the kernel work of one endpoint, done by a minimal pyroute2 script.

Per endpoint, exactly what a container's network needs and nothing else: a network
namespace bound to a file (as ``ip netns add``), a veth pair made with its peer
directly inside that namespace as ``eth0``, the host end enslaved to a bridge and
up, an address, ``lo`` and ``eth0`` up, a default route via the bridge's address.
Teardown: delete the host end (its peer goes with it), unbind the namespace.  A
network is a bridge with an address, up; then deleted.

"Raw bridge + firewall" (``raw_bridge_fw_create`` / ``raw_bridge_fw_rm``, :func:`measure_firewalled`)
adds to that bridge the nftables rules cove writes for one network, built by cove's own pure
rule functions (:func:`cove.firewall.nftables.network_commands` / ``removal_commands``, both
families) and sent directly in one libnftables transaction, as cove's fast path sends them: the
fair figure for issue #17's "network create ≤ 2× the raw bridge + firewall work".  The tables
themselves are made once before (untimed), as a running daemon has them.

Two ways to make the namespace are timed: ``raw_netns`` (a short-lived thread
unshares and bind-mounts its namespace: the cheapest, used for the limit) and
``raw_netns_pyroute2`` (``pyroute2.netns.create``, which forks a helper process).

Run inside the sandbox namespace only, on the main thread: each ``IPRoute`` is made and
used on this thread, the one in the namespace it should act on (see cove.kernel.netlink).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from .stats import Samples

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
NETNS_DIR = "/run/netns"
BRIDGE = "rawbr0"
SUBNET = "10.250"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def netns_create(path: str) -> None:
    """Bind a new network namespace at ``path``, made by a thread that then ends."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare")
            src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _check(_libc.mount(src, path.encode(), b"none", MS_BIND, None), "bind mount")
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if failure:
        os.unlink(path)
        raise failure[0]


def netns_delete(path: str) -> None:
    _libc.umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def inside(path: str) -> Iterator[None]:
    """The calling thread inside the namespace at ``path`` for the body, then back."""
    target = os.open(path, os.O_RDONLY)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.setns(target, CLONE_NEWNET), "setns")
        try:
            yield
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    finally:
        os.close(target)
        os.close(home)


def endpoint_up(ipr: IPRoute, bridge: int, path: str, host_if: str, ip: str, gw: str, one_queue: bool = False,
                before_up: Callable[[], None] | None = None) -> int:
    """Everything after the namespace exists; returns the host end's index.  ``one_queue``: the veth is
    made with one queue each way on both ends (as cove makes it since 2026-12-07: no ``synchronize_net``
    in the kernel's ``veth_init_queues``, bench/results/2026-12-07-attachflat.md); not in the yardstick.
    ``before_up``: called once the pair exists, before the host end is enslaved and up (a sysctl of it)."""
    q = {"num_tx_queues": 1, "num_rx_queues": 1} if one_queue else {}
    fd = os.open(path, os.O_RDONLY)
    try:
        ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd, **q}, **q)
    finally:
        os.close(fd)
    if before_up is not None:
        before_up()
    index = int(ipr.link_lookup(ifname=host_if)[0])
    ipr.link("set", index=index, master=bridge, state="up")
    with inside(path):
        nsr = IPRoute()
    try:
        eth0 = nsr.link_lookup(ifname="eth0")[0]
        nsr.addr("add", index=eth0, address=ip, prefixlen=16)
        nsr.link("set", index=eth0, state="up")
        nsr.link("set", index=nsr.link_lookup(ifname="lo")[0], state="up")
        nsr.route("add", dst="0.0.0.0/0", gateway=gw)
    finally:
        nsr.close()
    return index


def measure(s: Samples, reps: int) -> None:
    """Time ``reps`` endpoints, ``reps`` networks and ``reps`` pyroute2 namespaces, then clean up."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    ipr = IPRoute()
    made_ns: list[str] = []
    made_links: list[str] = []
    try:
        # networks: bridge + address + up, then delete
        for i in range(reps + 1):
            name = f"rawnet{i}"
            made_links.append(name)
            t0 = time.perf_counter()
            ipr.link("add", ifname=name, kind="bridge")
            idx = ipr.link_lookup(ifname=name)[0]
            ipr.addr("add", index=idx, address=f"10.251.{i}.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")
            t1 = time.perf_counter()
            ipr.link("del", index=idx)
            t2 = time.perf_counter()
            made_links.remove(name)
            if i:  # the first round is a warm-up
                s.add("raw_bridge_create", t1 - t0)
                s.add("raw_bridge_rm", t2 - t1)
                s.add("raw_bridge_create_rm", t2 - t0)

        made_links.append(BRIDGE)
        ipr.link("add", ifname=BRIDGE, kind="bridge")
        bridge = ipr.link_lookup(ifname=BRIDGE)[0]
        ipr.addr("add", index=bridge, address=f"{SUBNET}.0.1", prefixlen=16)
        ipr.link("set", index=bridge, state="up")

        for i in range(reps + 1):
            path = f"{NETNS_DIR}/raw{i}"
            host_if = f"rawv{i}"
            ip = f"{SUBNET}.{1 + i // 250}.{1 + i % 250}"
            t0 = time.perf_counter()
            made_ns.append(path)
            netns_create(path)
            t1 = time.perf_counter()
            made_links.append(host_if)
            endpoint_up(ipr, bridge, path, host_if, ip, f"{SUBNET}.0.1")
            t2 = time.perf_counter()
            ipr.link("del", ifname=host_if)
            made_links.remove(host_if)
            netns_delete(path)
            made_ns.remove(path)
            t3 = time.perf_counter()
            if i:
                s.add("raw_netns", t1 - t0)
                s.add("raw_endpoint", t2 - t1)
                s.add("raw_netns_endpoint", t2 - t0)
                s.add("raw_teardown", t3 - t2)

        for i in range(reps + 1):
            name = f"rawp{i}"
            t0 = time.perf_counter()
            made_ns.append(f"{NETNS_DIR}/{name}")
            pr_netns.create(name)
            t1 = time.perf_counter()
            pr_netns.remove(name)
            made_ns.remove(f"{NETNS_DIR}/{name}")
            if i:
                s.add("raw_netns_pyroute2", t1 - t0)
        s.facts["raw_ping_check"] = _ping_check(ipr, bridge)
    finally:
        for name in made_links:
            try:
                ipr.link("del", ifname=name)
            except Exception as exc:  # noqa: BLE001 - clean-up goes on
                s.errors.append(f"raw: delete {name}: {exc}")
        for path in made_ns:
            netns_delete(path)
        ipr.close()


def _ping_check(ipr: IPRoute, bridge: int) -> str:
    """Prove the raw endpoint is a working one: the namespace pings the bridge's address."""
    import shutil
    import subprocess

    busybox = shutil.which("busybox") or "/bin/busybox"
    path = f"{NETNS_DIR}/rawcheck"
    netns_create(path)
    try:
        endpoint_up(ipr, bridge, path, "rawvcheck", f"{SUBNET}.255.2", f"{SUBNET}.0.1")
        r = subprocess.run(["ip", "netns", "exec", "rawcheck", busybox, "ping", "-c1", "-W2", f"{SUBNET}.0.1"],
                           capture_output=True, text=True, timeout=10, check=False)
        return "ok" if r.returncode == 0 else f"failed: {r.stdout[-200:]} {r.stderr[-200:]}"
    finally:
        with contextlib.suppress(Exception):  # gone with its namespace anyway
            ipr.link("del", ifname="rawvcheck")
        netns_delete(path)


FW_BRIDGE = "rawfw{}"


def measure_firewalled(s: Samples, reps: int) -> None:
    """``reps`` bridges with cove's nftables rules for one network: create, then remove, each timed."""
    try:
        from cove.firewall.base import NetworkRules
        from cove.firewall.nftables import FAMILIES, NftablesFirewall, network_commands, removal_commands
        fw = NftablesFirewall()
    except Exception as exc:  # noqa: BLE001 - no libnftables here: the figure is left out
        s.errors.append(f"raw bridge + firewall: nftables unavailable: {exc}")
        return
    fw.setup()
    nft = fw._nft                      # the same libnftables handle type cove uses; used directly here
    ipr = IPRoute()
    made: list[str] = []
    try:
        for i in range(reps + 1):
            name = FW_BRIDGE.format(i)
            rules = NetworkRules(id=f"{i:012x}" + "f" * 52, bridge=name, subnets=(f"10.249.{i}.0/24",))
            made.append(name)
            t0 = time.perf_counter()
            ipr.link("add", ifname=name, kind="bridge")
            idx = ipr.link_lookup(ifname=name)[0]
            ipr.addr("add", index=idx, address=f"10.249.{i}.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")
            rc, _, err = nft.json_cmd({"nftables": [c for f in FAMILIES for c in network_commands(rules, f)]})
            t1 = time.perf_counter()
            if rc != 0:
                raise RuntimeError(f"nft add network: {err}")
            rc, _, err = nft.json_cmd({"nftables": [c for f in FAMILIES for c in removal_commands(rules, f)]})
            ipr.link("del", index=idx)
            t2 = time.perf_counter()
            made.remove(name)
            if rc != 0:
                raise RuntimeError(f"nft remove network: {err}")
            if i:
                s.add("raw_bridge_fw_create", t1 - t0)
                s.add("raw_bridge_fw_rm", t2 - t1)
        s.facts["raw_bridge_fw_backend"] = "nftables"
    finally:
        for name in made:
            try:
                ipr.link("del", ifname=name)
            except Exception as exc:  # noqa: BLE001 - clean-up goes on
                s.errors.append(f"raw: delete {name}: {exc}")
        ipr.close()
        fw.teardown()
