"""The container's root filesystem, mounted by its shim inside the shim's own mount namespace.

:func:`prepare` runs in the shim (:mod:`cove.runtime.shim`) after
``unshare(CLONE_NEWNS)``, so the mounts live and die with the shim and none shows
in the host's mount table.  It first makes that namespace a slave of the one it was
copied from and detaches the daemon's namespace binds (``spec.hidden``,
:func:`cove.kernel.netns.hide`; the zygote's namespace has none already), so runc's
copy of it holds no other container's namespace.

It mounts the root on ``STATE_DIR/rootfs``: an overlay (the image read-only below,
``upper``/``work`` in the data dir), ``nodev`` so a device node made in it opens
nothing; for the built-in ``host`` image a recursive bind of the host's ``/`` with an
overlay on ``/etc`` only, so the container may replace its ``/etc`` files without ever
writing to the host's.

runc then builds the rest inside the container's own mount namespace: ``/proc``,
``/sys``, ``/dev`` and the caller's ``/etc`` files bound over the image's (runc
resolves the targets inside the root, so a symlink in the image cannot lead a
mount onto the host), and pivots into it.
"""

from __future__ import annotations

import os
import re
import sys

from ..kernel import netns
from ..kernel import syscalls as sc
from .spec import ContainerSpec


def merged_dir(spec: ContainerSpec) -> str:
    return os.path.join(spec.state_dir, "rootfs")


def _opt(path: str) -> str:
    """A path as an overlay mount option value: commas and colons would split it."""
    if any(c in path for c in ",:\\"):
        raise ValueError(f"overlay path {path!r} must not contain ',', ':' or '\\'")
    return path


def _overlay(lower: str, target: str, data_dir: str, owner: tuple[int, int] | None = None) -> None:
    upper, work = os.path.join(data_dir, "upper"), os.path.join(data_dir, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    if owner is not None:               # the merged root is the upper dir's: the remapped root's
        st = os.stat(lower)
        os.chown(upper, *owner)
        os.chmod(upper, st.st_mode & 0o7777)
    sc.mount("overlay", target, "overlay", sc.MS_NODEV,
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
    """Unmount the namespace files (``/run/netns/*``: not cove's own, which the shim's namespace
    lacks) the bind of ``/`` copied in: held here, they would keep those namespaces alive."""
    points = [p for p, fstype in mount_points() if fstype == "nsfs" and p.startswith(root + "/")]
    for point in sorted(points, key=len, reverse=True):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass


def prepare(spec: ContainerSpec) -> str:
    """Mount the container's root (current process, own mount namespace); return its path."""
    if not netns.hide(spec.hidden):           # rslave, then the other containers' namespace binds go
        print(f"cove shim: namespace binds under {spec.hidden} are still mounted here", file=sys.stderr)
    root = merged_dir(spec)
    os.makedirs(root, exist_ok=True)
    if spec.rootfs is None:
        sc.mount("/", root, None, sc.MS_BIND | sc.MS_REC)
        _drop_namespace_files(root)
        _overlay("/etc", os.path.join(root, "etc"), spec.data_dir)
    else:
        owner = (spec.uid_map[0][1], spec.gid_map[0][1]) if spec.uid_map and spec.gid_map else None
        _overlay(spec.rootfs, root, spec.data_dir, owner)
    return root
