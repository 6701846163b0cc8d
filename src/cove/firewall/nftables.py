"""The nftables backend: tables ``ip cove`` and ``ip6 cove``, written through libnftables' JSON API.

Layout (``nft list table ip cove``)::

    set bridges        { type ifname }                 every cove bridge
    map from_bridge    { type ifname : verdict }       bridge -> jump from-<id12>
    map to_bridge      { type ifname : verdict }       bridge -> jump to-<id12>
    map masq           { type ipv4_addr : verdict; flags interval }  subnet -> jump nat-<id12>
    chain forward      { hook forward }   oifname @bridges jump user
                                          iifname vmap @from_bridge
                                          oifname vmap @to_bridge
                                          [forward_drop: iifkind "bridge" oifkind "bridge" accept;
                                           drop]   what touches no cove bridge (bridge to bridge
                                           passes: frames an admin's bridge switches meet this
                                           hook when br_netfilter is loaded)
    chain postrouting  { hook postrouting, nat }  ip saddr 127.0.0.0/8 oifname @bridges masquerade
                                                  ip saddr vmap @masq
    chain user         { }                the admin's hook (Docker's DOCKER-USER): every packet
                                          forwarded into a cove bridge jumps here first; cove
                                          creates it empty and never writes into it
    chain from-<id12>  oifname <bridge> accept; [not internal: ct status dnat accept];
                       oifname @bridges drop; [internal: drop]; accept
    chain to-<id12>    [internal: drop]; iifname @bridges drop;
                       ct state established,related accept; ct status dnat accept; drop
    chain nat-<id12>   oifname != <bridge> masquerade         (egress)
                       oifname <bridge> ct status dnat masquerade   (hairpin)
    map pub_any_<p>    { type inet_service : ipv4_addr . inet_service }       -p PORT:CPORT, every address
    map pub_ip_<p>     { type ipv4_addr . inet_service : ipv4_addr . inet_service }   -p IP:PORT:CPORT
    chain prerouting   { hook prerouting, nat }  ip daddr 127.0.0.0/8 return;
                       fib daddr type local dnat via @pub_any_<p>, @pub_ip_<p>   (p = tcp, udp, sctp)
    chain output       { hook output, nat }      the same, for the host's own connections (127.0.0.1 too)
    chain raw          { hook prerouting, raw }  iifname @bridges ip daddr 127.0.0.0/8 drop

``table ip6 cove`` has the same layout for IPv6 (``masq`` of type ipv6_addr; no
127.0.0.0/8 masquerade rule, since ``[::1]`` cannot be published): every network
has its from-/to- chains there too, so isolation and ``--internal`` hold for
IPv6; an ``--ipv6`` network adds its IPv6 subnets to ``masq``, and its nat-<id12>
chain masquerades egress only from unique local subnets (``ip6 saddr fd00:../64
oifname != <bridge> masquerade``; global prefixes are routed, not NATed); ports
published on an IPv6 host address or on ``::`` are elements of its pub_* maps.

Publishing a port is one map element, whatever the number of ports.
Adding or removing a network is a fixed number of objects (three chains and a
few map elements) whatever the number of networks, built without reading the
table back (see :class:`NftablesFirewall`), and each change is one libnftables
transaction, so it lands whole or not at all.  (libnftables 1.0.6 still loads
the table's chain and set names before each command: some microseconds per
network, the only cost that grows with their number.)  Every rule of a
network carries the comment ``cove network <id>``; its chains are named by the
id's first 12 hex digits.  Accepts here do not
override drops in other tables (nftables evaluates every base chain).  The
only drop that concerns traffic of no cove bridge is the ``forward`` chain's
last rule, present when cove turned IP forwarding on (see
:attr:`NftablesFirewall.forward_drop`; ``ip-forward-no-drop`` removes it).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Sequence
from typing import Any

from ..errors import CoveError, Unavailable
from ..portmap import PROTOCOLS, PortMapping
from .base import NetworkRules

TABLE = "cove"
FAMILY = "ip"
FAMILY6 = "ip6"
FAMILIES = (FAMILY, FAMILY6)
BASE_CHAINS = ("forward", "postrouting", "prerouting", "output", "raw", "user")
HOOKED = ("forward", "postrouting", "prerouting", "output", "raw")
#: per family: the address type and the loopback prefix
_ADDR = {FAMILY: ("ipv4_addr", "127.0.0.0", 8), FAMILY6: ("ipv6_addr", "::1", 128)}

Cmd = dict[str, Any]


def _t(family: str = FAMILY, **kw: Any) -> dict[str, Any]:
    return {"family": family, "table": TABLE, **kw}


def _match(key: dict[str, Any], op: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": op, "left": key, "right": right}}


def _ifname(direction: str) -> dict[str, Any]:
    return {"meta": {"key": direction}}


def _addr(family: str, fld: str) -> dict[str, Any]:
    return {"payload": {"protocol": family, "field": fld}}


def _loopback(family: str) -> dict[str, Any]:
    _, addr, plen = _ADDR[family]
    return {"prefix": {"addr": addr, "len": plen}}


def base_commands(family: str = FAMILY) -> list[Cmd]:
    """The table, sets, maps and base chains (idempotent ``add``)."""
    return [
        {"add": {"table": {"family": family, "name": TABLE}}},
        {"add": {"set": _t(family, name="bridges", type="ifname")}},
        {"add": {"map": _t(family, name="from_bridge", type="ifname", map="verdict")}},
        {"add": {"map": _t(family, name="to_bridge", type="ifname", map="verdict")}},
        {"add": {"map": _t(family, name="masq", type=_ADDR[family][0], map="verdict", flags=["interval"])}},
        {"add": {"chain": _t(family, name="user")}},
        {"add": {"chain": _t(family, name="forward", type="filter", hook="forward", prio=0, policy="accept")}},
        {"add": {"chain": _t(family, name="postrouting", type="nat", hook="postrouting", prio=100, policy="accept")}},
        {"add": {"chain": _t(family, name="prerouting", type="nat", hook="prerouting", prio=-100, policy="accept")}},
        {"add": {"chain": _t(family, name="output", type="nat", hook="output", prio=-100, policy="accept")}},
        {"add": {"chain": _t(family, name="raw", type="filter", hook="prerouting", prio=-300, policy="accept")}},
    ]


def port_maps_text(family: str = FAMILY) -> str:
    """The published-port maps, in nft's text syntax.

    libnftables 1.0.6 mis-parses a *concatenated* map data type in JSON: it
    creates a plain set instead, and a later ``dnat ... map @set`` then crashes
    the process (SIGSEGV).  These six maps are therefore created through the
    text interface of the same library; everything else stays JSON.
    """
    a = _ADDR[family][0]
    return "".join(
        f"add map {family} {TABLE} pub_any_{p} {{ type inet_service : {a} . inet_service; }}; "
        f"add map {family} {TABLE} pub_ip_{p} {{ type {a} . inet_service : {a} . inet_service; }}; "
        for p in PROTOCOLS)


def _dnat_rules(chain: str, family: str = FAMILY) -> list[Cmd]:
    local = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "==", "local")
    daddr = _addr(family, "daddr")
    out: list[Cmd] = []
    if chain == "prerouting":
        out.append({"add": {"rule": _t(family, chain=chain, expr=[
            _match(daddr, "==", _loopback(family)), {"return": None}])}})
    for p in PROTOCOLS:
        dport = {"payload": {"protocol": p, "field": "dport"}}
        out.append({"add": {"rule": _t(family, chain=chain, expr=[
            local, {"dnat": {"family": family, "addr": {"map": {"key": dport, "data": f"@pub_any_{p}"}}}}])}})
        out.append({"add": {"rule": _t(family, chain=chain, expr=[
            local, {"dnat": {"family": family, "addr": {"map": {"key": {"concat": [daddr, dport]},
                                                                 "data": f"@pub_ip_{p}"}}}}])}})
    return out


FORWARD_DROP_COMMENT = "cove: forwarded traffic of no cove bridge (daemon setting ip-forward-no-drop)"
BRIDGED_COMMENT = "cove: bridged by another bridge (br_netfilter), not routed"


def base_rules(family: str = FAMILY, forward_drop: bool = False) -> list[Cmd]:
    out = [
        {"add": {"rule": _t(family, chain="forward", expr=[
            _match(_ifname("oifname"), "==", "@bridges"), {"jump": {"target": "user"}}])}},
        {"add": {"rule": _t(family, chain="forward", expr=[
            {"vmap": {"key": _ifname("iifname"), "data": "@from_bridge"}}])}},
        {"add": {"rule": _t(family, chain="forward", expr=[
            {"vmap": {"key": _ifname("oifname"), "data": "@to_bridge"}}])}},
    ]
    if forward_drop:        # every packet of a cove bridge got its verdict above
        # frames an admin's bridge (or a LAN uplink bridge) bridges between its own ports meet this hook
        # too when br_netfilter is loaded: they are switched, not routed, so they pass
        out.append({"add": {"rule": _t(family, chain="forward", expr=[
            _match({"meta": {"key": "iifkind"}}, "==", "bridge"),
            _match({"meta": {"key": "oifkind"}}, "==", "bridge"), {"accept": None}], comment=BRIDGED_COMMENT)}})
        out.append({"add": {"rule": _t(family, chain="forward", expr=[{"drop": None}],
                                       comment=FORWARD_DROP_COMMENT)}})
    if family == FAMILY:        # the host's 127.0.0.1 -> a published port (there is no such path for ::1)
        out.append({"add": {"rule": _t(family, chain="postrouting", expr=[
            _match(_addr(family, "saddr"), "==", _loopback(family)),
            _match(_ifname("oifname"), "==", "@bridges"), {"masquerade": None}])}})
    out += [
        {"add": {"rule": _t(family, chain="postrouting", expr=[
            {"vmap": {"key": _addr(family, "saddr"), "data": "@masq"}}])}},
        {"add": {"rule": _t(family, chain="raw", expr=[
            _match(_ifname("iifname"), "==", "@bridges"),
            _match(_addr(family, "daddr"), "==", _loopback(family)),
            {"drop": None}])}},
        *_dnat_rules("prerouting", family),
        *_dnat_rules("output", family),
    ]
    return out


def port_family(m: PortMapping) -> str:
    return FAMILY6 if ":" in m.host_ip else FAMILY


def port_elements(ports: Sequence[PortMapping], family: str = FAMILY) -> list[tuple[str, Any]]:
    """(map name, element) for each mapping of ``family`` (IPv4 or IPv6 host addresses)."""
    out: list[tuple[str, Any]] = []
    for m in ports:
        if port_family(m) != family:
            continue
        data = {"concat": [m.container_ip, m.container_port]}
        if m.host_ip in ("0.0.0.0", "::"):
            out.append((f"pub_any_{m.proto}", [m.host_port, data]))
        else:
            out.append((f"pub_ip_{m.proto}", [{"concat": [m.host_ip, m.host_port]}, data]))
    return out


def _prefix(cidr: str) -> dict[str, Any]:
    addr, _, plen = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(plen)}}


def _subnets(net: NetworkRules, family: str) -> tuple[str, ...]:
    return net.subnets if family == FAMILY else net.subnets6


def network_commands(net: NetworkRules, family: str = FAMILY) -> list[Cmd]:
    """Everything one network adds to the ``family`` table: its chains, their rules, the map elements.

    The filter chains are the same in both families (so isolation and
    ``--internal`` hold for IPv6 too, whether or not the network has IPv6).
    """
    s = net.short
    comment = f"cove network {net.id}"
    frm, to, nat = chain_names(s)
    cmds: list[Cmd] = [{"add": {"chain": _t(family, name=c)}} for c in (frm, to, nat)]

    def rule(chain: str, *expr: Any) -> Cmd:
        return {"add": {"rule": _t(family, chain=chain, expr=list(expr), comment=comment)}}

    accept, drop = {"accept": None}, {"drop": None}
    cmds.append(rule(frm, _match(_ifname("oifname"), "==", net.bridge), accept))
    if not net.internal:        # a published port, via the host (never out of an internal network)
        cmds.append(rule(frm, _match({"ct": {"key": "status"}}, "in", ["dnat"]), accept))
    cmds.append(rule(frm, _match(_ifname("oifname"), "==", "@bridges"), drop))
    if net.internal:
        cmds += [rule(frm, drop), rule(to, drop)]
    else:
        cmds += [
            rule(frm, accept),
            rule(to, _match(_ifname("iifname"), "==", "@bridges"), drop),
            rule(to, _match({"ct": {"key": "state"}}, "in", ["established", "related"]), accept),
            rule(to, _match({"ct": {"key": "status"}}, "in", ["dnat"]), accept),
            rule(to, drop),
        ]
    cmds += [
        {"add": {"element": _t(family, name="bridges", elem=[net.bridge])}},
        {"add": {"element": _t(family, name="from_bridge", elem=[[net.bridge, {"jump": {"target": frm}}]])}},
        {"add": {"element": _t(family, name="to_bridge", elem=[[net.bridge, {"jump": {"target": to}}]])}},
    ]
    if not net.internal:
        if family == FAMILY and net.masquerade:
            cmds.append(rule(nat, _match(_ifname("oifname"), "!=", net.bridge), {"masquerade": None}))
        for subnet in net.masq6 if family == FAMILY6 else ():      # IPv6: unique local subnets only
            cmds.append(rule(nat, _match(_addr(family, "saddr"), "==", _prefix(subnet)),
                             _match(_ifname("oifname"), "!=", net.bridge), {"masquerade": None}))
        cmds.append(rule(nat, _match(_ifname("oifname"), "==", net.bridge),
                         _match({"ct": {"key": "status"}}, "in", ["dnat"]), {"masquerade": None}))
        for subnet in _subnets(net, family):
            cmds.append({"add": {"element": _t(family, name="masq",
                                               elem=[[_prefix(subnet), {"jump": {"target": nat}}]])}})
    return cmds


def chain_names(short: str) -> tuple[str, str, str]:
    """The regular chains one network owns: from-, to- and nat-<id12>."""
    return f"from-{short}", f"to-{short}", f"nat-{short}"


def _elements(net: NetworkRules, family: str = FAMILY) -> list[tuple[str, Any]]:
    """(set or map name, key) of every element one network adds."""
    out: list[tuple[str, Any]] = [("bridges", net.bridge), ("from_bridge", net.bridge), ("to_bridge", net.bridge)]
    if not net.internal:
        out += [("masq", _prefix(s)) for s in _subnets(net, family)]
    return out


def removal_commands(net: NetworkRules, family: str = FAMILY) -> list[Cmd]:
    """Delete exactly what :func:`network_commands` added for ``net``: a fixed number of commands."""
    cmds: list[Cmd] = [{"delete": {"element": _t(family, name=name, elem=[key])}}
                       for name, key in _elements(net, family)]
    for c in chain_names(net.short):
        cmds += [{"flush": {"chain": _t(family, name=c)}}, {"delete": {"chain": _t(family, name=c)}}]
    return cmds


def replace_commands(old: NetworkRules | None, net: NetworkRules, family: str = FAMILY) -> list[Cmd]:
    """Turn ``old`` (what the kernel holds for this id, if anything) into ``net``.

    The network's chains are emptied and refilled rather than deleted, and only
    its own map elements are touched: the cost does not depend on how many
    other networks exist.
    """
    cmds: list[Cmd] = []
    if old is not None:
        cmds += [{"delete": {"element": _t(family, name=name, elem=[key])}} for name, key in _elements(old, family)]
        cmds += [{"add": {"chain": _t(family, name=c)}} for c in chain_names(old.short)]
        cmds += [{"flush": {"chain": _t(family, name=c)}} for c in chain_names(old.short)]
    return cmds + network_commands(net, family)


def _one_line(err: Any) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
    return "; ".join(lines) or "failed"


class NftablesFirewall:
    """Two tables, ``ip cove`` and ``ip6 cove``, changed one libnftables transaction at a time.

    Both tables have the same layout and every network has its chains in both
    (IPv6 addresses and IPv6 published ports only on ``--ipv6`` networks);
    every change writes both families in one transaction.

    The instance remembers the networks it wrote (``_nets``) and whether it
    knows the tables' whole content (``_known``: after :meth:`sync`, or after
    :meth:`setup` made the tables).  A change to a network it remembers, or to a
    new one when the tables are known, is then built without reading the kernel,
    so its cost does not grow with the number of networks.  Otherwise (a fresh
    process before ``sync``), or when the fast transaction fails because
    someone changed a table behind cove's back, the tables are read and the
    network's objects are found by their names and the verdicts that point to
    them.
    """

    name = "nftables"

    def __init__(self) -> None:
        import nftables  # Debian's python3-nftables: a ctypes binding of libnftables

        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(True)
        self._lock = threading.Lock()          # one libnftables call at a time
        self._change = threading.RLock()       # one read-modify-write at a time
        self._nets: dict[str, NetworkRules] = {}
        self._known = False
        self._gen = RulesetGeneration()
        self._verified: int | None = None      # a ruleset generation intact() found whole
        #: families whose forwarded traffic of no cove bridge is dropped (set before setup/sync)
        self.forward_drop: frozenset[str] = frozenset()

    def _run(self, cmds: list[Cmd], what: str) -> Any:
        with self._lock:
            before = self._gen.read()
            rc, out, err = self._nft.json_cmd({"nftables": cmds})
            after = self._gen.read()
            # our own transaction is one generation: if nobody else changed anything since the
            # last check found the tables whole, they are still whole (no need to re-read them)
            if rc == 0 and before is not None and after == before + 1 and self._verified == before:
                self._verified = after
        if rc != 0:
            raise CoveError(f"nftables: {what}: {_one_line(err)}")
        return out

    def _tables_exist(self) -> bool:
        with self._lock:
            rc, out, _ = self._nft.json_cmd({"nftables": [{"list": {"tables": None}}]})
        found = {(o["table"].get("family"), o["table"].get("name")) for o in out.get("nftables", []) if "table" in o}
        return rc == 0 and all((f, TABLE) in found for f in FAMILIES)

    def _state(self, family: str = FAMILY) -> tuple[set[str], dict[str, list[Any]]]:
        """(chain names, map/set name -> elements) of cove's ``family`` table; empty if absent."""
        with self._lock:
            rc, out, _ = self._nft.json_cmd({"nftables": [{"list": {"table": {"family": family, "name": TABLE}}}]})
        if rc != 0:
            return set(), {}
        chains: set[str] = set()
        elems: dict[str, list[Any]] = {}
        for obj in out.get("nftables", []):
            if "chain" in obj:
                chains.add(obj["chain"]["name"])
            for kind in ("set", "map"):
                if kind in obj:
                    elems[obj[kind]["name"]] = obj[kind].get("elem", [])
        return chains, elems

    def _removal(self, short: str, chains: set[str], elems: dict[str, list[Any]], family: str = FAMILY) -> list[Cmd]:
        """Commands deleting one network's map elements and chains, as found in the kernel."""
        cmds: list[Cmd] = []
        targets = set(chain_names(short))
        bridges: set[str] = set()
        for name in ("from_bridge", "to_bridge", "masq"):
            for e in elems.get(name, []):
                key, verdict = e if isinstance(e, list) else (e, None)
                if isinstance(verdict, dict) and verdict.get("jump", {}).get("target") in targets:
                    cmds.append({"delete": {"element": _t(family, name=name, elem=[key])}})
                    if name in ("from_bridge", "to_bridge"):
                        bridges.add(key)
        for b in sorted(bridges):
            if b in elems.get("bridges", []):
                cmds.append({"delete": {"element": _t(family, name="bridges", elem=[b])}})
        for c in sorted(targets & chains):
            cmds += [{"flush": {"chain": _t(family, name=c)}}, {"delete": {"chain": _t(family, name=c)}}]
        return cmds

    def _create_port_maps(self) -> None:
        text = "".join(f"add table {f} {TABLE}; " + port_maps_text(f) for f in FAMILIES)
        with self._lock:
            rc, _, err = self._nft.cmd(text)
        if rc != 0:
            raise CoveError(f"nftables: create the published-port maps: {_one_line(err)}")

    def _base(self) -> list[Cmd]:
        cmds: list[Cmd] = []
        for f in FAMILIES:
            cmds += base_commands(f)
            cmds += [{"flush": {"chain": _t(f, name=c)}} for c in HOOKED]
            cmds += base_rules(f, ("ipv4" if f == FAMILY else "ipv6") in self.forward_drop)
        return cmds

    # the Firewall protocol ------------------------------------------------------------
    def setup(self) -> None:
        """Create (or repair) the tables, maps and hooked chains; their rules are rewritten whole.

        Networks' chains, map elements and the ``user`` chains are left as they are.
        """
        with self._change:
            fresh = not self._tables_exist()
            self._create_port_maps()
            self._run(self._base(), "create tables ip cove and ip6 cove")
            if fresh:
                self._nets, self._known = {}, True

    def ensure_network(self, net: NetworkRules) -> None:
        with self._change:
            old = self._nets.get(net.id)
            if old is not None or self._known:
                try:
                    self._run([c for f in FAMILIES for c in replace_commands(old, net, f)],
                              f"add network {net.short}")
                    self._nets[net.id] = net
                    return
                except CoveError:
                    pass        # the tables are not what this process wrote: read them
            cmds: list[Cmd] = []
            for f in FAMILIES:
                chains, elems = self._state(f)
                cmds += self._removal(net.short, chains, elems, f) + network_commands(net, f)
            self._run(cmds, f"add network {net.short}")
            self._nets[net.id] = net

    def remove_network(self, net_id: str) -> None:
        with self._change:
            old = self._nets.get(net_id)
            if old is not None:
                try:
                    self._run([c for f in FAMILIES for c in removal_commands(old, f)],
                              f"remove network {net_id[:12]}")
                    del self._nets[net_id]
                    return
                except CoveError:
                    pass
            elif self._known:
                return
            cmds: list[Cmd] = []
            for f in FAMILIES:
                chains, elems = self._state(f)
                cmds += self._removal(net_id[:12], chains, elems, f)
            if cmds:
                self._run(cmds, f"remove network {net_id[:12]}")
            self._nets.pop(net_id, None)

    @staticmethod
    def _port_elements(ports: Sequence[PortMapping]) -> list[tuple[str, str, Any]]:
        return [(f, name, e) for f in FAMILIES for name, e in port_elements(ports, f)]

    def add_ports(self, ports: Sequence[PortMapping]) -> None:
        cmds = [{"add": {"element": _t(f, name=name, elem=[e])}} for f, name, e in self._port_elements(ports)]
        if cmds:
            self._run(cmds, "publish ports")

    def remove_ports(self, ports: Sequence[PortMapping]) -> None:
        """Delete the ports' map elements; only if some are missing are the tables read (idempotence)."""
        if not ports:
            return
        els = self._port_elements(ports)
        try:
            self._run([{"delete": {"element": _t(f, name=name, elem=[e[0]])}} for f, name, e in els],
                      "unpublish ports")
            return
        except CoveError:
            pass
        present: set[tuple[str, str]] = set()
        for f in FAMILIES:
            _, elems = self._state(f)
            present |= {(f, json.dumps(e[0] if isinstance(e, list) else e, sort_keys=True))
                        for name in elems if name.startswith("pub_") for e in elems[name]}
        cmds = [{"delete": {"element": _t(f, name=name, elem=[e[0]])}} for f, name, e in els
                if (f, json.dumps(e[0], sort_keys=True)) in present]
        if cmds:
            self._run(cmds, "unpublish ports")

    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None:
        """Make the tables hold exactly ``nets`` and ``ports`` (base objects included), in one transaction."""
        with self._change:
            self._create_port_maps()
            cmds: list[Cmd] = self._base()
            for f in FAMILIES:
                chains, elems = self._state(f)
                for name in elems:
                    cmds.append({"flush": {"set" if name == "bridges" else "map": _t(f, name=name)}})
                for c in sorted(chains - set(BASE_CHAINS)):
                    cmds += [{"flush": {"chain": _t(f, name=c)}}, {"delete": {"chain": _t(f, name=c)}}]
                for net in nets:
                    cmds += network_commands(net, f)
            cmds += [{"add": {"element": _t(f, name=name, elem=[e])}} for f, name, e in self._port_elements(ports)]
            self._run(cmds, "sync networks")
            self._nets, self._known = {n.id: n for n in nets}, True

    def teardown(self) -> None:
        with self._change:
            with self._lock:
                rc, out, _ = self._nft.json_cmd({"nftables": [{"list": {"tables": None}}]})
            found = {(o["table"].get("family"), o["table"].get("name")) for o in out.get("nftables", [])
                     if "table" in o} if rc == 0 else set()
            cmds = [{"delete": {"table": {"family": f, "name": TABLE}}} for f in FAMILIES if (f, TABLE) in found]
            if cmds:
                self._run(cmds, "delete tables ip cove and ip6 cove")
            self._nets, self._known = {}, False

    def intact(self) -> bool:
        """Polled by the daemon: do the hooked chains of both tables all still hold their rules?

        One ``list chain`` call per hooked chain: libnftables 1.0.6 narrows its
        cache to the first chain of a batch, so several chains in one call fail.
        Each call still loads the table's chain and set names (about 2 ms with
        300 networks); the rules of the networks' chains are never read.
        """
        gen = self._gen.read()
        if gen is not None and gen == self._verified:
            return True                     # nothing changed since the last whole check
        for f in FAMILIES:
            for c in HOOKED:
                with self._lock:
                    rc, out, _ = self._nft.json_cmd({"nftables": [{"list": {"chain": _t(f, name=c)}}]})
                if rc != 0 or not any("rule" in obj for obj in out.get("nftables", [])):
                    return False
        if gen is not None:
            with self._lock:
                if self._gen.read() == gen:     # nothing changed while we looked
                    self._verified = gen
        return True


