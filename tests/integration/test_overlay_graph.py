"""``cove graph`` and ``network inspect`` of an overlay network across two cove hosts (clusterlab).

What is observed: with a container on h1 and one on h2 on the same overlay network, ``cove graph
-o x.dot`` run on h1 (in h1's namespace, as a user on that host) draws h1's VXLAN device with
the network's VNI, h1's VTEP address and UDP 4789 as a port of the network's bridge, h2 as a
remote host by its VTEP address, and h2's container (name and address) behind it; ``network
inspect`` on h1 lists both hosts under Docker's ``Peers`` (``Name``/``IP``) and h2's container
under ``Cove.RemoteEndpoints``, with the address and MAC the kernel's FDB/neighbour entries on
h1 hold for it; when h2's container goes, it leaves both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_graph import parse

from .clusterlab import Host, Lab, ok, registered_lab, sh, until
from .test_overlay_cluster import sleeper

TTL = 10


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with registered_lab(2, TTL) as lab:
        yield lab


def inspect(h: Host, net: str) -> dict:
    return json.loads(ok(h, "network", "inspect", net))[0]


def graph_on(h: Host, path: Path) -> str:
    """``cove graph -o path`` run inside the host's own namespace (it reads that host's links)."""
    r = subprocess.run(["nsenter", f"--net=/run/netns/{h.name}", sys.executable, "-m", "cove", "graph", "-o",
                        str(path)], capture_output=True, text=True, env=h.env, timeout=60)
    assert r.returncode == 0, r.stderr
    return path.read_text()


def test_graph_on_one_host_shows_the_other_hosts_vtep_and_container(lab: Lab, tmp_path: Path) -> None:
    h1, h2 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.40.0.0/24", "gov")
    sleeper(h1, "here", "gov")
    until(lambda: h2.cli("network", "inspect", "gov").returncode == 0, 10)
    sleeper(h2, "there", "gov")
    there_ip = ok(h2, "inspect", "-f", "{{.NetworkSettings.Networks.gov.IPAddress}}", "there")
    there_mac = ok(h2, "inspect", "-f", "{{.NetworkSettings.Networks.gov.MacAddress}}", "there")
    until(lambda: inspect(h1, "gov")["Cove"]["RemoteEndpoints"], 10)

    net = inspect(h1, "gov")
    vni = net["Cove"]["VXLAN"]["VNI"]
    assert net["Cove"]["VXLAN"] == {"Name": f"vx-{vni:06x}", "VNI": vni, "Local": h1.ip, "Port": 4789}
    assert sorted(p["IP"] for p in net["Peers"]) == [h1.ip, h2.ip] and all(p["Name"] for p in net["Peers"])
    [ep] = net["Cove"]["RemoteEndpoints"]
    assert (ep["Name"], ep["IPv4Address"], ep["MacAddress"], ep["VTEP"]) == \
        ("there", f"{there_ip}/24", there_mac, h2.ip)
    assert [c["Name"] for c in net["Containers"].values()] == ["here"]
    # what inspect says is what h1's kernel was programmed with
    vx = net["Cove"]["VXLAN"]["Name"]
    assert f"{there_mac} dev {vx} dst {h2.ip} self permanent" in sh("bridge", "-n", "h1", "fdb", "show").stdout
    assert f"{there_ip} lladdr {there_mac} PERMANENT" in sh("ip", "-n", "h1", "neigh", "show", "dev", vx).stdout

    dot = graph_on(h1, tmp_path / "x.dot")
    nodes, edges, clusters = parse(dot)
    bridge = f"host:{net['Cove']['Bridge']}"
    assert f"VXLAN VNI {vni}" in nodes[f"host:{vx}"] and f"local VTEP {h1.ip}, UDP 4789" in nodes[f"host:{vx}"]
    assert (bridge, f"host:{vx}", "bridge port") in edges
    assert ("host:eth0", f"host:{vx}", "underlay") in edges           # h1's own underlay NIC, from ip -j addr
    peer = f"peer:{h2.ip}"
    assert f"VTEP {h2.ip}" in nodes[peer] and (f"host:{vx}", peer, f"VXLAN VNI {vni}") in edges
    assert any(c.startswith("remote host ") and c.endswith(f"VTEP {h2.ip}") for c in clusters)
    remote = next(n for n, label in nodes.items() if n.startswith(peer + ":") and label.startswith("there\n"))
    assert f"{there_ip}/24" in nodes[remote] and (peer, remote, "FDB + ARP proxy entry") in edges
    assert f"peer:{h1.ip}" not in nodes                                 # h1 is no remote of itself
    assert any(label.startswith("here\n") for label in clusters)          # the local container as before

    ok(h2, "rm", "-f", "there")
    until(lambda: not inspect(h1, "gov")["Cove"]["RemoteEndpoints"], 10)
    assert [p["IP"] for p in inspect(h1, "gov")["Peers"]] == [h1.ip]
    nodes, _, _ = parse(graph_on(h1, tmp_path / "y.dot"))
    assert peer not in nodes and not any(n.startswith(peer) for n in nodes)
    ok(h1, "rm", "-f", "here")
    ok(h1, "network", "rm", "gov")
