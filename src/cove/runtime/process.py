"""Start, watch, stop and exec into containers: the daemon's side of the shim.

A container is supervised by its shim (:mod:`cove.runtime.shim`), a process of
its own that no daemon has to reap, so containers survive daemon restarts.
Everything the daemon needs is in files the shim writes to the state dir, so a
restarted daemon finds its containers again:

- ``shim.pid``: the supervisor's PID and start time (``/proc/PID/stat`` field
  22), watched through a pidfd by :class:`ExitWatcher`;
- ``pid``: the init's host PID and start time, so a recycled PID is never
  mistaken for the container;
- ``exit``: the exit code (code, or 128+signal), written before the shim ends;
- ``stdin``: with ``open_stdin``, the FIFO the daemon writes the input to;
- ``config.json``, ``spec.json`` and ``runc/`` (runc's state root): what runc
  runs and knows; ``exec`` hands runc the same profile (:mod:`cove.runtime.profile`).

Logs are in the data dir (:mod:`cove.runtime.logs`): ``stdout.log``/``stderr.log``,
or ``tty.log``, rotated.  Both dirs are 0700 root.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import Conflict, CoveError, InvalidArgument
from ..kernel import syscalls as sc
from . import profile, shim
from .logs import follow_logs  # noqa: F401 - the engine reads logs through the runtime
from .rootfs import mount_points
from .spec import DEFAULT_PATH, ContainerSpec

log = logging.getLogger("cove.runtime")

START_TIMEOUT = 30.0
SHIM_EXIT_TIMEOUT = 10.0
STATE_FILES = ("exit", "exit.tmp", "pid", "pid.tmp", "shim.pid", "shim.pid.tmp", "stdin", "init.pid", "runc.log",
               "config.json", "console.sock")
SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- process identity ---------------------------------------------------------------------
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


def _identity(state_dir: str, name: str) -> tuple[int, str] | None:
    """(PID, start time) recorded in ``name`` (``pid`` or ``shim.pid``)."""
    data = _read(os.path.join(state_dir, name))
    try:
        pid, started = (data or "").split()
        return int(pid), started
    except ValueError:
        return None


def _running(ident: tuple[int, str] | None) -> bool:
    """The recorded process still runs: same PID, same start time, not a zombie."""
    if ident is None:
        return False
    fields = _stat(ident[0])
    return fields is not None and fields[19] == ident[1] and fields[0] not in ("Z", "X")


def _pidfd(state_dir: str, name: str) -> int | None:
    """A pidfd for the process recorded in ``name``, or None when it is gone."""
    ident = _identity(state_dir, name)
    if ident is None:
        return None
    try:
        fd = os.pidfd_open(ident[0])
    except OSError:
        return None
    if _running(ident):                          # checked after the open: the pidfd is that process
        return fd
    os.close(fd)
    return None


def _wait_fd(fd: int, timeout: float) -> bool:
    """Wait until a pidfd says its process has ended."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(0.0, timeout) * 1000))


def _wait_gone(state_dir: str, name: str, timeout: float) -> bool:
    fd = _pidfd(state_dir, name)
    if fd is None:
        return True
    try:
        return _wait_fd(fd, timeout)
    finally:
        os.close(fd)


def read_pid(state_dir: str) -> int | None:
    """Host PID of the container's init (PID 1 in its namespace), as recorded at start."""
    ident = _identity(state_dir, "pid")
    return ident[0] if ident else None


def shim_pid(state_dir: str) -> int | None:
    ident = _identity(state_dir, "shim.pid")
    return ident[0] if ident else None


def is_alive(state_dir: str) -> bool:
    """True while the container's init runs (same PID *and* same start time)."""
    return _running(_identity(state_dir, "pid"))


def exit_code(state_dir: str) -> int | None:
    data = _read(os.path.join(state_dir, "exit"))
    try:
        return int(data) if data else None
    except ValueError:
        return None


