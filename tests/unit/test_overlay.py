"""Overlay networks on fakes: two engines (two fake hosts) share one in-memory cluster store.

What is observed: a network created on one host appears on the other (bridge + VXLAN device,
Scope "global"); a container on host A becomes a peer (FDB/neighbour entry to A's VTEP) and a
name on host B, and goes when it stops or when A's keys expire; addresses stay unique across
hosts (a lost race moves to the next address); the same name twice is refused with Docker's
message; ``network rm`` is refused while the other host has an endpoint, naming that host; a
stale kernel peer left from before a restart is removed on the re-list; the kernel layer's
VXLAN device and peers on the fake.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.schema import ipam_configs, network_json
from cove.drivers.overlay import OPT_VNI
from cove.engine.overlay import Cond, OverlayNetworks, register_endpoint
from cove.errors import Conflict, InvalidArgument
from cove.ipam import mac_for_ip
from cove.model import ContainerConfig, EndpointRequest, HostConfig
from cove.store.base import Entry, Event

from .enginefakes import Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


class MemoryCluster:
    """The cluster store's Txn semantics in memory; watchers are called synchronously."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[dict[str, Any], str | None]] = {}   # key -> (value, lease host)
        self.rev = 0
        self.watchers: list[tuple[str, Callable[[Event], None]]] = []

    def expire(self, host: str) -> None:
        """A host's lease ran out: its leased keys go."""
        for k in [k for k, (_, h) in self.data.items() if h == host]:
            del self.data[k]
            self._emit(Event("delete", k, None, self.rev))


class MemoryKV:
    def __init__(self, cluster: MemoryCluster, host_id: str, name: str) -> None:
        self.c, self.host_id = cluster, host_id
        cluster.data[f"hosts/{host_id}"] = ({"name": name}, host_id)

    def get(self, key: str) -> dict[str, Any] | None:
        v = self.c.data.get(key)
        return None if v is None else v[0]

    def scan(self, prefix: str) -> list[Entry]:
        return [Entry(k, v, 0) for k, (v, _) in sorted(self.c.data.items()) if k.startswith(prefix)]

    def txn(self, conds: list[Cond], puts: list[tuple[str, dict[str, Any], bool]], deletes: list[str]) -> bool:
        for kind, key in conds:
            if kind == "absent" and key in self.c.data or kind == "present" and key not in self.c.data:
                return False
            if kind == "empty" and any(k.startswith(key) for k in self.c.data):
                return False
        self.c.rev += 1
        events = []
        for k, v, leased in puts:
            self.c.data[k] = (v, self.host_id if leased else None)
            events.append(Event("put", k, v, self.c.rev))
        for k in deletes:
            if self.c.data.pop(k, None) is not None:
                events.append(Event("delete", k, None, self.c.rev))
        for ev in events:
            self.c._emit(ev)
        return True

    def watch(self, prefix: str, on_reset: Callable[[list[Entry]], None],
              on_event: Callable[[Event], None]) -> Callable[[], None]:
        on_reset(self.scan(prefix))
        item = (prefix, on_event)
        self.c.watchers.append(item)
        return lambda: self.c.watchers.remove(item)


def _emit(self: MemoryCluster, ev: Event) -> None:
    for prefix, fn in list(self.watchers):
        if ev.key.startswith(prefix):
            fn(ev)


MemoryCluster._emit = _emit  # type: ignore[attr-defined]


class Host:
    def __init__(self, tmp: Path, cluster: MemoryCluster, name: str, vtep: str) -> None:
        self.rig = Rig(tmp / name, cluster_store="etcd://test:2379")
        self.engine = self.rig.engine
        self.engine.driver_ctx.vtep = vtep
        self.kv = MemoryKV(cluster, f"{name}-id", name)
        cluster.data[f"hosts/{name}-id"] = ({"name": name, "vtep": vtep}, f"{name}-id")
        cluster._emit(Event("put", f"hosts/{name}-id", {"name": name, "vtep": vtep}, 0))  # type: ignore[attr-defined]
        self.guarded: list[set[str]] = []
        self.overlay = OverlayNetworks(self.engine.state, self.engine.nets, self.engine.records, self.kv,
                                       guard=self.guarded.append)
        self.engine.nets.overlay = self.engine.overlay = self.overlay
        self.overlay.start()

    def run(self, name: str, net: str, **req: Any) -> str:
        c = self.engine.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"]),
                                         HostConfig(network_mode=net), {net: EndpointRequest(**req)})
        self.engine.start_container(c.id)
        return c.id

    def vx(self) -> str:
        return "\n".join(line for line in self.rig.kernel.dump().splitlines() if "vxlan" in line or "peer " in line)


