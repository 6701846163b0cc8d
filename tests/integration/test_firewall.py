"""The firewall backends against the real kernel, asserted with real traffic.

Each test builds, inside the sandbox namespace (playing the host)::

    c1, c1b ── covet1-<u> 10.201.1.1/24 ─┐
    c2      ── covet2-<u> 10.201.2.1/24 ─┤ host (ip_forward=1) 203.0.113.1 ── outside 203.0.113.2
                                          │                                   (no route back to 10.201/16
                                                                               unless a test adds one)

"containers" are network namespaces on a veth whose host end is a bridge port,
with a default route via their bridge's gateway.  Without a firewall the host
routes between everything (so a failing ping after a rule is added proves the
rule blocks it); a container reaches "outside" only through masquerade.  Every
test runs on both backends, drives the backend's Python API directly and ends
with ``teardown()``; the fixtures delete their namespaces and links even when
a test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from cove.firewall import Firewall, NetworkRules, available_backends, get_firewall

pytestmark = pytest.mark.integration

OUT, HOST_OUT = "203.0.113.2", "203.0.113.1"
BACKENDS = ["nftables", "iptables"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def net_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


@dataclass
class Topo:
    uid: str
    bridges: dict[str, str] = field(default_factory=dict)     # "1" -> bridge name
    ns: dict[str, str] = field(default_factory=dict)          # "c1", "c1b", "c2", "out" -> netns name
    ip: dict[str, str] = field(default_factory=dict)          # "c1" ... -> address
    links: list[str] = field(default_factory=list)            # host-side links to delete
    ids: dict[str, str] = field(default_factory=dict)         # "1" -> network id

    def net(self, n: str, **kw: bool) -> NetworkRules:
        return NetworkRules(id=self.ids[n], bridge=self.bridges[n], subnets=(f"10.201.{n}.0/24",), **kw)

    def ping(self, src: str, dst: str) -> bool:
        """One echo request from namespace ``src`` ("c1", "out", ...) to address ``dst``, as a fresh flow."""
        flush_conntrack()
        return sh("ip", "netns", "exec", self.ns[src], "busybox", "ping", "-c1", "-W1", dst,
                  check=False).returncode == 0

    def reaches(self, src: str, dst: str) -> bool:
        """A reply comes back (three tries: a slow kernel, e.g. UML, may miss a first ARP round)."""
        return any(self.ping(src, dst) for _ in range(3))

    def blocked(self, src: str, dst: str) -> bool:
        """No reply to one echo request.  (A lost reply could only hide a bug here, never fail a test;
        the tests show each path working before the rule that blocks it.)"""
        return not self.ping(src, dst)

    def route_outside(self) -> None:
        """Give "outside" a route to the container subnets via the host (as a LAN router might)."""
        sh("ip", "-n", self.ns["out"], "route", "add", "10.201.0.0/16", "via", HOST_OUT)


def flush_conntrack() -> None:
    if shutil.which("conntrack"):
        sh("conntrack", "-F", check=False)


def _container(t: Topo, name: str, bridge: str, addr: str, gw: str) -> None:
    ns = f"fw{name}-{t.uid}"
    host = f"v{name}-{t.uid}"
    sh("ip", "netns", "add", ns)
    t.ns[name] = ns
    sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
    t.links.append(host)
    sh("ip", "link", "set", host, "master", bridge, "up")
    sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "route", "add", "default", "via", gw)
    t.ip[name] = addr


@pytest.fixture
def topo() -> Iterator[Topo]:
    t = Topo(uid=uuid.uuid4().hex[:4])
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    try:
        for n in ("1", "2"):
            br = f"covet{n}-{t.uid}"
            sh("ip", "link", "add", br, "type", "bridge")
            t.links.append(br)
            sh("ip", "addr", "add", f"10.201.{n}.1/24", "dev", br)
            sh("ip", "link", "set", br, "up")
            t.bridges[n], t.ids[n] = br, net_id()
        _container(t, "c1", t.bridges["1"], "10.201.1.2", "10.201.1.1")
        _container(t, "c1b", t.bridges["1"], "10.201.1.3", "10.201.1.1")
        _container(t, "c2", t.bridges["2"], "10.201.2.2", "10.201.2.1")
        out, host = f"fwout-{t.uid}", f"vout-{t.uid}"
        sh("ip", "netns", "add", out)
        t.ns["out"] = out
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", out)
        t.links.append(host)
        sh("ip", "addr", "add", f"{HOST_OUT}/24", "dev", host)
        sh("ip", "link", "set", host, "up")
        sh("ip", "-n", out, "addr", "add", f"{OUT}/24", "dev", "eth0")
        sh("ip", "-n", out, "link", "set", "eth0", "up")
        sh("ip", "-n", out, "link", "set", "lo", "up")
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
        yield t
    finally:
        for ns in t.ns.values():
            sh("ip", "netns", "del", ns, check=False)
        for link in reversed(t.links):
            sh("ip", "link", "del", link, check=False)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(forward)
        flush_conntrack()


def clear_cove_rules() -> None:
    for name in BACKENDS:
        if name in available_backends():
            get_firewall(name).teardown()


@pytest.fixture(params=BACKENDS)
def fw(request: pytest.FixtureRequest) -> Iterator[Firewall]:
    if request.param not in available_backends():
        pytest.skip(f"the {request.param} backend does not work in this kernel")
    clear_cove_rules()
    f = get_firewall(request.param)
    f.setup()
    try:
        yield f
    finally:
        clear_cove_rules()


def ruleset() -> str:
    """Every rule in the sandbox, nftables and iptables-legacy alike."""
    text = sh("nft", "list", "ruleset", check=False).stdout
    for table in ("filter", "nat", "raw"):
        text += sh("iptables-legacy-save", "-t", table, check=False).stdout
    return text


def owned_objects(fw: Firewall) -> list[str]:
    """Every object of cove's in the kernel, one string each (nft: chains, rules, set elements;
    iptables: chain declarations and rule lines)."""
    if fw.name == "nftables":
        data = json.loads(sh("nft", "-j", "list", "table", "ip", "cove").stdout)["nftables"]
        out = []
        for obj in data:
            if "chain" in obj:
                out.append(f"chain {obj['chain']['name']}")
            elif "rule" in obj:
                r = obj["rule"]
                out.append(f"rule {r['chain']} {json.dumps(r['expr'], sort_keys=True)} {r.get('comment', '')}")
            for kind in ("set", "map"):
                if kind in obj:
                    out += [f"{kind} {obj[kind]['name']} {json.dumps(e, sort_keys=True)}"
                            for e in obj[kind].get("elem", [])]
        return out
    lines = []
    for table in ("filter", "nat", "raw"):
        lines += [f"{table} {ln}" for ln in sh("iptables-legacy-save", "-t", table).stdout.splitlines()
                  if ln.startswith("-A ") or ln.startswith(":COVE-")]
    return lines


# --- masquerade -----------------------------------------------------------------------

def test_masquerade_is_what_lets_a_container_reach_the_outside(fw: Firewall, topo: Topo) -> None:
    assert topo.blocked("c1", OUT)              # no rules: the outside has no route back
    fw.ensure_network(topo.net("1"))
    assert topo.reaches("c1", OUT)
    if shutil.which("conntrack"):                # the reply went to the host's address: source rewritten
        entries = sh("conntrack", "-L", "-p", "icmp", "--src", topo.ip["c1"], check=False).stdout
        assert f"dst={HOST_OUT}" in entries, entries
    fw.ensure_network(topo.net("1", masquerade=False))     # replaced in place
    assert topo.blocked("c1", OUT)
    fw.ensure_network(topo.net("1"))
    assert topo.reaches("c1", OUT)


# --- isolation ------------------------------------------------------------------------

def test_two_cove_bridges_are_isolated_both_ways(fw: Firewall, topo: Topo) -> None:
    assert topo.reaches("c1", topo.ip["c2"]) and topo.reaches("c2", topo.ip["c1"])   # the host routes them
    fw.ensure_network(topo.net("1"))
    fw.ensure_network(topo.net("2"))
    assert topo.blocked("c1", topo.ip["c2"])
    assert topo.blocked("c2", topo.ip["c1"])
    assert topo.reaches("c1", topo.ip["c1b"])       # same bridge: layer 2, not the firewall's business
    assert topo.reaches("c1", OUT) and topo.reaches("c2", OUT)


def test_internal_network_has_no_way_in_or_out(fw: Firewall, topo: Topo) -> None:
    topo.route_outside()
    assert topo.reaches("out", topo.ip["c1"])        # without rules the host forwards both ways
    fw.ensure_network(topo.net("1", internal=True))
    fw.ensure_network(topo.net("2"))
    assert topo.blocked("c1", OUT)
    assert topo.blocked("out", topo.ip["c1"])
    assert topo.blocked("c1", topo.ip["c2"]) and topo.blocked("c2", topo.ip["c1"])
    assert topo.reaches("c1", topo.ip["c1b"])        # neighbours on the internal bridge still talk
    assert topo.reaches("c2", OUT)                   # the other network is untouched


def test_outside_cannot_open_connections_into_a_bridge(fw: Firewall, topo: Topo) -> None:
    topo.route_outside()
    assert topo.reaches("out", topo.ip["c1"])
    fw.ensure_network(topo.net("1"))
    assert topo.blocked("out", topo.ip["c1"])    # a NEW connection from the LAN is dropped
    assert topo.reaches("c1", OUT)                   # the container's own connection works (masqueraded)
    fw.ensure_network(topo.net("1", masquerade=False))
    assert topo.reaches("c1", OUT)                   # unmasqueraded: the reply comes back as established
    assert topo.blocked("out", topo.ip["c1"])


def test_the_admin_hook_sees_traffic_into_bridges_first_and_survives_changes(fw: Firewall, topo: Topo) -> None:
    fw.ensure_network(topo.net("1"))
    assert topo.reaches("c1", OUT)
    if fw.name == "nftables":
        sh("nft", "add", "rule", "ip", "cove", "user", "ip", "saddr", OUT, "drop")
    else:
        sh("iptables-legacy", "-A", "COVE-USER", "-s", OUT, "-j", "DROP")
    assert topo.blocked("c1", OUT)               # the echo reply into the bridge met the admin's drop
    fw.setup()
    fw.ensure_network(topo.net("2"))
    fw.sync([topo.net("1"), topo.net("2")])
    assert topo.blocked("c1", OUT)               # cove never rewrites the admin's chain
    assert topo.reaches("c1", "10.201.1.1")


# --- life cycle -----------------------------------------------------------------------

def test_remove_network_removes_exactly_that_network(fw: Firewall, topo: Topo) -> None:
    fw.ensure_network(topo.net("1"))
    fw.ensure_network(topo.net("2"))
    fw.remove_network(topo.ids["1"])
    fw.remove_network(topo.ids["1"])              # idempotent
    assert topo.blocked("c1", OUT)               # its masquerade is gone
    assert topo.reaches("c2", OUT)                   # the other's rules still work
    text = ruleset()
    assert topo.ids["1"][:12] not in text and topo.ids["2"][:12] in text


def test_teardown_leaves_no_cove_table_or_chain(fw: Firewall, topo: Topo) -> None:
    fw.ensure_network(topo.net("1"))
    fw.ensure_network(topo.net("2", internal=True))
    fw.teardown()
    fw.teardown()                                 # idempotent
    if "nftables" in available_backends():
        assert "cove" not in sh("nft", "list", "tables").stdout
    for table in ("filter", "nat", "raw"):
        assert "COVE" not in sh("iptables-legacy-save", "-t", table).stdout
    assert topo.reaches("c1", topo.ip["c2"])         # nothing isolates the bridges any more


def test_sync_converges_after_a_restart(fw: Firewall, topo: Topo) -> None:
    stale = NetworkRules(id=net_id(), bridge=f"covet9-{topo.uid}", subnets=("10.209.0.0/24",))
    fw.ensure_network(topo.net("1", masquerade=False))
    fw.ensure_network(stale)
    again = get_firewall(fw.name)                 # a new process: knows nothing of the kernel's rules
    again.setup()
    again.sync([topo.net("1"), topo.net("2")])
    text = ruleset()
    assert stale.id[:12] not in text and stale.bridge not in text
    assert topo.ids["2"][:12] in text
    assert topo.reaches("c1", OUT) and topo.reaches("c2", OUT)
    assert topo.blocked("c1", topo.ip["c2"])
    before = Counter(owned_objects(again))
    again.sync([topo.net("1"), topo.net("2")])
    assert Counter(owned_objects(again)) == before


def test_a_new_process_adds_and_removes_without_disturbing_the_others(fw: Firewall, topo: Topo) -> None:
    fw.ensure_network(topo.net("1"))
    other = get_firewall(fw.name)                 # no sync: e.g. a tool, or a daemon mid-start
    other.setup()
    other.ensure_network(topo.net("2"))
    assert topo.reaches("c1", OUT) and topo.reaches("c2", OUT)
    assert topo.blocked("c1", topo.ip["c2"])
    other.remove_network(topo.ids["1"])           # a network this instance never wrote
    assert topo.blocked("c1", OUT)
    assert topo.reaches("c2", OUT)


TAMPER = {
    "nftables": [["nft", "flush", "ruleset"], ["nft", "flush", "chain", "ip", "cove", "forward"],
                 ["nft", "delete", "table", "ip", "cove"]],
    "iptables": [["iptables-legacy", "-F", "COVE-FORWARD"], ["iptables-legacy", "-F"],
                 ["iptables-legacy", "-t", "nat", "-F", "POSTROUTING"]],
}


def test_intact_notices_a_flush_and_setup_sync_repair_it(fw: Firewall, topo: Topo) -> None:
    nets = [topo.net("1"), topo.net("2")]
    fw.sync(nets)
    assert fw.intact()
    for cmd in TAMPER[fw.name]:
        sh(*cmd)
        assert not fw.intact(), cmd
        fw.setup()
        assert fw.intact(), cmd
        fw.sync(nets)
        assert topo.reaches("c1", OUT), cmd
        assert topo.blocked("c1", topo.ip["c2"]), cmd


# --- scale ----------------------------------------------------------------------------

def test_300_networks_then_one_removed_leaves_exactly_the_others(fw: Firewall, topo: Topo) -> None:
    nets = []
    for i in range(300):
        nid = net_id()
        nets.append(NetworkRules(id=nid, bridge=f"cs{nid[:12]}", subnets=(f"10.{100 + i // 256}.{i % 256}.0/24",),
                                 internal=i % 10 == 3, masquerade=i % 7 != 5))
    for n in nets:
        fw.ensure_network(n)
    fw.ensure_network(topo.net("1"))
    fw.ensure_network(topo.net("2"))
    before = owned_objects(fw)
    for victim in (nets[150], nets[153]):         # an ordinary and an internal network
        fw.remove_network(victim.id)
        after = owned_objects(fw)
        assert Counter(after) == Counter(o for o in before if victim.short not in o)
        assert len(after) < len(before)
        before = after
    shorts = {n.short for n in nets} - {nets[150].short, nets[153].short}
    present = {s for s in shorts if any(s in o for o in before)}
    assert present == shorts
    # replacing one network among 300 rewrites only its objects
    fw.ensure_network(replace(nets[0], masquerade=False))
    after = owned_objects(fw)
    assert Counter(o for o in after if nets[0].short not in o) == Counter(o for o in before if nets[0].short not in o)
    assert Counter(o for o in after if nets[0].short in o) != Counter(o for o in before if nets[0].short in o)
    # and the real networks among them still behave
    assert topo.reaches("c1", OUT) and topo.blocked("c1", topo.ip["c2"])
