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
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from ..errors import CoveError

log = logging.getLogger("cove.http")

MAX_BODY = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

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

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{rx}$"), handler))

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
    """The one place where an error's category becomes an HTTP status."""
    if isinstance(exc, CoveError):
        return Response.json({"message": exc.message}, exc.status)
    if isinstance(exc, ExceptionGroup):
        return Response.json({"message": "; ".join(str(e) for e in exc.exceptions)}, 500)
    log.exception("internal error", exc_info=exc)
    return Response.json({"message": f"internal error: {exc}"}, 500)


class Server:
    def __init__(self, path: str, router: Router, extra_headers: list[tuple[str, str]] | None = None) -> None:
        self.path = path
        self.router = router
        self.extra_headers = extra_headers or []
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()

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
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True, name="cove-http").start()

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
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                req = self._read_request(conn, sock)
                if req is None:
                    return
                try:
                    resp = self.router.dispatch(req)
                except BaseException as exc:  # noqa: BLE001 - turned into an HTTP error
                    resp = error_response(exc)
                if resp.hijack is not None:
                    self._hijack(conn, sock, req, resp)
                    return
                self._send(conn, sock, req, resp)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
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

    def _read_request(self, conn: h11.Connection, sock: socket.socket) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if event is h11.PAUSED:
                break
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise ConnectionError("request body too large")
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return None
        assert head is not None
        target = head.target.decode()
        parts = urlsplit(target)
        headers = {k.decode().lower(): v.decode() for k, v in head.headers}
        return Request(method=head.method.decode(), path=parts.path, query=parse_qs(parts.query),
                       headers=headers, body=bytes(body))

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
            sock.sendall(conn.send(h11.Response(status_code=resp.status, headers=hdrs)))
            if resp.body and req.method != "HEAD":
                sock.sendall(conn.send(h11.Data(data=resp.body)))
            sock.sendall(conn.send(h11.EndOfMessage()))
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
