"""Answering one DNS query the way Docker's embedded resolver (127.0.0.11) does.

:class:`Resolver` turns a query packet into a reply packet, with no sockets of
its own: the caller reads a packet inside a container's namespace, passes it
with the networks that container is on, and sends back what it gets.

- Names of containers that share a network with the asker are answered
  locally: A (all addresses, in random order, TTL 600), AAAA with their IPv6
  addresses on ``--ipv6`` networks, other types (and AAAA without IPv6) with
  NOERROR and no records, PTR for their IPv4 addresses.
- Other names go to the upstream servers through a *forwarder*, except names
  of a single label, which get NXDOMAIN at once (Docker does the same).
- Malformed input is dropped or answered FORMERR; no input raises or blocks
  longer than the forwarder's timeout.  A failed answer is never larger than
  the question it repeats, and UDP answers larger than the client accepts are
  truncated with TC set, so the server is useless as an amplifier.

Wire format is parsed and built with :mod:`dnslib`.  Parsing a query costs far
more than answering it, so the decision for a query (its *plan*: which records
to send, or to forward) is cached under the query's bytes with the name folded
to lower case, and a repeated query is answered by splicing the cached answer
records behind the asker's header and question, without parsing.  Plans are
dropped when :attr:`Records.version` changes.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dnslib import AAAA, CLASS, QTYPE, RR, A, DNSBuffer, DNSLabel, DNSQuestion, DNSRecord, EDNS0, PTR

from cove.dns.records import Records
from cove.ipam import is_ip as _is_ip

log = logging.getLogger(__name__)

TTL = 600  # what Docker's resolver gives container records
MAX_UPSTREAMS = 3
MAX_QUERY = 4096  # no real query comes near this; larger packets are dropped unread
UDP_DEFAULT = 512  # the UDP answer size every client takes (RFC 1035)
EDNS_SIZE = 1232  # the UDP size this server advertises (DNS flag day 2020)
CACHE_SIZE = 4096
PERMUTE = 4  # up to this many records, every order is encoded once (4! = 24 bodies)
CACHE_TAIL = 128  # queries with a longer additional section are answered but not cached

# header flags
QR, OPCODE, AA, TC, RD, RA = 0x8000, 0x7800, 0x0400, 0x0200, 0x0100, 0x0080
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

CLASS_ANY = 255
_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True)
class Upstream:
    """A DNS server that names not known locally are sent to."""

    address: str
    port: int = 53


#: ``forwarder(packet, upstreams, transport)``: the raw upstream reply, or None
Forwarder = Callable[[bytes, list[Upstream], str], "bytes | None"]


@dataclass
class Stats:
    """What the resolver has done so far.  Counted without locks: approximate
    when several threads answer at once."""

    queries: int = 0
    answered_local: int = 0  # answered from the name table (records or NODATA)
    forwarded: int = 0  # handed to the forwarder
    nxdomain: int = 0  # single-label unknown names answered NXDOMAIN at once
    dropped: int = 0  # no reply at all
    servfail: int = 0  # forwarding impossible or failed
    formerr: int = 0
    notimp: int = 0


_LOCAL, _FORWARD = 0, 1


class _Deferred(bytes):
    """The type of :data:`FORWARD`."""


#: what :meth:`Resolver.answer_local` returns for a query that must go upstream
FORWARD = _Deferred(b"")


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to answer one (cached) kind of query; everything but id, RD and question case."""

    kind: int
    flags: int  # reply flags without RD; for _FORWARD, those of the SERVFAIL sent on failure
    answers: tuple[bytes, ...]  # encoded records, names compressed against the question only
    bodies: tuple[bytes, ...]  # the answer section in every order, for up to PERMUTE records
    opt: bytes  # the OPT record to append, b"" when the query had none
    limit: int  # the largest reply the client takes
    version: int  # Records.version the plan was made from


def _encode_opt() -> bytes:
    buffer = DNSBuffer()
    EDNS0(udp_len=EDNS_SIZE).pack(buffer)
    return bytes(buffer.data)


_OPT = _encode_opt()


def question_end(packet: bytes) -> int:
    """Offset just past the first question (name, type, class) of ``packet``, or -1
    when it is not a plain uncompressed name that fits in the packet."""
    pos, size = 12, len(packet)
    while pos < size:
        length = packet[pos]
        if length == 0:
            end = pos + 5
            return end if end <= size and pos - 12 < 255 else -1
        if length > 63:
            return -1
        pos += length + 1
    return -1


