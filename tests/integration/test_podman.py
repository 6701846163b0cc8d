"""Podman 4.3 on cove networks through cove-netavark (``cove setup podman``), in the sandbox.

Podman's state lives in a temp dir (``--root``/``--runroot``, ``CONTAINERS_CONF``,
``CONTAINERS_STORAGE_CONF``, its network config dir): nothing of the machine's own podman is read
or written.  The image is cove's busybox rootfs, ``podman import``ed (no registry).  Podman's
networks use ``--ipam-driver none``: cove's IPAM chooses the addresses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon, sandbox_links

# runc here may not raise limits (no CAP_SYS_RESOURCE in the machine's own container): podman's
# defaults (nofile 1048576, nproc = host's) fail, so the containers get lower ones
ULIMITS = ["nofile=1024:1024", "nproc=4096:4096"]


def _toml(conf: dict[str, dict[str, Any]]) -> str:
    out = []
    for table, values in conf.items():
        out.append(f"[{table}]")
        for k, v in values.items():
            out.append(f"{k} = {json.dumps(v)}")
    return "\n".join(out) + "\n"


class Podman:
    def __init__(self, tmp: str, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["podman", "--root", f"{self.tmp}/root", "--runroot", f"{self.tmp}/runroot",
                            "--storage-driver", "vfs", *args], capture_output=True, text=True, env=self.env,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"podman {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}"
        return r


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[Daemon, Podman]]:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (scripts/install.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="cove-podman-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/pm-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    links_before = sandbox_links()
    d.start()
    pm: Podman | None = None
    try:
        # `cove setup podman` writes the drop-in and the link (here into the temp dir)
        conf_d, helpers = f"{tmp}/containers.conf.d", f"{tmp}/helpers"
        out = d.ok("setup", "podman", "--conf-dir", conf_d, "--helper-dir", helpers)
        assert "50-cove.conf" in out and os.path.islink(f"{helpers}/netavark")
        assert Path(f"{helpers}/cove-host").read_text().strip() == f"unix://{d.sock}"
        drop_in = tomllib.loads(Path(f"{conf_d}/50-cove.conf").read_text())
        # podman 4.3 reads no drop-in when CONTAINERS_CONF is set: the drop-in is merged into the
        # test's own containers.conf (which keeps every podman path inside the temp dir)
        conf: dict[str, dict[str, Any]] = {
            "containers": {"default_ulimits": ULIMITS},
            "network": {**drop_in["network"], "network_config_dir": f"{tmp}/netconf"},
            "engine": {**drop_in["engine"], "runtime": "runc", "cgroup_manager": "cgroupfs",
                       "events_logger": "file", "events_logfile_path": f"{tmp}/events.log",
                       "tmp_dir": f"{tmp}/libpod", "static_dir": f"{tmp}/static", "volume_path": f"{tmp}/volumes"},
        }
        Path(f"{tmp}/containers.conf").write_text(_toml(conf))
        Path(f"{tmp}/storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp}/root"\nrunroot = "{tmp}/runroot"\n')
        env = {**os.environ, "CONTAINERS_CONF": f"{tmp}/containers.conf",
               "CONTAINERS_STORAGE_CONF": f"{tmp}/storage.conf"}
        env.pop("COVE_HOST", None)       # podman's cleanup runs without it: cove-netavark must find cove-host
        pm = Podman(tmp, env)
        pm("import", make_busybox_tar(f"{tmp}/busybox.tar"), "localhost/bb")
        for name, subnet in (("red", "10.77.0.0/24"), ("blue", "10.78.0.0/24")):
            d.ok("network", "create", "--subnet", subnet, name)
            pm("network", "create", "--ipam-driver", "none", name)
        yield d, pm
    finally:
        if pm is not None:
            pm("rm", "-f", "-a", "-t", "0", check=False)
        left = d.cli("version").returncode == 0 and json.loads(_get(d, "/cove/sandboxes") or "[]")
        undo = d.cli("setup", "podman", "--undo", "--conf-dir", f"{tmp}/containers.conf.d",
                     "--helper-dir", f"{tmp}/helpers")
        for name in ("red", "blue"):
            d.cli("network", "rm", name)
        d.stop()
        leftover = {n for n in sandbox_links() - links_before if n.startswith(("veth", "br-"))}
        log = Path(d.log).read_text() if os.path.exists(d.log) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"sandboxes left after podman rm: {left}\n{log[-3000:]}"
        assert undo.returncode == 0 and "removed" in undo.stdout, undo.stderr
        assert not leftover, f"links left behind: {leftover}\n{log[-3000:]}"


def _get(d: Daemon, path: str) -> str:
    """GET on the daemon's socket (curl is not assumed: a tiny HTTP/1.0 request)."""
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: cove\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


