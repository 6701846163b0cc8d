"""VXLAN peer entries as raw rtnetlink messages, for programming thousands in one go.

A remote endpoint of an overlay network is two kernel entries on the VXLAN device (see
:meth:`cove.kernel.api.Netlink.replace_peer`): a permanent FDB entry MAC → VTEP (``AF_BRIDGE``,
``NTF_SELF``) and a permanent neighbour entry IP → MAC (``AF_INET``) for the ARP proxy.  Through
pyroute2 each costs a request, a wait for its ack and a parse, about 1 ms with the kernel-thread
hand-off: a host joining a cluster of 100 hosts × 100 endpoints spent 15 s there.  Here the
messages are packed with :mod:`struct` (pure, no I/O) so :class:`cove.kernel.netlink.Netlink`
can send them in chunks of many messages per datagram and read the acks back, which the kernel
sends one per message, in order.

Only what the peers need is encoded: ``nlmsghdr`` + ``ndmsg`` + ``NDA_DST`` + ``NDA_LLADDR``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator

RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NDA_DST = 1
NDA_LLADDR = 2
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
AF_BRIDGE = 7

_HDR = struct.Struct("=IHHII")       # nlmsghdr: len, type, flags, seq, pid
_NDMSG = struct.Struct("=BBHiHBB")   # ndmsg: family, pad1, pad2, ifindex, state, flags, type
_ATTR = struct.Struct("=HH")         # rtattr: len, type

#: one peer: (ip, mac, vtep)
Peer = tuple[str, str, str]


def _attr(kind: int, data: bytes) -> bytes:
    size = _ATTR.size + len(data)
    return _ATTR.pack(size, kind) + data + b"\0" * (-size % 4)


def _mac(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def neigh_message(seq: int, add: bool, family: int, index: int, dst: str, mac: str, flags: int) -> bytes:
    """One RTM_NEWNEIGH (``add``: create or replace, permanent) or RTM_DELNEIGH request with an ack."""
    body = _NDMSG.pack(family, 0, 0, index, NUD_PERMANENT if add else 0, flags, 0)
    body += _attr(NDA_DST, socket.inet_aton(dst)) + _attr(NDA_LLADDR, _mac(mac))
    kind = RTM_NEWNEIGH if add else RTM_DELNEIGH
    nl_flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_REPLACE if add else 0)
    return _HDR.pack(_HDR.size + len(body), kind, nl_flags, seq, 0) + body


def peer_messages(index: int, peers: Iterable[Peer], add: bool, seq: int) -> Iterator[tuple[int, bytes, str]]:
    """(seq, message, what) for every entry of ``peers`` on VXLAN device ``index``, numbered from
    ``seq``.  Adding writes the FDB entry before the neighbour entry (the proxy never answers for a
    MAC with no way out), removing takes them in the opposite order; as the single-peer verbs do."""
    for ip, mac, vtep in peers:
        fdb = (AF_BRIDGE, vtep, NTF_SELF, f"fdb {mac} dst {vtep}")
        neigh = (socket.AF_INET, ip, 0, f"neighbour {ip}")
        for family, dst, flags, what in ((fdb, neigh) if add else (neigh, fdb)):
            yield seq, neigh_message(seq, add, family, index, dst, mac, flags), f"{'add' if add else 'delete'} {what}"
            seq += 1


def acks(data: bytes) -> Iterator[tuple[int, int]]:
    """(seq, errno) of each ack in a datagram read from the socket (0: success)."""
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _, seq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        if kind == NLMSG_ERROR and length >= _HDR.size + 4:
            (err,) = struct.unpack_from("=i", data, off + _HDR.size)
            yield seq, -err
        off += (length + 3) & ~3


RTM_GETNEIGH = 30
NLMSG_DONE = 3
NLM_F_DUMP = 0x300


def dump_request(seq: int, family: int) -> bytes:
    """RTM_GETNEIGH dump of one family (``AF_BRIDGE``: the FDB; ``AF_INET``: neighbours), unfiltered."""
    body = _NDMSG.pack(family, 0, 0, 0, 0, 0, 0)
    return _HDR.pack(_HDR.size + len(body), RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


#: one entry of a dump: (family, ifindex, state, dst address or "", lladdr "aa:bb:..." or "")
Entry = tuple[int, int, int, str, str]


def dump_entries(data: bytes, seq: int) -> tuple[list[Entry], bool, int]:
    """The neighbour entries of one datagram of dump ``seq``, whether it held the end (NLMSG_DONE), and
    the errno of an error message (0: none).  Messages of another sequence number (a late ack of an
    earlier batch) are skipped."""
    out: list[Entry] = []
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _, mseq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        if mseq != seq:
            off += (length + 3) & ~3
            continue
        if kind == NLMSG_DONE:
            return out, True, 0
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, off + _HDR.size)
            return out, True, -err
        if kind == RTM_NEWNEIGH and length >= _HDR.size + _NDMSG.size:
            family, _, _, ifindex, state, _, _ = _NDMSG.unpack_from(data, off + _HDR.size)
            dst = lladdr = ""
            a = off + _HDR.size + _NDMSG.size
            end = off + length
            while a + _ATTR.size <= end:
                alen, atype = _ATTR.unpack_from(data, a)
                if alen < _ATTR.size:
                    break
                value = data[a + _ATTR.size:a + alen]
                if atype == NDA_DST and len(value) == 4:
                    dst = socket.inet_ntoa(value)
                elif atype == NDA_DST and len(value) == 16:
                    dst = socket.inet_ntop(socket.AF_INET6, value)
                elif atype == NDA_LLADDR and len(value) == 6:
                    lladdr = ":".join(f"{b:02x}" for b in value)
                a += (alen + 3) & ~3
            out.append((family, ifindex, state, dst, lladdr))
        off += (length + 3) & ~3
    return out, False, 0
