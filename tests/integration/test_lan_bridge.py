"""LAN access without NAT: a bridge holding a host NIC (seed 002), macvlan's host_access (seed 003).

The LAN is a veth pair: ``ens33`` in the sandbox host (192.168.1.10/24, default
route via 192.168.1.1, as in the seed) and ``wire`` in a ``router`` namespace
at 192.168.1.1.  Every check is what a user sees: pings, ``ip`` output.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Daemon

pytestmark = pytest.mark.integration

UPLINK = ["-o", "com.docker.network.bridge.name=br0", "-o", "cove.bridge.uplink=ens33",
          "--subnet", "192.168.1.0/24", "--gateway", "192.168.1.1", "--ip-range", "192.168.1.128/25"]


def sh(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


def ping(*where: str, target: str) -> bool:
    return subprocess.run([*where, "busybox", "ping", "-c1", "-W2", target], capture_output=True).returncode == 0


def host_state() -> dict[str, Any]:
    """The sandbox host's IPv4 addresses, masters and routes (all tables), without volatile fields."""
    links = {a["ifname"]: (a.get("master"),
                           sorted((i["local"], i["prefixlen"]) for i in a.get("addr_info", []) if i["family"] == "inet"))
             for a in json.loads(sh("ip", "-j", "addr"))}
    routes = sorted((r["dst"], r.get("gateway", ""), r.get("dev", ""), str(r.get("table", "main")),
                     r.get("protocol", ""), r.get("scope", ""), r.get("metric", 0), r.get("prefsrc", ""))
                    for r in json.loads(sh("ip", "-4", "-j", "route", "show", "table", "all")))
    return {"links": links, "routes": routes}


@pytest.fixture
def ens33() -> Iterator[str]:
    """``ens33`` = 192.168.1.10/24 with the default route via the router 192.168.1.1 (a namespace)."""
    router = f"router-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", router)
    try:
        sh("ip", "link", "add", "ens33", "type", "veth", "peer", "name", "wire", "netns", router)
        sh("ip", "addr", "add", "192.168.1.10/24", "dev", "ens33")
        sh("ip", "link", "set", "ens33", "up")
        sh("ip", "route", "add", "default", "via", "192.168.1.1", "dev", "ens33")
        sh("ip", "route", "add", "10.20.0.0/16", "via", "192.168.1.254", "dev", "ens33", "table", "100")
        sh("ip", "-n", router, "addr", "add", "192.168.1.1/24", "dev", "wire")
        sh("ip", "-n", router, "link", "set", "wire", "up")
        sh("ip", "-n", router, "link", "set", "lo", "up")
        yield router
    finally:
        for link in ("br0", "ens33", "brx", "ens34", "ens35", "mv0"):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        subprocess.run(["ip", "route", "flush", "table", "100"], capture_output=True)
        subprocess.run(["ip", "netns", "del", router], capture_output=True)


