"""Stored records carry a version; records written before versioning (and by older coves) still load."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from cove.daemon.schema import network_json
from cove.errors import CoveError
from cove.ipam import IpamConfig
from cove.model import RECORD_VERSION, Container, Endpoint, Network
from cove.pipework import ExtraInterface

#: a network as the store held it before versioning (and before IPv6 and uplinks: no last_ip6, host_changes)
OLD_NETWORK = {"id": "n" * 64, "name": "web", "driver": "bridge", "created": "2026-01-02T03:04:05.000000Z",
               "ipam": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}], "internal": False,
               "attachable": False, "ipv6": False, "options": {}, "labels": {}, "bridge": "br-nnnnnnnnnnnn",
               "icc": True, "masquerade": True, "mtu": 0, "last_ip": "10.1.0.7"}
OLD_CONTAINER = {"id": "c" * 64, "name": "db", "created": "2026-01-02T03:04:05.000000Z",
                 "config": {"image": "busybox", "image_id": "sha256:" + "a" * 64, "cmd": ["sh"]},
                 "host_config": {"network_mode": "web"},
                 "networks": {"n" * 64: {"ip": None, "aliases": ["database"], "mac": None, "links": []}},
                 "state": {"status": "exited", "pid": 0, "exit_code": 3}}
OLD_ENDPOINT = {"id": "e" * 64, "network_id": "n" * 64, "container_id": "c" * 64, "ifname": "eth0",
                "host_ifname": "veth1234567", "ip": "10.1.0.7", "prefixlen": 24, "gateway": "10.1.0.1",
                "mac": "02:42:0a:01:00:07"}
OLD_EXTRA = {"id": "x" * 64, "container_id": "c" * 64, "ifname": "eth1", "host_ifname": "vethabcdefg",
             "bridge": "br0", "bridge_type": "linux", "ip": "192.168.1.5", "prefixlen": 24,
             "mac": "02:00:00:00:00:05"}


def test_old_records_load() -> None:
    net = Network.from_dict(OLD_NETWORK)
    assert (net.name, net.last_ip, net.last_ip6, net.host_changes) == ("web", "10.1.0.7", None, {})
    c = Container.from_dict(OLD_CONTAINER)
    assert c.networks["n" * 64].aliases == ["database"] and c.networks["n" * 64].ip6 is None
    assert c.state.exit_code == 3 and c.state.ports == [] and c.restart_count == 0
    ep = Endpoint.from_dict(OLD_ENDPOINT)
    assert (ep.ip, ep.ip6) == ("10.1.0.7", "")
    x = ExtraInterface.from_dict(OLD_EXTRA)
    assert (x.gateway, x.vlan) == ("", 0)


@pytest.mark.parametrize("cls,old", [(Network, OLD_NETWORK), (Container, OLD_CONTAINER),
                                     (Endpoint, OLD_ENDPOINT), (ExtraInterface, OLD_EXTRA)])
def test_records_are_stored_with_their_version_and_round_trip(cls: type, old: dict[str, object]) -> None:
    record = cls.from_dict(old)
    stored = record.to_dict()
    assert stored["version"] == RECORD_VERSION
    assert cls.from_dict(stored) == record


def test_a_record_from_a_newer_cove_is_refused_by_name() -> None:
    with pytest.raises(CoveError, match="newer cove"):
        Network.from_dict({**OLD_NETWORK, "version": RECORD_VERSION + 1})


#: a network as cove stored it at record version 1: ``ipam`` held Docker's wire dicts
V1_NETWORK = {**OLD_NETWORK, "version": 1, "name": "lan", "last_ip6": "fd00:1::5", "ipv6": True,
              "ipam": [{"Subnet": "10.9.0.0/16", "IPRange": "10.9.5.0/24", "Gateway": "10.9.5.254",
                        "AuxiliaryAddresses": {"nas": "10.9.0.2", "cove-host": "10.9.0.3"}},
                       {"Subnet": "fd00:1::/64"}]}


def test_a_version_1_network_with_docker_wire_dicts_loads_as_typed_configs() -> None:
    net = Network.from_dict(V1_NETWORK)
    assert net.ipam[0] == IpamConfig(ip_network("10.9.0.0/16"), ip_address("10.9.5.254"), ip_network("10.9.5.0/24"),
                                     {"nas": ip_address("10.9.0.2"), "cove-host": ip_address("10.9.0.3")})
    assert net.ipam[1] == IpamConfig(ip_network("fd00:1::/64"))
    assert ([c.version for c in net.ipam_v4()], [c.version for c in net.ipam_v6()]) == ([4], [6])
    stored = net.to_dict()
    assert stored["version"] == RECORD_VERSION and Network.from_dict(stored) == net
    assert "Subnet" not in str(stored["ipam"])        # the store holds cove's own shape now


def test_inspect_shows_a_version_1_network_exactly_as_it_was_stored() -> None:
    """``network inspect``'s IPAM.Config is Docker's shape, the same dicts the old record held."""
    net = Network.from_dict(V1_NETWORK)

    class NoEndpoints:
        containers: dict[str, object] = {}

        def endpoints_on(self, net_id: str) -> list[object]:
            return []

    config = network_json(NoEndpoints(), net)["IPAM"]["Config"]  # type: ignore[arg-type]
    assert config == V1_NETWORK["ipam"]
    assert [list(c) for c in config] == [list(c) for c in V1_NETWORK["ipam"]]   # Docker's key order too
