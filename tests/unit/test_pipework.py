"""``cove attach``'s request parsing (pure) and the CLI's request body."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from cove.errors import InvalidArgument
from cove.pipework import (ExtraInterface, check_ifname, check_vlan, first_free_ifname, parse_address,
                           parse_gateway, parse_request, split_ip_spec, to_json)


@pytest.mark.parametrize("spec, want", [
    ("192.168.1.150/24@192.168.1.1", ("192.168.1.150/24", "192.168.1.1")),
    ("192.168.1.150/24", ("192.168.1.150/24", "")),
    ("10.0.0.5/8@", ("10.0.0.5/8", "")),
])
def test_split_ip_spec(spec: str, want: tuple[str, str]) -> None:
    assert split_ip_spec(spec) == want


@pytest.mark.parametrize("text, want", [
    ("192.168.1.150/24", "192.168.1.150/24"),
    (" 10.1.2.3/8 ", "10.1.2.3/8"),
    ("192.168.1.7/32", "192.168.1.7/32"),
    ("192.168.1.0/31", "192.168.1.0/31"),       # RFC 3021: both addresses usable
])
def test_parse_address_accepts(text: str, want: str) -> None:
    assert parse_address(text) == IPv4Interface(want)


@pytest.mark.parametrize("text, reason", [
    ("", "required"),
    ("192.168.1.150", "prefix length"),
    ("192.168.1.150/", "prefix length must be"),
    ("192.168.1.150/0", "prefix length must be"),
    ("192.168.1.150/33", "prefix length must be"),
    ("192.168.1.150/x", "prefix length must be"),
    ("192.168.1.256/24", "not an IPv4 address"),
    ("fe80::1/64", "not an IPv4 address"),
    ("dhcp", "does not run DHCP"),
    ("192.168.1.0/24", "network address"),
    ("192.168.1.255/24", "broadcast address"),
    ("224.0.0.5/24", "unicast"),
    ("127.0.0.2/8", "unicast"),
    ("0.0.0.0/8", "unicast"),
])
def test_parse_address_refuses_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_address(text)
    assert err.value.message.startswith("invalid ip ") and reason in err.value.message


def test_parse_gateway() -> None:
    addr = IPv4Interface("192.168.1.150/24")
    assert parse_gateway("192.168.1.1", addr) == IPv4Address("192.168.1.1")
    for text, reason in (("10.0.0.1", "not in the prefix of the address (192.168.1.0/24)"),
                         ("192.168.1.150", "own address"), ("192.168.1.255", "broadcast"),
                         ("192.168.1.0", "network"), ("gw", "not an IPv4 address"), ("", "not an IPv4")):
        with pytest.raises(InvalidArgument) as err:
            parse_gateway(text, addr)
        assert err.value.message.startswith("invalid gateway ") and reason in err.value.message


def test_ifname_and_vlan_checks() -> None:
    assert check_ifname("eth1") == "eth1"
    assert check_ifname("a" * 15) == "a" * 15
    for bad in ("", "a" * 16, "eth/1", "eth 1", "eth:1", ".", ".."):
        with pytest.raises(InvalidArgument, match="invalid ifname"):
            check_ifname(bad)
    assert check_vlan(100) == 100 and check_vlan("4094") == 4094
    for bad in (0, 4095, -1, "x", True, 1.5, None):
        with pytest.raises(InvalidArgument, match="invalid vlan"):
            check_vlan(bad)


def test_first_free_ifname() -> None:
    assert first_free_ifname({"lo"}) == "eth0"
    assert first_free_ifname({"lo", "eth0"}) == "eth1"
    assert first_free_ifname({"lo", "eth0", "eth1", "eth3"}) == "eth2"


def test_parse_request_full_and_pipework_form() -> None:
    req = parse_request({"Bridge": "br0", "Address": "192.168.1.150/24", "Gateway": "192.168.1.1",
                         "MacAddress": "02-AA-BB-CC-DD-EE", "IfName": "eth1", "Vlan": 100})
    assert (req.bridge, str(req.address), str(req.gateway), req.mac, req.ifname, req.vlan) == \
        ("br0", "192.168.1.150/24", "192.168.1.1", "02:aa:bb:cc:dd:ee", "eth1", 100)
    req = parse_request({"Bridge": "br0", "Address": "192.168.1.150/24@192.168.1.1"})
    assert str(req.gateway) == "192.168.1.1" and req.mac is None and req.ifname is None and req.vlan is None
    req = parse_request({"Bridge": "ovs0", "Address": "10.0.0.2/24", "Vlan": 0})
    assert req.gateway is None and req.vlan is None


@pytest.mark.parametrize("body, field", [
    ({"Address": "192.168.1.150/24"}, "invalid bridge"),
    ({"Bridge": "a/b", "Address": "192.168.1.150/24"}, "invalid bridge"),
    ({"Bridge": "br0"}, "invalid ip"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24@192.168.1.1", "Gateway": "192.168.1.1"}, "invalid ip"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24@"}, "invalid gateway"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "Gateway": "10.0.0.1"}, "invalid gateway"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "MacAddress": "nope"}, "invalid mac 'nope'"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "MacAddress": "01:00:5e:00:00:01"}, "invalid mac"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "IfName": "x" * 16}, "invalid ifname"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "Vlan": 5000}, "invalid vlan"),
    ({"Bridge": "br0", "Address": "192.168.1.150/24", "Tag": 5}, "invalid field 'Tag'"),
])
def test_parse_request_refuses(body: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_request(body)
    assert err.value.message.startswith(field), err.value.message


def test_record_round_trip_and_json() -> None:
    x = ExtraInterface(id="f" * 64, container_id="c" * 64, ifname="eth1", host_ifname="vethfffffff",
                       bridge="ovs0", bridge_type="openvswitch", ip="10.0.0.2", prefixlen=24,
                       mac="02:00:00:00:00:01", vlan=100, previous_gateway="172.17.0.1")
    assert ExtraInterface.from_dict(x.to_dict()) == x
    assert x.alias == "cove:pw:" + "f" * 64
    j = to_json(x)
    assert (j["IfName"], j["BridgeType"], j["Vlan"], j["HostInterface"]) == ("eth1", "openvswitch", 100, "vethfffffff")


# -- the CLI, against test_cli's fake daemon ------------------------------------------------

from tests.unit.test_cli import FakeDaemon, cove, daemon, no_real_daemon, sockdir  # noqa: E402,F401


def test_cli_attach_and_detach_send_the_api_body(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/test1/interfaces", {"IfName": "eth1"}, 201)
    daemon.on("DELETE", "/containers/test1/interfaces/eth1", None, 204)
    result = cove("attach", "test1", "--bridge", "br0", "--ip", "192.168.1.150/24@192.168.1.1",
                  "--mac", "02:12:34:56:78:9a", "--ifname", "eth1", "--vlan", "100")
    assert result.exit_code == 0 and result.stdout == "eth1\n"
    assert cove("attach", "test1", "-b", "br0", "--ip", "10.0.0.2/24").exit_code == 0
    first, second = daemon.find("POST", "/containers/test1/interfaces")
    assert first.json == {"Bridge": "br0", "Address": "192.168.1.150/24", "Gateway": "192.168.1.1",
                          "MacAddress": "02:12:34:56:78:9a", "IfName": "eth1", "Vlan": 100}
    assert second.json == {"Bridge": "br0", "Address": "10.0.0.2/24"}
    assert cove("detach", "test1", "--ifname", "eth1").exit_code == 0
    assert len(daemon.find("DELETE", "/containers/test1/interfaces/eth1")) == 1


def test_cli_attach_reports_daemon_errors_and_usage(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/test1/interfaces", {"message": "invalid bridge 'br9': no such bridge"}, 404)
    result = cove("attach", "test1", "-b", "br9", "--ip", "10.0.0.2/24")
    assert result.exit_code == 1 and "Error response from daemon: invalid bridge 'br9'" in result.stderr
    assert cove("attach", "test1", "--ip", "10.0.0.2/24").exit_code != 0          # --bridge is required
    assert cove("attach", "test1", "-b", "br0", "--ip", "10.0.0.2/24@").exit_code != 0
    assert cove("detach", "test1").exit_code != 0                                 # --ifname is required
