"""A container's state dir as a value: who runs (init, shim), how it ended, and the signals to it.

The shim (:mod:`cove.runtime.shim`) writes, in the state dir:

- ``shim.pid``: the supervisor's PID and start time (``/proc/PID/stat`` field 22);
- ``pid``: the init's host PID and start time, so a recycled PID is never
  mistaken for the container;
- ``exit``: the exit code (code, or 128+signal), written before the shim ends.

:class:`StateDir` reads them: every process it names is checked against its
start time, and signals go through a pidfd opened *before* that check, so they
can only reach the process that was recorded.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable
from dataclasses import dataclass

SHIM_EXIT_TIMEOUT = 10.0


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    data = _read(f"/proc/{pid}/stat")
    return data.rsplit(")", 1)[1].split() if data else None


def _running(ident: tuple[int, str] | None) -> bool:
    """The recorded process still runs: same PID, same start time, not a zombie."""
    if ident is None:
        return False
    fields = _stat(ident[0])
    return fields is not None and fields[19] == ident[1] and fields[0] not in ("Z", "X")


def _wait_fd(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` is readable (a pidfd: its process has ended); False after ``timeout`` seconds."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(0.0, timeout) * 1000))


@dataclass(frozen=True)
class StateDir:
    """The state dir at ``path``; ``"pid"`` names the container's init, ``"shim.pid"`` its shim."""

    path: str

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def identity(self, name: str = "pid") -> tuple[int, str] | None:
        """(PID, start time) recorded in ``name`` (``pid`` or ``shim.pid``)."""
        data = _read(self.file(name))
        try:
            pid, started = (data or "").split()
            return int(pid), started
        except ValueError:
            return None

    def pid(self) -> int | None:
        """Host PID of the container's init (PID 1 in its namespace), as recorded at start."""
        ident = self.identity("pid")
        return ident[0] if ident else None

    def shim_pid(self) -> int | None:
        ident = self.identity("shim.pid")
        return ident[0] if ident else None

    def is_alive(self, name: str = "pid") -> bool:
        """True while the recorded process runs (same PID *and* same start time)."""
        return _running(self.identity(name))

    def exit_code(self) -> int | None:
        data = _read(self.file("exit"))
        try:
            return int(data) if data else None
        except ValueError:
            return None

    def pidfd(self, name: str = "pid") -> int | None:
        """A pidfd for the process recorded in ``name``, or None when it is gone."""
        ident = self.identity(name)
        if ident is None:
            return None
        try:
            fd = os.pidfd_open(ident[0])
        except OSError:
            return None
        if _running(ident):                      # checked after the open: the pidfd is that process
            return fd
        os.close(fd)
        return None

    def wait_gone(self, name: str, timeout: float) -> bool:
        fd = self.pidfd(name)
        if fd is None:
            return True
        try:
            return _wait_fd(fd, timeout)
        finally:
            os.close(fd)

    def signal(self, sig: int, name: str = "pid") -> bool:
        """Send ``sig`` to the recorded process; False if it is not running."""
        fd = self.pidfd(name)
        if fd is None:
            return False
        try:
            signal.pidfd_send_signal(fd, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(fd)

    def kill(self, sig: int) -> bool:
        """Send ``sig`` to the container's init; False if it is not running."""
        return self.signal(sig, "pid")

    def stop(self, timeout: float = 10, on_kill: Callable[[], None] | None = None) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; return the exit code.

        PID 1 of a PID namespace ignores SIGTERM unless it handles it (``sleep``
        does not): then, as with Docker, the SIGKILL ends it and the code is 137.
        """
        fd = self.pidfd("pid")
        if fd is not None:
            try:
                signal.pidfd_send_signal(fd, signal.SIGTERM)
                if not _wait_fd(fd, timeout):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    if on_kill is not None:
                        on_kill()
                    _wait_fd(fd, SHIM_EXIT_TIMEOUT)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)
        self.wait_gone("shim.pid", SHIM_EXIT_TIMEOUT)
        code = self.exit_code()
        return 137 if code is None else code


# the runtime's verbs by path, as the engine calls them (``runtime.kill(state_dir, sig)``)
def read_pid(state_dir: str) -> int | None:
    """Host PID of the container's init (PID 1 in its namespace), as recorded at start."""
    return StateDir(state_dir).pid()


def shim_pid(state_dir: str) -> int | None:
    return StateDir(state_dir).shim_pid()


def is_alive(state_dir: str) -> bool:
    """True while the container's init runs (same PID *and* same start time)."""
    return StateDir(state_dir).is_alive()


def exit_code(state_dir: str) -> int | None:
    return StateDir(state_dir).exit_code()


def wait_gone(state_dir: str, timeout: float) -> bool:
    """Wait (on a pidfd, no polling) until the container's init has ended; False after ``timeout`` s."""
    return StateDir(state_dir).wait_gone("pid", timeout)


def kill(state_dir: str, sig: int) -> bool:
    """Send ``sig`` to the container's init; False if it is not running."""
    return StateDir(state_dir).kill(sig)


def stop(state_dir: str, timeout: float = 10, on_kill: Callable[[], None] | None = None) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; return the exit code (137 when killed)."""
    return StateDir(state_dir).stop(timeout, on_kill)
