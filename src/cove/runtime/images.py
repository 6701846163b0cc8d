"""Images: root filesystems imported from tarballs, as ``docker import`` makes them.

Layout under the store's root (``/var/lib/cove/images``)::

    <hex id>/rootfs/      the extracted tree (the read-only lower layer of containers)
    <hex id>/image.json   {"id", "repo_tags", "created", "size", "config"}

The id is ``sha256:`` + the SHA-256 of the tarball (and of the ``--change``
config, if any).  Extraction refuses absolute names, ``..`` and anything that
would be written through a symlink leading out, so a hostile tarball cannot
touch files outside its own directory.  The
built-in image ``host`` has no root filesystem: its containers run on the
host's own ``/`` with only the ``/etc`` files private.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from ..errors import Conflict, Forbidden, InvalidArgument, NotFound

HOST_ID = "sha256:" + hashlib.sha256(b"cove built-in image: the host's root filesystem").hexdigest()


@dataclass
class Image:
    id: str
    repo_tags: list[str] = field(default_factory=list)
    created: float = 0.0
    size: int = 0
    rootfs: str | None = None
    config: dict[str, Any] = field(default_factory=dict)   # Docker's image Config: Cmd, Entrypoint, Env...


REPO_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                     r"|[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
CHANGE_KEYS = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "EXPOSE", "LABEL")


def parse_changes(changes: list[str]) -> dict[str, Any]:
    """Docker's ``import --change`` instructions, as an image Config dict.

    ``CMD``/``ENTRYPOINT`` in JSON-array or shell form, ``ENV K=V``/``ENV K V``,
    ``WORKDIR``, ``EXPOSE 80/tcp``, ``LABEL k=v``.
    """
    cfg: dict[str, Any] = {}
    for raw in changes:
        word, _, rest = raw.strip().partition(" ")
        key, rest = word.upper(), rest.strip()
        if key not in CHANGE_KEYS:
            raise InvalidArgument(f"invalid change {raw!r}: cove supports {', '.join(CHANGE_KEYS)}")
        if key in ("CMD", "ENTRYPOINT"):
            if rest.startswith("["):
                try:
                    argv = json.loads(rest)
                except ValueError:
                    raise InvalidArgument(f"invalid change {raw!r}: not a JSON array") from None
                if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                    raise InvalidArgument(f"invalid change {raw!r}: expected a JSON array of strings")
            else:
                argv = ["/bin/sh", "-c", rest]
            cfg["Cmd" if key == "CMD" else "Entrypoint"] = argv
        elif key == "ENV":
            k, sep, v = rest.partition("=")
            if not sep:
                k, _, v = rest.partition(" ")
            cfg.setdefault("Env", []).append(f"{k.strip()}={v.strip()}")
        elif key == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif key == "EXPOSE":
            for port in rest.split():
                cfg.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        else:
            k, _, v = rest.partition("=")
            cfg.setdefault("Labels", {})[k.strip()] = v.strip().strip('"')
    return cfg


def _check_name(repo: str, tag: str) -> None:
    if not REPO_RE.fullmatch(repo or ""):
        raise InvalidArgument(f"invalid reference format: repository name {repo!r} must be lowercase "
                              "letters, digits and separators (. _ - /)")
    if not TAG_RE.fullmatch(tag or ""):
        raise InvalidArgument(f"invalid reference format: tag {tag!r} must be 1 to 128 letters, digits, . _ -")


def normalise_ref(repo: str, tag: str | None = None) -> str:
    if tag:
        return f"{repo}:{tag}"
    last = repo.rsplit("/", 1)[-1]
    return repo if ":" in last else f"{repo}:latest"


def _safe_name(name: str) -> str:
    """A member name as a relative path; absolute names and ``..`` are refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or "\0" in name:
        raise InvalidArgument(f"invalid image tarball: member {name!r} points outside the root filesystem")
    return "/".join(parts)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


#: the default cap on what one import may unpack (``image-import-max-size``)
DEFAULT_MAX_SIZE = 16 << 30
#: what each member costs besides its data (a header block; an inode) when counting against the cap
MEMBER_COST = 512


