"""The per-container supervisor: ``python -m cove.runtime.shim SPEC.json STATUS_FD``.

:func:`cove.runtime.process.start` runs it in a new session; it forks at once
and the first process exits, so the supervisor ("shim") is nobody's child to
reap and outlives daemon restarts.  The container itself is made by runc (the
OCI runtime Docker uses); the shim:

1. records ``shim.pid`` (PID and start time), becomes a child subreaper,
   unshares a mount namespace of its own and mounts the container's root there
   (:mod:`cove.runtime.rootfs`: nothing shows in the host's mount table, and it
   all vanishes with the shim);
2. writes the OCI ``config.json`` (:mod:`cove.runtime.profile`: Docker's default
   profile, the network namespace to join, the ``/etc`` files), waits for the
   daemon's word on its gate (:class:`cove.runtime.supervise.Launch`: the daemon
   plumbs the container's network meanwhile) and runs ``runc run --detach``; the
   container's init, orphaned when runc exits, is re-parented to the shim;
3. reports ``ok PID`` (or ``err MESSAGE``, runc's words) on STATUS_FD, waits for
   the init (with a terminal: copying its output to ``tty.log`` and the ``stdin``
   FIFO to it), writes its exit status to ``exit`` (code, or 128+signal), has
   runc delete what it kept (state, cgroup), and exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import BinaryIO, NoReturn

from ..kernel import netns
from ..kernel import syscalls as sc
from . import logs, profile, rootfs
from .statedir import _wait_fd
from .spec import ContainerSpec
from .streams import STDIN_CLOSE

SHIM_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: the zygote's environment: a JSON list of the directories its mount namespace goes without
ZYGOTE_HIDDEN_ENV = "COVE_ZYGOTE_HIDDEN"


def proc_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: with the PID, names one process for good."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data.rsplit(")", 1)[1].split()[19]


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


RUNC = shutil.which("runc") or "/usr/sbin/runc"
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def runc(state_dir: str, log: str = "runc.log") -> list[str]:
    """runc with the container's own state root (``STATE_DIR/runc``) and a log of its errors
    (``log``: a name in the state dir, or an absolute path such as ``/proc/self/fd/N``)."""
    return [RUNC, "--root", os.path.join(state_dir, "runc"), "--log", os.path.join(state_dir, log),
            "--log-format", "json"]


def runc_log() -> BinaryIO:
    """An empty memfd for runc's ``--log`` (:func:`log_arg`; pass its descriptor to runc alone).

    runc 1.1 opens ``--log`` with O_CREAT|O_APPEND in its main process at every call (``runc
    init`` logs through a pipe to it): a file would be an inode made per call, in the state dir
    (``runc.log``, per start) or one per exec.  On this machine's ext4 without a journal each
    costs 0.03-1 ms of CPU (~0.3 ms in cove's processes) while containers come and go
    (bench/results/2026-12-07-inodes.md); the memfd is in memory and goes with its last descriptor."""
    return os.fdopen(os.memfd_create("cove-runc-log", os.MFD_CLOEXEC), "rb")


def log_arg(log: BinaryIO) -> str:
    """runc's ``--log`` for a :func:`runc_log`: its descriptor, as runc sees it in its own /proc/self."""
    return f"/proc/self/fd/{log.fileno()}"


def log_text(log: BinaryIO) -> str:
    """What runc wrote to a :func:`runc_log` so far."""
    try:
        return os.pread(log.fileno(), 1 << 20, 0).decode(errors="replace")
    except (OSError, ValueError):
        return ""


def runc_error(log_text: str) -> str:
    """The last error runc logged (``log_text``: its JSON lines), in its words (Docker shows the same)."""
    message = ""
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", ""))
    message = message or "runc failed"
    at = message.find("exec: ")
    return message[at:] if at >= 0 else message


def _console_socket(state_dir: str) -> tuple[socket.socket, str, str | None]:
    """A listening socket runc sends the terminal's master to; (socket, path, temp dir to remove)."""
    path, tmp = os.path.join(state_dir, "console.sock"), None
    if len(path) > 100:                          # sun_path holds 108 bytes
        tmp = tempfile.mkdtemp(prefix="cove-console-")
        path = os.path.join(tmp, "sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    return sock, path, tmp


def _receive_master(sock: socket.socket) -> int | None:
    sock.settimeout(5)
    try:
        conn, _ = sock.accept()
    except OSError:
        return None
    with conn:
        conn.settimeout(5)
        try:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        except OSError:
            return None
    return fds[0] if fds else None


def _wait_exec(pid: int, timeout: float = 10.0) -> None:
    """Wait until runc's init has exec'ed the command (``runc run`` may return just before):
    until then it is runc's Go code, which a signal would end with runc's status, not the command's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith("runc:["):
                    return
        except OSError:
            return
        time.sleep(0.0005)


def _reap(pid: int) -> int:
    """The init's status the Docker way (code, or 128+signal)."""
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(st)
    return 128 - code if code < 0 else code


def _serve(pid: int, outputs: dict[int, logs.LogWriter], master: int | None, fifo: int | None,
           once: int | None = None) -> int:
    """Copy the container's output (pipes, or its terminal's master) to its logs, and the
    stdin FIFO to the terminal, until the init exits; return its status.

    ``once`` (StdinOnce without a terminal): the ``stdin-close`` FIFO; when the daemon writes to
    it (the first attached client's stdin ended), the shim closes its own writer of the stdin
    FIFO (``fifo``), so the container reads EOF once the client's writer is closed too."""
    pidfd = os.pidfd_open(pid)
    for fd in outputs:
        os.set_blocking(fd, False)
    pending = b""

    def drain(fd: int) -> bool:
        """Copy what ``fd`` has; False at its end (EOF, or EIO once a terminal has no slave left)."""
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            outputs[fd].write(data)              # drops what it cannot write (a full disk) and says so: never raises

    try:
        open_fds = set(outputs)
        while True:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            for fd in open_fds:
                poller.register(fd, select.POLLIN)
            if fifo is not None and master is not None and len(pending) < 65536:
                poller.register(fifo, select.POLLIN)
            if pending and master is not None:
                poller.register(master, select.POLLIN | select.POLLOUT)
            if once is not None:
                poller.register(once, select.POLLIN)
            try:
                events = dict(poller.poll())
            except InterruptedError:
                continue
            for fd in list(open_fds):
                if events.get(fd, 0) & (select.POLLIN | select.POLLHUP | select.POLLERR) and not drain(fd):
                    open_fds.discard(fd)
            if once is not None and events.get(once, 0) & select.POLLIN:
                if fifo is not None:
                    os.close(fifo)
                    fifo = None
                os.close(once)
                once = None
            if fifo is not None and master is not None and events.get(fifo, 0) & select.POLLIN:
                try:
                    pending += os.read(fifo, 65536)
                except BlockingIOError:
                    pass
            if master is not None and pending and events.get(master, 0) & select.POLLOUT:
                try:
                    pending = pending[os.write(master, pending):]
                except BlockingIOError:
                    pass
                except OSError:
                    pending = b""
            if pidfd in events:
                for fd in open_fds:              # what it wrote just before it ended
                    drain(fd)
                return _reap(pid)
    finally:
        os.close(pidfd)
        for writer in outputs.values():
            writer.close()
        if once is not None:                     # the kept writer, unless the daemon had it closed
            os.close(once)
            if fifo is not None:
                os.close(fifo)


def _open_stdio(spec: ContainerSpec, keep: list[int]) -> tuple[tuple[int, int, int], dict[int, logs.LogWriter]]:
    """runc's stdin/stdout/stderr (the container's own without a terminal: runc passes them
    on), and the read ends of the output pipes with the logs they go to."""
    fifo_path = os.path.join(spec.state_dir, "stdin")
    if spec.open_stdin:
        if not os.path.exists(fifo_path):
            os.mkfifo(fifo_path, 0o600)
        # A writer stays open in the shim: the container never sees EOF on stdin (with StdinOnce,
        # until the first attached client's stdin ends: _serve's ``once``).
        keep.append(os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK))
        if spec.stdin_once and not spec.tty:
            close_path = os.path.join(spec.state_dir, STDIN_CLOSE)
            if not os.path.exists(close_path):
                os.mkfifo(close_path, 0o600)
            keep.append(os.open(close_path, os.O_RDWR | os.O_NONBLOCK))
    if spec.tty:
        null = os.open(os.devnull, os.O_RDWR)
        return (null, null, null), {}
    if spec.open_stdin:
        inp = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(inp, True)
    else:
        inp = os.open(os.devnull, os.O_RDONLY)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    writers = {out_r: _log(spec, "stdout.log"), err_r: _log(spec, "stderr.log")}
    return (inp, out_w, err_w), writers


def _log(spec: ContainerSpec, name: str) -> logs.LogWriter:
    return logs.LogWriter(os.path.join(spec.data_dir, name), spec.log_max_size, spec.log_max_file)


def _delete(spec: ContainerSpec, log: BinaryIO) -> None:
    subprocess.run([*runc(spec.state_dir, log_arg(log)), "delete", "--force", spec.id], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, pass_fds=(log.fileno(),))


def _gate_open(gate: int | None) -> bool:
    """Wait for the daemon's word to run runc (:class:`cove.runtime.supervise.Launch`): True on its
    byte, False on the end of file (the start was given up, or the daemon is gone)."""
    if gate is None:
        return True
    try:
        while True:
            try:
                return os.read(gate, 1) == b"g"
            except InterruptedError:
                continue
    except OSError:
        return False
    finally:
        os.close(gate)


def run(spec: ContainerSpec, report: Callable[[str], None], namespaces: dict[str, int] | None = None,
        gate: int | None = None) -> int:
    """Start the container with runc, report, supervise; return the exit code recorded in ``exit``.

    ``namespaces``: descriptors of the namespaces to join ("net", "user") the daemon opened in its
    own mount namespace, where their binds are (this one has none): runc opens them through this
    process's ``/proc/PID/fd``; they are closed once ``runc run`` is done.  ``gate``: everything
    is prepared, then ``runc run`` waits for a byte on it (:func:`_gate_open`); at its end of
    file the shim goes, having started nothing and recorded no exit."""
    exit_path = os.path.join(spec.state_dir, "exit")
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    os.chdir(spec.state_dir)                     # how `exec` finds the state dir from the init's PID
    sc.unshare(sc.CLONE_NEWNS)
    root = rootfs.prepare(spec)
    namespaces = namespaces or {}
    if "net" in namespaces:
        spec.netns = f"/proc/{os.getpid()}/fd/{namespaces['net']}"
    if "user" in namespaces:
        spec.userns = f"/proc/{os.getpid()}/fd/{namespaces['user']}"
    config = profile.oci_config(spec, root)
    fd = os.open(os.path.join(spec.state_dir, "config.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(config))              # one call of the C encoder (json.dump: chunk by chunk, ~0.2 ms more)
    keep: list[int] = []
    stdio, outputs = _open_stdio(spec, keep)
    console: tuple[socket.socket, str, str | None] | None = _console_socket(spec.state_dir) if spec.tty else None
    pid_file = os.path.join(spec.state_dir, "init.pid")
    log = runc_log()                             # runc's words, for an ``err`` report
    args = [*runc(spec.state_dir, log_arg(log)), "run", "--detach", "--pid-file", pid_file, "--bundle", spec.state_dir]
    if console is not None:
        args += ["--console-socket", console[1]]
    master: int | None = None
    if not _gate_open(gate):                     # the shim's end closes what it opened
        if console is not None and console[2]:
            shutil.rmtree(console[2], ignore_errors=True)
        report("err the start was given up")
        return 0
    try:
        proc = subprocess.run([*args, spec.id], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], check=False,
                              pass_fds=(log.fileno(),))
        ok = proc.returncode == 0
        if ok and console is not None:
            master = _receive_master(console[0])
            ok = master is not None
    finally:
        for fd in {*stdio, *namespaces.values()}:    # the container holds its own copies / joined them
            os.close(fd)
        if console is not None:
            console[0].close()
            if console[2]:
                shutil.rmtree(console[2], ignore_errors=True)
    if not ok:
        for fd, writer in outputs.items():       # runc's message is no output of the container's
            os.close(fd)
            writer.close()
        message = runc_error(log_text(log)) if proc.returncode else "container init: no terminal received"
        _delete(spec, log)
        _write_atomic(exit_path, "127\n")
        report("err " + message.replace("\n", " "))
        return 127
    with open(pid_file) as f:
        pid = int(f.read().strip())
    _wait_exec(pid)
    _write_atomic(os.path.join(spec.state_dir, "pid"), f"{pid} {proc_start_time(pid)}\n")
    report(f"ok {pid}")
    if master is not None:
        outputs = {master: _log(spec, "tty.log")}
    once = keep[1] if len(keep) > 1 else None
    code = _serve(pid, outputs, master, keep[0] if keep else None, once)
    for fd in outputs:
        os.close(fd)
    _write_atomic(exit_path, f"{code}\n")
    for fd in keep if once is None else ():      # with ``once``, _serve closed them
        os.close(fd)
    _delete(spec, log)
    return code


class ShimLog:
    """What the shim says on its stdout/stderr, kept in ``shim.log`` in the data dir only if it says something.

    Its stdout and stderr (and those of the first interpreter before it, started without the zygote) are a
    memfd the daemon made (:func:`cove.runtime.supervise.start`), not the file: most shims say
    nothing, and a file made per start is an inode, ~0.3 ms of CPU on this machine's ext4 without a
    journal while containers come and go (bench/results/2026-12-07-inodes.md).  :meth:`keep` appends
    what was said since its last call to ``shim.log``; the shim calls it once it has reported (what
    the start said) and at its end.  The daemon keeps what a shim that never answered said
    (:meth:`keep` from its side, ``done=0``: that shim never got to it)."""

    NAME = "shim.log"

    def __init__(self, fd: int = 2, done: int = 0) -> None:
        self.fd, self.done = fd, done

    def said(self) -> bytes:
        """What was said since the last :meth:`keep` (nothing if the descriptor is not a memfd)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            if not os.readlink(f"/proc/self/fd/{self.fd}").startswith("/memfd:"):
                return b""                       # a shim started otherwise (by hand): its stderr is its own
            size = os.fstat(self.fd).st_size
            return os.pread(self.fd, size - self.done, self.done) if size > self.done else b""
        except OSError:
            return b""

    def keep(self, data_dir: str) -> None:
        data = self.said()
        if not data:
            return
        try:
            fd = os.open(os.path.join(data_dir, self.NAME), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            self.done += len(data)
        except OSError:
            pass


def main(argv: list[str], forked: bool = False) -> int:
    """``SPEC STATUS_FD [net=FD] [user=FD]``: the shim (see :func:`run` for the namespaces).
    ``forked``: this process is already the zygote's child, the shim itself (no second fork)."""
    spec_path, status_fd = argv[0], int(argv[1])
    namespaces = {kind: int(fd) for kind, _, fd in (arg.partition("=") for arg in argv[2:])}
    gate = namespaces.pop("gate", None)
    for fd in (status_fd, *namespaces.values(), *([] if gate is None else [gate])):
        os.set_inheritable(fd, False)            # the container must not hold the daemon's pipe
    if not forked and os.fork() != 0:
        os._exit(0)                              # the daemon reaps this one; the shim is orphaned
    for sig in SHIM_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)       # only SIGKILL ends a shim
    status = os.fdopen(status_fd, "w")
    said = ShimLog()

    with open(spec_path) as f:
        spec = ContainerSpec.from_json(f.read())

    def report(line: str) -> None:
        if not status.closed:
            status.write(line + "\n")
            status.close()
            said.keep(spec.data_dir)             # what the start said (after the answer: no wait for it)

    me = os.getpid()
    _write_atomic(os.path.join(spec.state_dir, "shim.pid"), f"{me} {proc_start_time(me)}\n")
    try:
        run(spec, report, namespaces, gate)
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            _write_atomic(os.path.join(spec.state_dir, "exit"), "127\n")
            report(f"err container setup: {exc}")
        except (OSError, ValueError):
            pass
        return 1
    finally:
        said.keep(spec.data_dir)


def _clean_namespace(hidden: list[str]) -> None:
    """Move the zygote into a mount namespace of its own, a slave of the daemon's, without the
    mounts at ``hidden`` (the daemon's private directories of namespace binds): every shim forked
    then copies a table whose size does not grow with the number of containers.

    Only where ``/`` is a shared mount (systemd's default): a slave sees what is mounted in the
    daemon's namespace later (a bind source, a volume's mount) only through propagation.  Where
    it is not, or the binds cannot be left behind, the zygote stays where it is (each shim then
    detaches them in its own namespace: slower, as correct)."""
    if not netns.root_shared():
        print("cove zygote: / is not a shared mount; shims start in the daemon's mount namespace",
              file=sys.stderr)
        return
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(sc.CLONE_NEWNS)
        try:
            clean = netns.hide(hidden)
        except OSError as exc:
            print(f"cove zygote: {exc}", file=sys.stderr)
            clean = False
        if not clean:
            print(f"cove zygote: mounts under {hidden} remain; back in the daemon's mount namespace",
                  file=sys.stderr)
            sc.setns(home, sc.CLONE_NEWNS)
    finally:
        os.close(home)
    os.chdir("/")


def zygote(sock_fd: int, hidden: list[str] | None = None) -> int:
    """``python -m cove.runtime.shim --zygote FD``: a warm interpreter that forks shims.

    The daemon starts one and sends it, per container, the spec's path with the status
    pipe, the shim log and the namespaces to join (the kinds after the path, ``\\0``-separated)
    as passed file descriptors; the zygote forks the shim itself (a new session, stdio on the
    log, then :func:`main` without its own fork: what ``python -m cove.runtime.shim SPEC FD
    net=FD...`` becomes after its double fork) and answers ``b"ok"``.  A fork of this small,
    already-imported process costs a millisecond or two where a new interpreter costs tens,
    and the shims share its pages.  The shims are the zygote's children while it lives:
    ``SIGCHLD`` ignored here, the kernel reaps them when they end (a shim sets it back to the
    default before it starts anything: it reaps runc and its container); when the zygote ends
    (EOF on the socket: the daemon is gone) they are orphaned and live on, as after a double
    fork.  (A double fork, child and grandchild, was the zygote's way until 2026-12-07: ~2 ms of
    CPU per start for the middle process; bench/daemoncpu.py.)  No threads here.  It works in a
    mount namespace without the directories ``hidden`` (:data:`ZYGOTE_HIDDEN_ENV`,
    :func:`_clean_namespace`).  Between requests it forks the next shim ahead
    (:func:`_fork_spare`), which waits for its request.
    """
    if hidden:
        _clean_namespace(hidden)
    sock = socket.socket(fileno=sock_fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)      # the shims it forks are reaped by the kernel
    try:
        profile.default_seccomp_profile()        # read once here: every shim forked has it
    except Exception:  # noqa: BLE001 - a shim reports a missing profile when it needs it
        pass
    spare: socket.socket | None = None         # our end of a shim forked ahead, waiting for its request
    ahead = True                                 # fork one ahead when idle (once per request: a failed fork waits)
    while True:
        if spare is None and ahead and not _wait_fd(sock.fileno(), SPARE_DELAY):     # no request (or EOF) yet
            spare = _fork_spare(sock, devnull)   # while no start is under way: off the next one's path
            ahead = False
            continue
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, MAX_FDS)
        except OSError:
            return 1
        if not msg:
            return 0
        kinds = msg.decode().split("\0")[1:]
        if len(fds) != 2 + len(kinds) or not set(kinds) <= {"net", "user", "gate"}:
            for fd in fds:
                os.close(fd)
            sock.sendall(b"err bad request")
            continue
        handed, ahead = False, True
        if spare is not None:
            try:
                socket.send_fds(spare, [msg], fds)
                handed = True
            except OSError:                      # it is gone: fork one now
                pass
            spare.close()
            spare = None
        if not handed and os.fork() == 0:
            _shim_child(sock, devnull, msg, fds)
        for fd in fds:
            os.close(fd)
        sock.sendall(b"ok")


