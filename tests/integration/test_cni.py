"""A CNI spec suite for cove-cni (0.3.0-1.1.0), driven as a runtime drives a plugin: environment
variables and the network configuration on stdin, on real namespaces in the sandbox.

No official conformance suite exists; each test here is one rule of the spec (SPEC.md: the
result's shape per version, DEL idempotent, CHECK against prevResult, GC keeping
``cni.dev/valid-attachments``, STATUS failing with code 50, the error object and codes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Daemon, sandbox_links

PLUGIN = str(Path(sys.executable).parent / "cove-cni")
VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.fixture(scope="module")
def daemon_() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-cni-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/cni-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    before = sandbox_links()
    d.start()
    try:
        d.ok("network", "create", "--subnet", "10.79.0.0/24", "cninet")
        yield d
    finally:
        gc = _cni(d, "GC", {"cni.dev/valid-attachments": []}, version="1.1.0")   # the tests DEL what they ADD
        removed = d.cli("network", "rm", "cninet")
        d.stop()
        leftover = {n for n in sandbox_links() - before if n.startswith(("veth", "br-"))}
        shutil.rmtree(tmp, ignore_errors=True)
        assert gc == (0, "") and removed.returncode == 0, removed.stderr
        assert not leftover, f"left behind: {leftover}"


@pytest.fixture
def netns() -> Iterator[Any]:
    made: list[str] = []

    def make() -> str:
        name = f"cni-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        return name
    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _conf(d: Daemon, version: str, **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "k8s-pod-network", "type": "cove-cni", "network": "cninet",
            "cove_host": f"unix://{d.sock}", **extra}


def _cni(d: Daemon, cmd: str, extra: dict[str, Any] | None = None, version: str = "1.0.0", ns: str = "",
         cid: str = "", ifname: str = "eth0", conf: dict[str, Any] | None = None,
         env_extra: dict[str, str] | None = None) -> tuple[int, str]:
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_IFNAME": ifname,
           "CNI_NETNS": f"/run/netns/{ns}" if ns else "", "CNI_PATH": str(Path(PLUGIN).parent), **(env_extra or {})}
    body = conf if conf is not None else _conf(d, version, **(extra or {}))
    r = subprocess.run([PLUGIN], input=json.dumps(body), capture_output=True, text=True, env=env, timeout=60)
    return r.returncode, r.stdout


def _ns_addrs(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-o", "addr"], capture_output=True, text=True, check=True).stdout


def test_version_lists_every_supported_version(daemon_: Daemon) -> None:
    code, out = _cni(daemon_, "VERSION", version="0.4.0")
    assert code == 0
    assert json.loads(out)["supportedVersions"] == VERSIONS and json.loads(out)["cniVersion"] == "0.4.0"


@pytest.mark.parametrize("version", VERSIONS)
def test_add_result_per_version_then_del_idempotent(daemon_: Daemon, netns: Any, version: str) -> None:
    ns, cid = netns(), f"c{uuid.uuid4().hex[:10]}"
    code, out = _cni(daemon_, "ADD", version=version, ns=ns, cid=cid)
    assert code == 0, out
    res = json.loads(out)
    assert res["cniVersion"] == version
    assert res["interfaces"] == [{"name": "eth0", "mac": res["interfaces"][0]["mac"], "sandbox": f"/run/netns/{ns}"}]
    ip = res["ips"][0]
    assert ip["address"].startswith("10.79.0.") and ip["gateway"] == "10.79.0.1" and ip["interface"] == 0
    assert ("version" in ip) == (version < "1.0.0")
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.79.0.1"}]
    assert res["dns"] == {"nameservers": ["127.0.0.11"]}
    assert ip["address"] in _ns_addrs(ns)               # the kernel has it
    # a repeated ADD answers the same attachment
    assert json.loads(_cni(daemon_, "ADD", version=version, ns=ns, cid=cid)[1])["ips"] == res["ips"]
    # DEL twice: both succeed with no output; the address is gone
    assert _cni(daemon_, "DEL", version=version, ns=ns, cid=cid) == (0, "")
    assert _cni(daemon_, "DEL", version=version, ns=ns, cid=cid) == (0, "")
    assert ip["address"] not in _ns_addrs(ns)
    # DEL of something never added, even of a network that does not exist, succeeds
    assert _cni(daemon_, "DEL", {"network": "nosuch"}, ns=ns, cid="never") == (0, "")


def test_capabilities_ips_mac_aliases_ports_and_names(daemon_: Daemon, netns: Any) -> None:
    a, b = netns(), netns()
    rc = {"ips": ["10.79.0.50/24"], "mac": "02:00:00:00:79:50", "aliases": ["dbserver"],
          "portMappings": [{"hostPort": 18090, "containerPort": 80, "protocol": "tcp"}]}
    code, out = _cni(daemon_, "ADD", {"runtimeConfig": rc}, ns=a, cid="ca")
    assert code == 0, out
    res = json.loads(out)
    assert res["ips"][0]["address"] == "10.79.0.50/24" and res["interfaces"][0]["mac"] == "02:00:00:00:79:50"
    assert _cni(daemon_, "ADD", ns=b, cid="cb")[0] == 0
    try:
        # b reaches a by the alias (cove's resolver in b's namespace) and by address
        q = ("import socket,dnslib;s=socket.socket(2,2);s.settimeout(3);"
             "s.sendto(dnslib.DNSRecord.question('dbserver').pack(),('127.0.0.11',53));"
             "print(dnslib.DNSRecord.parse(s.recv(512)).a.rdata)")
        r = subprocess.run(["ip", "netns", "exec", b, sys.executable, "-c", q], capture_output=True, text=True)
        assert r.stdout.strip() == "10.79.0.50", r.stderr
        assert subprocess.run(["ip", "netns", "exec", b, "busybox", "ping", "-c1", "-W2", "10.79.0.50"],
                              capture_output=True).returncode == 0
        # the published port answers on the host
        srv = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-m", "http.server", "80"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
        try:
            for _ in range(100):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:18090/", timeout=1) as resp:
                        assert resp.status == 200
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the published port never answered")
        finally:
            srv.kill()
            srv.wait()
    finally:
        _cni(daemon_, "DEL", ns=a, cid="ca")
        _cni(daemon_, "DEL", ns=b, cid="cb")


def test_check_compares_prev_result_with_the_kernel(daemon_: Daemon, netns: Any) -> None:
    ns = netns()
    code, out = _cni(daemon_, "ADD", version="1.0.0", ns=ns, cid="cc")
    prev = json.loads(out)
    try:
        assert _cni(daemon_, "CHECK", {"prevResult": prev}, ns=ns, cid="cc") == (0, "")
        wrong = {**prev, "ips": [{"address": "10.79.0.222/24", "interface": 0}]}
        code, out = _cni(daemon_, "CHECK", {"prevResult": wrong}, ns=ns, cid="cc")
        assert code != 0 and "10.79.0.222" in json.loads(out)["details"]
        # the kernel loses the address: CHECK says so
        subprocess.run(["ip", "-n", ns, "addr", "del", prev["ips"][0]["address"], "dev", "eth0"], check=True)
        code, out = _cni(daemon_, "CHECK", {"prevResult": prev}, ns=ns, cid="cc")
        assert code != 0 and "lacks address" in json.loads(out)["details"]
        # CHECK is not in 0.3.x; an unknown attachment is code 3
        assert json.loads(_cni(daemon_, "CHECK", {"prevResult": prev}, version="0.3.1", ns=ns, cid="cc")[1])["code"] == 1
        assert json.loads(_cni(daemon_, "CHECK", {"prevResult": prev}, ns=ns, cid="nope")[1])["code"] == 3
    finally:
        _cni(daemon_, "DEL", ns=ns, cid="cc")


def test_gc_keeps_valid_attachments(daemon_: Daemon, netns: Any) -> None:
    a, b = netns(), netns()
    assert _cni(daemon_, "ADD", version="1.1.0", ns=a, cid="ga")[0] == 0
    assert _cni(daemon_, "ADD", version="1.1.0", ns=b, cid="gb")[0] == 0
    keep = {"cni.dev/valid-attachments": [{"containerID": "ga", "ifname": "eth0"}]}
    assert _cni(daemon_, "GC", keep, version="1.1.0") == (0, "")
    assert "10.79.0." in _ns_addrs(a) and "10.79.0." not in _ns_addrs(b)
    _cni(daemon_, "DEL", version="1.1.0", ns=a, cid="ga")


def test_status_and_errors(daemon_: Daemon, netns: Any) -> None:
    assert _cni(daemon_, "STATUS", version="1.1.0") == (0, "")
    down = _conf(daemon_, "1.1.0", cove_host="unix:///run/cove/no-daemon.sock")
    code, out = _cni(daemon_, "STATUS", conf=down)
    assert code != 0 and json.loads(out)["code"] == 50
    # the spec's error object: no CNI_COMMAND (4), an unsupported version (1), bad JSON (6)
    r = subprocess.run([PLUGIN], input="{}", capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert r.returncode != 0 and json.loads(r.stdout)["code"] == 4
    assert json.loads(_cni(daemon_, "ADD", version="0.2.0", ns="x", cid="x")[1])["code"] == 1
    r = subprocess.run([PLUGIN], input="{", capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD"})
    assert json.loads(r.stdout)["code"] == 6
    # ADD to a network cove does not have: an error, and nothing attached
    ns = netns()
    code, out = _cni(daemon_, "ADD", {"network": "nosuch"}, ns=ns, cid="bad")
    assert code != 0 and "nosuch" in json.loads(out)["msg"]
    assert "10.79.0." not in _ns_addrs(ns)
