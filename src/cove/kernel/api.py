"""What the engine and the drivers may ask of the kernel: the seam, as Protocols.

Two implementations stand behind it:

- :class:`cove.kernel.linux.LinuxKernel`: the real one (netlink over pyroute2
  on its one kernel thread, sysctls under ``/proc/sys``, bound network
  namespaces, conntrack);
- :class:`cove.kernel.fake.FakeKernel`: an in-memory kernel for unit tests,
  which dumps its state as text and can fail at the n-th call.

Everything above ``kernel/`` is written against these Protocols only, so a
driver or an engine service can be driven through create/join/leave/remove
with no root and no namespace, and a failure injected at every step.

Errors follow the boundary rule of :mod:`cove.kernel.netlink`: a missing object
is :class:`cove.errors.NotFound`, an existing one :class:`cove.errors.Conflict`,
an unsupported link type :class:`cove.errors.Unavailable`, anything else a
:class:`cove.errors.CoveError`.  This module imports nothing above ``kernel/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: the alias (IFLA_IFALIAS) prefix that marks a link as cove's own
ALIAS_PREFIX = "cove:"
#: ifaddrmsg flag: skip duplicate address detection, so an IPv6 address is usable at once
IFA_F_NODAD = 0x02
#: IFA_F_NOPREFIXROUTE: an address that adds no connected route (kept when an address moves)
IFA_F_NOPREFIXROUTE = 0x200
#: the kernel's own routes (connected, local, broadcast) are re-made by the kernel from addresses
RTPROT_KERNEL = 2
RTPROT_STATIC = 4
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RT_SCOPE_LINK = 253
RTNH_F_ONLINK = 4

#: a route as :meth:`Netlink.route_records` returns it and :meth:`Netlink.add_route` takes it back:
#: ``table, dst ("a.b.c.d/len"), gateway, oif, priority, scope, proto, type, prefsrc, flags, tos,
#: metrics, multipath, nh_id``
RouteRecord = dict[str, Any]
#: an IPv4 address as :meth:`Netlink.address_records` returns it: ``address, prefixlen, flags, secondary``
AddressRecord = dict[str, Any]


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None
    alias: str | None
    master: int | None
    mac: str | None
    up: bool
    mtu: int | None = None


@dataclass(frozen=True)
class LinkStats:
    """One link's counters as the kernel keeps them (``IFLA_STATS64``), seen from its own namespace:
    ``rx`` is what arrived on this link, ``tx`` what left by it."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class BridgePort:
    """A bridge port's flags: ``hairpin`` (frames may leave by the port they came in on),
    ``isolated`` (no frames to or from other isolated ports: ``enable_icc=false``)."""

    hairpin: bool = False
    isolated: bool = False


