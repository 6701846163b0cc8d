"""Copying a container's streams over a hijacked connection (attach, exec, logs).

Non-tty streams are multiplexed by the daemon: each chunk is preceded by docker's
8-byte header ``[stream, 0, 0, 0, uint32 big-endian length]`` (stream 1 stdout,
2 stderr, 3 an error from the daemon).  Tty streams are raw bytes.  With ``-i -t`` on a
real terminal the local terminal is put in raw mode while streaming (and restored
after), as docker does, and the detach keys ctrl-p ctrl-q end the session without
stopping the container.
"""

import io
import sys

TYPE_CHECKING = False   # typing, collections, threading, os stay unimported on the CLI's fast path (exec)
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator
    from typing import IO, Any, Protocol

    class Connection(Protocol):
        """What the streaming code needs from a hijacked connection."""

        def read(self, size: int = 65536) -> bytes: ...

        def write(self, data: bytes) -> None: ...

        def close_write(self) -> None: ...

        def abort(self) -> None: ...


STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_HEADER_SIZE = 8        # stream, 0, 0, 0, uint32 big-endian length (no struct: two imports less for exec)


def encode_frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame (what the daemon sends for non-tty containers)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


class FrameDecoder:
    """Incremental decoder of the multiplexed stream; feed it bytes as they arrive.

    Input that does not start with a valid header is passed through as stdout, so a
    daemon that sends raw bytes for a non-tty container still shows its output.
    """

    def __init__(self) -> "None":
        self._buffer = bytearray()
        self._raw = False

    def feed(self, data: bytes) -> "list[tuple[int, bytes]]":
        if self._raw:
            return [(STDOUT, data)] if data else []
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= _HEADER_SIZE:
            kind = self._buffer[0]
            if kind > SYSTEMERR or self._buffer[1:4] != b"\0\0\0":
                self._raw = True
                frames.append((STDOUT, bytes(self._buffer)))
                self._buffer.clear()
                break
            size = int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < _HEADER_SIZE + size:
                break
            frames.append((kind, bytes(self._buffer[_HEADER_SIZE:_HEADER_SIZE + size])))
            del self._buffer[:_HEADER_SIZE + size]
        return frames


def copy_output(
    read: "Callable[[int], bytes]",
    *,
    tty: bool,
    stdout: "IO[bytes] | None" = None,
    stderr: "IO[bytes] | None" = None,
) -> "None":
    """Copy the daemon's output to stdout/stderr until the stream ends."""
    out = stdout or binary_stream("stdout")
    err = stderr or binary_stream("stderr")
    decoder = None if tty else FrameDecoder()
    while True:
        data = read(65536)
        if not data:
            return
        chunks = [(STDOUT, data)] if decoder is None else decoder.feed(data)
        for kind, payload in chunks:
            target = err if kind in (STDERR, SYSTEMERR) else out
            target.write(payload)
            target.flush()


def iter_input(source: "IO[bytes]") -> "Iterator[bytes]":
    """Chunks from ``source`` as soon as they are available, until EOF."""
    import os

    try:
        fd: int | None = source.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = None
    while True:
        try:
            if fd is not None:
                data = os.read(fd, 32768)
            elif hasattr(source, "read1"):
                data = source.read1(32768)
            else:
                data = source.read(32768)
        except OSError:
            return
        if not data:
            return
        yield data


class RawTerminal:
    """Context manager: put the terminal on ``fd`` in raw mode, restore it on exit.

    Does nothing when ``fd`` is not a terminal (pipes, files, tests).
    """

    def __init__(self, fd: "int | None") -> "None":
        self._fd = fd
        self._saved: list[Any] | None = None

    def __enter__(self) -> "RawTerminal":
        import os

        if self._fd is not None and os.isatty(self._fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self._fd)
            tty.setraw(self._fd)
        return self

    def __exit__(self, *exc: object) -> "None":
        if self._saved is not None and self._fd is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def stdin_fd() -> "int | None":
    """The file descriptor of the process's real stdin, or None (e.g. under CliRunner)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def binary_stream(name: str) -> "IO[bytes]":
    """The binary side of sys.stdin/stdout/stderr as it is *now* (tests swap them)."""
    import click

    return click.get_binary_stream(name)  # type: ignore[arg-type]


def terminal_size() -> "tuple[int, int] | None":
    """``(rows, columns)`` of the terminal on stdout, or None without one."""
    import os

    try:
        fd = sys.stdout.fileno()
        if not os.isatty(fd):
            return None
        size = os.get_terminal_size(fd)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return size.lines, size.columns


def run_session(conn: "Connection", *, tty: bool, interactive: bool) -> bool:
    """Stream a hijacked connection until the daemon ends it.

    With ``interactive`` the local stdin is copied to the daemon (and the write side
    closed at its EOF).  Returns True when the user detached with ctrl-p ctrl-q.
    """
    import threading

    detached = threading.Event()
    fd = stdin_fd() if interactive and tty else None
    with RawTerminal(fd):
        if interactive:
            thread = threading.Thread(
                target=_copy_input,
                args=(binary_stream("stdin"), conn, detached, tty and fd is not None),
                name="cove-stdin",
                daemon=True,
            )
            thread.start()
        copy_output(conn.read, tty=tty)
    return detached.is_set()


def _copy_input(source: "IO[bytes]", conn: "Connection", detached: "threading.Event",
                watch_detach: bool) -> "None":
    previous = b""
    try:
        for data in iter_input(source):
            tail = previous[-1:]
            index = (tail + data).find(DETACH_KEYS) if watch_detach else -1
            if index >= 0:
                if index > len(tail):
                    conn.write(data[:index - len(tail)])
                detached.set()
                conn.abort()
                return
            conn.write(data)
            previous = data
    except OSError:
        return
    conn.close_write()
