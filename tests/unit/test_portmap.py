from __future__ import annotations

import pytest

from cove import portmap
from cove.errors import Conflict, InvalidArgument, NotImplementedByCove
from cove.portmap import PortMapping, PortRequest


def free(proto: str, ip: str, port: int) -> bool:
    return True


def test_requests_read_dockers_shape_and_publish_all() -> None:
    reqs = portmap.requests({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1"}]},
                            {"80/tcp": {}, "443/tcp": {}}, publish_all=True)
    assert PortRequest("tcp", 80, "0.0.0.0", (8080, 8080)) in reqs
    assert PortRequest("udp", 53, "127.0.0.1", None) in reqs
    assert PortRequest("tcp", 443, "0.0.0.0", None) in reqs
    assert len(reqs) == 3


@pytest.mark.parametrize("bindings, word", [
    ({"0/tcp": [{}]}, "0"), ({"80/icmp": [{}]}, "icmp"), ({"80/tcp": [{"HostPort": "70000"}]}, "70000"),
    ({"80/tcp": [{"HostPort": "90-80"}]}, "90-80"), ({"80/tcp": [{"HostIp": "nope"}]}, "nope"),
])
def test_bad_specs_name_the_spec(bindings, word) -> None:
    with pytest.raises(InvalidArgument) as e:
        portmap.requests(bindings, {}, False)
    assert word in str(e.value)


def test_ipv6_host_address_is_refused_clearly() -> None:
    with pytest.raises(NotImplementedByCove):
        portmap.requests({"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}, {}, False)


def test_allocate_fixed_range_and_ephemeral() -> None:
    reqs = [PortRequest("tcp", 80, "0.0.0.0", (8080, 8080)), PortRequest("tcp", 81, "0.0.0.0", (9000, 9005)),
            PortRequest("udp", 53, "0.0.0.0", None)]
    taken = [PortMapping("tcp", "10.0.0.1", 9000, "172.17.0.9", 80)]
    out = portmap.allocate(reqs, "172.17.0.2", taken, free, (40000, 40010), ["10.0.0.1"])
    assert [m.host_port for m in out] == [8080, 9001, 40000]
    assert all(m.container_ip == "172.17.0.2" for m in out)


def test_any_address_overlaps_every_address() -> None:
    taken = [PortMapping("tcp", "0.0.0.0", 8080, "172.17.0.9", 80)]
    with pytest.raises(Conflict, match="already allocated"):
        portmap.allocate([PortRequest("tcp", 80, "127.0.0.1", (8080, 8080))], "172.17.0.2", taken, free,
                         (40000, 40010), ["127.0.0.1"])
    # another protocol on the same number is fine
    out = portmap.allocate([PortRequest("udp", 80, "127.0.0.1", (8080, 8080))], "172.17.0.2", taken, free,
                           (40000, 40010), ["127.0.0.1"])
    assert out[0].host_port == 8080


def test_host_listener_and_foreign_address_are_refused() -> None:
    with pytest.raises(Conflict, match="host process"):
        portmap.allocate([PortRequest("tcp", 80, "0.0.0.0", (22, 22))], "172.17.0.2", [],
                         lambda p, i, n: n != 22, (40000, 40010), [])
    with pytest.raises(InvalidArgument, match="not an address of this host"):
        portmap.allocate([PortRequest("tcp", 80, "192.0.2.7", (80, 80))], "172.17.0.2", [], free, (1, 2), ["10.0.0.1"])


def test_docker_shapes_for_inspect_and_ps() -> None:
    m = [PortMapping("tcp", "0.0.0.0", 8080, "172.17.0.2", 80)]
    assert portmap.docker_ports(m, {"80/tcp": {}, "443/tcp": {}}) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}
    assert portmap.ps_ports(m, {"443/tcp": {}}) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}]
