"""Start, watch, stop and exec into containers (the daemon's side of the shim).

State lives in files under the container's state dir, written by the shim, so
a restarted daemon can pick up containers it did not start:

- ``pid``: the init's host PID and its start time (``/proc/PID/stat`` field
  22), so a recycled PID is never mistaken for the container;
- ``shim.pid``: the supervisor's PID, watched through a pidfd;
- ``exit``: the exit code, written by the shim when the init is gone.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import CoveError, InvalidArgument
from .spec import ContainerSpec

START_TIMEOUT = 30.0


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None
    return data.rsplit(")", 1)[1].split()[19]


def start(spec: ContainerSpec) -> int:
    """Start the container; return its init's host PID once the command is exec'ed."""
    os.makedirs(spec.state_dir, exist_ok=True)
    os.makedirs(spec.data_dir, exist_ok=True)
    for name in ("exit", "pid"):
        try:
            os.unlink(os.path.join(spec.state_dir, name))
        except FileNotFoundError:
            pass
    spec_path = os.path.join(spec.state_dir, "spec.json")
    with open(spec_path, "w") as f:
        f.write(spec.to_json())
    r, w = os.pipe()
    shim_log = open(os.path.join(spec.data_dir, "shim.log"), "ab")
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": src}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "cove.runtime.shim", spec_path, str(w)],
                                pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=shim_log, stderr=shim_log,
                                start_new_session=True, close_fds=True, env=env, cwd="/")
    finally:
        os.close(w)
        shim_log.close()
    with open(os.path.join(spec.state_dir, "shim.pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    _Reaper.adopt(proc)
    with os.fdopen(r) as status:
        ready, _, _ = select.select([status], [], [], START_TIMEOUT)
        line = status.readline().strip() if ready else ""
    if line.startswith("ok "):
        return int(line.split()[1])
    if line.startswith("err "):
        message = line[4:]
        if message.startswith("exec:"):
            raise InvalidArgument(message)
        raise CoveError(message)
    raise CoveError(f"container {spec.id[:12]} did not start within {START_TIMEOUT:.0f}s")


class _Reaper:
    """Shims started by this daemon are its children; reap them so none stays a zombie."""

    procs: dict[int, subprocess.Popen[bytes]] = {}
    lock = threading.Lock()

    @classmethod
    def adopt(cls, proc: subprocess.Popen[bytes]) -> None:
        with cls.lock:
            cls.procs[proc.pid] = proc

    @classmethod
    def reap(cls, pid: int) -> None:
        with cls.lock:
            proc = cls.procs.pop(pid, None)
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def read_pid(state_dir: str) -> int | None:
    data = _read(os.path.join(state_dir, "pid"))
    return int(data.split()[0]) if data else None


def shim_pid(state_dir: str) -> int | None:
    data = _read(os.path.join(state_dir, "shim.pid"))
    return int(data) if data else None


def is_alive(state_dir: str) -> bool:
    """True while the container's init runs (same PID *and* same start time)."""
    data = _read(os.path.join(state_dir, "pid"))
    if not data:
        return False
    pid, started = data.split()
    return _start_time(int(pid)) == started


def exit_code(state_dir: str) -> int | None:
    data = _read(os.path.join(state_dir, "exit"))
    return int(data) if data else None


