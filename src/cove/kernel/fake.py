"""An in-memory kernel behind :class:`cove.kernel.api.Kernel`, for unit tests.

It keeps, per network namespace, the links (with their kind, alias, master,
MAC, state, MTU, bridge-port flags and veth peer), the addresses and the
routes, plus the sysctls and the bound namespaces, and behaves like Linux where
cove's rollback depends on it:

- deleting a veth end deletes its peer (in whatever namespace it is);
- deleting a link deletes the links stacked on it (VLAN, macvlan children),
  its addresses, the routes through it and its per-interface sysctls;
  deleting a bridge releases its ports;
- deleting a namespace deletes its links (and so the host ends of their veths);
- an IPv4 address adds its connected route; deleting the last IPv4 address of
  a link flushes every IPv4 route through it (the quirk :mod:`cove.drivers.uplink`
  works around);
- a route via a gateway needs the gateway reachable on the link;
- an existing name or route is :class:`Conflict`, a missing one :class:`NotFound`.

:meth:`FakeKernel.dump` renders the whole state as sorted text (link indices
left out, masters and peers by name), so a test compares "before" and "after"
with ``==`` and reads a difference in the assertion message.
:meth:`FakeKernel.fail_at` makes the n-th call from now raise
:class:`InjectedFailure` (pyroute2's ChaoticIPRoute idea, made deterministic):
every verb, reads included, is one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, ip_address, ip_interface, ip_network
from typing import Any, TypeVar

from ..errors import Conflict, CoveError, NotFound
from .api import (
    IFA_F_NOPREFIXROUTE,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTPROT_KERNEL,
    AddressRecord,
    BridgePort,
    Link,
    LinkStats,
    RouteRecord,
    ran_now,
)

HOST = "host"

T = TypeVar("T")


class InjectedFailure(CoveError):
    """The failure :meth:`FakeKernel.fail_at` asked for."""


@dataclass
class _Link:
    index: int
    name: str
    kind: str | None
    alias: str | None = None
    master: int | None = None
    mac: str | None = None
    up: bool = False
    mtu: int | None = 1500
    peer: tuple[str | None, int] | None = None      # (namespace, index) of a veth's other end
    parent: int | None = None                       # the link it is stacked on (same namespace)
    attrs: dict[str, Any] = field(default_factory=dict)    # vlan_id, macvlan_mode, ...
    isolated: bool = False
    hairpin: bool = False
    #: a VXLAN device's peers: mac -> (ip, vtep)
    peers: dict[str, tuple[str, str]] = field(default_factory=dict)
    stats: LinkStats = field(default_factory=LinkStats)

    def view(self) -> Link:
        return Link(index=self.index, name=self.name, kind=self.kind, alias=self.alias, master=self.master,
                    mac=self.mac, up=self.up, mtu=self.mtu)


@dataclass
class _Addr:
    index: int
    iface: IPv4Interface | IPv6Interface
    flags: int = 0


@dataclass
class _NS:
    links: dict[int, _Link] = field(default_factory=dict)
    addrs: list[_Addr] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)      # each with a "family" key

    def by_name(self, name: str) -> _Link | None:
        return next((lk for lk in self.links.values() if lk.name == name), None)


def _route(dst: str, oif: int | None, *, family: int = 4, gateway: str | None = None, table: int = RT_TABLE_MAIN,
           scope: int = 0, proto: int = 4, rtype: int = 1, priority: int | None = None, prefsrc: str | None = None,
           flags: int = 0, tos: int = 0, metrics: dict[str, int] | None = None) -> dict[str, Any]:
    return {"family": family, "table": table, "dst": str(ip_network(dst, strict=False)), "gateway": gateway,
            "oif": oif, "priority": priority, "scope": scope, "proto": proto, "type": rtype, "prefsrc": prefsrc,
            "flags": flags, "tos": tos, "metrics": dict(metrics or {}), "multipath": None, "nh_id": None}


class FakeKernel:
    """An in-memory :class:`cove.kernel.api.Kernel`."""

    def __init__(self) -> None:
        self.namespaces: dict[str | None, _NS] = {None: _NS()}
        self.sysctls: dict[tuple[str | None, str], str] = {}
        self.usernss: dict[str, tuple[list[list[int]], list[list[int]]]] = {}   # --userns-remap: path -> maps
        self.flows_forgotten: list[str] = []
        self.udp_ports_forgotten: list[tuple[int, str]] = []
        self.calls = 0
        self.journal: list[str] = []
        self._fail_at: int | None = None
        self._next_index = 1
        self._next_mac = 1
        self.add_lo(None)

    # test controls ---------------------------------------------------------------------
    def fail_at(self, n: int | None) -> None:
        """Make the ``n``-th call from now fail (None: never); the count restarts at 0."""
        self.calls = 0
        self.journal = []
        self._fail_at = n

    def call(self, what: str) -> None:
        self.calls += 1
        self.journal.append(what)
        if self._fail_at is not None and self.calls == self._fail_at:
            raise InjectedFailure(f"{what}: injected failure (call {self.calls})")

    def traffic(self, path: str | None, ifname: str, nbytes: int, packets: int = 1, *, dropped: int = 0) -> None:
        """Set-up helper (not counted): ``ifname`` in ``path`` sends ``packets`` packets of ``nbytes``
        bytes in all; a veth's peer receives them (``dropped`` of them are lost on the way in)."""
        link = self.ns(path).by_name(ifname)
        if link is None:
            raise NotFound(f"link {ifname} not found")
        s = link.stats
        link.stats = replace(s, tx_bytes=s.tx_bytes + nbytes, tx_packets=s.tx_packets + packets)
        if link.peer is not None:
            far = self.ns(link.peer[0]).links.get(link.peer[1])
            if far is not None:
                lost = nbytes * dropped // packets if packets else 0
                f = far.stats
                far.stats = replace(f, rx_bytes=f.rx_bytes + nbytes - lost, rx_packets=f.rx_packets + packets - dropped,
                                    rx_dropped=f.rx_dropped + dropped)

    def add_lo(self, path: str | None) -> None:
        ns = self.namespaces[path]
        index = self._new_index()
        ns.links[index] = _Link(index=index, name="lo", kind=None, mac="00:00:00:00:00:00", up=path is None,
                                mtu=65536)

    def add_nic(self, name: str, address: str | None = None, *, gateway: str | None = None,
                mac: str | None = None, kind: str | None = None) -> int:
        """Set-up helper (not counted): a host interface, optionally with an address and a default route."""
        host = self.namespaces[None]
        index = self._new_index()
        host.links[index] = _Link(index=index, name=name, kind=kind, mac=mac or self._mac(), up=True)
        if address is not None:
            iface = ip_interface(address)
            host.addrs.append(_Addr(index, iface))
            host.routes.append(_route(str(iface.network), index, family=iface.version, scope=RT_SCOPE_LINK,
                                      proto=RTPROT_KERNEL, prefsrc=str(iface.ip)))
        if gateway is not None:
            host.routes.append(_route("0.0.0.0/0", index, gateway=gateway, proto=3))
        return index

    def _new_index(self) -> int:
        self._next_index += 1
        return self._next_index

    def _mac(self) -> str:
        self._next_mac += 1
        n = self._next_mac
        return "02:fa:%02x:%02x:%02x:%02x" % ((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)

    def ns(self, path: str | None) -> _NS:
        ns = self.namespaces.get(path)
        if ns is None:
            raise NotFound(f"network namespace {path}: No such file or directory")
        return ns

    # Kernel --------------------------------------------------------------------------------
    def get(self, path: str | None = None) -> FakeNetlink:
        self.ns(path)
        return FakeNetlink(self, path)

    @property
    def host(self) -> FakeNetlink:
        return FakeNetlink(self, None)

    def drop(self, path: str) -> None:
        pass

    def close(self) -> None:
        pass

    def run(self, fn: Callable[[], T]) -> T:
        return fn()

    def start(self, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` runs now, its outcome waits for the call (the real one's order, on one thread)."""
        return ran_now(fn)

    def sysctl(self, key: str, value: str, netns: str | None = None) -> None:
        self.call(f"sysctl {key}={value}" + (f" in {netns}" if netns else ""))
        ns = self.ns(netns)
        parts = key.split(".")
        if len(parts) >= 4 and parts[0] == "net" and parts[2] == "conf" and parts[3] not in ("all", "default"):
            name = ".".join(parts[3:-1])
            if ns.by_name(name) is None:
                raise NotFound(f"sysctl {key}: no interface {name}")
        self.sysctls[(netns, key)] = value

    def create_netns(self, path: str) -> None:
        self.call(f"create netns {path}")
        if path in self.namespaces:
            self._delete_ns(path)
        self.namespaces[path] = _NS()
        self.add_lo(path)

    def create_userns_netns(self, path: str, userns_path: str, uid_map: list[list[int]],
                            gid_map: list[list[int]]) -> None:
        self.create_netns(path)
        self.call(f"create userns {userns_path} owning {path}: uid {uid_map} gid {gid_map}")
        self.usernss[userns_path] = (uid_map, gid_map)

    def delete_netns(self, path: str) -> None:
        self.usernss.pop(path, None)
        self.call(f"delete netns {path}")
        if path in self.namespaces:
            self._delete_ns(path)

    def bound_netns(self, directory: str) -> set[str]:
        prefix = directory.rstrip("/") + "/"
        return {p for p in self.namespaces if p is not None and p.startswith(prefix)}

    def forget_flows(self, *ips: str) -> None:
        self.flows_forgotten += [ip for ip in ips if ip]

    def forget_udp_port(self, port: int, family: str) -> None:
        self.udp_ports_forgotten.append((port, family))

    # the kernel's own consequences --------------------------------------------------------
    def _delete_ns(self, path: str) -> None:
        ns = self.namespaces[path]
        for link in list(ns.links.values()):
            if link.index in ns.links:
                self.delete(path, link)
        del self.namespaces[path]

    def delete(self, path: str | None, link: _Link) -> None:
        ns = self.namespaces[path]
        if link.index not in ns.links:
            return
        del ns.links[link.index]
        for other in list(ns.links.values()):
            if other.parent == link.index:
                self.delete(path, other)
            if other.master == link.index:
                other.master = None
        for other_path, other_ns in self.namespaces.items():     # stacked links moved into another namespace
            for other in list(other_ns.links.values()):
                if other.attrs.get("parent_ref") == (path, link.index):
                    self.delete(other_path, other)
        ns.addrs = [a for a in ns.addrs if a.index != link.index]
        ns.routes = [r for r in ns.routes if r["oif"] != link.index]
        for key in [k for k in self.sysctls if k[0] == path and f".conf.{link.name}." in k[1]]:
            del self.sysctls[key]
        if link.peer is not None:
            peer_path, peer_index = link.peer
            peer_ns = self.namespaces.get(peer_path)
            if peer_ns is not None and peer_index in peer_ns.links:
                peer = peer_ns.links[peer_index]
                peer.peer = None
                self.delete(peer_path, peer)

    # the dump ---------------------------------------------------------------------------------
    def dump(self) -> str:
        lines: list[str] = []
        for path in sorted(self.namespaces, key=lambda p: "" if p is None else p):
            ns = self.namespaces[path]
            lines.append(f"netns {path or HOST}")
            names = {lk.index: lk.name for lk in ns.links.values()}
            for lk in sorted(ns.links.values(), key=lambda lk: lk.name):
                bits = [f"link {lk.name}", f"kind={lk.kind}", f"alias={lk.alias}", f"mac={lk.mac}",
                        "UP" if lk.up else "DOWN", f"mtu={lk.mtu}"]
                if lk.master is not None:
                    bits.append(f"master={names.get(lk.master, lk.master)}")
                if lk.parent is not None:
                    bits.append(f"parent={names.get(lk.parent, lk.parent)}")
                if lk.peer is not None:
                    peer_ns = self.namespaces.get(lk.peer[0])
                    peer = peer_ns.links.get(lk.peer[1]) if peer_ns else None
                    bits.append(f"peer={lk.peer[0] or HOST}/{peer.name if peer else '?'}")
                if lk.isolated or lk.hairpin:
                    bits.append(f"isolated={lk.isolated} hairpin={lk.hairpin}")
                bits += [f"{k}={v}" for k, v in sorted(lk.attrs.items()) if k != "parent_ref"]
                lines.append("  " + " ".join(bits))
                for mac, (ip, vtep) in sorted(lk.peers.items()):
                    lines.append(f"    peer {ip} {mac} dst {vtep}")
            for a in sorted(ns.addrs, key=lambda a: (names.get(a.index, ""), str(a.iface))):
                lines.append(f"  addr {names.get(a.index, a.index)} {a.iface} flags={a.flags}")
            for r in sorted(ns.routes, key=lambda r: (r["table"], r["dst"], str(r["priority"]), str(r["oif"]))):
                rest = " ".join(f"{k}={r[k]}" for k in ("gateway", "priority", "scope", "proto", "type", "prefsrc",
                                                         "flags", "tos", "metrics") if r[k])
                lines.append(f"  route table={r['table']} {r['dst']} dev={names.get(r['oif'], r['oif'])} {rest}")
        for (path, key), value in sorted(self.sysctls.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            lines.append(f"sysctl {path or HOST} {key}={value}")
        return "\n".join(lines) + "\n"


class FakeNetlink:
    """The :class:`cove.kernel.api.Netlink` verbs of one fake namespace."""

    def __init__(self, kernel: FakeKernel, path: str | None) -> None:
        self.k = kernel
        self.path = path

    @property
    def _ns(self) -> _NS:
        return self.k.ns(self.path)

    def _link(self, index: int) -> _Link:
        link = self._ns.links.get(index)
        if link is None:
            raise NotFound(f"link {index}: No such device")
        return link

    def _new(self, ns: _NS, name: str, kind: str | None, alias: str | None, mtu: int | None) -> _Link:
        if ns.by_name(name) is not None:
            raise Conflict(f"create {kind} link {name}: File exists")
        if not name or len(name) > 15:
            raise CoveError(f"create {kind} link {name}: Invalid argument")
        index = self.k._new_index()
        link = _Link(index=index, name=name, kind=kind, alias=alias, mac=self.k._mac(), mtu=mtu or 1500)
        ns.links[index] = link
        return link

    def close(self) -> None:
        pass

    # links -------------------------------------------------------------------------------
    def links(self) -> list[Link]:
        self.k.call("list links")
        return [lk.view() for lk in self._ns.links.values()]

    def find(self, name: str) -> Link | None:
        self.k.call(f"look up link {name}")
        link = self._ns.by_name(name)
        return link.view() if link else None

    def index(self, name: str) -> int:
        self.k.call(f"look up link {name}")
        link = self._ns.by_name(name)
        if link is None:
            raise NotFound(f"link {name} not found")
        return link.index

    def add_bridge(self, name: str, alias: str, mtu: int | None = None, up: bool = False) -> int:
        self.k.call(f"create bridge {name}")
        link = self._new(self._ns, name, "bridge", alias, mtu)
        link.up = up
        return link.index

    def add_veth(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                 master: int | None = None, peer_mac: str | None = None) -> int:
        self.k.call(f"create veth {name}")
        ns, peer_ns = self._ns, self.k.ns(peer_netns)
        if peer_ns.by_name(peer) is not None:
            raise Conflict(f"create veth {name}: File exists")
        if master is not None and self._link(master).kind != "bridge":
            raise CoveError(f"create veth {name}: Operation not supported")
        here = self._new(ns, name, "veth", alias, mtu)
        there = self._new(peer_ns, peer, "veth", None, mtu)
        here.master = master
        if peer_mac is not None:
            there.mac = peer_mac
        here.peer, there.peer = (peer_netns, there.index), (self.path, here.index)
        return here.index

    def add_veth_pair(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                      master: int | None = None, peer_mac: str | None = None, up: bool = False,
                      port: BridgePort | None = None) -> tuple[int, int]:
        """As the real one: the create (untagged), then the alias and port flags; a failed tag
        deletes the pair again."""
        self.k.call(f"create veth {name}")
        ns, peer_ns = self._ns, self.k.ns(peer_netns)
        if ns.by_name(name) is not None or peer_ns.by_name(peer) is not None:
            raise Conflict(f"create veth {name}: File exists")
        if master is not None:
            bridge = ns.links.get(master)
            if bridge is None:
                raise CoveError(f"create veth {name}: Invalid argument")      # the kernel's do_set_master
            if bridge.kind != "bridge":
                raise CoveError(f"create veth {name}: Operation not supported")
        here = self._new(ns, name, "veth", None, mtu)
        there = self._new(peer_ns, peer, "veth", None, mtu)
        here.master, here.up = master, up
        if peer_mac is not None:
            there.mac = peer_mac
        here.peer, there.peer = (peer_netns, there.index), (self.path, here.index)
        try:
            self.k.call(f"tag link {name}")
            if port is not None and here.master is None:
                raise CoveError(f"tag link {name}: Operation not supported")
        except CoveError:
            self.k.delete(self.path, here)
            raise
        here.alias = alias
        if port is not None:
            here.isolated, here.hairpin = port.isolated, port.hairpin
        return here.index, there.index

    def add_link(self, name: str, kind: str, alias: str, **attrs: Any) -> int:
        self.k.call(f"create {kind} link {name}")
        parent = attrs.pop("link", None)
        if parent is not None:
            self._link(parent)
        link = self._new(self._ns, name, kind, alias, None)
        link.parent, link.attrs = parent, attrs
        return link.index

    def add_link_in(self, name: str, kind: str, netns_path: str, **attrs: Any) -> None:
        self.k.call(f"create {kind} link {name} in {netns_path}")
        parent = attrs.pop("link", None)
        if parent is not None:
            self._link(parent)
        link = self._new(self.k.ns(netns_path), name, kind, None, None)
        link.attrs = {**attrs, "parent_ref": (self.path, parent)}

    def delete_link(self, name: str) -> bool:
        self.k.call(f"delete link {name}")
        link = self._ns.by_name(name)
        if link is None:
            return False
        self.k.delete(self.path, link)
        return True

    def set_link(self, index: int, **attrs: Any) -> None:
        self.k.call(f"set link {index} {sorted(attrs)}")
        link = self._link(index)
        unknown = set(attrs) - {"state", "master", "address", "mtu", "ifname"}
        if unknown:
            raise TypeError(f"FakeNetlink.set_link does not know {sorted(unknown)}")
        if "master" in attrs:
            master = attrs["master"]
            if master:
                if self._link(master).kind != "bridge":
                    raise CoveError(f"set link {index}: Operation not supported")
                link.master = master
            else:
                link.master = None
        if "ifname" in attrs:
            if self._ns.by_name(attrs["ifname"]) is not None:
                raise Conflict(f"set link {index}: File exists")
            link.name = attrs["ifname"]
        if "address" in attrs:
            link.mac = attrs["address"]
        if "mtu" in attrs:
            link.mtu = attrs["mtu"]
        if "state" in attrs:
            link.up = attrs["state"] == "up"

    def set_bridge_port(self, index: int, isolated: bool = False, hairpin: bool = False) -> None:
        self.k.call(f"set bridge port {index} flags")
        link = self._link(index)
        if link.master is None:
            raise CoveError(f"set bridge port {index} flags: Operation not supported")
        link.isolated, link.hairpin = isolated, hairpin

    def announce(self, ifname: str, ip: IPv4Address, mac: str) -> None:
        self.k.call(f"announce {ip} on {ifname}")
        if self._ns.by_name(ifname) is None:
            raise CoveError(f"announce {ip} on {ifname}: No such device")

    def link_stats(self) -> dict[str, LinkStats]:
        self.k.call("read link counters")
        return {lk.name: lk.stats for lk in self._ns.links.values()}

    def wait_running(self, ifname: str, timeout: float = 2.0) -> None:
        self.k.call(f"look up link {ifname}")
        if self._ns.by_name(ifname) is None:
            raise NotFound(f"look up link {ifname}: No such device")

    # addresses ------------------------------------------------------------------------------
    def add_address(self, index: int, ip: IPv4Address | IPv6Address, prefixlen: int, flags: int = 0) -> None:
        self.k.call(f"add address {ip}/{prefixlen}")
        ns = self._ns
        self._link(index)
        iface = ip_interface(f"{ip}/{prefixlen}")
        if any(a.index == index and a.iface.ip == iface.ip for a in ns.addrs):
            raise Conflict(f"add address {ip}/{prefixlen}: File exists")
        ns.addrs.append(_Addr(index, iface, flags & IFA_F_NOPREFIXROUTE))
        if iface.version == 4 and not flags & IFA_F_NOPREFIXROUTE and prefixlen < 32:
            dst = str(iface.network)
            if not any(r["dst"] == dst and r["oif"] == index and r["proto"] == RTPROT_KERNEL for r in ns.routes):
                ns.routes.append(_route(dst, index, scope=RT_SCOPE_LINK, proto=RTPROT_KERNEL, prefsrc=str(ip)))

    def delete_address(self, index: int, ip: IPv4Address, prefixlen: int) -> bool:
        self.k.call(f"delete address {ip}/{prefixlen}")
        ns = self._ns
        iface = ip_interface(f"{ip}/{prefixlen}")
        hit = next((a for a in ns.addrs if a.index == index and a.iface == iface), None)
        if hit is None:
            return False
        ns.addrs.remove(hit)
        ns.routes = [r for r in ns.routes if not (r["oif"] == index and r["proto"] == RTPROT_KERNEL
                                                  and r["prefsrc"] == str(ip))]
        if iface.version == 4 and not any(a.index == index and a.iface.version == 4 for a in ns.addrs):
            ns.routes = [r for r in ns.routes if not (r["oif"] == index and r["family"] == 4)]   # the flush
        return True

    def address_records(self, index: int) -> list[AddressRecord]:
        self.k.call("list addresses")
        out: list[AddressRecord] = []
        seen: set[IPv4Network] = set()
        for a in self._ns.addrs:
            if a.index == index and isinstance(a.iface, IPv4Interface):
                out.append({"address": str(a.iface.ip), "prefixlen": a.iface.network.prefixlen, "flags": a.flags,
                            "secondary": a.iface.network in seen})
                seen.add(a.iface.network)
        out.sort(key=lambda a: a["secondary"])
        return out

    def addresses(self, index: int | None = None, family: int = 2) -> list[tuple[int, Any]]:
        self.k.call("list addresses")
        version = 4 if family == 2 else 6
        return [(a.index, a.iface) for a in self._ns.addrs
                if a.iface.version == version and (index is None or a.index == index)]

    # routes -----------------------------------------------------------------------------------
    def _reachable(self, gateway: str, oif: int | None) -> int:
        gw = ip_address(gateway)
        ns = self._ns
        for a in ns.addrs:
            if (oif is None or a.index == oif) and a.iface.version == gw.version and gw in a.iface.network:
                return a.index
        for r in ns.routes:
            if (oif is None or r["oif"] == oif) and r["scope"] == RT_SCOPE_LINK and r["gateway"] is None \
                    and ip_network(r["dst"]).version == gw.version and gw in ip_network(r["dst"]):
                return int(r["oif"])
        raise CoveError(f"route via {gateway}: Network is unreachable")

    def _insert(self, route: dict[str, Any], replace: bool, what: str) -> None:
        ns = self._ns
        key = (route["family"], route["table"], route["dst"], route["priority"], route["tos"])
        same = [r for r in ns.routes if (r["family"], r["table"], r["dst"], r["priority"], r["tos"]) == key]
        if same and not replace:
            raise Conflict(f"{what}: File exists")
        for r in same:
            ns.routes.remove(r)
        ns.routes.append(route)

    def add_default_route(self, gateway: IPv4Address | IPv6Address) -> None:
        self.k.call(f"add default route via {gateway}")
        oif = self._reachable(str(gateway), None)
        dst = "::/0" if gateway.version == 6 else "0.0.0.0/0"
        self._insert(_route(dst, oif, family=gateway.version, gateway=str(gateway), proto=3), False,
                     f"add default route via {gateway}")

    def add_default_route_dev(self, index: int) -> None:
        self.k.call("add default route")
        self._link(index)
        self._insert(_route("0.0.0.0/0", index, proto=3), False, "add default route")

    def route_records(self) -> list[RouteRecord]:
        self.k.call("list routes")
        return [{k: v for k, v in r.items() if k != "family"} for r in self._ns.routes if r["family"] == 4]

    def add_route(self, rec: RouteRecord, oif: int, replace: bool = False) -> None:
        self.k.call(f"add route {rec['dst']}")
        self._link(oif)
        if rec.get("gateway") is not None and not rec.get("flags"):
            self._reachable(rec["gateway"], oif)
        route = _route(rec["dst"], oif, gateway=rec.get("gateway"), table=rec.get("table") or RT_TABLE_MAIN,
                       scope=rec.get("scope", 0), proto=rec.get("proto", 3), rtype=rec.get("type", 1),
                       priority=rec.get("priority"), prefsrc=rec.get("prefsrc"), flags=rec.get("flags") or 0,
                       tos=rec.get("tos") or 0, metrics=rec.get("metrics"))
        self._insert(route, replace, f"add route {rec['dst']}")

    def delete_route(self, rec: RouteRecord, oif: int) -> bool:
        self.k.call(f"delete route {rec['dst']}")
        ns = self._ns
        dst, table = str(ip_network(rec["dst"], strict=False)), rec.get("table") or RT_TABLE_MAIN
        for r in ns.routes:
            if r["family"] == 4 and r["dst"] == dst and r["table"] == table and r["oif"] == oif and \
                    (rec.get("priority") is None or r["priority"] == rec["priority"]):
                ns.routes.remove(r)
                return True
        return False

    def _defaults(self) -> list[dict[str, Any]]:
        return [r for r in self._ns.routes
                if r["family"] == 4 and r["table"] == RT_TABLE_MAIN and r["dst"] == "0.0.0.0/0" and r["type"] == 1]

    def default_route(self) -> tuple[str, int | None] | None:
        self.k.call("list routes")
        best = sorted(self._defaults(), key=lambda r: r["priority"] or 0)
        return None if not best else (best[0]["gateway"] or "", best[0]["oif"])

    def replace_default_route(self, gateway: IPv4Address | None = None, index: int | None = None) -> None:
        self.k.call(f"replace default route via {gateway or index}")
        if gateway is not None:
            oif = self._reachable(str(gateway), index)
        elif index is not None:
            oif = self._link(index).index
        else:
            raise CoveError("replace default route: no gateway and no device")
        self._insert(_route("0.0.0.0/0", oif, gateway=str(gateway) if gateway else None, proto=3), True,
                     "replace default route")

    def delete_default_route(self) -> bool:
        self.k.call("delete default route")
        found = self._defaults()
        if not found:
            return False
        self._ns.routes.remove(found[0])
        return True

    def routes(self) -> list[IPv4Network]:
        self.k.call("list routes")
        return [IPv4Network(r["dst"]) for r in self._ns.routes
                if r["family"] == 4 and r["table"] == RT_TABLE_MAIN and IPv4Network(r["dst"]).prefixlen > 0]

    # VXLAN peers -------------------------------------------------------------------------
    def replace_peer(self, index: int, ip: str, mac: str, vtep: str) -> None:
        self.k.call(f"add peer {ip} {mac} dst {vtep}")
        link = self._link(index)
        if link.kind != "vxlan":
            raise CoveError(f"add fdb {mac} on {link.name}: Operation not supported (not a vxlan device)")
        link.peers[mac] = (ip, vtep)

    def delete_peer(self, index: int, ip: str, mac: str, vtep: str) -> None:
        self.k.call(f"delete peer {ip} {mac}")
        link = self._ns.links.get(index)
        if link is not None:
            link.peers.pop(mac, None)

    def replace_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None:
        """One recorded call for the whole batch (so a test sees that it was batched)."""
        self.k.call(f"add {len(peers)} peers on {index}")
        link = self._link(index)
        if link.kind != "vxlan":
            raise CoveError(f"add {len(peers)} peers on {link.name}: Operation not supported (not a vxlan device)")
        for ip, mac, vtep in peers:
            link.peers[mac] = (ip, vtep)

    def delete_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None:
        self.k.call(f"delete {len(peers)} peers on {index}")
        link = self._ns.links.get(index)
        if link is not None:
            for _, mac, _ in peers:
                link.peers.pop(mac, None)

    def peers(self, index: int) -> list[tuple[str, str, str]]:
        self.k.call(f"list peers of {index}")
        return sorted((ip, mac, vtep) for mac, (ip, vtep) in self._link(index).peers.items())
