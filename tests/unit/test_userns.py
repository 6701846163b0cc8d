"""``--userns-remap``: the subordinate id files, the remapped root, the OCI mapping, the chowned
image copy, and the engine's rules (dockerd's), without a kernel."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cove.daemon import schema
from cove.daemon.settings import SettingsError, load
from cove.errors import InvalidArgument
from cove.model import ContainerConfig, HostConfig
from cove.runtime import profile, userns
from cove.runtime.userns import IdMaps, RemapError

from .enginefakes import Rig

MAPS = IdMaps(user="dockremap", group="dockremap", uids=((0, 100000, 65536),), gids=((0, 100000, 65536),))


# -- /etc/subuid and /etc/subgid -------------------------------------------------------------------
def test_subids_are_read_by_name_or_number_in_file_order() -> None:
    text = "# a comment\nalice:100000:65536\nbob:165536:65536\nalice:300000:10\n1001:400000:5\nbroken\nalice:x:1\n"
    assert userns.parse_subids(text, ("alice",)) == [(100000, 65536), (300000, 10)]
    assert userns.parse_subids(text, ("carol", "1001")) == [(400000, 5)]
    assert userns.parse_subids(text, ("nobody",)) == []
    assert userns.parse_subids("alice:0:0\nalice:-5:10\nalice:4294967290:100\n", ("alice",)) == []


def test_a_new_range_starts_after_the_ones_taken_from_100000() -> None:
    assert userns.next_free_start("") == 100000
    assert userns.next_free_start("alice:100000:65536\n") == 165536
    assert userns.next_free_start("a:1000:5000\nb:100000:1000\nc:300000:65536\n") == 101000   # the gap fits
    assert userns.next_free_start("a:100000:1000\nc:150000:65536\n") == 215536              # the gap is too small


def test_ranges_are_laid_end_to_end_from_container_id_0() -> None:
    maps = userns.mappings([(100000, 1000), (300000, 65536)])
    assert maps == [(0, 100000, 1000), (1000, 300000, 65536)]
    assert userns.to_host(maps, 0) == 100000
    assert userns.to_host(maps, 999) == 100999
    assert userns.to_host(maps, 1000) == 300000
    with pytest.raises(RemapError, match="cannot be mapped"):
        userns.to_host(maps, 66536)


# -- the setting and the remapped root --------------------------------------------------------------
@pytest.mark.parametrize("value", ["default", "alice", "alice:staff", "1001:1001"])
def test_setting_values_dockerd_takes(value: str) -> None:
    assert userns.parse_setting(value) == value


@pytest.mark.parametrize("value", ["alice:", ":staff", "a:b:c", "al ice", "a/b", 5])
def test_setting_values_refused(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="userns-remap"):
        userns.parse_setting(value)


def test_daemon_flag_and_config_key(tmp_path: Path) -> None:
    assert load(["--config-file", str(tmp_path / "none.json"), "--userns-remap", "default"]).userns_remap == "default"
    (tmp_path / "daemon.json").write_text('{"userns-remap": "alice:staff"}')
    assert load(["--config-file", str(tmp_path / "daemon.json")]).userns_remap == "alice:staff"
    (tmp_path / "bad.json").write_text('{"userns-remap": "alice:"}')
    with pytest.raises(SettingsError, match="userns-remap"):
        load(["--config-file", str(tmp_path / "bad.json")])


class Accounts:
    """/etc/passwd, /etc/group, /etc/subuid and /etc/subgid as useradd/usermod would change them."""

    def __init__(self, tmp: Path, users: dict[str, int] | None = None) -> None:
        self.users = dict(users or {})
        self.subuid, self.subgid = tmp / "subuid", tmp / "subgid"
        self.subuid.write_text("someone:100000:65536\n")
        self.subgid.write_text("")
        self.commands: list[list[str]] = []

    def run(self, args: list[str]) -> None:
        self.commands.append(args)
        if args[0] == "useradd":
            self.users[args[-1]] = 999
        elif args[0] == "usermod":
            start, end = map(int, args[2].split("-"))
            path = self.subuid if args[1] == "-v" else self.subgid
            path.write_text(path.read_text() + f"{args[3]}:{start}:{end - start + 1}\n")

    def lookup(self, name: str) -> tuple[str, int] | None:
        if name.isdigit():
            return next(((n, i) for n, i in self.users.items() if i == int(name)), None)
        return (name, self.users[name]) if name in self.users else None

    def resolve(self, setting: str) -> IdMaps | None:
        return userns.resolve(setting, subuid=str(self.subuid), subgid=str(self.subgid), run=self.run,
                              lookup_user=self.lookup, lookup_group=self.lookup)


def test_default_makes_dockremap_and_its_ranges_once(tmp_path: Path) -> None:
    acc = Accounts(tmp_path)
    maps = acc.resolve("default")
    assert acc.commands == [["useradd", "-r", "-s", "/bin/false", "dockremap"],
                            ["usermod", "-v", "165536-231071", "dockremap"],
                            ["usermod", "-w", "100000-165535", "dockremap"]]
    assert maps is not None and maps.uids == ((0, 165536, 65536),) and maps.gids == ((0, 100000, 65536),)
    assert maps.root == (165536, 100000) and maps.key == "165536.100000"
    assert maps.oci() == ([[0, 165536, 65536]], [[0, 100000, 65536]])
    acc.commands.clear()
    assert acc.resolve("default") == maps                  # a restart finds them: nothing is made again
    assert acc.commands == []


def test_a_named_user_needs_its_ranges(tmp_path: Path) -> None:
    acc = Accounts(tmp_path, {"alice": 1001, "staff": 50, "root": 0})
    assert acc.resolve("") is None
    with pytest.raises(RemapError, match="no subuid ranges found for user 'alice'"):
        acc.resolve("alice")
    acc.subuid.write_text("alice:200000:65536\n")
    acc.subgid.write_text("staff:300000:65536\n1001:400000:65536\n")
    assert acc.resolve("alice:staff") == IdMaps("alice", "staff", ((0, 200000, 65536),), ((0, 300000, 65536),))
    with pytest.raises(RemapError, match="no such group"):
        acc.resolve("alice:wheel")
    with pytest.raises(RemapError, match="no such user"):
        acc.resolve("mallory")
    with pytest.raises(RemapError, match="root cannot be remapped"):
        acc.resolve("root")
    assert acc.commands == []                              # only default makes anything


# -- the OCI config ---------------------------------------------------------------------------------
def spec(**kw: object) -> SimpleNamespace:
    base = dict(id="c" * 64, cap_add=[], cap_drop=[], privileged=False, seccomp="unconfined",
                no_new_privileges=False, pids_limit=0, memory=0, netns="/run/cove/netns/x",
                etc_files={}, cmd=["sh"], workdir="/", tty=False, hostname="box",
                environment=lambda: {"PATH": "/bin"})
    base.update(kw)
    return SimpleNamespace(**base)


def test_oci_user_namespace_joins_the_one_owning_the_network_namespace() -> None:
    cfg = profile.oci_config(spec(uid_map=[[0, 100000, 65536]], gid_map=[[0, 100000, 65536]],
                                  userns="/run/cove/userns/x"), "/r")
    linux = cfg["linux"]
    assert {"type": "user", "path": "/run/cove/userns/x"} in linux["namespaces"]
    assert {"type": "network", "path": "/run/cove/netns/x"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert next(m for m in cfg["mounts"] if m["destination"] == "/sys")["type"] == "sysfs"
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0}


def test_oci_without_an_owned_network_namespace_binds_the_hosts_sys() -> None:
    """--network container:NAME of a container without a user namespace: sysfs cannot be mounted."""
    cfg = profile.oci_config(spec(uid_map=[[0, 100000, 65536]], gid_map=[[0, 100000, 65536]]), "/r")
    assert {"type": "user"} in cfg["linux"]["namespaces"]
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "bind" and "ro" in sys_mount["options"] and "rbind" in sys_mount["options"]


def test_oci_without_remap_has_no_user_namespace() -> None:
    cfg = profile.oci_config(spec(), "/r")
    assert all(ns["type"] != "user" for ns in cfg["linux"]["namespaces"])
    assert "uidMappings" not in cfg["linux"] and "gidMappings" not in cfg["linux"]


# -- the image copy -----------------------------------------------------------------------------------
def _image(root: Path) -> Path:
    rootfs = root / "img" / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "su").write_text("x")
    os.chown(rootfs / "bin" / "su", 0, 0)
    (rootfs / "bin" / "su").chmod(0o4755)
    (rootfs / "home").mkdir()
    os.chown(rootfs / "home", 1000, 1000)
    os.link(rootfs / "bin" / "su", rootfs / "bin" / "su2")
    os.symlink("/etc/passwd", rootfs / "passwd-link")     # lchown: the host's file is never touched
    return rootfs


def test_the_copy_is_the_remapped_roots_and_keeps_setuid_bits(tmp_path: Path) -> None:
    rootfs = _image(tmp_path)
    host_passwd = os.stat("/etc/passwd")
    copy = Path(userns.remapped_rootfs(str(rootfs), MAPS))
    assert copy == tmp_path / "img" / "100000.100000" / "rootfs"
    st = os.stat(copy / "bin" / "su")
    assert (st.st_uid, st.st_gid) == (100000, 100000) and stat.S_IMODE(st.st_mode) == 0o4755
    assert os.stat(copy / "bin" / "su2").st_uid == 100000          # a hard link, shifted once
    assert os.stat(copy / "home").st_uid == 101000
    assert os.lstat(copy / "passwd-link").st_uid == 100000
    assert os.stat(copy).st_uid == 100000
    after = os.stat("/etc/passwd")
    assert (after.st_uid, after.st_gid) == (host_passwd.st_uid, host_passwd.st_gid)
    assert os.stat(rootfs / "bin" / "su").st_uid == 0                # the image itself is unchanged
    marker = copy / "made-once"
    marker.write_text("")
    assert Path(userns.remapped_rootfs(str(rootfs), MAPS)) == copy and marker.exists()   # made once
    assert [p.name for p in (tmp_path / "img").iterdir() if p.name.startswith(".")] == []


def test_ids_outside_the_ranges_are_refused(tmp_path: Path) -> None:
    rootfs = _image(tmp_path)
    small = IdMaps("u", "g", ((0, 100000, 1000),), ((0, 100000, 1000),))
    with pytest.raises(RemapError, match="1000 cannot be mapped"):
        userns.remapped_rootfs(str(rootfs), small)
    assert list((tmp_path / "img").iterdir()) == [rootfs]           # no half-made copy is left


def test_reachability_of_the_roots() -> None:
    top = Path(tempfile.mkdtemp(dir="/tmp"))           # pytest's own tmp_path sits under a 0700 dir
    try:
        closed = top / "closed"
        (closed / "lib").mkdir(parents=True)
        top.chmod(0o711)
        closed.chmod(0o700)
        with pytest.raises(RemapError, match="keeps the remapped root"):
            userns.check_reachable(str(closed / "lib"), MAPS)
        os.chown(closed, 0, 100000)
        closed.chmod(0o710)                             # the remapped root's group passes
        userns.check_reachable(str(closed / "lib"), MAPS)
    finally:
        shutil.rmtree(top)


# -- the API field and the engine's rules -------------------------------------------------------------
def test_usernsmode_host_is_taken_and_others_refused() -> None:
    _, host, _ = schema.container_request({"Image": "busybox", "HostConfig": {"UsernsMode": "host"}})
    assert host.userns_mode == "host"
    _, host, _ = schema.container_request({"Image": "busybox", "HostConfig": {"UsernsMode": ""}})
    assert host.userns_mode == ""
    with pytest.raises(InvalidArgument, match="UsernsMode"):
        schema.container_request({"Image": "busybox", "HostConfig": {"UsernsMode": "container:x"}})


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path, userns_remap=MAPS)
    r.engine.images.image.rootfs = str(_image(tmp_path))     # type: ignore[attr-defined]
    specs: list[Any] = []
    start = r.runtime.start

    def recording(spec: Any) -> int:
        specs.append(spec)
        return start(spec)
    r.runtime.start = recording                               # type: ignore[method-assign]
    r.specs = specs                                           # type: ignore[attr-defined]
    return r


def _create(rig: Rig, **host: Any) -> str:
    return rig.engine.create_container(None, ContainerConfig(image="busybox", image_id="", cmd=["true"]),
                                       HostConfig(**host), {}).id


def test_privileged_and_host_network_are_refused_in_a_user_namespace(rig: Rig) -> None:
    with pytest.raises(InvalidArgument, match="privileged mode is incompatible with user namespaces"):
        _create(rig, privileged=True)
    with pytest.raises(InvalidArgument, match="cannot share the host's network namespace"):
        _create(rig, network_mode="host")
    assert not rig.engine.containers
    _create(rig, privileged=True, userns_mode="host")
    _create(rig, network_mode="host", userns_mode="host")


def test_a_remapped_start_gets_the_maps_the_copy_and_an_owned_network_namespace(rig: Rig) -> None:
    cid = _create(rig)
    rig.engine.start_container(cid)
    spec = rig.specs[-1]                                                    # type: ignore[attr-defined]
    assert spec.uid_map == [[0, 100000, 65536]] and spec.gid_map == [[0, 100000, 65536]]
    assert spec.rootfs.endswith("/img/100000.100000/rootfs")
    userns_file = os.path.join(rig.engine.cfg.userns_dir, cid)
    assert spec.userns == userns_file and spec.netns == os.path.join(rig.engine.cfg.netns_dir, cid)
    assert rig.kernel.usernss == {userns_file: ([[0, 100000, 65536]], [[0, 100000, 65536]])}
    rig.engine.stop_container(cid, 0)
    assert rig.kernel.usernss == {}                                          # dropped with its network


def test_userns_host_starts_as_before(rig: Rig) -> None:
    cid = _create(rig, userns_mode="host")
    rig.engine.start_container(cid)
    spec = rig.specs[-1]                                                    # type: ignore[attr-defined]
    assert spec.uid_map == [] and spec.userns is None
    assert spec.rootfs == rig.engine.images.image.rootfs                    # type: ignore[attr-defined]
    assert rig.kernel.usernss == {}
