"""A container cannot take over its host: Docker's default profile, as a user meets it.

Each attack of issue 13 is tried from inside a busybox container and must fail; the
profile itself (capabilities, seccomp, no_new_privs, mount flags) is compared with
the values Docker documents for its default profile.  Each test says how to see it
fail with the protection removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon

pytestmark = pytest.mark.integration

# Docker's default capabilities (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP) as /proc/PID/status shows them
DOCKER_CAPS = "00000000a80425fb"
CAP_NET_ADMIN = 12
CAP_CHOWN = 0


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """One daemon for the module (the profile does not depend on the firewall backend)."""
    tmp = tempfile.mkdtemp(prefix="cove-sec-")
    exec_root = f"/run/cove/sec-{uuid.uuid4().hex[:8]}"
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=exec_root, log=f"{tmp}/daemon.log")
    d.start("--firewall-backend", "nftables")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)


@pytest.fixture
def cove(daemon: Daemon) -> Iterator[Daemon]:
    yield daemon
    for cid in daemon.cli("ps", "-aq").stdout.split():
        daemon.cli("rm", "-f", cid)


def status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def mounts(text: str) -> dict[str, tuple[str, set[str]]]:
    """/proc/mounts: mount point -> (fs type, options); the last mount on a point wins."""
    out = {}
    for line in text.splitlines():
        _, point, fstype, opts, *_ = line.split()
        out[point] = (fstype, set(opts.split(",")))
    return out


def _become_nobody() -> None:
    # setresuid from root without keep-caps clears every capability before the exec (util-linux
    # setpriv keeps its effective set through the exec's path walk, so it cannot stand in here)
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, preexec_fn=_become_nobody)
    except PermissionError as exc:           # the exec itself was refused
        return subprocess.CompletedProcess(argv, 126, "", str(exc))


def run(cove: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return cove.cli("run", "--rm", *args)


def test_default_profile_is_dockers(cove: Daemon) -> None:
    """CapEff/CapPrm/CapBnd, Seccomp, NoNewPrivs and the mount flags Docker documents for its
    default profile.  Removing any part of cove.runtime.profile.oci_config (the capabilities,
    linux.seccomp, readonlyPaths, the "ro" on /sys) makes the matching assertion fail."""
    out = cove.ok("run", "--rm", "bb", "sh", "-c", "cat /proc/self/status; echo ==; cat /proc/mounts; echo ==;"
                  " ls /dev; echo ==; find /dev -type b; echo ==; cat /proc/self/cgroup")
    st, mnt, dev, blocks, cgroup = out.split("==\n")
    s = status(st)
    assert (s["CapEff"], s["CapPrm"], s["CapBnd"]) == (DOCKER_CAPS, DOCKER_CAPS, DOCKER_CAPS)
    assert (s["CapInh"], s["CapAmb"]) == ("0000000000000000", "0000000000000000")
    assert s["Seccomp"] == "2"                   # filter mode: Docker's profile
    assert s["NoNewPrivs"] == "0"                # Docker's default (no-new-privileges is opt-in)
    m = mounts(mnt)
    assert "nodev" in m["/"][1]
    assert m["/proc"][0] == "proc" and {"nosuid", "nodev", "noexec"} <= m["/proc"][1]
    assert m["/sys"][0] == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= m["/sys"][1]
    assert m["/dev"][0] == "tmpfs" and {"nosuid", "mode=755"} <= m["/dev"][1]
    assert m["/dev/shm"][0] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= m["/dev/shm"][1]
    assert m["/dev/pts"][0] == "devpts" and {"nosuid", "noexec"} <= m["/dev/pts"][1]
    assert "/dev/mqueue" in m
    # (those this kernel has: runc skips the others, as Docker does)
    for path in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"):
        assert not os.path.exists(path) or "ro" in m[path][1], f"{path} is not read-only"
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"):
        assert not os.path.exists(path) or path in m, f"{path} is not masked"
    assert all("ro" in opts for p, (t, opts) in m.items() if p.startswith("/sys/fs/cgroup/"))
    assert set(dev.split()) <= {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
                                "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
    assert blocks.strip() == ""
    # a cgroup namespace: the container's cgroup is its root
    assert all(line.endswith(":/") for line in cgroup.split())


def test_mounting_the_host_disk_through_a_device_node_fails(cove: Daemon) -> None:
    """The issue's attack: mknod the host's root disk and mount it.  Before issue 13 (every
    capability, no devices cgroup, no nodev) it mounted and wrote the disk.  No privileged
    control here: this machine's own device policy refuses even the host's root an open of its
    disk, so a --privileged container fails too (checked by hand: `cove run --privileged`)."""
    dev = os.stat("/").st_dev
    # in /tmp (the image's layer: nodev) and in /dev (a tmpfs where the devices cgroup guards)
    attack = "; ".join(f"mknod {d}/disk b {os.major(dev)} {os.minor(dev)}; mkdir -p /tmp/m{i};"
                       f" mount -o ro {d}/disk /tmp/m{i} && ls /tmp/m{i} && echo MOUNTED;"
                       f" head -c 512 {d}/disk >/dev/null && echo READ" for i, d in enumerate(("/tmp", "/dev")))
    attack += "; true"
    r = run(cove, "bb", "sh", "-c", attack)
    assert r.returncode == 0, r.stderr
    assert "MOUNTED" not in r.stdout and "READ" not in r.stdout, r.stdout
    assert "Operation not permitted" in r.stderr or "Permission denied" in r.stderr, r.stderr


def test_core_pattern_cannot_be_written(cove: Daemon) -> None:
    """/proc/sys is read-only.  Without readonlyPaths and with CAP_SYS_ADMIN (as before issue 13)
    the open for writing succeeds; a test that writes it would change the host's."""
    r = run(cove, "bb", "sh", "-c", "exec 3>>/proc/sys/kernel/core_pattern && echo OPENED")
    assert "OPENED" not in r.stdout
    assert "Read-only file system" in r.stderr, r.stderr


