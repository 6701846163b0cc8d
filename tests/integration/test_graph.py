"""``cove graph`` on a real topology: the DOT names what ``ip -j link``/``addr`` show.

Every bridge, every veth pair (host end by name, container end as ``eth0@ifN`` with N the
host end's index), every container and every address must be in the picture, and the edges
must join what the kernel joins (veth host end -> bridge it is a port of, veth host end ->
the container interface whose peer it is).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.integration.conftest import Daemon

NODE = re.compile(r'^\s+"((?:[^"\\]|\\.)*)" \[label="((?:[^"\\]|\\.)*)"')
EDGE = re.compile(r'^\s+"((?:[^"\\]|\\.)*)" -- "((?:[^"\\]|\\.)*)"(?: \[label="((?:[^"\\]|\\.)*)")?')
CLUSTER = re.compile(r'^\s+label="((?:[^"\\]|\\.)*)"; style="rounded,filled"')


def parse(dot: str) -> tuple[dict[str, str], set[tuple[str, str, str]], list[str]]:
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    clusters: list[str] = []
    for line in dot.splitlines():
        if m := EDGE.match(line):
            edges.add((m[1], m[2], m[3] or ""))
        elif m := NODE.match(line):
            nodes[m[1]] = m[2].replace("\\n", "\n")
        elif m := CLUSTER.match(line):
            clusters.append(m[1].replace("\\n", "\n"))
    return nodes, edges, clusters


def ip_json(*args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout)


def test_graph_names_every_bridge_veth_pair_container_and_address(cove: Daemon, lan: str, tmp_path) -> None:
    cove.ok("network", "create", "greatwall")
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=lan0", "subway")
    cove.ok("run", "-d", "--name", "milk", "-p", "8080:80", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "beijing", "--network", "greatwall", "--network-alias", "bj", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "mac", "--network", "subway", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "side", "--network", "container:beijing", "bb", "sleep", "300")
    cove.ok("network", "connect", "greatwall", "milk")

    dot_file = tmp_path / "net.dot"
    cove.ok("graph", "-o", str(dot_file))
    nodes, edges, clusters = parse(dot_file.read_text())
    assert nodes and edges, dot_file.read_text()
    links = {link["ifname"]: link for link in ip_json("-d", "link")}

    # every bridge of the sandbox host, with its address
    bridges = {n for n, link in links.items() if (link.get("linkinfo") or {}).get("info_kind") == "bridge"}
    assert {"cove0"} <= bridges
    for br in bridges:
        assert f"host:{br}" in nodes, f"bridge {br} missing"
    for a in ip_json("-4", "addr"):
        if a["ifname"] in bridges:
            for ai in a["addr_info"]:
                assert f"{ai['local']}/{ai['prefixlen']}" in nodes[f"host:{a['ifname']}"]

    # every container by name, and each of its interfaces: name, peer index, addresses, link to the host
    for name in ("milk", "beijing", "mac", "side"):
        assert any(c.startswith(name + "\n") for c in clusters), f"{name} missing from {clusters}"
    veths = {n for n, link in links.items() if (link.get("linkinfo") or {}).get("info_kind") == "veth"
             and link.get("master") in bridges}
    for name in ("milk", "beijing", "mac"):
        cid = cove.ok("inspect", "-f", "{{.Id}}", name).strip()
        inside = json.loads(cove.ok("nsenter", name, "--", "ip", "-j", "-d", "addr"))
        for link in inside:
            if link["ifname"] == "lo":
                continue
            node = f"{cid}:{link['ifname']}"
            assert node in nodes, f"{name}'s {link['ifname']} missing"
            for ai in link["addr_info"]:
                if ai["family"] == "inet":
                    assert f"{ai['local']}/{ai['prefixlen']}" in nodes[node]
            kind = (link.get("linkinfo") or {}).get("info_kind")
            if kind == "veth":
                host_end = next(n for n, h in links.items() if h["ifindex"] == link["link_index"])
                assert nodes[node].startswith(f"{link['ifname']}@if{link['link_index']}\n")
                assert nodes[f"host:{host_end}"] == f"{host_end}@if{link['ifindex']}"
                assert (f"host:{host_end}", node, "veth pair") in edges
                assert (f"host:{links[host_end]['master']}", f"host:{host_end}", "bridge port") in edges
                veths.discard(host_end)
            else:
                assert kind == "macvlan", link
                assert ("host:lan0", node, "macvlan child") in edges
    assert not veths, f"veth pairs the graph did not show: {veths}"

    # the published port leads to milk's eth0; side shares beijing's namespace
    milk = cove.ok("inspect", "-f", "{{.Id}}", "milk").strip()
    assert ("port:0.0.0.0:8080/tcp", f"{milk}:eth0", "DNAT to 80/tcp") in edges
    beijing = cove.ok("inspect", "-f", "{{.Id}}", "beijing").strip()
    assert any(a == f"{beijing}:eth0" and lbl == "shares its network namespace" for a, _, lbl in edges)

    # one network only: its bridge and its endpoints, nothing of the default bridge
    only, only_edges, _ = parse(cove.ok("graph", "--network", "greatwall"))
    assert f"{milk}:eth1" in only and f"{beijing}:eth0" in only
    assert f"{milk}:eth0" not in only and "host:cove0" not in only
    assert all(a in only and b in only for a, b, _ in only_edges)


def test_graph_draws_svg_with_graphviz(cove: Daemon, tmp_path) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is not installed (scripts/install.sh installs graphviz)")
    cove.ok("run", "-d", "--name", "pic", "bb", "sleep", "300")
    out = tmp_path / "net.svg"
    cove.ok("graph", "-o", str(out))
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "pic" in svg and "cove0" in svg
    r = cove.cli("graph", "-o", str(tmp_path / "net.gif"))
    assert r.returncode != 0 and "use .dot, .svg, .png or .pdf" in r.stderr
