"""The per-container supervisor: ``python -m cove.runtime.shim SPEC.json STATUS_FD``.

It is started detached (its own session) by :func:`cove.runtime.process.start`
and outlives daemon restarts.  It:

1. joins the container's network namespace (if any) and unshares UTS, IPC and
   PID namespaces, so its child is PID 1 of a new PID namespace;
2. forks that child, which unshares a mount namespace of its own (so the
   shim keeps the host's view), mounts the root (overlay of the image, or a
   bind of the host's ``/`` for the ``host`` image), ``/proc``, ``/sys`` (a
   fresh sysfs: ``/sys/class/net`` lists the container's own interfaces),
   ``/dev``, binds the private ``/etc`` files, sets the hostname,
   ``pivot_root``s, and execs the command with stdout/stderr on the log files
   (or on a pseudo-terminal with ``tty``);
3. reports ``ok PID`` (or ``err MESSAGE``) on STATUS_FD, waits for the child,
   writes its exit status to ``exit`` (code, or 128+signal) and exits.

The child's exec is confirmed by a close-on-exec pipe: EOF means the exec
happened; bytes mean it failed, and carry the reason.
"""

from __future__ import annotations

import errno
import os
import pty
import socket
import sys

from ..kernel import syscalls as sc
from .spec import ContainerSpec

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


def _ensure_file(path: str) -> None:
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass


def _setup_root(spec: ContainerSpec) -> str:
    """Mount the container's root in this (child's) mount namespace; return its path."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    root = os.path.join(spec.state_dir, "rootfs")
    os.makedirs(root, exist_ok=True)
    if spec.rootfs is None:
        sc.mount("/", root, None, sc.MS_BIND | sc.MS_REC)
    else:
        upper, work = os.path.join(spec.data_dir, "upper"), os.path.join(spec.data_dir, "work")
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        sc.mount("overlay", root, "overlay", 0, f"lowerdir={spec.rootfs},upperdir={upper},workdir={work}")
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    sc.mount("proc", os.path.join(root, "proc"), "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    if spec.rootfs is None:
        # the host's /sys is under the bind; a fresh sysfs shows this namespace's devices
        sc.mount("sysfs", os.path.join(root, "sys"), "sysfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    else:
        sc.mount("sysfs", os.path.join(root, "sys"), "sysfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY)
        dev = os.path.join(root, "dev")
        sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID, "mode=755,size=65536k")
        for node in DEV_NODES:
            target = os.path.join(dev, node)
            _ensure_file(target)
            sc.mount(f"/dev/{node}", target, None, sc.MS_BIND)
        os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
        try:
            sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                     "newinstance,ptmxmode=0666,mode=0620")
            os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
        except OSError:
            pass
        os.makedirs(os.path.join(dev, "shm"), exist_ok=True)
        sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=1777")
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, os.path.join(dev, name))
    for target, source in spec.etc_files.items():
        dest = os.path.join(root, target.lstrip("/"))
        if os.path.islink(dest):
            os.unlink(dest)
        _ensure_file(dest)
        sc.mount(source, dest, None, sc.MS_BIND)
    return root


def _child(spec: ContainerSpec, err_w: int, stdio: tuple[int, int, int], tty: bool) -> None:
    """PID 1 of the container: build the root, then exec.  Never returns."""
    try:
        os.setsid()
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        if tty:
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        sc.unshare(sc.CLONE_NEWNS)
        root = _setup_root(spec)
        socket.sethostname(spec.hostname)
        os.chdir(root)
        sc.pivot_root(".", ".")
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
        try:
            os.chdir(spec.workdir or "/")
        except OSError:
            os.makedirs(spec.workdir, exist_ok=True)
            os.chdir(spec.workdir)
        env = spec.environment()
        cmd = spec.cmd
        try:
            os.execvpe(cmd[0], cmd, env)
        except FileNotFoundError:
            msg = f'exec: "{cmd[0]}": executable file not found in $PATH' if "/" not in cmd[0] \
                else f'exec: "{cmd[0]}": stat {cmd[0]}: no such file or directory'
            os.write(err_w, msg.encode())
        except PermissionError:
            os.write(err_w, f'exec: "{cmd[0]}": permission denied'.encode())
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            os.write(err_w, f"container init: {exc}".encode())
        except OSError:
            pass
    os._exit(127)


def _copy_pty_until_exit(master: int, log_path: str, pid: int) -> int:
    """Copy the terminal's output to the log until the init exits; return its wait status."""
    import select

    status: int | None = None
    with open(log_path, "ab", buffering=0) as log:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    data = b""
                if data:
                    log.write(data)
                    continue
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
            if status is not None and not ready:
                return status
            if status is not None and ready:
                return status


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def proc_start_time(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data.rsplit(")", 1)[1].split()[19]


def main(argv: list[str]) -> int:
    spec_path, status_fd = argv[0], int(argv[1])
    with open(spec_path) as f:
        spec = ContainerSpec.from_json(f.read())
    status = os.fdopen(status_fd, "w")

    def report(line: str) -> None:
        status.write(line + "\n")
        status.flush()

    os.makedirs(spec.data_dir, exist_ok=True)
    exit_path = os.path.join(spec.state_dir, "exit")
    try:
        if spec.netns:
            fd = os.open(spec.netns, os.O_RDONLY)
            sc.setns(fd, sc.CLONE_NEWNET)
            os.close(fd)
        sc.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID)
        master: int | None = None
        keep: list[int] = []
        if spec.tty:
            master, slave = pty.openpty()
            stdio = (slave, slave, slave)
        else:
            out = os.open(os.path.join(spec.data_dir, "stdout.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            err = os.open(os.path.join(spec.data_dir, "stderr.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            if spec.open_stdin:
                fifo = os.path.join(spec.state_dir, "stdin")
                if not os.path.exists(fifo):
                    os.mkfifo(fifo, 0o600)
                keep.append(os.open(fifo, os.O_RDWR))   # a writer stays open: no EOF for the container
                inp = os.open(fifo, os.O_RDONLY)
            else:
                inp = os.open(os.devnull, os.O_RDONLY)
            stdio = (inp, out, err)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            if master is not None:
                os.close(master)
            _child(spec, err_w, stdio, spec.tty)
        os.close(err_w)
        for fd in set(stdio):
            os.close(fd)
        failure = b""
        while True:
            chunk = os.read(err_r, 4096)
            if not chunk:
                break
            failure += chunk
        os.close(err_r)
        if failure:
            _, st = os.waitpid(pid, 0)
            _write_atomic(exit_path, "127\n")
            report("err " + failure.decode(errors="replace"))
            return 0
        _write_atomic(os.path.join(spec.state_dir, "pid"), f"{pid} {proc_start_time(pid)}\n")
        report(f"ok {pid}")
        status.close()
        if master is not None:
            # No threads here: after unshare(CLONE_NEWPID) the kernel refuses CLONE_THREAD.
            st = _copy_pty_until_exit(master, os.path.join(spec.data_dir, "tty.log"), pid)
        else:
            _, st = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(st)
        code = 128 - code if code < 0 else code
        for fd in keep:
            os.close(fd)
        _write_atomic(exit_path, f"{code}\n")
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            _write_atomic(exit_path, "127\n")
            report(f"err container setup: {exc}")
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
