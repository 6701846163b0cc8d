"""What one client may cost the API server: deadlines, a connection cap, body limits,
malformed requests answered 4xx, and an accept loop that survives running out of descriptors.

Each test runs a real :class:`Server` on a unix socket with small limits.  How each test fails
without its protection is said next to it.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cove.daemon.http import Limits, Request, Response, Router, Server
from cove.errors import InvalidArgument

LIMITS = Limits(max_connections=4, max_body=1 << 20, idle_timeout=1.0, head_timeout=0.5, body_timeout=1.0,
                stall_timeout=1.0, linger=1.0)


def _router() -> Router:
    r = Router()
    r.add("GET", "/_ping", lambda req: Response(body=b"OK", content_type="text/plain"))
    r.add("POST", "/echo", lambda req: Response.json({"size": len(req.body)}))

    def count(req: Request) -> Response:
        f, n = req.stream(), 0
        while chunk := f.read(1 << 16):
            n += len(chunk)
        return Response.json({"size": n})

    r.add("POST", "/import", count, stream_body=True)

    def bad_name(req: Request) -> Response:
        raise InvalidArgument(f"invalid name {req.body.decode()!r}: only [a-zA-Z0-9_.-] are allowed")

    r.add("POST", "/name", bad_name)
    return r


class _FlakySocket:
    """A listening socket whose first ``fails`` accepts fail with EMFILE, as when the
    daemon is out of descriptors."""

    def __init__(self, real: socket.socket, fails: int) -> None:
        self.real, self.fails = real, fails

    def accept(self):  # type: ignore[no-untyped-def]
        if self.fails > 0:
            self.fails -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self.real.accept()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    s = Server(str(tmp_path / "s.sock"), _router(), limits=LIMITS)
    s.bind()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()


def _connect(server: Server) -> socket.socket:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(server.path)
    return c


def _exchange(server: Server, raw: bytes, read_for: float = 10) -> tuple[int | None, bytes]:
    """Send ``raw`` (ignoring a broken pipe), read the answer until the server closes:
    (status or None when it closed without one, body)."""
    c = _connect(server)
    try:
        try:
            c.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline:
            try:
                chunk = c.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        c.close()
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _message(body: bytes) -> str:
    return json.loads(body)["message"]


def test_a_body_over_the_limit_is_413_with_a_message(server: Server) -> None:
    # Without the Content-Length check the server reads 8 MiB first; without the limit at
    # all (before: the connection was closed) there is no status.
    body = b"x" * (8 << 20)
    status, answer = _exchange(server, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
                               + body)
    assert status == 413
    assert "too large" in _message(answer)


def test_a_chunked_body_over_the_limit_is_413(server: Server) -> None:
    chunk = b"x" * 65536
    raw = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += (b"10000\r\n" + chunk + b"\r\n") * 20 + b"0\r\n\r\n"
    status, answer = _exchange(server, raw)
    assert status == 413
    assert "too large" in _message(answer)


def test_a_body_under_the_limit_is_read(server: Server) -> None:
    body = b"y" * 1000
    status, answer = _exchange(server, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n"
                                       b"Connection: close\r\n\r\n" + body)
    assert (status, json.loads(answer)) == (200, {"size": 1000})


def test_a_streamed_route_reads_any_size_without_the_limit(server: Server) -> None:
    # 8 MiB through a route with stream_body: the handler reads it from the socket (an image
    # import writes it to disk); a buffered route would answer 413.
    size = 8 << 20
    status, answer = _exchange(server, b"POST /import HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                                       b"Connection: close\r\n\r\n" % size + b"z" * size)
    assert (status, json.loads(answer)) == (200, {"size": size})


def test_headers_trickled_slowly_get_408(server: Server) -> None:
    # slowloris: the head never ends.  Without the head deadline the thread waits forever
    # (this test then sees no status before its own 10 s read limit).
    c = _connect(server)
    try:
        c.sendall(b"GET /_ping HTTP/1.1\r\nHost: a\r\n")
        for _ in range(4):
            time.sleep(0.25)
            try:
                c.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        data = c.recv(65536)
    finally:
        c.close()
    assert data.startswith(b"HTTP/1.1 408 ")


def test_a_body_that_never_comes_gets_408(server: Server) -> None:
    status, answer = _exchange(server, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    assert status == 408
    assert "did not arrive" in _message(answer)


def test_an_idle_connection_is_closed(server: Server) -> None:
    c = _connect(server)
    try:
        assert c.recv(100) == b""          # closed by the server after idle_timeout (1 s here)
    finally:
        c.close()


def test_connections_over_the_cap_get_503_and_the_server_lives_on(server: Server) -> None:
    # Without the cap every connection gets a thread; the 5th idle connection would wait
    # for a request instead of being told 503.
    held = [_connect(server) for _ in range(LIMITS.max_connections)]
    try:
        deadline = time.monotonic() + 5
        while server.connections < LIMITS.max_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        status, answer = _exchange(server, b"GET /_ping HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status == 503
        assert "too many connections" in _message(answer)
    finally:
        for c in held:
            c.close()
    deadline = time.monotonic() + 5
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    status, answer = _exchange(server, b"GET /_ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert (status, answer) == (200, b"OK")


@pytest.mark.parametrize("raw, expected", [
    (b"GET /_ping HTTP/1.1\r\n\r\n", 400),                                         # no Host
    (b"GET /_ping\r\n\r\n", 400),                                                  # HTTP/0.9
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    (b"GET /_ping HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 10000 + b"\r\n", 431),  # 10,000 headers
    (b"GET /_ping HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 300 + b"\r\n", 431),    # over max_headers
    (b"GET /_ping HTTP/1.1\r\nHost: a\r\nX-Long: " + b"a" * (1 << 20) + b"\r\n\r\n", 431),  # 1 MB line
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400),                 # TLS to a plain socket
], ids=["no-host", "http-0.9", "bad-chunk", "10000-headers", "300-headers", "1MB-line", "tls"])
def test_malformed_requests_get_a_4xx_with_a_short_message(server: Server, raw: bytes, expected: int) -> None:
    # Before: h11's RemoteProtocolError closed these connections with no status at all.
    status, answer = _exchange(server, raw)
    assert status == expected
    assert len(answer) < 2048
    assert _message(answer)


def test_an_error_never_echoes_a_huge_input(server: Server) -> None:
    # Without the cut, the 400 carries the whole 1 MiB name back.
    name = b"n" * ((1 << 20) - 100)
    status, answer = _exchange(server, b"POST /name HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                       b"Content-Length: %d\r\n\r\n" % len(name) + name)
    assert status == 400
    assert len(answer) < 2048
    assert "more characters not shown" in _message(answer)


def test_accept_errors_are_survived(tmp_path) -> None:
    # Before: the first EMFILE from accept() ended the accept loop and the daemon never
    # answered again.
    s = Server(str(tmp_path / "s.sock"), _router(), limits=LIMITS)
    s.bind()
    assert s._sock is not None
    s._sock = _FlakySocket(s._sock, fails=5)  # type: ignore[assignment]
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        status, answer = _exchange(s, b"GET /_ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert (status, answer) == (200, b"OK")
        assert s.accept_errors == 5
    finally:
        s.shutdown()


def _read_response(c: socket.socket) -> bytes:
    """One whole response: the head and the body may come in separate segments."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head)
        if sep and length and len(body) >= int(length[1]):
            return data
        more = c.recv(65536)
        if not more:
            return data
        data += more


