"""The API server reuses its connection threads instead of starting one per connection.

A churn of short connections (the docker CLI opens one per command) used to start and end a
thread each; now the threads wait for the next connection, up to ``WORKERS_KEPT`` of them.
Seen failing (200 threads started for 200 connections) with ``_Workers.submit`` starting a
thread every time.  Long connections beyond the kept threads are still all served at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.daemon import http
from cove.daemon.http import Limits, Request, Response, Router, Server


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    real = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "cove-http":
            started.append(self.name)
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, threading.Event]]:
    release = threading.Event()
    r = Router()
    r.add("GET", "/_ping", lambda req: Response(body=b"OK", content_type="text/plain"))

    def hold(req: Request) -> Response:
        release.wait(10)
        return Response(body=b"held", content_type="text/plain")

    r.add("GET", "/hold", hold)
    s = Server(str(tmp_path / "s.sock"), r, limits=Limits(max_connections=64))
    s.bind()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s, release
    release.set()
    s.shutdown()


def _get(path: str, target: str) -> bytes:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(path)
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return data


def _settle(server: Server) -> None:
    """Wait until the last connection's thread is back waiting (the client may see the answer
    before the thread has gone back to the queue)."""
    deadline = time.monotonic() + 5
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.001)


def test_sequential_connections_reuse_threads(server: tuple[Server, threading.Event], counted: list[str]) -> None:
    s, _ = server
    for _ in range(200):
        assert _get(s.path, "/_ping").endswith(b"OK")
        _settle(s)
    assert len(counted) <= 2, f"{len(counted)} threads started for 200 connections"


def test_long_connections_beyond_the_kept_threads_are_all_served(
        server: tuple[Server, threading.Event], counted: list[str]) -> None:
    s, release = server
    n = http.WORKERS_KEPT + 6
    answers: list[bytes] = []
    clients = [threading.Thread(target=lambda: answers.append(_get(s.path, "/hold"))) for _ in range(n)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 10
    while s.connections < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.connections == n, "every long connection is being served at once"
    assert _get(s.path, "/_ping").endswith(b"OK")        # and one more still answers
    release.set()
    for t in clients:
        t.join(10)
    assert len(answers) == n and all(a.endswith(b"held") for a in answers)
    _settle(s)
    assert s._workers.idle == http.WORKERS_KEPT          # the extra threads ended
