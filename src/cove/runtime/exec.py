"""Enter a running container: ``runc exec`` with the container's profile, and its terminal's size."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import CoveError
from . import profile, shim
from .spec import DEFAULT_PATH, ContainerSpec
from .statedir import StateDir, _stat


# -- terminal size --------------------------------------------------------------------------
def set_winsize(fd: int, height: int, width: int) -> None:
    """TIOCSWINSZ on either end of a pty; the kernel sends SIGWINCH to its foreground group."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def resize_container_tty(state_dir: str, height: int, width: int) -> bool:
    """Resize the terminal of a container started with a TTY (its init's stdin); False if it has none."""
    sd = StateDir(state_dir)
    pid = sd.pid()
    if pid is None or not sd.is_alive():
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
# 126 (not executable), which runc's log tells apart (:meth:`ExecHandle.finish`).  The log goes
# with the exec.  This was a ``sh -c`` wrapper around runc (tests/unit/test_exec_status.py keeps
# it as the reference of the rule): two more processes per exec (sh, and rm for the log), ~2 ms of
# each exec (issue 17).  The log is a memfd runc opens as ``--log /proc/self/fd/N`` (runc 1.1 opens
# the path with O_CREAT|O_APPEND in its main process; ``runc init`` logs through a pipe to it), not
# a file in the state dir: no inode made and unlinked on disk per exec, which on this machine's ext4
# without a journal cost 0.03-1 ms of CPU each while containers come and go (~0.3 ms in cove's processes)
# (bench/results/2026-12-07-inodes.md).


def exec_status(code: int, log_text: str) -> int:
    """Docker's status of an exec whose ``runc exec`` ended with ``code``, runc's log being ``log_text``."""
    if code == 255 and log_text:
        if "exec: " in log_text:
            after = log_text[log_text.index("exec: "):]
            if "not found" in after or "no such file" in after:
                return 127
            if "permission denied" in after:
                return 126
    return code


def _state_dir_of(pid: int) -> str:
    """The state dir of the container whose init is ``pid``: its parent is the shim, which works there."""
    fields = _stat(pid)
    if fields is not None:
        try:
            path = os.readlink(f"/proc/{fields[1]}/cwd")
        except OSError:
            path = ""
        ident = StateDir(path).identity("pid") if path else None
        if ident is not None and ident[0] == pid:
            return path
    raise CoveError(f"no running container has pid {pid}")


@dataclass
class ExecHandle:
    popen: subprocess.Popen[bytes]
    master_fd: int | None = None     # with a terminal: the pty's master (read output, write input)
    log: BinaryIO | None = None      # runc's log of this exec, a memfd (closed by :meth:`finish`)

    def finish(self, code: int | None) -> int:
        """Docker's status from ``runc exec``'s (None, killed: -1); closes runc's log."""
        text = ""
        if self.log is not None:
            text = shim.log_text(self.log)
            self.log.close()
        return -1 if code is None else exec_status(code, text)

    def wait(self) -> int:
        """Wait for the exec's end: its status as Docker gives it."""
        return self.finish(self.popen.wait())


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
    log = shim.runc_log()
    try:
        os.write(memfd, json.dumps(proc).encode())
        args = [*shim.runc(state_dir, shim.log_arg(log)), "exec", "--process", f"/proc/self/fd/{memfd}", spec.id]
        fds = (memfd, log.fileno())
        if tty:
            master, slave = os.openpty()
            setsid = shutil.which("setsid") or "/usr/bin/setsid"
            try:   # setsid --ctty: a session of its own, with the pty as controlling terminal
                p = subprocess.Popen([setsid, "--ctty", "--wait", *args], stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, pass_fds=fds)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return ExecHandle(p, master, log)
        p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, close_fds=True, pass_fds=fds)
        return ExecHandle(p, log=log)
    except BaseException:
        log.close()
        raise
    finally:
        os.close(memfd)
