"""``--userns-remap default``: container root is an unprivileged range of host ids (issue 13).

One daemon for the module, started with ``--userns-remap default``: it makes the ``dockremap``
user and its ``/etc/subuid``/``/etc/subgid`` ranges with ``useradd``/``usermod``, so the module
runs with a copy of ``/etc`` bound over ``/etc`` in the sandbox's own mount namespace (the
machine's files are never touched).  What a user observes: root inside, a subordinate id
outside; files a container makes in a host directory belong to that id; what host root could
do from a container (mknod, a kernel module, a setuid-root file left in a shared directory,
writing root's files) it cannot; names, ping and published ports work; ``--userns=host`` opts
out; a daemon restart keeps the containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon
from .test_security import as_nobody

pytestmark = pytest.mark.integration


def _subids(path: str, name: str) -> tuple[int, int]:
    for line in Path(path).read_text().splitlines():
        user, start, count = line.split(":")
        if user == name:
            return int(start), int(count)
    raise AssertionError(f"no {name} range in {path}")


@pytest.fixture(scope="module")
def etc_copy() -> Iterator[str]:
    """A copy of /etc bound over /etc for this module (the sandbox's mount namespace only)."""
    if os.environ.get("COVE_SANDBOX") != "1":
        pytest.fail("test_userns binds a copy of /etc over /etc: run it inside tests/sandbox.sh")
    tmp = tempfile.mkdtemp(prefix="cove-etc-")
    copy = os.path.join(tmp, "etc")
    subprocess.run(["cp", "-a", "/etc", copy], check=True)
    subprocess.run(["mount", "--bind", copy, "/etc"], check=True)
    try:
        yield copy
    finally:
        subprocess.run(["umount", "/etc"], check=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(etc_copy: str) -> Iterator[Daemon]:
    assert subprocess.run(["id", "dockremap"], capture_output=True).returncode != 0, "dockremap exists already"
    tmp = tempfile.mkdtemp(prefix="cove-userns-")
    os.chmod(tmp, 0o711)                  # the remapped root passes through to its containers' dirs
    exec_root = f"/run/cove/userns-{uuid.uuid4().hex[:8]}"
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=exec_root, log=f"{tmp}/daemon.log")
    d.start("--firewall-backend", "nftables", "--userns-remap", "default")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        for net in ("remapnet",):
            d.cli("network", "rm", net)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)


@pytest.fixture
def cove(daemon: Daemon) -> Iterator[Daemon]:
    yield daemon
    for cid in daemon.cli("ps", "-aq").stdout.split():
        daemon.cli("rm", "-f", cid)


