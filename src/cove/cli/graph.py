"""``cove graph``: the host's container network as a picture, drawn as the seed articles draw it.

The picture has the host's NICs and bridges (with their addresses), every veth pair with both
ends' names as ``ip link`` shows them (``vethXXXX`` on the host, ``eth0@ifN`` in the container),
each container with its addresses, names and aliases, macvlan/ipvlan parents and their 802.1q
sub-interfaces, pipework interfaces (``cove attach``), published ports, and for an overlay
network its VXLAN device (VNI, local VTEP, UDP port) on the network's bridge and each remote host
(its VTEP) with the containers reached through it.

What is drawn comes from two places: the daemon (``GET /networks``, ``GET /containers/json``
and each container's inspect, whose ``Cove`` fields name the kernel objects behind every
endpoint; an overlay network's inspect adds ``Peers`` and ``Cove.VXLAN``/``Cove.RemoteEndpoints``,
what the daemon programmed as FDB + neighbour entries from the cluster store) and the host's own
links (``ip -j -d addr``), read where the CLI runs, which must be the daemon's machine for that
part (as ``cove capture``).  :func:`build` turns those answers into a small model and
:func:`to_dot` writes it as Graphviz DOT; the layout is Graphviz's own (``dot -Tsvg`` /
``-Tpng``), there is no layout code here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import click

from cove.cli.main import client


@dataclass
class Node:
    id: str
    label: str
    kind: str              # nic, bridge, veth, vlan, iface, port, note, vxlan, peer, remote
    cluster: str = "host"  # "host", a container id or "peer:<VTEP>" (a remote host of an overlay)


@dataclass
class Edge:
    a: str
    b: str
    label: str = ""
    style: str = "solid"


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)   # container id / peer:VTEP -> its cluster's label

    def node(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def edge(self, a: str, b: str, label: str = "", style: str = "solid") -> None:
        if not any(e.a == a and e.b == b for e in self.edges):
            self.edges.append(Edge(a, b, label, style))


def _host_id(ifname: str) -> str:
    return f"host:{ifname}"


def _addrs(link: dict[str, Any]) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
            if a.get("scope") != "link" and a.get("local")]


def _kind(link: dict[str, Any]) -> str:
    return str((link.get("linkinfo") or {}).get("info_kind") or "")


def _host_node(g: Graph, link: dict[str, Any], extra: str = "") -> str:
    name = link["ifname"]
    kind = _kind(link)
    lines = [name + (f"@{link['link']}" if kind == "vlan" and link.get("link") else "")]
    if kind == "vlan":
        vid = ((link.get("linkinfo") or {}).get("info_data") or {}).get("id")
        lines.append(f"802.1q VLAN {vid}" if vid is not None else "802.1q")
    lines += _addrs(link)
    if extra:
        lines.append(extra)
    shape = {"bridge": "bridge", "veth": "veth", "vlan": "vlan"}.get(kind, "nic")
    return g.node(Node(_host_id(name), "\\n".join(lines), shape))


def build(networks: list[dict[str, Any]], containers: list[dict[str, Any]], host_links: list[dict[str, Any]],
          only_network: str | None = None, counters: dict[str, dict[str, Any]] | None = None) -> Graph:
    """The picture's model from the daemon's answers and ``ip -j -d addr`` (a pure function).

    ``networks`` are network inspect objects, ``containers`` container inspect objects; with
    ``only_network`` (a name or id) only that network, its endpoints and their containers are drawn.
    ``counters`` (``--stats``): container id -> the ``networks`` object of its stats, drawn as
    ``rx / tx`` bytes on each interface.
    """
    def traffic(cid: str, ifname: str) -> list[str]:
        n = ((counters or {}).get(cid) or {}).get(ifname)
        if not n:
            return []
        from cove.stats import decimal_size

        return [f"rx {decimal_size(n.get('rx_bytes', 0))} / tx {decimal_size(n.get('tx_bytes', 0))}"]

    g = Graph()
    links = {link["ifname"]: link for link in host_links if link.get("ifname") and link["ifname"] != "lo"}
    nets = {n["Id"]: n for n in networks}
    if only_network is not None:
        wanted = [n for n in networks if only_network in (n["Name"], n["Id"]) or n["Id"].startswith(only_network)]
        if not wanted:
            raise click.ClickException(f"network {only_network} not found")
        nets = {wanted[0]["Id"]: wanted[0]}
    names = {c["Id"]: c["Name"].lstrip("/") for c in containers}
    shown_host: set[str] = set()
    shares: list[tuple[str, str]] = []     # (owner container id, the sharer's note node)

    def host(name: str, extra: str = "") -> str:
        shown_host.add(name)
        link = links.get(name)
        if link is None:
            return g.node(Node(_host_id(name), name + (f"\\n{extra}" if extra else ""), "nic"))
        node = _host_node(g, link, extra)
        lower = link.get("link")
        if _kind(link) == "vlan" and isinstance(lower, str) and lower in links:
            g.edge(host(lower), node, "802.1q trunk")
        return node

    def overlay(net: dict[str, Any], cove: dict[str, Any]) -> None:
        """The VXLAN device on the network's bridge, and each remote host (VTEP) with the endpoints
        reached through it (``Cove.RemoteEndpoints`` of the network inspect)."""
        vx = cove["VXLAN"]
        name, vni, local, port = vx.get("Name", ""), vx.get("VNI"), vx.get("Local", ""), vx.get("Port", 4789)
        shown_host.add(name)
        node = g.node(Node(_host_id(name), f"{name}\\nVXLAN VNI {vni}\\nlocal VTEP {local or '?'}, UDP {port}",
                           "vxlan"))
        g.edge(_host_id(cove["Bridge"]), node, "bridge port")
        nic = next((n for n, lk in links.items() if local and any(a.get("local") == local
                                                                 for a in lk.get("addr_info", []))), None)
        if nic is not None:
            g.edge(host(nic), node, "underlay")
        hosts = {str(p.get("IP")): str(p.get("Name") or "") for p in net.get("Peers") or []}
        for ep in cove.get("RemoteEndpoints") or []:
            vtep = str(ep.get("VTEP") or "?")
            if vtep == local:
                continue
            hostname = str(ep.get("Host") or hosts.get(vtep) or "")
            cluster = f"peer:{vtep}"
            g.clusters.setdefault(cluster, f"remote host {hostname}".strip() + f"\\nVTEP {vtep}")
            peer = g.node(Node(cluster, f"VTEP {vtep}\\nUDP {port}", "peer", cluster))
            g.edge(node, peer, f"VXLAN VNI {vni}", "dashed")
            addr = str(ep.get("IPv4Address") or "")
            label = [str(ep.get("Name") or str(ep.get("ContainerID") or "")[:12]), addr,
                     f"MAC {ep.get('MacAddress', '')}", f"on {net['Name']}"]
            remote = g.node(Node(f"{cluster}:{net['Id']}:{addr}", "\\n".join(x for x in label if x), "remote",
                                 cluster))
            g.edge(peer, remote, "FDB + ARP proxy entry")

    # networks: their bridge (or parent NIC), subnets and gateway
    for net in nets.values():
        cove = net.get("Cove") or {}
        subnets = ", ".join(f"{c.get('Subnet', '')}" + (f" gw {c['Gateway']}" if c.get("Gateway") else "")
                            for c in (net.get("IPAM") or {}).get("Config") or [])
        desc = f"network {net['Name']} ({net['Driver']})" + (f"\\n{subnets}" if subnets else "")
        if cove.get("Bridge"):
            host(cove["Bridge"], desc)
            if cove.get("Uplink"):
                g.edge(host(cove["Uplink"]), _host_id(cove["Bridge"]), "uplink (bridge port)")
            if cove.get("VXLAN"):
                overlay(net, cove)
        elif net["Driver"] in ("macvlan", "ipvlan") and (net.get("Options") or {}).get("parent"):
            host(net["Options"]["parent"], desc)

    # containers: a cluster each, an interface node per endpoint, and how it reaches the host
    for c in containers:
        cid = c["Id"]
        settings = c.get("NetworkSettings") or {}
        mode = str((c.get("HostConfig") or {}).get("NetworkMode") or "")
        endpoints = {name: ep for name, ep in (settings.get("Networks") or {}).items()
                     if only_network is None or ep.get("NetworkID") in nets}
        if only_network is not None and not endpoints:
            continue
        state = c.get("State") or {}
        title = [names[cid], f"{cid[:12]} ({state.get('Status', '')})"]
        if mode.startswith("container:"):
            other = mode.split(":", 1)[1]
            title.append(f"network of container {names.get(other, other[:12])}")
        elif mode in ("host", "none"):
            title.append(f"--network {mode}")
        g.clusters[cid] = "\\n".join(title)
        primary = None
        for net_name, ep in endpoints.items():
            kobj = ep.get("Cove") or {}
            ifname = kobj.get("Interface") or ""
            if not ifname:
                continue
            lines = [f"{ifname}@if{kobj.get('HostIfIndex')}" if kobj.get("HostIfIndex") else ifname]
            lines += [a for a in (f"{ep['IPAddress']}/{ep['IPPrefixLen']}" if ep.get("IPAddress") else "",
                                  f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}"
                                  if ep.get("GlobalIPv6Address") else "") if a]
            lines.append(f"MAC {ep.get('MacAddress', '')}")
            aliases = [a for a in ep.get("Aliases") or [] if a != cid[:12]]
            lines.append(f"on {net_name}" + (f", aliases {', '.join(aliases)}" if aliases else ""))
            lines += traffic(cid, ifname)
            iface = g.node(Node(f"{cid}:{ifname}", "\\n".join(lines), "iface", cid))
            primary = primary or iface
            if kobj.get("HostInterface"):
                veth = kobj["HostInterface"]
                link = links.get(veth)
                label = f"{veth}@if{kobj.get('IfIndex')}" if kobj.get("IfIndex") else veth
                shown_host.add(veth)
                g.node(Node(_host_id(veth), label, "veth"))
                g.edge(_host_id(veth), iface, "veth pair")
                master = (link or {}).get("master") or kobj.get("Bridge")
                if master:
                    g.edge(host(master), _host_id(veth), "bridge port")
            elif kobj.get("Parent"):
                driver = nets.get(ep.get("NetworkID", ""), {}).get("Driver", "")
                g.edge(host(kobj["Parent"]), iface, f"{driver} child".strip(), "dashed")
        for ifname, x in ((settings.get("ExtraInterfaces") or {}).items() if only_network is None else ()):
            lines = [ifname, f"{x.get('IPAddress')}/{x.get('IPPrefixLen')}" if x.get("IPAddress") else "",
                     f"MAC {x.get('MacAddress', '')}", "cove attach (pipework)", *traffic(cid, ifname)]
            iface = g.node(Node(f"{cid}:{ifname}", "\\n".join(a for a in lines if a), "iface", cid))
            veth = x.get("HostInterface") or ""
            if veth:
                shown_host.add(veth)
                g.node(Node(_host_id(veth), veth, "veth"))
                g.edge(_host_id(veth), iface, "veth pair")
                tag = f", VLAN tag {x['Vlan']}" if x.get("Vlan") else ""
                g.edge(host(x.get("Bridge") or "?", str(x.get("BridgeType") or "")), _host_id(veth),
                       f"bridge port{tag}")
        if primary is None:
            label = {"none": "only lo", "host": "the host's own interfaces"}.get(
                mode, "the interfaces of the container it shares" if mode.startswith("container:") else "no interfaces")
            primary = g.node(Node(f"{cid}:-", label, "note", cid))
            if mode.startswith("container:"):
                other = mode.split(":", 1)[1]
                owner = other if other in names else next((i for i, n in names.items() if n == other), other)
                shares.append((owner, primary))
        for cport, bindings in (settings.get("Ports") or {}).items():
            for b in bindings or []:
                hip = b.get("HostIp") or "0.0.0.0"
                where = f"[{hip}]" if ":" in hip else hip
                port = g.node(Node(f"port:{where}:{b.get('HostPort')}/{cport.split('/')[-1]}",
                                   f"{where}:{b.get('HostPort')}", "port"))
                g.edge(port, primary, f"DNAT to {cport}", "bold")

    # the host's own NICs that carry an address or lead somewhere (only for the whole picture)
    if only_network is None:
        for name, link in links.items():
            # unaddressed veth/macvlan ends are drawn where they belong (a container's pair, or a port of
            # a bridge: an admin's own bridge shows its ports too)
            if name in shown_host or (_kind(link) in ("veth", "macvlan", "ipvlan") and not _addrs(link)
                                      and not link.get("master")):
                continue
            if _addrs(link) or _kind(link) == "bridge" or link.get("master"):
                host(name)
        for name in list(shown_host):
            link = links.get(name) or {}
            if link.get("master") and _host_id(name) in g.nodes:
                g.edge(host(link["master"]), _host_id(name), "bridge port")
            if _kind(link) in ("macvlan", "ipvlan") and link.get("link") in links:   # the host_access shim
                g.edge(host(link["link"]), _host_id(name), f"{_kind(link)} (the host's own)", "dashed")
    # a container on another's namespace (--network container:X) points at X's first interface
    for owner, note in shares:
        first = next((n.id for n in g.nodes.values() if n.cluster == owner), None)
        if first:
            g.edge(first, note, "shares its network namespace", "dotted")
    return g


_STYLE = {
    "nic": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "bridge": 'shape=box, style="filled", fillcolor="#f6e3c6", penwidth=2',
    "vlan": 'shape=box, style="rounded,filled", fillcolor="#e3d7f0"',
    "veth": 'shape=box, style="rounded", fontsize=10',
    "iface": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "port": 'shape=cds, style="filled", fillcolor="#d9f2d9"',
    "note": 'shape=note, fontsize=10',
    "vxlan": 'shape=box, style="rounded,filled", fillcolor="#fbe0e0"',
    "peer": 'shape=box, style="filled", fillcolor="#fbe0e0", penwidth=2',
    "remote": 'shape=box, style="rounded,dashed,filled", fillcolor="#ffffff"',
}


def _q(text: str) -> str:
    """A DOT string; ``\\n`` already in ``text`` stays a DOT line break."""
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(g: Graph) -> str:
    out = ["graph cove {", '  graph [rankdir=LR, fontname="Helvetica", compound=true, newrank=true];',
           '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];',
           '  subgraph "cluster_host" {', '    label="host"; style=dashed;']
    for n in g.nodes.values():
        if n.cluster == "host":
            out.append(f"    {_q(n.id)} [label={_q(n.label)}, {_STYLE[n.kind]}];")
    out.append("  }")
    for cid, label in g.clusters.items():
        short = cid if cid.startswith("peer:") else cid[:12]      # a remote host's VTEP, or a container
        out += [f"  subgraph {_q('cluster_' + short)} {{", f"    label={_q(label)}; style=\"rounded,filled\";"
                ' fillcolor="#f2f2f2";']
        members = [n for n in g.nodes.values() if n.cluster == cid]
        for n in members:
            out.append(f"    {_q(n.id)} [label={_q(n.label)}, {_STYLE[n.kind]}];")
        out.append("  }")
    for e in g.edges:
        attrs = [f"label={_q(e.label)}"] if e.label else []
        if e.style != "solid":
            attrs.append(f"style={e.style}")
        out.append(f"  {_q(e.a)} -- {_q(e.b)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def host_links() -> list[dict[str, Any]]:
    """``ip -j -d addr`` of the namespace the CLI runs in (empty when ``ip`` is not there)."""
    try:
        r = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []


def collect(ctx: click.Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from cove.cli.client import segment

    api = client(ctx)
    networks = [api.get(f"/networks/{segment(n['Id'])}") for n in api.get("/networks")]
    containers = [api.get(f"/containers/{segment(c['Id'])}/json") for c in api.get("/containers/json", {"all": "1"})]
    return networks, containers


def link_counters(ctx: click.Context, containers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Container id -> the ``networks`` of one stats sample, for the running containers."""
    from cove.cli.client import segment

    api = client(ctx)
    out: dict[str, dict[str, Any]] = {}
    for c in containers:
        if (c.get("State") or {}).get("Running"):
            s = api.get(f"/containers/{segment(c['Id'])}/stats", {"stream": False, "one-shot": True}) or {}
            out[c["Id"]] = s.get("networks") or {}
    return out


