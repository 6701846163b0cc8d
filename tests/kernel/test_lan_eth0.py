"""The LAN drivers with a parent named ``eth0``, the usual name on real hosts, with real pings.

Debian 12's 6.1 kernel (and Ubuntu 22.04's, RHEL 9's) looks up the name of a link being
created in the *caller's* namespace even when the link is made inside another one (fixed in
2025 by "rtnetlink: Lookup device in target netns when creating link"). A driver that created
the container's link directly under its final name ``eth0`` therefore failed on such kernels
with ``create macvlan link eth0: File exists`` whenever the parent itself was ``eth0``. The
drivers create it under a temporary name and rename it inside the container's namespace.
Seen failing with that message on the 6.1 guest (qemu backend) before the fix: all four."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.integration.conftest import Daemon

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def cove(cove_lan: Daemon) -> Daemon:
    """One daemon on the guest's default firewall backend: these drivers add no firewall rule."""
    return cove_lan

PING = ["ping", "-c1", "-W1"] if shutil.which("ping") else ["busybox", "ping", "-c1", "-W1"]


def ip_in(cove: Daemon, name: str, net: str) -> str:
    return json.loads(cove.ok("inspect", name))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def ping(cove: Daemon, src: str, dst: str, tries: int = 2) -> bool:
    return any(cove.cli("exec", src, "ping", "-c1", "-W1", dst).returncode == 0 for _ in range(tries))


def router_ping(router: str, dst: str, tries: int = 2) -> bool:
    return any(subprocess.run(["ip", "netns", "exec", router, *PING, dst],
                              capture_output=True).returncode == 0 for _ in range(tries))


def links_in(cove: Daemon, name: str) -> str:
    return cove.ok("exec", name, "ip", "-o", "link")


def test_macvlan_on_a_parent_named_eth0(cove: Daemon, eth0_lan: str) -> None:
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=eth0", "mv0")
    try:
        cove.ok("run", "-d", "--name", "m1", "--network", "mv0", "--ip", "192.168.241.51", "bb", "sleep", "3600")
        cove.ok("run", "-d", "--name", "m2", "--network", "mv0", "--ip", "192.168.241.52", "bb", "sleep", "3600")
        assert ping(cove, "m1", "192.168.241.52")         # container to container on the LAN
        assert ping(cove, "m1", "192.168.241.2")          # container to the LAN's router
        assert router_ping(eth0_lan, "192.168.241.52")    # and the LAN reaches the container
        assert " eth0@" in links_in(cove, "m1")           # named eth0 inside, no temporary name left
    finally:
        cove.cli("rm", "-f", "m1", "m2")
        cove.cli("network", "rm", "mv0")


def test_macvlan_on_an_8021q_parent_eth0_20(cove: Daemon, eth0_lan: str) -> None:
    subprocess.run(["ip", "-n", eth0_lan, "link", "add", "link", "wire", "name", "wire.20", "type", "vlan",
                    "id", "20"], check=True)
    subprocess.run(["ip", "-n", eth0_lan, "addr", "add", "192.168.20.1/24", "dev", "wire.20"], check=True)
    subprocess.run(["ip", "-n", eth0_lan, "link", "set", "wire.20", "up"], check=True)
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.20.0/24", "--gateway", "192.168.20.1",
            "-o", "parent=eth0.20", "mv20")
    try:
        cove.ok("run", "-d", "--name", "v1", "--network", "mv20", "--ip", "192.168.20.11", "bb", "sleep", "3600")
        cove.ok("run", "-d", "--name", "v2", "--network", "mv20", "--ip", "192.168.20.12", "bb", "sleep", "3600")
        assert ping(cove, "v1", "192.168.20.12")
        assert ping(cove, "v1", "192.168.20.1")           # the router's VLAN 20 end, tagged frames
        assert router_ping(eth0_lan, "192.168.20.12")
        assert " eth0@" in links_in(cove, "v1")
    finally:
        cove.cli("rm", "-f", "v1", "v2")
        cove.cli("network", "rm", "mv20")
    assert "eth0.20" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_ipvlan_l2_on_a_parent_named_eth0(cove: Daemon, eth0_lan: str) -> None:
    cove.ok("network", "create", "-d", "ipvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=eth0", "-o", "ipvlan_mode=l2", "iv2")
    try:
        cove.ok("run", "-d", "--name", "i1", "--network", "iv2", "--ip", "192.168.241.61", "bb", "sleep", "3600")
        cove.ok("run", "-d", "--name", "i2", "--network", "iv2", "--ip", "192.168.241.62", "bb", "sleep", "3600")
        assert ping(cove, "i1", "192.168.241.62")
        assert ping(cove, "i1", "192.168.241.2")
        assert router_ping(eth0_lan, "192.168.241.62")
        parent_mac = open("/sys/class/net/eth0/address").read().strip()
        assert parent_mac in cove.ok("exec", "i1", "ip", "link", "show", "eth0")   # ipvlan: the parent's MAC
    finally:
        cove.cli("rm", "-f", "i1", "i2")
        cove.cli("network", "rm", "iv2")


def test_ipvlan_l3_on_a_parent_named_eth0(cove: Daemon, eth0_lan: str) -> None:
    cove.ok("network", "create", "-d", "ipvlan", "--subnet", "172.130.0.0/24", "--subnet", "172.131.0.0/24",
            "-o", "parent=eth0", "-o", "ipvlan_mode=l3", "iv3")
    try:
        cove.ok("run", "-d", "--name", "k1", "--network", "iv3", "--ip", "172.130.0.10", "bb", "sleep", "3600")
        cove.ok("run", "-d", "--name", "k2", "--network", "iv3", "--ip", "172.131.0.10", "bb", "sleep", "3600")
        assert "default dev eth0" in cove.ok("exec", "k1", "ip", "route")
        assert ping(cove, "k1", "172.131.0.10")           # routed between the two subnets by the parent
        # the LAN reaches them through a route via the parent's host (192.168.241.1)
        subprocess.run(["ip", "-n", eth0_lan, "route", "add", "172.130.0.0/24", "via", "192.168.241.1"], check=True)
        assert router_ping(eth0_lan, "172.130.0.10")
    finally:
        cove.cli("rm", "-f", "k1", "k2")
        cove.cli("network", "rm", "iv3")
