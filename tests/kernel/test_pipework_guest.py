"""``cove attach --vlan`` on an Open vSwitch bridge (this machine's kernel has no OVS; UML has):
pipework's single-host VLAN split from the seed article. Four containers in one subnet on one
OVS bridge, two with tag 100 and two with tag 200: same tag pings, different tag does not."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.integration.conftest import Daemon
from tests.kernel.test_kernel_features import ovs  # noqa: F401 - the Open vSwitch daemons fixture

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def cove(cove_lan: Daemon) -> Daemon:
    """One daemon on the guest's default firewall backend: these drivers add no firewall rule."""
    return cove_lan


def vsctl(*args: str) -> str:
    return subprocess.run(["ovs-vsctl", "--timeout=20", *args], check=True, capture_output=True, text=True).stdout


def ping(cove: Daemon, src: str, dst: str, tries: int = 1) -> bool:
    return any(cove.cli("exec", src, "ping", "-c1", "-W1", dst).returncode == 0 for _ in range(tries))


def test_ovs_vlan_tags_split_attached_containers(ovs: None, cove: Daemon) -> None:  # noqa: F811
    br = f"ovs{uuid.uuid4().hex[:4]}"
    vsctl("add-br", br)
    try:
        plan = [("t1", 100, "10.70.0.1"), ("t2", 100, "10.70.0.2"), ("t3", 200, "10.70.0.3"), ("t4", 200, "10.70.0.4")]
        for name, tag, ip in plan:
            cove.ok("run", "-d", "--name", name, "--network", "none", "bb", "sleep", "3600")
            assert cove.ok("attach", name, "--bridge", br, "--ip", f"{ip}/24", "--vlan", str(tag)).strip() == "eth0"
        ports = {}
        for (name, tag, _), c in zip(plan, json.loads(cove.ok("inspect", *(p[0] for p in plan)))):
            x = c["NetworkSettings"]["ExtraInterfaces"]["eth0"]
            assert (x["BridgeType"], x["Vlan"]) == ("openvswitch", tag)
            ports[name] = x["HostInterface"]
        tags = dict(line.split(",") for line in vsctl("--format=csv", "--no-headings", "--data=bare",
                                                        "--columns=name,tag", "list", "Port").split())
        assert {name: tags[port] for name, port in ports.items()} == {n: str(t) for n, t, _ in plan}
        assert set(vsctl("list-ports", br).split()) == set(ports.values())
        assert ping(cove, "t1", "10.70.0.2", tries=3)           # tag 100 <-> tag 100
        assert ping(cove, "t4", "10.70.0.3", tries=3)           # tag 200 <-> tag 200
        assert not ping(cove, "t1", "10.70.0.3")                # 100 -> 200: another broadcast domain
        assert not ping(cove, "t4", "10.70.0.2")

        r = cove.cli("attach", "t1", "--bridge", ports["t2"], "--ip", "10.70.0.9/24")
        assert r.returncode != 0 and "bridge" in r.stderr       # a port of the OVS bridge, not a bridge
        assert set(vsctl("list-ports", br).split()) == set(ports.values())

        cove.ok("detach", "t1", "--ifname", "eth0")
        assert ports["t1"] not in vsctl("list-ports", br).split()
        assert not ping(cove, "t2", "10.70.0.1")
        cove.ok("stop", "-t", "0", "t2")                        # the namespace dies: cove deletes the port
        assert ports["t2"] not in vsctl("list-ports", br).split()
        cove.ok("rm", "-f", "t1", "t2", "t3", "t4")
        assert vsctl("list-ports", br).split() == []
        assert "cove-pw" not in vsctl("--columns=external_ids", "list", "Port")
    finally:
        for name in ("t1", "t2", "t3", "t4"):
            cove.cli("rm", "-f", name)
        subprocess.run(["ovs-vsctl", "--timeout=20", "--if-exists", "del-br", br], capture_output=True)
