"""The per-container supervisor: ``python -m cove.runtime.shim SPEC.json STATUS_FD``.

:func:`cove.runtime.process.start` runs it in a new session; it forks at once
and the first process exits, so the supervisor ("shim") is nobody's child to
reap and outlives daemon restarts.  The shim:

1. records ``shim.pid`` (PID and start time), joins the container's network
   namespace (if any) and unshares UTS, IPC and PID namespaces, so its child is
   PID 1 of a new PID namespace;
2. forks that child ("init"), which unshares a mount namespace of its own (the
   shim keeps the host's view, so nothing the init mounts shows in the host's
   mount table and it all vanishes with the init), builds the root (see
   :mod:`cove.runtime.rootfs`), and execs the command;
3. reports ``ok PID`` (or ``err MESSAGE``) on STATUS_FD, waits for the init
   (with a terminal: copying its output to ``tty.log`` and the ``stdin`` FIFO
   to it), writes its exit status to ``exit`` (code, or 128+signal), exits.

The init's exec is confirmed by a close-on-exec pipe: EOF means the exec
happened; bytes mean it failed, and carry the reason in Docker's words.

No threads here: after ``unshare(CLONE_NEWPID)`` the kernel refuses
``CLONE_THREAD``, so the terminal is served by one ``select`` loop.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import sys
import termios
from collections.abc import Callable

from ..kernel import syscalls as sc
from . import rootfs
from .spec import ContainerSpec

SHIM_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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


def _exec_error(cmd0: str, exc: OSError) -> str:
    """Docker's (runc's) wording for a command that cannot be started."""
    if isinstance(exc, FileNotFoundError):
        if "/" not in cmd0:
            return f'exec: "{cmd0}": executable file not found in $PATH'
        return f'exec: "{cmd0}": stat {cmd0}: no such file or directory'
    if isinstance(exc, PermissionError):
        return f'exec: "{cmd0}": permission denied'
    return f'exec: "{cmd0}": {os.strerror(exc.errno or errno.EIO).lower()}'


def _init(spec: ContainerSpec, err_w: int, stdio: tuple[int, int, int] | None, tty_sock: socket.socket | None) -> None:
    """PID 1 of the container: build the root, then exec.  Never returns."""
    try:
        for sig in (*SHIM_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        if stdio is not None:
            for i, fd in enumerate(stdio):
                os.dup2(fd, i)
        sc.unshare(sc.CLONE_NEWNS)
        rootfs.build(spec)                       # ends chroot'ed (pivot_root) into the container
        if tty_sock is not None:
            # The terminal comes from the container's own devpts, as with runc.
            master, slave = os.openpty()
            socket.send_fds(tty_sock, [b"m"], [master])
            os.close(master)
            tty_sock.close()
            for i in range(3):
                os.dup2(slave, i)
            os.close(slave)
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        socket.sethostname(spec.hostname)
        rootfs.enter_workdir(spec)
        try:
            os.execvpe(spec.cmd[0], spec.cmd, spec.environment())
        except OSError as exc:
            os.write(err_w, _exec_error(spec.cmd[0], exc).encode())
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            os.write(err_w, f"container init: {exc}".encode())
        except OSError:
            pass
    os._exit(127)


def _wait(pid: int) -> int:
    """Wait for ``pid``; return its status the Docker way (code, or 128+signal)."""
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


def _serve_tty(master: int, fifo: int | None, log_path: str, pid: int) -> int:
    """Copy the terminal to the log and the stdin FIFO to the terminal until the init exits."""
    os.set_blocking(master, False)
    pending = b""
    with open(log_path, "ab", buffering=0) as log:
        while True:
            rlist = [master] + ([fifo] if fifo is not None and len(pending) < 65536 else [])
            wlist = [master] if pending else []
            try:
                readable, writable, _ = select.select(rlist, wlist, [], 0.5)
            except InterruptedError:
                continue
            if master in readable:
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    data = None
                except OSError:                  # EIO: every slave is closed, the init is gone
                    data = b""
                if data:
                    log.write(data)
                elif data == b"":
                    return _wait(pid)
            if fifo is not None and fifo in readable:
                try:
                    pending += os.read(fifo, 65536)
                except BlockingIOError:
                    pass
            if master in writable and pending:
                try:
                    pending = pending[os.write(master, pending):]
                except BlockingIOError:
                    pass
                except OSError:
                    pending = b""
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                while True:                      # what the init wrote just before it ended
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        break
                    if not data:
                        break
                    log.write(data)
                code = os.waitstatus_to_exitcode(st)
                return 128 - code if code < 0 else code


def _open_stdio(spec: ContainerSpec, keep: list[int]) -> tuple[int, int, int] | None:
    """The init's stdin/stdout/stderr without a terminal; None with one."""
    fifo_path = os.path.join(spec.state_dir, "stdin")
    if spec.open_stdin:
        if not os.path.exists(fifo_path):
            os.mkfifo(fifo_path, 0o600)
        # A writer stays open in the shim: the container never sees EOF on stdin.
        keep.append(os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK))
    if spec.tty:
        return None
    if spec.open_stdin:
        inp = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(inp, True)
    else:
        inp = os.open(os.devnull, os.O_RDONLY)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    out = os.open(os.path.join(spec.data_dir, "stdout.log"), flags, 0o640)
    err = os.open(os.path.join(spec.data_dir, "stderr.log"), flags, 0o640)
    return inp, out, err