def _render(qid: int, rd: int, question: bytes, plan: _Plan) -> bytes:
    bodies = plan.bodies
    if len(bodies) == 1:
        body = bodies[0]
    elif bodies:
        body = random.choice(bodies)
    else:
        shuffled = list(plan.answers)
        random.shuffle(shuffled)
        body = b"".join(shuffled)
    arcount = 1 if plan.opt else 0
    reply = b"".join((_HEADER.pack(qid, plan.flags | rd, 1, len(plan.answers), 0, arcount), question, body, plan.opt))
    if len(reply) > plan.limit:
        reply = _HEADER.pack(qid, plan.flags | rd | TC, 1, 0, 0, arcount) + question + plan.opt
    return reply


def _error(qid: int, flags: int, rcode: int) -> bytes:
    """A reply that is only a header: FORMERR, NOTIMP."""
    return _HEADER.pack(qid, QR | (flags & (OPCODE | RD)) | rcode, 0, 0, 0, 0)


def _container_name(labels: Sequence[bytes]) -> str | None:
    """The lookup key for a query name, or None when no container can have it."""
    try:
        parts = [label.decode("ascii").lower() for label in labels]
    except UnicodeDecodeError:
        return None
    if not parts or any("." in part for part in parts):
        return None
    return ".".join(parts)


def _reverse_ip(name: str) -> str | None:
    """The IPv4 address of a ``d.c.b.a.in-addr.arpa`` name, or None."""
    parts = name.split(".")
    if len(parts) != 6 or parts[4:] != ["in-addr", "arpa"]:
        return None
    for part in parts[:4]:
        if not part.isdigit() or not part.isascii() or int(part) > 255 or str(int(part)) != part:
            return None
    return ".".join(reversed(parts[:4]))


def _make_plan(kind: int, flags: int, answers: tuple[bytes, ...], opt: bytes, limit: int,
               version: int) -> _Plan:
    if len(answers) <= PERMUTE:
        bodies = tuple(b"".join(order) for order in itertools.permutations(answers))
    else:
        bodies = ()  # shuffled for each reply
    return _Plan(kind, flags, answers, bodies, opt, limit, version)


def _encode_answers(question: DNSQuestion, records: Sequence[RR]) -> tuple[bytes, ...]:
    """Each record encoded on its own, its names compressed against the question
    (which always sits at offset 12), so records can be reordered freely."""
    buffer = DNSBuffer()
    buffer.append(b"\0" * 12)  # the header; the question starts at offset 12
    question.pack(buffer)
    names = dict(buffer.names)
    encoded = []
    for record in records:
        start = buffer.offset
        buffer.names = dict(names)
        record.pack(buffer)
        encoded.append(bytes(buffer.data[start:buffer.offset]))
    return tuple(encoded)


