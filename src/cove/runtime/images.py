"""Images: root filesystems imported from tarballs, as ``docker import`` makes them.

Layout under the store's root (``/var/lib/cove/images``)::

    <hex id>/rootfs/      the extracted tree (the read-only lower layer of containers)
    <hex id>/image.json   {"id", "repo_tags", "created", "size"}

The id is ``sha256:`` + the SHA-256 of the tarball.  Extraction refuses
absolute names, ``..`` and anything that would be written through a symlink,
so a hostile tarball cannot touch files outside its own directory.  The
built-in image ``host`` has no root filesystem: its containers run on the
host's own ``/`` with only the ``/etc`` files private.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
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


def normalise_ref(repo: str, tag: str | None = None) -> str:
    if tag:
        return f"{repo}:{tag}"
    last = repo.rsplit("/", 1)[-1]
    return repo if ":" in last else f"{repo}:latest"


def _safe_name(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"invalid image tarball: member {name!r} points outside the root filesystem")
    return "/".join(parts)


def extract(tar: tarfile.TarFile, dest: str) -> int:
    """Extract safely into ``dest``; return the size in bytes of regular files."""
    size = 0
    dest = os.path.realpath(dest)
    as_root = os.geteuid() == 0
    for m in tar:
        name = _safe_name(m.name)
        if not name:
            continue
        target = os.path.join(dest, name)
        parent = os.path.dirname(target)
        if not os.path.realpath(parent).startswith(dest):
            raise InvalidArgument(f"invalid image tarball: member {m.name!r} would be written through a symlink")
        os.makedirs(parent, exist_ok=True)
        if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)):
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
        if m.isdir():
            os.makedirs(target, exist_ok=True)
        elif m.isfile():
            src = tar.extractfile(m)
            assert src is not None
            with open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            size += m.size
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            link = os.path.join(dest, _safe_name(m.linkname))
            os.link(link, target)
        elif (m.ischr() or m.isblk() or m.isfifo()) and as_root:
            mode = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}[m.type]
            os.mknod(target, mode | m.mode, os.makedev(m.devmajor, m.devminor))
        else:
            continue
        if not m.issym():
            if as_root:
                os.lchown(target, m.uid, m.gid)
            os.chmod(target, m.mode)
    return size


class ImageStore:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)

    def _meta_path(self, hexid: str) -> str:
        return os.path.join(self.root, hexid, "image.json")

    def _load(self, hexid: str) -> Image | None:
        try:
            with open(self._meta_path(hexid)) as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        return Image(id=d["id"], repo_tags=d.get("repo_tags", []), created=d.get("created", 0.0),
                     size=d.get("size", 0), rootfs=os.path.join(self.root, hexid, "rootfs"),
                     config=d.get("config", {}))

    def _save(self, img: Image) -> None:
        hexid = img.id.split(":", 1)[1]
        tmp = self._meta_path(hexid) + ".tmp"
        d = asdict(img)
        d.pop("rootfs")
        with open(tmp, "w") as f:
            json.dump(d, f)
        os.replace(tmp, self._meta_path(hexid))

    def host_image(self) -> Image:
        return Image(id=HOST_ID, repo_tags=["host:latest"], created=0.0, size=0, rootfs=None)

    def list(self) -> list[Image]:
        out = [self.host_image()]
        for hexid in sorted(os.listdir(self.root)):
            img = self._load(hexid)
            if img is not None:
                out.append(img)
        return out

    def get(self, ref: str) -> Image:
        if not ref:
            raise InvalidArgument("invalid image: an image name is required")
        want = normalise_ref(ref) if not ref.startswith("sha256:") else ref
        images = self.list()
        for img in images:
            if img.id == ref or img.id == f"sha256:{ref}" or want in img.repo_tags:
                return img
        hexref = ref.removeprefix("sha256:")
        if all(c in "0123456789abcdef" for c in hexref) and len(hexref) >= 4:
            hits = [i for i in images if i.id.removeprefix("sha256:").startswith(hexref)]
            if len(hits) == 1:
                return hits[0]
        raise NotFound(f"No such image: {want}")

    def import_tar(self, stream: BinaryIO, repo: str, tag: str = "latest", changes: list[str] | None = None) -> Image:
        tmpdir = tempfile.mkdtemp(prefix=".import-", dir=self.root)
        try:
            raw = os.path.join(tmpdir, "layer.tar")
            h = hashlib.sha256()
            with open(raw, "wb") as f:
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
            config = parse_changes(list(changes or []))
            if config:
                h.update(json.dumps(config, sort_keys=True).encode())
            image_id = "sha256:" + h.hexdigest()
            rootfs = os.path.join(tmpdir, "rootfs")
            os.makedirs(rootfs)
            try:
                with tarfile.open(raw) as tar:
                    size = extract(tar, rootfs)
            except tarfile.TarError as exc:
                raise InvalidArgument(f"invalid image tarball: {exc}") from None
            os.unlink(raw)
            hexid = h.hexdigest()
            final = os.path.join(self.root, hexid)
            existing = self._load(hexid)
            if existing is None:
                img = Image(id=image_id, created=time.time(), size=size, rootfs=os.path.join(final, "rootfs"),
                            config=config)
                if os.path.exists(final):
                    shutil.rmtree(final)
                os.rename(tmpdir, final)
                tmpdir = ""
            else:
                img = existing
            self._save(img)
            if repo:
                self.tag(img.id, repo, tag)
                img = self.get(img.id)
            return img
        finally:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)

    def tag(self, ref: str, repo: str, tag: str = "latest") -> None:
        img = self.get(ref)
        if img.id == HOST_ID:
            raise Forbidden("the built-in image host cannot be tagged")
        if not repo or any(c in repo for c in " \t\n") or repo != repo.lower():
            raise InvalidArgument(f"invalid reference format: repository name {repo!r} must be lowercase")
        name = normalise_ref(repo, tag)
        for other in self.list():
            if other.id != img.id and name in other.repo_tags and other.id != HOST_ID:
                other.repo_tags.remove(name)
                self._save(other)
            elif other.id == HOST_ID and name in other.repo_tags:
                raise Conflict("the name host:latest belongs to the built-in image")
        if name not in img.repo_tags:
            img.repo_tags.append(name)
            self._save(img)

    def remove(self, ref: str, force: bool = False) -> list[str]:
        img = self.get(ref)
        if img.id == HOST_ID:
            raise Forbidden("the built-in image host cannot be removed")
        name = normalise_ref(ref) if not ref.startswith("sha256:") else ""
        if name in img.repo_tags and len(img.repo_tags) > 1 and not force:
            img.repo_tags.remove(name)
            self._save(img)
            return [name]
        shutil.rmtree(os.path.join(self.root, img.id.split(":", 1)[1]), ignore_errors=True)
        return list(img.repo_tags) or [img.id]