class RulesetGeneration:
    """The kernel's nftables ruleset generation number (NFT_MSG_GETGEN over netlink).

    Every committed nftables transaction, by anyone, increments it, so an unchanged
    number means an unchanged ruleset: the guard's check is then one small netlink
    round trip instead of libnftables loading every map element (which grows with the
    number of published ports).  ``read`` gives None when it cannot be read.  The
    socket is opened in the calling thread's network namespace, which for every thread
    but cove's kernel thread is the daemon's own.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._seq = 0
        self._lock = threading.Lock()

    def read(self) -> int | None:
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)   # NETLINK_NETFILTER
                    self._sock.settimeout(1.0)
                    self._sock.bind((0, 0))
                self._seq = (self._seq + 1) & 0xFFFFFFFF
                # nlmsghdr: NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, NLM_F_REQUEST; nfgenmsg: AF_UNSPEC
                msg = struct.pack("=IHHII", 20, (10 << 8) | 16, 1, self._seq, 0) + struct.pack("=BBH", 0, 0, 0)
                self._sock.send(msg)
                while True:
                    data = self._sock.recv(65536)
                    length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data)
                    if seq != self._seq:
                        continue
                    if kind == 2:                       # NLMSG_ERROR
                        return None
                    off = 20
                    while off + 4 <= length:
                        alen, atype = struct.unpack_from("=HH", data, off)
                        if atype & 0x7FFF == 1 and alen >= 8:          # NFTA_GEN_ID, big-endian u32
                            return int(struct.unpack_from(">I", data, off + 4)[0])
                        off += (alen + 3) & ~3
                    return None
            except OSError:
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                return None


def probe() -> bool:
    """Can this kernel hold ``ip`` and ``ip6`` nftables tables?  (Creates and deletes probe tables.)

    Probed in a child process: when the kernel has no nf_tables netlink at all,
    libnftables calls ``exit()`` inside ``nft_ctx_new``'s socket set-up, which
    would end the daemon itself (seen on the User-Mode Linux kernel).
    """
    import subprocess
    import sys

    code = ("import nftables, sys; n = nftables.Nftables(); n.set_json_output(True); "
            "rc, _, _ = n.json_cmd({'nftables': [{'add': {'table': {'family': f, 'name': 'cove-probe'}}} "
            "for f in ('ip', 'ip6')] + [{'delete': {'table': {'family': f, 'name': 'cove-probe'}}} "
            "for f in ('ip', 'ip6')]}); sys.exit(rc)")
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable() -> Unavailable:
    return Unavailable("nftables is not available in this kernel (CONFIG_NF_TABLES, CONFIG_NF_TABLES_IPV4, "
                       "CONFIG_NF_TABLES_IPV6) "
                       "or libnftables is missing; use --firewall-backend=iptables")
