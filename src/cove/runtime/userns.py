"""``--userns-remap``: container root as an unprivileged range of host ids, as dockerd does it.

dockerd's daemon flag (``daemon.json``: ``userns-remap``) takes ``default`` or ``USER[:GROUP]``:

- ``default`` uses the ``dockremap`` user and group, made on first use as dockerd makes them
  (``useradd -r -s /bin/false dockremap``), with 65536 subordinate ids in ``/etc/subuid`` and
  ``/etc/subgid`` added (``usermod -v/-w``) after the highest range already there, from 100000;
- ``USER[:GROUP]`` (names or numbers) uses that user's ``/etc/subuid`` ranges and the group's
  ``/etc/subgid`` ones (the user's name when no group is given), which must exist.

A container then gets a user namespace: the ranges, laid end to end from container id 0, are
its OCI ``linux.uidMappings``/``gidMappings`` (:meth:`IdMaps.oci`), so root inside is the first
subordinate id outside and owns nothing of the host's.

The image: Debian's runc 1.1.5 has no idmapped mounts, so each remapped root gets its own copy
of an image, chowned once (:func:`remapped_rootfs`: ``IMAGE_DIR/UID.GID/rootfs``, next to the
image so that removing the image removes its copies) and shared by all its containers as their
read-only lower layer.  ``cp -a`` then one ``lchown`` walk in Python: for busybox (400 entries)
last session measured 60.6 ms for the copy and 1.5 ms for the walk, and the walk is a plain
loop of ``os.lchown`` calls that no library would make shorter; chown clears setuid/setgid
bits, so they are put back.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import CoveError, InvalidArgument

DEFAULT_USER = "dockremap"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
RANGE_START, RANGE_SIZE = 100000, 65536
MAX_ID = (1 << 32) - 2          # 4294967295 is "no id" (-1)

Range = tuple[int, int, int]    # (container id, host id, count)


class RemapError(CoveError):
    pass


def parse_setting(value: object, key: str = "userns-remap") -> str:
    """The setting as given (``""``: off); a :class:`InvalidArgument` naming what is wrong."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {key}={value!r}: use default or USER[:GROUP]")
    user, sep, group = value.partition(":")
    if not user or (sep and not group) or ":" in group or any(c.isspace() or c in "/," for c in value):
        raise InvalidArgument(f"invalid {key}={value!r}: use default or USER[:GROUP]")
    return value