@click.command("graph")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Write FILE: .dot (the DOT text), .svg or .png (drawn by Graphviz). Default: DOT on stdout.")
@click.option("--network", default=None, metavar="NETWORK", help="Only this network and what is on it.")
@click.option("--stats", "with_stats", is_flag=True, help="Label each container interface with its rx / tx bytes.")
@click.pass_context
def graph(ctx: click.Context, output: str | None, network: str | None, with_stats: bool) -> None:
    """Draw the host's container network: NICs, bridges, veth pairs, containers, addresses, ports."""
    networks, containers = collect(ctx)
    dot = to_dot(build(networks, containers, host_links(), network, link_counters(ctx, containers) if with_stats else None))
    if output is None or output == "-":
        click.echo(dot, nl=False)
        return
    fmt = os.path.splitext(output)[1].lstrip(".").lower()
    if fmt in ("dot", "gv", ""):
        with open(output, "w") as f:
            f.write(dot)
        return
    if fmt not in ("svg", "png", "pdf"):
        raise click.BadParameter(f"{fmt!r}: use .dot, .svg, .png or .pdf", param_hint="'-o'")
    tool = shutil.which("dot")
    if tool is None:
        raise click.ClickException("drawing needs Graphviz's `dot` (apt-get install graphviz); "
                                   "-o FILE.dot writes the description without it")
    r = subprocess.run([tool, f"-T{fmt}", "-o", output], input=dot, text=True, capture_output=True)
    if r.returncode != 0:
        raise click.ClickException(f"dot failed: {r.stderr.strip()}")
