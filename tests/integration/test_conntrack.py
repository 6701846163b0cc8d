"""A released address's conntrack flows are gone (in both directions, IPv4 and IPv6);
other flows stay.  The kernel's own table, over ctnetlink (cove.kernel.conntrack)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest
from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from cove.kernel.linux import LinuxKernel

pytestmark = pytest.mark.integration

FLOWS = [  # (family, original source, original destination, udp source port)
    (socket.AF_INET, "10.79.0.5", "10.79.1.1", 4001),      # started by the released address
    (socket.AF_INET, "10.79.1.2", "10.79.0.5", 4002),      # to it: reply source is it
    (socket.AF_INET, "10.79.0.6", "10.79.1.1", 4003),      # another container: stays
    (socket.AF_INET6, "fd79::5", "fd79:1::1", 4004),
    (socket.AF_INET6, "fd79:1::2", "fd79:0:0:0::5", 4005),  # another spelling of fd79::5
    (socket.AF_INET6, "fd79::6", "fd79:1::1", 4006),
]


def present() -> set[int]:
    ports = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        with Conntrack(nfgen_family=family) as ct:
            for entry in ct.dump_entries(tuple_orig=NFCTAttrTuple(family=family, proto=17)):
                ports.add(entry.tuple_orig.sport)
    return ports


@pytest.fixture
def flows() -> Iterator[None]:
    subprocess.run(["modprobe", "nf_conntrack_netlink"], check=False, capture_output=True)
    for family, src, dst, sport in FLOWS:
        with Conntrack(nfgen_family=family) as ct:
            ct.entry("add", timeout=120,
                     tuple_orig=NFCTAttrTuple(family=family, saddr=src, daddr=dst, proto=17,
                                              sport=sport, dport=53),
                     tuple_reply=NFCTAttrTuple(family=family, saddr=dst, daddr=src, proto=17,
                                               sport=53, dport=sport))
    try:
        yield
    finally:
        for family in (socket.AF_INET, socket.AF_INET6):
            with Conntrack(nfgen_family=family) as ct:
                ct.flush()


def test_released_addresses_lose_their_flows_only(flows: None) -> None:
    assert present() == {4001, 4002, 4003, 4004, 4005, 4006}
    kernel = LinuxKernel()
    try:
        kernel.forget_flows("10.79.0.5", "fd79::5")
        assert present() == {4003, 4006}
        kernel.forget_udp_port(53, "ipv4")
        assert present() == {4006}
        kernel.forget_flows("10.79.9.9")         # nothing of it: nothing changes
        assert present() == {4006}
    finally:
        kernel.close()
