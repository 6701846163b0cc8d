"""IPv6 on bridge networks (``network create --ipv6``) and ports published on IPv6 host addresses.

What a user sees: containers on an IPv6 network reach each other over IPv6 by
address and by name (AAAA from the embedded resolver), not a container on
another network; a port published on ``[ADDR]``, on ``[::]`` or on no address
answers a LAN host over IPv6 and the container sees that host's address;
``[::1]`` and ``--ip6`` without IPv6 are refused in one line; removing
everything leaves no IPv6 rule or address behind.  The "LAN" is a namespace
wired to the sandbox host, 2001:db8:6::2 <-> 2001:db8:6::1.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from .conftest import Daemon

pytestmark = pytest.mark.integration


def has_port(text: str, port: int) -> bool:
    """The port as a number in a rules listing (not inside a network id's hex digits)."""
    return re.search(rf"(?<![0-9a-f]){port}(?![0-9a-f])", text) is not None

LAN_HOST, LAN_PEER = "2001:db8:6::1", "2001:db8:6::2"
WEB = ["host", "python3", "-m", "http.server", "--bind", "::", "80"]


def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True)


@pytest.fixture
def lan6() -> Iterator[str]:
    """A namespace playing a LAN host at 2001:db8:6::2, linked to the sandbox host's 2001:db8:6::1.

    It has no route to any container subnet: a container reaches it only through masquerade.
    """
    name = f"lan6-{uuid.uuid4().hex[:6]}"
    hv, pv = f"h{name}"[:15], f"p{name}"[:15]
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", name)
    try:
        run("ip", "link", "add", hv, "type", "veth", "peer", "name", pv, "netns", name)
        run("ip", "addr", "add", f"{LAN_HOST}/64", "dev", hv, "nodad")
        run("ip", "link", "set", hv, "up")
        run("ip", "-n", name, "addr", "add", f"{LAN_PEER}/64", "dev", pv, "nodad")
        run("ip", "-n", name, "link", "set", pv, "up")
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", hv], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def fetch_from(ns: str, url: str, tries: int = 60) -> bool:
    code = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=3).read()"
    for _ in range(tries):
        if sh("ip", "netns", "exec", ns, "python3", "-c", code, url).returncode == 0:
            return True
        time.sleep(0.1)
    return False


def v6_rules() -> str:
    return sh("nft", "list", "table", "ip6", "cove").stdout + "".join(
        sh("ip6tables-legacy-save", "-t", t).stdout for t in ("filter", "nat", "raw"))


def test_containers_reach_each_other_over_ipv6_by_address_and_name(cove: Daemon) -> None:
    cove.ok("network", "create", "--ipv6", "--subnet", "172.30.0.0/16", "--subnet", "fd00:30::/64", "v6net")
    net = json.loads(cove.ok("network", "inspect", "v6net"))[0]
    assert net["EnableIPv6"] is True
    assert net["IPAM"]["Config"] == [{"Subnet": "172.30.0.0/16", "Gateway": "172.30.0.1"},
                                     {"Subnet": "fd00:30::/64"}]          # Docker 20.10's shape
    cove.ok("run", "-d", "--name", "a6", "--network", "v6net", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "b6", "--network", "v6net", "--ip6", "fd00:30::b", "bb", "sleep", "3600")
    a = json.loads(cove.ok("inspect", "a6"))[0]["NetworkSettings"]["Networks"]["v6net"]
    assert (a["GlobalIPv6Address"], a["GlobalIPv6PrefixLen"], a["IPv6Gateway"]) == ("fd00:30::2", 64, "fd00:30::1")
    members = json.loads(cove.ok("network", "inspect", "v6net"))[0]["Containers"].values()
    assert sorted(m["IPv6Address"] for m in members) == ["fd00:30::2/64", "fd00:30::b/64"]
    assert "fd00:30::2\t" in cove.ok("exec", "a6", "cat", "/etc/hosts")

    assert cove.cli("exec", "a6", "ping", "-6", "-c1", "-W3", "fd00:30::b").returncode == 0
    assert cove.cli("exec", "a6", "ping", "-6", "-c1", "-W3", "fd00:30::1").returncode == 0   # the gateway
    assert "fd00:30::b" in cove.ok("exec", "a6", "nslookup", "-type=AAAA", "b6")
    assert cove.cli("exec", "a6", "ping", "-6", "-c1", "-W3", "b6").returncode == 0           # by name, AAAA

    # A third network, IPv6 too, is isolated from the first over IPv6 as over IPv4.
    cove.ok("network", "create", "--ipv6", "--subnet", "fd00:31::/64", "other6")
    cove.ok("run", "-d", "--name", "c6", "--network", "other6", "bb", "sleep", "3600")
    c_ip6 = json.loads(cove.ok("inspect", "c6"))[0]["NetworkSettings"]["Networks"]["other6"]["GlobalIPv6Address"]
    assert c_ip6 == "fd00:31::2"
    assert cove.cli("exec", "c6", "ping", "-6", "-c1", "-W3", "fd00:31::1").returncode == 0
    assert cove.cli("exec", "a6", "ping", "-6", "-c1", "-W2", c_ip6).returncode != 0
    assert cove.cli("exec", "c6", "ping", "-6", "-c1", "-W2", "fd00:30::b").returncode != 0