def test_sys_cannot_be_remounted_read_write(cove: Daemon) -> None:
    """No CAP_SYS_ADMIN and seccomp: remounting /sys fails (run with --privileged and it works)."""
    r = run(cove, "bb", "sh", "-c", "mount -o remount,rw /sys && echo REMOUNTED; grep ' /sys ' /proc/mounts")
    assert "REMOUNTED" not in r.stdout
    assert " ro," in r.stdout
    r = run(cove, "--privileged", "bb", "sh", "-c", "mount -o remount,rw /sys && echo REMOUNTED")
    assert "REMOUNTED" in r.stdout, r.stderr


def test_loading_a_kernel_module_is_refused(cove: Daemon) -> None:
    """init_module/finit_module are refused (EPERM) before the kernel looks at the module; a
    privileged container gets as far as the kernel rejecting the (invalid) module itself."""
    script = "echo notamodule > /tmp/m.ko; insmod /tmp/m.ko"
    r = run(cove, "bb", "sh", "-c", script)
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr, r.stderr
    r = run(cove, "--privileged", "bb", "sh", "-c", script)
    assert r.returncode != 0 and "Operation not permitted" not in r.stderr, r.stderr


def test_an_unprivileged_user_cannot_reach_a_containers_files(cove: Daemon) -> None:
    """A setuid binary left in the container's writable layer, its spec (with the environment's
    secrets) and its logs are out of reach of user nobody: the state and data dirs are 0700
    (CVE-2021-41091).  With them 0711 (as before issue 13: chmod them below the `# protection`
    line and drop the mode assert) user nobody runs the setuid copy: the assert on it fails."""
    cid = cove.ok("run", "-d", "-e", "SECRET=hunter2", "bb", "sh", "-c",
                  "cp /bin/busybox /tmp/id && chmod 4755 /tmp/id && echo ready && sleep 3600").strip()
    data_dir = Path(cove.data_root) / "containers" / cid
    state_dir = Path(cove.exec_root) / "containers" / cid
    suid = data_dir / "upper" / "tmp" / "id"             # busybox's `id` applet, setuid root
    for _ in range(100):
        if suid.exists() and suid.stat().st_mode & 0o4000:
            break
        subprocess.run(["sleep", "0.1"])
    assert suid.stat().st_mode & 0o4000
    # the test daemon's roots sit in a 0700 temp dir: open the way to them as /var/lib/cove is
    opened = [p for p in (Path(cove.data_root).parent, Path(cove.exec_root)) if p.stat().st_mode & 0o005 == 0]
    modes = {p: p.stat().st_mode for p in opened}
    try:
        for p in opened:
            p.chmod(0o755)
        for p in (Path(cove.data_root), Path(cove.data_root) / "containers", Path(cove.exec_root) / "containers"):
            p.chmod(0o755)
        # protection: (data_dir.chmod(0o711); state_dir.chmod(0o711) here makes the asserts below fail)
        assert oct(data_dir.stat().st_mode & 0o777) == "0o700" and oct(state_dir.stat().st_mode & 0o777) == "0o700"
        r = as_nobody([str(suid), "-u"])
        assert r.returncode != 0 and "ermission denied" in r.stderr and r.stdout.strip() != "0", r
        for f in (state_dir / "spec.json", data_dir / "stdout.log"):
            r = as_nobody(["cat", str(f)])
            assert r.returncode != 0 and "hunter2" not in r.stdout and "ready" not in r.stdout
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_cap_add_cap_drop_and_privileged(cove: Daemon) -> None:
    """--cap-add/--cap-drop change what a container may do; --privileged is loud in inspect."""
    mtu = Path("/sys/class/net/lo/mtu").read_text().strip()
    set_mtu = f"ip link set lo mtu {mtu} && echo SET"        # in the container's own namespace
    assert "SET" not in run(cove, "bb", "sh", "-c", set_mtu).stdout
    assert "SET" in run(cove, "--cap-add", "NET_ADMIN", "bb", "sh", "-c", set_mtu).stdout
    chown = "touch /tmp/f && chown 1 /tmp/f && echo CHOWNED"
    assert "CHOWNED" in run(cove, "bb", "sh", "-c", chown).stdout
    assert "CHOWNED" not in run(cove, "--cap-drop", "chown", "bb", "sh", "-c", chown).stdout
    caps = status(cove.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "KILL", "bb", "cat",
                          "/proc/self/status"))["CapEff"]
    assert int(caps, 16) == 1 << 5
    cove.ok("run", "-d", "--name", "priv", "--privileged", "bb", "sleep", "3600")
    s = status(cove.ok("exec", "priv", "cat", "/proc/self/status"))
    # every capability cove itself has (here it runs in a container without CAP_SYS_RESOURCE)
    assert s["CapEff"] == status(Path("/proc/self/status").read_text())["CapBnd"] and s["Seccomp"] == "0"
    assert json.loads(cove.ok("inspect", "priv"))[0]["HostConfig"]["Privileged"] is True
    r = cove.cli("run", "--rm", "--cap-add", "NOPE", "bb", "true")
    assert r.returncode == 125 and "CapAdd" in r.stderr and "NOPE" in r.stderr


