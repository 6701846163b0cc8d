"""Rollback, proven at every step: a failure injected at each kernel call leaves nothing behind.

Each scenario runs once to count the kernel calls its operation makes (the fake
firewall's calls count too), then once per call number n on a fresh engine
with the n-th call failing, and asserts that the fake kernel, the firewall, the
store and the engine's records are exactly as before the operation.  A failure
the engine is meant to tolerate (a gratuitous ARP) must be one of the listed
calls, and then the operation must have completed.

To see these fail: comment out an ``undo.callback(...)`` in
``drivers/bridge.py:join`` (or ``engine/containers.py:start_container``), and
the cases whose injected failure comes after that step report the leftover
veth/namespace in the dump diff.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from cove.errors import CoveError
from cove.kernel.fake import InjectedFailure
from cove.model import ContainerConfig, EndpointRequest, HostConfig
from cove.pipework import InterfaceRequest

from .enginefakes import Rig
from cove.daemon.schema import ipam_configs

Setup = Callable[[Rig], Any]
Op = Callable[[Rig, Any], Any]

#: calls whose failure the engine logs and carries on from (a cache refresh for the neighbours)
TOLERATED = ("announce ", "look up link veth")


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing probes the machine: host ports count as free, kernel features as present."""
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test reached the real kernel")

    for name in ("cove.kernel.netlink.sysctl_set", "cove.kernel.netlink.sysctl_set_in",
                 "cove.kernel.netlink.open_iproute", "cove.kernel.netns.create", "cove.kernel.netns.delete",
                 "cove.kernel.conntrack.ConntrackFlows.forget_flows",
                 "cove.kernel.conntrack.ConntrackFlows.forget_udp_port"):
        monkeypatch.setattr(name, refuse)


def container(rig: Rig, name: str, mode: str = "default", networks: dict[str, EndpointRequest] | None = None,
              ports: dict[str, Any] | None = None) -> str:
    c = rig.engine.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"]),
                                    HostConfig(network_mode=mode, port_bindings=ports or {}), dict(networks or {}))
    return c.id


def contains_injected(exc: BaseException) -> bool:
    if isinstance(exc, InjectedFailure):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(contains_injected(e) for e in exc.exceptions)
    return exc.__cause__ is not None and contains_injected(exc.__cause__)


def sweep(tmp_path: Path, setup: Setup, op: Op, *, calls: bool = True) -> int:
    """Fail each call of ``op`` in turn; every failure leaves the state as it was.  Returns the call count."""
    rig = Rig(tmp_path / "count")
    ctx = setup(rig)
    rig.kernel.fail_at(None)
    op(rig, ctx)
    total = rig.kernel.calls
    assert total > 0 or not calls
    for n in range(1, total + 1):
        rig = Rig(tmp_path / f"fail{n}")
        ctx = setup(rig)
        before = rig.state()
        rig.kernel.fail_at(n)
        try:
            op(rig, ctx)
        except (CoveError, BaseExceptionGroup) as exc:
            failed = rig.kernel.journal[n - 1]
            assert contains_injected(exc), f"call {n}: {exc!r}"
            rig.kernel.fail_at(None)
            assert rig.state() == before, f"failure at call {n} ({failed}) left this behind"
        else:
            failed = rig.kernel.journal[n - 1]
            assert failed.startswith(TOLERATED), f"the failure of call {n} ({failed}) went unnoticed"
    return total


