"""Published ports, as a user sees them: a port that answers (or not) from where it should.

The web server inside the containers is the host's own ``python3 -m http.server``
run through the built-in ``host`` image (its access log shows the client address).
The "LAN" is the ``outside`` namespace (203.0.113.2), wired to the sandbox host
(203.0.113.1).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request

import pytest

from .conftest import Daemon, firewall_text

pytestmark = pytest.mark.integration


def has_port(text: str, port: int) -> bool:
    """The port as a number in a rules listing (not inside a network id's hex digits)."""
    return re.search(rf"(?<![0-9a-f]){port}(?![0-9a-f])", text) is not None

WEB = ["host", "python3", "-m", "http.server", "80"]


def fetch(url: str, timeout: float = 3.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return None


def fetch_from(ns: str, url: str) -> bool:
    code = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=3).read()"
    return subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", code, url],
                          capture_output=True).returncode == 0


def wait_web(url: str) -> None:
    for _ in range(100):
        if fetch(url, 0.5) is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_publish_on_all_addresses_from_host_lan_and_loopback(cove: Daemon, outside: str) -> None:
    cove.ok("run", "-d", "--name", "web", "-p", "8080:80", *WEB)
    wait_web("http://127.0.0.1:8080/")
    assert fetch("http://203.0.113.1:8080/") is not None           # the host on its own address
    assert fetch_from(outside, "http://203.0.113.1:8080/")           # another host on the LAN
    # The container saw the LAN client's real address (no SNAT for traffic from other hosts).
    assert "203.0.113.2" in cove.ok("logs", "web") + cove.cli("logs", "web").stderr
    assert cove.ok("port", "web").strip() == "80/tcp -> 0.0.0.0:8080"
    ports = json.loads(cove.ok("inspect", "web"))[0]["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert "0.0.0.0:8080->80/tcp" in cove.ok("ps")


def test_loopback_binding_stays_local(cove: Daemon, outside: str) -> None:
    cove.ok("run", "-d", "--name", "local", "-p", "127.0.0.1:8081:80", *WEB)
    wait_web("http://127.0.0.1:8081/")
    assert fetch("http://203.0.113.1:8081/", 1) is None
    assert not fetch_from(outside, "http://203.0.113.1:8081/")
    # A crafted packet to 127.0.0.1 sent to the host's MAC from the LAN is not forwarded either.
    peer = subprocess.run(["ip", "-n", outside, "-o", "link"], capture_output=True, text=True).stdout
    dev = [line.split(": ")[1].split("@")[0] for line in peer.splitlines() if not line.split(": ")[1].startswith("lo")][0]
    added = subprocess.run(["ip", "-n", outside, "route", "add", "127.0.0.77/32", "via", "203.0.113.1", "dev", dev],
                           capture_output=True).returncode == 0
    if added:
        assert not fetch_from(outside, "http://127.0.0.77:8081/")
        assert not fetch_from(outside, "http://127.0.0.1:8081/")


def test_hairpin_and_other_containers_reach_a_published_port(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "web2", "-p", "8082:80", *WEB)
    wait_web("http://127.0.0.1:8082/")
    get = "import urllib.request; urllib.request.urlopen('http://172.17.0.1:8082/', timeout=3)"
    cove.ok("run", "-d", "--name", "client", "host", "sleep", "3600")
    out = cove.cli("exec", "client", "python3", "-c", get)
    assert out.returncode == 0, out.stderr    # a neighbour reaches it through the host's address
    own = cove.cli("exec", "web2", "python3", "-c", get)
    assert own.returncode == 0, own.stderr    # the container reaches itself through the host (hairpin)


def test_publish_all_ranges_and_udp(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "many", "-P", "--expose", "7777", "-p", "9000-9001:80-81", *WEB)
    bindings = json.loads(cove.ok("inspect", "many"))[0]["NetworkSettings"]["Ports"]
    assert bindings["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "9000"}]
    assert bindings["81/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "9001"}]
    (extra,) = bindings["7777/tcp"]                               # -P: exposed but not bound by -p
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert lo <= int(extra["HostPort"]) <= hi                     # from the kernel's ephemeral range
    wait_web("http://127.0.0.1:9000/")

    echo = ("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 53))\n"
            "while True:\n d, a = s.recvfrom(100); s.sendto(b'echo:' + d, a)")
    cove.ok("run", "-d", "--name", "udp", "-p", "5353:53/udp", "host", "python3", "-c", echo)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    got = None
    for _ in range(20):
        s.sendto(b"ping", ("127.0.0.1", 5353))
        try:
            got = s.recv(100)
            break
        except OSError:
            continue
    assert got == b"echo:ping"
    cove.ok("rm", "-f", "udp")
    left = subprocess.run(["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"], capture_output=True, text=True)
    assert "dport=5353" not in left.stdout


def test_conflicts_and_bad_specs_change_nothing(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "first", "-p", "8090:80", *WEB)
    before = cove.ok("ps", "-aq")
    r = cove.cli("run", "-d", "--name", "second", "-p", "8090:80", *WEB)
    assert r.returncode != 0 and "already allocated" in r.stderr
    assert cove.ok("ps", "-aq") == before

    listener = socket.socket()
    listener.bind(("0.0.0.0", 8095))
    listener.listen()
    try:
        r = cove.cli("run", "-d", "--name", "third", "-p", "8095:80", *WEB)
        assert r.returncode != 0 and "host process" in r.stderr
    finally:
        listener.close()

    for spec, word in [("0:80", "0"), ("70000:80", "70000"), ("8000-8002:80-81", "8000-8002"),
                       ("8000:80/icmp", "icmp"), ("10.9.9.9:8000:80", "10.9.9.9")]:
        r = cove.cli("run", "-d", "-p", spec, *WEB)
        assert r.returncode != 0, spec
        assert word in r.stderr and len(r.stderr.strip().splitlines()) == 1, (spec, r.stderr)


def test_removal_frees_the_port_and_its_rules(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "once", "-p", "8097:80", *WEB)
    wait_web("http://127.0.0.1:8097/")
    assert has_port(firewall_text(), 8097)
    cove.ok("rm", "-f", "once")
    assert not has_port(firewall_text(), 8097)
    assert fetch("http://127.0.0.1:8097/", 1) is None
    cove.ok("run", "-d", "--name", "again", "-p", "8097:80", *WEB)
    wait_web("http://127.0.0.1:8097/")


def test_a_flushed_firewall_is_restored_within_a_second(cove: Daemon, outside: str) -> None:
    cove.ok("run", "-d", "--name", "sturdy", "-p", "8099:80", *WEB)
    wait_web("http://127.0.0.1:8099/")
    if cove.firewall == "nftables":
        subprocess.run(["nft", "flush", "ruleset"], check=True)
    else:
        for table in ("filter", "nat", "raw"):
            subprocess.run(["iptables-legacy", "-t", table, "-F"], check=True)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not fetch_from(outside, "http://203.0.113.1:8099/"):
        time.sleep(0.1)
    assert fetch_from(outside, "http://203.0.113.1:8099/")
    assert "flushed by someone else" in open(cove.log).read()


def test_the_admin_hook_filters_published_ports(cove: Daemon, outside: str) -> None:
    cove.ok("run", "-d", "--name", "guarded", "-p", "8098:80", *WEB)
    wait_web("http://127.0.0.1:8098/")
    assert fetch_from(outside, "http://203.0.113.1:8098/")
    if cove.firewall == "nftables":
        add = ["nft", "add", "rule", "ip", "cove", "user", "ip", "saddr", "203.0.113.2", "drop"]
        undo = ["nft", "flush", "chain", "ip", "cove", "user"]
    else:
        add = ["iptables-legacy", "-A", "COVE-USER", "-s", "203.0.113.2", "-j", "DROP"]
        undo = ["iptables-legacy", "-F", "COVE-USER"]
    subprocess.run(add, check=True)
    try:
        assert not fetch_from(outside, "http://203.0.113.1:8098/")   # publishing does not bypass the admin
        cove.ok("run", "-d", "--name", "later", "-p", "8096:80", *WEB)  # nor does a port published afterwards
        wait_web("http://127.0.0.1:8096/")
        assert not fetch_from(outside, "http://203.0.113.1:8096/")
    finally:
        subprocess.run(undo, check=True)
    assert fetch_from(outside, "http://203.0.113.1:8098/")