def _fetch(url: str) -> str | None:
    for _ in range(50):          # httpd may still be starting
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode().strip()
        except OSError:
            time.sleep(0.1)
    return None


def _run(pm: Podman, name: str, net: str, *cmd: str, ports: tuple[str, ...] = ()) -> None:
    pm("run", "-d", "--name", name, "--network", net, *[a for p in ports for a in ("-p", p)], "localhost/bb", *cmd)


def test_podman_containers_on_two_cove_networks(rig: tuple[Daemon, Podman]) -> None:
    d, pm = rig
    _run(pm, "milk", "red", "sleep", "600")
    _run(pm, "bread", "blue", "sh", "-c", "mkdir -p /www && echo hello-from-bread > /www/index.html && "
         "httpd -f -p 8080 -h /www", ports=("18080:8080",))
    try:
        # cove did the work: the daemon knows both, with cove's addresses and its resolver
        sbs = {s["name"]: s for s in json.loads(_get(d, "/cove/sandboxes"))}
        assert set(sbs) == {"milk", "bread"}
        milk_ip = sbs["milk"]["networks"]["red"]["addresses"][0]["address"].split("/")[0]
        assert milk_ip.startswith("10.77.0.") and sbs["bread"]["problems"] == []
        inspect = json.loads(pm("inspect", "milk").stdout)[0]["NetworkSettings"]["Networks"]["red"]
        assert inspect["IPAddress"] == milk_ip
        assert "nameserver 127.0.0.11" in pm("exec", "milk", "cat", "/etc/resolv.conf").stdout

        # different networks: bread's name does not resolve for milk, its address is not reached
        bread_ip = sbs["bread"]["networks"]["blue"]["addresses"][0]["address"].split("/")[0]
        assert pm("exec", "milk", "ping", "-c1", "-W1", "bread", check=False).returncode != 0
        assert pm("exec", "milk", "ping", "-c1", "-W1", bread_ip, check=False).returncode != 0

        # the published port answers on the host (DNAT by cove's firewall; podman's conmon holds the port)
        assert _fetch("http://127.0.0.1:18080/") == "hello-from-bread"

        # connect: milk gets eth1 on blue, resolves bread by name and reaches it
        pm("network", "connect", "blue", "milk")
        assert pm("exec", "milk", "ping", "-c1", "-W2", "bread").returncode == 0
        # (busybox-static's wget crashes in glibc's static NSS: nc speaks HTTP instead)
        get = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {bread_ip} 8080'
        assert "hello-from-bread" in pm("exec", "milk", "sh", "-c", get).stdout

        # reload: torn down and set up again, with the same addresses; names and the port still work
        pm("network", "reload", "--all")
        assert pm("exec", "milk", "ping", "-c1", "-W2", "bread").returncode == 0
        assert _fetch("http://127.0.0.1:18080/") == "hello-from-bread"

        # disconnect: gone from blue again
        pm("network", "disconnect", "blue", "milk")
        assert pm("exec", "milk", "ping", "-c1", "-W1", "bread", check=False).returncode != 0
        assert "eth1" not in pm("exec", "milk", "ip", "-o", "link").stdout
    finally:
        pm("rm", "-f", "-t", "0", "milk", "bread", check=False)
    assert json.loads(_get(d, "/cove/sandboxes")) == []
