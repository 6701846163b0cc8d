"""A veth pair or a bridge made, enslaved, up and tagged in two round trips: raw rtnetlink link
(and address) messages.

An endpoint's host side used to be six requests through pyroute2 (bridge index, create, index,
alias, bridge port flags, up) and its inner side began with a lookup of the peer's index.  Here the
pair is one ``RTM_NEWLINK`` create: the host end with ``IFLA_MASTER`` and ``IFF_UP`` in its
``ifinfomsg``, the peer (``VETH_INFO_PEER``: its own ``ifinfomsg`` and attributes) created with
its MAC straight inside the container's namespace (``IFLA_NET_NS_FD``); the kernel applies
a create request's flags and master (``rtnl_configure_link``, ``do_set_master``).  A second
``RTM_NEWLINK`` on the new link's index (no ``NLM_F_CREATE``: a change) sets the alias that marks
it as cove's (``IFLA_IFALIAS``, which the kernel ignores on create) and the bridge port flags
(``IFLA_INFO_SLAVE_DATA``: hairpin, isolated; ``slave_changelink``).  Not in the create's datagram
by name: had the create failed with ``EEXIST``, that would tag someone else's link as cove's.

The create asks for ``NLM_F_ECHO``: Linux 6.3 and later send the new host link back (its index,
and in ``IFLA_LINK`` the peer's index in its namespace), so no lookup follows; an older kernel
sends nothing and the caller asks with :func:`getlink_request`.  Pure functions: the I/O is
:meth:`cove.kernel.netlink.Netlink.add_veth_pair`, on the kernel thread, on its raw socket.

A bridge (:func:`bridge_request`, :meth:`cove.kernel.netlink.Netlink.add_bridge`) is made the same
way: the create (up, with its MTU; echoed), then the alias.  Its gateway addresses are
``RTM_NEWADDR`` requests (:func:`address_request`, :meth:`~cove.kernel.netlink.Netlink.add_address`).
Inside a new container's namespace the rest of a join is raw too: ``lo`` and the peer up
(:func:`up_request`, after a :func:`getlink_request` for ``lo``'s index), the default route
(:func:`default_route_request`); so no pyroute2 socket is opened there at all on a start (its
``IPRoute()`` alone, an asyncio loop and its message classes, was ~2 ms of the daemon's Python per
start: py-spy ``--gil`` over 80 starts, 2026-12-07).
Why by hand when pyroute2 is there: a request through pyroute2 costs ~0.5 ms of Python on top of
the kernel's work (its message classes, its asyncio loop).  Measured in ``tests/sandbox.sh``, 40
reps, medians (2026-12-07): ``ipr.link("add", kind="bridge", state="up")`` 0.80 ms, the same
create here 0.33 ms, the create and the tag here 0.35 ms; cove's pyroute2 ``add_bridge`` (create,
lookup of the index, tag) was 1.70 ms.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from . import rtdump
from .peerbatch import acks as read_acks

_HDR = struct.Struct("=IHHII")       # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")   # ifinfomsg: family, type, index, flags, change
_ATTR = struct.Struct("=HH")         # rtattr: len, type

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLA_F_NESTED = 0x8000
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
IFF_UP = 0x1
AF_INET = 2
AF_INET6 = 10

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_NUM_TX_QUEUES = 31
IFLA_NUM_RX_QUEUES = 32
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4                 # hairpin
IFLA_BRPORT_ISOLATED = 33
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_FLAGS = 8

_IFADDR = struct.Struct("=BBBBI")    # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTA_GATEWAY = 5
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4                    # what pyroute2's route("add") sets: `ip route` says "proto static"
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What a ``RTM_NEWLINK`` answer says of a link: index, name, and ``IFLA_LINK`` (a veth's peer)."""

    index: int
    name: str
    iflink: int | None


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _ATTR.pack(_ATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _nested(kind: int, *parts: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(parts))


def _name(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _u8(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=B", value))


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text}")
    return raw


def _message(mtype: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HDR.pack(_HDR.size + len(body), mtype, flags, seq, 0) + body


def veth_request(seq: int, name: str, peer: str, netns_fd: int, *, mtu: int | None = None,
                 master: int | None = None, peer_mac: str | None = None, up: bool = False) -> bytes:
    """``RTM_NEWLINK`` create (exclusive, acked, echoed) of veth ``name`` here and ``peer`` in the
    namespace of ``netns_fd``."""
    # one queue each way, asked for at the create on both ends: what the kernel leaves active anyway
    # (veth_init_queues), but without it each end is allocated one queue per possible CPU and then cut
    # down to one after it is registered: netif_set_real_num_tx_queues -> synchronize_net, a grace
    # period (0.7-1.2 ms on this machine, more under load), twice per pair, under the RTNL lock
    queues = [_u32(IFLA_NUM_TX_QUEUES, 1), _u32(IFLA_NUM_RX_QUEUES, 1)]
    peer_attrs = [_name(IFLA_IFNAME, peer), _u32(IFLA_NET_NS_FD, netns_fd), *queues]
    attrs = [_name(IFLA_IFNAME, name), *queues]
    if mtu:
        attrs.append(_u32(IFLA_MTU, mtu))
        peer_attrs.append(_u32(IFLA_MTU, mtu))
    if peer_mac is not None:
        peer_attrs.append(_attr(IFLA_ADDRESS, _mac(peer_mac)))
    if master is not None:
        attrs.append(_u32(IFLA_MASTER, master))
    # the peer cannot be made up here: its open (veth_open) finds no peer yet and says ENOTCONN
    peer_info = _IFINFO.pack(0, 0, 0, 0, 0) + b"".join(peer_attrs)
    attrs.append(_nested(IFLA_LINKINFO, _name(IFLA_INFO_KIND, "veth"),
                         _nested(IFLA_INFO_DATA, _nested(VETH_INFO_PEER, peer_info))))
    flags = IFF_UP if up else 0
    body = _IFINFO.pack(0, 0, 0, flags, flags) + b"".join(attrs)
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def random_mac() -> str:
    """A random unicast, locally administered MAC (as libnetwork's ``GenerateRandomMAC``)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def bridge_request(seq: int, name: str, *, mtu: int | None = None, up: bool = False,
                   mac: str | None = None) -> bytes:
    """``RTM_NEWLINK`` create (exclusive, acked, echoed) of bridge ``name``; ``up``: ``IFF_UP`` in the
    request (the kernel applies a create's flags); ``mac``: its address, set at create.

    A bridge made without one has a random address only until its first port: from then on the
    kernel gives it the lowest MAC among its ports (``br_stp_recalculate_bridge_id``, a walk of
    every port at each join and leave), so the gateway's MAC changes when that container leaves
    and its neighbours' ARP entries name a MAC no one has.  Set at create (``NET_ADDR_SET``), it
    stays; dockerd gives its bridges a random one too (``setupDevice``)."""
    attrs = [_name(IFLA_IFNAME, name)]
    if mtu:
        attrs.append(_u32(IFLA_MTU, mtu))
    if mac is not None:
        attrs.append(_attr(IFLA_ADDRESS, _mac(mac)))
    attrs.append(_nested(IFLA_LINKINFO, _name(IFLA_INFO_KIND, "bridge")))
    flags = IFF_UP if up else 0
    body = _IFINFO.pack(0, 0, 0, flags, flags) + b"".join(attrs)
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def address_request(seq: int, index: int, ip: IPv4Address | IPv6Address, prefixlen: int, flags: int = 0) -> bytes:
    """``RTM_NEWADDR`` create (exclusive, acked) of ``ip/prefixlen`` on link ``index``, as ``ip addr
    add``: ``IFA_LOCAL`` and ``IFA_ADDRESS`` both the address, an IPv4 one with its subnet's
    broadcast address (none on /31 and /32), scope global; ``flags`` (``IFA_F_*``) in the header and,
    past its 8 bits, in ``IFA_FLAGS``."""
    raw = ip.packed
    attrs = [_attr(IFA_LOCAL, raw), _attr(IFA_ADDRESS, raw)]
    if ip.version == 4 and prefixlen < 31:
        host_bits = (1 << (32 - prefixlen)) - 1
        attrs.append(_attr(IFA_BROADCAST, (int.from_bytes(raw, "big") | host_bits).to_bytes(4, "big")))
    if flags > 0xFF:
        attrs.append(_u32(IFA_FLAGS, flags))
    body = _IFADDR.pack(AF_INET6 if ip.version == 6 else AF_INET, prefixlen, flags & 0xFF, 0, index)
    return _message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body + b"".join(attrs))


def tag_request(seq: int, index: int, alias: str, port: tuple[bool, bool] | None = None) -> bytes:
    """``RTM_NEWLINK`` change of link ``index``: its alias, and with ``port`` = (hairpin, isolated)
    its bridge port flags."""
    attrs = [_name(IFLA_IFALIAS, alias)]
    if port is not None:
        hairpin, isolated = port
        attrs.append(_nested(IFLA_LINKINFO, _name(IFLA_INFO_SLAVE_KIND, "bridge"),
                             _nested(IFLA_INFO_SLAVE_DATA, _u8(IFLA_BRPORT_MODE, int(hairpin)),
                                     _u8(IFLA_BRPORT_ISOLATED, int(isolated)))))
    body = _IFINFO.pack(0, 0, index, 0, 0) + b"".join(attrs)
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def up_request(seq: int, index: int) -> bytes:
    """``RTM_NEWLINK`` change of link ``index``: up (``IFF_UP`` in flags and change mask, as ``ip link
    set ... up``)."""
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP))


def default_route_request(seq: int, gateway: IPv4Address | IPv6Address) -> bytes:
    """``RTM_NEWROUTE`` create (exclusive, acked) of the default route via ``gateway`` in the main
    table: unicast, scope universe, protocol static (the route pyroute2 made before: unchanged
    for ``ip route``)."""
    family = AF_INET6 if gateway.version == 6 else AF_INET
    body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
    attrs = _u32(RTA_TABLE, RT_TABLE_MAIN) + _attr(RTA_GATEWAY, gateway.packed)
    return _message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body + attrs)


def getlink_request(seq: int, name: str) -> bytes:
    """``RTM_GETLINK`` of one link by name (acked, so the answer ends with the ack)."""
    body = _IFINFO.pack(0, 0, 0, 0, 0) + _name(IFLA_IFNAME, name)
    return _message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def replies(data: bytes, seq: int) -> tuple[list[LinkInfo], dict[int, int]]:
    """The links (``RTM_NEWLINK``) answering request ``seq`` (a reply, or the echo of a create,
    which carries the request's number) and the acks (sequence number -> errno, 0 for success) in
    one datagram of answers."""
    links: list[LinkInfo] = []
    off = 0
    while off + _HDR.size <= len(data):
        length, mtype, _, mseq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        if mtype == RTM_NEWLINK and mseq == seq and length >= _HDR.size + _IFINFO.size:
            _, _, index, _, _ = _IFINFO.unpack_from(data, off + _HDR.size)
            attrs = rtdump.attributes(data, off + _HDR.size + _IFINFO.size, off + length)
            name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
            link = attrs.get(IFLA_LINK)
            links.append(LinkInfo(index, name, struct.unpack("=I", link)[0] if link and len(link) == 4 else None))
        off += (length + 3) & ~3
    return links, dict(read_acks(data))
