"""The container's output logs in its data dir: ``stdout.log``/``stderr.log``, or ``tty.log``.

The shim copies the container's output into them (:class:`LogWriter`), rotating as
Docker's ``json-file`` driver does with ``--log-opt max-size=SIZE`` and ``max-file=N``:
when a write would take the file past ``max-size`` it becomes ``NAME.1`` (``NAME.1``
becomes ``NAME.2``, and so on; beyond ``max-file`` files the oldest goes).  Unlike
Docker's default (no limit), cove caps a log by default: :data:`DEFAULT_MAX_SIZE` and
:data:`DEFAULT_MAX_FILE`.  The files are made by the container's first write (a container that
writes nothing has none; a missing file reads as empty).  :func:`follow_logs` reads them back,
oldest first, and with ``tail`` reads from the end of the files, never the whole of them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ..errors import InvalidArgument
from .logtimes import RECORD, follow_stamped, times_path

DEFAULT_MAX_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_FILE = 5
LOG_DRIVERS = ("json-file", "local", "none")
#: ``--log-driver none``: ``logs`` is refused, as Docker does; the output is still kept this small
#: (one file of 1 MiB) because an attached client reads it from there
NONE_MAX_SIZE = 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmgb]?)b?\s*", text.lower())
    if not m:
        raise InvalidArgument(f"invalid LogConfig: max-size {text!r} is not a size (like 10m)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def check_config(log_config: dict[str, Any]) -> None:
    """A 400 for a LogConfig cove cannot honour."""
    driver = log_config.get("Type") or "json-file"
    if driver not in LOG_DRIVERS:
        raise InvalidArgument(f"invalid LogConfig.Type: log driver {driver!r} (cove has json-file, local, none)")
    opts = log_config.get("Config") or {}
    if driver == "none" and opts:
        raise InvalidArgument("invalid LogConfig.Config: the none log driver takes no options")
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidArgument("invalid LogConfig: Config must map option names to strings")
    for key in opts:
        if key not in ("max-size", "max-file"):
            raise InvalidArgument(f"invalid LogConfig: unknown log opt {key!r} (cove has max-size, max-file)")
    if "max-size" in opts and opts["max-size"] != "-1" and parse_size(opts["max-size"]) <= 0:
        raise InvalidArgument("invalid LogConfig: max-size must be a positive size")
    if "max-file" in opts:
        if not (opts["max-file"].isascii() and opts["max-file"].isdigit()) or int(opts["max-file"]) < 1:
            raise InvalidArgument(f"invalid LogConfig: max-file {opts['max-file']!r} must be a positive integer")
        if opts.get("max-size", "-1") == "-1" and int(opts["max-file"]) > 1:
            raise InvalidArgument("invalid LogConfig: max-file needs max-size")


def limits(log_config: dict[str, Any]) -> tuple[int, int]:
    """(max size in bytes, max files) of a checked LogConfig; cove's default cap when unset.
    ``max-size=-1`` turns the cap off (0)."""
    if (log_config or {}).get("Type") == "none":
        return NONE_MAX_SIZE, 1
    opts = (log_config or {}).get("Config") or {}
    size = opts.get("max-size")
    if size is None:
        return DEFAULT_MAX_SIZE, int(opts.get("max-file", DEFAULT_MAX_FILE))
    if size == "-1":
        return 0, 1
    return parse_size(size), int(opts.get("max-file", "1"))


class LogWriter:
    """Appends to a log file, rotating it at ``max_size`` bytes (0: never), keeping ``max_file`` files.

    A write that fails (the file cannot be made, the disk is full: ENOSPC, EDQUOT, EIO) drops
    that output and never raises: the container runs on and the shim keeps supervising it, as
    Docker's json-file driver logs its error and drops the message.  The shim's stderr (kept in
    ``shim.log``) says so once when the failures start and, with the count of bytes dropped,
    once when a write succeeds again or the log is closed: not a line per write (a full disk
    under a chatty container would fill the shim's memfd instead).  Each write tries again.

    The files are made by the first write, not before: a container that writes nothing has no
    log files (the readers take a missing file as an empty one).  Each file is an inode, and on
    this machine's ext4 without a journal an inode made costs ~0.3 ms of CPU while containers
    come and go (``ext4_new_inode`` scans the recently deleted ones): four per start
    (bench/results/2026-12-07-inodes.md)."""

    def __init__(self, path: str, max_size: int, max_file: int) -> None:
        self.path, self.max_size, self.max_file = path, max_size, max(1, max_file)
        self.fd = self.times_fd = -1
        self.size = 0
        #: bytes dropped since the current run of failed writes began (:attr:`failing`), and in all
        self.dropped = self.dropped_total = 0
        #: the error of the current run of failed writes (None: the last write succeeded)
        self.failing: OSError | None = None

    def _open(self) -> None:
        # 0600: the output may hold secrets; beside it, when each write came (logs --timestamps).
        # The times file first: a reader that finds the log finds its times too.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        times_fd = os.open(times_path(self.path), flags, 0o600)
        try:
            self.fd = os.open(self.path, flags, 0o600)
        except BaseException:
            os.close(times_fd)
            raise
        self.times_fd = times_fd
        self.size = os.fstat(self.fd).st_size

    def _close(self) -> None:
        for fd in (self.fd, self.times_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:                  # EIO of a write the kernel had deferred: the fd is gone anyway
                    pass
        self.fd = self.times_fd = -1

    def _rotate(self) -> None:
        self._close()
        if self.max_file > 1:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
                    if os.path.exists(times_path(src)):
                        os.replace(times_path(src), times_path(f"{self.path}.{i}"))
        else:
            os.unlink(self.path)
            if os.path.exists(times_path(self.path)):
                os.unlink(times_path(self.path))
        self._open()

    def write(self, data: bytes) -> None:
        """Append ``data``; a file never grows past ``max_size`` (split at a line's end when one fits).

        What cannot be written is dropped (see the class); this never raises OSError."""
        view = memoryview(data)
        if not view:
            return
        made = self.fd >= 0
        try:
            if not made:
                self._open()
                made = True
            while view:
                piece = view
                if self.max_size:
                    room = self.max_size - self.size
                    if len(view) > room:
                        cut = bytes(view[:room]).rfind(b"\n") + 1 if room > 0 else 0
                        if cut == 0 and self.size:        # not even one line fits: a new file
                            self._rotate()
                            continue
                        piece = view[: cut or room]
                os.write(self.times_fd, RECORD.pack(self.size, time.time_ns()))     # before the bytes it times
                n = os.write(self.fd, piece)
                self.size += n
                view = view[n:]
                if self.max_size and self.size >= self.max_size and view:
                    self._rotate()
        except OSError as exc:
            # the container runs by now (a start that opened the files up front would have been
            # refused instead): as Docker's json-file driver, the output is dropped, said on the
            # shim's stderr (kept in shim.log), and the next write tries again
            self._drop(len(view), exc, "write" if made else "make")
            return
        if self.failing is not None:
            self._said_dropped()

    def _drop(self, size: int, exc: OSError, what: str) -> None:
        if self.failing is None:
            print(f"cove shim: cannot {what} {self.path}: {exc.strerror or exc}; its output is dropped"
                  " until it can be written", file=sys.stderr)
        self.failing = exc
        self.dropped += size
        self.dropped_total += size

    def _said_dropped(self) -> None:
        """Say how much the run of failures that just ended dropped."""
        exc = self.failing
        reason = (exc.strerror or str(exc)) if exc is not None else ""
        print(f"cove shim: {self.dropped} bytes of output dropped from {self.path} ({reason})", file=sys.stderr)
        self.failing, self.dropped = None, 0

    def close(self) -> None:
        if self.failing is not None:
            self._said_dropped()
        self._close()


def _files(data_dir: str, tty: bool) -> list[tuple[str, str]]:
    return [("stdout", "tty.log")] if tty else [("stdout", "stdout.log"), ("stderr", "stderr.log")]


def _rotated(path: str) -> list[str]:
    """The rotated files of ``path``, oldest first (``NAME.N`` ... ``NAME.1``)."""
    out, i = [], 1
    while os.path.exists(f"{path}.{i}"):
        out.append(f"{path}.{i}")
        i += 1
    return out[::-1]


def _last_lines(paths: list[str], n: int, block: int = 65536) -> list[bytes]:
    """The last ``n`` lines of the concatenation of ``paths``, read backwards from the end."""
    if n <= 0:
        return []
    buf = b""
    for path in reversed(paths):
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            continue
        with f:
            pos = f.seek(0, os.SEEK_END)
            while pos > 0 and buf.count(b"\n") <= n:   # n+1 newlines: the n-th last line is whole
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
        if buf.count(b"\n") > n:
            break
    return buf.splitlines(keepends=True)[-n:]


def follow_logs(data_dir: str, tty: bool, follow: bool, is_running: Callable[[], bool],
                tail: int | None = None, timestamps: bool = False) -> Iterator[tuple[str, bytes]]:
    """Yield (stream, bytes) from the container's logs; with ``follow``, until it exits.

    With ``timestamps``, whole lines each prefixed with the time it was written
    (:mod:`cove.runtime.logtimes`).

    ``stream`` is "stdout" or "stderr" (a terminal's output is all "stdout").  With
    ``tail``, only the last ``tail`` lines come first (stdout's then stderr's, the last
    ``tail`` of them), read from the end of the files.  The end is taken now, at the
    call, not at the first ``next()``: ``tail=0`` is "what is written from now on"
    (an attach without ``logs=1``), even if the reading starts later.
    """
    names = _files(data_dir, tty)
    if timestamps:
        return follow_stamped(data_dir, names, _rotated, follow, is_running, tail)
    files: dict[str, BinaryIO] = {}
    picked: list[tuple[str, bytes]] = []
    if tail is not None:
        for stream, name in names:
            path = os.path.join(data_dir, name)
            try:
                files[stream] = open(path, "rb")
                files[stream].seek(0, os.SEEK_END)  # what follows the tail starts here
            except FileNotFoundError:
                pass
            if tail > 0:
                picked += [(stream, line) for line in _last_lines([*_rotated(path), path], tail)]
    return _follow(data_dir, names, files, tail is not None, picked[-tail:] if tail else [], follow, is_running)


def _follow(data_dir: str, names: list[tuple[str, str]], files: dict[str, BinaryIO], from_end: bool,
            picked: list[tuple[str, bytes]], follow: bool,
            is_running: Callable[[], bool]) -> Iterator[tuple[str, bytes]]:
    if from_end:
        yield from picked
    else:
        for stream, name in names:
            for old in _rotated(os.path.join(data_dir, name)):
                with open(old, "rb") as f:
                    while data := f.read(65536):
                        yield stream, data

    def read_all() -> Iterator[tuple[str, bytes]]:
        for stream, name in names:
            path = os.path.join(data_dir, name)
            f = files.get(stream)
            if f is None:
                try:
                    f = files[stream] = open(path, "rb")
                except FileNotFoundError:
                    continue
            while data := f.read(65536):
                yield stream, data
            try:
                rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:                          # read to its end above; the new file from its start
                f.close()
                del files[stream]

    try:
        while True:
            running = follow and is_running()    # asked first: output written before it ended is read below
            got = False
            for item in read_all():
                got = True
                yield item
            if not running and not got:
                return
            if not follow:
                return
            if not got:
                time.sleep(0.05)
    finally:
        for fh in files.values():
            fh.close()