class Resolver:
    """Answers DNS queries from containers: container names locally, the rest upstream.

    ``forwarder(packet, upstreams, transport)`` sends a query upstream and returns
    the raw reply (with the query's id) or None; by default it is
    :func:`forward_udp_tcp` with ``timeout``.  Safe to call from several threads.
    """

    def __init__(self, records: Records, forwarder: Forwarder | None = None, timeout: float = 3.0) -> None:
        self.records = records
        self.timeout = timeout
        self.forwarder: Forwarder = forwarder or functools.partial(forward_udp_tcp, timeout=timeout)
        #: whether queries go upstream the default way (UDP then TCP, :func:`forward_udp_tcp`):
        #: then a socket loop may do the same without a thread (:mod:`cove.dns.forwarding`)
        self.default_forwarder = forwarder is None
        self.stats = Stats()
        self._cache: dict[tuple[object, ...], _Plan] = {}
        self._cache_version = records.version
        self._cache_lock = threading.Lock()
        # (networks, tcp, the query less its id) -> (version, replies less their id):
        # a repeated local query is answered with one dict lookup and one concatenation
        self._replies: dict[tuple[object, ...], tuple[int, tuple[bytes, ...]]] = {}

    def answer(self, packet: bytes, networks: Sequence[str], upstreams: Sequence[Upstream],
               transport: str = "udp") -> bytes | None:
        """The reply to ``packet`` (one DNS message, without TCP's length prefix) from a
        container on ``networks``, or None to send nothing.  ``transport`` is "udp" or "tcp"."""
        self.stats.queries += 1
        try:
            if type(packet) is not bytes:
                packet = bytes(packet)
            reply = self._answer(packet, networks, upstreams, transport)
        except Exception:  # a bug must cost one query, not the server
            log.exception("dns: failed to answer a query")
            reply = None
        if reply is None:
            self.stats.dropped += 1
        return reply

    def answer_local(self, packet: bytes, networks: Sequence[str], transport: str = "udp") -> bytes | None:
        """Like :meth:`answer`, without ever waiting for an upstream: a query that has to
        be forwarded returns :data:`FORWARD` (then call :meth:`answer`, on a worker).
        Cheap enough to call from a socket loop; queries are counted once either way."""
        self.stats.queries += 1
        if type(packet) is not bytes:
            packet = bytes(packet)
        if type(networks) is not tuple:
            networks = tuple(networks)
        hit = self._replies.get((networks, transport, packet[2:]))
        if hit is not None and hit[0] == self.records.version:
            tails = hit[1]
            if not tails:                # this exact query was forwarded before
                self.stats.queries -= 1  # counted again by answer() or forwarding()
                return FORWARD
            self.stats.answered_local += 1
            return packet[:2] + (tails[0] if len(tails) == 1 else random.choice(tails))
        try:
            reply = self._answer(packet, networks, None, transport)
        except Exception:
            log.exception("dns: failed to answer a query")
            reply = None
        if reply is None:
            self.stats.dropped += 1
        elif reply is FORWARD:
            self.stats.queries -= 1  # counted again by answer()
        return reply

    def forwarding(self) -> None:
        """Count a query that :meth:`answer_local` said to forward and the caller sends upstream
        itself; its reply comes from :meth:`forwarded`."""
        self.stats.queries += 1
        self.stats.forwarded += 1

    def forwarded(self, packet: bytes, networks: Sequence[str], transport: str, reply: bytes | None) -> bytes | None:
        """The reply to send for ``packet``, a query :meth:`answer_local` said to forward, given
        what the upstreams answered: ``reply`` (with ``packet``'s id) or None for no answer.
        As :meth:`answer` would have: SERVFAIL for no answer or one that does not answer the
        question, TC for one larger than the client takes."""
        try:
            if (reply is not None and transport == "udp" and len(reply) <= UDP_DEFAULT
                    and _matches(packet, reply, question_end(packet))):
                return reply     # what _finish would give: it fits any client (no need of the plan)
            planned = self._planned(packet, tuple(networks), transport)
            if not isinstance(planned, tuple):
                return planned
            qid, flags, end, plan = planned
            return self._finish(packet, qid, flags & RD, packet[12:end], plan, reply)
        except Exception:
            log.exception("dns: failed to answer a forwarded query")
            self.stats.dropped += 1
            return None

    def _planned(self, packet: bytes, nets: tuple[str, ...],
                 transport: str) -> tuple[int, int, int, _Plan] | bytes | None:
        """(id, flags, end of the question, plan) for a query, or the reply that ends it here
        (None: drop it; FORMERR, NOTIMP)."""
        if not 12 <= len(packet) <= MAX_QUERY:
            return None
        qid, flags, qdcount = _HEADER.unpack_from(packet)[:3]
        if flags & QR:
            return None
        if flags & OPCODE:  # header only: the question may be anything
            self.stats.notimp += 1
            return _error(qid, flags, NOTIMP)
        end = question_end(packet) if qdcount == 1 else -1
        if end < 0:
            self.stats.formerr += 1
            return _error(qid, flags, FORMERR)
        tcp = transport == "tcp"
        name_end = end - 4
        key = (nets, tcp, packet[4:12], packet[12:name_end].lower(), packet[name_end:])
        version = self.records.version
        plan = self._cache.get(key)
        if plan is None or plan.version != version:
            plan = self._plan(packet, nets, tcp, version)
            if plan is None:
                self.stats.formerr += 1
                return _error(qid, flags, FORMERR)
            if len(packet) - end <= CACHE_TAIL:
                self._store(key, plan)
        return qid, flags, end, plan

    def _answer(self, packet: bytes, networks: Sequence[str], upstreams: Sequence[Upstream] | None,
                transport: str) -> bytes | None:
        nets = tuple(networks)
        planned = self._planned(packet, nets, transport)
        if not isinstance(planned, tuple):
            return planned
        qid, flags, end, plan = planned
        question = packet[12:end]
        rd = flags & RD
        if plan.kind == _FORWARD:
            if upstreams is None:
                if len(packet) - end <= CACHE_TAIL:
                    self._store_tails((nets, transport, packet[2:]), plan.version, ())
                return FORWARD
            return self._forward(packet, qid, rd, question, plan, upstreams, transport)
        if plan.flags & 0xF == NXDOMAIN:
            self.stats.nxdomain += 1
        else:
            self.stats.answered_local += 1
        if upstreams is None and (plan.bodies or not plan.answers) and len(packet) - end <= CACHE_TAIL:
            self._store_replies((nets, transport, packet[2:]), qid, rd, question, plan)
        return _render(qid, rd, question, plan)

    def _store_replies(self, key: tuple[object, ...], qid: int, rd: int, question: bytes, plan: _Plan) -> None:
        """Remember every reply ``plan`` can give to this exact query (less the id)."""
        bodies = plan.bodies or (b"",)
        tails = tuple(_render(qid, rd, question, _Plan(plan.kind, plan.flags, plan.answers, (b,), plan.opt,
                                                       plan.limit, plan.version))[2:] for b in bodies)
        self._store_tails(key, plan.version, tails)

    def _store_tails(self, key: tuple[object, ...], version: int, tails: tuple[bytes, ...]) -> None:
        """Remember the replies (less the id) to an exact query; () for one that is forwarded."""
        with self._cache_lock:
            if version != self._cache_version:
                return  # stale, or the plan cache is about to be cleared
            if len(self._replies) >= CACHE_SIZE:
                self._replies.pop(next(iter(self._replies)))
            self._replies[key] = (version, tails)

    def _store(self, key: tuple[object, ...], plan: _Plan) -> None:
        with self._cache_lock:
            if plan.version != self._cache_version:
                # the table changed: every cached plan is stale (or this one is)
                if plan.version < self._cache_version:
                    return
                self._cache.clear()
                self._replies.clear()
                self._cache_version = plan.version
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = plan

    def _plan(self, packet: bytes, nets: tuple[str, ...], tcp: bool, version: int) -> _Plan | None:
        """Decide how to answer a query: parse it fully, look its name up."""
        try:
            query = DNSRecord.parse(packet)
        except Exception:  # dnslib raises DNSError mostly, but not only
            return None
        if len(query.questions) != 1:
            return None
        edns = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
        limit = 65535 if tcp else max(UDP_DEFAULT, edns.rclass) if edns is not None else UDP_DEFAULT
        opt = _OPT if edns is not None else b""
        question = query.q
        labels = question.qname.label
        name = _container_name(labels)
        records: list[RR] = []
        local = False
        if name is not None and question.qclass in (CLASS.IN, CLASS_ANY):
            addresses = self.records.lookup(nets, name)
            if addresses:
                local = True
                if question.qtype in (QTYPE.A, QTYPE.ANY):
                    records = [RR(question.qname, QTYPE.A, CLASS.IN, TTL, A(ip)) for ip in addresses]
                if question.qtype in (QTYPE.AAAA, QTYPE.ANY):
                    records += [RR(question.qname, QTYPE.AAAA, CLASS.IN, TTL, AAAA(ip))
                                for ip in self.records.lookup(nets, name, v6=True)]
            elif question.qtype == QTYPE.PTR and (ip := _reverse_ip(name)) is not None:
                target = self.records.reverse(nets, ip)
                if target is not None:
                    local = True
                    records = [RR(question.qname, QTYPE.PTR, CLASS.IN, TTL, PTR(DNSLabel(target)))]
        if local:
            return _make_plan(_LOCAL, QR | RA | NOERROR, _encode_answers(question, records), opt, limit, version)
        if len(labels) == 1:
            return _make_plan(_LOCAL, QR | RA | NXDOMAIN, (), opt, limit, version)
        return _make_plan(_FORWARD, QR | RA | SERVFAIL, (), opt, limit, version)

    def _forward(self, packet: bytes, qid: int, rd: int, question: bytes, plan: _Plan,
                 upstreams: Sequence[Upstream], transport: str) -> bytes:
        chosen = list(upstreams)[:MAX_UPSTREAMS]
        reply: bytes | None = None
        if chosen:
            self.stats.forwarded += 1
            try:
                reply = self.forwarder(packet, chosen, transport)
            except Exception:
                log.exception("dns: forwarder failed")
        return self._finish(packet, qid, rd, question, plan, reply)

    def _finish(self, packet: bytes, qid: int, rd: int, question: bytes, plan: _Plan, reply: bytes | None) -> bytes:
        """The reply to a forwarded query from the upstream's ``reply`` (None: none came)."""
        if reply is None or len(reply) > 65535 or not _matches(packet, reply, 12 + len(question)):
            self.stats.servfail += 1
            return _render(qid, rd, question, plan)
        if len(reply) > plan.limit:
            arcount = 1 if plan.opt else 0
            reply_flags = struct.unpack_from("!H", reply, 2)[0] | TC
            return _HEADER.pack(qid, reply_flags, 1, 0, 0, arcount) + question + plan.opt
        return bytes(reply)