# container start ------------------------------------------------------------------------------
def test_start_on_two_networks_with_ports(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("back", "bridge")
        return container(rig, "web", networks={"back": EndpointRequest(aliases=["db"])},
                         ports={"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                "53/udp": [{"HostIp": "", "HostPort": "5353"}]})

    n = sweep(tmp_path, setup, lambda rig, cid: rig.engine.start_container(cid))
    assert n >= 12          # 20 before a join became 5 kernel calls (add_veth_pair, 2026-12-06): 14 now


def test_start_on_an_ipv6_network(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("six", "bridge", ipam_configs([{"Subnet": "fd00:6::/64"}]), ipv6=True)
        return container(rig, "v6", mode="six")

    sweep(tmp_path, setup, lambda rig, cid: rig.engine.start_container(cid))


@pytest.mark.parametrize("mode", ["none", "host"])
def test_start_without_a_bridge(tmp_path: Path, mode: str) -> None:
    n = sweep(tmp_path, lambda rig: container(rig, "solo", mode=mode),
              lambda rig, cid: rig.engine.start_container(cid), calls=False)
    assert (n > 0) == (mode == "none")      # --network host: no namespace, no kernel call at all


def test_start_on_macvlan_with_host_access(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("lan", "macvlan", ipam_configs([{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1",
                                                      "IPRange": "10.99.0.64/26"}]),
                                  options={"parent": "eth0", "host_access": "true"})
        return container(rig, "onlan", mode="lan")

    sweep(tmp_path, setup, lambda rig, cid: rig.engine.start_container(cid))


def test_start_on_ipvlan_l3(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("l3", "ipvlan", ipam_configs([{"Subnet": "10.77.0.0/24"}]),
                                  options={"parent": "eth0", "ipvlan_mode": "l3"})
        return container(rig, "onl3", mode="l3")

    sweep(tmp_path, setup, lambda rig, cid: rig.engine.start_container(cid))


# network connect ---------------------------------------------------------------------------------
def test_connect_a_running_container(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("extra", "bridge", ipam_configs([{"Subnet": "10.55.0.0/24"}]))
        cid = container(rig, "joiner")
        rig.engine.start_container(cid)
        return cid

    sweep(tmp_path, setup, lambda rig, cid: rig.engine.connect("extra", cid, EndpointRequest(ip="10.55.0.9",
                                                                                             aliases=["x"])))


def test_connect_to_macvlan(tmp_path: Path) -> None:
    def setup(rig: Rig) -> str:
        rig.engine.create_network("lan", "macvlan", ipam_configs([{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]),
                                  options={"parent": "eth0"})
        cid = container(rig, "joiner")
        rig.engine.start_container(cid)
        return cid

    sweep(tmp_path, setup, lambda rig, cid: rig.engine.connect("lan", cid, EndpointRequest()))


# network create ------------------------------------------------------------------------------------
def test_create_bridge_network(tmp_path: Path) -> None:
    sweep(tmp_path, lambda rig: None,
          lambda rig, _: rig.engine.create_network("made", "bridge", ipam_configs([{"Subnet": "10.66.0.0/24"}])))


def test_create_ipv6_bridge_network(tmp_path: Path) -> None:
    def setup(rig: Rig) -> None:
        rig.kernel.sysctl("net.ipv6.conf.all.forwarding", "1")   # global, and set before the network

    sweep(tmp_path, setup, lambda rig, _: rig.engine.create_network("six", "bridge", ipam_configs([{"Subnet": "fd00:7::/64"}]),
                                                                    ipv6=True))


@pytest.mark.parametrize("driver,options", [
    ("macvlan", {"parent": "eth0"}),
    ("macvlan", {"parent": "eth0", "host_access": "true"}),
    ("macvlan", {"parent": "eth0.20", "host_access": "true"}),
    ("ipvlan", {"parent": "eth0.30", "ipvlan_mode": "l2"}),
])
def test_create_macvlan_ipvlan(tmp_path: Path, driver: str, options: dict[str, str]) -> None:
    sweep(tmp_path, lambda rig: None,
          lambda rig, _: rig.engine.create_network("lan", driver, ipam_configs([{"Subnet": "10.99.0.0/24",
                                                                    "Gateway": "10.99.0.1"}]), options=dict(options)))


def test_create_uplink_bridge(tmp_path: Path) -> None:
    def setup(rig: Rig) -> None:
        rig.kernel.add_nic("eth1", "192.168.50.10/24", mac="02:00:00:00:50:10")
        rig.kernel.host.add_route({"dst": "10.50.0.0/16", "gateway": "192.168.50.1"},
                                  rig.kernel.host.index("eth1"))

    n = sweep(tmp_path, setup, lambda rig, _: rig.engine.create_network(
        "lan", "bridge", ipam_configs([{"Subnet": "192.168.50.0/24", "Gateway": "192.168.50.1"}]),
        options={"cove.bridge.uplink": "eth1"}))
    assert n >= 10


# pipework attach ----------------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", [None, "192.168.9.1"])
def test_pipework_attach(tmp_path: Path, gateway: str | None) -> None:
    def setup(rig: Rig) -> str:
        rig.kernel.add_nic("br-lan", "192.168.9.2/24", kind="bridge")
        cid = container(rig, "piped")
        rig.engine.start_container(cid)
        return cid

    req = InterfaceRequest(bridge="br-lan", address=IPv4Interface("192.168.9.50/24"),
                           gateway=IPv4Address(gateway) if gateway else None)
    sweep(tmp_path, setup, lambda rig, cid: rig.engine.add_interface(cid, req))


# the whole life: create, join, leave, remove gives the kernel back as it was ------------------------
LIFECYCLES = [
    ("bridge", ipam_configs([{"Subnet": "10.66.0.0/24"}]), {}, False),
    ("bridge", ipam_configs([{"Subnet": "10.66.0.0/24"}, {"Subnet": "fd00:8::/64"}]), {}, True),
    ("bridge", ipam_configs([{"Subnet": "192.168.50.0/24", "Gateway": "192.168.50.1"}]), {"cove.bridge.uplink": "eth1"}, False),
    ("macvlan", ipam_configs([{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]), {"parent": "eth0.20", "host_access": "true"},
     False),
    ("ipvlan", ipam_configs([{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]), {"parent": "eth0"}, False),
]


@pytest.mark.parametrize("driver,ipam,options,ipv6", LIFECYCLES)
def test_network_life_leaves_nothing(tmp_path: Path, driver: str, ipam: list[dict[str, str]],
                                     options: dict[str, str], ipv6: bool) -> None:
    rig = Rig(tmp_path)
    rig.kernel.add_nic("eth1", "192.168.50.10/24", mac="02:00:00:00:50:10")
    rig.kernel.host.add_route({"dst": "10.50.0.0/16", "gateway": "192.168.50.1"}, rig.kernel.host.index("eth1"))
    if ipv6:
        rig.kernel.sysctl("net.ipv6.conf.all.forwarding", "1")
    before = rig.state()
    e = rig.engine
    net = e.create_network("n1", driver, ipam, ipv6=ipv6, options=dict(options))
    cid = container(rig, "c1", mode="n1")
    e.start_container(cid)
    other = container(rig, "c2")
    e.start_container(other)
    e.connect("n1", other, EndpointRequest(aliases=["second"]))
    made = rig.kernel.dump()
    assert made != before
    e.disconnect("n1", other)
    e.stop_container(cid)
    e.stop_container(other)
    e.remove_container(cid)
    e.remove_container(other)
    e.remove_network(net.id)
    assert rig.state() == before


@pytest.mark.parametrize("mode", ["host", "none"])
def test_singleton_networks_life(tmp_path: Path, mode: str) -> None:
    rig = Rig(tmp_path)
    before = rig.state()
    cid = container(rig, "solo", mode=mode)
    rig.engine.start_container(cid)
    assert ("run/netns" in rig.kernel.dump()) == (mode == "none")
    rig.engine.stop_container(cid)
    rig.engine.remove_container(cid)
    assert rig.state() == before


def test_pipework_attach_detach(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.kernel.add_nic("br-lan", "192.168.9.2/24", kind="bridge")
    cid = container(rig, "piped")
    rig.engine.start_container(cid)
    before = rig.state()
    x = rig.engine.add_interface(cid, InterfaceRequest(bridge="br-lan", address=IPv4Interface("192.168.9.50/24"),
                                                       gateway=IPv4Address("192.168.9.1")))
    assert "192.168.9.50/24" in rig.kernel.dump()
    rig.engine.remove_interface(cid, x.ifname)
    assert rig.state() == before
