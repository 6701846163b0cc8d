"""containerd's ``ctr run --cni`` against cove-cni: a CNI runtime that is not cove puts its container
on a cove network (issue 18).

ctr (Debian's containerd 1.6) reads CNI configuration only from /etc/cni/net.d and plugins only from
/opt/cni/bin, and containerd keeps its shim sockets under /run/containerd: so containerd runs here in a
mount namespace of its own, inside the sandbox, with a temp dir bound over /etc/cni/net.d and tmpfs
mounts on /opt and /run (the machine's own /etc, /opt and /run are never written), its own root, state
and socket in a temp dir; every ``ctr`` enters that mount namespace. The image ctr runs is the tests'
busybox rootfs packed as a docker archive (``ctr image import``), with an /etc/resolv.conf naming
cove's resolver.
"""

from __future__ import annotations

import glob
import hashlib
import os
import io
import json
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.cli.client import Client
from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon, sandbox_links

PLUGIN = str(Path(sys.executable).parent / "cove-cni")
IMAGE = "cove.test/busybox:cni"


def docker_archive(path: str, tag: str) -> str:
    """The busybox rootfs as ``docker save`` writes an image (manifest.json, config, one layer)."""
    layer = make_busybox_tar(f"{path}.layer")
    with tarfile.open(layer, "a") as t:
        data = b"nameserver 127.0.0.11\n"
        info = tarfile.TarInfo("etc/resolv.conf")
        info.size, info.mode = len(data), 0o644
        t.addfile(info, io.BytesIO(data))
    blob = Path(layer).read_bytes()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/sbin"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(blob).hexdigest()]}
                         }).encode()
    cname = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cname, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in ((cname, config), ("layer.tar", blob), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    Path(layer).unlink()
    return path


class Containerd:
    """containerd in its own mount namespace (private /etc/cni/net.d, /opt/cni/bin, /run)."""

    def __init__(self, tmp: str, cni_conf: dict[str, Any]) -> None:
        self.tmp = Path(tmp)
        self.sock = str(self.tmp / "containerd.sock")
        (self.tmp / "net.d").mkdir(parents=True)
        (self.tmp / "net.d" / "10-cove.conflist").write_text(json.dumps(cni_conf))
        (self.tmp / "config.toml").write_text(
            f'version = 2\nroot = "{self.tmp}/root"\nstate = "{self.tmp}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n')
        script = (f"mount --bind {self.tmp}/net.d /etc/cni/net.d && mount -t tmpfs cove-ctr /opt && "
                  f"mkdir -p /opt/cni/bin && ln -s {PLUGIN} /opt/cni/bin/cove-cni && "
                  f"mount -t tmpfs cove-ctr /run && exec containerd --config {self.tmp}/config.toml")
        self.log = open(self.tmp / "containerd.log", "ab")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while self.ctr("version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.log_text()}")
            time.sleep(0.2)

    def argv(self, *args: str) -> list[str]:
        return ["nsenter", "--mount", "--target", str(self.proc.pid), "ctr", "--address", self.sock, *args]

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)

    def log_text(self) -> str:
        return (self.tmp / "containerd.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        # a test that failed half-way may leave a task: kill it, so no shim outlives containerd
        for cid in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("tasks", "kill", "-s", "SIGKILL", cid)
            self.ctr("tasks", "delete", "-f", cid)
            self.ctr("containers", "delete", cid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Daemon, Containerd]]:
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
        assert shutil.which(tool), f"{tool} is not installed (scripts/install.sh installs Debian's containerd)"
    tmp = tempfile.mkdtemp(prefix="cove-ctr-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/ctr-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    before = sandbox_links()
    # containerd puts its `default` namespace's containers under /sys/fs/cgroup/*/default: made
    # here, removed again (the cgroup file system is the machine's)
    cgroups_before = set(glob.glob("/sys/fs/cgroup/*/default")) | set(glob.glob("/sys/fs/cgroup/default"))
    d.start()
    cd: Containerd | None = None
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        d.ok("network", "create", "--subnet", "10.83.0.0/24", "ctrnet")
        conf = {"cniVersion": "1.0.0", "name": "ctrnet",
                "plugins": [{"type": "cove-cni", "network": "ctrnet", "cove_host": f"unix://{d.sock}"}]}
        cd = Containerd(f"{tmp}/containerd", conf)
        r = cd.ctr("images", "import", docker_archive(f"{tmp}/image.tar", IMAGE))
        assert r.returncode == 0, r.stderr
        yield d, cd
    finally:
        if cd is not None:
            cd.stop()
        for cg in (set(glob.glob("/sys/fs/cgroup/*/default")) | set(glob.glob("/sys/fs/cgroup/default"))) - cgroups_before:
            try:
                os.rmdir(cg)
            except OSError:
                pass
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.cli("network", "rm", "ctrnet")
        d.stop()
        leftover = {n for n in sandbox_links() - before if n.startswith(("veth", "br-"))}
        shutil.rmtree(tmp, ignore_errors=True)
        assert not leftover, f"left behind: {leftover}"


def _sandboxes(d: Daemon) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = Client(f"unix://{d.sock}").get("/cove/sandboxes")
    return out


def test_ctr_run_cni_joins_a_cove_network(lab: tuple[Daemon, Containerd]) -> None:
    d, cd = lab
    d.ok("run", "-d", "--name", "web", "--network", "ctrnet", "bb", "sleep", "300")
    # the ctr container: shows its address, pings the cove container by name, then waits for a
    # cove container to connect (busybox nc) and exits
    script = ("ip -o -4 addr show eth0; ping -c1 -W3 web >/dev/null && echo PINGED-WEB; "
              "nc -l -p 7000; echo LISTEN-DONE")
    run = subprocess.Popen(cd.argv("run", "--cni", "--rm", IMAGE, "box1", "sh", "-c", script),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        addr = ""
        deadline = time.monotonic() + 60
        while not addr and time.monotonic() < deadline:
            sbs = _sandboxes(d)
            if sbs:
                assert [s["name"] for s in sbs] == ["default-box1"]
                net = sbs[0]["networks"]["ctrnet"]
                addr = net["addresses"][0]["address"].split("/")[0] if net["addresses"] else ""
            else:
                assert run.poll() is None, run.communicate()
                time.sleep(0.2)
        assert addr.startswith("10.83.0."), f"no cove address: {_sandboxes(d)}"
        # a cove container reaches it by address and by the name the CNI attachment registered
        pinged = d.cli("run", "--rm", "--network", "ctrnet", "bb", "ping", "-c1", "-W3", "default-box1")
        assert pinged.returncode == 0 and addr in pinged.stdout, pinged.stdout + pinged.stderr
        sent = d.cli("run", "--rm", "--network", "ctrnet", "bb", "sh", "-c",
                     f"for i in 1 2 3 4 5 6 7 8 9 10; do echo hello-from-cove | nc -w2 {addr} 7000 && exit 0; "
                     "sleep 0.5; done; exit 1")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    assert f"inet {addr}/24" in out            # the kernel in ctr's container has cove's address
    assert "PINGED-WEB" in out                 # it resolved `web` through cove's resolver and reached it
    assert "hello-from-cove" in out and "LISTEN-DONE" in out
    # ctr --rm ran the plugin's DEL: the attachment and its veth are gone
    assert _sandboxes(d) == []
    eps = json.loads(d.ok("network", "inspect", "ctrnet"))[0]["Containers"]
    assert [e["Name"] for e in eps.values()] == ["web"]
