"""Byte pumps between a hijacked API socket and a container's process (attach, exec).

Moved here from the HTTP routes: the daemon only hands over the socket.  The
framing is Docker's multiplexed stream (:func:`frame`) when there is no terminal.
"""

from __future__ import annotations

import os
import select
import socket
from typing import Any

#: in a container's state dir, with StdinOnce and no terminal: a write to this FIFO tells the shim
#: to close its own writer of the ``stdin`` FIFO (the first attached client's stdin has ended)
STDIN_CLOSE = "stdin-close"


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream frame: [stream, 0, 0, 0, len32be] + data."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


def close_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump_to_fifo(sock: socket.socket, leftover: bytes, fifo: str, once: bool = False) -> None:
    """Copy the client's stdin to the container's ``stdin`` FIFO. ``once`` (StdinOnce, no
    terminal): when the client's stdin ends, the container's does too, as Docker closes it."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if leftover:
            os.write(fd, leftover)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            os.write(fd, data)
        if once:
            close_stdin(os.path.dirname(fifo))
    except OSError:
        pass
    finally:
        os.close(fd)


def close_stdin(state_dir: str) -> None:
    """Ask the shim to close its writer of the stdin FIFO (a no-op when there is no such shim)."""
    try:
        ctl = os.open(os.path.join(state_dir, STDIN_CLOSE), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:                  # no shim reads it: the container has ended
        return
    try:
        os.write(ctl, b"x")
    finally:
        os.close(ctl)


def pump_exec(handle: Any, sock: socket.socket, leftover: bytes, tty: bool, stdin: bool) -> None:
    """Copy between the hijacked socket and the exec'd process until it exits."""
    p = handle.popen
    master = getattr(handle, "master_fd", None)
    sinks: dict[int, int] = {}
    if tty and master is not None:
        sinks[master] = 0
    else:
        if p.stdout is not None:
            sinks[p.stdout.fileno()] = 1
        if p.stderr is not None:
            sinks[p.stderr.fileno()] = 2
    stdin_fd = master if tty else (p.stdin.fileno() if p.stdin is not None else None)
    if stdin and stdin_fd is not None and leftover:
        os.write(stdin_fd, leftover)
    watch_sock = stdin and stdin_fd is not None
    # poll(), not select(): a daemon with hundreds of containers has descriptors past 1024
    while sinks:
        poller = select.poll()
        for fd in sinks:
            poller.register(fd, select.POLLIN)
        if watch_sock:
            poller.register(sock.fileno(), select.POLLIN)
        ready = [fd for fd, _ in poller.poll(1000)]
        for fd in ready:
            if fd == sock.fileno():
                data = sock.recv(65536)
                if not data:
                    watch_sock = False
                    if not tty and p.stdin is not None:
                        p.stdin.close()
                    continue
                assert stdin_fd is not None
                os.write(stdin_fd, data)
                continue
            if fd not in sinks:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                del sinks[fd]
                continue
            stream = sinks[fd]
            sock.sendall(data if stream == 0 else frame(stream, data))
