"""Serving the embedded resolver at 127.0.0.11 inside every container that needs it.

Nothing extra runs inside a container.  For each container on a user-defined
network the daemon opens a UDP socket and a listening TCP socket bound to
127.0.0.11:53 *inside the container's network namespace* (created while a
thread is in that namespace; a socket keeps the namespace it was made in), and
one thread watches all of them with a ``selectors`` loop.  Answers for
container names come from the :class:`~cove.dns.server.Resolver`'s cache, in
the loop.  Other names are forwarded to the upstreams from the daemon's own
namespace (so a host resolver on 127.0.0.53 works), also by the loop, without
a thread per query (:class:`~cove.dns.forwarding.UdpForwarder`): the query goes
out on a non-blocking UDP socket connected to the upstream under a fresh random
id, the answer is read when that socket is readable, and a slow or dead upstream
costs entries in a table until the timeout, never the loop's time.

Why no thread per forwarded query: with a pool of 16 threads each blocking on an
upstream round-trip, and at most 2 of one container's queries on them (the
budget below had to be that tight, or one container with a dead upstream held
every thread), one container got 7,300-10,000 forwarded queries/s (dnsperf with
a dnsmasq upstream, bench/results/2026-12-06-dns.md), 0.57x Docker 20.10: two
queries at a time, each a round-trip plus two hand-overs between threads.
Forwarded from the loop, a query costs the loop ~13 us of CPU
(time.thread_time per query, dnsperf -> this service -> dnsmasq on loopback,
most of it the kernel's send to the upstream and to the client), and one
container gets 1.5-1.6x the threaded version's forwarded queries/s and
1.4-2.4x Docker's in runs alternated with both on this 2-core machine
(bench/results/2026-12-06-dnsfwd.md; 14,642 vs 8,975 vs Docker 10,767 q/s).
TCP (a client's retry of a truncated answer, and the fetch of a
truncated upstream answer again over TCP) still runs on worker threads: it is
rare, and blocking there is simpler than a state machine per connection.

Budgets per container, so that one container cannot deny names to the others
(a container is anything that runs there, including a hostile process):

- At most :data:`FORWARD_OUTSTANDING` forwarded UDP queries of one container
  wait for an upstream at once, :data:`FORWARD_TOTAL` of all containers; a new
  query beyond either is dropped (its client asks again), so a flood towards a
  dead upstream costs the flooder its own queries and a bounded amount of memory.
- Forwarded TCP queries wait in a bounded queue of the asking container
  (:data:`FORWARD_QUEUE`); workers (:data:`WORKERS`) take them from the
  containers in turn (round-robin), at most :data:`FORWARD_INFLIGHT` of one
  container at once, and drop one that waited longer than :data:`MAX_WAIT`.
- DNS over TCP is read in the loop without blocking: at most
  :data:`TCP_PER_CONTAINER` connections per container, and one deadline
  (:data:`TCP_DEADLINE`) for a whole message, after which the connection is
  closed.  A slow client holds a socket of its own container, not a thread.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..kernel import netns
from .forwarding import Pending, UdpForwarder
from .server import FORWARD, Resolver, Upstream

log = logging.getLogger("cove.dns")

ADDRESS = "127.0.0.11"
MAX_TCP = 65535
UPSTREAMS_TTL = 1.0  # a container's upstreams are read again (host resolv.conf) at most once a second

#: forwarded UDP queries of one container waiting for an upstream's answer (entries in a
#: table, no thread): 128 carries tens of thousands of queries per second to a live upstream
#: (dnsperf keeps 100 outstanding), and a dead upstream holds at most 128 entries of the
#: container for the resolver's timeout (3 s).  Beyond it the container's new queries drop.
FORWARD_OUTSTANDING = 128
#: forwarded UDP queries of all containers waiting at once (memory, ~1 KiB each): it takes
#: 32 containers with dead upstreams to fill it.
FORWARD_TOTAL = 4096
#: threads that forward TCP queries (the client's retry of a truncated answer) upstream,
#: shared by all containers; a dead upstream holds one for the resolver's timeout (3 s),
#: which is what FORWARD_INFLIGHT bounds per container.
WORKERS = 16
#: forwarded TCP queries of one container in flight at once: 2 keeps 14 of the 16
#: workers for the others while one container's upstream is dead (it would take
#: 8 such containers to use them all).
FORWARD_INFLIGHT = 2
#: forwarded TCP queries of one container waiting for a worker; beyond it the
#: container's own connections are closed unanswered.
FORWARD_QUEUE = 64
#: a query that waited this long for a worker is dropped: glibc asks again after
#: 5 s, so an answer after that is thrown away by the client anyway.
MAX_WAIT = 4.0
#: how often waiting queries are checked against their deadline
EXPIRE_EVERY = 0.1
#: TCP connections one container may have open to the resolver: TCP is the
#: fallback for truncated answers, one query at a time per resolver library.
TCP_PER_CONTAINER = 4
#: one TCP query (its 2-byte length and message) must arrive within this long of
#: the connection's start; clients write it at once (RFC 7766 suggests a few
#: seconds of idle time at most).
TCP_DEADLINE = 2.0


@dataclass
class Listener:
    container_id: str
    udp: socket.socket
    tcp: socket.socket
    networks: Callable[[], Sequence[str]]
    upstreams: Callable[[], Sequence[Upstream]]
    #: open TCP connections -> the deadline of their message (None once it is read)
    conns: dict[socket.socket, float | None] = field(default_factory=dict)
    tcp_buffers: dict[socket.socket, bytearray] = field(default_factory=dict)
    # the forwarding budget (guarded by _FairPool's lock)
    pending: deque[tuple[float, Callable[[], None]]] = field(default_factory=deque)
    inflight: int = 0
    scheduled: bool = False
    dropped: int = 0      # forwarded queries dropped: too many outstanding, queue full, or waited too long
    #: forwarded UDP queries waiting for an upstream (touched by the loop's thread only)
    outstanding: int = 0
    #: (st_dev, st_ino) of the network namespace the sockets were made in (None: not known)
    netns: tuple[int, int] | None = None
    _upstreams: tuple[float, list[Upstream]] = (-1e9, [])

    def current_upstreams(self) -> list[Upstream]:
        """``upstreams()``, re-read at most once per :data:`UPSTREAMS_TTL` (it may parse a file)."""
        at, ups = self._upstreams
        now = time.monotonic()
        if now - at > UPSTREAMS_TTL:
            ups = list(self.upstreams())
            self._upstreams = (now, ups)
        return ups


def netns_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the network namespace bound at ``path`` (as ``ip netns identify``
    compares them); None if nothing is bound there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _open_in(path: str) -> tuple[socket.socket, socket.socket, tuple[int, int]]:
    """UDP and TCP sockets on 127.0.0.11:53 inside the namespace at ``path``, and that namespace's
    identity (:func:`netns_identity`)."""
    result: list[object] = []

    def work() -> None:
        try:
            with netns.entered(path):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                st = os.stat("/proc/thread-self/ns/net")
            for s in (u, t):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ADDRESS, 53))
                s.setblocking(False)
            t.listen(64)
            result.append((u, t, (st.st_dev, st.st_ino)))
        except BaseException as exc:  # noqa: BLE001 - handed back
            result.append(exc)

    th = threading.Thread(target=work, name="cove-dns-open")
    th.start()
    th.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]  # type: ignore[return-value]


class _FairPool:
    """Worker threads that run the containers' blocking forwarded queries (TCP) in turn.

    A container with queries waiting is in the ready line once; a worker takes
    one query of the first container in line and puts the container back at the
    end (if it has more and fewer than ``per_container`` running), so each
    container gets its turn whatever the others send.
    """

    def __init__(self, workers: int = WORKERS, per_container: int = FORWARD_INFLIGHT,
                 queue: int = FORWARD_QUEUE, max_wait: float = MAX_WAIT) -> None:
        self.per_container = per_container
        self.queue = queue
        self.max_wait = max_wait
        self._cond = threading.Condition()
        self._ready: deque[Listener] = deque()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name="cove-dns-fwd", daemon=True)
                         for _ in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, lst: Listener, job: Callable[[], None]) -> bool:
        """Queue ``job`` for ``lst``'s container; False (and dropped) when its queue is full."""
        with self._cond:
            if self._closed or len(lst.pending) >= self.queue:
                lst.dropped += 1
                return False
            lst.pending.append((time.monotonic(), job))
            self._schedule(lst)
        return True

    def _schedule(self, lst: Listener) -> None:
        if lst.pending and not lst.scheduled and lst.inflight < self.per_container:
            lst.scheduled = True
            self._ready.append(lst)
            self._cond.notify()

    def forget(self, lst: Listener) -> None:
        with self._cond:
            lst.pending.clear()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                lst = self._ready.popleft()
                lst.scheduled = False
                if not lst.pending:
                    continue
                queued, job = lst.pending.popleft()
                lst.inflight += 1
                self._schedule(lst)      # its next query waits behind the other containers
            try:
                if time.monotonic() - queued <= self.max_wait:
                    job()
                else:
                    lst.dropped += 1
            except Exception:  # noqa: BLE001 - one query, not the worker
                log.exception("dns: forwarding a query")
            finally:
                with self._cond:
                    lst.inflight -= 1
                    self._schedule(lst)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Asked(Pending):
    """A forwarded query and where its answer goes."""

    __slots__ = ("listener", "peer", "nets")

    def __init__(self, packet: bytes, upstreams: list[Upstream], deadline: float, listener: Listener,
                 peer: tuple[str, int], nets: tuple[str, ...]) -> None:
        super().__init__(packet, upstreams, deadline)
        self.listener = listener
        self.peer = peer
        self.nets = nets


