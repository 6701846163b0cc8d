"""Typed netlink verbs over pyroute2, one socket per network namespace.

:class:`Netlink` is the narrow surface the drivers use: links (bridge, veth,
macvlan...), addresses, routes.  It never leaks pyroute2's loose
``link("add", **kw)`` calls or its ``NetlinkError`` to callers: errors become
:class:`cove.errors.CoveError` subclasses here, at the boundary.

:class:`NetlinkPool` keeps one open socket per namespace path.  A socket for a
container's namespace is created while the creating thread is inside that
namespace (see :mod:`cove.kernel.netns`), so later calls need no ``setns``.

The pyroute2 quirk handled here: since 0.9 a synchronous ``IPRoute`` keeps a
*thread-local* socket and quietly opens a new one, in whatever namespace the
calling thread is in, when another thread first uses it.  An ``IPRoute`` made
inside a container's namespace and then used from another daemon thread would
act on the *host*.  So every pyroute2 object here is created and used on one
dedicated thread (:data:`KERNEL_THREAD`); the public methods hand their work to
it and wait.  The engine serialises changes anyway, so one thread costs no
throughput, and "which namespace does this socket act on" has one answer: the
one it was made in.  ``tests/integration/test_kernel_netns.py`` proves it.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .. import crashpoint
from ..errors import Conflict, CoveError, NotFound, Unavailable
from . import netns, peerbatch, rtdump, rtlink
from .api import (  # noqa: F401 - re-exported: the names callers knew here
    ALIAS_PREFIX,
    IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE,
    RT_SCOPE_LINK,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTNH_F_ONLINK,
    RTPROT_KERNEL,
    BridgePort,
    Link,
    LinkStats,
    ran_now,
)

T = TypeVar("T")
E = TypeVar("E")

#: neighbour state and flag of the VXLAN peer entries (linux/neighbour.h)
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
#: netlink socket option: acks without a copy of the request (linux/netlink.h)
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_RCVBUFFORCE = 33
#: peer messages per datagram of a batch (2 per peer); their acks stay well inside the socket buffer
PEER_CHUNK = 128


class KernelThread:
    """One thread that owns every pyroute2 object; other threads submit work and wait."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cove-netlink")
        self._ident = self._pool.submit(threading.get_ident).result()

    def call(self, fn: Callable[[], T]) -> T:
        if threading.get_ident() == self._ident:
            return fn()
        return self._pool.submit(fn).result()

    def start(self, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` handed to the thread, not waited for; the callable returned waits (on the thread
        itself ``fn`` runs at once: it would wait for itself)."""
        if threading.get_ident() == self._ident:
            return ran_now(fn)
        return self._pool.submit(fn).result


KERNEL_THREAD = KernelThread()


def _error(what: str, code: int, detail: object = None) -> CoveError:
    """The :class:`CoveError` for a netlink errno (the boundary rule of :mod:`cove.kernel.api`)."""
    msg = f"{what}: {os.strerror(code) if code else detail}"
    if code == errno.EEXIST:
        return Conflict(msg)
    if code in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
        return NotFound(msg)
    if code == errno.EOPNOTSUPP:
        return Unavailable(msg + " (the kernel lacks this link type or option)")
    if code == errno.EXFULL:        # the bridge's port numbers, 1 to 1,023 (BR_MAX_PORTS), are all taken
        return CoveError(msg + " (a Linux bridge takes at most 1,023 ports: the network has no room for"
                               " another endpoint)")
    return CoveError(msg)


@contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except NetlinkError as exc:
        raise _error(what, exc.code, exc) from exc


def _link_from_msg(msg: Any) -> Link:
    info = msg.get("IFLA_LINKINFO")
    return Link(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME"),
        kind=info.get("IFLA_INFO_KIND") if info is not None else None,
        alias=msg.get("IFLA_IFALIAS"),
        master=msg.get("IFLA_MASTER"),
        mac=msg.get("IFLA_ADDRESS"),
        up=bool(msg["flags"] & 1),
        mtu=msg.get("IFLA_MTU"),
    )


def _stats_from_msg(msg: Any) -> LinkStats:
    """A link's 64-bit counters (the 32-bit ``IFLA_STATS`` only if a kernel sent no 64-bit ones)."""
    raw = msg.get("IFLA_STATS64") or msg.get("IFLA_STATS")
    if raw is None:
        return LinkStats()
    return LinkStats(**{f: int(raw.get(f) or 0) for f in LinkStats.__dataclass_fields__})


def _route_record(m: Any) -> dict[str, Any]:
    """A route dump message as a plain dict that :meth:`Netlink.add_route` takes back."""
    dst = m.get("RTA_DST") or "0.0.0.0"
    metrics: dict[str, int] = {}
    raw = m.get("RTA_METRICS")
    if raw is not None:
        for name, value in raw.get("attrs", []):
            if name.startswith("RTAX_"):
                metrics[name[5:].lower()] = value
    multipath = m.get("RTA_MULTIPATH")
    return {
        "table": m.get("RTA_TABLE") or m["table"],
        "dst": f"{dst}/{m['dst_len']}",
        "gateway": m.get("RTA_GATEWAY"),
        "oif": m.get("RTA_OIF"),
        "priority": m.get("RTA_PRIORITY"),
        "scope": m["scope"],
        "proto": m["proto"],
        "type": m["type"],
        "prefsrc": m.get("RTA_PREFSRC"),
        "flags": m["flags"] & RTNH_F_ONLINK,     # the rest (linkdown, dead...) are the kernel's to set
        "tos": m["tos"],
        "metrics": metrics,
        "multipath": [hop["oif"] for hop in multipath] if multipath else None,
        "nh_id": m.get("RTA_NH_ID"),
    }


def drop_strays(ipr: IPRoute) -> int:
    """Empty the queue where pyroute2 puts replies that no request waits for (tag 0); return how many.

    pyroute2 (0.9.7) sends a ``get`` (link, route) with ``NLM_F_ACK``, returns at the answer and
    frees the request's tag; the kernel's ACK that follows is read during the *next* request and,
    its tag gone, queued under tag 0, which only a socket bound to multicast groups reads.  Nothing
    here is (cove's sockets only ask), so that queue held one 36-byte ACK per lookup for the
    socket's life: the host's socket lives as long as the daemon (issue 14, found with
    :mod:`cove.daemon.memprobe`).  On the kernel thread, between requests.
    """
    queues = getattr(getattr(ipr.asyncore.local, "msg_queue", None), "queues", None)
    queue = queues.get(0) if queues else None
    dropped = 0
    while queue is not None and not queue.empty():
        queue.get_nowait()
        queue.task_done()
        dropped += 1
    return dropped


@functools.lru_cache(maxsize=1024)
def _interface(ip: str, plen: int, family: int) -> IPv4Interface | IPv6Interface:
    """An address of a dump as an ``ipaddress`` object, the same object for the same text: every
    ``network create`` lists the host's addresses and routes again, mostly unchanged, and parsing
    them was 0.14 ms of the 0.4 ms the two dumps take (``ipaddress`` objects are immutable)."""
    return IPv4Interface(f"{ip}/{plen}") if family == socket.AF_INET else IPv6Interface(f"{ip}/{plen}")


@functools.lru_cache(maxsize=1024)
def _network(dst: str, plen: int) -> IPv4Network:
    """A route's destination (see :func:`_interface`)."""
    return IPv4Network(f"{dst}/{plen}", strict=False)


class Netlink:
    """Netlink verbs bound to one network namespace (the one its socket was made in)."""

    def __init__(self, ipr: IPRoute | None, path: str | None, ns_fd: int | None = None) -> None:
        #: pyroute2's socket, opened on first use (:meth:`_iproute`): a start needs none (:mod:`.rtlink`)
        self._ipr = ipr
        self.path = path
        #: the namespace held open from :meth:`NetlinkPool.get` on: the sockets made later are made
        #: in it through ``/proc/self/fd/N``, as they were in the namespace bound at ``path`` then
        self._ns_fd = ns_fd
        #: a plain rtnetlink socket in the same namespace for batched peer entries (made on first use)
        self._raw: socket.socket | None = None
        self._seq = 1 << 30

    def _where(self) -> str | None:
        """The path to enter for a new socket in this namespace (None: the daemon's)."""
        if self.path is None:
            return None
        return self.path if self._ns_fd is None else f"/proc/self/fd/{self._ns_fd}"

    def _iproute(self) -> IPRoute:
        """pyroute2's socket in this namespace, made on first use (on the kernel thread)."""
        if self._ipr is None:
            self._ipr = open_iproute(self._where())
        return self._ipr

    def _do(self, what: str, fn: Callable[[IPRoute], T]) -> T:
        """Run ``fn(ipr)`` on the kernel thread, translating netlink errors."""

        def work() -> T:
            ipr = self._iproute()
            try:
                with _translate(what):
                    return fn(ipr)
            finally:
                drop_strays(ipr)

        result = KERNEL_THREAD.call(work)
        if not what.startswith(("list ", "look up ")):      # a change: a test may die right after it
            crashpoint.reached(what)
        return result

    def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            KERNEL_THREAD.call(ipr.close)
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._ns_fd is not None:
            os.close(self._ns_fd)
            self._ns_fd = None

    # links -------------------------------------------------------------------------
    def links(self) -> list[Link]:
        return self._do("list links", lambda ipr: [_link_from_msg(m) for m in ipr.get_links()])

    def find(self, name: str) -> Link | None:
        try:
            msgs = self._do(f"look up link {name}", lambda ipr: ipr.link("get", ifname=name))
        except NotFound:
            return None
        return _link_from_msg(msgs[0])

    def index(self, name: str) -> int:
        """The index of link ``name`` here: one raw ``RTM_GETLINK`` (:mod:`.rtlink`)."""
        link = self._lookup(name)
        if link is None:
            raise NotFound(f"link {name} not found")
        return link.index

    def _lookup(self, name: str) -> rtlink.LinkInfo | None:
        """Link ``name`` here as a raw ``RTM_GETLINK`` answers it (None: there is none)."""
        try:
            found = self._link_request(f"look up link {name}", lambda seq: rtlink.getlink_request(seq, name))
        except NotFound:
            return None
        return next((lk for lk in found if lk.name == name), None)

    def add_bridge(self, name: str, alias: str, mtu: int | None = None, up: bool = False) -> int:
        """A bridge, tagged; ``up``: up from the start (the kernel applies the request's ``IFF_UP``
        on create, so that is one round trip fewer than a ``set_link(state="up")`` after).

        Two raw requests in one hand-off to the kernel thread (:mod:`.rtlink`): the create, echoed
        with the new index by Linux 6.3+ (an older kernel is asked), then the alias.  A failed tag
        deletes the bridge again."""
        what = f"create bridge {name}"

        def work() -> int:
            mac = rtlink.random_mac()        # fixed for the bridge's life, as dockerd's (rtlink.bridge_request)
            found = self._link_request(what, lambda seq: rtlink.bridge_request(seq, name, mtu=mtu, up=up, mac=mac))
            crashpoint.reached(what)
            index = self._created(what, name, found).index
            try:
                self._link_request(f"tag link {name}", lambda seq: rtlink.tag_request(seq, index, alias))
            except CoveError:
                self.delete_link(name)
                raise
            crashpoint.reached(f"tag link {name}")
            return index

        return KERNEL_THREAD.call(work)

    def _created(self, what: str, name: str, found: list[rtlink.LinkInfo], pair: bool = False) -> rtlink.LinkInfo:
        """The link ``name`` a create request just made, from its echo (``found``), else looked up (a
        kernel before 6.3 echoes nothing); ``pair``: a veth, whose peer's index (``iflink``) must be
        known too.  The link is deleted again when neither tells it, or the lookup fails."""
        mine = next((lk for lk in found if lk.name == name), None)
        try:
            if mine is None or (pair and mine.iflink is None):
                mine = self._lookup(name)
        except CoveError:
            self.delete_link(name)
            raise
        if mine is None or (pair and not mine.iflink):
            self.delete_link(name)
            told = "indexes of the new pair" if pair else "index of the new link"
            raise CoveError(f"{what}: the kernel did not tell the {told}")
        return mine

    def _tag(self, name: str, alias: str) -> int:
        """Set the alias that marks a new link as cove's (the kernel ignores it on create)."""
        index = self.index(name)
        try:
            self._do(f"tag link {name}", lambda ipr: ipr.link("set", index=index, IFLA_IFALIAS=alias))
        except CoveError:
            self.delete_link(name)
            raise
        return index

    def add_veth(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                 master: int | None = None, peer_mac: str | None = None) -> int:
        """Create a veth pair: ``name`` here, ``peer`` directly inside ``peer_netns``.

        ``master`` and ``peer_mac`` go in the create request itself (the kernel enslaves a new
        link to ``IFLA_MASTER`` and gives the peer its ``IFLA_ADDRESS``): two requests fewer
        per endpoint than a ``set`` for each afterwards."""
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # one queue each way, as :func:`.rtlink.veth_request` asks (why: there)
            peer_spec: dict[str, Any] = {"ifname": peer, "net_ns_fd": fd, "num_tx_queues": 1, "num_rx_queues": 1}
            kw: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer_spec,
                                  "num_tx_queues": 1, "num_rx_queues": 1}
            if master is not None:
                kw["master"] = master
            if peer_mac is not None:
                peer_spec["address"] = peer_mac
            if mtu:
                kw["mtu"] = mtu
                peer_spec["mtu"] = mtu
            self._do(f"create veth {name}", lambda ipr: ipr.link("add", **kw))
        finally:
            os.close(fd)
        return self._tag(name, alias)

    def add_veth_pair(self, name: str, peer: str, peer_netns: str, alias: str, mtu: int | None = None,
                      master: int | None = None, peer_mac: str | None = None, up: bool = False,
                      port: BridgePort | None = None) -> tuple[int, int]:
        """:meth:`add_veth` in two raw requests instead of pyroute2's four to six (:mod:`.rtlink`):
        the create (``master``, ``up``, and the peer's MAC in it; echoed by Linux 6.3+
        with both indexes), then the alias and ``port``'s bridge port flags in one change; returns
        (index here, the peer's index in ``peer_netns``).  A failed tag deletes the pair again.
        """
        what = f"create veth {name}"
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            found = self._link_request(what, lambda seq: rtlink.veth_request(
                seq, name, peer, fd, mtu=mtu, master=master, peer_mac=peer_mac, up=up))
        finally:
            os.close(fd)
        crashpoint.reached(what)
        mine = self._created(what, name, found, pair=True)
        flags = None if port is None else (port.hairpin, port.isolated)
        try:
            self._link_request(f"tag link {name}", lambda seq: rtlink.tag_request(seq, mine.index, alias, flags))
        except CoveError:
            self.delete_link(name)
            raise
        crashpoint.reached(f"tag link {name}")
        assert mine.iflink is not None                  # _created(pair=True) saw to it
        return mine.index, mine.iflink

    def _link_request(self, what: str, build: Callable[[int], bytes]) -> list[rtlink.LinkInfo]:
        """Send one request on the raw socket (kernel thread); the links it answered, up to its ack."""
        def work() -> list[rtlink.LinkInfo]:
            sock = self._raw_socket()
            self._seq = self._seq + 1 if self._seq < 1 << 31 else 1 << 30
            seq = self._seq
            links: list[rtlink.LinkInfo] = []
            try:
                sock.send(build(seq))
                while True:
                    found, acks = rtlink.replies(sock.recv(1 << 16), seq)
                    links += found
                    if seq in acks:
                        if acks[seq]:
                            raise _error(what, acks[seq])
                        return links
            except OSError as exc:
                raise CoveError(f"{what}: {exc}") from exc

        return KERNEL_THREAD.call(work)

    def add_link(self, name: str, kind: str, alias: str, **attrs: Any) -> int:
        """Create a link of ``kind`` here (``vlan``: ``link=``, ``vlan_id=``), tagged with ``alias``."""
        self._do(f"create {kind} link {name}", lambda ipr: ipr.link("add", ifname=name, kind=kind, **attrs))
        return self._tag(name, alias)

    def add_link_in(self, name: str, kind: str, netns_path: str, **attrs: Any) -> None:
        """Create a link stacked on one of ours (``link=`` index here) directly inside ``netns_path``."""
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._do(f"create {kind} link {name}",
                     lambda ipr: ipr.link("add", ifname=name, kind=kind, net_ns_fd=fd, **attrs))
        finally:
            os.close(fd)

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False if it was already gone."""
        try:
            self._do(f"delete link {name}", lambda ipr: ipr.link("del", ifname=name))
        except NotFound:
            return False
        return True

    def set_link(self, index: int, **attrs: Any) -> None:
        """Set link attributes: ``state="up"``, ``master=``, ``address=``, ``mtu=``, ``ifname=``.
        Up alone is one raw request (:func:`.rtlink.up_request`), the rest goes through pyroute2."""
        what = f"set link {index}"
        if attrs == {"state": "up"}:
            self._link_request(what, lambda seq: rtlink.up_request(seq, index))
            crashpoint.reached(what)
            return
        self._do(what, lambda ipr: ipr.link("set", index=index, **attrs))

    def set_bridge_port(self, index: int, isolated: bool = False, hairpin: bool = False) -> None:
        """Bridge port flags in one message.

        ``isolated``: isolated ports cannot talk to each other (``enable_icc=false``).
        ``hairpin``: frames may leave by the port they came in on, so a container
        reaches itself through the host's published port (DNAT back to itself).
        """
        self._do(f"set bridge port {index} flags",
                 lambda ipr: ipr.brport("set", index=index, isolated=int(isolated), mode=int(hairpin)))

    def announce(self, ifname: str, ip: IPv4Address, mac: str) -> None:
        """Send a gratuitous ARP for ``ip`` at ``mac`` out of ``ifname`` (this namespace's link).

        As pipework's ``arping -A``: neighbours that cached another MAC for the
        address (a container re-attached, a moved address) update at once.
        """
        hw = bytes.fromhex(mac.replace(":", ""))
        addr = IPv4Address(ip).packed
        # a gratuitous request and a gratuitous reply (arping -U and -A): neighbours honour either
        frames = [b"\xff" * 6 + hw + struct.pack("!H", 0x0806)
                  + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + hw + addr + (b"\0" * 6 if op == 1 else hw) + addr
                  for op in (1, 2)]
        self.wait_running(ifname)

        def work() -> None:
            where = self._where()
            if where is None:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            else:
                with netns.entered(where):
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            with sock:
                sock.bind((ifname, 0))
                for frame in frames:
                    sock.send(frame)

        try:
            KERNEL_THREAD.call(work)
        except OSError as exc:
            raise CoveError(f"announce {ip} on {ifname}: {exc.strerror or exc}") from exc

    def wait_running(self, ifname: str, timeout: float = 2.0) -> None:
        """Wait (bounded) until the link is operationally up.

        Carrier changes are applied by the kernel's linkwatch work, a little later:
        until then the link's queue drops frames and, for a bridge port, the port
        is still disabled.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self._do(f"look up link {ifname}", lambda ipr: ipr.link("get", ifname=ifname))
            if msgs and msgs[0].get("IFLA_OPERSTATE") == "UP":
                return
            time.sleep(0.01)

    def link_stats(self) -> dict[str, LinkStats]:
        return self._do("read link counters",
                        lambda ipr: {m.get("IFLA_IFNAME"): _stats_from_msg(m) for m in ipr.get_links()})

    # addresses and routes ----------------------------------------------------------
    def add_address(self, index: int, ip: IPv4Address | IPv6Address, prefixlen: int, flags: int = 0) -> None:
        """Add an address: IPv4 with the subnet's broadcast address (none on /31 and /32); IPv6
        without duplicate address detection (usable at once, as ``ip addr add ... nodad``:
        cove's IPAM already made it unique on its bridge).  One raw request (:func:`.rtlink.address_request`)."""
        if ip.version == 6:
            flags |= IFA_F_NODAD
        self._link_request(f"add address {ip}/{prefixlen}",
                           lambda seq: rtlink.address_request(seq, index, ip, prefixlen, flags))
        crashpoint.reached(f"add address {ip}/{prefixlen}")

    def delete_address(self, index: int, ip: IPv4Address, prefixlen: int) -> bool:
        """Delete one address; False if it was not there."""
        try:
            self._do(f"delete address {ip}/{prefixlen}",
                     lambda ipr: ipr.addr("del", index=index, address=str(ip), prefixlen=prefixlen))
        except NotFound:
            return False
        except CoveError as exc:
            if isinstance(exc.__cause__, NetlinkError) and exc.__cause__.code == errno.EADDRNOTAVAIL:
                return False
            raise
        return True

    def address_records(self, index: int) -> list[dict[str, Any]]:
        """The IPv4 addresses of one link, primary first, as ``{address, prefixlen, flags}``."""
        msgs = self._do("list addresses", lambda ipr: list(ipr.get_addr(family=2, index=index)))
        out = []
        for m in msgs:
            flags = m.get("IFA_FLAGS") or m["flags"]
            out.append({"address": m.get("IFA_LOCAL") or m.get("IFA_ADDRESS"), "prefixlen": m["prefixlen"],
                        "flags": flags & IFA_F_NOPREFIXROUTE, "secondary": bool(flags & 0x01)})
        out.sort(key=lambda a: a["secondary"])
        return out

    def addresses(self, index: int | None = None, family: int = 2) -> list[tuple[int, Any]]:
        """(link index, address/prefix) of every IPv4 address (``family=10``: IPv6)."""
        found = self._raw_dump("list addresses", rtdump.addr_request, rtdump.addr_entries, family)
        return [(ix, _interface(ip, plen, family)) for ix, ip, plen in found if index is None or ix == index]

    def add_default_route(self, gateway: IPv4Address | IPv6Address) -> None:
        """The default route via ``gateway``: one raw request (:func:`.rtlink.default_route_request`)."""
        what = f"add default route via {gateway}"
        self._link_request(what, lambda seq: rtlink.default_route_request(seq, gateway))
        crashpoint.reached(what)

    def add_default_route_dev(self, index: int) -> None:
        """A default route straight out of an interface, no gateway (ipvlan L3)."""
        self._do("add default route", lambda ipr: ipr.route("add", dst="0.0.0.0/0", oif=index))

    def route_records(self) -> list[dict[str, Any]]:
        """Every IPv4 route of every table, as dicts (see :func:`_route_record`)."""
        msgs = self._do("list routes", lambda ipr: list(ipr.get_routes(family=2)))
        return [_route_record(m) for m in msgs]

    def add_route(self, rec: dict[str, Any], oif: int, replace: bool = False) -> None:
        """Add a route recorded by :meth:`route_records`, out of the link ``oif``."""
        kw: dict[str, Any] = {"dst": rec["dst"], "oif": oif, "table": rec.get("table") or 254,
                              "scope": rec.get("scope", 0), "proto": rec.get("proto", 3),
                              "type": rec.get("type", 1)}
        for key in ("gateway", "priority", "prefsrc"):
            if rec.get(key) is not None:
                kw[key] = rec[key]
        if rec.get("flags"):
            kw["flags"] = rec["flags"]
        if rec.get("tos"):
            kw["tos"] = rec["tos"]
        if rec.get("metrics"):
            kw["metrics"] = dict(rec["metrics"])
        via = f" via {rec['gateway']}" if rec.get("gateway") else ""
        self._do(f"add route {rec['dst']}{via}", lambda ipr: ipr.route("replace" if replace else "add", **kw))

    def delete_route(self, rec: dict[str, Any], oif: int) -> bool:
        """Delete a route (as recorded) out of ``oif``; False if it was not there."""
        # scope "nowhere" matches a route of any scope, as ``ip route del`` does
        kw: dict[str, Any] = {"dst": rec["dst"], "oif": oif, "table": rec.get("table") or 254, "scope": 255}
        if rec.get("priority") is not None:
            kw["priority"] = rec["priority"]
        try:
            self._do(f"delete route {rec['dst']}", lambda ipr: ipr.route("del", **kw))
        except NotFound:
            return False
        return True

    def default_route(self) -> tuple[str, int | None] | None:
        """The main table's IPv4 default route as (gateway or "", out interface index); None if none."""
        msgs = self._do("list routes", lambda ipr: list(ipr.get_routes(family=2, table=254)))
        best = None
        for m in msgs:
            if m["dst_len"] != 0 or m.get("RTA_DST") not in (None, "0.0.0.0"):
                continue
            if m.get("type", 1) != 1:           # unicast only (not unreachable/blackhole)
                continue
            prio = m.get("RTA_PRIORITY") or 0
            if best is None or prio < best[0]:
                best = (prio, m.get("RTA_GATEWAY") or "", m.get("RTA_OIF"))
        return None if best is None else (best[1], best[2])

    def replace_default_route(self, gateway: IPv4Address | None = None, index: int | None = None) -> None:
        """Make the default route go via ``gateway`` (or straight out of link ``index``), atomically."""
        kw: dict[str, Any] = {"dst": "0.0.0.0/0"}
        if gateway is not None:
            kw["gateway"] = str(gateway)
        if index is not None:
            kw["oif"] = index
        self._do(f"replace default route via {gateway or index}", lambda ipr: ipr.route("replace", **kw))

    def delete_default_route(self) -> bool:
        """Delete the default route; False if there was none."""
        try:
            self._do("delete default route", lambda ipr: ipr.route("del", dst="0.0.0.0/0"))
        except NotFound:
            return False
        return True

    def routes(self) -> list[IPv4Network]:
        """Destinations of the IPv4 routes in the main table (default route excluded)."""
        found = self._raw_dump("list routes", rtdump.route_request, rtdump.route_entries, socket.AF_INET)
        return [_network(dst, plen) for table, dst, plen in found if table == RT_TABLE_MAIN and dst and plen > 0]

    def _raw_dump(self, what: str, request: Callable[[int, int], bytes],
                  parse: Callable[[bytes, int], tuple[list[E], bool, int]], family: int) -> list[E]:
        """One dump on the raw socket, parsed by :mod:`.rtdump` (a tenth of pyroute2's cost)."""
        def work() -> list[E]:
            sock = self._raw_socket()
            self._seq += 1
            seq = self._seq
            out: list[E] = []
            try:
                sock.send(request(seq, family))
                while True:
                    entries, done, err = parse(sock.recv(1 << 18), seq)
                    out += entries
                    if err:
                        raise CoveError(f"{what}: {os.strerror(err)}")
                    if done:
                        return out
            except OSError as exc:
                raise CoveError(f"{what}: {exc}") from exc

        return KERNEL_THREAD.call(work)


    # VXLAN peers ------------------------------------------------------------------------
    def replace_peer(self, index: int, ip: str, mac: str, vtep: str) -> None:
        """``bridge fdb replace MAC dev VX dst VTEP self permanent`` + ``ip neigh replace IP lladdr MAC nud permanent``.

        ``flags=NTF_SELF`` matters: without it pyroute2 writes a bridge-master entry with no ``dst``.
        """
        self._do(f"add fdb {mac} dst {vtep}", lambda ipr: ipr.fdb("replace", ifindex=index, lladdr=mac, dst=vtep,
                                                               state=NUD_PERMANENT, flags=NTF_SELF))
        self._do(f"add neighbour {ip}", lambda ipr: ipr.neigh("replace", ifindex=index, dst=ip, lladdr=mac,
                                                              state=NUD_PERMANENT))

    def delete_peer(self, index: int, ip: str, mac: str, vtep: str) -> None:
        """Remove both entries; missing ones count as removed."""
        try:
            self._do(f"delete neighbour {ip}", lambda ipr: ipr.neigh("del", ifindex=index, dst=ip, lladdr=mac))
        except NotFound:
            pass
        try:
            self._do(f"delete fdb {mac}", lambda ipr: ipr.fdb("del", ifindex=index, lladdr=mac, dst=vtep,
                                                            flags=NTF_SELF))
        except NotFound:
            pass

    def replace_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None:
        """:meth:`replace_peer` for many peers: the messages go in chunks, many to a datagram, and
        the acks are read back (:mod:`cove.kernel.peerbatch`).  Every entry is tried; the failures
        are raised together afterwards as one error."""
        self._peer_batch(index, peers, add=True)

    def delete_peers(self, index: int, peers: Sequence[tuple[str, str, str]]) -> None:
        """:meth:`delete_peer` for many peers (missing entries count as removed)."""
        self._peer_batch(index, peers, add=False)

    def _raw_socket(self) -> socket.socket:
        """The batch socket, made (on the kernel thread) in this namespace."""
        if self._raw is None:
            def make() -> socket.socket:
                s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                try:                    # room for a whole chunk's acks (the kernel queues them during send)
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 21)
                except OSError:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
                s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)      # acks without the request echoed
                s.settimeout(5.0)
                s.bind((0, 0))
                return s

            where = self._where()
            if where is None:
                self._raw = make()
            else:
                with netns.entered(where):
                    self._raw = make()
        return self._raw

    def _peer_batch(self, index: int, peers: Sequence[tuple[str, str, str]], add: bool) -> None:
        if not peers:
            return
        what = f"{'add' if add else 'delete'} {len(peers)} peers on {index}"

        def work() -> list[str]:
            sock = self._raw_socket()
            msgs = list(peerbatch.peer_messages(index, peers, add, self._seq))
            self._seq += len(msgs)
            if self._seq > 1 << 31:
                self._seq = 1 << 30
            failed: list[str] = []
            for start in range(0, len(msgs), PEER_CHUNK):
                chunk = msgs[start:start + PEER_CHUNK]
                pending = {seq: desc for seq, _, desc in chunk}
                try:
                    sock.send(b"".join(m for _, m, _ in chunk))
                    while pending:
                        for seq, err in peerbatch.acks(sock.recv(1 << 16)):
                            desc = pending.pop(seq, None)
                            if desc is not None and err and not (not add and err in (errno.ENOENT, errno.ENODEV)):
                                failed.append(f"{desc}: {os.strerror(err)}")
                except OSError as exc:          # a timeout included: the rest of the batch is unknown
                    raise CoveError(f"{what}: {exc}") from exc
            return failed

        failed = KERNEL_THREAD.call(work)
        crashpoint.reached(what)
        if failed:
            raise CoveError(f"{what}: {len(failed)} entries failed, first: {failed[0]}")

    def peers(self, index: int) -> list[tuple[str, str, str]]:
        """Two raw dumps (FDB, then IPv4 neighbours) parsed with :mod:`struct`: through pyroute2 the
        10,000 peers of a large cluster took 3 s to list, here a tenth of that."""
        def work() -> list[tuple[str, str, str]]:
            sock = self._raw_socket()
            vteps = {mac: dst for fam, ix, state, dst, mac in self._dump(sock, peerbatch.AF_BRIDGE)
                     if ix == index and dst and state & NUD_PERMANENT}
            return [(dst, mac, vteps[mac]) for fam, ix, state, dst, mac in self._dump(sock, socket.AF_INET)
                    if ix == index and state & NUD_PERMANENT and mac in vteps]

        return KERNEL_THREAD.call(work)

    def _dump(self, sock: socket.socket, family: int) -> list[peerbatch.Entry]:
        self._seq += 1
        try:
            sock.send(peerbatch.dump_request(self._seq, family))
            out: list[peerbatch.Entry] = []
            while True:
                entries, done, err = peerbatch.dump_entries(sock.recv(1 << 18), self._seq)
                out += entries
                if err:
                    raise CoveError(f"list peers: {os.strerror(err)}")
                if done:
                    return out
        except OSError as exc:
            raise CoveError(f"list peers: {exc}") from exc


class NetlinkPool:
    """One :class:`Netlink` per namespace path; ``None`` is the daemon's own namespace."""

    def __init__(self) -> None:
        self._socks: dict[str | None, Netlink] = {}
        self._lock = threading.Lock()

    @property
    def host(self) -> Netlink:
        return self.get(None)

    def get(self, path: str | None = None) -> Netlink:
        with self._lock:
            nl = self._socks.get(path)
            if nl is None:
                # no socket yet (each kind is made on first use, in the namespace held here)
                fd = None
                if path is not None:
                    try:
                        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError as exc:
                        raise CoveError(f"network namespace {path} does not exist") from exc
                nl = Netlink(None, path, fd)
                self._socks[path] = nl
            return nl

    def drop(self, path: str) -> None:
        with self._lock:
            nl = self._socks.pop(path, None)
        if nl is not None:
            nl.close()

    def close(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, {}
        for nl in socks.values():
            nl.close()


def open_iproute(path: str | None) -> IPRoute:
    """Open a netlink socket bound to the namespace at ``path`` (None: the caller's)."""
    if path is None:
        return IPRoute()
    with netns.entered(path):
        return IPRoute()


def sysctl_set(key: str, value: str) -> None:
    """Write ``net.ipv4.ip_forward``-style keys for the daemon's own namespace."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def sysctl_set_in(path: str, key: str, value: str) -> None:
    """:func:`sysctl_set` inside the network namespace at ``path`` (``/proc/sys/net`` shows
    the namespace of the thread that opens it), done by a short-lived thread."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with netns.entered(path):
                sysctl_set(key, value)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    t = threading.Thread(target=work, name="cove-sysctl")
    t.start()
    t.join()
    if failure:
        raise CoveError(f"sysctl {key}={value} in {path}: {failure[0]}") from failure[0]


def sysctl_get(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()