def ran_now(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn()`` run at once, its outcome kept: the callable returned gives its result or raises its
    error (what :meth:`Kernel.start` returns where there is no other thread to hand ``fn`` to)."""
    try:
        result = fn()
    except BaseException as exc:  # noqa: BLE001 - handed to the caller
        failure = exc

        def fail() -> T:
            raise failure

        return fail
    return lambda: result


class Netlink(Protocol):
    """Netlink verbs bound to one network namespace (``path``; None is the daemon's own)."""

    path: str | None

    # links
    def links(self) -> list[Link]: ...
    def find(self, name: str) -> Link | None: ...
    def index(self, name: str) -> int: ...
    def add_bridge(self, name: str, alias: str, mtu: int | None = None, up: bool = False) -> int: ...
    def add_veth(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                 master: int | None = None, peer_mac: str | None = None) -> int:
        """A veth pair, ``name`` here (tagged ``alias``) and ``peer`` inside ``peer_netns``; ``master``:
        enslaved to that bridge, ``peer_mac``: the peer's MAC address, both in the create request."""
        ...
    def add_veth_pair(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                      master: int | None = None, peer_mac: str | None = None, up: bool = False,
                      port: BridgePort | None = None) -> tuple[int, int]:
        """:meth:`add_veth` with this end ``up`` from the create (the peer cannot be: the kernel opens
        it before the pair is tied) and ``port``'s bridge port flags set with the alias; returns (index here, the peer's
        index in ``peer_netns``), so no lookup follows."""
        ...
    def add_link(self, name: str, kind: str, alias: str, **attrs: Any) -> int: ...
    def add_link_in(self, name: str, kind: str, netns_path: str, **attrs: Any) -> None: ...
    def delete_link(self, name: str) -> bool: ...
    def set_link(self, index: int, **attrs: Any) -> None: ...
    def set_bridge_port(self, index: int, isolated: bool = False, hairpin: bool = False) -> None: ...
    def announce(self, ifname: str, ip: IPv4Address, mac: str) -> None: ...
    def wait_running(self, ifname: str, timeout: float = 2.0) -> None: ...
    def link_stats(self) -> dict[str, LinkStats]:
        """The counters of every link of this namespace, by name (one netlink dump)."""
        ...
    # addresses
    def add_address(self, index: int, ip: IPv4Address | IPv6Address, prefixlen: int, flags: int = 0) -> None: ...
    def delete_address(self, index: int, ip: IPv4Address, prefixlen: int) -> bool: ...
    def address_records(self, index: int) -> list[AddressRecord]: ...
    def addresses(self, index: int | None = None, family: int = 2) -> list[tuple[int, Any]]: ...
    # routes
    def add_default_route(self, gateway: IPv4Address | IPv6Address) -> None: ...
    def add_default_route_dev(self, index: int) -> None: ...
    def route_records(self) -> list[RouteRecord]: ...
    def add_route(self, rec: RouteRecord, oif: int, replace: bool = False) -> None: ...
    def delete_route(self, rec: RouteRecord, oif: int) -> bool: ...
    def default_route(self) -> tuple[str, int | None] | None: ...
    def replace_default_route(self, gateway: IPv4Address | None = None, index: int | None = None) -> None: ...
    def delete_default_route(self) -> bool: ...
    def routes(self) -> list[IPv4Network]: ...
    # VXLAN peers (overlay networks): a permanent FDB entry MAC -> remote VTEP (NTF_SELF, on the
    # VXLAN device itself) and a permanent neighbour entry IP -> MAC for its ARP proxy
    def replace_peer(self, index: int, ip: str, mac: str, vtep: str) -> None: ...
    def delete_peer(self, index: int, ip: str, mac: str, vtep: str) -> None: ...
    def replace_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None:
        """:meth:`replace_peer` for many ``(ip, mac, vtep)`` at once; every one is tried, then the failures
        are raised together as one :class:`~cove.errors.CoveError`."""
        ...
    def delete_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None: ...
    def peers(self, index: int) -> list[tuple[str, str, str]]:
        """The peers programmed on VXLAN device ``index``: ``(ip, mac, vtep)``, from the FDB and neighbours."""
        ...
    def close(self) -> None: ...


class Kernel(Protocol):
    """The whole kernel surface: one :class:`Netlink` per namespace, sysctls, namespaces, conntrack."""

    def get(self, path: str | None = None) -> Netlink:
        """The netlink verbs of the namespace bound at ``path`` (None: the daemon's own)."""
        ...

    @property
    def host(self) -> Netlink:
        """The daemon's own namespace (``get(None)``)."""
        ...

    def drop(self, path: str) -> None:
        """Forget (close) the socket of a namespace; reopened by the next :meth:`get`."""
        ...

    def close(self) -> None: ...

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` with every netlink call in it made on one thread: one hand-off for a sequence of
        calls instead of one each.  ``fn`` must get its :class:`Netlink` objects (:meth:`get`) before."""
        ...

    def start(self, fn: Callable[[], T]) -> Callable[[], T]:
        """:meth:`run` begun, not waited for: the callable returned waits for ``fn`` and gives its
        result or raises its error (call it exactly once).  The caller works meanwhile (a firewall
        transaction while the kernel thread makes a bridge)."""
        ...

    # sysctls
    def sysctl(self, key: str, value: str, netns: str | None = None) -> None:
        """Write ``net.ipv4.ip_forward``-style ``key`` (inside the namespace at ``netns`` if given)."""
        ...

    # namespaces
    def create_netns(self, path: str) -> None:
        """A new network namespace bound at ``path`` (replacing a stale binding there)."""
        ...

    def create_userns_netns(self, path: str, userns_path: str, uid_map: list[list[int]],
                            gid_map: list[list[int]]) -> None:
        """A new user namespace with these id maps bound at ``userns_path`` and a network
        namespace it owns bound at ``path`` (``--userns-remap``); :meth:`delete_netns` unbinds each."""
        ...

    def delete_netns(self, path: str) -> None:
        """Unbind the namespace at ``path``; nothing there counts as done."""
        ...

    def bound_netns(self, directory: str) -> set[str]:
        """The namespace bindings under ``directory``."""
        ...

    # conntrack
    def forget_flows(self, *ips: str) -> None:
        """Delete the conntrack entries from and to addresses being released."""
        ...

    def forget_udp_port(self, port: int, family: str) -> None:
        """Delete the UDP conntrack entries to a host port no longer published (``ipv4``/``ipv6``)."""
        ...
