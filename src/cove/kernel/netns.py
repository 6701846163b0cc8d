"""Network namespaces: create, bind to a file, enter for one call, delete.

A container's network stack ("sandbox" in libnetwork's words) is a network
namespace kept alive by a bind mount of its nsfs file at ``<exec-root>/netns/<id>``,
the way ``ip netns`` does under ``/run/netns``.  The namespace exists before any
container process does, so the engine can wire it up first and the process joins
it later; and it can outlive a daemon restart.

Those binds must not be copied into every mount namespace made after them (issue 17):
``unshare(CLONE_NEWNS)`` copies each mount of its parent, so with one bind per container
every start (the shim's namespace, runc's, the host image's bind of ``/``) copied one mount
per running container, and where the daemon's mounts are shared each new bind propagated
into every running shim's namespace.  So:

- the directory the binds live in is its own mount point, *private* in the daemon's mount
  namespace (:func:`keep_private`, called by the daemon's kernel,
  :class:`cove.kernel.linux.LinuxKernel`, before its first bind there): a bind made under it
  reaches no other namespace (the opposite of ``ip netns``, which makes ``/run/netns`` shared
  so that every namespace sees its binds);
- the shims' zygote works in a mount namespace made once, a slave of the daemon's (a mount
  made on the host later still reaches it, and so runc), with those directories detached
  (:func:`hide`); only where ``/`` is a shared mount, else it stays in the daemon's and each
  shim detaches them in its own copy;
- a shim is handed its container's namespaces as descriptors the daemon opened, and runc
  opens them as ``/proc/SHIM/fd/N``: no path of the daemon's namespace (nor the daemon's
  pid) is needed once the shim has them (:mod:`cove.runtime.supervise`).

The kernel quirk handled here: namespace membership is per *thread*.  ``setns``
moves only the calling thread, and a netlink socket belongs to the namespace its
creating thread was in at ``socket()`` time, forever after.  So :func:`entered`
switches the calling thread in and always back (or aborts the process if it
cannot return: a daemon thread stranded in a container's namespace would apply
host changes to the wrong stack).  Sockets opened inside keep working on the target
namespace after the thread has returned, with no further ``setns``.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CoveError, Unavailable
from .syscalls import (CLONE_NEWNET, CLONE_NEWUSER, MNT_DETACH, MS_BIND, MS_PRIVATE, MS_REC, MS_SLAVE, mount, setns,
                       umount2, unshare)

_private: set[str] = set()          # the directories keep_private has made private mount points
_private_lock = threading.Lock()


def current_netns_inode() -> int:
    """Inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


@contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body with the calling thread inside the network namespace at ``path``."""
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise CoveError(f"network namespace {path} does not exist") from exc
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(target)
        try:
            yield
        finally:
            try:
                setns(home)
            except OSError as exc:  # pragma: no cover - cannot happen short of a kernel bug
                sys.stderr.write(f"cove: fatal: cannot return to the host network namespace: {exc}\n")
                os._exit(70)
    finally:
        os.close(target)
        os.close(home)


def create(path: str) -> None:
    """Create a new network namespace and bind it to ``path`` (a new file).

    The namespace is made by a short-lived thread that unshares and bind-mounts
    its own ``/proc/thread-self/ns/net``; the thread then ends, so no daemon
    thread ever stays in the new namespace.  ``lo`` is brought up by the caller.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            unshare(CLONE_NEWNET)
            mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, "none", MS_BIND)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    t = threading.Thread(target=worker, name="cove-netns-create")
    t.start()
    t.join()
    if failure:
        try:
            os.unlink(path)
        except OSError:
            pass
        exc = failure[0]
        if isinstance(exc, OSError) and exc.errno == errno.EPERM:
            raise Unavailable("creating a network namespace needs root (CAP_SYS_ADMIN)") from exc
        raise CoveError(f"cannot create network namespace {path}: {exc}") from exc


