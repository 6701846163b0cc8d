"""macvlan (and the kernel-feature errors of ipvlan / 802.1q on this kernel), with real traffic.

The "LAN" is a veth pair: ``lan0`` in the sandbox host is the parent NIC (the
seed's ens33), its peer sits in a ``router`` namespace at 192.168.241.2, the
seed's gateway.  Containers get their own MAC and address on that segment.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from cove.kernel import features

from .conftest import Daemon

pytestmark = pytest.mark.integration


def test_macvlan_puts_containers_on_the_lan(cove: Daemon, lan: str) -> None:
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=lan0", "subway")
    cove.ok("run", "-d", "--name", "milk", "--network", "subway", "--ip", "192.168.241.92", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "tea", "--network", "subway", "--ip", "192.168.241.96", "bb", "sleep", "3600")
    milk = json.loads(cove.ok("inspect", "milk"))[0]["NetworkSettings"]["Networks"]["subway"]
    assert milk["IPAddress"] == "192.168.241.92" and milk["Gateway"] == "192.168.241.2"
    link = cove.ok("nsenter", "milk", "--", "ip", "-d", "-o", "link", "show", "eth0")   # the host's iproute2
    assert "macvlan mode bridge" in link and milk["MacAddress"].lower() in link.lower()
    # the gateway on the LAN answers, and containers reach each other (bridge mode), by name too
    assert cove.cli("exec", "milk", "ping", "-c1", "-W1", "192.168.241.2").returncode == 0
    assert cove.cli("exec", "milk", "ping", "-c1", "-W1", "tea").returncode == 0
    # the LAN saw the container's own MAC for its own address: no NAT, no bridge on the way
    neigh = subprocess.run(["ip", "-n", lan, "neigh"], capture_output=True, text=True).stdout
    assert "192.168.241.92" in neigh and milk["MacAddress"].lower() in neigh.lower()
    cove.ok("rm", "-f", "milk", "tea")
    cove.ok("network", "rm", "subway")


def test_macvlan_bad_parent_and_overlap_are_refused(cove: Daemon, lan: str) -> None:
    r = cove.cli("network", "create", "-d", "macvlan", "--subnet", "192.168.9.0/24", "-o", "parent=nosuch0", "x1")
    assert r.returncode != 0 and "nosuch0" in r.stderr
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "-o", "parent=lan0", "m1")
    r = cove.cli("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/25", "-o", "parent=lan0", "m2")
    assert r.returncode != 0 and "overlaps" in r.stderr
    r = cove.cli("network", "create", "-d", "macvlan", "-o", "macvlan_mode=weird", "-o", "parent=lan0", "m3")
    assert r.returncode != 0 and "macvlan_mode" in r.stderr


@pytest.mark.parametrize(("kind", "option", "args"), [
    ("ipvlan", "CONFIG_IPVLAN", ("-d", "ipvlan", "--subnet", "10.77.1.0/24", "-o", "parent=lan0", "iv")),
    ("vlan", "CONFIG_VLAN_8021Q", ("-d", "macvlan", "--subnet", "10.77.2.0/24", "-o", "parent=lan0.20", "v20")),
])
def test_kernel_features_missing_are_named_and_change_nothing(cove: Daemon, lan: str, kind: str, option: str,
                                                              args: tuple[str, ...]) -> None:
    # Runs on every kernel (it used to skip wherever ipvlan exists): without the feature the
    # refusal names the kernel option and changes nothing; with it the same command works and the
    # network goes away cleanly. The refusal's text is also unit-tested on any kernel
    # (tests/unit/test_lan_options.py::test_missing_link_kind_names_the_kernel_option).
    before = cove.ok("network", "ls", "-q")
    r = cove.cli("network", "create", *args)
    if features.link_kinds().get(kind, False):
        assert r.returncode == 0, r.stderr
        cove.ok("network", "rm", args[-1])
    else:
        assert r.returncode != 0 and option in r.stderr, r.stderr
    assert cove.ok("network", "ls", "-q") == before
