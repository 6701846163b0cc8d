"""A unix-socket daemon that answers (or breaks) on cue, for the CLI's tests of a broken connection
(tests/unit/test_cli_broken.py, test_cli_fast.py)."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any


def accepted_rest(conn: Any) -> bytes:
    """The request on an accepted connection (head, then Content-Length bytes of body)."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        block = conn.recv(4096)
        if not block:
            return data
        data += block
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        block = conn.recv(4096)
        if not block:
            break
        rest += block
    return head + b"\r\n\r\n" + rest


class BreakingDaemon:
    """A unix socket server that reads each request, then sends ``answer`` and closes the
    connection; with ``reset`` it leaves the request's last bytes unread so that the close
    resets the connection (ECONNRESET on the client's next read)."""

    def __init__(self, path: str, answer: bytes, reset: bool, whole: tuple[bytes, ...] = ()) -> None:
        self.url = f"unix://{path}"
        self.answer = answer
        self.whole = list(whole)        # whole answers to the first requests, before the broken one
        self.reset = reset
        self.served = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                if self.whole:
                    accepted_rest(conn)
                    conn.sendall(self.whole.pop(0))
                    continue
                if self.reset:
                    conn.settimeout(5)
                    conn.recv(16)           # the rest of the request stays queued: close() resets
                else:
                    accepted_rest(conn)
                if self.answer:
                    conn.sendall(self.answer)
                if self.reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.served += 1

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)
