"""The netlink socket of a namespace is bound to that namespace, never the host's.

The pitfall this guards against: a socket opened after ``setns`` in the wrong
thread, or before it, stays bound to the host namespace, and "container" changes
land on the host's interfaces.  Each test proves the binding with a change and
looks at both sides.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from cove.errors import CoveError
from cove.kernel import netns
from cove.kernel.netlink import NetlinkPool

pytestmark = pytest.mark.integration


@pytest.fixture
def ns_path(tmp_path):
    path = f"/run/cove/netns/test-{uuid.uuid4().hex[:8]}"
    netns.create(path)
    try:
        yield path
    finally:
        netns.delete(path)


@pytest.fixture
def peer_ns(ns_path):
    """A second namespace beside ``ns_path``, where a veth's other end goes."""
    path = f"{ns_path}-peer"
    netns.create(path)
    try:
        yield path
    finally:
        netns.delete(path)


def host_links(pool: NetlinkPool) -> set[str]:
    return {link.name for link in pool.get(None).links()}


def test_socket_made_in_a_thread_acts_on_the_namespace_not_the_host(ns_path):
    pool = NetlinkPool()
    try:
        before = host_links(pool)
        done: list[BaseException | None] = []

        def worker() -> None:
            try:
                inside = pool.get(ns_path)
                inside.add_bridge("probe0", "cove:test")
                done.append(None)
            except BaseException as exc:  # noqa: BLE001
                done.append(exc)

        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert done == [None]
        # The bridge exists inside the namespace, and the host did not change.
        assert "probe0" in {link.name for link in pool.get(ns_path).links()}
        assert host_links(pool) == before
        assert "probe0" not in host_links(pool)
        # The thread that opened the socket is back home: our own namespace is unchanged.
        assert os.stat("/proc/thread-self/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    finally:
        pool.close()


def test_entered_returns_the_thread_home_even_on_error(ns_path):
    home = netns.current_netns_inode()
    with pytest.raises(RuntimeError):
        with netns.entered(ns_path):
            assert netns.current_netns_inode() != home
            raise RuntimeError("boom")
    assert netns.current_netns_inode() == home


def test_create_and_delete_leave_nothing(tmp_path):
    path = f"/run/cove/netns/test-{uuid.uuid4().hex[:8]}"
    netns.create(path)
    assert path in netns.bound_paths("/run/cove/netns")
    netns.delete(path)
    assert path not in netns.bound_paths("/run/cove/netns")
    assert not os.path.exists(path)
    netns.delete(path)  # idempotent


def test_peer_batches_land_in_the_namespace_of_their_socket(ns_path):
    """replace_peers/delete_peers/peers go over a raw rtnetlink socket of their own: it must be made in
    the namespace too, and what it writes must be what `bridge fdb` and `ip neigh` show there."""
    import subprocess

    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        index = nl.add_link("vx-test", "vxlan", "cove:vx:test", vxlan_id=4242, vxlan_port=4789, vxlan_learning=0,
                            vxlan_proxy=1)
        peers = [(f"10.10.{i // 250}.{i % 250 + 1}", f"02:42:0a:0a:{i // 250:02x}:{i % 250 + 1:02x}",
                  f"10.99.0.{i % 3 + 21}") for i in range(600)]
        nl.replace_peers(index, peers)
        nl.replace_peers(index, peers[:10])                    # replacing is idempotent
        assert sorted(nl.peers(index)) == sorted(peers)

        def show(*cmd: str) -> str:
            return subprocess.run(["nsenter", f"--net={ns_path}", *cmd], capture_output=True, text=True,
                                  check=True).stdout

        fdb = show("bridge", "fdb", "show", "dev", "vx-test")
        assert fdb.count(" self permanent") == 600 and "02:42:0a:0a:02:59 dst 10.99.0.21 self permanent" in fdb
        assert show("ip", "neigh", "show", "dev", "vx-test", "nud", "permanent").count("lladdr") == 600
        assert "vx-test" not in host_links(pool)
        nl.delete_peers(index, peers[:300])
        nl.delete_peers(index, peers[:300])                    # already gone: no error
        assert sorted(nl.peers(index)) == sorted(peers[300:])
        nl.replace_peer(index, "10.20.0.1", "02:42:0a:14:00:01", "10.99.0.29")    # the single verbs agree
        assert ("10.20.0.1", "02:42:0a:14:00:01", "10.99.0.29") in nl.peers(index)
        with pytest.raises(CoveError, match="2 entries failed"):
            nl.replace_peers(index + 1000, peers[:1])
    finally:
        pool.close()


def test_address_and_route_lists_are_what_the_kernel_holds(ns_path):
    """The lists ``network create`` picks a free subnet from (read on a raw socket since 2026-12):
    every IPv4 address with its link, IPv6 ones apart, and the main table's routes only."""
    import subprocess
    from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface

    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        index = nl.add_bridge("probe1", "cove:test", up=True)
        nl.add_address(index, IPv4Address("10.61.0.1"), 24)

        def run(*args: str) -> None:
            subprocess.run(["nsenter", f"--net={ns_path}", "ip", *args], check=True)

        run("-6", "addr", "add", "fd00:61::1/64", "dev", "probe1", "nodad")
        run("route", "add", "10.62.0.0/16", "via", "10.61.0.2")
        run("route", "add", "10.63.0.0/16", "via", "10.61.0.2", "table", "100")
        run("route", "add", "default", "via", "10.61.0.254")
        assert nl.addresses() == [(index, IPv4Interface("10.61.0.1/24"))]     # lo has no address until up
        assert nl.addresses(index, family=10)[0] == (index, IPv6Interface("fd00:61::1/64"))
        assert nl.addresses(index + 1000) == []
        assert sorted(nl.routes()) == [IPv4Network("10.61.0.0/24"), IPv4Network("10.62.0.0/16")]
    finally:
        pool.close()


def test_a_bridge_and_its_addresses_are_what_ip_addr_add_would_make(ns_path):
    """``add_bridge`` and ``add_address`` on the raw socket (since 2026-12-07): up from the create,
    its MTU, tagged; IPv4 addresses with the subnet's broadcast (none on a /31), scope global,
    ``noprefixroute`` from ``IFA_FLAGS``; IPv6 without DAD; a taken name or address is a Conflict."""
    import json
    import subprocess
    from ipaddress import IPv4Address, IPv6Address

    from cove.errors import Conflict

    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        subprocess.run(["nsenter", f"--net={ns_path}", "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"],
                       check=True)
        index = nl.add_bridge("probe2", "cove:test", mtu=1400, up=True)
        nl.add_address(index, IPv4Address("10.64.0.1"), 24)
        nl.add_address(index, IPv4Address("10.65.0.0"), 31)
        nl.add_address(index, IPv4Address("10.66.0.1"), 24, flags=0x200)
        nl.add_address(index, IPv6Address("fd00:64::1"), 64)
        with pytest.raises(Conflict):
            nl.add_bridge("probe2", "cove:other")
        with pytest.raises(Conflict):
            nl.add_address(index, IPv4Address("10.64.0.1"), 24)
        out = subprocess.run(["nsenter", f"--net={ns_path}", "ip", "-j", "addr", "show", "probe2"],
                             check=True, capture_output=True, text=True).stdout
        link = json.loads(out)[0]
        assert (link["ifindex"], link["mtu"]) == (index, 1400) and "UP" in link["flags"]
        assert nl.find("probe2").alias == "cove:test"  # type: ignore[union-attr]
        got = {(a["local"], a["prefixlen"], a.get("broadcast"), a["scope"], bool(a.get("noprefixroute")),
                bool(a.get("nodad"))) for a in link["addr_info"] if a["scope"] == "global"}
        assert got == {("10.64.0.1", 24, "10.64.0.255", "global", False, False),
                       ("10.65.0.0", 31, None, "global", False, False),
                       ("10.66.0.1", 24, "10.66.0.255", "global", True, False),
                       ("fd00:64::1", 64, None, "global", False, True)}
    finally:
        pool.close()


def test_a_veth_pair_is_made_enslaved_up_tagged_with_its_port_flags_and_both_indexes(ns_path, peer_ns):
    """``add_veth_pair``: the raw create (master, both ends up, the peer's MAC, echoed with both
    indexes on Linux 6.3+) and the tag (alias + bridge port flags) land as asked, in the namespace of
    the socket; a name already taken is a Conflict that leaves the existing link untouched."""
    import json
    import subprocess

    from cove.errors import Conflict
    from cove.kernel.api import BridgePort

    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        br = nl.add_bridge("probebr", "cove:test", up=True)
        host, peer = nl.add_veth_pair("probev0", "eth7", peer_ns, "cove:ep:probe", mtu=1400, master=br,
                                      peer_mac="02:42:0a:3d:00:07", up=True,
                                      port=BridgePort(hairpin=True, isolated=True))

        def show(netns_path: str, dev: str) -> dict:  # type: ignore[type-arg]
            out = subprocess.run(["nsenter", f"--net={netns_path}", "ip", "-d", "-j", "link", "show", dev],
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out)[0]  # type: ignore[no-any-return]

        h, p = show(ns_path, "probev0"), show(peer_ns, "eth7")
        assert h["ifindex"] == host and p["ifindex"] == peer
        assert h["master"] == "probebr" and "UP" in h["flags"] and h["ifalias"] == "cove:ep:probe"
        assert h["mtu"] == 1400 and p["mtu"] == 1400
        assert h["linkinfo"]["info_slave_data"]["hairpin"] is True
        assert h["linkinfo"]["info_slave_data"]["isolated"] is True
        assert p["address"] == "02:42:0a:3d:00:07" and "UP" not in p["flags"]     # the peer: up later
        for end in (h, p):                        # one queue each way (what the kernel keeps active anyway)
            assert (end["num_tx_queues"], end["num_rx_queues"]) == (1, 1)
        with pytest.raises(Conflict):
            nl.add_veth_pair("probev0", "eth8", peer_ns, "cove:ep:other", master=br, up=True)
        assert show(ns_path, "probev0")["ifalias"] == "cove:ep:probe"
        with pytest.raises(CoveError):            # a stale master index: nothing is left behind
            nl.add_veth_pair("probev1", "eth9", peer_ns, "cove:ep:stale", master=br + 1000, up=True)
        assert nl.find("probev1") is None
    finally:
        pool.close()


def test_without_the_echo_of_linux_6_3_the_pair_s_indexes_come_from_a_lookup(ns_path, peer_ns, monkeypatch):
    """Kernels before 6.3 ignore ``NLM_F_ECHO`` on a link create (Debian 12's 6.1 in the guest-kernel
    stage): the create asked without it must still give the right indexes, by one ``RTM_GETLINK``."""
    from cove.kernel import rtlink

    monkeypatch.setattr(rtlink, "NLM_F_ECHO", 0)
    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        br = nl.add_bridge("probebr", "cove:test", up=True)
        assert nl.index("probebr") == br and nl.find("probebr").alias == "cove:test"  # type: ignore[union-attr]
        nl.add_bridge("probepad", "cove:test")              # the two namespaces' indexes differ
        host, peer = nl.add_veth_pair("probev0", "eth7", peer_ns, "cove:ep:probe", master=br, up=True)
        assert nl.index("probev0") == host and pool.get(peer_ns).index("eth7") == peer
        assert nl.find("probev0").alias == "cove:ep:probe"  # type: ignore[union-attr]
    finally:
        pool.close()


def test_a_directory_an_older_cove_bound_namespaces_in_becomes_a_private_mount_point_keeping_them():
    """keep_private on a plain directory holding binds (no mount point of its own: an older cove's
    layout, containers still running): the same namespaces stay bound at the same paths, on top of
    the new private mount point, and no copy of them is left hidden underneath."""
    from cove.kernel.syscalls import MNT_DETACH, MS_BIND, mount, umount2

    d = f"/run/cove/old-layout-{uuid.uuid4().hex[:8]}"
    os.makedirs(d)
    paths = [f"{d}/a", f"{d}/b"]
    try:
        for p in paths:
            os.close(os.open(p, os.O_CREAT | os.O_RDONLY, 0o444))
            mount("/proc/self/ns/net", p, None, MS_BIND)      # the old way: straight into the directory
        before = {p: os.stat(p).st_ino for p in paths}
        assert d not in [point for point, _ in netns.mount_table()]
        netns.keep_private(d)
        table = netns.mount_table()
        assert [optional for point, optional in table if point == d] == [""], "a private mount point"
        assert sorted(point for point, _ in table if point.startswith(d + "/")) == paths, "each bound once"
        assert {p: os.stat(p).st_ino for p in paths} == before
        for p in paths:
            netns.delete(p)
        netns.release_private(d)
        assert not [point for point, _ in netns.mount_table() if point.startswith(d)]
    finally:
        for p in paths:
            try:
                umount2(p, MNT_DETACH)
            except OSError:
                pass
        try:
            umount2(d, MNT_DETACH)
        except OSError:
            pass
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def test_a_full_bridge_says_so_and_keeps_nothing_of_the_endpoint_it_refused(ns_path, peer_ns, tmp_path):
    """A Linux bridge numbers its ports 1 to 1,023: the next endpoint's create fails with the
    kernel's EXFULL ("Exchange full", all a user saw before); the error now says why, and no
    half-made veth is left.  Seen failing without the hint in ``netlink._error``."""
    import subprocess

    pool = NetlinkPool()
    try:
        nl = pool.get(ns_path)
        nl.add_bridge("fullbr", "cove:test", up=True)
        batch = tmp_path / "fill"
        batch.write_text("".join(f"link add fv{i} master fullbr type veth peer name fp{i}\n" for i in range(1023)))
        subprocess.run(["nsenter", f"--net={ns_path}", "ip", "-batch", str(batch)], check=True, capture_output=True)
        br = nl.index("fullbr")
        with pytest.raises(CoveError) as refused:
            nl.add_veth_pair("onemore", "eth9", peer_ns, "cove:ep:more", master=br, up=True)
        assert "Exchange full" in str(refused.value) and "at most 1,023 ports" in str(refused.value)
        assert nl.find("onemore") is None
    finally:
        pool.close()