class _Budget:
    """What an import may still unpack; :meth:`take` refuses a member that would pass the cap."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, m: tarfile.TarInfo) -> None:
        self.used += MEMBER_COST + (max(m.size, 0) if m.isfile() else 0)
        if self.limit and self.used > self.limit:
            raise InvalidArgument(
                f"invalid image tarball: it unpacks to more than {_human(self.limit)} (the daemon's "
                f"image-import-max-size; member {m.name!r} alone declares {_human(m.size)}): refused "
                "as a decompression bomb; raise image-import-max-size to import it")


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def _open_nofollow(path: str, directory: bool) -> int:
    """A descriptor on ``path`` itself, never on what a symlink there points to."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    return os.open(path, flags | (os.O_DIRECTORY if directory else 0))


def _apply_attrs(path: str, m: tarfile.TarInfo, as_root: bool) -> None:
    """Owner, mode and mtime from the tarball (owner only as root; a symlink keeps its mode).

    Applied through a descriptor opened with ``O_NOFOLLOW`` (directories and
    regular files), or with ``follow_symlinks=False`` after ``lstat`` showed the
    path is not a symlink (fifos and devices, which must not be opened): if a
    later member replaced a directory with a symlink, the change fails or
    reaches the symlink itself, never its target.
    """
    mode = stat.S_IMODE(m.mode)
    if m.isdir() or m.isfile():
        try:
            fd = _open_nofollow(path, m.isdir())
        except OSError:
            return                          # replaced since (a symlink now): not ours to change
        try:
            if as_root:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, mode)             # after chown, which clears set-id bits
            try:
                os.utime(fd, (m.mtime, m.mtime))
            except OSError:
                pass
        finally:
            os.close(fd)
        return
    st = os.lstat(path)
    if as_root:
        os.chown(path, m.uid, m.gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, mode)                # a fifo or device node we just made (lstat: no symlink)
    try:
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
    except OSError:
        pass


