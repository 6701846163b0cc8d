"""Running cove like dockerd: -b with the admin's bridge, --bip changes across restarts, info.

These tests start their own daemons one after another (never two at once: a
daemon owns the sandbox's firewall table).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from cove.runtime.busybox import make_busybox_tar
from cove.runtime.rootfs import mount_points

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


def container_ip(d: Daemon, name: str) -> str:
    return json.loads(d.ok("inspect", name))[0]["NetworkSettings"]["IPAddress"]


def test_daemon_json_settings_reach_every_container(fresh: Daemon, tmp_path) -> None:
    """fixed-cidr, mtu, dns/dns-search/dns-opts, icc=false, ip and default-address-pools
    from /etc/cove/daemon.json, each seen where a user would look."""
    subprocess.run(["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"], check=True)
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({
        "bip": "10.210.0.1/24", "fixed-cidr": "10.210.0.128/25", "mtu": 1400, "icc": False,
        "dns": ["10.210.0.53"], "dns-search": ["corp.test"], "dns-opts": ["timeout:2"], "ip": "10.99.0.1",
        "default-address-pools": [{"base": "10.220.0.0/16", "size": 24}]}))
    try:
        fresh.start("--config-file", str(cfg))
        fresh.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{fresh.data_root}.tar"), "bb")
        fresh.ok("run", "-d", "--name", "s1", "bb", "sleep", "3600")
        fresh.ok("run", "-d", "--name", "s2", "-p", "8484:80", "host", "python3", "-m", "http.server", "80")
        ip1, ip2 = container_ip(fresh, "s1"), container_ip(fresh, "s2")
        assert all(int(ip.split(".")[3]) >= 128 and ip.startswith("10.210.0.") for ip in (ip1, ip2))  # fixed-cidr
        assert fresh.ok("exec", "s1", "cat", "/sys/class/net/eth0/mtu").strip() == "1400"           # mtu
        resolv = fresh.ok("exec", "s1", "cat", "/etc/resolv.conf")
        assert "nameserver 10.210.0.53" in resolv and "search corp.test" in resolv and "timeout:2" in resolv
        # icc=false: neighbours on the default bridge are cut off from each other, not from the gateway
        assert fresh.cli("exec", "s1", "ping", "-c1", "-W1", ip2).returncode != 0
        assert fresh.cli("exec", "s1", "ping", "-c1", "-W1", "10.210.0.1").returncode == 0
        # ip: -p without an address binds the daemon's --ip, and answers there
        assert fresh.ok("port", "s2", "80").strip() == "10.99.0.1:8484"
        ok = 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5)'
        for _ in range(50):
            if subprocess.run([sys.executable, "-c", ok, "http://10.99.0.1:8484/"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("published port on --ip did not answer")
        # default-address-pools: a network with no subnet gets one from the pool
        fresh.ok("network", "create", "pooled")
        subnet = json.loads(fresh.ok("network", "inspect", "pooled"))[0]["IPAM"]["Config"][0]["Subnet"]
        assert subnet.startswith("10.220.") and subnet.endswith("/24")
        fresh.ok("network", "rm", "pooled")
    finally:
        subprocess.run(["ip", "addr", "del", "10.99.0.1/32", "dev", "lo"], capture_output=True)


def test_ip_forward_and_ip_masq_off(fresh: Daemon, outside: str) -> None:
    """--ip-forward=false leaves the sysctl alone; --ip-masq=false sends containers' own
    addresses upstream, so a server with no route back cannot answer (with masquerade it can)."""
    fwd = "/proc/sys/net/ipv4/ip_forward"
    with open(fwd, "w") as f:
        f.write("0")
    fresh.start("--ip-forward=false", "--ip-masq=false", "--bip", "10.230.0.1/24")
    assert open(fwd).read().strip() == "0"
    fresh.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{fresh.data_root}.tar"), "bb")
    fresh.ok("run", "-d", "--name", "nomasq", "bb", "sleep", "3600")
    with open(fwd, "w") as f:
        f.write("1")                       # the admin's choice; cove did not make it
    assert fresh.cli("exec", "nomasq", "ping", "-c1", "-W1", "203.0.113.2").returncode != 0
    fresh.ok("rm", "-f", "nomasq")        # forgets the address's flows: the next one gets masquerade
    fresh.stop()
    with open(fwd, "w") as f:
        f.write("0")
    fresh.start("--bip", "10.230.0.1/24")           # the defaults: forwarding on, masquerade on
    assert open(fwd).read().strip() == "1"
    fresh.ok("run", "-d", "--name", "masq", "bb", "sleep", "3600")
    assert fresh.cli("exec", "masq", "ping", "-c1", "-W2", "203.0.113.2").returncode == 0


def test_inspect_names_the_kernel_objects_behind_an_endpoint(fresh: Daemon) -> None:
    """The host end of the veth shows in `ip link` as NAME@ifN, N the container side's index;
    inspect gives the same names and indexes, and the bridge `bridge link` shows."""
    fresh.start()
    fresh.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{fresh.data_root}.tar"), "bb")
    fresh.ok("network", "create", "kobj")
    fresh.ok("run", "-d", "--name", "k1", "--network", "kobj", "bb", "sleep", "3600")
    c = json.loads(fresh.ok("inspect", "k1"))[0]
    k = c["NetworkSettings"]["Networks"]["kobj"]["Cove"]
    host = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", k["HostInterface"]],
                                     capture_output=True, text=True, check=True).stdout)[0]
    assert host["ifindex"] == k["HostIfIndex"] and host["link_index"] == k["IfIndex"]
    assert host["master"] == k["Bridge"] and k["SandboxKey"] == c["NetworkSettings"]["SandboxKey"]
    inside = json.loads(fresh.ok("nsenter", "k1", "--", "ip", "-j", "link", "show", "dev", "eth0"))[0]
    assert inside["ifindex"] == k["IfIndex"] and inside["link_index"] == k["HostIfIndex"]
    net = json.loads(fresh.ok("network", "inspect", "kobj"))[0]
    assert net["Containers"][c["Id"]]["Cove"]["HostInterface"] == k["HostInterface"]
    assert fresh.ok("inspect", "-f", "{{.NetworkSettings.Networks.kobj.Cove.HostInterface}}", "k1").strip() == \
        k["HostInterface"]


def cgroup_mounts() -> list[str]:
    return [point for point, fstype in mount_points() if fstype in ("cgroup", "cgroup2")]


def test_cgroup_parent_holds_the_containers_cgroups(fresh: Daemon) -> None:
    """--cgroup-parent (dockerd's): a container's cgroups are PARENT/<id> in every hierarchy, as
    /proc/PID/cgroup shows, and rm -f leaves none behind."""
    parent = f"/cove-it-{uuid.uuid4().hex[:8]}"
    try:
        fresh.start("--cgroup-parent", parent)
        cid = fresh.ok("run", "-d", "--name", "cg", "host", "sleep", "3600").strip()
        pid = json.loads(fresh.ok("inspect", "cg"))[0]["State"]["Pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            paths = {line.rstrip("\n").split(":", 2)[2] for line in f}
        assert f"{parent}/{cid}" in paths, paths
        made = [f"{m}{parent}/{cid}" for m in cgroup_mounts() if os.path.isdir(f"{m}{parent}/{cid}")]
        assert made
        fresh.ok("rm", "-f", "cg")
        assert not [p for p in made if os.path.exists(p)]
    finally:
        for m in cgroup_mounts():
            try:
                os.rmdir(f"{m}{parent}")
            except OSError:
                pass