#: the most descriptors a request carries: the status pipe, the shim's log, the network and user
#: namespaces, the gate (a request cut short of one is refused: "err bad request")
MAX_FDS = 5

#: how long the zygote waits, after a request, before it forks the next shim ahead: the fork
#: (~1 ms of CPU on this machine, more under load) must not take a core from the start under way
SPARE_DELAY = 0.02


def _fork_spare(sock: socket.socket, devnull: int) -> socket.socket | None:
    """A shim forked before its request: it waits on a socket pair for the zygote to hand it one
    (the same message and descriptors the daemon sent).  The fork of this interpreter is the
    costliest step of a shim's start (1.4–1.6 ms from the request to the child's first line,
    bench/results/2026-12-07-launch.md); done ahead, a start only pays for one message."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        ours.close()
        sock.close()
        try:
            msg, fds, _flags, _addr = socket.recv_fds(theirs, 4096, MAX_FDS)
        except OSError:
            os._exit(1)
        if not msg:                              # the zygote is gone: so is the daemon's request
            os._exit(0)
        theirs.close()
        _shim_child(None, devnull, msg, fds)
    theirs.close()
    return ours


def _shim_child(sock: socket.socket | None, devnull: int, msg: bytes, fds: list[int]) -> NoReturn:
    """In a child of the zygote: become the shim of the request ``msg`` with descriptors ``fds``."""
    spec_path, *kinds = msg.decode().split("\0")
    status_fd, log_fd, *ns_fds = fds
    code = 1
    try:
        # before anything else: an ignored SIGCHLD would survive exec into runc, and the
        # shim's waits for runc and its container would find no child
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if sock is not None:
            sock.close()
        os.setsid()
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(devnull)
        os.chdir("/")
        code = main([spec_path, str(status_fd), *(f"{k}={fd}" for k, fd in zip(kinds, ns_fds))], forked=True)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        sys.exit(zygote(int(sys.argv[2]), json.loads(os.environ.pop(ZYGOTE_HIDDEN_ENV, "[]"))))
    sys.exit(main(sys.argv[1:]))