def test_exec_has_the_containers_profile(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "plain", "bb", "sleep", "3600")
    s = status(cove.ok("exec", "plain", "cat", "/proc/self/status"))
    assert (s["CapEff"], s["CapBnd"], s["Seccomp"], s["NoNewPrivs"]) == (DOCKER_CAPS, DOCKER_CAPS, "2", "0")
    assert "Operation not permitted" in cove.cli("exec", "plain", "insmod", "/bin/busybox").stderr
    cove.ok("run", "-d", "--name", "tight", "--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges",
            "bb", "sleep", "3600")
    s = status(cove.ok("exec", "tight", "cat", "/proc/self/status"))
    assert int(s["CapEff"], 16) & (1 << CAP_NET_ADMIN) and s["NoNewPrivs"] == "1"
    s = status(cove.ok("exec", "-t", "tight", "cat", "/proc/self/status").replace("\r", ""))
    assert int(s["CapEff"], 16) & (1 << CAP_NET_ADMIN) and s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"


def test_host_network_container_has_no_net_admin(cove: Daemon) -> None:
    """Docker's default capabilities have no CAP_NET_ADMIN, with --network host too: the host's
    links are not the container's to change (cove gave it every capability before issue 13)."""
    mtu = Path("/sys/class/net/lo/mtu").read_text().strip()
    r = run(cove, "--network", "host", "bb", "sh", "-c",
            f"grep CapEff /proc/self/status; ip link set lo mtu {mtu} && echo SET")
    assert DOCKER_CAPS in r.stdout and "SET" not in r.stdout
    assert "SET" in run(cove, "--network", "host", "--cap-add", "NET_ADMIN", "bb", "sh", "-c",
                        f"ip link set lo mtu {mtu} && echo SET").stdout


def test_security_opt_seccomp_and_no_new_privileges(cove: Daemon, tmp_path: Path) -> None:
    s = status(cove.ok("run", "--rm", "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges",
                       "bb", "cat", "/proc/self/status"))
    assert s["Seccomp"] == "0" and s["NoNewPrivs"] == "1"
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    r = run(cove, "--security-opt", f"seccomp={profile}", "bb", "mkdir", "/tmp/x")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr
    assert run(cove, "bb", "mkdir", "/tmp/x").returncode == 0
    r = cove.cli("run", "--rm", "--security-opt", "apparmor=strict", "bb", "true")
    assert r.returncode == 125 and "SecurityOpt" in r.stderr


def test_pids_and_memory_limits(cove: Daemon) -> None:
    """--pids-limit and --memory reach the container's cgroup (v1 here: pids and memory controllers)."""
    out = cove.ok("run", "--rm", "--pids-limit", "7", "--memory", "64m", "bb", "sh", "-c",
                  "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null;"
                  " cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; true")
    assert out.split() == ["7", str(64 * 1024 * 1024)]
    r = cove.cli("run", "--rm", "--pids-limit", "3", "bb", "sh", "-c", "for i in 1 2 3 4 5; do sleep 5 & done; wait")
    assert r.returncode != 0 and ("fork" in r.stderr.lower() or "resource" in r.stderr.lower()), r.stderr


def test_log_rotation_and_tail(cove: Daemon) -> None:
    """--log-opt max-size/max-file keep the log small; logs --tail gives the last lines."""
    cid = cove.ok("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", "bb", "sh", "-c",
                  "i=0; while [ $i -lt 400 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done").strip()
    cove.ok("wait", cid)
    data_dir = Path(cove.data_root) / "containers" / cid
    sizes = sorted(f.stat().st_size for f in data_dir.glob("stdout.log*"))
    assert len(sizes) == 2 and max(sizes) <= 2048, sizes
    out = cove.ok("logs", cid).splitlines()
    assert out[-1] == "line-399-padding-padding-padding" and len(out) < 150
    assert cove.ok("logs", "--tail", "3", cid).splitlines() == [f"line-{i}-padding-padding-padding"
                                                                  for i in (397, 398, 399)]
    r = cove.cli("run", "--rm", "--log-opt", "max-file=x", "bb", "true")
    assert r.returncode == 125 and "LogConfig" in r.stderr
