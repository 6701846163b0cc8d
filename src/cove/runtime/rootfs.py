"""The container's root filesystem, built by its init inside its own mount namespace.

:func:`build` runs in the init process after ``unshare(CLONE_NEWNS)``, so every
mount here lives and dies with the container and none shows in the host's
mount table:

- the root: an overlay (the image read-only below, ``upper``/``work`` in the
  data dir) on ``STATE_DIR/rootfs``; for the built-in ``host`` image a recursive
  bind of the host's ``/`` with an overlay on ``/etc`` only, so the container
  may replace its ``/etc`` files without ever writing to the host's;
- a fresh ``/proc`` (the new PID namespace), a fresh read-only ``/sys`` (its
  ``class/net`` lists the joined network namespace's interfaces), a small tmpfs
  ``/dev`` with the usual nodes bound from the host, ``/dev/pts`` (a devpts
  instance of its own) and ``/dev/shm``;
- ``pivot_root`` into it (the host's tree is detached), then the caller's
  ``/etc`` files bound over the image's.  The binds are cloned before the pivot
  and attached after it (``open_tree``/``move_mount``), so a symlink in the
  image resolves inside the container and can never lead a mount or a new file
  onto the host.

Mounts are made slaves of the host's (as runc does): nothing propagates from
the container to the host, while the host's unmounts still reach the copy.
"""

from __future__ import annotations

import ctypes
import os
import re

from ..kernel import syscalls as sc
from .spec import ContainerSpec

# The new mount API (Linux 5.2): a bind made before the pivot, attached after it.
# Numbers 424+ are the same on every architecture.
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429
_AT_FDCWD = -100
_OPEN_TREE_CLONE = 1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_libc = ctypes.CDLL(None, use_errno=True)

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))


def merged_dir(spec: ContainerSpec) -> str:
    return os.path.join(spec.state_dir, "rootfs")


def _touch(path: str) -> None:
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass


def _opt(path: str) -> str:
    """A path as an overlay mount option value: commas and colons would split it."""
    if any(c in path for c in ",:\\"):
        raise ValueError(f"overlay path {path!r} must not contain ',', ':' or '\\'")
    return path


def _overlay(lower: str, target: str, data_dir: str) -> None:
    upper, work = os.path.join(data_dir, "upper"), os.path.join(data_dir, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    sc.mount("overlay", target, "overlay", 0,
             f"lowerdir={_opt(lower)},upperdir={_opt(upper)},workdir={_opt(work)}")


def mount_points() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount this process sees."""
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        left, _, right = line.partition(" - ")
        # mountinfo escapes space, tab, newline and backslash as octal (\\040)
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), left.split()[4])
        out.append((point, right.split()[0]))
    return out


def _drop_namespace_files(root: str) -> None:
    """Unmount the namespace files (``/run/netns/*``) the bind of ``/`` copied in:
    held here, they would keep other containers' namespaces alive."""
    points = [p for p, fstype in mount_points() if fstype == "nsfs" and p.startswith(root + "/")]
    for point in sorted(points, key=len, reverse=True):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass


def _mount_dev(dev: str) -> None:
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID, "mode=755,size=65536k")
    for node in DEV_NODES:
        target = os.path.join(dev, node)
        _touch(target)
        sc.mount(f"/dev/{node}", target, None, sc.MS_BIND)
    pts = os.path.join(dev, "pts")
    os.makedirs(pts)
    sc.mount("devpts", pts, "devpts", sc.MS_NOSUID | sc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    shm = os.path.join(dev, "shm")
    os.makedirs(shm)
    sc.mount("shm", shm, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=1777,size=65536k")
    for name, target in DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))


def _clone_file(path: str) -> int:
    """A detached bind mount of ``path`` (``open_tree(OPEN_TREE_CLONE)``), as a descriptor."""
    fd = _libc.syscall(_SYS_OPEN_TREE, ctypes.c_int(_AT_FDCWD), path.encode(),
                       ctypes.c_uint(_OPEN_TREE_CLONE | os.O_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return int(fd)


def _attach(fd: int, target: str) -> None:
    rc = _libc.syscall(_SYS_MOVE_MOUNT, ctypes.c_int(fd), b"", ctypes.c_int(_AT_FDCWD), target.encode(),
                       ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _bind_etc_files(spec: ContainerSpec, sources: dict[str, int]) -> None:
    """After the pivot: attach each detached bind (made before it) over its container path."""
    for target, fd in sorted(sources.items()):
        dest = "/" + target.lstrip("/")
        # In the host image only /etc is the container's own (an overlay): elsewhere
        # a missing file would have to be created on the host's disk.
        own = spec.rootfs is not None or dest.startswith("/etc/")
        if own and os.path.islink(dest):
            os.unlink(dest)
        if not os.path.exists(dest):
            if not own:
                raise FileNotFoundError(f"{dest} does not exist in the host image")
            _touch(dest)
        _attach(fd, dest)
        os.close(fd)


def build(spec: ContainerSpec) -> None:
    """Mount the container's root and ``pivot_root`` into it (current process, own mount ns)."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    sources = {target: _clone_file(source) for target, source in spec.etc_files.items()}
    root = merged_dir(spec)
    os.makedirs(root, exist_ok=True)
    if spec.rootfs is None:
        sc.mount("/", root, None, sc.MS_BIND | sc.MS_REC)
        _drop_namespace_files(root)
        _overlay("/etc", os.path.join(root, "etc"), spec.data_dir)
    else:
        _overlay(spec.rootfs, root, spec.data_dir)
        for d in ("proc", "sys", "dev"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
    sc.mount("proc", os.path.join(root, "proc"), "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sc.mount("sysfs", os.path.join(root, "sys"), "sysfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY)
    _mount_dev(os.path.join(root, "dev"))
    os.chdir(root)
    sc.pivot_root(".", ".")                      # the old root ends up stacked on "/"...
    sc.umount2(".", sc.MNT_DETACH)               # ...and is detached from the container
    os.chdir("/")
    _bind_etc_files(spec, sources)


def enter_workdir(spec: ContainerSpec) -> None:
    """chdir to the working directory, creating it in an image (as Docker does)."""
    wd = spec.workdir or "/"
    try:
        os.chdir(wd)
    except FileNotFoundError:
        if spec.rootfs is None:
            raise FileNotFoundError(f"working directory {wd} does not exist in the host image") from None
        os.makedirs(wd, 0o755, exist_ok=True)
        os.chdir(wd)
