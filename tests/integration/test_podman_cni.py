"""Podman 4.3's CNI backend on a cove network through cove-cni (issue 18), in the sandbox.

Podman runs with ``network_backend = "cni"`` from the test's own containers.conf
(``CONTAINERS_CONF``), whose ``cni_plugin_dirs`` and ``network_config_dir`` are temp dirs: the
cove-cni conflist and the plugin link live there, and podman's storage, run and tmp dirs too;
the machine's /etc/cni and /etc/containers are never read or written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon, sandbox_links
from .test_podman import ULIMITS, Podman, _get, _toml

PLUGIN = str(Path(sys.executable).parent / "cove-cni")


@pytest.fixture(scope="module")
def cni_rig() -> Iterator[tuple[Daemon, Podman]]:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (scripts/install.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="cove-podman-cni-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/pc-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    links_before = sandbox_links()
    d.start()
    pm: Podman | None = None
    try:
        os.makedirs(f"{tmp}/cni-bin")
        os.makedirs(f"{tmp}/cni-conf")
        os.symlink(PLUGIN, f"{tmp}/cni-bin/cove-cni")
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        d.ok("network", "create", "--subnet", "10.84.0.0/24", "covenet")
        # podman's network `covenet` is this conflist: cove-cni with every capability podman passes
        Path(f"{tmp}/cni-conf/covenet.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "covenet",
            "plugins": [{"type": "cove-cni", "network": "covenet", "cove_host": f"unix://{d.sock}",
                         "capabilities": {"portMappings": True, "ips": True, "mac": True, "aliases": True}}]}))
        conf: dict[str, dict[str, Any]] = {
            "containers": {"default_ulimits": ULIMITS},
            "network": {"network_backend": "cni", "cni_plugin_dirs": [f"{tmp}/cni-bin"],
                        "network_config_dir": f"{tmp}/cni-conf"},
            "engine": {"runtime": "runc", "cgroup_manager": "cgroupfs", "events_logger": "file",
                       "events_logfile_path": f"{tmp}/events.log", "tmp_dir": f"{tmp}/libpod",
                       "static_dir": f"{tmp}/static", "volume_path": f"{tmp}/volumes"},
        }
        Path(f"{tmp}/containers.conf").write_text(_toml(conf))
        Path(f"{tmp}/storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp}/root"\nrunroot = "{tmp}/runroot"\n')
        env = {**os.environ, "CONTAINERS_CONF": f"{tmp}/containers.conf",
               "CONTAINERS_STORAGE_CONF": f"{tmp}/storage.conf"}
        env.pop("COVE_HOST", None)
        pm = Podman(tmp, env)
        pm("import", make_busybox_tar(f"{tmp}/busybox-pm.tar"), "localhost/bb")
        yield d, pm
    finally:
        if pm is not None:
            pm("rm", "-f", "-a", "-t", "0", check=False)
        left = d.cli("version").returncode == 0 and json.loads(_get(d, "/cove/sandboxes") or "[]")
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.cli("network", "rm", "covenet")
        d.stop()
        leftover = {n for n in sandbox_links() - links_before if n.startswith(("veth", "br-"))}
        log = Path(d.log).read_text() if os.path.exists(d.log) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"sandboxes left after podman rm: {left}\n{log[-3000:]}"
        assert not leftover, f"links left behind: {leftover}\n{log[-3000:]}"


def _fetch(url: str) -> str | None:
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode().strip())
        except OSError:
            time.sleep(0.1)
    return None


def test_podman_cni_backend_joins_a_cove_network(cni_rig: tuple[Daemon, Podman]) -> None:
    d, pm = cni_rig
    # podman's CNI backend lists the conflist as its network
    assert "covenet" in pm("network", "ls", "--format", "{{.Name}}").stdout.split()
    d.ok("run", "-d", "--name", "web", "--network", "covenet", "bb", "sleep", "300")
    pm("run", "-d", "--name", "pod1", "--network", "covenet", "--network-alias", "pal", "-p", "18095:8080",
       "localhost/bb", "sh", "-c", "mkdir -p /www && echo hello-from-podman > /www/index.html && "
       "httpd -f -p 8080 -h /www")
    try:
        sbs = json.loads(_get(d, "/cove/sandboxes"))
        assert [s["name"] for s in sbs] == ["pod1"]          # K8S_POD_NAME: the container's name
        ip = sbs[0]["networks"]["covenet"]["addresses"][0]["address"].split("/")[0]
        assert ip.startswith("10.84.0.")
        inspect = json.loads(pm("inspect", "pod1").stdout)[0]["NetworkSettings"]["Networks"]["covenet"]
        assert inspect["IPAddress"] == ip                      # podman read cove-cni's result
        # the podman container reaches the cove container by name (cove's resolver) ...
        pm("exec", "pod1", "sh", "-c", "echo nameserver 127.0.0.11 > /etc/resolv.conf")
        assert pm("exec", "pod1", "ping", "-c1", "-W2", "web").returncode == 0
        # ... and the cove container reaches it by its name and by podman's alias
        for name in ("pod1", "pal"):
            r = d.cli("exec", "web", "ping", "-c1", "-W2", name)
            assert r.returncode == 0 and ip in r.stdout, r.stdout + r.stderr
        # the published port (the portMappings capability) answers on the host
        assert _fetch("http://127.0.0.1:18095/") == "hello-from-podman"
    finally:
        pm("rm", "-f", "-t", "0", "pod1", check=False)
    # podman rm ran DEL: the attachment is gone, the cove container stays
    assert json.loads(_get(d, "/cove/sandboxes")) == []
    eps = json.loads(d.ok("network", "inspect", "covenet"))[0]["Containers"]
    assert [e["Name"] for e in eps.values()] == ["web"]
    with pytest.raises(OSError):                               # and so is the published port
        urllib.request.urlopen("http://127.0.0.1:18095/", timeout=1)
