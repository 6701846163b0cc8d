"""Forwarding queries upstream over UDP from a socket loop, without a thread per query.

:class:`UdpForwarder` belongs to one ``selectors`` loop (:class:`~cove.dns.service.DnsService`'s)
and is only ever called from it.  A query is sent on a non-blocking UDP socket connected to the
upstream, under a fresh random id; the answer is read when that socket is readable, matched by
id, checked and handed back with the asker's id.  A query waiting for an answer is an entry in a
table, not a thread: an upstream that never answers costs entries until their deadline, and the
caller bounds how many entries one asker may have (:data:`cove.dns.service.FORWARD_OUTSTANDING`).

What :func:`~cove.dns.server.forward_udp_tcp` does for one query with a thread, this does
without one:

- the upstreams are asked in order (at most :data:`~cove.dns.server.MAX_UPSTREAMS`, host names
  skipped), each for a fair share of the time left; no answer in its share, or connection
  refused (ICMP), moves on to the next;
- a SERVFAIL or REFUSED answer moves on too, and is what the query gets when nothing better
  comes; nothing at all gives None (the resolver answers SERVFAIL);
- an answer must come from the address and port asked (the sockets are connected, so the
  kernel drops other datagrams), carry the id sent, have QR set and repeat the question;
  anything else is ignored and the query keeps waiting;
- ids are 16 random bits from ``os.urandom``, unique among a socket's open queries, and a
  socket is used for :data:`SOCKET_QUERIES` queries, then closed once they are answered or
  expired: its successor gets a new random source port from the kernel, so a spoofed answer
  has to guess both.  A blind spoofer's odds per packet are (open queries) / (ephemeral
  ports x 65,536), as with a socket per query (what Docker's resolver does); one that has
  learnt a socket's port has up to 64 ids to hit instead of one.  A socket per query would
  cost ~6 more system calls a query.
- an answer with TC set is fetched again over TCP from the same upstream, as before: that
  blocks, so it runs on a worker thread (``to_worker``, the service's pool with its budget per
  container) and its result comes back to the loop (:meth:`UdpForwarder.from_workers`); when
  no worker takes it or TCP fails, the truncated answer is what the query gets.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from ..ipam import is_ip
from .server import MAX_UPSTREAMS, REFUSED, SERVFAIL, TC, Upstream, ask_tcp, matches, question_end

#: queries sent on one upstream socket before it is replaced (see the module's docstring)
SOCKET_QUERIES = 64
#: answers read from one socket per wake-up, then the loop serves the others
BURST = 64
#: a query whose TCP fetch (TC) no worker has reported this long after its deadline gets
#: the truncated answer (the worker dropped the job)
TCP_GRACE = 1.0


class Pending:
    """One query on its way upstream.  ``packet`` is the client's query (its id); the caller may
    subclass it to carry where the answer goes."""

    __slots__ = ("packet", "end", "upstreams", "deadline", "index", "expires", "xid", "sent", "sock",
                 "fallback")

    def __init__(self, packet: bytes, upstreams: list[Upstream], deadline: float) -> None:
        self.packet = packet
        self.end = question_end(packet)
        self.upstreams = upstreams[:MAX_UPSTREAMS]
        self.deadline = deadline            # of the whole query, all upstreams
        self.index = -1                     # the upstream asked now
        self.expires = 0.0                  # the end of this upstream's share
        self.xid = b""
        self.sent = b""                     # the query as sent: our id
        self.sock: _Socket | None = None
        self.fallback: bytes | None = None  # a SERVFAIL or REFUSED answer, with packet's id


class _Socket:
    __slots__ = ("sock", "upstream", "pending", "used")

    def __init__(self, upstream: Upstream) -> None:
        family = socket.AF_INET6 if ":" in upstream.address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect((upstream.address, upstream.port))  # and the kernel drops datagrams from others
        except BaseException:
            self.sock.close()
            raise
        self.upstream = upstream
        self.pending: dict[bytes, Pending] = {}
        self.used = 0


class UdpForwarder:
    """Queries on their way to the upstreams, for one selector loop.

    ``deliver(query, reply)`` is called exactly once for every submitted query, from
    :meth:`submit`, :meth:`on_readable` or :meth:`expire`: ``reply`` is the upstream's answer
    with the client's id, or None when no upstream answered in time.  Register nothing
    yourself: sockets are registered in ``sel`` with ``(kind, socket)`` as data, and the loop
    calls :meth:`on_readable` with that socket for events of ``kind``.
    """

    def __init__(self, sel: selectors.BaseSelector, deliver: Callable[[Pending, bytes | None], None],
                 to_worker: Callable[[Pending, Callable[[], None]], bool], wake: Callable[[], None],
                 kind: str = "upstream") -> None:
        self._sel = sel
        self._deliver = deliver
        self._to_worker = to_worker          # run a blocking job for this query; False: not taken
        self._wake = wake                    # make the loop call from_workers()
        self._kind = kind
        # queries fetched again over TCP -> their truncated answer; the workers' results
        self._tcp: dict[Pending, bytes] = {}
        self._results: deque[tuple[Pending, bytes | None]] = deque()
        self._results_lock = threading.Lock()
        self._current: dict[Upstream, _Socket] = {}   # the socket new queries to an upstream go on
        self._sockets: set[_Socket] = set()           # every open socket, current or draining
        self._ids = b""                      # random bytes, taken two at a time from _ids_at
        self._ids_at = 0
        self.outstanding = 0

    # ids ---------------------------------------------------------------------------------
    def _xid(self, taken: dict[bytes, Pending]) -> bytes:
        while True:
            at = self._ids_at
            if at >= len(self._ids):
                self._ids, at = os.urandom(4096), 0
            self._ids_at = at + 2
            xid = self._ids[at:at + 2]
            if xid not in taken:
                return xid

    # sending -----------------------------------------------------------------------------
    def submit(self, query: Pending, now: float | None = None) -> None:
        """Send ``query`` to its first upstream (or deliver None at once if it has none)."""
        self.outstanding += 1
        self._next(query, time.monotonic() if now is None else now)

    def _next(self, q: Pending, now: float) -> None:
        """Ask ``q``'s next upstream, or deliver what it has when there is none or time is up."""
        ups = q.upstreams
        while True:
            q.index += 1
            if q.index >= len(ups) or now >= q.deadline:
                self._done(q, q.fallback)
                return
            upstream = ups[q.index]
            s = self._current.get(upstream)
            if s is None:
                if not is_ip(upstream.address):   # never resolve a host name here
                    continue
                try:
                    s = self._socket(upstream)
                except (OSError, ValueError, OverflowError):
                    continue
            xid = self._xid(s.pending)
            sent = xid + q.packet[2:]
            try:
                try:
                    s.sock.send(sent)
                except ConnectionRefusedError:   # an earlier query's ICMP: this one may pass
                    s.sock.send(sent)
            except OSError:
                self._retire(s)
                continue
            s.used += 1
            q.xid, q.sent, q.sock = xid, sent, s
            q.expires = now + (q.deadline - now) / (len(ups) - q.index)
            s.pending[xid] = q
            if s.used >= SOCKET_QUERIES:
                self._retire(s)
            return

    def _socket(self, upstream: Upstream) -> _Socket:
        s = _Socket(upstream)
        try:
            self._sel.register(s.sock, selectors.EVENT_READ, (self._kind, s))
        except BaseException:
            s.sock.close()
            raise
        self._current[upstream] = s
        self._sockets.add(s)
        return s

    def _retire(self, s: _Socket) -> None:
        """Send nothing more on ``s``; close it once its queries are done."""
        if self._current.get(s.upstream) is s:
            del self._current[s.upstream]
        if not s.pending:
            self._close(s)

    def _close(self, s: _Socket) -> None:
        self._sockets.discard(s)
        if self._current.get(s.upstream) is s:
            del self._current[s.upstream]
        try:
            self._sel.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        s.sock.close()

    def _done(self, q: Pending, reply: bytes | None) -> None:
        self.outstanding -= 1
        self._deliver(q, reply)

    def _unlink(self, q: Pending) -> None:
        """Take ``q`` off its socket's table (closing a retired socket left empty)."""
        s = q.sock
        if s is None:
            return
        q.sock = None
        s.pending.pop(q.xid, None)
        if not s.pending and self._current.get(s.upstream) is not s:
            self._close(s)

    # answers -----------------------------------------------------------------------------
    def on_readable(self, s: _Socket) -> None:
        if s not in self._sockets:
            return
        recv = s.sock.recv
        for _ in range(BURST):
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                # nothing listens at the upstream's port: its queries move on, as a query of
                # its own would on this error
                self._refused(s)
                return
            except OSError:
                return
            q = s.pending.get(data[:2])
            if q is None or not matches(q.sent, data, q.end):
                continue                               # late, or not an answer to what was asked
            upstream = s.upstream
            self._unlink(q)
            reply = q.packet[:2] + data[2:]
            if data[2] & (TC >> 8) and self._fetch_tcp(q, upstream, reply):
                pass
            else:
                self._answered(q, reply)
            if s not in self._sockets:
                return

    def _answered(self, q: Pending, reply: bytes) -> None:
        if reply[3] & 0xF in (SERVFAIL, REFUSED):
            q.fallback = reply
            self._next(q, time.monotonic())
        else:
            self._done(q, reply)

    def _fetch_tcp(self, q: Pending, upstream: Upstream, truncated: bytes) -> bool:
        """Have a worker ask ``upstream`` again over TCP; False when none will."""
        def job() -> None:
            full: bytes | None = None
            try:
                full = ask_tcp(q.sent, upstream, q.deadline)
            except (OSError, ValueError, OverflowError):
                pass
            if full is not None and not matches(q.sent, full, q.end):
                full = None
            with self._results_lock:
                self._results.append((q, full))
            self._wake()

        self._tcp[q] = truncated
        if self._to_worker(q, job):
            return True
        del self._tcp[q]
        return False

    def from_workers(self) -> None:
        """Take the results of the TCP fetches that workers have finished."""
        with self._results_lock:
            results = list(self._results)
            self._results.clear()
        for q, full in results:
            truncated = self._tcp.pop(q, None)
            if truncated is not None:          # else given up on at TCP_GRACE
                self._answered(q, truncated if full is None else q.packet[:2] + full[2:])

    def _refused(self, s: _Socket) -> None:
        now = time.monotonic()
        waiting = list(s.pending.values())
        self._retire(s)
        for q in waiting:
            self._unlink(q)
            self._next(q, now)

    # time --------------------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Move every query whose upstream's share of time is up on to the next upstream."""
        late = [q for s in self._sockets for q in s.pending.values() if q.expires <= now]
        for q in late:
            self._unlink(q)
            self._next(q, now)
        if self._tcp:
            for q in [q for q in self._tcp if q.deadline + TCP_GRACE <= now]:
                self._answered(q, self._tcp.pop(q))

    def close(self) -> None:
        """Close every socket; queries still waiting get no answer (and no delivery)."""
        for s in list(self._sockets):
            s.pending.clear()
            self._close(s)
        self._current.clear()
        self._tcp.clear()
