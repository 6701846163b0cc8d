"""Serving the embedded resolver at 127.0.0.11 inside every container that needs it.

Nothing extra runs inside a container.  For each container on a user-defined
network the daemon opens a UDP socket and a listening TCP socket bound to
127.0.0.11:53 *inside the container's network namespace* (created while a
thread is in that namespace; a socket keeps the namespace it was made in), and
one thread watches all of them with a ``selectors`` loop and hands each query
to a small thread pool: answers for container names come from the
:class:`~cove.dns.server.Resolver`'s cache, other names are forwarded to the
upstreams from the daemon's own namespace, so a host resolver on 127.0.0.53
works, and a slow upstream never blocks the loop.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..kernel import netns
from .server import FORWARD, Resolver, Upstream

log = logging.getLogger("cove.dns")

ADDRESS = "127.0.0.11"
MAX_TCP = 65535
UPSTREAMS_TTL = 1.0  # a container's upstreams are read again (host resolv.conf) at most once a second


@dataclass
class Listener:
    container_id: str
    udp: socket.socket
    tcp: socket.socket
    networks: Callable[[], Sequence[str]]
    upstreams: Callable[[], Sequence[Upstream]]
    conns: set[socket.socket] = field(default_factory=set)
    _upstreams: tuple[float, list[Upstream]] = (-1e9, [])

    def current_upstreams(self) -> list[Upstream]:
        """``upstreams()``, re-read at most once per :data:`UPSTREAMS_TTL` (it may parse a file)."""
        at, ups = self._upstreams
        now = time.monotonic()
        if now - at > UPSTREAMS_TTL:
            ups = list(self.upstreams())
            self._upstreams = (now, ups)
        return ups


def _open_in(path: str) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11:53 inside the namespace at ``path``."""
    result: list[object] = []

    def work() -> None:
        try:
            with netns.entered(path):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            for s in (u, t):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ADDRESS, 53))
                s.setblocking(False)
            t.listen(64)
            result.append((u, t))
        except BaseException as exc:  # noqa: BLE001 - handed back
            result.append(exc)

    th = threading.Thread(target=work, name="cove-dns-open")
    th.start()
    th.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]  # type: ignore[return-value]


class DnsService:
    def __init__(self, resolver: Resolver, workers: int = 8) -> None:
        self.resolver = resolver
        self._sel = selectors.DefaultSelector()
        self._listeners: dict[str, Listener] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cove-dns-fwd")
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cove-dns", daemon=True)
        self._thread.start()

    # listeners ------------------------------------------------------------------------
    def serve(self, container_id: str, sandbox: str, networks: Callable[[], Sequence[str]],
              upstreams: Callable[[], Sequence[Upstream]]) -> None:
        """Start answering at 127.0.0.11 in ``sandbox`` for this container."""
        self.stop(container_id)
        udp, tcp = _open_in(sandbox)
        lst = Listener(container_id, udp, tcp, networks, upstreams)
        with self._lock:
            self._listeners[container_id] = lst
            self._sel.register(udp, selectors.EVENT_READ, ("udp", lst))
            self._sel.register(tcp, selectors.EVENT_READ, ("accept", lst))
        os.write(self._wake_w, b"x")

    def stop(self, container_id: str) -> None:
        with self._lock:
            lst = self._listeners.pop(container_id, None)
            if lst is None:
                return
            for s in (lst.udp, lst.tcp, *lst.conns):
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
        self._pool.shutdown(wait=False, cancel_futures=True)

    # the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            try:
                events = self._sel.select(1.0)
            except OSError:
                continue
            for key, _ in events:
                kind, lst = key.data
                try:
                    if kind == "wake":
                        os.read(self._wake_r, 4096)
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
        # right here from the resolver's cache; only forwarded names go to a worker,
        # since an upstream may take seconds.
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
                self._pool.submit(self._reply_udp, lst, packet, peer)
            elif reply:
                try:
                    udp.sendto(reply, peer)
                except OSError:
                    pass   # a full socket buffer drops the reply, as the kernel would

    def _reply_udp(self, lst: Listener, packet: bytes, peer: tuple[str, int]) -> None:
        reply = self._answer(lst, packet, "udp")
        if reply:
            try:
                lst.udp.sendto(reply, peer)
            except OSError:
                pass

    def _on_accept(self, lst: Listener) -> None:
        conn, _ = lst.tcp.accept()
        if len(lst.conns) >= 64:
            conn.close()
            return
        conn.setblocking(False)
        lst.conns.add(conn)
        self._sel.register(conn, selectors.EVENT_READ, ("tcp", lst))

    def _on_tcp(self, lst: Listener, conn: socket.socket) -> None:
        # DNS over TCP: a 2-byte length, then the message; handled in a worker (may forward).
        self._sel.unregister(conn)
        self._pool.submit(self._serve_tcp, lst, conn)

    def _serve_tcp(self, lst: Listener, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            head = _recv_exact(conn, 2)
            if head is None:
                raise ConnectionError
            (n,) = struct.unpack("!H", head)
            packet = _recv_exact(conn, n)
            if packet is None:
                raise ConnectionError
            reply = self._answer(lst, packet, "tcp")
            if reply:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, ConnectionError):
            pass
        finally:
            lst.conns.discard(conn)
            conn.close()


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
