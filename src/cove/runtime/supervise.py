"""Start, clean up and watch containers: the daemon's side of the shim.

A container is supervised by its shim (:mod:`cove.runtime.shim`), a process of
its own that no daemon has to reap, so containers survive daemon restarts.
:func:`start` has the shim forked (by a warm :class:`Zygote`, else from a new
interpreter) and waits for its one-line report; :class:`ExitWatcher` learns
through pidfds when shims end, also those an earlier daemon started; what a
container's state dir says is read through :class:`~cove.runtime.statedir.StateDir`.
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

from .. import crashpoint
from ..errors import Conflict, CoveError, InvalidArgument
from ..kernel import netns
from ..kernel import syscalls as sc
from . import shim
from .proc import descendants
from .rootfs import mount_points
from .spec import DEFAULT_PATH, ContainerSpec
from .statedir import SHIM_EXIT_TIMEOUT, StateDir, _wait_fd, exit_code, is_alive, kill

log = logging.getLogger("cove.runtime")

START_TIMEOUT = 30.0
STATE_FILES = ("exit", "exit.tmp", "pid", "pid.tmp", "shim.pid", "shim.pid.tmp", "stdin", "init.pid", "runc.log",
               "config.json", "console.sock")
SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def start(spec: ContainerSpec) -> int:
    """Start the container; return its init's host PID once the command is exec'ed.

    A command that cannot be exec'ed raises InvalidArgument in Docker's words
    (``exec: "x": executable file not found in $PATH``); the shim has then
    recorded exit 127 and is gone, and nothing of the container is left mounted.
    (:func:`launch` then :meth:`Launch.release`.)
    """
    return launch(spec).release()


def launch(spec: ContainerSpec) -> Launch:
    """Have the container's shim forked and prepare it (its mount namespace, the root, runc's
    ``config.json``) while the caller goes on; ``runc run`` waits for :meth:`Launch.release`.

    What the engine does meanwhile (the container's endpoints in its network namespace, its
    ``/etc`` files, its resolver) runs beside the shim's preparation instead of before it: on
    this 2-core machine ~3–4 ms less per start (bench/results/2026-12-07-launch.md).  The
    shim holds a pipe (the gate) whose other end only the daemon has: one byte lets it run
    runc; end of file (:meth:`Launch.cancel`, or the daemon killed) makes it go without
    starting anything.  The files the spec names (``/etc/hosts`` ...) need only exist by the
    release: runc opens them then.
    """
    if not spec.cmd:
        raise InvalidArgument("No command specified")
    if is_alive(spec.state_dir):
        raise Conflict(f"container {spec.id[:12]} is already running")
    # 0700 root: a setuid file the container left in its layer, its spec (with the
    # environment's secrets) and its logs are no one else's (Docker's CVE-2021-41091).
    # With --userns-remap, runc's init (the remapped root) must pass through the state dir to
    # its root (mounted at STATE_DIR/rootfs): that one is 0710 root:REMAPPED-GID, as dockerd's
    # per-remap data root; runc opens bind sources (the /etc files, volumes) before it enters
    # the user namespace, so the data dir (the writable layer, logs) stays 0700
    gid = spec.gid_map[0][1] if spec.uid_map and spec.gid_map else 0
    for path, g in ((spec.state_dir, gid), (spec.data_dir, 0)):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chown(path, 0, g)
        os.chmod(path, 0o710 if g else 0o700)
    _runc_delete(spec.state_dir, spec.id)          # what a killed shim left behind
    for name in STATE_FILES:
        try:
            os.unlink(os.path.join(spec.state_dir, name))
        except FileNotFoundError:
            pass
    spec_path = os.path.join(spec.state_dir, "spec.json")
    with os.fdopen(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(spec.to_json())
    # the shim's stdout/stderr: a memfd, kept in the data dir's shim.log only if it says something
    said = shim.ShimLog(os.memfd_create("cove-shim-log", os.MFD_CLOEXEC))
    try:
        return Launch(spec, spec_path, said)
    except BaseException:
        os.close(said.fd)
        raise


class Launch:
    """A shim forked for a container and preparing it; :meth:`release` or :meth:`cancel` it, once."""

    def __init__(self, spec: ContainerSpec, spec_path: str, said: shim.ShimLog) -> None:
        self.spec, self.said = spec, said
        namespaces = _open_namespaces(spec)
        r, w = os.pipe()
        gate_r, self._gate = os.pipe()
        self._status = r
        try:
            fds = [*namespaces, ("gate", gate_r)]
            if not ZYGOTE.spawn(spec_path, w, said.fd, fds, spec.hidden):
                _spawn_interpreter(spec_path, w, said.fd, fds)
            crashpoint.reached(f"shim of {spec.id[:12]} spawned")
        except BaseException:
            os.close(r)
            os.close(self._gate)
            for name in ("pid", "shim.pid"):     # whatever was started must not outlive a failed start
                StateDir(spec.state_dir).signal(signal.SIGKILL, name)
            raise
        finally:
            os.close(w)
            os.close(gate_r)
            for _, fd in namespaces:
                os.close(fd)

    def _close(self) -> None:
        for fd in (self._status, self._gate, self.said.fd):
            if fd >= 0:
                os.close(fd)
        self._status = self._gate = self.said.fd = -1

    def cancel(self) -> None:
        """The start is given up before ``runc run``: the shim goes (nothing of the container was made)."""
        if self._status < 0:
            return
        spec = self.spec
        try:
            os.close(self._gate)
            self._gate = -1
            _read_status(self._status, SHIM_EXIT_TIMEOUT)      # its "err" once it has read the end of file
            if not StateDir(spec.state_dir).wait_gone("shim.pid", SHIM_EXIT_TIMEOUT):
                StateDir(spec.state_dir).signal(signal.SIGKILL, "shim.pid")
            self.said.keep(spec.data_dir)
        finally:
            self._close()

    def release(self) -> int:
        """Let the shim run ``runc run``; the init's host PID once its command is exec'ed (see :func:`start`)."""
        spec = self.spec
        try:
            gid = spec.gid_map[0][1] if spec.uid_map and spec.gid_map else 0
            if gid:                              # its /etc files are the remapped root's, as dockerd's
                for source in spec.etc_files.values():
                    if os.path.dirname(source) == spec.data_dir:
                        os.chown(source, spec.uid_map[0][1], gid)
            try:
                os.write(self._gate, b"g")
            except BrokenPipeError:              # the shim is gone: its status pipe says why
                pass
            line = _read_status(self._status, START_TIMEOUT)
        except BaseException:
            for name in ("pid", "shim.pid"):     # whatever was started must not outlive a failed start
                StateDir(spec.state_dir).signal(signal.SIGKILL, name)
            self._close()
            raise
        try:
            return self._outcome(line)
        finally:
            self._close()

    def _outcome(self, line: str) -> int:
        spec, said = self.spec, self.said
        if line.startswith("ok "):
            return int(line.split()[1])
        if line.startswith("err "):
            StateDir(spec.state_dir).wait_gone("shim.pid", SHIM_EXIT_TIMEOUT)
            message = line[4:]
            if message.startswith("exec:"):
                raise InvalidArgument(message)
            raise CoveError(f"cannot start container {spec.id[:12]}: {message}")
        for name in ("pid", "shim.pid"):         # no word: whatever runs is killed
            StateDir(spec.state_dir).signal(signal.SIGKILL, name)
        StateDir(spec.state_dir).wait_gone("shim.pid", SHIM_EXIT_TIMEOUT)
        if line:
            raise CoveError(f"cannot start container {spec.id[:12]}: the shim said {line!r}")
        text = said.said().decode(errors="replace")
        said.keep(spec.data_dir)                 # a shim that never answered never kept it
        raise CoveError(f"cannot start container {spec.id[:12]}: the shim gave no answer ({_tail(text)})")


def _open_namespaces(spec: ContainerSpec) -> list[tuple[str, int]]:
    """("net"|"user", descriptor) of the bound namespaces the container joins, opened here in the
    daemon's mount namespace: the shim's has no binds (:mod:`cove.kernel.netns`), so the shim
    hands them to runc as ``/proc/SHIM/fd/N`` (which needs no daemon to exist any more)."""
    opened: list[tuple[str, int]] = []
    try:
        for kind, path in (("net", spec.netns), ("user", spec.userns)):
            if path:
                opened.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as exc:
        for _, fd in opened:
            os.close(fd)
        raise CoveError(f"cannot start container {spec.id[:12]}: namespace {exc.filename}: {exc.strerror}") from exc
    return opened


def _ns_args(namespaces: list[tuple[str, int]]) -> list[str]:
    return [f"{kind}={fd}" for kind, fd in namespaces]


def _spawn_interpreter(spec_path: str, w: int, logf: int, namespaces: list[tuple[str, int]]) -> None:
    """The shim from a new interpreter (when the zygote cannot serve)."""
    env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "PYTHONPATH": SRC_DIR}
    first = subprocess.Popen([sys.executable, "-m", "cove.runtime.shim", spec_path, str(w), *_ns_args(namespaces)],
                             pass_fds=(w, *(fd for _, fd in namespaces)), stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=logf,
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

    It runs in a mount namespace of its own, made once, without the directories of
    namespace binds (``hidden``: :func:`cove.kernel.netns.hide`), so a shim's
    ``unshare(CLONE_NEWNS)`` and runc's copy no bind of another container.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._hidden: tuple[str, ...] = ()
        self.disabled = os.environ.get("COVE_NO_ZYGOTE") == "1"

    def _ensure(self, hidden: tuple[str, ...]) -> socket.socket:
        if (self._proc is not None and self._proc.poll() is None and self._sock is not None
                and hidden == self._hidden):
            return self._sock
        self.close()
        try:
            for d in hidden:                 # private before the zygote's copy: no later bind reaches it
                netns.keep_private(d)
        except CoveError as exc:
            log.warning("shim zygote: %s; it keeps the daemon's mount namespace", exc)
        self._hidden = hidden
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "PYTHONPATH": SRC_DIR,
               shim.ZYGOTE_HIDDEN_ENV: json.dumps(list(hidden))}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "cove.runtime.shim", "--zygote", str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                          start_new_session=True, env=env, cwd="/")
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        self._sock = ours
        return ours

    def spawn(self, spec_path: str, status_fd: int, log_fd: int, namespaces: list[tuple[str, int]] | None = None,
              hidden: list[str] | None = None) -> bool:
        """Have the zygote start the shim; False if it could not (the caller falls back)."""
        if self.disabled:
            return False
        namespaces = namespaces or []
        request = "\0".join([spec_path, *(kind for kind, _ in namespaces)]).encode()
        with self._lock:
            try:
                sock = self._ensure(tuple(hidden or ()))
                socket.send_fds(sock, [request], [status_fd, log_fd, *(fd for _, fd in namespaces)])
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


# -- cleanup --------------------------------------------------------------------------------
def _runc_delete(state_dir: str, cid: str | None = None) -> None:
    """``runc delete --force`` of a container runc still knows (its shim was killed): its cgroup goes too."""
    root = os.path.join(state_dir, "runc")
    ids = [cid] if cid else (os.listdir(root) if os.path.isdir(root) else [])
    for name in ids:
        if os.path.isdir(os.path.join(root, name)):
            subprocess.run([*shim.runc(state_dir), "delete", "--force", name], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def abandon(state_dir: str) -> bool:
    """End whatever a start the daemon died in left behind; True if something still ran.

    The daemon may die while the shim is still inside ``runc run``, before the
    init's ``pid`` is recorded: ``is_alive`` says no, and the container would
    come up a moment later with no one to watch it.  So the shim is stopped
    first (SIGSTOP: it forks nothing more and reaps nothing, so no PID of its
    tree is reused), then every process under it (runc, runc's init, the
    container's init) is killed, then the shim itself, the recorded init (its
    shim may already be gone), and runc's record with its cgroup.
    """
    sd = StateDir(state_dir)
    found = False
    fd = sd.pidfd("shim.pid")
    if fd is not None:
        found = True
        try:
            signal.pidfd_send_signal(fd, signal.SIGSTOP)
            shim_pid = sd.shim_pid()
            if shim_pid is not None:
                for _ in range(3):                # a child forked just before the stop: its tree too
                    tree = descendants(shim_pid)[1:]
                    for pid in tree:
                        _kill_quietly(pid, signal.SIGSTOP)
                    for pid in tree:
                        _kill_quietly(pid, signal.SIGKILL)
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            _wait_fd(fd, SHIM_EXIT_TIMEOUT)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)
    if sd.signal(signal.SIGKILL, "pid"):
        found = True
        sd.wait_gone("pid", SHIM_EXIT_TIMEOUT)
    _runc_delete(state_dir)
    return found


def _kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


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
    sd = StateDir(state_dir)
    if is_alive(state_dir):
        log.warning("cleaning up %s while its init still runs", state_dir)
    elif sd.exit_code() is not None:
        # its shim recorded the exit and is running `runc delete` itself (rm -f gets here as soon
        # as the init is dead): wait for it instead of racing it with a second runc (~13 ms)
        sd.wait_gone("shim.pid", SHIM_EXIT_TIMEOUT)
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
        fd = StateDir(state_dir).pidfd("shim.pid")
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
