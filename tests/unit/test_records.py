"""Stored records carry a version; records written before versioning (and by older coves) still load."""

from __future__ import annotations

import pytest

from cove.errors import CoveError
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
