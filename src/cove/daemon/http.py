"""A small threaded HTTP/1.1 server on a unix socket, on top of h11.

h11 does the HTTP (parsing, keep-alive, chunked bodies, protocol switches);
this module owns sockets and threads: one thread per connection, which is what
the Docker API needs (``attach``, ``exec start``, ``logs -f`` and ``wait`` hold
a connection open for as long as a container runs).

A handler gets a :class:`Request` and returns a :class:`Response`:

- ``body``: bytes, sent with a Content-Length;
- ``stream``: an iterator of bytes, sent chunked (``logs -f``, ``events``);
  with ``on_hangup``, a watcher thread calls it when the client closes its end
  while the stream waits (``events`` blocks for as long as nothing happens, so
  a failed write would come too late);
- ``hijack``: a function ``(sock, leftover) -> None`` that takes the raw socket
  over after the headers, Docker's "hijacked connection" for ``attach`` and
  ``exec start``: ``101 UPGRADED`` when the client asked with ``Upgrade: tcp``,
  else ``200`` followed by the raw stream until the server closes.

What one client may hold is bounded (:class:`Limits`: connections, deadlines,
header and body sizes), malformed HTTP is answered 4xx with a JSON message, and
the accept loop outlives ``accept()`` errors such as EMFILE.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from ..errors import CoveError

log = logging.getLogger("cove.http")

MAX_BODY = 4 * 1024 * 1024   # see Limits.max_body


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    #: set instead of ``body`` for routes added with ``stream_body=True``
    body_reader: BodyReader | None = None

    def stream(self) -> Any:
        """The body as a file to ``read(n)`` from: straight from the socket for a
        streamed route, else from memory."""
        if self.body_reader is not None:
            return self.body_reader
        import io

        return io.BytesIO(self.body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.arg(name)
        if v is None:
            return default
        return v.lower() not in ("0", "false", "no", "")

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            from ..errors import InvalidArgument

            raise InvalidArgument(f"invalid JSON body: {exc}") from None
        except RecursionError:
            from ..errors import InvalidArgument

            raise InvalidArgument("invalid JSON body: nested too deeply") from None

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("connection", "").lower()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterable[bytes] | None = None
    hijack: Callable[[socket.socket, bytes], None] | None = None
    on_hangup: Callable[[], None] | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status=status, body=(json.dumps(obj) + "\n").encode())

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status=status, content_type="")


Handler = Callable[..., Response]


class Router:
    """A flat table of (method, path pattern) -> handler; ``{name}`` captures a segment."""

    VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._streamed: list[tuple[str, re.Pattern[str]]] = []

    def add(self, method: str, pattern: str, handler: Handler, stream_body: bool = False) -> None:
        """``stream_body``: the handler reads the body itself with ``req.stream()`` (an
        image import, of any size), instead of getting it in memory, at most
        :attr:`Limits.max_body` bytes."""
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{rx}$"), handler))
        if stream_body:
            self._streamed.append((method, re.compile(f"^{rx}$")))

    def streams_body(self, req: Request) -> bool:
        path = self.VERSION_PREFIX.sub("", req.path)
        return any(m == req.method and rx.match(path) for m, rx in self._streamed)

    def dispatch(self, req: Request) -> Response:
        path = self.VERSION_PREFIX.sub("", req.path)
        allowed = False
        for method, rx, handler in self._routes:
            m = rx.match(path)
            if m is None:
                continue
            if method != req.method and not (method == "GET" and req.method == "HEAD"):
                allowed = True
                continue
            return handler(req, **{k: unquote(v) for k, v in m.groupdict().items()})
        if allowed:
            return Response.json({"message": f"method {req.method} not allowed on {path}"}, 405)
        return Response.json({"message": f"cove does not implement {req.method} {path} "
                                         "(see docs/api.md for what it supports)"}, 501)


def error_response(exc: BaseException) -> Response:
    """The one place where an error becomes an HTTP response (a CoveError's ``status``, else 500)."""
    if isinstance(exc, CoveError):
        return Response.json({"message": _cut(exc.message)}, exc.status)
    if isinstance(exc, ExceptionGroup):
        return Response.json({"message": _cut("; ".join(str(e) for e in exc.exceptions))}, 500)
    log.exception("internal error", exc_info=exc)
    return Response.json({"message": _cut(f"internal error: {exc}")}, 500)


@dataclass(frozen=True)
class Limits:
    """What one client may cost the daemon.  Every value is a bound on a resource
    that a client (any local process allowed on the socket) could otherwise hold
    without end; each is far above what Docker's clients need.

    - ``max_connections``: connections served at once.  Each costs a thread and a
      descriptor; ``docker`` clients hold one per ``attach``/``wait``/``logs -f``/
      ``events``, so a few hundred containers followed at once stay under 512,
      while 512 threads and descriptors are well inside the daemon's limits.  A
      connection over the cap gets ``503`` and is closed (the daemon lives on).
    - ``max_head``: bytes of a request line and headers (64 KiB; Docker clients send
      under 1 KiB, a registry auth header a few KiB).  Over it: ``431``.
    - ``max_headers``: header fields in one request (Docker's clients send < 20).
      Over it: ``431``.
    - ``max_body``: bytes of a request body read into memory (4 MiB; the largest
      body a Docker client sends, a container create with its environment, is a few
      KiB; Kubernetes' API server stops at 3 MiB).  Over it: ``413``.  Image imports
      are not read into memory: the handler reads them from the socket to disk.
      With ``max_connections`` this bounds buffered bodies; in practice far less,
      as the ``413`` comes from the Content-Length before any byte is read.
    - ``idle_timeout``: how long a kept-alive connection may wait for its next
      request (2 minutes: longer than the pools of docker-py and Go keep idle
      connections, 90 s).
    - ``head_timeout``: from the first byte of a request to the end of its headers
      (10 s: a local client sends them in one write; a client that trickles them,
      "slowloris", is cut with ``408``).
    - ``body_timeout``: a body read into memory, in full (60 s: 4 MiB over a unix
      socket takes milliseconds).
    - ``stall_timeout``: a streamed body (image import) may go this long without a
      byte (60 s), however long it lasts as a whole.
    - ``send_timeout``: a client that reads nothing of an answer for this long is
      dropped (60 s), so a stuck client cannot keep a thread in ``send``.
    - ``linger``: after a ``413`` or ``408`` the rest of what the client sends is read
      and thrown away for up to 2 s, so that the client, still writing its body, gets
      to read the answer instead of a broken pipe.
    """

    max_connections: int = 512
    max_head: int = 64 * 1024
    max_headers: int = 256
    max_body: int = MAX_BODY
    idle_timeout: float = 120.0
    head_timeout: float = 10.0
    body_timeout: float = 60.0
    stall_timeout: float = 60.0
    send_timeout: float = 60.0
    linger: float = 2.0


#: after an ``accept()`` error (EMFILE: out of descriptors, ENOBUFS, ENOMEM): wait
#: this long before the next try, so the loop does not spin while descriptors are
#: short; the pending connections wait in the listen backlog meanwhile
ACCEPT_RETRY = 0.1
#: messages of error answers are cut to this many characters: a 10 MB name in a
#: request must not come back 10 MB long in its 400
MAX_MESSAGE = 512


#: threads kept waiting for the next connection once theirs closed.  The docker CLI opens a
#: connection per command; a thread per connection started and ended tens of thousands of
#: threads in a churn soak, each leaving its malloc arena and stack behind for a while.
#: Connections beyond the kept threads (attach, logs -f, events) still get a thread each.
WORKERS_KEPT = 8


class _Workers:
    """Threads that serve one connection after another: a connection goes to an idle thread
    when one waits, else to a new thread; a thread whose connection closed waits for the next
    one, unless :attr:`kept` threads already wait (then it ends)."""

    def __init__(self, serve: Callable[[socket.socket], None], kept: int) -> None:
        self._serve = serve
        self.kept = kept
        self._lock = threading.Lock()
        self._idle = 0
        self._queue: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()

    @property
    def idle(self) -> int:
        return self._idle

    def submit(self, conn: socket.socket) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._queue.put(conn)
                return
        threading.Thread(target=self._run, args=(conn,), daemon=True, name="cove-http").start()

    def _run(self, conn: socket.socket) -> None:
        while True:
            try:
                self._serve(conn)
            except Exception:  # noqa: BLE001 - one connection's bug must not end the thread quietly
                log.exception("serving a connection failed")
            with self._lock:
                if self._idle >= self.kept:
                    return
                self._idle += 1
            conn = self._queue.get()


class _Refuse(Exception):
    """Answer ``status`` with ``message`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyReader:
    """A request body read from the socket as the handler asks for it (``read(n)``),
    for bodies that must not be held in memory (image imports).  Each read waits at
    most :attr:`Limits.stall_timeout` for more bytes."""

    def __init__(self, conn: h11.Connection, sock: socket.socket, stall: float) -> None:
        self._conn = conn
        self._sock = sock
        self._stall = stall
        self._buf = bytearray()
        self.done = False

    def _pull(self) -> None:
        event = self._conn.next_event()
        if event is h11.NEED_DATA:
            self._sock.settimeout(self._stall)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise _BodyError(408, f"no body bytes for {self._stall:g} s") from None
            self._conn.receive_data(data)
            if not data:
                raise _BodyError(400, "the client closed the connection in the middle of the body")
        elif isinstance(event, h11.Data):
            self._buf += event.data
        elif isinstance(event, h11.EndOfMessage):
            self.done = True
        else:
            raise _BodyError(400, "the request body ended unexpectedly")

    def read(self, size: int = -1) -> bytes:
        try:
            while not self.done and (size < 0 or len(self._buf) < size):
                self._pull()
        except h11.RemoteProtocolError as exc:
            raise _BodyError(exc.error_status_hint, f"malformed request body: {exc}") from None
        if size < 0 or size >= len(self._buf):
            out, self._buf = bytes(self._buf), bytearray()
        else:
            out = bytes(self._buf[:size])
            del self._buf[:size]
        return out

    def drain(self, deadline: float) -> bool:
        """Read and drop what is left of the body until ``deadline``; whether it ended."""
        try:
            while not self.done and (left := deadline - time.monotonic()) > 0:
                self._buf.clear()
                self._stall = left          # no single read outlasts the deadline
                self._pull()
        except (h11.RemoteProtocolError, _BodyError, OSError):
            return False
        return self.done


class _BodyError(CoveError):
    """A streamed body could not be read (timeout, bad chunk): the handler's request fails."""

    category = "invalid"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _cut(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters not shown)"


class Server:
    def __init__(self, path: str, router: Router, extra_headers: list[tuple[str, str]] | None = None,
                 limits: Limits | None = None) -> None:
        self.path = path
        self.router = router
        self.extra_headers = extra_headers or []
        self.limits = limits or Limits()
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._count_lock = threading.Lock()
        self.connections = 0          # served right now
        self.accept_errors = 0        # accept() failures survived so far
        self._workers = _Workers(self._serve_conn, WORKERS_KEPT)

    def bind(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        os.chmod(self.path, 0o660)
        s.listen(128)
        self._sock = s

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`.  An ``accept()`` error (EMFILE when
        the daemon is out of descriptors) is logged and retried after
        :data:`ACCEPT_RETRY`: the loop never ends on its own."""
        assert self._sock is not None
        last_log = 0.0
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    break
                self.accept_errors += 1
                now = time.monotonic()
                if now - last_log > 10:           # one line per 10 s, however often it fails
                    log.error("accept() failed, retrying: %s (%d failures so far)", exc, self.accept_errors)
                    last_log = now
                if exc.errno not in (errno.ECONNABORTED, errno.EINTR):
                    time.sleep(ACCEPT_RETRY)
                continue
            try:
                self._start(conn)
            except Exception:  # noqa: BLE001 - e.g. no thread could be started: drop this one
                log.exception("could not serve a connection")
                conn.close()
                time.sleep(ACCEPT_RETRY)

    def _start(self, conn: socket.socket) -> None:
        with self._count_lock:
            full = self.connections >= self.limits.max_connections
            if not full:
                self.connections += 1
        if full:
            # Answered here, on the accepting thread: the answer fits in the empty socket
            # buffer, so this never blocks.
            try:
                conn.setblocking(False)
                conn.send(_plain(503, f"too many connections (at most {self.limits.max_connections}); "
                                      "retry later", self.extra_headers))
            except OSError:
                pass
            conn.close()
            return
        try:
            self._workers.submit(conn)
        except BaseException:
            with self._count_lock:
                self.connections -= 1
            raise

    def shutdown(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    # one connection -----------------------------------------------------------------
    def _serve_conn(self, sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head)
        try:
            while True:
                try:
                    req = self._read_request(conn, sock)
                except _Refuse as refusal:
                    self._refuse(conn, sock, refusal.status, refusal.message)
                    return
                except h11.RemoteProtocolError as exc:
                    self._refuse(conn, sock, exc.error_status_hint, f"malformed HTTP request: {exc}")
                    return
                if req is None:
                    return
                sock.settimeout(self.limits.send_timeout)
                began = time.monotonic()
                try:
                    resp = self.router.dispatch(req)
                except BaseException as exc:  # noqa: BLE001 - turned into an HTTP error
                    resp = error_response(exc)
                reader = req.body_reader
                if reader is not None and not reader.done:
                    # a streamed body the handler did not read to its end: drop the rest
                    # (within the linger time) so the answer reaches the client
                    reader.drain(time.monotonic() + self.limits.linger)
                sock.settimeout(self.limits.send_timeout)
                if resp.hijack is not None:
                    sock.settimeout(None)     # the raw stream lives as long as the container
                    _log_request(req, 101 if req.wants_upgrade else 200, began)
                    self._hijack(conn, sock, req, resp)
                    return
                try:
                    self._send(conn, sock, req, resp)
                finally:
                    _log_request(req, resp.status, began)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    return
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (ConnectionError, BrokenPipeError, h11.RemoteProtocolError, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._count_lock:
                self.connections -= 1

    def _refuse(self, conn: h11.Connection, sock: socket.socket, status: int, message: str) -> None:
        """Answer an error with ``{"message": ...}`` where HTTP still allows an answer, then
        close, reading and dropping what the client still sends for :attr:`Limits.linger`."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (json.dumps({"message": _cut(message)}) + "\n").encode()
        hdrs = self._headers(Response(status=status)) + [("Content-Length", str(len(body))),
                                                         ("Connection", "close")]
        try:
            sock.settimeout(self.limits.send_timeout)
            sock.sendall(conn.send(h11.Response(status_code=status, headers=hdrs)) + body)
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + self.limits.linger
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                if not sock.recv(65536):
                    break
        except (OSError, h11.LocalProtocolError):
            pass

    def _recv(self, conn: h11.Connection, sock: socket.socket, deadline: float, what: str) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(what)
        sock.settimeout(left)
        data = sock.recv(65536)
        conn.receive_data(data)
        return data

    def _read_request(self, conn: h11.Connection, sock: socket.socket) -> Request | None:
        lim = self.limits
        head: h11.Request | None = None
        # waiting for a request: the idle deadline; once its first byte came, the head deadline
        deadline = time.monotonic() + lim.idle_timeout
        started = bool(conn.trailing_data[0])
        if started:
            deadline = time.monotonic() + lim.head_timeout
        while head is None:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = self._recv(conn, sock, deadline, "head")
                except TimeoutError:
                    if started:
                        raise _Refuse(408, f"the request headers did not arrive within {lim.head_timeout:g} s") from None
                    return None       # an idle keep-alive connection: closed without a word
                if not data:
                    return None
                if not started:
                    started = True
                    deadline = time.monotonic() + lim.head_timeout
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:   # PAUSED and the like cannot come before a request
                return None
        if len(head.headers) > lim.max_headers:
            raise _Refuse(431, f"too many header fields: {len(head.headers)} (at most {lim.max_headers})")
        try:
            target = head.target.decode("ascii")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        except UnicodeDecodeError:
            raise _Refuse(400, "the request target is not ASCII") from None
        parts = urlsplit(target)
        req = Request(method=head.method.decode("ascii", "replace"), path=parts.path,
                      query=parse_qs(parts.query), headers=headers)
        if self.router.streams_body(req):
            req.body_reader = BodyReader(conn, sock, lim.stall_timeout)
            return req
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > lim.max_body:
            raise _Refuse(413, f"request body too large: {int(length)} bytes (at most {lim.max_body})")
        body = bytearray()
        deadline = time.monotonic() + lim.body_timeout
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = self._recv(conn, sock, deadline, "body")
                except TimeoutError:
                    raise _Refuse(408, f"the request body did not arrive within {lim.body_timeout:g} s") from None
                if not data:
                    return None
                continue
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > lim.max_body:
                    raise _Refuse(413, f"request body too large: over {lim.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None
        req.body = bytes(body)
        return req

    def _headers(self, resp: Response) -> list[tuple[str, str]]:
        hdrs = [("Server", "cove"), ("Api-Version", "1.43"), ("Docker-Experimental", "false"),
                ("Ostype", "linux")] + self.extra_headers + resp.headers
        if resp.content_type:
            hdrs.append(("Content-Type", resp.content_type))
        return hdrs

    def _send(self, conn: h11.Connection, sock: socket.socket, req: Request, resp: Response) -> None:
        hdrs = self._headers(resp)
        if resp.stream is None:
            if resp.status not in (204, 304):
                hdrs.append(("Content-Length", str(len(resp.body))))
            # one write: the head and the body in separate ones cost the client a second wake-up
            out = conn.send(h11.Response(status_code=resp.status, headers=hdrs))
            if resp.body and req.method != "HEAD":
                out += conn.send(h11.Data(data=resp.body))
            sock.sendall(out + conn.send(h11.EndOfMessage()))
            return
        sock.sendall(conn.send(h11.Response(status_code=resp.status, headers=hdrs)))
        watcher = _HangupWatcher(sock, resp.on_hangup) if resp.on_hangup is not None else None
        try:
            for chunk in resp.stream:
                if chunk:
                    sock.sendall(conn.send(h11.Data(data=chunk)))
        finally:
            if watcher is not None:
                watcher.stop()          # before the socket can be closed under it
            close = getattr(resp.stream, "close", None)
            if close is not None:
                close()
        if watcher is not None and watcher.hung_up:
            raise ConnectionError("client closed the stream")
        sock.sendall(conn.send(h11.EndOfMessage()))

    def _hijack(self, conn: h11.Connection, sock: socket.socket, req: Request, resp: Response) -> None:
        assert resp.hijack is not None
        hdrs = [("Content-Type", resp.content_type or "application/vnd.docker.raw-stream")]
        if req.wants_upgrade and conn.their_state is h11.MIGHT_SWITCH_PROTOCOL:  # type: ignore[attr-defined]
            hdrs += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
            sock.sendall(conn.send(h11.InformationalResponse(status_code=101, headers=hdrs,
                                                             reason=b"UPGRADED")))
            leftover, _closed = conn.trailing_data
        else:
            # The client did not ask to upgrade: answer 200 and stream raw until we close.
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: close\r\n\r\n"
            sock.sendall(head.encode())
            leftover = b""
        resp.hijack(sock, bytes(leftover))


def _log_request(req: Request, status: int, began: float) -> None:
    """At debug level, one line per request: ``METHOD path -> status (ms)`` (a stream's time is its
    whole life; a hijacked connection's, until it was handed over)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s -> %d (%.1f ms)", req.method, req.path, status, (time.monotonic() - began) * 1000)


def _plain(status: int, message: str, extra: list[tuple[str, str]]) -> bytes:
    """A whole ``Connection: close`` answer with a JSON message, without h11 (no request was read)."""
    body = (json.dumps({"message": message}) + "\n").encode()
    reason = {503: "Service Unavailable"}.get(status, "Error")
    head = [f"HTTP/1.1 {status} {reason}", "Server: cove", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"] + [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _HangupWatcher:
    """Waits (poll, no timeout) until the peer shuts its side or the stream ends.

    ``POLLRDHUP`` fires on the peer's close only, not on data it may still send
    (a pipelined request stays in the buffer for the next cycle).
    """

    def __init__(self, sock: socket.socket, on_hangup: Callable[[], None]) -> None:
        self._fd = sock.fileno()
        self._on_hangup = on_hangup
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self.hung_up = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="cove-http-hangup")
        self._thread.start()

    def _run(self) -> None:
        p = select.poll()
        p.register(self._fd, select.POLLRDHUP)
        p.register(self._wake_r, select.POLLIN)
        while True:
            try:
                ready = dict(p.poll())
            except InterruptedError:
                continue
            break
        if self._wake_r in ready:
            return
        self.hung_up = True
        try:
            self._on_hangup()
        except Exception:  # noqa: BLE001 - the watcher must not take the connection down
            log.exception("hangup callback")

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
