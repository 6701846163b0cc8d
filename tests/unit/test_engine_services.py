"""Engine services are built from a State and the parts they need, and work on their own."""

from __future__ import annotations

from pathlib import Path

from cove.dns.records import Records
from cove.engine import EngineConfig
from cove.engine.names import NameService
from cove.engine.ports import PortPublisher
from cove.engine.state import State
from cove.kernel.fake import FakeKernel
from cove.model import Container, ContainerConfig, ContainerState, Endpoint, HostConfig, Network
from cove.store import MemoryStore

from .enginefakes import FakeDns, FakeFirewall


def _container(cid: str, ports: dict[str, object]) -> Container:
    return Container(id=cid, name=f"c{cid[:8]}", created="", config=ContainerConfig(image="x", image_id="", cmd=["sh"]),
                     host_config=HostConfig(network_mode="bridge", port_bindings=ports))


def test_port_publisher_alone(tmp_path: Path) -> None:
    state = State(EngineConfig(data_root=str(tmp_path)), MemoryStore())
    kernel, firewall = FakeKernel(), FakeFirewall()
    ports = PortPublisher(state, firewall, kernel, probe=lambda proto, ip, port: port != 8081)
    c = _container("a" * 64, {"53/udp": [{"HostIp": "", "HostPort": "8080-8082"}]})
    mappings = ports.publish(c, "172.17.0.2")
    assert [m.host_port for m in mappings] == [8080] and firewall.ports == set(mappings)
    c.state = ContainerState(status="running", ports=[m.to_dict() for m in mappings])
    state.containers[c.id] = c
    other = _container("b" * 64, {"53/udp": [{"HostIp": "", "HostPort": "8080-8082"}]})
    assert [m.host_port for m in ports.publish(other, "172.17.0.3")] == [8082]   # 8080 taken, 8081 probed busy
    ports.unpublish(mappings)
    assert not firewall.ports & set(mappings) and kernel.udp_ports_forgotten == [(8080, "ipv4")]


def test_name_service_alone(tmp_path: Path) -> None:
    state = State(EngineConfig(data_root=str(tmp_path)), MemoryStore())
    records, dns = Records(), FakeDns()

    class Driver:
        singleton = False

    names = NameService(state, records, dns, lambda net: Driver())  # type: ignore[arg-type, return-value]
    user = Network(id="n" * 64, name="web", driver="bridge", created="")
    default = Network(id="d" * 64, name="bridge", driver="bridge", created="")
    state.networks.update({user.id: user, default.id: default})
    c = _container("c" * 64, {})
    for net, ip in ((user, "10.0.0.2"), (default, "172.17.0.2")):
        ep = Endpoint(id=net.id[:1] * 64, network_id=net.id, container_id=c.id, ifname="eth0", host_ifname="",
                      ip=ip, prefixlen=24, gateway="", mac="")
        state.endpoints.setdefault(c.id, {})[net.id] = ep
        names.register(c, ep)
    assert names.dns_networks(c) == [user.id]          # the default bridge has no name resolution
    assert names.start_resolver(c, "/run/netns/x") and dns.served == {c.id: "/run/netns/x"}
    names.stop_resolver(c.id)
    assert dns.served == {}