def test_nic_bridge_puts_containers_on_the_lan_and_gives_everything_back(cove: Daemon, ens33: str) -> None:
    before = host_state()
    cove.ok("network", "create", *UPLINK, "lan")
    # the host keeps its address, its default route (now on br0) and reaches the router
    assert json.loads(sh("ip", "-j", "link", "show", "ens33"))[0]["master"] == "br0"
    assert "192.168.1.10/24" in sh("ip", "-4", "-o", "addr", "show", "br0")
    assert sh("ip", "-4", "-o", "addr", "show", "ens33") == ""
    assert "default via 192.168.1.1 dev br0" in sh("ip", "route", "show", "default")
    assert "10.20.0.0/16 via 192.168.1.254 dev br0" in sh("ip", "route", "show", "table", "100")
    assert ping(target="192.168.1.1")
    net = json.loads(cove.ok("network", "inspect", "lan"))[0]
    assert net["IPAM"]["Config"][0]["AuxiliaryAddresses"] == {"cove-uplink-host": "192.168.1.10"}
    assert net["Cove"]["Uplink"] == "ens33" and net["Cove"]["Masquerade"] is False

    # a container is a host of the LAN: it reaches the router, and the router reaches it by its own address
    cove.ok("run", "-d", "--name", "onlan", "--network", "lan", "bb", "sleep", "3600")
    ip = json.loads(cove.ok("inspect", "onlan"))[0]["NetworkSettings"]["Networks"]["lan"]["IPAddress"]
    assert ip.startswith("192.168.1.") and int(ip.rsplit(".", 1)[1]) >= 128
    assert cove.cli("exec", "onlan", "ping", "-c1", "-W2", "192.168.1.1").returncode == 0
    assert ping("ip", "netns", "exec", ens33, target=ip)
    assert ping(target=ip)                                           # and the host reaches it
    # other networks still leave by the moved default route (masqueraded by their own rules)
    assert cove.cli("run", "--rm", "bb", "ping", "-c1", "-W2", "192.168.1.1").returncode == 0

    # a daemon restart neither undoes nor doubles anything
    during = host_state()
    cove.stop()
    cove.start()
    assert host_state() == during
    assert cove.cli("exec", "onlan", "ping", "-c1", "-W2", "192.168.1.1").returncode == 0

    cove.ok("rm", "-f", "onlan")
    # br0 deleted by hand while the daemon is down (ens33 is left with nothing): the next daemon
    # gives ens33 its addresses back and makes the same move again
    during = host_state()
    cove.stop()
    sh("ip", "link", "del", "br0")
    cove.start()
    assert host_state() == during
    cove.ok("network", "rm", "lan")
    assert host_state() == before
    assert "br0" not in sh("ip", "-o", "link")
    assert "default via 192.168.1.1 dev ens33" in sh("ip", "route", "show", "default")
    assert ping(target="192.168.1.1")


def test_nic_bridge_refusals_change_nothing(cove: Daemon, ens33: str) -> None:
    sh("ip", "link", "add", "ens34", "type", "veth", "peer", "name", "ens35")    # ens35: no address
    sh("ip", "link", "add", "brx", "type", "bridge")
    sh("ip", "link", "set", "ens34", "master", "brx")
    cases = [
        (["-o", "cove.bridge.uplink=nosuch0", "--subnet", "192.168.1.0/24"], "no such interface"),
        (["-o", "cove.bridge.uplink=ens34", "--subnet", "192.168.1.0/24"], "already enslaved to brx"),
        (["-o", "cove.bridge.uplink=ens35", "--subnet", "192.168.1.0/24"], "no IPv4 address"),
        (["-o", "cove.bridge.uplink=ens33", "--subnet", "10.99.0.0/24"], "not in the network's subnet"),
        ([*UPLINK, "--internal"], "internal"),
        ([*UPLINK, "-o", "com.docker.network.bridge.enable_ip_masquerade=true"], "must be false"),
    ]
    before = host_state()
    for args, why in cases:
        r = cove.cli("network", "create", *args, "bad")
        assert r.returncode != 0 and why in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
        assert host_state() == before
    # a multipath route through the NIC cannot be recorded faithfully: refused
    sh("ip", "route", "add", "10.55.0.0/16", "nexthop", "via", "192.168.1.1", "dev", "ens33",
       "nexthop", "via", "192.168.1.2", "dev", "ens33")
    before = host_state()
    r = cove.cli("network", "create", *UPLINK, "bad")
    assert r.returncode != 0 and "multipath" in r.stderr and host_state() == before
    sh("ip", "route", "del", "10.55.0.0/16")
    # a failure midway (the kernel refuses to enslave a NIC that has a macvlan on it) is rolled back
    sh("ip", "link", "add", "mv0", "link", "ens33", "type", "macvlan")
    before = host_state()
    r = cove.cli("network", "create", *UPLINK, "bad")
    assert r.returncode != 0 and host_state() == before, r.stderr
    assert "bad" not in cove.ok("network", "ls", "--format", "{{.Name}}").split()
    assert ping(target="192.168.1.1")