def test_ports_published_on_ipv6_answer_a_lan_host(cove: Daemon, lan6: str) -> None:
    cove.ok("network", "create", "--ipv6", "--subnet", "fd00:32::/64", "pub6")
    cove.ok("run", "-d", "--name", "w6", "--network", "pub6", "-p", f"[{LAN_HOST}]:8086:80",
            "-p", "[::]:8087:80", "-p", "8088:80", *WEB)
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8086/")
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8087/")
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8088/")        # no host address: IPv6 too, as Docker
    logs = cove.ok("logs", "w6") + cove.cli("logs", "w6").stderr
    assert LAN_PEER in logs                                       # the container saw the LAN host's address
    ports = json.loads(cove.ok("inspect", "w6"))[0]["NetworkSettings"]["Ports"]["80/tcp"]
    assert {"HostIp": LAN_HOST, "HostPort": "8086"} in ports and {"HostIp": "::", "HostPort": "8087"} in ports
    assert {"HostIp": "0.0.0.0", "HostPort": "8088"} in ports and {"HostIp": "::", "HostPort": "8088"} in ports

    # Egress from a unique local subnet is masqueraded: the LAN host has no route back to fd00:32::/64.
    cove.ok("run", "-d", "--name", "out6", "--network", "pub6", "bb", "sleep", "3600")
    assert cove.cli("exec", "out6", "ping", "-6", "-c1", "-W3", LAN_PEER).returncode == 0
    # --internal holds for IPv6 too.
    cove.ok("network", "create", "--internal", "--ipv6", "--subnet", "fd00:33::/64", "int6")
    cove.ok("run", "-d", "--name", "in6", "--network", "int6", "bb", "sleep", "3600")
    assert cove.cli("exec", "in6", "ping", "-6", "-c1", "-W2", LAN_PEER).returncode != 0


def test_refusals_are_one_line_and_change_nothing(cove: Daemon) -> None:
    cove.ok("network", "create", "v4only")
    cove.ok("network", "create", "--ipv6", "--subnet", "fd00:34::/64", "ref6")
    before = cove.ok("ps", "-aq")
    cases = [
        (["run", "-d", "--network", "ref6", "-p", "[::1]:8089:80", *WEB], "route_localnet"),
        (["run", "-d", "--network", "v4only", "--ip6", "fd00:34::9", "bb", "sleep", "1"], "has no IPv6"),
        (["run", "-d", "--network", "v4only", "-p", f"[{LAN_HOST}]:8090:80", *WEB], "no IPv6 address"),
        (["network", "create", "--ipv6", "nosubnet6"], "IPv6 --subnet"),
    ]
    for args, reason in cases:
        r = cove.cli(*args)
        assert r.returncode != 0, args
        assert reason in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert cove.ok("ps", "-aq") == before
    names = cove.ok("network", "ls", "--format", "{{.Name}}").split()
    assert "nosubnet6" not in names
    cove.ok("run", "-d", "--name", "plain", "--network", "ref6", "bb", "sleep", "3600")
    r = cove.cli("network", "connect", "--ip6", "fd00:34::9", "v4only", "plain")
    assert r.returncode != 0 and "has no IPv6" in r.stderr


def test_removing_everything_leaves_no_ipv6_rules_or_addresses(cove: Daemon, lan6: str) -> None:
    cove.ok("network", "create", "--ipv6", "--subnet", "fd00:36::/64", "gone6")
    net_id = cove.ok("network", "inspect", "-f", "{{.Id}}", "gone6").strip()
    cove.ok("run", "-d", "--name", "g6", "--network", "gone6", "-p", f"[{LAN_HOST}]:8091:80", *WEB)
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8091/")
    assert net_id[:12] in v6_rules() and "fd00:36::" in v6_rules()
    assert "fd00:36::1/64" in sh("ip", "-6", "addr").stdout
    cove.ok("rm", "-f", "g6")
    # the port as a number, not inside a network id's hex digits
    assert not has_port(v6_rules(), 8091)
    cove.ok("network", "rm", "gone6")
    assert net_id[:12] not in v6_rules() and "fd00:36::" not in v6_rules()
    assert "fd00:36::" not in sh("ip", "-6", "addr").stdout
    assert not fetch_from(lan6, f"http://[{LAN_HOST}]:8091/", tries=1)


def test_flushed_ipv6_rules_are_restored(cove: Daemon, lan6: str) -> None:
    cove.ok("network", "create", "--ipv6", "--subnet", "fd00:37::/64", "flush6")
    cove.ok("run", "-d", "--name", "f6", "--network", "flush6", "-p", f"[{LAN_HOST}]:8092:80", *WEB)
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8092/")
    if cove.firewall == "nftables":
        flush = ["nft", "flush", "table", "ip6", "cove"]          # only the IPv6 table: the guard must see it
    else:
        flush = ["ip6tables-legacy", "-t", "nat", "-F"]
    assert sh(*flush).returncode == 0
    deadline = time.monotonic() + 30
    while not has_port(v6_rules(), 8092) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert has_port(v6_rules(), 8092)
    assert fetch_from(lan6, f"http://[{LAN_HOST}]:8092/")
