"""The image store: importing rootfs tarballs, names and ids, and refusing hostile tarballs."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from cove.errors import Conflict, Forbidden, InvalidArgument, NotFound
from cove.runtime.images import HOST_ID, ImageStore


def member(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, kind: bytes = tarfile.REGTYPE,
           link: str = "", mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid, info.mtime = kind, link, mode, uid, gid, mtime
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def tarball(*members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            member(tar, **m)
    return buf.getvalue()


def rootfs_tar() -> bytes:
    return tarball(
        {"name": "bin", "kind": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "bin/tool", "data": b"#!/bin/sh\necho hi\n", "mode": 0o4755, "uid": 1234, "gid": 2345},
        {"name": "bin/sh", "kind": tarfile.SYMTYPE, "link": "tool"},
        {"name": "bin/abs", "kind": tarfile.SYMTYPE, "link": "/bin/tool"},
        {"name": "bin/hard", "kind": tarfile.LNKTYPE, "link": "bin/tool"},
        {"name": "./etc/", "kind": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n", "mode": 0o600},
        {"name": "locked", "kind": tarfile.DIRTYPE, "mode": 0o500},
        {"name": "locked/inside", "data": b"x", "mode": 0o444},
    )


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "images"))


def test_import_keeps_files_symlinks_modes_and_owners(store: ImageStore) -> None:
    data = rootfs_tar()
    img = store.import_tar(io.BytesIO(data), "tools", "v1")
    assert img.id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert img.repo_tags == ["tools:v1"]
    assert img.rootfs is not None
    root = Path(img.rootfs)
    assert (root / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.readlink(root / "bin/sh") == "tool"
    assert os.readlink(root / "bin/abs") == "/bin/tool"     # kept as is: it resolves inside the container
    assert (root / "bin/hard").stat().st_ino == (root / "bin/tool").stat().st_ino
    st = (root / "bin/tool").stat()
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert st.st_mtime == 1_600_000_000
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert stat.S_IMODE((root / "etc/passwd").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "locked").stat().st_mode) == 0o500   # applied after its content
    assert (root / "locked/inside").read_bytes() == b"x"
    assert img.size == len(b"#!/bin/sh\necho hi\n") + len(b"root:x:0:0::/root:/bin/sh\n") + 1
    assert not [n for n in os.listdir(store.root) if n.startswith(".")]


def test_metadata_survives_a_new_store(store: ImageStore) -> None:
    img = store.import_tar(io.BytesIO(rootfs_tar()), "tools")
    again = ImageStore(store.root).get("tools")
    assert (again.id, again.repo_tags, again.size, again.rootfs) == (img.id, ["tools:latest"], img.size, img.rootfs)
    assert again.created == pytest.approx(img.created)


def test_get_by_name_tag_id_and_prefix(store: ImageStore) -> None:
    img = store.import_tar(io.BytesIO(rootfs_tar()), "tools")
    hexid = img.id.removeprefix("sha256:")
    for ref in ("tools", "tools:latest", img.id, hexid, hexid[:12], "sha256:" + hexid[:12]):
        assert store.get(ref).id == img.id, ref
    with pytest.raises(NotFound, match=r"^No such image: tools:v9$"):
        store.get("tools:v9")
    with pytest.raises(NotFound, match=r"^No such image: nosuch:latest$"):
        store.get("nosuch")


def test_ambiguous_prefix_is_not_found(store: ImageStore) -> None:
    a = store.import_tar(io.BytesIO(tarball({"name": "a", "data": b"a"})), "a")
    b = store.import_tar(io.BytesIO(tarball({"name": "b", "data": b"b"})), "b")
    common = os.path.commonprefix([a.id, b.id])
    if len(common) > len("sha256:"):
        with pytest.raises(NotFound):
            store.get(common)
    assert {i.id for i in store.list()} == {HOST_ID, a.id, b.id}


def test_host_image_is_built_in_and_cannot_be_removed(store: ImageStore) -> None:
    host = store.get("host")
    assert host.rootfs is None and host.id == HOST_ID
    assert store.list()[0].id == HOST_ID
    with pytest.raises(Forbidden):
        store.remove("host")
    with pytest.raises(Forbidden):
        store.tag("host", "myhost")
    img = store.import_tar(io.BytesIO(rootfs_tar()), "")
    with pytest.raises(Conflict):
        store.tag(img.id, "host")
    assert store.get("host").id == HOST_ID


def test_tag_moves_a_name_and_remove_untags_before_deleting(store: ImageStore) -> None:
    a = store.import_tar(io.BytesIO(rootfs_tar()), "tools")
    b = store.import_tar(io.BytesIO(tarball({"name": "x", "data": b"x"})), "other")
    store.tag("other", "tools")                          # the name moves from a to b
    assert store.get("tools").id == b.id
    assert store.get(a.id).repo_tags == []
    store.tag(b.id, "extra", "1.0")
    assert sorted(store.get(b.id).repo_tags) == ["extra:1.0", "other:latest", "tools:latest"]
    assert store.remove("extra:1.0") == ["extra:1.0"]    # one name of several: untag only
    assert b.rootfs is not None and os.path.isdir(b.rootfs)
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(b.id)                               # by id, still two names
    removed = store.remove(b.id, force=True)
    assert b.id in removed
    assert not os.path.exists(b.rootfs)
    with pytest.raises(NotFound):
        store.get("other")
    store.remove(a.id)                                   # untagged: deleted
    assert [i.id for i in store.list()] == [HOST_ID]


def test_names_are_checked(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="repository name"):
        store.import_tar(io.BytesIO(rootfs_tar()), "Tools")
    with pytest.raises(InvalidArgument, match="tag"):
        store.import_tar(io.BytesIO(rootfs_tar()), "tools", "bad tag")
    assert [i.id for i in store.list()] == [HOST_ID]


def test_reimport_reuses_the_image(store: ImageStore) -> None:
    a = store.import_tar(io.BytesIO(rootfs_tar()), "one")
    b = store.import_tar(io.BytesIO(rootfs_tar()), "two")
    assert a.id == b.id
    assert sorted(b.repo_tags) == ["one:latest", "two:latest"]


HOSTILE = {
    "dotdot": [{"name": "../escaped", "data": b"x"}],
    "nested dotdot": [{"name": "bin/../../escaped", "data": b"x"}],
    "absolute": [{"name": "/escaped", "data": b"x"}],
    "through a symlink": [{"name": "out", "kind": tarfile.SYMTYPE, "link": "{outside}"},
                          {"name": "out/escaped", "data": b"x"}],
    "through a relative symlink": [{"name": "up", "kind": tarfile.SYMTYPE, "link": "../../.."},
                                   {"name": "up/escaped", "data": b"x"}],
    "hard link out": [{"name": "escaped", "kind": tarfile.LNKTYPE, "link": "../../victim"}],
    "hard link via symlink": [{"name": "out", "kind": tarfile.SYMTYPE, "link": "{outside}"},
                              {"name": "stolen", "kind": tarfile.LNKTYPE, "link": "out/victim"}],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tarballs_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("keep")
    victim.chmod(0o600)
    store = ImageStore(str(tmp_path / "images"))
    members = [{k: (v.format(outside=outside) if isinstance(v, str) else v) for k, v in m.items()}
               for m in HOSTILE[case]]
    with pytest.raises(InvalidArgument, match="invalid image tarball"):
        store.import_tar(io.BytesIO(tarball(*members)), "evil")
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert victim.read_text() == "keep" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.stat().st_nlink == 1
    assert not (tmp_path / "escaped").exists() and not Path("/escaped").exists()
    assert os.listdir(store.root) == []
    assert [i.id for i in store.list()] == [HOST_ID]


def test_not_a_tarball(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="invalid image tarball"):
        store.import_tar(io.BytesIO(b"this is not a tar file" * 100), "junk")
    assert os.listdir(store.root) == []


# -- issue 13: metadata never follows a link, device nodes, the size cap ---------------------

def test_directory_mode_never_lands_on_a_symlink_target(tmp_path: Path) -> None:
    """A directory's mode is applied last; a later member replacing the directory by a symlink
    to a host file must not hand the file that mode (it became -rwsrwxrwx by path).
    Fails with ``os.chmod(path, mode)`` (by path, following links) in ``_apply_attrs``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("keep")
    victim.chmod(0o600)
    store = ImageStore(str(tmp_path / "images"))
    data = tarball({"name": "d", "kind": tarfile.DIRTYPE, "mode": 0o6777},
                   {"name": "d", "kind": tarfile.SYMTYPE, "link": str(victim)})
    img = store.import_tar(io.BytesIO(data), "evil")
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert os.readlink(Path(img.rootfs or "") / "d") == str(victim)


