"""The host-access link's address choice (pure: no kernel)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from cove.drivers.macvlan import _pick_shim_address
from cove.errors import InvalidArgument
from cove.ipam import parse_ipam_config


def test_the_shim_takes_the_top_of_the_ip_range() -> None:
    cfg = parse_ipam_config("192.168.241.0/24", "192.168.241.2", "192.168.241.64/26")
    assert _pick_shim_address(cfg) == IPv4Address("192.168.241.127")


def test_the_shim_skips_the_broadcast_the_gateway_and_aux_addresses() -> None:
    cfg = parse_ipam_config("10.1.0.0/24", "10.1.0.254", aux={"nas": "10.1.0.253"})
    assert _pick_shim_address(cfg) == IPv4Address("10.1.0.252")


def test_a_full_range_is_refused_naming_the_option() -> None:
    cfg = parse_ipam_config("10.1.0.0/24", "10.1.0.9", "10.1.0.8/31", {"a": "10.1.0.8"})
    with pytest.raises(InvalidArgument, match="host_access"):
        _pick_shim_address(cfg)


@pytest.mark.parametrize(("kind", "option"), [("ipvlan", "CONFIG_IPVLAN"), ("vlan", "CONFIG_VLAN_8021Q"),
                                              ("macvlan", "CONFIG_MACVLAN")])
def test_missing_link_kind_names_the_kernel_option(monkeypatch: pytest.MonkeyPatch, kind: str, option: str) -> None:
    from cove.errors import Unavailable
    from cove.kernel import features

    monkeypatch.setattr(features, "link_kinds", lambda: {kind: False})
    with pytest.raises(Unavailable, match=option):
        features.require(kind)
    monkeypatch.setattr(features, "link_kinds", lambda: {kind: True})
    features.require(kind)
