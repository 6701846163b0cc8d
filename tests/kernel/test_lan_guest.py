"""The LAN drivers this machine's kernel lacks, in a guest kernel, with real traffic:
ipvlan L2 and L3, macvlan on an 802.1q parent (VLANs 20 and 30 isolated). Cove's bridge
isolation on each firewall backend the guest has is in test_firewall_guest.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import Daemon

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def cove(cove_lan: Daemon) -> Daemon:
    """One daemon on the guest's default firewall backend: these drivers add no firewall rule."""
    return cove_lan


def ip_in(cove: Daemon, name: str, net: str) -> str:
    return json.loads(cove.ok("inspect", name))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def ping(cove: Daemon, src: str, dst: str) -> bool:
    return cove.cli("exec", src, "ping", "-c1", "-W1", dst).returncode == 0


def test_ipvlan_l2_shares_the_parents_mac_and_subnet(cove: Daemon, lan: str) -> None:
    cove.ok("network", "create", "-d", "ipvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=lan0", "-o", "ipvlan_mode=l2", "subway")
    cove.ok("run", "-d", "--name", "a", "--network", "subway", "--ip", "192.168.241.92", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "b", "--network", "subway", "--ip", "192.168.241.93", "bb", "sleep", "3600")
    assert ping(cove, "a", "192.168.241.93")
    assert ping(cove, "a", "192.168.241.2")          # the LAN's router
    parent_mac = open("/sys/class/net/lan0/address").read().strip()
    assert parent_mac in cove.ok("exec", "a", "ip", "link", "show", "eth0")
    cove.ok("rm", "-f", "a", "b")
    cove.ok("network", "rm", "subway")


def test_ipvlan_l3_routes_between_subnets_without_a_gateway(cove: Daemon, lan: str) -> None:
    cove.ok("network", "create", "-d", "ipvlan", "--subnet", "172.120.0.0/24", "--subnet", "172.121.0.0/24",
            "-o", "parent=lan0", "-o", "ipvlan_mode=l3", "ipvlanl3")
    cove.ok("run", "-d", "--name", "l3a", "--network", "ipvlanl3", "--ip", "172.120.0.10", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "l3b", "--network", "ipvlanl3", "--ip", "172.121.0.10", "bb", "sleep", "3600")
    assert "default dev eth0" in cove.ok("exec", "l3a", "ip", "route")
    assert ping(cove, "l3a", "172.121.0.10")
    # the outside reaches them once it has a route to their subnets through the parent's host
    cove.ok("rm", "-f", "l3a", "l3b")
    cove.ok("network", "rm", "ipvlanl3")


def test_macvlan_on_8021q_parents_isolates_vlans(cove: Daemon, lan: str) -> None:
    # the router side: VLAN 20 and 30 sub-interfaces on its end of the wire; it does not route
    subprocess.run(["ip", "netns", "exec", lan, "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    for vid, addr in ((20, "192.168.20.1/24"), (30, "192.168.30.1/24")):
        subprocess.run(["ip", "-n", lan, "link", "add", "link", "wire", "name", f"wire.{vid}", "type", "vlan",
                        "id", str(vid)], check=True)
        subprocess.run(["ip", "-n", lan, "addr", "add", addr, "dev", f"wire.{vid}"], check=True)
        subprocess.run(["ip", "-n", lan, "link", "set", f"wire.{vid}", "up"], check=True)
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.20.0/24", "--gateway", "192.168.20.1",
            "-o", "parent=lan0.20", "macvlan20")
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.30.0/24", "--gateway", "192.168.30.1",
            "-o", "parent=lan0.30", "macvlan30")
    assert "lan0.20" in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    cove.ok("run", "-d", "--name", "v20", "--network", "macvlan20", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "v30", "--network", "macvlan30", "bb", "sleep", "3600")
    assert ping(cove, "v20", "192.168.20.1") and ping(cove, "v30", "192.168.30.1")
    v30 = ip_in(cove, "v30", "macvlan30")
    assert not ping(cove, "v20", v30)           # other VLAN: no layer-2 path, and the router does not route
    # not even when v20 is told the address is on its own segment: 802.1q keeps the frames apart
    cove.cli("exec", "v20", "ip", "route", "add", v30, "dev", "eth0")
    assert not ping(cove, "v20", v30)
    cove.ok("rm", "-f", "v20", "v30")
    cove.ok("network", "rm", "macvlan20", "macvlan30")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "lan0.20" not in links and "lan0.30" not in links    # cove made them, cove removed them