@pytest.fixture
def docker(daemon: Daemon, docker_bin: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The docker CLI on the daemon (binds need its -v): ``docker(*args, check=True)``."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.sock}"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([docker_bin, *args], env=env, capture_output=True, text=True, timeout=60)
        assert not check or r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r
    return run


Docker = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A host directory open to everyone, to bind into containers."""
    d = Path(tempfile.mkdtemp(prefix="cove-shared-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_dockremap_is_made_with_its_ranges(cove: Daemon, etc_copy: str) -> None:
    """As dockerd: a system user and group dockremap, 65536 subordinate ids from 100000 (the
    machine's files are empty) in both files; the daemon's info says userns."""
    assert subprocess.run(["id", "-u", "dockremap"], capture_output=True, text=True).stdout.strip()
    assert _subids("/etc/subuid", "dockremap") == (100000, 65536)
    assert _subids("/etc/subgid", "dockremap") == (100000, 65536)
    assert "name=userns" in cove.ok("info")


def test_root_inside_is_a_subordinate_id_outside(cove: Daemon) -> None:
    """id -u is 0 inside, uid_map shows the range, and the host sees the process as uid 100000."""
    out = cove.ok("run", "--rm", "bb", "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    lines = out.split("\n")
    assert lines[0:2] == ["0", "0"], out
    assert lines[2].split() == ["0", "100000", "65536"] and lines[3].split() == ["0", "100000", "65536"], out
    cid = cove.ok("run", "-d", "bb", "sleep", "3600").strip()
    pid = int(cove.ok("inspect", "-f", "{{.State.Pid}}", cid))
    assert _uid_of(pid) == 100000


def test_userns_host_gets_no_mapping(cove: Daemon) -> None:
    """--userns=host: the host's identity map, root is root."""
    out = cove.ok("run", "--rm", "--userns=host", "bb", "cat", "/proc/self/uid_map")
    assert out.split() == ["0", "0", "4294967295"], out


def test_files_made_in_a_host_directory_belong_to_the_subordinate_uid(docker: Docker, shared: Path) -> None:
    """A file the container's root creates in a bind-mounted directory is owned by 100000 on the
    host (with --userns=host, by 0: the contrast shows the mapping is what does it)."""
    docker("run", "--rm", "-v", f"{shared}:/data", "bb", "sh", "-c", "echo hi > /data/remapped")
    st = (shared / "remapped").stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    docker("run", "--rm", "--userns=host", "-v", f"{shared}:/data", "bb", "touch", "/data/hostroot")
    assert (shared / "hostroot").stat().st_uid == 0


def test_a_setuid_root_file_left_in_a_shared_directory_gives_no_root(docker: Docker, shared: Path) -> None:
    """The classic escape: container root leaves a setuid-root shell in a directory the host
    shares, a host user runs it.  Remapped, the file is the subordinate uid's and user nobody
    runs it as 100000; as host root (--userns=host) the same steps give nobody euid 0."""
    shutil.copy("/usr/bin/id", shared / "id.src")         # the host's id (busybox drops setuid itself)
    plant = "mkdir -m 755 /data/{0} && cp /data/id.src /data/{0}/id && chmod 4755 /data/{0}/id"
    docker("run", "--rm", "-v", f"{shared}:/data", "bb", "sh", "-c", plant.format("remapped"))
    r = as_nobody([str(shared / "remapped" / "id"), "-u"])
    assert r.returncode == 0 and r.stdout.strip() == "100000", r
    docker("run", "--rm", "--userns=host", "-v", f"{shared}:/data", "bb", "sh", "-c", plant.format("hostroot"))
    r = as_nobody([str(shared / "hostroot" / "id"), "-u"])
    assert r.stdout.strip() == "0", r                     # the attack works as host root


def test_root_owned_host_files_stay_out_of_reach(docker: Docker, shared: Path) -> None:
    """A root-owned 0644 file bound into the container: remapped root cannot write it (host root can)."""
    target = shared / "config"
    target.write_text("original\n")
    target.chmod(0o644)
    r = docker("run", "--rm", "-v", f"{shared}:/data", "bb", "sh", "-c", "echo owned > /data/config", check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert target.read_text() == "original\n"
    docker("run", "--rm", "--userns=host", "-v", f"{shared}:/data", "bb", "sh", "-c", "echo owned > /data/config")
    assert target.read_text() == "owned\n"


def test_mknod_fails_even_with_the_capability(cove: Daemon) -> None:
    """CAP_MKNOD inside a user namespace is worth nothing on the host: mknod is refused even with
    no seccomp filter, where host root (--userns=host, same profile) makes the node.  (Module
    loading cannot show the difference here: this machine's kernel answers ENOSYS to host root too.)"""
    loose = ["--cap-add", "SYS_MODULE", "--security-opt", "seccomp=unconfined"]
    script = "mknod /tmp/null c 1 3 && echo MADE"
    r = cove.cli("run", "--rm", *loose, "bb", "sh", "-c", script)
    assert "MADE" not in r.stdout and "Operation not permitted" in r.stderr, r
    r = cove.cli("run", "--rm", "--userns=host", *loose, "bb", "sh", "-c", script)
    assert "MADE" in r.stdout, r


def test_privileged_and_host_network_need_userns_host(cove: Daemon) -> None:
    """dockerd's rules: --privileged and --network host are refused (400) in a user namespace,
    and allowed with --userns=host."""
    r = cove.cli("run", "--rm", "--privileged", "bb", "true")
    assert r.returncode != 0 and "privileged mode is incompatible with user namespaces" in r.stderr, r
    r = cove.cli("run", "--rm", "--network", "host", "bb", "true")
    assert r.returncode != 0 and "cannot share the host's network namespace" in r.stderr, r
    cove.ok("run", "--rm", "--userns=host", "--privileged", "bb", "true")
    r = cove.cli("run", "--rm", "--userns", "bogus", "bb", "true")
    assert r.returncode != 0 and "UsernsMode" in r.stderr, r


def _get(url: str, tries: int = 100) -> str:
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_names_ping_and_published_ports_still_work(cove: Daemon) -> None:
    """On a user network: ping by name and a server on port 80 published on the host.  Both need
    the container's root to own its network namespace (CAP_NET_RAW, CAP_NET_BIND_SERVICE count
    only there): with cove's namespace made by the host's user namespace (kernel.create_netns in
    place of create_userns_netns) ping says "permission denied (are you root?)"."""
    cove.ok("network", "create", "remapnet")
    try:
        cove.ok("run", "-d", "--name", "web", "--network", "remapnet", "-p", "8093:80", "bb", "sh", "-c",
                "mkdir /www && echo remapped-web > /www/index.html && exec httpd -f -p 80 -h /www")
        out = cove.ok("run", "--rm", "--network", "remapnet", "bb", "sh", "-c",
                      "ping -c 1 -W 5 web && wget -q -O - http://web/")
        assert "1 packets received" in out and "remapped-web" in out, out
        assert _get("http://127.0.0.1:8093/") == "remapped-web\n"
    finally:
        cove.cli("rm", "-f", "web")
        cove.cli("network", "rm", "remapnet")


def test_a_daemon_restart_keeps_remapped_containers(cove: Daemon) -> None:
    """Containers run on through a restart, still remapped; new ones too (the user and its
    ranges are reused, not made again)."""
    cid = cove.ok("run", "-d", "--name", "keeper", "bb", "sleep", "3600").strip()
    pid = int(cove.ok("inspect", "-f", "{{.State.Pid}}", cid))
    cove.stop()
    cove.start()
    assert cove.ok("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", cid).split() == ["true", str(pid)]
    assert _uid_of(pid) == 100000
    assert cove.ok("exec", "keeper", "id", "-u").strip() == "0"
    assert cove.ok("run", "--rm", "bb", "cat", "/proc/self/uid_map").split() == ["0", "100000", "65536"]
    assert Path("/etc/subuid").read_text().count("dockremap:") == 1


def test_named_volumes_are_the_remapped_roots(cove: Daemon, docker: Docker) -> None:
    """A new named volume is made for the remapped root (as dockerd's per-remap volumes): the
    container writes it, and the data is 100000's on the host."""
    try:
        docker("run", "--rm", "-v", "remapvol:/v", "bb", "sh", "-c", "echo kept > /v/f")
        assert docker("run", "--rm", "-v", "remapvol:/v", "bb", "cat", "/v/f").stdout == "kept\n"
        data = Path(cove.data_root) / "volumes" / "remapvol" / "_data"
        assert (data / "f").stat().st_uid == 100000
    finally:
        docker("volume", "rm", "-f", "remapvol", check=False)


def test_network_container_joins_the_others_user_namespace(cove: Daemon) -> None:
    """--network container:NAME shares the other's network namespace and so, as dockerd, the user
    namespace that owns it (the same /proc/self/ns/user inode, and the same address)."""
    cove.ok("run", "-d", "--name", "owner", "bb", "sleep", "3600")
    mine = cove.ok("exec", "owner", "sh", "-c", "readlink /proc/self/ns/user; ip -o -4 addr show eth0").split("\n")
    theirs = cove.ok("run", "--rm", "--network", "container:owner", "bb", "sh", "-c",
                     "readlink /proc/self/ns/user; ip -o -4 addr show eth0; id -u").split("\n")
    assert theirs[0] == mine[0] and theirs[1].split()[3] == mine[1].split()[3], (mine, theirs)
    assert theirs[2] == "0"


def _become_remapped_root() -> None:
    os.setgroups([])
    os.setresgid(100000, 100000, 100000)
    os.setresuid(100000, 100000, 100000)


def test_the_remapped_root_passes_through_its_state_dir_and_reads_nothing(cove: Daemon) -> None:
    """The state dir is 0710 root:100000 (runc's init, the remapped root, reaches its root through
    it), the data dir 0700: as uid 100000 on the host the spec with the environment's secrets,
    the config and the writable layer stay closed.  (Seen failing with the state dir 0750, the data
    dir 0711 and the mode asserts dropped: uid 100000 listed the state dir.)"""
    cid = cove.ok("run", "-d", "-e", "SECRET=hunter2", "bb", "sh", "-c", "echo x > /tmp/f; sleep 3600").strip()
    state_dir = Path(cove.exec_root) / "containers" / cid
    data_dir = Path(cove.data_root) / "containers" / cid
    st = state_dir.stat()
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o710", 0, 100000)
    st = data_dir.stat()
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o700", 0, 0)
    for argv in (["cat", str(state_dir / "spec.json")], ["cat", str(state_dir / "config.json")],
                 ["ls", str(state_dir)], ["ls", str(data_dir / "upper")]):
        r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_become_remapped_root)
        assert r.returncode != 0 and "hunter2" not in r.stdout and "ermission denied" in r.stderr, (argv, r)
