"""A minimal Engine API client over a unix socket, the same for cove and Docker.

Used to time an operation without the CLI's start-up (``POST /networks/N/connect``):
one persistent connection, un-versioned paths (both daemons accept them).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

from .proc import CommandFailed


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class UnixAPI:
    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._conn: _UnixConnection | None = None

    def request(self, method: str, url: str, body: Any = None) -> tuple[int, Any, float]:
        """(status, decoded body or None, seconds from send to the last byte read)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = _UnixConnection(self.path, self.timeout)
            t0 = time.perf_counter()
            try:
                self._conn.request(method, url, body=data, headers=headers)
                resp = self._conn.getresponse()
                raw = resp.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            seconds = time.perf_counter() - t0
            try:
                decoded = json.loads(raw) if raw else None
            except ValueError:
                decoded = raw.decode(errors="replace")
            return resp.status, decoded, seconds
        raise AssertionError("unreachable")

    def stream(self, method: str, url: str, body: Any = None) -> float:
        """A hijacked request (exec start, attach) on a connection of its own, read to EOF: seconds."""
        data = json.dumps(body if body is not None else {}).encode()
        head = (f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        t0 = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            sock.sendall(head + data)
            first = sock.recv(65536)
            if not first.startswith((b"HTTP/1.1 101", b"HTTP/1.1 200", b"HTTP/1.0 200")):
                raise ConnectionError(f"{method} {url}: {first[:200]!r}")
            while sock.recv(65536):
                pass
        return time.perf_counter() - t0

    def call(self, method: str, url: str, body: Any = None) -> float:
        """:meth:`request` that must succeed: the seconds it took; a status of 300 or more raises
        :class:`CommandFailed` with the method, URL, status and answer."""
        status, answer, seconds = self.request(method, url, body)
        if status >= 300:
            raise CommandFailed(f"{method} {url}: {status} {answer}")
        return float(seconds)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
