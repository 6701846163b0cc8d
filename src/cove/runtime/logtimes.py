"""When each piece of a container's output was written: ``logs --timestamps`` (Docker's ``timestamps=1``).

The logs (:mod:`cove.runtime.logs`) are the raw bytes the container wrote.  Beside each log file
``NAME`` the shim's :class:`~cove.runtime.logs.LogWriter` keeps ``times-NAME``: one 16-byte record
(little-endian file offset, wall-clock nanoseconds) per write, written before the bytes, rotated
with its log.  A line's time is the time of the write that holds its first byte, as Docker's
json-file driver stamps each message when it reads it from the container.

:func:`follow_stamped` reads the logs back as whole lines, each prefixed with its time in
Docker's format (RFC 3339, nine fraction digits, ``Z``); stdout's and stderr's lines in the
order they were written.  Lines without a record (a log written before cove kept times) take
their file's modification time.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

RECORD = struct.Struct("<QQ")


def times_path(path: str) -> str:
    """The times file of the log file ``path`` (rotated names included: ``NAME.1`` -> ``times-NAME.1``)."""
    head, name = os.path.split(path)
    return os.path.join(head, f"times-{name}")


def stamp(ns: int) -> bytes:
    """Docker's log timestamp: ``2006-01-02T15:04:05.000000000Z``."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)).encode() + b".%09dZ" % frac


class _Times:
    """The (offset, ns) records of one log file, read incrementally."""

    def __init__(self, log_path: str) -> None:
        self.offsets: list[int] = []
        self.ns: list[int] = []
        self.buf = b""
        try:
            self.f: BinaryIO | None = open(times_path(log_path), "rb")
        except FileNotFoundError:
            self.f = None
        try:
            self.fallback = os.stat(log_path).st_mtime_ns
        except FileNotFoundError:
            self.fallback = time.time_ns()
        self.refresh()

    def refresh(self) -> None:
        if self.f is None:
            return
        self.buf += self.f.read()
        whole = len(self.buf) - len(self.buf) % RECORD.size
        for off, ns in RECORD.iter_unpack(self.buf[:whole]):
            self.offsets.append(off)
            self.ns.append(ns)
        self.buf = self.buf[whole:]

    def at(self, offset: int) -> int:
        i = bisect.bisect_right(self.offsets, offset) - 1
        return self.ns[i] if i >= 0 else self.fallback

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


class _Reader:
    """One stream's log files, oldest first, as (ns, line) from a file offset on."""

    def __init__(self, stream: str, path: str) -> None:
        self.stream, self.path = stream, path
        self.f: BinaryIO | None = None
        self.times: _Times | None = None
        self.pos = 0
        self.partial = b""
        self.partial_at = 0

    def _open(self) -> bool:
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except FileNotFoundError:
                return False
            self.times, self.pos = _Times(self.path), 0
        return True

    def lines(self, final: bool) -> Iterator[tuple[int, str, bytes]]:
        """The whole lines written since the last call; with ``final``, a trailing partial one too."""
        if not self._open():
            return
        assert self.f is not None and self.times is not None
        while True:
            data = self.f.read(65536)
            if not data:
                break
            self.times.refresh()
            start = 0
            while (nl := data.find(b"\n", start)) >= 0:
                if not self.partial:
                    self.partial_at = self.pos + start
                line, self.partial = self.partial + data[start:nl + 1], b""
                yield self.times.at(self.partial_at), self.stream, line
                start = nl + 1
            if start < len(data):
                if not self.partial:
                    self.partial_at = self.pos + start
                self.partial += data[start:]
            self.pos += len(data)
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino
        except FileNotFoundError:
            rotated = False
        if rotated:                          # read to its end above; the new file from its start
            self.close()
            yield from self.lines(final)
            return
        if final and self.partial:
            yield self.times.at(self.partial_at), self.stream, self.partial
            self.partial = b""

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
        if self.times is not None:
            self.times.close()
            self.times = None


def _file_lines(stream: str, path: str) -> list[tuple[int, str, bytes]]:
    r = _Reader(stream, path)
    try:
        return list(r.lines(final=True))
    finally:
        r.close()


def follow_stamped(data_dir: str, names: list[tuple[str, str]], rotated: Callable[[str], list[str]],
                   follow: bool, is_running: Callable[[], bool], tail: int | None) -> Iterator[tuple[str, bytes]]:
    """``(stream, b"TIMESTAMP line")``: what is written so far (the last ``tail`` lines with
    ``tail``), then with ``follow`` what comes, until the container has ended."""
    readers = [_Reader(stream, os.path.join(data_dir, name)) for stream, name in names]
    try:
        old: list[tuple[int, str, bytes]] = []
        for r in readers:
            for path in rotated(r.path):
                old += _file_lines(r.stream, path)
            old += r.lines(final=not follow)
        old.sort(key=lambda item: item[0])          # stable: a stream's own order is kept
        if tail is not None:
            old = old[-tail:] if tail > 0 else []
        for ns, stream, line in old:
            yield stream, stamp(ns) + b" " + line
        while follow:
            running = is_running()                  # asked first: what it wrote before it ended is read
            new = sorted((item for r in readers for item in r.lines(final=not running)), key=lambda i: i[0])
            for ns, stream, line in new:
                yield stream, stamp(ns) + b" " + line
            if not running and not new:
                return
            if not new:
                time.sleep(0.05)
    finally:
        for r in readers:
            r.close()