# -- the default forwarder ---------------------------------------------------------------

def forward_udp_tcp(packet: bytes, upstreams: Sequence[Upstream], transport: str = "udp",
                    timeout: float = 3.0) -> bytes | None:
    """Ask ``upstreams`` in order (at most three) and return the first good reply, with
    ``packet``'s id; None when none answers within ``timeout`` seconds in all.

    Each upstream gets a fair share of the time left.  Queries go out with a fresh
    random id and replies must come from the server asked and repeat the question.
    UDP replies with TC set are fetched again over TCP; ``transport == "tcp"`` asks
    over TCP directly.  A SERVFAIL or REFUSED reply moves on to the next upstream and
    is returned only when nothing better comes.
    """
    deadline = time.monotonic() + timeout
    packet = bytes(packet)
    chosen = list(upstreams)[:MAX_UPSTREAMS]
    end = question_end(packet)
    fallback: bytes | None = None
    for index, upstream in enumerate(chosen):
        now = time.monotonic()
        if now >= deadline:
            break
        share = now + (deadline - now) / (len(chosen) - index)
        if not _is_ip(upstream.address):  # never resolve a host name here
            log.debug("dns: upstream %r is not an IP address", upstream.address)
            continue
        xid = os.urandom(2)
        query = xid + packet[2:]
        reply: bytes | None = None
        try:
            if transport == "tcp":
                reply = _ask_tcp(query, upstream, share)
            else:
                reply = _ask_udp(query, upstream, share, end)
                if reply is not None and reply[2] & (TC >> 8):
                    reply = _ask_tcp(query, upstream, deadline) or reply
        except (OSError, ValueError, OverflowError) as err:
            log.debug("dns: upstream %s:%s failed: %s", upstream.address, upstream.port, err)
        if reply is None or not _matches(query, reply, end):
            continue
        reply = packet[:2] + reply[2:]
        if reply[3] & 0xF in (SERVFAIL, REFUSED):
            fallback = reply
            continue
        return reply
    return fallback