def test_macvlan_host_access_lets_the_host_reach_its_containers(cove: Daemon, lan: str) -> None:
    sh("ip", "addr", "add", "192.168.241.10/24", "dev", "lan0")       # the host is on the LAN by the parent
    subnet = ["--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2", "--ip-range", "192.168.241.64/26"]
    # without the option: Linux keeps the parent from reaching its macvlan children
    cove.ok("network", "create", "-d", "macvlan", *subnet, "-o", "parent=lan0", "plain")
    cove.ok("run", "-d", "--name", "c1", "--network", "plain", "bb", "sleep", "3600")
    ip1 = json.loads(cove.ok("inspect", "c1"))[0]["NetworkSettings"]["Networks"]["plain"]["IPAddress"]
    assert ping("ip", "netns", "exec", lan, target=ip1)          # the LAN reaches it...
    assert not ping(target=ip1)                                  # ...the host does not
    cove.ok("rm", "-f", "c1")
    cove.ok("network", "rm", "plain")

    routes_before = sh("ip", "-4", "route", "show", "table", "all")
    nid = cove.ok("network", "create", "-d", "macvlan", *subnet, "-o", "parent=lan0", "-o", "host_access=true",
                  "shimmed").strip()
    shim = f"cove-h{nid[:9]}"
    aux = json.loads(cove.ok("network", "inspect", "shimmed"))[0]["IPAM"]["Config"][0]["AuxiliaryAddresses"]
    assert aux == {"cove-host-access": "192.168.241.127"}
    assert "macvlan mode bridge" in sh("ip", "-d", "link", "show", shim)
    assert "192.168.241.127/32" in sh("ip", "-4", "-o", "addr", "show", shim)
    cove.ok("run", "-d", "--name", "c2", "--network", "shimmed", "bb", "sleep", "3600")
    ip2 = json.loads(cove.ok("inspect", "c2"))[0]["NetworkSettings"]["Networks"]["shimmed"]["IPAddress"]
    assert f"{ip2} dev {shim}" in sh("ip", "route", "show", f"{ip2}/32")
    assert ping(target=ip2)
    assert cove.cli("exec", "c2", "ping", "-c1", "-W2", "192.168.241.127").returncode == 0
    assert cove.cli("exec", "c2", "ping", "-c1", "-W2", "192.168.241.2").returncode == 0
    # the route is put back by reconcile if it went missing while the daemon was down
    cove.stop()
    sh("ip", "route", "del", f"{ip2}/32")
    cove.start()
    assert ping(target=ip2)
    cove.ok("rm", "-f", "c2")
    assert sh("ip", "route", "show", f"{ip2}/32") == ""
    cove.ok("network", "rm", "shimmed")
    assert shim not in sh("ip", "-o", "link")
    assert sh("ip", "-4", "route", "show", "table", "all") == routes_before


def test_macvlan_host_access_bad_values_are_refused(cove: Daemon, lan: str) -> None:
    # the names only: a link's flags and operstate may still change on their own (CI: an0 came up
    # LOWER_UP during the loop)
    def names() -> list[str]:
        return [line.split(":")[1].strip() for line in sh("ip", "-o", "link").splitlines()]

    links = names()
    for args, why in [
        (["-d", "macvlan", "-o", "host_access=maybe"], "must be true or false"),
        (["-d", "macvlan", "-o", "host_access=true", "-o", "macvlan_mode=private"], "needs macvlan_mode=bridge"),
        (["-d", "ipvlan", "-o", "host_access=true"], "only the macvlan driver"),
    ]:
        r = cove.cli("network", "create", *args, "-o", "parent=lan0", "--subnet", "192.168.241.0/24", "bad")
        assert r.returncode != 0 and "host_access" in r.stderr and why in r.stderr, r.stderr
    assert names() == links