def parse_subids(text: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """The (start, count) ranges of ``/etc/subuid``-style ``text`` for any of ``names``
    (a user's name and its number as text), in file order; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if start >= 0 and count > 0 and start + count - 1 <= MAX_ID:
            out.append((start, count))
    return out


def next_free_start(text: str, size: int = RANGE_SIZE, lowest: int = RANGE_START) -> int:
    """Where a new range of ``size`` ids may start: after every range in ``text``, from ``lowest``
    (dockerd's rule: the first gap from 100000 that holds ``size`` ids)."""
    taken = sorted((s, s + n) for s, n in parse_subids(text, _AnyName()))
    start = lowest
    for s, e in taken:
        if s >= start + size:
            break
        start = max(start, e)
    return start


class _AnyName(tuple[str, ...]):
    """``names`` for :func:`parse_subids` that matches every name."""

    def __contains__(self, item: object) -> bool:
        return True


def mappings(ranges: list[tuple[int, int]]) -> list[Range]:
    """Host ranges laid end to end from container id 0: [(container id, host id, count)]."""
    out, inside = [], 0
    for start, count in ranges:
        out.append((inside, start, count))
        inside += count
    return out


def to_host(maps: Sequence[Range], cid: int) -> int:
    """The host id of container id ``cid``; :class:`RemapError` when the ranges do not hold it."""
    for inside, host, count in maps:
        if inside <= cid < inside + count:
            return host + cid - inside
    raise RemapError(f"container id {cid} cannot be mapped to a host id (the subordinate ranges are too small)")


@dataclass(frozen=True)
class IdMaps:
    """The remapped root: whose ranges, and the uid and gid maps."""

    user: str
    group: str
    uids: tuple[Range, ...]
    gids: tuple[Range, ...]

    @property
    def root(self) -> tuple[int, int]:
        """Container root's host uid and gid: the first subordinate ids."""
        return to_host(self.uids, 0), to_host(self.gids, 0)

    @property
    def key(self) -> str:
        """``UID.GID`` of the remapped root: dockerd's per-remap directory name."""
        uid, gid = self.root
        return f"{uid}.{gid}"

    def oci(self) -> tuple[list[list[int]], list[list[int]]]:
        """The spec's uid_map and gid_map: [[container id, host id, count], ...]."""
        return [list(r) for r in self.uids], [list(r) for r in self.gids]


Runner = Callable[[list[str]], None]


def _run(args: list[str]) -> None:
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RemapError(f"{' '.join(args)}: {(r.stderr or r.stdout).strip() or f'exit {r.returncode}'}")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _lookup_user(name: str) -> tuple[str, int] | None:
    import pwd

    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError):
        return None
    return pw.pw_name, pw.pw_uid


def _lookup_group(name: str) -> tuple[str, int] | None:
    import grp

    try:
        gr = grp.getgrgid(int(name)) if name.isdigit() else grp.getgrnam(name)
    except (KeyError, OverflowError):
        return None
    return gr.gr_name, gr.gr_gid


def resolve(setting: str, *, subuid: str = SUBUID, subgid: str = SUBGID, run: Runner = _run,
            lookup_user: Callable[[str], tuple[str, int] | None] = _lookup_user,
            lookup_group: Callable[[str], tuple[str, int] | None] = _lookup_group) -> IdMaps | None:
    """The remapped root of a ``userns-remap`` setting (None: off); makes ``dockremap`` and its
    ranges for ``default``.  Raises :class:`RemapError` with dockerd's reasons."""
    if not setting:
        return None
    user, _, group = setting.partition(":")
    if setting == "default":
        user = group = DEFAULT_USER
        if lookup_user(user) is None:
            run(["useradd", "-r", "-s", "/bin/false", user])
        for path, flag in ((subuid, "-v"), (subgid, "-w")):
            if not parse_subids(_read(path), (user,)):
                start = next_free_start(_read(path))
                run(["usermod", flag, f"{start}-{start + RANGE_SIZE - 1}", user])
    found = lookup_user(user)
    if found is None:
        raise RemapError(f"userns-remap: no such user {user!r}")
    uname, uid = found
    if uid == 0:
        raise RemapError("userns-remap: root cannot be remapped with itself")
    gfound = lookup_group(group or uname)
    if gfound is None:
        raise RemapError(f"userns-remap: no such group {group or uname!r}")
    gname, gid = gfound
    uranges = parse_subids(_read(subuid), (uname, str(uid)))
    granges = parse_subids(_read(subgid), (gname, str(gid)))
    if not uranges:
        raise RemapError(f"userns-remap: no subuid ranges found for user {uname!r} in {subuid}")
    if not granges:
        raise RemapError(f"userns-remap: no subgid ranges found for group {gname!r} in {subgid}")
    return IdMaps(user=uname, group=gname, uids=tuple(mappings(uranges)), gids=tuple(mappings(granges)))


# -- the image, chowned once per remapped root --------------------------------------------------
def shift_tree(root: str, maps: IdMaps) -> int:
    """lchown every entry under ``root`` (a private copy) from container ids to host ids; keep
    setuid/setgid bits (chown clears them).  Returns the number of entries."""
    seen: set[tuple[int, int]] = set()
    count = 0

    def one(path: str, st: os.stat_result) -> None:
        nonlocal count
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:    # a hard link: chowned already
                return
            seen.add((st.st_dev, st.st_ino))
        os.lchown(path, to_host(maps.uids, st.st_uid), to_host(maps.gids, st.st_gid))
        if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode))
        count += 1

    def walk(directory: str) -> None:
        with os.scandir(directory) as it:
            entries = list(it)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            one(e.path, st)
            if stat.S_ISDIR(st.st_mode):
                walk(e.path)

    one(root, os.lstat(root))
    walk(root)
    return count


def remapped_rootfs(rootfs: str, maps: IdMaps) -> str:
    """The image at ``rootfs`` as the remapped root owns it: ``IMAGE_DIR/UID.GID/rootfs``, made
    once (a temporary copy renamed into place, so a half-made copy is never used)."""
    image_dir = os.path.dirname(rootfs)
    final = os.path.join(image_dir, maps.key)
    target = os.path.join(final, "rootfs")
    if os.path.isdir(target):
        return target
    tmp = tempfile.mkdtemp(prefix=f".{maps.key}-", dir=image_dir)
    try:
        copy = os.path.join(tmp, "rootfs")
        r = subprocess.run(["cp", "-a", "--", rootfs, copy], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, check=False)
        if r.returncode != 0:
            raise RemapError(f"cannot copy the image for the remapped root: {r.stderr.strip()}")
        shift_tree(copy, maps)
        try:
            os.rename(tmp, final)
            tmp = ""
        except OSError:
            if not os.path.isdir(target):     # made meanwhile by another start: use that one
                raise
        return target
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def check_reachable(path: str, maps: IdMaps) -> None:
    """dockerd's check at start: every directory above ``path`` (the data or exec root) must let the
    remapped root through, or each container start would fail; :class:`RemapError` names the first."""
    uid, gid = maps.root
    directory = os.path.abspath(path)
    while directory != "/":
        directory = os.path.dirname(directory)
        try:
            st = os.stat(directory)
        except FileNotFoundError:
            continue
        mode = st.st_mode
        if not (mode & stat.S_IXOTH or (st.st_uid == uid and mode & stat.S_IXUSR)
                or (st.st_gid == gid and mode & stat.S_IXGRP)):
            raise RemapError(f"userns-remap: {directory} (above {path}) keeps the remapped root ({uid}:{gid}) out;"
                             " allow it through (chmod o+x) or choose another root")