def _matches(query: bytes, reply: bytes, end: int) -> bool:
    """Whether ``reply`` answers ``query``: same id, QR set, same question (any case)."""
    if len(reply) < 12 or reply[:2] != query[:2] or not reply[2] & (QR >> 8):
        return False
    if reply[4:6] == b"\0\0" or end < 0:
        return True  # e.g. a FORMERR without question
    return reply[4:6] == b"\0\1" and reply[12:end].lower() == query[12:end].lower()


matches = _matches


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _ask_udp(query: bytes, upstream: Upstream, deadline: float, end: int) -> bytes | None:
    """The first datagram from ``upstream`` that answers ``query`` (others are ignored)."""
    with socket.socket(_family(upstream.address), socket.SOCK_DGRAM) as sock:
        sock.connect((upstream.address, upstream.port))  # the kernel drops datagrams from others
        sock.send(query)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
            if _matches(query, data, end):
                return data


def _ask_tcp(query: bytes, upstream: Upstream, deadline: float) -> bytes | None:
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        with socket.socket(_family(upstream.address), socket.SOCK_STREAM) as sock:
            sock.settimeout(left)
            sock.connect((upstream.address, upstream.port))
            sock.sendall(struct.pack("!H", len(query)) + query)
            prefix = _recv_exact(sock, 2, deadline)
            if prefix is None:
                return None
            return _recv_exact(sock, struct.unpack("!H", prefix)[0], deadline)
    except TimeoutError:
        return None


def _recv_exact(sock: socket.socket, size: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while size > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


ask_tcp = _ask_tcp

__all__ = ["FORWARD", "Resolver", "Stats", "Upstream", "ask_tcp", "forward_udp_tcp", "matches", "question_end", "TTL"]
