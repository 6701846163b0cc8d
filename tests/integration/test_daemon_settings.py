"""Running cove like dockerd: -b with the admin's bridge, --bip changes across restarts, info.

These tests start their own daemons one after another (never two at once: a
daemon owns the sandbox's firewall table).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import COVE, Daemon, firewall_text, sandbox_links

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-set-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/set-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    try:
        yield d
    finally:
        if d.proc is not None:
            for cid in d.cli("ps", "-aq").stdout.split():
                d.cli("rm", "-f", cid)
        d.stop()
        subprocess.run(["ip", "link", "del", "cove0"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def bridge_addrs(name: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", name], capture_output=True, text=True).stdout
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]") for a in link["addr_info"]]


def test_bridge_flag_uses_the_admins_bridge_and_leaves_it(fresh: Daemon) -> None:
    subprocess.run(["ip", "link", "add", "br0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "192.168.50.1/24", "dev", "br0"], check=True)
        fresh.start("--bridge", "br0")
        fresh.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{fresh.data_root}.tar"), "bb")
        fresh.ok("run", "-d", "--name", "onbr0", "bb", "sleep", "3600")
        data = json.loads(fresh.ok("inspect", "onbr0"))[0]["NetworkSettings"]["Networks"]["bridge"]
        assert data["IPAddress"].startswith("192.168.50.") and data["Gateway"] == "192.168.50.1"
        assert fresh.cli("exec", "onbr0", "ping", "-c1", "-W1", "192.168.50.1").returncode == 0
        assert "cove0" not in sandbox_links()
        fresh.ok("rm", "-f", "onbr0")
        fresh.stop()
        assert "br0" in sandbox_links() and bridge_addrs("br0") == ["192.168.50.1/24"]
    finally:
        subprocess.run(["ip", "link", "del", "br0"], capture_output=True)


def test_restart_with_a_new_bip_leaves_nothing_of_the_old(fresh: Daemon) -> None:
    fresh.start("--bip", "10.200.0.1/24")
    fresh.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{fresh.data_root}.tar"), "bb")
    fresh.ok("run", "-d", "--name", "b1", "bb", "sleep", "3600")
    assert json.loads(fresh.ok("inspect", "b1"))[0]["NetworkSettings"]["IPAddress"].startswith("10.200.0.")
    fresh.ok("rm", "-f", "b1")
    fresh.stop()
    fresh.start("--bip", "10.201.0.1/24")
    assert bridge_addrs("cove0") == ["10.201.0.1/24"]
    rules = firewall_text()
    assert "10.200.0.0" not in rules and "10.201.0.0/24" in rules
    fresh.ok("run", "-d", "--name", "b2", "bb", "sleep", "3600")
    assert json.loads(fresh.ok("inspect", "b2"))[0]["NetworkSettings"]["IPAddress"].startswith("10.201.0.")


def test_bad_setting_stops_the_daemon_with_the_key(fresh: Daemon, tmp_path) -> None:
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"bip": "10.0.0.0/24"}))
    r = subprocess.run([*COVE, "daemon",
                        "--config-file", str(cfg), "--host", f"unix://{fresh.sock}", "--data-root", fresh.data_root],
                       capture_output=True, text=True, env=fresh.env, timeout=30)
    assert r.returncode != 0 and "bip" in r.stderr and "10.0.0.0/24" in r.stderr


def test_info_shows_settings_and_kernel_features(fresh: Daemon) -> None:
    fresh.start("--mtu", "1400", "--icc", "false")
    info = json.loads(subprocess.run(["curl", "-s", "--unix-socket", fresh.sock, "http://x/info"],
                                     capture_output=True, text=True).stdout or "{}") if shutil.which("curl") else None
    if info is None:
        import http.client
        import socket as _s

        class C(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = _s.socket(_s.AF_UNIX)
                self.sock.connect(fresh.sock)

        c = C("x")
        c.request("GET", "/info")
        info = json.loads(c.getresponse().read())
    assert info["CoveSettings"]["mtu"] == 1400 and info["CoveSettings"]["icc"] is False
    feats = info["CoveKernelFeatures"]
    assert feats["bridge"] and feats["veth"] and feats["nftables"]
    assert "ipvlan" in feats and "8021q" in feats and "openvswitch" in feats
    assert "1400" in fresh.ok("info")