def create_owned(path: str, userns_path: str, uid_map: list[list[int]], gid_map: list[list[int]]) -> None:
    """A new user namespace with these maps ([[inside, outside, count], ...]) bound at
    ``userns_path``, and a network namespace *it* owns bound at ``path`` (``--userns-remap``).

    A container's remapped root may mount ``/sys``, open raw sockets and bind ports below 1024
    only in a network namespace its own user namespace owns (dockerd has runc make it inside
    the container's; cove makes it first, so the network is wired before the container runs,
    and runc joins both).  A thread cannot enter a new user namespace, so a forked child
    unshares both at once (the user namespace first: it owns the other) and waits while the
    daemon writes its maps and binds its namespace files; then it exits.
    """
    for p in (path, userns_path):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.close(os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                                  # the child: no Python beyond these calls
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare(CLONE_NEWUSER | CLONE_NEWNET)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise CoveError("the child that makes the user namespace ended early (unshare refused)")
        for name, rows in (("uid_map", uid_map), ("gid_map", gid_map)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(f"{inside} {outside} {count}\n" for inside, outside, count in rows))
        mount(f"/proc/{pid}/ns/user", userns_path, "none", MS_BIND)
        mount(f"/proc/{pid}/ns/net", path, "none", MS_BIND)
    except BaseException as exc:
        for p in (path, userns_path):
            try:
                delete(p)
            except CoveError:
                pass
        if isinstance(exc, OSError):
            raise CoveError(f"cannot create the namespaces {path}, {userns_path}: {exc}") from exc
        raise
    finally:
        os.close(go_w)                            # EOF: the child exits
        os.close(ready_r)
        os.waitpid(pid, 0)


def delete(path: str) -> None:
    """Unmount and remove a bound namespace file; already gone counts as done."""
    try:
        umount2(path, MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise CoveError(f"cannot unmount network namespace {path}: {exc.strerror}") from exc
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def bound_paths(directory: str) -> set[str]:
    """The namespace files under ``directory`` that are live bind mounts."""
    prefix = directory.rstrip("/") + "/"
    found: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mount_point = line.split()[4]
                if mount_point.startswith(prefix):
                    found.add(mount_point)
    except OSError:
        pass
    return found


def mount_table(path: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    """(mount point, optional fields such as ``shared:3 master:1``) of each mount in ``path``."""
    out = []
    with open(path) as f:
        for line in f:
            left = line.partition(" - ")[0].split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), left[4])
            out.append((point, " ".join(left[6:])))
    return out


def _under(point: str, directory: str) -> bool:
    return point == directory or point.startswith(directory.rstrip("/") + "/")


def keep_private(directory: str) -> None:
    """Make ``directory`` (made if missing) a mount point of its own, private in the calling
    process's mount namespace: the namespace files bound under it propagate to no other
    namespace.  Once per directory and process; idempotent across restarts.

    A directory that holds binds but is no mount point (an older cove's) gets its binds back
    on top of the new mount point, through descriptors held across the switch."""
    directory = os.path.realpath(directory)
    if directory in _private:
        return
    with _private_lock:
        if directory in _private:
            return
        os.makedirs(directory, exist_ok=True)
        table = mount_table()
        try:
            if any(point == directory for point, _ in table):
                mount(None, directory, None, MS_PRIVATE | MS_REC)
            else:
                held: list[tuple[str, int]] = []
                try:
                    for point in sorted({p for p, _ in table if _under(p, directory)}, key=len, reverse=True):
                        held.append((point, os.open(point, os.O_RDONLY | os.O_CLOEXEC)))
                        umount2(point, MNT_DETACH)
                    mount(directory, directory, None, MS_BIND)
                    mount(None, directory, None, MS_PRIVATE)
                    for point, fd in reversed(held):
                        mount(f"/proc/self/fd/{fd}", point, "none", MS_BIND)
                finally:
                    for _, fd in held:
                        os.close(fd)
        except OSError as exc:
            raise CoveError(f"cannot make {directory} a private mount point: {exc}") from exc
        _private.add(directory)


def release_private(directory: str) -> None:
    """Undo :func:`keep_private` if no namespace is bound under ``directory`` any more."""
    directory = os.path.realpath(directory)
    with _private_lock:
        table = [p for p, _ in mount_table() if _under(p, directory)]
        if table.count(directory) and all(p == directory for p in table):
            try:
                umount2(directory, MNT_DETACH)
            except OSError:
                return
            _private.discard(directory)


def release_all() -> None:
    """:func:`release_private` of every directory this process made private (the daemon's end)."""
    for directory in sorted(_private):
        release_private(directory)


def root_shared(path: str = "/proc/self/mountinfo") -> bool:
    """Whether ``/`` is a shared mount here (systemd makes it so): then a slave namespace of
    this one sees what is mounted here later."""
    return any(point == "/" and "shared:" in optional for point, optional in mount_table(path))


def hide(directories: list[str] | tuple[str, ...]) -> bool:
    """In the calling process's own mount namespace (after ``unshare(CLONE_NEWNS)``): make every
    mount a slave (nothing done here reaches the namespace it was copied from, what is mounted
    there later still arrives), and detach the mounts at ``directories`` with all below them.
    True if no mount is left at or under any of them (they were private mount points)."""
    mount(None, "/", None, MS_REC | MS_SLAVE)
    dirs = [os.path.realpath(d) for d in directories]
    if not dirs:
        return True
    for d in dirs:
        try:
            umount2(d, MNT_DETACH)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise
    return not any(_under(point, d) for point, _ in mount_table() for d in dirs)
