"""The engine knows no driver by name: capability flags, optional Protocols, GC by each driver's tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.drivers import DRIVERS, DriverContext, register
from cove.model import ContainerConfig, Endpoint, HostConfig, Network

from .enginefakes import Rig
from cove.daemon.schema import ipam_configs


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def test_gc_removes_only_orphans_by_tag(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    k = rig.kernel
    host = k.host
    live_net = next(n for n in rig.engine.networks.values() if n.name == "bridge")
    for name, alias in [("br-orphan", "cove:net:gone"), ("vethorphan", "cove:ep:gone"),
                        ("cove-hgone", "cove:shim:gone"), ("eth0.99", "cove:vlan:gone"),
                        ("cove-hlive", f"cove:shim:{live_net.id}"), ("mine", "not-cove"), ("plain", None)]:
        k.add_nic(name)
        if alias:
            next(lk for lk in k.namespaces[None].links.values() if lk.name == name).alias = alias
    rig.engine.collect_garbage()
    left = {lk.name for lk in host.links()}
    assert left == {"lo", "eth0", "cove0", "cove-hlive", "mine", "plain"}


def test_gc_gives_an_orphan_uplink_bridge_its_nic_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.kernel.add_nic("eth1", "192.168.50.10/24")
    net = rig.engine.create_network("lan", "bridge", ipam_configs([{"Subnet": "192.168.50.0/24", "Gateway": "192.168.50.1"}]),
                                    options={"cove.bridge.uplink": "eth1"})
    assert "addr eth1" not in rig.kernel.dump()
    del rig.engine.networks[net.id]           # the store lost it (a crash between kernel and store)
    rig.engine.collect_garbage()
    dump = rig.kernel.dump()
    assert "addr eth1 192.168.50.10/24" in dump and f"cove:net:{net.id}" not in dump


def test_a_new_driver_is_one_class_and_one_registration(tmp_path: Path) -> None:
    """A driver the engine has never heard of gets endpoints, IPAM and names like any other."""
    joined: list[str] = []

    @register("toy")
    class ToyDriver:
        name = "toy"
        has_endpoints = True
        supports_ipv6 = False
        singleton = False
        flushes_conntrack = False

        def __init__(self, ctx: DriverContext) -> None:
            self.ctx = ctx

        def host_ifname(self, ep_id: str) -> str:
            return ""

        def validate(self, net: Network) -> None: ...
        def create(self, net: Network) -> None: ...
        def delete(self, net: Network) -> None: ...
        def restore(self, net: Network) -> None: ...

        def join(self, net: Network, ep: Endpoint, sandbox: str) -> None:
            joined.append(ep.ip)

        def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None:
            joined.remove(ep.ip)

    try:
        rig = Rig(tmp_path)
        rig.engine.create_network("t", "toy", ipam_configs([{"Subnet": "10.44.0.0/24"}]))
        c = rig.engine.create_container("c", ContainerConfig(image="busybox", image_id="", cmd=["true"]),
                                        HostConfig(network_mode="t"), {})
        rig.engine.start_container(c.id)
        assert joined == ["10.44.0.2"]
        assert rig.engine.names.dns_networks(c)           # a user network: names resolve
        rig.engine.stop_container(c.id)
        assert joined == []
    finally:
        DRIVERS.pop("toy", None)
