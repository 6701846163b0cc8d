"""External connectivity follows the gateway endpoint (Docker's sbLeave/updateGateway), on the fake kernel.

A container run with ``-p`` on network ``a``, connected to ``b``, then disconnected from
``a``: its published port must now lead to its address on ``b`` (the firewall, the store,
``cove port``/inspect agree), its default route goes via ``b``'s gateway, and a restart
(or a disconnect a ``kill -9`` interrupted) keeps it so.  Seen failing with
``PortPublisher.follow_gateway``'s call in ``NetworkService.disconnect`` removed (the
mapping kept pointing at the address on ``a``, and the namespace had no default route),
and the replay test with its call in ``Reconciler._finish_disconnect`` removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cove.daemon.schema import container_json
from cove.engine import Engine, intents
from cove.errors import Conflict
from cove.model import Container, ContainerConfig, EndpointRequest, HostConfig
from cove.portmap import PortMapping

from .enginefakes import Rig
from .test_reconciler import _restart


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def _published(rig: Rig, internal_b: bool = False) -> Container:
    e = rig.engine
    e.create_network("a", "bridge")
    e.create_network("b", "bridge", internal=internal_b)
    c = e.create_container("web", ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"],
                                                  exposed_ports={"80/tcp": {}}),
                           HostConfig(network_mode="a", port_bindings={"80/tcp": [{"HostPort": "8080"}]}), {})
    e.start_container(c.id)
    e.connect("b", c.id, EndpointRequest())
    return c


def _ip_on(engine: Engine, c: Container, net: str) -> str:
    nid = next(n.id for n in engine.networks.values() if n.name == net)
    return engine.endpoints[c.id][nid].ip


def _stored_ports(rig: Rig, c: Container) -> list[dict[str, Any]]:
    rec = rig.store.get(f"containers/{c.id}")
    assert rec is not None
    return list(rec.value["state"]["ports"])


def test_disconnecting_the_first_network_moves_the_published_port_and_the_default_route(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig)
    b_ip = _ip_on(rig.engine, c, "b")
    rig.engine.disconnect("a", c.id)
    want = PortMapping("tcp", "0.0.0.0", 8080, b_ip, 80)
    assert rig.firewall.ports == {want}                                    # the DNAT leads to the address on b
    assert [PortMapping.from_dict(d) for d in _stored_ports(rig, c)] == [want]
    b = rig.engine.find_network("b")
    gw = str(b.ipam[0].gateway)
    inside = rig.kernel.get(c.state.netns)
    assert inside.default_route() == (gw, inside.index("eth1"))           # egress (and replies) via b
    info = container_json(rig.engine, c)
    assert info["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    engine = _restart(rig)                                                 # a daemon restart keeps it
    assert rig.firewall.ports == {want}
    assert [PortMapping.from_dict(d) for d in engine.containers[c.id].state.ports] == [want]


def test_disconnecting_another_network_leaves_the_port_where_it_is(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig)
    a_ip = _ip_on(rig.engine, c, "a")
    rig.engine.disconnect("b", c.id)
    assert rig.firewall.ports == {PortMapping("tcp", "0.0.0.0", 8080, a_ip, 80)}


def test_with_only_an_internal_network_left_the_port_is_withdrawn(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig, internal_b=True)
    rig.engine.disconnect("a", c.id)
    assert rig.firewall.ports == set() and _stored_ports(rig, c) == []
    # the host port is free again for another container
    assert rig.engine.ports.published() == []


def test_a_disconnect_interrupted_before_the_port_moved_is_finished_at_restart(tmp_path: Path) -> None:
    # kill -9 in `disconnect` after eth0's veth was deleted, before anything was recorded
    rig = Rig(tmp_path)
    c = _published(rig)
    b_ip = _ip_on(rig.engine, c, "b")
    a = rig.engine.find_network("a")
    ep = rig.engine.endpoints[c.id][a.id]
    intents.begin(rig.store, "disconnect", container=c.id, network=a.id)
    rig.kernel.host.delete_link(ep.host_ifname)
    engine = _restart(rig)
    want = PortMapping("tcp", "0.0.0.0", 8080, b_ip, 80)
    assert rig.firewall.ports == {want}
    assert [PortMapping.from_dict(d) for d in _stored_ports(rig, c)] == [want]
    assert a.id not in engine.containers[c.id].networks and not rig.store.list(intents.PREFIX)


# Joining a gateway network again (Docker's sbJoin: external connectivity goes to the new gateway
# endpoint, never to an internal network's).  Seen failing with ``gateway_joined``'s call in
# ``NetworkService._connect`` removed (no port, no default route after the connect), and the
# internal-only start with ``plan_join``'s ``not net.internal`` and ``publish_on_gateway`` undone.

def _run_on(rig: Rig, net: str, name: str = "web", host_port: str = "8080") -> Container:
    e = rig.engine
    c = e.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"],
                                                 exposed_ports={"80/tcp": {}}),
                           HostConfig(network_mode=net, port_bindings={"80/tcp": [{"HostPort": host_port}]}), {})
    e.start_container(c.id)
    return c


def _gateway(rig: Rig, net: str) -> str:
    return str(rig.engine.find_network(net).ipam[0].gateway)


def test_a_container_on_an_internal_network_only_publishes_nothing_and_has_no_way_out(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.create_network("i", "bridge", internal=True)
    c = _run_on(rig, "i")
    assert rig.firewall.ports == set() and _stored_ports(rig, c) == []
    assert rig.kernel.get(c.state.netns).default_route() is None
    assert rig.engine.ports.published() == []          # 8080 is free for someone else


def test_withdrawn_ports_come_back_when_a_network_with_a_gateway_is_joined(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig, internal_b=True)
    rig.engine.disconnect("a", c.id)                   # only the internal b left: withdrawn
    assert rig.firewall.ports == set()
    rig.engine.create_network("c", "bridge")
    rig.engine.connect("c", c.id, EndpointRequest())
    c_ip = _ip_on(rig.engine, c, "c")
    want = PortMapping("tcp", "0.0.0.0", 8080, c_ip, 80)
    assert rig.firewall.ports == {want}
    assert [PortMapping.from_dict(d) for d in _stored_ports(rig, c)] == [want]
    inside = rig.kernel.get(c.state.netns)
    nid = rig.engine.find_network("c").id
    assert inside.default_route() == (_gateway(rig, "c"), inside.index(rig.engine.endpoints[c.id][nid].ifname))
    engine = _restart(rig)
    assert rig.firewall.ports == {want}
    assert [PortMapping.from_dict(d) for d in engine.containers[c.id].state.ports] == [want]


def test_an_internal_only_container_gets_its_ports_and_route_on_its_first_gateway_network(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.create_network("i", "bridge", internal=True)
    rig.engine.create_network("pub", "bridge")
    c = _run_on(rig, "i")
    rig.engine.connect("pub", c.id, EndpointRequest())
    pub_ip = _ip_on(rig.engine, c, "pub")
    assert rig.firewall.ports == {PortMapping("tcp", "0.0.0.0", 8080, pub_ip, 80)}
    inside = rig.kernel.get(c.state.netns)
    assert inside.default_route() == (_gateway(rig, "pub"), inside.index("eth1"))
    # no eth0 with a way out: the gateway endpoint is the first by network name, as Docker orders
    # them, so a later "aaa" takes the port and the route (a later "zzz" would not)
    rig.engine.create_network("zzz", "bridge")
    rig.engine.connect("zzz", c.id, EndpointRequest())
    assert rig.firewall.ports == {PortMapping("tcp", "0.0.0.0", 8080, pub_ip, 80)}
    rig.engine.create_network("aaa", "bridge")
    rig.engine.connect("aaa", c.id, EndpointRequest())
    assert rig.firewall.ports == {PortMapping("tcp", "0.0.0.0", 8080, _ip_on(rig.engine, c, "aaa"), 80)}
    assert inside.default_route() == (_gateway(rig, "aaa"), inside.index("eth3"))


def test_connecting_a_normal_container_leaves_its_port_on_eth0(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig)                                # run on a, connected to b
    assert rig.firewall.ports == {PortMapping("tcp", "0.0.0.0", 8080, _ip_on(rig.engine, c, "a"), 80)}


def test_a_host_port_taken_meanwhile_refuses_the_connect_and_changes_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _published(rig, internal_b=True)
    rig.engine.disconnect("a", c.id)                   # 8080 withdrawn ...
    other = _run_on(rig, "a", name="other")            # ... and taken by another container
    before_fw, before_store = set(rig.firewall.ports), _stored_ports(rig, c)
    rig.engine.create_network("c", "bridge")
    nid = rig.engine.find_network("c").id
    with pytest.raises(Conflict, match="port is already allocated"):
        rig.engine.connect("c", c.id, EndpointRequest())
    assert rig.firewall.ports == before_fw and _stored_ports(rig, c) == before_store
    assert nid not in c.networks and nid not in rig.engine.endpoints.get(c.id, {})
    rec = rig.store.get(f"containers/{c.id}")
    assert rec is not None and nid not in rec.value["networks"]
    assert not rig.store.list(intents.PREFIX)
    assert rig.kernel.get(c.state.netns).default_route() is None
    assert other.state.ports