# -- start ----------------------------------------------------------------------------------
def _read_status(fd: int, timeout: float) -> str:
    """The shim's one-line report, or "" if it ended (or timed out) without one."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        poller = select.poll()      # not select(): the daemon's descriptors go past 1024
        poller.register(fd, select.POLLIN)
        if left <= 0 or not poller.poll(left * 1000):
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\n", 1)[0].strip()


def _tail(path: str, lines: int = 3) -> str:
    text = _read(path) or ""
    return " | ".join(text.splitlines()[-lines:]) or "no output"


def start(spec: ContainerSpec) -> int:
    """Start the container; return its init's host PID once the command is exec'ed.

    A command that cannot be exec'ed raises InvalidArgument in Docker's words
    (``exec: "x": executable file not found in $PATH``); the shim has then
    recorded exit 127 and is gone, and nothing of the container is left mounted.
    """
    if not spec.cmd:
        raise InvalidArgument("No command specified")
    if is_alive(spec.state_dir):
        raise Conflict(f"container {spec.id[:12]} is already running")
    for path in (spec.state_dir, spec.data_dir):
        # 0700 root: a setuid file the container left in its layer, its spec (with the
        # environment's secrets) and its logs are no one else's (Docker's CVE-2021-41091)
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    _runc_delete(spec.state_dir, spec.id)          # what a killed shim left behind
    for name in STATE_FILES:
        try:
            os.unlink(os.path.join(spec.state_dir, name))
        except FileNotFoundError:
            pass
    spec_path = os.path.join(spec.state_dir, "spec.json")
    with os.fdopen(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(spec.to_json())
    shim_log = os.path.join(spec.data_dir, "shim.log")
    r, w = os.pipe()
    try:
        with open(shim_log, "ab") as logf:
            if not ZYGOTE.spawn(spec_path, w, logf.fileno()):
                _spawn_interpreter(spec_path, w, logf)
        os.close(w)
        w = -1
        line = _read_status(r, START_TIMEOUT)
    except BaseException:
        for name in ("pid", "shim.pid"):         # whatever was started must not outlive a failed start
            _signal(spec.state_dir, name, signal.SIGKILL)
        raise
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if line.startswith("ok "):
        return int(line.split()[1])
    if line.startswith("err "):
        _wait_gone(spec.state_dir, "shim.pid", SHIM_EXIT_TIMEOUT)
        message = line[4:]
        if message.startswith("exec:"):
            raise InvalidArgument(message)
        raise CoveError(f"cannot start container {spec.id[:12]}: {message}")
    for name in ("pid", "shim.pid"):             # no word: whatever runs is killed
        _signal(spec.state_dir, name, signal.SIGKILL)
    _wait_gone(spec.state_dir, "shim.pid", SHIM_EXIT_TIMEOUT)
    if line:
        raise CoveError(f"cannot start container {spec.id[:12]}: the shim said {line!r}")
    raise CoveError(f"cannot start container {spec.id[:12]}: the shim gave no answer ({_tail(shim_log)})")


def _spawn_interpreter(spec_path: str, w: int, logf: BinaryIO) -> None:
    """The shim from a new interpreter (when the zygote cannot serve)."""
    env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "PYTHONPATH": SRC_DIR}
    first = subprocess.Popen([sys.executable, "-m", "cove.runtime.shim", spec_path, str(w)],
                             pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True, env=env, cwd="/")
    try:
        first.wait(START_TIMEOUT)            # it forks the shim and exits at once
    except subprocess.TimeoutExpired:
        first.kill()
        first.wait()


class Zygote:
    """A warm ``cove.runtime.shim --zygote`` process that forks shims on request.

    Started on first use and again after it dies; any failure to use it makes
    :func:`start` fall back to a new interpreter, so it can only make starts faster.
    One request at a time (a lock): each is a send and a two-byte answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self.disabled = os.environ.get("COVE_NO_ZYGOTE") == "1"

    def _ensure(self) -> socket.socket:
        if self._proc is not None and self._proc.poll() is None and self._sock is not None:
            return self._sock
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "PYTHONPATH": SRC_DIR}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "cove.runtime.shim", "--zygote", str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                          start_new_session=True, env=env, cwd="/")
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        self._sock = ours
        return ours

    def spawn(self, spec_path: str, status_fd: int, log_fd: int) -> bool:
        """Have the zygote start the shim; False if it could not (the caller falls back)."""
        if self.disabled:
            return False
        with self._lock:
            try:
                sock = self._ensure()
                socket.send_fds(sock, [spec_path.encode()], [status_fd, log_fd])
            except OSError as exc:               # nothing was started: fall back
                log.warning("shim zygote: %s; starting the shim from a new interpreter", exc)
                self.close()
                return False
            try:
                answer = sock.recv(64)
            except OSError as exc:
                answer = b""
                log.warning("shim zygote: no answer (%s)", exc)
            if answer != b"ok":
                # The request went out, so a shim may run: never start a second one. The
                # status pipe tells the caller what happened (EOF if nothing started).
                self.close()
            return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(2)             # EOF on its socket ends it
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


ZYGOTE = Zygote()


# -- signals, stop ------------------------------------------------------------------------
def _signal(state_dir: str, name: str, sig: int) -> bool:
    fd = _pidfd(state_dir, name)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def kill(state_dir: str, sig: int) -> bool:
    """Send ``sig`` to the container's init; False if it is not running."""
    return _signal(state_dir, "pid", sig)


