from __future__ import annotations

import pytest

from cove import portmap
from cove.errors import Conflict, InvalidArgument
from cove.portmap import PortMapping, PortRequest


def free(proto: str, ip: str, port: int) -> bool:
    return True


def test_requests_read_dockers_shape_and_publish_all() -> None:
    reqs = portmap.requests({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1"}]},
                            {"80/tcp": {}, "443/tcp": {}}, publish_all=True)
    assert PortRequest("tcp", 80, "0.0.0.0", (8080, 8080), dual=True) in reqs
    assert PortRequest("udp", 53, "127.0.0.1", None) in reqs
    assert PortRequest("tcp", 443, "0.0.0.0", None, dual=True) in reqs
    assert len(reqs) == 3


@pytest.mark.parametrize("bindings, word", [
    ({"0/tcp": [{}]}, "0"), ({"80/icmp": [{}]}, "icmp"), ({"80/tcp": [{"HostPort": "70000"}]}, "70000"),
    ({"80/tcp": [{"HostPort": "90-80"}]}, "90-80"), ({"80/tcp": [{"HostIp": "nope"}]}, "nope"),
])
def test_bad_specs_name_the_spec(bindings, word) -> None:
    with pytest.raises(InvalidArgument) as e:
        portmap.requests(bindings, {}, False)
    assert word in str(e.value)


def test_ipv6_loopback_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidArgument) as e:
        portmap.requests({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}, {}, False)
    assert "[::1]:8080:80/tcp" in str(e.value) and "route_localnet" in str(e.value)
    assert "\n" not in str(e.value)


def test_ipv6_host_addresses_in_brackets_are_read() -> None:
    reqs = portmap.requests({"80/tcp": [{"HostIp": "[2001:db8::1]", "HostPort": "8080"}, {"HostIp": "::"}],
                             "53/udp": [{"HostIp": "2001:DB8::1", "HostPort": "5353"}]}, {}, False)
    assert reqs == [PortRequest("tcp", 80, "2001:db8::1", (8080, 8080)), PortRequest("tcp", 80, "::", None),
                    PortRequest("udp", 53, "2001:db8::1", (5353, 5353))]


def test_ipv6_binding_needs_a_container_with_ipv6() -> None:
    reqs = portmap.requests({"80/tcp": [{"HostIp": "2001:db8::1", "HostPort": "8080"}]}, {}, False)
    with pytest.raises(InvalidArgument, match=r"\[2001:db8::1\]:8080:80/tcp: the container has no IPv6 address"):
        portmap.allocate(reqs, "172.17.0.2", [], free, (40000, 40010), ["2001:db8::1"])
    out = portmap.allocate(reqs, "172.17.0.2", [], free, (40000, 40010), ["2001:db8::1"], "fd00::2")
    assert out == [PortMapping("tcp", "2001:db8::1", 8080, "fd00::2", 80)]
    with pytest.raises(InvalidArgument, match="not an address of this host"):
        portmap.allocate(reqs, "172.17.0.2", [], free, (40000, 40010), ["2001:db8::2"], "fd00::2")


def test_unspecified_host_address_also_publishes_on_ipv6_with_the_same_port() -> None:
    reqs = portmap.requests({"80/tcp": [{"HostPort": "8000-8005"}]}, {}, False)
    taken = [PortMapping("tcp", "::", 8000, "fd00::9", 80)]           # :::8000 is held: both families move on
    out = portmap.allocate(reqs, "172.18.0.2", taken, free, (40000, 40010), [], "fd00::2")
    assert out == [PortMapping("tcp", "0.0.0.0", 8001, "172.18.0.2", 80), PortMapping("tcp", "::", 8001, "fd00::2", 80)]
    only4 = portmap.allocate(reqs, "172.18.0.2", taken, free, (40000, 40010), [])
    assert only4 == [PortMapping("tcp", "0.0.0.0", 8000, "172.18.0.2", 80)]    # no IPv6: "::" does not clash


def test_families_do_not_clash_but_wildcards_do() -> None:
    assert portmap.overlap("::", "2001:db8::1") and portmap.overlap("0.0.0.0", "10.0.0.1")
    assert not portmap.overlap("0.0.0.0", "::") and not portmap.overlap("0.0.0.0", "2001:db8::1")
    assert not portmap.overlap("2001:db8::1", "2001:db8::2")


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