class DnsService:
    def __init__(self, resolver: Resolver, workers: int = WORKERS) -> None:
        self.resolver = resolver
        self._sel = selectors.DefaultSelector()
        self._listeners: dict[str, Listener] = {}
        self._lock = threading.Lock()
        self._pool = _FairPool(workers, FORWARD_INFLIGHT, FORWARD_QUEUE, MAX_WAIT)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        # made here, in the daemon's namespace; its sockets are made by the loop's thread, also there
        self._upstream = UdpForwarder(self._sel, self._forwarded, self._to_worker, self._wake)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cove-dns", daemon=True)
        self._thread.start()

    # listeners ------------------------------------------------------------------------
    def serve(self, container_id: str, sandbox: str, networks: Callable[[], Sequence[str]],
              upstreams: Callable[[], Sequence[Upstream]]) -> None:
        """Start answering at 127.0.0.11 in ``sandbox`` for this container.

        Asked again for a container it already serves in the same namespace (a network connect),
        it keeps the listener's sockets and takes the new callbacks (the upstreams are read again
        at the next query): opening two sockets in a namespace needs a thread of its own to enter
        it, ~12% of a connect's time (bench/results/2026-12-06-attach.md).  Another namespace at
        ``sandbox`` (the container started again) gets new sockets; the old ones are closed.
        """
        ident = netns_identity(sandbox)
        with self._lock:
            lst = self._listeners.get(container_id)
            if lst is not None and ident is not None and lst.netns == ident:
                lst.networks, lst.upstreams = networks, upstreams
                lst._upstreams = (-1e9, [])
                return
        self.stop(container_id)
        udp, tcp, made_in = _open_in(sandbox)
        self.attach(Listener(container_id, udp, tcp, networks, upstreams, netns=made_in))

    def attach(self, lst: Listener) -> None:
        """Serve on ``lst``'s sockets (bound, non-blocking, the TCP one listening)."""
        with self._lock:
            self._listeners[lst.container_id] = lst
            self._sel.register(lst.udp, selectors.EVENT_READ, ("udp", lst))
            self._sel.register(lst.tcp, selectors.EVENT_READ, ("accept", lst))
        os.write(self._wake_w, b"x")

    def refresh(self, container_id: str) -> None:
        """The container's networks changed: read its upstreams again at its next query.

        Without this a container that has just left its last non-internal network would
        forward names upstream for up to :data:`UPSTREAMS_TTL` more (the CVE-2024-29018 leak,
        for a second), and one that has just joined one would have its names refused as long.
        """
        with self._lock:
            lst = self._listeners.get(container_id)
            if lst is not None:
                lst._upstreams = (-1e9, [])

    def stop(self, container_id: str) -> None:
        with self._lock:
            lst = self._listeners.pop(container_id, None)
            if lst is None:
                return
            self._pool.forget(lst)
            for s in (lst.udp, lst.tcp, *list(lst.conns)):
                try:
                    self._sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()
        os.write(self._wake_w, b"x")

    def close(self) -> None:
        for cid in list(self._listeners):
            self.stop(cid)
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        self._pool.close()
        if not self._thread.is_alive():
            self._upstream.close()

    # the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        next_sweep = next_expiry = 0.0
        upstream = self._upstream
        while not self._closed:
            try:
                events = self._sel.select(EXPIRE_EVERY if upstream.outstanding else 0.5)
            except OSError:
                continue
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 0.25
            if now >= next_expiry:
                try:
                    upstream.expire(now)
                except Exception:  # noqa: BLE001 - the loop must go on
                    log.exception("dns: expiring forwarded queries")
                next_expiry = now + EXPIRE_EVERY
            for key, _ in events:
                kind, lst = key.data
                try:
                    if kind == "upstream":
                        upstream.on_readable(lst)
                    elif kind == "wake":
                        os.read(self._wake_r, 4096)
                        upstream.from_workers()
                    elif kind == "udp":
                        self._on_udp(lst)
                    elif kind == "accept":
                        self._on_accept(lst)
                    elif kind == "tcp":
                        self._on_tcp(lst, key.fileobj)  # type: ignore[arg-type]
                except (BlockingIOError, InterruptedError):
                    pass
                except Exception:  # noqa: BLE001 - one bad packet must not stop the resolver
                    log.exception("dns: serving %s", kind)

    def _answer(self, lst: Listener, packet: bytes, transport: str) -> bytes | None:
        return self.resolver.answer(packet, list(lst.networks()), lst.current_upstreams(), transport)

    def _on_udp(self, lst: Listener) -> None:
        # Container names (and every other answer that needs no upstream) are answered
        # right here from the resolver's cache; forwarded names are sent upstream from
        # here too, and their answers read by this loop (UdpForwarder).
        udp = lst.udp
        nets = tuple(lst.networks())
        answer_local = self.resolver.answer_local
        for _ in range(64):   # drain a burst, then let others in
            try:
                packet, peer = udp.recvfrom(4096)
            except (BlockingIOError, OSError):
                return
            reply = answer_local(packet, nets, "udp")
            if reply is FORWARD:
                if not self.resolver.default_forwarder:     # a forwarder of its own: it may block
                    self._pool.submit(lst, functools.partial(self._reply_udp, lst, packet, peer))
                    continue
                reply = self._forward_udp(lst, packet, peer, nets)
            if reply:
                try:
                    udp.sendto(reply, peer)
                except OSError:
                    pass   # a full socket buffer drops the reply, as the kernel would

    def _forward_udp(self, lst: Listener, packet: bytes, peer: tuple[str, int], nets: tuple[str, ...]) -> bytes | None:
        """Send a query upstream; the reply to send now if it has one (no upstreams: SERVFAIL)."""
        upstreams = lst.current_upstreams()
        if not upstreams:
            return self.resolver.answer(packet, nets, upstreams, "udp")
        if lst.outstanding >= FORWARD_OUTSTANDING or self._upstream.outstanding >= FORWARD_TOTAL:
            lst.dropped += 1          # its client asks again; a flood costs the flooder its own queries
            return None
        lst.outstanding += 1
        self.resolver.forwarding()
        self._upstream.submit(_Asked(packet, upstreams, time.monotonic() + self.resolver.timeout, lst, peer, nets))
        return None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass      # the pipe is full: the loop wakes anyway

    def _to_worker(self, query: Pending, job: Callable[[], None]) -> bool:
        assert isinstance(query, _Asked)
        return self._pool.submit(query.listener, job)

    def _forwarded(self, query: Pending, reply: bytes | None) -> None:
        """An upstream answered ``query`` (``reply``), or none did in time (None)."""
        assert isinstance(query, _Asked)
        lst = query.listener
        lst.outstanding -= 1
        out = self.resolver.forwarded(query.packet, query.nets, "udp", reply)
        if out:
            try:
                lst.udp.sendto(out, query.peer)
            except OSError:
                pass   # a full buffer, or the container is gone

    def _reply_udp(self, lst: Listener, packet: bytes, peer: tuple[str, int]) -> None:
        reply = self._answer(lst, packet, "udp")
        if reply:
            try:
                lst.udp.sendto(reply, peer)
            except OSError:
                pass

    def _on_accept(self, lst: Listener) -> None:
        conn, _ = lst.tcp.accept()
        with self._lock:
            if len(lst.conns) >= TCP_PER_CONTAINER or lst.container_id not in self._listeners:
                conn.close()
                return
            conn.setblocking(False)
            lst.conns[conn] = time.monotonic() + TCP_DEADLINE
            lst.tcp_buffers[conn] = bytearray()
            self._sel.register(conn, selectors.EVENT_READ, ("tcp", lst))

    def _close_tcp(self, lst: Listener, conn: socket.socket) -> None:
        with self._lock:
            lst.conns.pop(conn, None)
            lst.tcp_buffers.pop(conn, None)
            try:
                self._sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        conn.close()

    def _sweep(self, now: float) -> None:
        """Close TCP connections whose message did not arrive in time."""
        with self._lock:
            late = [(lst, conn) for lst in self._listeners.values()
                    for conn, deadline in lst.conns.items() if deadline is not None and deadline < now]
        for lst, conn in late:
            self._close_tcp(lst, conn)

    def _on_tcp(self, lst: Listener, conn: socket.socket) -> None:
        # DNS over TCP: a 2-byte length, then the message; read here without blocking,
        # answered here when local, else by a worker.  One message per connection.
        buf = lst.tcp_buffers.get(conn)
        if buf is None:
            return
        try:
            data = conn.recv(MAX_TCP + 2 - len(buf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_tcp(lst, conn)
            return
        buf += data
        if len(buf) < 2 or len(buf) < 2 + struct.unpack_from("!H", buf)[0]:
            return
        packet = bytes(buf[2:2 + struct.unpack_from("!H", buf)[0]])
        with self._lock:
            if conn not in lst.conns:
                return
            lst.conns[conn] = None            # read: no more deadline, no more reading
            lst.tcp_buffers.pop(conn, None)
            try:
                self._sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        reply = self.resolver.answer_local(packet, tuple(lst.networks()), "tcp")
        if reply is FORWARD:
            if not self._pool.submit(lst, functools.partial(self._serve_tcp, lst, conn, packet)):
                self._close_tcp(lst, conn)
            return
        if reply:
            try:
                conn.send(struct.pack("!H", len(reply)) + reply)   # fits the empty socket buffer
            except OSError:
                pass
        self._close_tcp(lst, conn)

    def _serve_tcp(self, lst: Listener, conn: socket.socket, packet: bytes) -> None:
        try:
            reply = self._answer(lst, packet, "tcp")
            if reply:
                conn.settimeout(TCP_DEADLINE)
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            self._close_tcp(lst, conn)