def test_a_streamed_route_that_refuses_early_answers_without_waiting_for_the_body(tmp_path) -> None:
    # The handler refuses before reading; the client has sent 100 of 10 MB bytes and stalls.
    # The rest is drained for `linger` (0.5 s) only, then the 400 goes out: not after the
    # 30 s stall deadline (what happened before drain() bounded each read by its deadline).
    r = _router()

    def refuse(req: Request) -> Response:
        raise InvalidArgument("invalid reference format: repository name must be lowercase")

    r.add("POST", "/refuse", refuse, stream_body=True)
    s = Server(str(tmp_path / "s.sock"), r, limits=Limits(stall_timeout=30.0, linger=0.5))
    s.bind()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        c = _connect(s)
        try:
            c.sendall(b"POST /refuse HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100)
            c.settimeout(10)
            data = _read_response(c)
        finally:
            c.close()
    finally:
        s.shutdown()
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"must be lowercase" in data


def test_a_streamed_route_reads_a_chunked_body(server: Server) -> None:
    # `docker import -` (Go's client) sends the tarball chunked, of unknown length.
    chunk = b"c" * 65536
    raw = b"POST /import HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    raw += (b"10000\r\n" + chunk + b"\r\n") * 100 + b"0\r\n\r\n"
    status, answer = _exchange(server, raw)
    assert (status, json.loads(answer)) == (200, {"size": 100 * 65536})
