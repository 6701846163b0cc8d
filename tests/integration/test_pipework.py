"""``cove attach`` / ``cove detach``: pipework's extra interface on a Linux bridge, with real traffic.

The LAN is a Linux bridge ``br0`` in the sandbox host (the admin's, not cove's) with a
``peer`` namespace on it at 192.168.1.1/24, playing the seed article's router. A running
container gets 192.168.1.150/24 on br0 and its default route via 192.168.1.1, as
``pipework br0 test1 192.168.1.150/24@192.168.1.1`` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from .conftest import Daemon, sandbox_links

pytestmark = pytest.mark.integration

PING = ["ping", "-c1", "-W1"] if shutil.which("ping") else ["busybox", "ping", "-c1", "-W1"]
MAC = "02:12:34:56:78:9a"


def sh(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


@pytest.fixture
def lan() -> Iterator[str]:
    """``br0`` in the sandbox host with a ``peer`` namespace on it at 192.168.1.1/24."""
    peer = f"peer-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", peer)
    try:
        sh("ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "link", "set", "br0", "up")
        sh("ip", "link", "add", "lanport", "type", "veth", "peer", "name", "lan", "netns", peer)
        sh("ip", "link", "set", "lanport", "master", "br0", "up")
        sh("ip", "-n", peer, "addr", "add", "192.168.1.1/24", "dev", "lan")
        sh("ip", "-n", peer, "link", "set", "lan", "up")
        sh("ip", "-n", peer, "link", "set", "lo", "up")
        yield peer
    finally:
        subprocess.run(["ip", "link", "del", "lanport"], capture_output=True)
        subprocess.run(["ip", "link", "del", "br0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", peer], capture_output=True)


def peer_pings(peer: str, addr: str, tries: int = 1) -> bool:
    return any(subprocess.run(["ip", "netns", "exec", peer, *PING, addr], capture_output=True).returncode == 0
               for _ in range(tries))


def extra(cove: Daemon, name: str) -> dict:
    return json.loads(cove.ok("inspect", name))[0]["NetworkSettings"]["ExtraInterfaces"]


def tagged_links() -> str:
    return subprocess.run(["ip", "-d", "-o", "link"], capture_output=True, text=True).stdout


def test_attach_puts_a_running_container_on_the_lan_and_detach_takes_it_off(cove: Daemon, lan: str) -> None:
    cove.ok("run", "-d", "--name", "test1", "bb", "sleep", "3600")
    out = cove.ok("attach", "test1", "--bridge", "br0", "--ip", "192.168.1.150/24@192.168.1.1", "--mac", MAC)
    assert out.strip() == "eth1"                     # eth0 is the default bridge's: the first free ethN
    assert peer_pings(lan, "192.168.1.150", tries=3)          # the LAN reaches the container
    assert cove.cli("exec", "test1", "ping", "-c1", "-W1", "192.168.1.1").returncode == 0
    routes = cove.ok("nsenter", "--net", "test1", "--", "ip", "route")
    assert "default via 192.168.1.1 dev eth1" in routes       # pipework's @GW replaces the default route
    neigh = sh("ip", "-n", lan, "neigh", "show", "192.168.1.150")
    assert MAC in neigh                                        # the LAN sees the MAC asked for
    x = extra(cove, "test1")["eth1"]
    assert (x["Bridge"], x["BridgeType"], x["IPAddress"], x["IPPrefixLen"], x["Gateway"], x["MacAddress"]) == \
        ("br0", "linux", "192.168.1.150", 24, "192.168.1.1", MAC)
    assert "master br0" in sh("ip", "-o", "link", "show", x["HostInterface"])

    # a daemon restart keeps the live interface and deletes a tagged veth no record owns
    cove.stop()
    sh("ip", "link", "add", "vethorphan", "type", "veth", "peer", "name", "vethorphan2")
    sh("ip", "link", "set", "vethorphan", "alias", "cove:pw:" + "0" * 64)
    cove.start()
    assert "vethorphan" not in sandbox_links() and x["HostInterface"] in sandbox_links()
    assert extra(cove, "test1")["eth1"] == x
    assert peer_pings(lan, "192.168.1.150", tries=3)

    cove.ok("detach", "test1", "--ifname", "eth1")
    assert not peer_pings(lan, "192.168.1.150")
    assert x["HostInterface"] not in sandbox_links()
    assert "eth1" not in cove.ok("nsenter", "test1", "--", "ip", "-o", "link")
    assert "default via 172.17.0.1 dev eth0" in cove.ok("nsenter", "test1", "--", "ip", "route")   # put back
    assert extra(cove, "test1") == {}
    r = cove.cli("detach", "test1", "--ifname", "eth1")
    assert r.returncode != 0 and "eth1" in r.stderr

    # attached again with a random MAC and a chosen name, then removed with the container
    assert cove.ok("attach", "test1", "-b", "br0", "--ip", "192.168.1.150/24", "--ifname", "lan9").strip() == "lan9"
    y = extra(cove, "test1")["lan9"]
    assert int(y["MacAddress"].split(":")[0], 16) & 0x03 == 0x02        # locally administered, unicast
    assert peer_pings(lan, "192.168.1.150", tries=3)    # the gratuitous ARP updated the LAN's cache
    cove.ok("rm", "-f", "test1")
    assert y["HostInterface"] not in sandbox_links()
    assert "cove:pw:" not in tagged_links()
    assert not peer_pings(lan, "192.168.1.150")


def test_attach_errors_name_the_field_and_change_nothing(cove: Daemon, lan: str) -> None:
    cove.ok("run", "-d", "--name", "test1", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "test2", "bb", "sleep", "3600")
    cove.ok("create", "--name", "idle", "bb", "sleep", "3600")
    cove.ok("attach", "test2", "--bridge", "br0", "--ip", "192.168.1.160/24")
    test1_ip = json.loads(cove.ok("inspect", "test1"))[0]["NetworkSettings"]["IPAddress"]

    def snapshot() -> tuple:
        links = cove.ok("nsenter", "test1", "--", "ip", "-o", "link").splitlines()
        names = {line.split(": ")[1].split("@")[0] for line in links}
        return (sandbox_links(), names, cove.ok("nsenter", "test1", "--", "ip", "-4", "-o", "addr"),
                cove.ok("nsenter", "test1", "--", "ip", "route"), extra(cove, "test1"), extra(cove, "test2"))

    before = snapshot()
    cases = [
        (["test1", "-b", "nosuch0", "--ip", "192.168.1.151/24"], "bridge 'nosuch0'"),
        (["test1", "-b", "lanport", "--ip", "192.168.1.151/24"], "bridge 'lanport'"),   # a veth, not a bridge
        (["idle", "-b", "br0", "--ip", "192.168.1.151/24"], "not running"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151"], "prefix length"),
        (["test1", "-b", "br0", "--ip", "192.168.1.300/24"], "ip '192.168.1.300/24'"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/33"], "ip '192.168.1.151/33'"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24@10.0.0.1"], "gateway '10.0.0.1': not in the prefix"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24@192.168.1.151"], "gateway '192.168.1.151'"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24@bogus"], "gateway 'bogus'"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--ifname", "eth0"], "ifname 'eth0'"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--ifname", "way-too-long-name"], "ifname"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--mac", "02:42:zz:00:00:01"], "mac '02:42:zz"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--mac", "01:00:5e:00:00:01"], "multicast"),
        (["test1", "-b", "br0", "--ip", "192.168.1.160/24"], "already used on bridge br0 by container test2"),
        (["test1", "-b", "cove0", "--ip", f"{test1_ip}/16"], "already used on bridge cove0 by container test1"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--vlan", "100"], "vlan 100"),
        (["test1", "-b", "br0", "--ip", "192.168.1.151/24", "--vlan", "5000"], "vlan 5000"),
    ]
    for args, expect in cases:
        r = cove.cli("attach", *args)
        assert r.returncode != 0, f"cove attach {' '.join(args)} succeeded"
        assert expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert snapshot() == before
    r = cove.cli("detach", "test1", "--ifname", "eth0")      # cove's own endpoint is not attach's to remove
    assert r.returncode != 0 and "ifname 'eth0'" in r.stderr
    assert snapshot() == before