def test_device_nodes_are_refused_unless_asked(tmp_path: Path) -> None:
    store = ImageStore(str(tmp_path / "images"))
    data = tarball({"name": "dev", "kind": tarfile.DIRTYPE, "mode": 0o755},
                   {"name": "dev/vda", "kind": tarfile.BLKTYPE, "mode": 0o600})
    with pytest.raises(InvalidArgument, match="'dev/vda' is a block device node.*--allow-devices"):
        store.import_tar(io.BytesIO(data), "disk")
    assert os.listdir(store.root) == []
    img = store.import_tar(io.BytesIO(data), "disk", devices=True)
    assert img.id != "sha256:" + hashlib.sha256(data).hexdigest()      # asked for: another image
    kept = Path(img.rootfs or "") / "dev" / "vda"
    assert stat.S_ISBLK(kept.lstat().st_mode) == (os.geteuid() == 0)


def test_unpacked_size_is_capped_before_anything_is_written(tmp_path: Path) -> None:
    import bz2
    store = ImageStore(str(tmp_path / "images"), max_size=1 << 20)
    bomb = bz2.compress(tarball({"name": "zeros", "data": bytes(2 << 20)}))
    assert len(bomb) < 1000
    with pytest.raises(InvalidArgument, match=r"more than 1 MiB .*image-import-max-size.*'zeros'"):
        store.import_tar(io.BytesIO(bomb), "bomb")
    assert os.listdir(store.root) == []
    many = tarball(*({"name": f"f{i}", "data": bytes(100 << 10)} for i in range(12)))   # 1.2 MiB in all
    with pytest.raises(InvalidArgument, match="image-import-max-size"):
        store.import_tar(io.BytesIO(many), "many")
    assert os.listdir(store.root) == []
    assert store.import_tar(io.BytesIO(tarball({"name": "small", "data": bytes(1000)})), "ok").size == 1000
    unlimited = ImageStore(str(tmp_path / "images2"), max_size=0)
    assert unlimited.import_tar(io.BytesIO(bz2.decompress(bomb)), "big").size == 2 << 20
