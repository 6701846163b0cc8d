"""Overlay networks across three cove hosts on a three-member etcd cluster (clusterlab), real traffic.

What is observed: a network made on h1 is listed on h2/h3 with Scope "global"; a container on
h1 answers pings by name from containers on h2 and h3 (VXLAN over the underlay, no learning:
the FDB entries on h2 point at h1's address); a container on another network does not reach
it; a published port answers on its own host; two concurrent creates of one name: exactly one
wins with Docker's message; concurrent runs on three hosts get distinct addresses; ``network
rm`` is refused naming the host that has an endpoint; a daemon restart within the TTL keeps
the peers; etcd fully down: existing pings still work, an overlay create fails within 10 s in
one line, and works again once etcd is back; a host killed and cut off disappears (name, FDB
entry) from the others within TTL + 2 s.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .clusterlab import Host, Lab, MEMBERS, ok, registered_lab, sh, until

TTL = 10     # a daemon restart on a loaded machine takes 2-8 s: the TTL must leave room


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with registered_lab(3, TTL) as lab:
        yield lab




def ping(h: Host, container: str, target: str, wait: int = 2) -> bool:
    return h.cli("exec", container, "busybox", "ping", "-c1", f"-W{wait}", target).returncode == 0


def fdb(h: Host) -> str:
    return sh("bridge", "-n", h.name, "fdb", "show").stdout


def sleeper(h: Host, name: str, net: str, *extra: str) -> str:
    return ok(h, "run", "-d", "--name", name, "--network", net, *extra, "host", "sleep", "600")


@pytest.fixture(scope="module")
def ov(lab: Lab) -> str:
    h1, h2, h3 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "ov")
    sleeper(h1, "web", "ov", "--network-alias", "www")
    sleeper(h2, "cli2", "ov")
    sleeper(h3, "cli3", "ov")
    return "ov"


def test_the_network_is_global(lab: Lab, ov: str) -> None:
    for h in lab.hosts:
        nets = [json.loads(line) for line in ok(h, "network", "ls", "--format", "{{json .}}").splitlines()]
        row = next(n for n in nets if n["Name"] == "ov")
        assert row["Driver"] == "overlay" and row["Scope"] == "global"
    link = sh("ip", "-n", "h2", "-d", "link", "show", "vx-001000").stdout
    assert "vxlan id 4096" in link and "local 10.99.0.22" in link and "nolearning" in link
    assert "mtu 1450" in link and "dstport 4789" in link


def test_a_container_on_h1_is_pinged_by_name_from_h2_and_h3(lab: Lab, ov: str) -> None:
    h1, h2, h3 = lab.hosts
    until(lambda: ping(h2, "cli2", "web"), 10)
    assert ping(h3, "cli3", "web") and ping(h3, "cli3", "www") and ping(h1, "web", "cli3")
    # no learning, no flood: the entry for web's MAC on h2 was programmed, pointing at h1's VTEP
    assert "02:42:0a:0a:00:02 dev vx-001000 dst 10.99.0.21 self permanent" in fdb(h2)
    assert ping(h2, "cli2", "10.10.0.1")        # the gateway: h2's own bridge (anycast)


def test_other_networks_are_isolated(lab: Lab, ov: str) -> None:
    h2 = lab.hosts[1]
    ok(h2, "network", "create", "--subnet", "10.20.0.0/24", "iso")
    sleeper(h2, "outsider", "iso")
    until(lambda: ping(h2, "cli2", "web"), 10)
    assert not ping(h2, "outsider", "10.10.0.2", 1)
    assert not ping(h2, "outsider", "web", 1)          # and no name either


def test_a_published_port_answers_on_its_host(lab: Lab, ov: str) -> None:
    h1 = lab.hosts[0]
    ok(h1, "run", "-d", "--name", "httpd", "--network", "ov", "-p", "18080:8080", "host",
       "python3", "-m", "http.server", "8080")

    def get() -> bool:
        try:
            return urllib.request.urlopen("http://10.99.0.21:18080/", timeout=1).status == 200
        except OSError:
            return False

    until(get, 15)


def test_two_concurrent_creates_of_one_name(lab: Lab) -> None:
    h1, h2, h3 = lab.hosts
    with ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda h: h.cli("network", "create", "-d", "overlay", "race"), [h1, h2, h3]))
    assert sum(r.returncode == 0 for r in rs) == 1, [r.stderr for r in rs]
    for r in rs:
        if r.returncode:
            assert "network with name race already exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert len([e for e in lab.store().list("names/networks/") if e.key.endswith("/race")]) == 1
    ok(h1, "network", "rm", "race")


def test_addresses_are_unique_across_hosts_under_concurrent_runs(lab: Lab) -> None:
    h1, h2, h3 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.30.0.0/28", "small")
    jobs = [(h, f"r{h.name}{i}") for h in (h1, h2, h3) for i in range(4)]
    with ThreadPoolExecutor(6) as pool:
        rs = list(pool.map(lambda j: j[0].cli("run", "-d", "--name", j[1], "--network", "small", "host",
                                              "sleep", "600"), jobs))
    assert all(r.returncode == 0 for r in rs), [r.stderr for r in rs]
    ips = [str(e.value["ip"]) for e in lab.store().list("endpoints/") if e.value["ip"].startswith("10.30.0.")]
    assert len(ips) == 12 and len(set(ips)) == 12
    for h, name in jobs:
        ok(h, "rm", "-f", name)
    ok(h2, "network", "rm", "small")


def test_rm_is_refused_naming_the_host(lab: Lab) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    ok(h2, "network", "create", "-d", "overlay", "solo")
    until(lambda: h1.cli("network", "inspect", "solo").returncode == 0, 10)
    sleeper(h1, "lonely", "solo")
    r = h2.cli("network", "rm", "solo")
    assert r.returncode != 0 and "active endpoints" in r.stderr and "10.99.0.21" in r.stderr
    assert h2.cli("network", "inspect", "solo").returncode == 0        # nothing changed
    ok(h1, "rm", "-f", "lonely")
    ok(h2, "network", "rm", "solo")
    until(lambda: h1.cli("network", "inspect", "solo").returncode != 0, 10)   # gone everywhere


def test_a_restart_within_the_ttl_changes_nothing(lab: Lab, ov: str) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    until(lambda: ping(h2, "cli2", "web"), 10)
    before = fdb(h2)
    h1.kill()
    h1.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < TTL + 1:
        assert "dst 10.99.0.21" in fdb(h2), h1.log() + h2.log()
        time.sleep(0.2)
    assert ping(h2, "cli2", "web")
    assert [x for x in fdb(h2).splitlines() if "vx-" in x] == [x for x in before.splitlines() if "vx-" in x]


def test_etcd_down_keeps_traffic_and_fails_creates_fast(lab: Lab, ov: str) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    until(lambda: ping(h2, "cli2", "web"), 10)
    for m in MEMBERS:
        lab.stop_member(m)
    try:
        assert ping(h2, "cli2", "web")                    # static entries: the data path goes on
        t0 = time.monotonic()
        r = h1.cli("network", "create", "-d", "overlay", "while-down")
        took = time.monotonic() - t0
        assert r.returncode != 0 and took < 10, (took, r.stderr)
        assert "cluster store unavailable" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert ok(h1, "ps", "-q")                         # local commands answer
    finally:
        for m in MEMBERS:
            lab.start_member(m)
    until(lambda: h1.cli("network", "create", "-d", "overlay", "after").returncode == 0, 30)
    assert ping(h2, "cli2", "web")
    until(lambda: any(n == "after" for n in ok(h2, "network", "ls", "--format", "{{.Name}}").split()), 15)
    ok(h1, "network", "rm", "after")


SINK = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999))\n"
        "while True: print(s.recvfrom(100)[0].decode(), flush=True)")
SEND = ("import socket, sys, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for i in range(10): s.sendto(sys.argv[2].encode(), (sys.argv[1], 9999)); time.sleep(0.1)")


def test_vxlan_is_accepted_only_from_registered_hosts(lab: Lab, ov: str) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    ok(h1, "run", "-d", "--name", "sink", "--network", "ov", "host", "python3", "-u", "-c", SINK)
    ip = ok(h1, "inspect", "-f", "{{.NetworkSettings.Networks.ov.IPAddress}}", "sink")
    mac = ok(h1, "inspect", "-f", "{{.NetworkSettings.Networks.ov.MacAddress}}", "sink")
    sleeper(h2, "sender", "ov")
    until(lambda: ping(h2, "sender", "sink"), 10)
    ok(h2, "exec", "sender", "python3", "-c", SEND, ip, "from-h2")
    until(lambda: "from-h2" in ok(h1, "logs", "sink"), 5)               # a registered host gets through
    # a rogue VTEP on the underlay, not in hosts/: same VNI, static entries towards h1
    lab.plug("rogue", "10.99.0.99")
    try:
        for cmd in (["ip", "-n", "rogue", "link", "add", "vx0", "type", "vxlan", "id", "4096", "dstport", "4789",
                     "local", "10.99.0.99", "nolearning"],
                    ["ip", "-n", "rogue", "addr", "add", "10.10.0.99/24", "dev", "vx0"],
                    ["ip", "-n", "rogue", "link", "set", "vx0", "up"],
                    ["bridge", "-n", "rogue", "fdb", "append", mac, "dev", "vx0", "dst", "10.99.0.21", "self",
                     "permanent"],
                    ["ip", "-n", "rogue", "neigh", "replace", ip, "lladdr", mac, "dev", "vx0", "nud", "permanent"]):
            sh(*cmd)
        sh("ip", "netns", "exec", "rogue", "python3", "-c", SEND, ip, "from-rogue")
        time.sleep(0.5)
        assert "from-rogue" not in ok(h1, "logs", "sink")
        rules = sh("ip", "netns", "exec", "h1", "nft", "list", "table", "ip", "cove-vxlan").stdout
        assert "10.99.0.22" in rules and "10.99.0.99" not in rules
    finally:
        sh("ip", "netns", "del", "rogue", check=False)
        for h, c in ((h1, "sink"), (h2, "sender")):
            h.cli("rm", "-f", c)


def test_a_partitioned_host_joins_again_when_it_comes_back(lab: Lab, ov: str) -> None:
    # h2 is cut off from the underlay for longer than the TTL while its daemon lives on: the others
    # forget it with its lease; when the link is back, h2 takes a new lease and puts its host record
    # and its endpoints back, and the others reach its container by name again
    h1, h2 = lab.hosts[0], lab.hosts[1]
    until(lambda: ping(h1, "web", "cli2"), 15)
    until(lambda: "dst 10.99.0.22" in fdb(h1), 10)
    sh("ip", "link", "set", "v-h2", "down")
    try:
        until(lambda: "dst 10.99.0.22" not in fdb(h1), TTL + 2 + 1)
        assert not ping(h1, "web", "cli2", wait=1)
    finally:
        sh("ip", "link", "set", "v-h2", "up")
    until(lambda: len(lab.store().list("hosts/")) == 3, TTL + 10)     # h2's record is back
    until(lambda: "dst 10.99.0.22" in fdb(h1), 15)
    until(lambda: ping(h1, "web", "cli2"), 10)
    assert ping(h2, "cli2", "web")


def test_a_killed_host_disappears_within_ttl(lab: Lab, ov: str) -> None:
    h1, h2, h3 = lab.hosts
    until(lambda: ping(h1, "web", "cli3"), 15)
    until(lambda: "dst 10.99.0.23" in fdb(h1), 10)
    h3.kill()
    sh("ip", "link", "set", "v-h3", "down")
    try:
        gone = until(lambda: "dst 10.99.0.23" not in fdb(h1) and "dst 10.99.0.23" not in fdb(h2), TTL + 2 + 1)
        assert gone > 0.5                                   # by lease expiry, not at once
        r = h1.cli("exec", "web", "busybox", "nslookup", "cli3", "127.0.0.11")
        assert "10.10.0." not in r.stdout.split("127.0.0.11")[-1]
        assert ping(h1, "web", "cli2")                     # the others stay
    finally:
        sh("ip", "link", "set", "v-h3", "up")
        h3.start()          # so that the lab removes its containers at the end
