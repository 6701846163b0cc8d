"""Container start does not copy other containers' namespace binds (issue 17), and still sees the host.

Each container's network namespace is a bind mount under ``<exec-root>/netns`` in the daemon's
mount namespace.  A shim (and runc after it) starts in a mount namespace copied from the zygote's,
which has none of those binds, so what a start copies does not grow with the containers running;
that namespace is a slave of the daemon's, so a mount made on the host after the daemon started
still reaches a container that binds it (``cove.kernel.netns``, ``cove.runtime.shim``).
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-mountns-")
    exec_root = f"/run/cove/mountns-{uuid.uuid4().hex[:8]}"
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=exec_root, log=f"{tmp}/daemon.log")
    d.start("--firewall-backend", "nftables")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        left = list((Path(exec_root) / "netns").iterdir()) if (Path(exec_root) / "netns").exists() else []
        still = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if exec_root in line]
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)
        assert not left, f"namespaces left behind: {left}"
        assert not still, f"mounts left under {exec_root}: {still}"


def shim_mounts(d: Daemon, name: str) -> list[str]:
    """The mount points of the namespace the container's shim (and so its runc) started in."""
    cid = d.ok("inspect", "-f", "{{.Id}}", name).strip()
    pid = Path(d.exec_root, "containers", cid, "shim.pid").read_text().split()[0]
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


def test_a_start_copies_no_namespace_of_the_containers_already_running(daemon: Daemon) -> None:
    names = [f"mc{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    try:
        for name in names:
            daemon.ok("run", "-d", "--name", name, "bb", "sleep", "300")
        netns_dir = os.path.join(daemon.exec_root, "netns")
        assert len(os.listdir(netns_dir)) >= len(names)
        first, last = shim_mounts(daemon, names[0]), shim_mounts(daemon, names[-1])
        assert not [p for p in last if p.startswith(daemon.exec_root + "/")
                    and not p.startswith(os.path.join(daemon.exec_root, "containers") + "/")], last
        assert len(last) == len(first), f"{len(first)} mounts for the first container, {len(last)} for the sixth"
    finally:
        daemon.cli("rm", "-f", *names)


def test_a_mount_made_on_the_host_after_the_daemon_started_reaches_a_new_container(daemon: Daemon,
                                                                                   docker_bin: str) -> None:
    """A bind source mounted after the zygote's namespace was made: the copy is a slave, it arrives."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.sock}"}
    name = f"warm-{uuid.uuid4().hex[:6]}"
    daemon.ok("run", "-d", "--name", name, "bb", "sleep", "300")      # the zygote's namespace exists by now
    src = tempfile.mkdtemp(prefix="cove-late-mount-")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "cove-late", src], check=True)
        try:
            Path(src, "hello").write_text("from a later mount\n")
            r = subprocess.run([docker_bin, "run", "--rm", "-v", f"{src}:/data", "bb", "cat", "/data/hello"],
                               env=env, capture_output=True, text=True, timeout=60)
            assert (r.returncode, r.stdout) == (0, "from a later mount\n"), r.stderr
        finally:
            subprocess.run(["umount", src], check=True)
    finally:
        os.rmdir(src)
        daemon.cli("rm", "-f", name)