@pytest.fixture
def two(tmp_path: Path) -> tuple[MemoryCluster, Host, Host]:
    cluster = MemoryCluster()
    return cluster, Host(tmp_path, cluster, "ha", "10.99.0.21"), Host(tmp_path, cluster, "hb", "10.99.0.22")


def subnet(cidr: str) -> Any:
    return ipam_configs([{"Subnet": cidr}])


def test_a_network_made_on_one_host_appears_on_the_other(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    assert net.options[OPT_VNI] == "4096"
    seen = b.engine.find_network("ov")
    assert seen.id == net.id and network_json(b.engine, seen)["Scope"] == "global"   # type: ignore[arg-type]
    for h in (a, b):
        dump = h.rig.kernel.dump()
        assert f"link ov-{net.id[:12]} kind=bridge" in dump
        assert "link vx-001000 kind=vxlan" in dump and "vxlan_learning=0" in dump and "vxlan_proxy=1" in dump
        assert "mtu=1450" in h.vx()                    # underlay (1500) − 50
    assert "vxlan_local=10.99.0.22" in b.vx()
    assert cluster.data["names/networks/ov"][0] == {"id": net.id}


def test_names_are_unique_across_hosts(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    # b has not heard of it yet (its watch is behind): the Txn's name guard still refuses
    b.engine.nets.overlay = None
    b.overlay.close()
    del b.engine.networks[a.engine.find_network("ov").id]
    b.engine.nets.overlay = b.overlay
    before = b.rig.kernel.dump()
    with pytest.raises(Conflict, match="network with name ov already exists"):
        b.engine.create_network("ov", "overlay", subnet("10.11.0.0/24"))
    assert b.rig.kernel.dump() == before           # no kernel object left by the loser


def test_remote_endpoints_become_peers_and_names(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    a.run("web", "ov", aliases=["www"])
    assert "peer 10.10.0.2 02:42:0a:0a:00:02 dst 10.99.0.21" in b.vx()
    assert "peer " not in a.vx()                 # a's own endpoint is local, not a peer
    assert b.engine.records.lookup([net.id], "web") == ["10.10.0.2"]
    assert b.engine.records.lookup([net.id], "www") == ["10.10.0.2"]
    cid = b.run("cli", "ov")
    assert b.engine.endpoints[cid][net.id].ip == "10.10.0.3"   # the remote lease is taken here too
    assert "peer 10.10.0.3 02:42:0a:0a:00:03 dst 10.99.0.22" in a.vx()
    a.engine.stop_container("web")
    assert "10.10.0.2" not in b.vx() and b.engine.records.lookup([net.id], "web") == []


def test_a_dead_hosts_endpoints_go_when_its_lease_expires(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    a.run("web", "ov")
    assert "peer 10.10.0.2" in b.vx()
    cluster.expire("ha-id")
    assert "peer " not in b.vx() and b.engine.records.lookup([net.id], "web") == []


def test_addresses_stay_unique_when_a_host_loses_the_race(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    b.overlay.remote.clear()      # b's view is behind: it does not know a's endpoint yet
    b.engine.nets.overlay = None
    a.run("one", "ov")
    b.engine.nets.overlay = b.overlay
    b.engine.state.forget_pools(net.id)
    b.overlay.remote.clear()
    cid = b.run("two", "ov")
    assert b.engine.endpoints[cid][net.id].ip == "10.10.0.3"      # 10.10.0.2 was taken: the next one
    with pytest.raises(Conflict, match="ip 10.10.0.2 is already in use"):
        b.run("three", "ov", ip="10.10.0.2")
    ips = [k for k in cluster.data if k.startswith(f"ipam/{net.id}/")]
    assert sorted(ips) == [f"ipam/{net.id}/10.10.0.2", f"ipam/{net.id}/10.10.0.3"]


def test_one_endpoint_name_per_network_across_hosts(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    a.run("web", "ov")
    with pytest.raises(Conflict, match="endpoint with name web already exists in network ov"):
        b.run("web", "ov")
    assert not any(k.startswith("ipam/") and v[1] == "hb-id" for k, v in cluster.data.items())


def test_rm_is_refused_while_another_host_has_an_endpoint(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    b.run("web", "ov")
    with pytest.raises(Conflict, match=r"active endpoints on hosts hb \(10.99.0.22\)"):
        a.engine.remove_network("ov")
    assert net.id in a.engine.networks and f"networks/{net.id}" in cluster.data
    b.engine.remove_container("web", force=True)
    a.engine.remove_network("ov")
    assert net.id not in b.engine.networks and "vx-" not in b.vx()      # gone everywhere
    assert not [k for k in cluster.data if not k.startswith("hosts/")]


def test_bad_overlay_requests_change_nothing(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    before = dict(cluster.data)
    with pytest.raises(InvalidArgument, match="vxlanid_list"):
        a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"), options={OPT_VNI: "x"})
    with pytest.raises(InvalidArgument, match="not an option of the overlay driver"):
        a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"), options={"foo": "1"})
    with pytest.raises(InvalidArgument, match="IPv4 only"):
        a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"), ipv6=True)
    a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"), options={OPT_VNI: "77"})
    with pytest.raises(Conflict, match="VXLAN id 77"):
        b.engine.create_network("ov2", "overlay", subnet("10.11.0.0/24"), options={OPT_VNI: "77"})
    with pytest.raises(Conflict, match="10.10.0.0/24"):
        b.engine.create_network("ov3", "overlay", subnet("10.10.0.0/24"))
    assert set(cluster.data) - set(before) == {k for k in cluster.data if "ov" in str(cluster.data[k][0])
                                               or k.startswith(("vni/", "subnets/", "networks/", "names/"))}
    assert [n.name for n in b.engine.networks.values() if n.driver == "overlay"] == ["ov"]


def test_a_relist_removes_stale_kernel_peers(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    drv = b.overlay.driver()
    drv.add_peer(b.engine.find_network("ov"), "10.10.0.9", "02:42:0a:0a:00:09", "10.99.0.29")  # left from before
    a.run("web", "ov")
    b.overlay._endpoints_reset(b.kv.scan("endpoints/"))
    assert "10.10.0.9" not in b.vx() and "peer 10.10.0.2" in b.vx()
    assert net.id in b.engine.networks


def test_gc_removes_an_orphan_vxlan_device(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    b.rig.kernel.host.add_link("vx-00abcd", "vxlan", "cove:vx:" + "f" * 64, vxlan_id=0xABCD)
    b.engine.collect_garbage()
    assert "vx-00abcd" not in b.rig.kernel.dump()


def test_a_host_back_after_its_ttl_registers_its_endpoints_again(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    a.run("web", "ov")
    cluster.expire("ha-id")                                    # a was away longer than its TTL
    assert "peer " not in b.vx()
    a.overlay._endpoints_reset(a.kv.scan("endpoints/"))        # a's watch re-lists when it is back
    assert "peer 10.10.0.2 02:42:0a:0a:00:02 dst 10.99.0.21" in b.vx()
    assert b.engine.records.lookup([net.id], "web") == ["10.10.0.2"]


def test_the_vxlan_guard_follows_the_registered_hosts(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    assert a.guarded[-1] == b.guarded[-1] == {"10.99.0.21", "10.99.0.22"}
    cluster.expire("hb-id")                           # b's lease ran out: its VTEP is refused again
    assert a.guarded[-1] == {"10.99.0.21"}


def test_network_inspect_names_the_peers_and_the_remote_endpoints(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    seen = network_json(b.engine, b.engine.find_network("ov"))   # type: ignore[arg-type]
    assert seen["Peers"] == [] and seen["Cove"]["RemoteEndpoints"] == []
    assert seen["Cove"]["VXLAN"] == {"Name": "vx-001000", "VNI": 4096, "Local": "10.99.0.22", "Port": 4789}
    assert seen["Cove"]["Bridge"] == f"ov-{net.id[:12]}"
    a.run("web", "ov")
    b.run("cli", "ov")
    seen = network_json(b.engine, b.engine.find_network("ov"))   # type: ignore[arg-type]
    # Docker's shape: the hosts with endpoints on the network, this one included, by name and VTEP
    assert sorted(seen["Peers"], key=lambda p: p["IP"]) == [{"Name": "ha", "IP": "10.99.0.21"},
                                                            {"Name": "hb", "IP": "10.99.0.22"}]
    [web] = seen["Cove"]["RemoteEndpoints"]
    assert (web["Name"], web["IPv4Address"], web["MacAddress"], web["Host"], web["VTEP"]) == \
        ("web", "10.10.0.2/24", "02:42:0a:0a:00:02", "ha", "10.99.0.21")
    assert [c["Name"] for c in seen["Containers"].values()] == ["cli"]          # Containers stays local
    assert seen["Containers"][next(iter(seen["Containers"]))]["Cove"]["Bridge"] == f"ov-{net.id[:12]}"
    a.engine.stop_container("web")
    seen = network_json(b.engine, b.engine.find_network("ov"))   # type: ignore[arg-type]
    assert seen["Cove"]["RemoteEndpoints"] == [] and seen["Peers"] == [{"Name": "hb", "IP": "10.99.0.22"}]


def _remote_endpoints(cluster: MemoryCluster, net_id: str, hosts: int, per_host: int) -> None:
    """What other hosts registered (with the same Txn a real host sends)."""
    for h in range(hosts):
        kv = MemoryKV(cluster, f"sim{h}-id", f"sim{h}")
        for j in range(per_host):
            ip = f"10.10.{h + 1}.{j + 1}"
            assert register_endpoint(kv, f"10.98.0.{h + 1}", net_id, f"ep{h}-{j}", f"c{h}-{j}" + "0" * 12,
                                     f"s{h}-{j}", [f"s{h}-{j}"], ip, mac_for_ip(IPv4Address(ip)))


def test_a_cold_relist_programs_all_remote_endpoints_in_one_kernel_batch(
        two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/16"))
    b.overlay.close()
    _remote_endpoints(cluster, net.id, 5, 20)
    kernel = b.rig.kernel
    kernel.journal.clear()
    b.overlay._endpoints_reset(b.kv.scan("endpoints/"))         # b's watch (re-)lists: 100 new peers
    batches = [w for w in kernel.journal if "peer" in w and not w.startswith("list")]
    assert batches == [f"add 100 peers on {b.overlay.driver()._vx_index(net)}"]
    assert b.vx().count("peer 10.10.") == 100 and "peer 10.10.5.20 02:42:0a:0a:05:14 dst 10.98.0.5" in b.vx()
    assert b.engine.records.lookup([net.id], "s4-19") == ["10.10.5.20"]
    kernel.journal.clear()
    b.overlay._endpoints_reset(b.kv.scan("endpoints/"))         # nothing changed: nothing programmed again
    assert [w for w in kernel.journal if "peer" in w and not w.startswith("list")] == []


def test_a_network_appearing_after_its_endpoints_programs_them_in_one_batch(tmp_path: Path) -> None:
    cluster = MemoryCluster()
    a = Host(tmp_path, cluster, "ha", "10.99.0.21")
    net = a.engine.create_network("ov", "overlay", subnet("10.10.0.0/16"))
    _remote_endpoints(cluster, net.id, 3, 10)
    b = Host(tmp_path, cluster, "hb", "10.99.0.22")   # its endpoints list may come before the network
    assert b.vx().count("peer 10.10.") == 30
    assert sum(1 for w in b.rig.kernel.journal if w.startswith("add ") and "peer" in w) <= 2
    cluster.expire("sim1-id")                           # one host's lease ends: its 10 go, one by one
    assert b.vx().count("peer 10.10.") == 20 and "dst 10.98.0.2" not in b.vx()


def test_relist_removes_stale_kernel_peers_in_one_batch(two: tuple[MemoryCluster, Host, Host]) -> None:
    cluster, a, b = two
    net = b.engine.create_network("ov", "overlay", subnet("10.10.0.0/24"))
    drv = b.overlay.driver()
    drv.add_peers(net, [(f"10.10.0.{i}", mac_for_ip(IPv4Address(f"10.10.0.{i}")), "10.99.0.29") for i in (7, 8, 9)])
    b.rig.kernel.journal.clear()
    b.overlay._endpoints_reset(b.kv.scan("endpoints/"))
    assert "peer " not in b.vx()
    assert [w for w in b.rig.kernel.journal if "peer" in w] == [f"list peers of {drv._vx_index(net)}",
                                                                f"delete 3 peers on {drv._vx_index(net)}"]