def extract(tar: tarfile.TarFile, dest: str, max_size: int = DEFAULT_MAX_SIZE, devices: bool = False) -> int:
    """Extract safely into ``dest``; return the size in bytes of regular files.

    Nothing is ever written outside ``dest`` and no metadata is applied
    outside it:

    - absolute names and ``..`` are refused, and so is any member (or hard link
      source) whose path goes through a symbolic link leading out of ``dest``;
    - owners, modes and mtimes are applied through descriptors opened with
      ``O_NOFOLLOW`` (or ``follow_symlinks=False``), so a directory's mode,
      applied last so that a read-only directory can still be filled, lands on
      that directory or nowhere: never on what a symlink a later member put in
      its place points to;
    - device nodes are refused unless ``devices`` (``cove import
      --allow-devices``): an image's ``/dev`` entries are ignored by
      containers anyway (they get a tmpfs ``/dev``), and a block device node
      is a key to the host's disks;
    - the unpacked size (regular files' declared sizes plus
      :data:`MEMBER_COST` per member) is capped at ``max_size`` bytes (0: no
      cap), checked from each header *before* its data is written, so a small
      compressed or sparse tarball cannot fill the disk.

    Python's extraction filters (``tarfile.data_filter``, 3.11.4+) do not fit
    an image's root filesystem: ``data`` and ``tar`` clear set-uid/set-gid and
    sticky bits (``/tmp`` is ``1777``, ``su`` is ``4755``) and ``data`` drops
    owners and refuses symlinks whose target is absolute (``/bin/sh ->
    /bin/busybox`` is normal inside an image), and this daemon's Python (3.11.2)
    predates them; hence this extractor.
    """
    size = 0
    dest = os.path.realpath(dest)
    as_root = os.geteuid() == 0
    budget = _Budget(max_size)
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    for m in tar:
        budget.take(m)
        name = _safe_name(m.name)
        if not name:
            continue
        if (m.ischr() or m.isblk()) and not devices:
            kind = "character" if m.ischr() else "block"
            raise InvalidArgument(f"invalid image tarball: member {m.name!r} is a {kind} device node "
                                  f"({m.devmajor}:{m.devminor}); device nodes are imported only when asked "
                                  "(cove import --allow-devices)")
        target = os.path.join(dest, name)
        parent = os.path.dirname(target)
        if not _inside(dest, os.path.realpath(parent)):
            raise InvalidArgument(f"invalid image tarball: member {m.name!r} would be written through a symlink")
        os.makedirs(parent, exist_ok=True)
        if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target) and not os.path.islink(target)):
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
        if m.isdir():
            os.makedirs(target, 0o700, exist_ok=True)
            dirs.append((target, m))
            continue
        if m.isfile():
            src = tar.extractfile(m)
            assert src is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out)
            size += m.size
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            source = os.path.join(dest, _safe_name(m.linkname))
            if not _inside(dest, os.path.realpath(os.path.dirname(source))) or not os.path.lexists(source):
                raise InvalidArgument(f"invalid image tarball: hard link {m.name!r} -> {m.linkname!r} "
                                      "points outside the root filesystem")
            os.link(source, target, follow_symlinks=False)
            continue                             # the source's attributes are the link's
        elif m.isfifo():
            os.mkfifo(target, 0o600)
        elif (m.ischr() or m.isblk()) and as_root:
            node_type = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(target, node_type | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            continue                             # devices without root, unknown types
        _apply_attrs(target, m, as_root)
    for target, m in reversed(dirs):
        if _inside(dest, os.path.realpath(os.path.dirname(target))):
            _apply_attrs(target, m, as_root)
    return size


class ImageStore:
    """The images under ``root``, plus the built-in ``host``."""

    def __init__(self, root: str, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.root = root
        self.max_size = max_size                 # image-import-max-size: the unpacked size cap (0: none)
        os.makedirs(root, mode=0o700, exist_ok=True)
        for name in os.listdir(root):            # an import or removal cut short
            if name.startswith((".import-", ".remove-")):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    def _meta_path(self, hexid: str) -> str:
        return os.path.join(self.root, hexid, "image.json")

    def _load(self, hexid: str) -> Image | None:
        try:
            with open(self._meta_path(hexid)) as f:
                d = json.load(f)
            return Image(id=d["id"], repo_tags=d.get("repo_tags", []), created=d.get("created", 0.0),
                         size=d.get("size", 0), rootfs=os.path.join(self.root, hexid, "rootfs"),
                         config=d.get("config", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, img: Image, directory: str | None = None) -> None:
        """Write ``image.json`` atomically (into ``directory``, or the image's own)."""
        path = os.path.join(directory, "image.json") if directory else self._meta_path(img.id.split(":", 1)[1])
        d = asdict(img)
        d.pop("rootfs")
        with open(path + ".tmp", "w") as f:
            json.dump(d, f)
        os.replace(path + ".tmp", path)

    def host_image(self) -> Image:
        return Image(id=HOST_ID, repo_tags=["host:latest"], created=0.0, size=0, rootfs=None)

    def list(self) -> list[Image]:
        """The built-in ``host`` image first, then the imported ones, newest first."""
        found = [img for hexid in os.listdir(self.root) if (img := self._load(hexid)) is not None]
        return [self.host_image(), *sorted(found, key=lambda i: (-i.created, i.id))]

    def get(self, ref: str) -> Image:
        """By ``name`` (``:latest``), ``name:tag``, full id with or without ``sha256:``, or a unique id prefix."""
        if not ref:
            raise InvalidArgument("invalid image: an image name is required")
        want = ref if ref.startswith("sha256:") else normalise_ref(ref)
        images = self.list()
        for img in images:
            if want in img.repo_tags or img.id == ref or img.id == f"sha256:{ref}":
                return img
        hexref = ref.removeprefix("sha256:")
        if hexref and all(c in "0123456789abcdef" for c in hexref):
            hits = [i for i in images if i.id.removeprefix("sha256:").startswith(hexref)]
            if len(hits) == 1:
                return hits[0]
        raise NotFound(f"No such image: {want}")

    def import_tar(self, stream: BinaryIO, repo: str, tag: str = "latest", changes: builtins.list[str] | None = None,
                   devices: bool = False) -> Image:
        """Import a root filesystem tarball (``docker import``) and name it ``repo:tag`` (none if repo is "").

        The tarball is extracted into a temporary directory that is renamed
        into place with its metadata, so the store never shows half an image,
        and a refused tarball (see :func:`extract`) leaves nothing behind.
        ``devices``: keep device nodes (refused otherwise).
        """
        tag = tag or "latest"
        if repo:
            _check_name(repo, tag)
        config = parse_changes(list(changes or []))
        tmpdir = tempfile.mkdtemp(prefix=".import-", dir=self.root)
        try:
            raw = os.path.join(tmpdir, "layer.tar")
            h = hashlib.sha256()
            with open(raw, "wb") as f:
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
            if config:
                h.update(json.dumps(config, sort_keys=True).encode())
            if devices:
                h.update(b"\0cove: device nodes kept")
            hexid = h.hexdigest()
            img = self._load(hexid)
            if img is None:
                rootfs = os.path.join(tmpdir, "rootfs")
                os.mkdir(rootfs, 0o755)
                try:
                    with tarfile.open(raw) as tar:
                        size = extract(tar, rootfs, self.max_size, devices)
                except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
                    raise InvalidArgument(f"invalid image tarball: {exc or type(exc).__name__}") from None
                os.unlink(raw)
                final = os.path.join(self.root, hexid)
                img = Image(id=f"sha256:{hexid}", created=time.time(), size=size,
                            rootfs=os.path.join(final, "rootfs"), config=config)
                self._save(img, tmpdir)
                if os.path.exists(final) and self._load(hexid) is None:
                    shutil.rmtree(final)                 # a leftover without metadata
                try:
                    os.rename(tmpdir, final)
                    tmpdir = ""
                except OSError:
                    img = self._load(hexid)              # imported meanwhile by someone else
                    if img is None:
                        raise
            if repo:
                self.tag(img.id, repo, tag)
                img = self.get(img.id)
            return img
        finally:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)

    def tag(self, ref: str, repo: str, tag: str = "latest") -> None:
        """Give the image ``ref`` the name ``repo:tag``, taking it from any other image."""
        img = self.get(ref)
        if img.id == HOST_ID:
            raise Forbidden("the built-in image host cannot be tagged")
        _check_name(repo, tag)
        name = normalise_ref(repo, tag)
        if name in self.host_image().repo_tags:
            raise Conflict(f"the name {name} belongs to the built-in image host")
        for other in self.list()[1:]:
            if other.id != img.id and name in other.repo_tags:
                other.repo_tags.remove(name)
                self._save(other)
        if name not in img.repo_tags:
            img.repo_tags.append(name)
            self._save(img)

    def remove(self, ref: str, force: bool = False) -> builtins.list[str]:
        """Untag ``ref``; delete the image once no name is left.  Returns what was untagged/deleted.

        By id, an image with several names is deleted only with ``force`` (as
        Docker).  Whether containers still use it is the caller's to check.
        """
        img = self.get(ref)
        if img.id == HOST_ID:
            raise Forbidden("the built-in image host cannot be removed")
        name = "" if ref.startswith("sha256:") else normalise_ref(ref)
        if name in img.repo_tags and len(img.repo_tags) > 1:
            img.repo_tags.remove(name)
            self._save(img)
            return [name]
        if len(img.repo_tags) > 1 and not force:
            short = img.id.removeprefix("sha256:")[:12]
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is referenced in "
                           "multiple repositories")
        hexid = img.id.split(":", 1)[1]
        doomed = os.path.join(self.root, f".remove-{hexid}")
        os.rename(os.path.join(self.root, hexid), doomed)     # gone from list() at once
        shutil.rmtree(doomed, ignore_errors=True)
        return [*img.repo_tags, img.id]