def stop(state_dir: str, timeout: float = 10, on_kill: Callable[[], None] | None = None) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; return the exit code.

    PID 1 of a PID namespace ignores SIGTERM unless it handles it (``sleep``
    does not): then, as with Docker, the SIGKILL ends it and the code is 137.
    """
    fd = _pidfd(state_dir, "pid")
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
    _wait_gone(state_dir, "shim.pid", SHIM_EXIT_TIMEOUT)
    code = exit_code(state_dir)
    return 137 if code is None else code


# -- cleanup --------------------------------------------------------------------------------
def _runc_delete(state_dir: str, cid: str | None = None) -> None:
    """``runc delete --force`` of a container runc still knows (its shim was killed): its cgroup goes too."""
    root = os.path.join(state_dir, "runc")
    ids = [cid] if cid else (os.listdir(root) if os.path.isdir(root) else [])
    for name in ids:
        if os.path.isdir(os.path.join(root, name)):
            subprocess.run([*shim.runc(state_dir), "delete", "--force", name], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def _mounts_under(path: str) -> list[str]:
    path = os.path.realpath(path)
    points = {p for p, _ in mount_points() if p == path or p.startswith(path + "/")}
    return sorted(points, key=len, reverse=True)


def _remove_tree(path: str) -> None:
    """rmtree that never descends into a mount (a bind of / would take the host with it)."""
    for point in _mounts_under(path):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError as exc:
            log.warning("cannot unmount %s: %s", point, exc)
    left = _mounts_under(path)
    if left:
        raise CoveError(f"cannot remove {path}: still mounted at {left[0]}")
    shutil.rmtree(path, ignore_errors=True)


def cleanup(target: ContainerSpec | str, data_dir: str | None = None) -> None:
    """Remove a container's runtime files once it has exited; idempotent.

    ``cleanup(state_dir)`` removes the state dir (pid, exit, FIFO, mount point);
    ``cleanup(state_dir, data_dir)`` or ``cleanup(spec)``, when the container is
    removed, also its data dir (overlay upper/work, logs, /etc files).
    """
    if isinstance(target, ContainerSpec):
        state_dir, data_dir = target.state_dir, target.data_dir
    else:
        state_dir = target
    if is_alive(state_dir):
        log.warning("cleaning up %s while its init still runs", state_dir)
    _runc_delete(state_dir)
    for path in (state_dir, data_dir):
        if path:
            _remove_tree(path)


# -- exit watcher ---------------------------------------------------------------------------
class ExitWatcher:
    """Calls ``callback(container_id, exit_code)`` when a watched container's shim exits.

    One thread waits on the shims' pidfds with epoll; a pidfd works for any
    process, so a restarted daemon watches containers an earlier one started.
    The shim writes ``exit`` before it ends, so the code is known by then
    (None only if the shim itself was killed).  Watching a container whose
    shim is already gone reports it at once.
    """

    def __init__(self, callback: Callable[[str, int | None], None]) -> None:
        self.callback = callback
        self._ep = select.epoll()
        self._lock = threading.Lock()
        self._fds: dict[int, tuple[str, str]] = {}   # pidfd -> (container id, state dir)
        self._ids: dict[str, int] = {}               # container id -> pidfd
        self._ready: list[tuple[str, str]] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._ep.register(self._wake_r, select.EPOLLIN)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cove-exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, container_id: str, state_dir: str) -> None:
        self.unwatch(container_id)
        fd = _pidfd(state_dir, "shim.pid")
        with self._lock:
            if fd is None:
                self._ready.append((container_id, state_dir))
            else:
                self._fds[fd] = (container_id, state_dir)
                self._ids[container_id] = fd
                self._ep.register(fd, select.EPOLLIN)
        self._wake()

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            fd = self._ids.pop(container_id, None)
            if fd is not None:
                del self._fds[fd]
                self._ep.unregister(fd)
                os.close(fd)
            self._ready = [r for r in self._ready if r[0] != container_id]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        self._thread.join(5)
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            self._ids.clear()
            self._ep.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _run(self) -> None:
        while not self._closed:
            try:
                events = self._ep.poll(1.0)
            except (InterruptedError, ValueError, OSError):
                continue
            fired: list[tuple[str, str]] = []
            with self._lock:
                for fd, _ in events:
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except OSError:
                            pass
                        continue
                    entry = self._fds.get(fd)
                    # the number may have been closed and reused since poll() returned
                    if entry is None or not _wait_fd(fd, 0):
                        continue
                    del self._fds[fd]
                    del self._ids[entry[0]]
                    self._ep.unregister(fd)
                    os.close(fd)
                    fired.append(entry)
                fired += self._ready
                self._ready = []
            for cid, state_dir in fired:
                if not self._closed:
                    self._report(cid, state_dir)

    def _report(self, cid: str, state_dir: str) -> None:
        code = exit_code(state_dir)
        if code is None and kill(state_dir, signal.SIGKILL):
            # the shim was killed: an unsupervised init would leak, end it
            log.warning("container %s lost its shim; killed", cid[:12])
        try:
            self.callback(cid, code)
        except Exception:  # noqa: BLE001 - the watcher must survive its callbacks
            log.exception("exit callback for %s", cid[:12])


# -- terminal size --------------------------------------------------------------------------
def set_winsize(fd: int, height: int, width: int) -> None:
    """TIOCSWINSZ on either end of a pty; the kernel sends SIGWINCH to its foreground group."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def resize_container_tty(state_dir: str, height: int, width: int) -> bool:
    """Resize the terminal of a container started with a TTY (its init's stdin); False if it has none."""
    pid = read_pid(state_dir)
    if pid is None or not is_alive(state_dir):
        return False
    try:   # O_NOCTTY: the daemon must never acquire the container's terminal as its own
        fd = os.open(f"/proc/{pid}/fd/0", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not os.isatty(fd):
            return False
        set_winsize(fd, height, width)
        return True
    finally:
        os.close(fd)


# -- exec -----------------------------------------------------------------------------------
# runc exec exits 255 when the command cannot start; Docker's status is 127 (not found) or
# 126 (not executable), which runc's log tells apart.  The log goes with the exec.
EXEC_STATUS = """log=$1; shift; "$@"; rc=$?
if [ "$rc" -eq 255 ] && [ -s "$log" ]; then
  case $(cat "$log") in
    *'exec: '*'not found'*|*'exec: '*'no such file'*) rc=127 ;;
    *'exec: '*'permission denied'*) rc=126 ;;
  esac
fi
rm -f "$log"; exit "$rc"
"""


def _sh() -> str:
    return shutil.which("sh") or "/bin/sh"


def _state_dir_of(pid: int) -> str:
    """The state dir of the container whose init is ``pid``: its parent is the shim, which works there."""
    fields = _stat(pid)
    if fields is not None:
        try:
            path = os.readlink(f"/proc/{fields[1]}/cwd")
        except OSError:
            path = ""
        ident = _identity(path, "pid") if path else None
        if ident is not None and ident[0] == pid:
            return path
    raise CoveError(f"no running container has pid {pid}")


@dataclass
class ExecHandle:
    popen: subprocess.Popen[bytes]
    master_fd: int | None = None     # with a terminal: the pty's master (read output, write input)


def exec_process(pid: int, cmd: list[str], env: list[str], workdir: str = "/", tty: bool = False,
                 stdin: bool = False, state_dir: str | None = None) -> ExecHandle:
    """Run ``cmd`` in the container whose init is ``pid`` (state in ``state_dir``), through ``runc exec``.

    The process gets the container's profile: its capabilities, ``no-new-privileges``,
    its seccomp filter, namespaces and cgroup (runc applies them as for the init).
    Its environment is exactly ``env``; with a terminal, runc makes one in the
    container and copies it to the pty whose master is returned.  Without one,
    stdout/stderr are pipes (stdin one too if ``stdin``).
    """
    if state_dir is None:
        state_dir = _state_dir_of(pid)
    with open(os.path.join(state_dir, "spec.json")) as f:
        spec = ContainerSpec.from_json(f.read())
    environ = {"PATH": DEFAULT_PATH}
    for item in env:
        k, _, v = item.partition("=")
        environ[k] = v
    if tty:
        environ.setdefault("TERM", "xterm")
    caps = profile.capabilities(spec.cap_add, spec.cap_drop, spec.privileged)
    proc = profile.process(cmd, environ, workdir or "/", tty, caps, spec.no_new_privileges)
    memfd = os.memfd_create("cove-exec-process", os.MFD_CLOEXEC)
    try:
        os.write(memfd, json.dumps(proc).encode())
        log_name = f"exec-{os.urandom(6).hex()}.log"
        args = [_sh(), "-c", EXEC_STATUS, "sh", os.path.join(state_dir, log_name),
                *shim.runc(state_dir, log_name), "exec", "--process", f"/proc/self/fd/{memfd}", spec.id]
        if tty:
            master, slave = os.openpty()
            setsid = shutil.which("setsid") or "/usr/bin/setsid"
            try:   # setsid --ctty: a session of its own, with the pty as controlling terminal
                p = subprocess.Popen([setsid, "--ctty", "--wait", *args], stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, pass_fds=(memfd,))
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return ExecHandle(p, master)
        p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, close_fds=True, pass_fds=(memfd,))
        return ExecHandle(p)
    finally:
        os.close(memfd)