def run(spec: ContainerSpec, report: Callable[[str], None]) -> int:
    """Start the init, report, supervise; return the exit code recorded in ``exit``."""
    exit_path = os.path.join(spec.state_dir, "exit")
    if spec.netns:
        fd = os.open(spec.netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNET)
        finally:
            os.close(fd)
    sc.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID)
    keep: list[int] = []
    stdio = _open_stdio(spec, keep)
    tty_parent, tty_child = socket.socketpair() if spec.tty else (None, None)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        if tty_parent is not None:
            tty_parent.close()
        _init(spec, err_w, stdio, tty_child)
    os.close(err_w)
    if tty_child is not None:
        tty_child.close()
    for fd in set(stdio or ()):
        os.close(fd)
    failure = b""
    while chunk := os.read(err_r, 4096):
        failure += chunk
    os.close(err_r)
    master: int | None = None
    if not failure and tty_parent is not None:
        _, fds, _, _ = socket.recv_fds(tty_parent, 1, 1)
        master = fds[0] if fds else None
        if master is None:
            failure = b"container init: no terminal received"
    if tty_parent is not None:
        tty_parent.close()
    if failure:
        _wait(pid)
        _write_atomic(exit_path, "127\n")
        report("err " + failure.decode(errors="replace").replace("\n", " "))
        return 127
    _write_atomic(os.path.join(spec.state_dir, "pid"), f"{pid} {proc_start_time(pid)}\n")
    report(f"ok {pid}")
    if master is not None:
        code = _serve_tty(master, keep[0] if keep else None, os.path.join(spec.data_dir, "tty.log"), pid)
        os.close(master)
    else:
        code = _wait(pid)
    _write_atomic(exit_path, f"{code}\n")
    for fd in keep:
        os.close(fd)
    return code


def main(argv: list[str]) -> int:
    spec_path, status_fd = argv[0], int(argv[1])
    os.set_inheritable(status_fd, False)         # the container must not hold the daemon's pipe
    if os.fork() != 0:
        os._exit(0)                              # the daemon reaps this one; the shim is orphaned
    for sig in SHIM_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)       # only SIGKILL ends a shim
    status = os.fdopen(status_fd, "w")

    def report(line: str) -> None:
        if not status.closed:
            status.write(line + "\n")
            status.close()

    with open(spec_path) as f:
        spec = ContainerSpec.from_json(f.read())
    me = os.getpid()
    _write_atomic(os.path.join(spec.state_dir, "shim.pid"), f"{me} {proc_start_time(me)}\n")
    try:
        run(spec, report)
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            _write_atomic(os.path.join(spec.state_dir, "exit"), "127\n")
            report(f"err container setup: {exc}")
        except (OSError, ValueError):
            pass
        return 1


def zygote(sock_fd: int) -> int:
    """``python -m cove.runtime.shim --zygote FD``: a warm interpreter that forks shims.

    The daemon starts one and sends it, per container, the spec's path with the status
    pipe and the shim log as passed file descriptors; the zygote forks a child that
    becomes exactly what ``python -m cove.runtime.shim SPEC FD`` would be (a new session,
    stdio on the log, then :func:`main`), reaps it once it has forked the shim, and answers
    ``b"ok"``.  A fork of this small, already-imported process costs a millisecond or
    two where a new interpreter costs tens, and the shims share its pages.  EOF on the
    socket (the daemon is gone) ends the zygote; the shims live on.  No threads here.
    """
    sock = socket.socket(fileno=sock_fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 2)
        except OSError:
            return 1
        if not msg:
            return 0
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            sock.sendall(b"err bad request")
            continue
        status_fd, log_fd = fds
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sock.close()
                os.setsid()
                os.dup2(devnull, 0)
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
                os.close(log_fd)
                os.close(devnull)
                os.chdir("/")
                code = main([msg.decode(), str(status_fd)])
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError):
                        pass
                os._exit(code)
        os.close(status_fd)
        os.close(log_fd)
        os.waitpid(pid, 0)                      # it forks the shim and exits at once
        sock.sendall(b"ok")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        sys.exit(zygote(int(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