def kill(state_dir: str, sig: int) -> None:
    if not is_alive(state_dir):
        return
    pid = read_pid(state_dir)
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_shim(state_dir: str, timeout: float) -> bool:
    """Wait until the shim has exited (and so written ``exit``)."""
    pid = shim_pid(state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is None or _start_time(pid) is None or exit_code(state_dir) is not None:
            if pid is not None:
                _Reaper.reap(pid)
            return True
        time.sleep(0.01)
    return False


def stop(state_dir: str, timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; return the exit code."""
    kill(state_dir, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(state_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    if is_alive(state_dir):
        kill(state_dir, signal.SIGKILL)
    _wait_shim(state_dir, 10)
    code = exit_code(state_dir)
    return 137 if code is None else code


def cleanup(state_dir: str) -> None:
    """Remove the runtime files of a container that has exited; idempotent."""
    shutil.rmtree(state_dir, ignore_errors=True)


class ExitWatcher:
    """Calls ``callback(container_id, exit_code)`` when a watched container's shim exits.

    One thread polls the shims' pidfds, which works for shims this daemon did not
    start (containers found again after a restart).
    """

    def __init__(self, callback: Callable[[str, int | None], None]) -> None:
        self.callback = callback
        self._poll = select.poll()
        self._fds: dict[int, tuple[str, str, int]] = {}   # pidfd -> (container id, state dir, shim pid)
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll.register(self._wake_r, select.POLLIN)
        self._pending: list[tuple[str, str]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cove-exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, container_id: str, state_dir: str) -> None:
        pid = shim_pid(state_dir)
        with self._lock:
            try:
                if pid is None:
                    raise ProcessLookupError
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                self._pending.append((container_id, state_dir))
            else:
                self._fds[fd] = (container_id, state_dir, pid)
                self._poll.register(fd, select.POLLIN)
        os.write(self._wake_w, b"x")

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            for fd, (cid, _, _) in list(self._fds.items()):
                if cid == container_id:
                    self._poll.unregister(fd)
                    os.close(fd)
                    del self._fds[fd]

    def close(self) -> None:
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(2)

    def _run(self) -> None:
        while not self._closed:
            events = self._poll.poll(1000)
            fired: list[tuple[str, str]] = []
            with self._lock:
                for fd, _ in events:
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    entry = self._fds.pop(fd, None)
                    if entry is None:
                        continue
                    self._poll.unregister(fd)
                    os.close(fd)
                    _Reaper.reap(entry[2])
                    fired.append((entry[0], entry[1]))
                fired += self._pending
                self._pending = []
            for cid, state_dir in fired:
                _wait_shim(state_dir, 2)
                try:
                    self.callback(cid, exit_code(state_dir))
                except Exception:  # noqa: BLE001 - the watcher must survive
                    import logging

                    logging.getLogger("cove.runtime").exception("exit of %s", cid[:12])


@dataclass
class ExecHandle:
    popen: subprocess.Popen[bytes]
    master_fd: int | None = None


def exec_process(pid: int, cmd: list[str], env: list[str], workdir: str = "/", tty: bool = False,
                 stdin: bool = False) -> ExecHandle:
    """Run ``cmd`` in every namespace and the root of the container whose init is ``pid``."""
    environ = dict(e.partition("=")[::2] for e in env)
    environ.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    args = ["nsenter", f"--target={pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--root",
            f"--wd={workdir or '/'}", "--", *cmd]
    if tty:
        import pty

        master, slave = pty.openpty()
        environ.setdefault("TERM", "xterm")

        def controlling_tty() -> None:
            import fcntl
            import termios

            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=environ,
                                 preexec_fn=controlling_tty, close_fds=True)
        finally:
            os.close(slave)
        return ExecHandle(p, master)
    p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=environ, close_fds=True)
    return ExecHandle(p)


def follow_logs(data_dir: str, tty: bool, follow: bool, is_running: Callable[[], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield (stream, bytes) from the container's logs; with ``follow``, until it exits."""
    names = [("stdout", "tty.log")] if tty else [("stdout", "stdout.log"), ("stderr", "stderr.log")]
    files: dict[str, object] = {}
    try:
        while True:
            got = False
            for stream, name in names:
                f = files.get(stream)
                if f is None:
                    try:
                        f = files[stream] = open(os.path.join(data_dir, name), "rb")
                    except FileNotFoundError:
                        continue
                data = f.read(65536)  # type: ignore[attr-defined]
                if data:
                    got = True
                    yield stream, data
            if got:
                continue
            if not follow:
                return
            if not is_running():
                # drain what the process wrote just before exiting
                for stream, _ in names:
                    f = files.get(stream)
                    while f is not None:
                        data = f.read(65536)  # type: ignore[attr-defined]
                        if not data:
                            break
                        yield stream, data
                return
            time.sleep(0.05)
    finally:
        for f in files.values():
            f.close()  # type: ignore[attr-defined]
