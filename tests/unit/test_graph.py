"""``cove graph``'s model, from made-up daemon answers and ``ip -j -d addr`` output."""

from __future__ import annotations

from cove.cli.graph import build, to_dot

CID_A = "a" * 64
CID_B = "b" * 64
CID_H = "c" * 64

NETS = [
    {"Id": "n1" * 32, "Name": "vlan20", "Driver": "macvlan", "Options": {"parent": "ens33.20"},
     "IPAM": {"Config": [{"Subnet": "192.168.20.0/24", "Gateway": "192.168.20.1"}]}},
    {"Id": "n2" * 32, "Name": "host", "Driver": "host", "Options": {}, "IPAM": {"Config": []}},
]
LINKS = [
    {"ifindex": 1, "ifname": "lo", "addr_info": []},
    {"ifindex": 2, "ifname": "ens33", "addr_info": [{"family": "inet", "local": "10.0.0.5", "prefixlen": 24,
                                                      "scope": "global"}]},
    {"ifindex": 3, "ifname": "ens33.20", "link": "ens33",
     "linkinfo": {"info_kind": "vlan", "info_data": {"protocol": "802.1Q", "id": 20}}, "addr_info": []},
    {"ifindex": 4, "ifname": "br0", "linkinfo": {"info_kind": "bridge"},
     "addr_info": [{"family": "inet", "local": "192.168.1.1", "prefixlen": 24, "scope": "global"}]},
    {"ifindex": 5, "ifname": "vethpw1", "master": "br0", "linkinfo": {"info_kind": "veth"}, "addr_info": []},
    {"ifindex": 6, "ifname": "mybridge", "linkinfo": {"info_kind": "bridge"}, "addr_info": []},
    {"ifindex": 7, "ifname": "veth1_p", "master": "mybridge", "linkinfo": {"info_kind": "veth"}, "addr_info": []},
    {"ifindex": 8, "ifname": "vethloose", "linkinfo": {"info_kind": "veth"}, "addr_info": []},
]
CONTAINERS = [
    {"Id": CID_A, "Name": "/web", "State": {"Status": "running"}, "HostConfig": {"NetworkMode": "vlan20"},
     "NetworkSettings": {
         "Networks": {"vlan20": {"NetworkID": "n1" * 32, "IPAddress": "192.168.20.10", "IPPrefixLen": 24,
                                 "MacAddress": "02:00:00:00:00:0a", "Aliases": ["www", CID_A[:12]],
                                 "Cove": {"Interface": "eth0", "IfIndex": 2, "HostInterface": "",
                                          "HostIfIndex": 3, "Parent": "ens33.20"}}},
         "ExtraInterfaces": {"eth1": {"Bridge": "br0", "BridgeType": "linux", "HostInterface": "vethpw1",
                                      "IPAddress": "192.168.1.150", "IPPrefixLen": 24, "Vlan": 0,
                                      "MacAddress": "02:12:34:56:78:9a"}},
         "Ports": {"80/tcp": [{"HostIp": "::", "HostPort": "8080"}]}}},
    {"Id": CID_H, "Name": "/hosty", "State": {"Status": "running"}, "HostConfig": {"NetworkMode": "host"},
     "NetworkSettings": {"Networks": {"host": {"NetworkID": "n2" * 32}}, "Ports": {}}},
]


def test_macvlan_on_a_vlan_parent_pipework_and_ports() -> None:
    g = build(NETS, CONTAINERS, LINKS)
    edges = {(e.a, e.b, e.label) for e in g.edges}
    iface = f"{CID_A}:eth0"
    assert "192.168.20.10/24" in g.nodes[iface].label and "aliases www" in g.nodes[iface].label
    assert ("host:ens33.20", iface, "macvlan child") in edges
    assert ("host:ens33", "host:ens33.20", "802.1q trunk") in edges
    assert "802.1q VLAN 20" in g.nodes["host:ens33.20"].label
    assert "network vlan20 (macvlan)" in g.nodes["host:ens33.20"].label
    assert ("host:vethpw1", f"{CID_A}:eth1", "veth pair") in edges
    assert ("host:br0", "host:vethpw1", "bridge port") in edges
    assert ("port:[::]:8080/tcp", iface, "DNAT to 80/tcp") in edges
    assert "10.0.0.5/24" in g.nodes["host:ens33"].label
    assert g.nodes[f"{CID_H}:-"].label == "the host's own interfaces"
    assert "host:lo" not in g.nodes
    assert ("host:mybridge", "host:veth1_p", "bridge port") in edges      # an admin's bridge and its port
    assert "host:vethloose" not in g.nodes                                # a veth leading nowhere
    dot = to_dot(g)
    assert dot.startswith("graph cove {") and dot.rstrip().endswith("}")
    assert '"host:ens33" -- "host:ens33.20" [label="802.1q trunk"];' in dot


def test_one_network_leaves_out_other_containers_and_host_nics() -> None:
    g = build(NETS, CONTAINERS, LINKS, only_network="vlan20")
    assert f"{CID_H}:-" not in g.nodes and CID_H not in g.clusters
    assert f"{CID_A}:eth1" not in g.nodes          # the pipework interface is on no network
    assert "host:br0" not in g.nodes
    assert f"{CID_A}:eth0" in g.nodes


def test_labels_are_quoted_for_dot() -> None:
    nets = [{**NETS[0], "Name": 'we"ird'}]
    dot = to_dot(build(nets, [], LINKS))
    assert 'network we\\"ird (macvlan)' in dot


def test_stats_label_each_interface_with_its_traffic() -> None:
    counters = {CID_A: {"eth0": {"rx_bytes": 20840, "tx_bytes": 1000}, "eth1": {"rx_bytes": 7, "tx_bytes": 0}}}
    g = build(NETS, CONTAINERS, LINKS, counters=counters)
    assert g.nodes[f"{CID_A}:eth0"].label.endswith("rx 20.8kB / tx 1kB")
    assert g.nodes[f"{CID_A}:eth1"].label.endswith("rx 7B / tx 0B")
    assert "rx " not in build(NETS, CONTAINERS, LINKS).nodes[f"{CID_A}:eth0"].label


OV_ID = "0f" * 32
CID_W = "d" * 64
OV_NET = {"Id": OV_ID, "Name": "ov", "Driver": "overlay", "Options": {}, "Scope": "global",
          "IPAM": {"Config": [{"Subnet": "10.10.0.0/24", "Gateway": "10.10.0.1"}]},
          "Peers": [{"Name": "hosta", "IP": "10.99.0.21"}, {"Name": "hostb", "IP": "10.99.0.22"},
                    {"Name": "hostc", "IP": "10.99.0.23"}],
          "Cove": {"Bridge": f"ov-{OV_ID[:12]}", "ICC": True, "Masquerade": True,
                   "VXLAN": {"Name": "vx-001000", "VNI": 4096, "Local": "10.99.0.21", "Port": 4789},
                   "RemoteEndpoints": [
                       {"Name": "cli2", "IPv4Address": "10.10.0.3/24", "MacAddress": "02:42:0a:0a:00:03",
                        "Host": "hostb", "VTEP": "10.99.0.22"},
                       {"Name": "db2", "IPv4Address": "10.10.0.5/24", "MacAddress": "02:42:0a:0a:00:05",
                        "Host": "hostb", "VTEP": "10.99.0.22"},
                       {"Name": "cli3", "IPv4Address": "10.10.0.4/24", "MacAddress": "02:42:0a:0a:00:04",
                        "Host": "", "VTEP": "10.99.0.23"}]}}
OV_LINKS = [
    {"ifindex": 2, "ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.99.0.21", "prefixlen": 24,
                                                     "scope": "global"}]},
    {"ifindex": 3, "ifname": f"ov-{OV_ID[:12]}", "linkinfo": {"info_kind": "bridge"},
     "addr_info": [{"family": "inet", "local": "10.10.0.1", "prefixlen": 24, "scope": "global"}]},
    {"ifindex": 4, "ifname": "vx-001000", "master": f"ov-{OV_ID[:12]}", "linkinfo": {"info_kind": "vxlan"},
     "addr_info": []},
    {"ifindex": 5, "ifname": "veth1234567", "master": f"ov-{OV_ID[:12]}", "linkinfo": {"info_kind": "veth"},
     "addr_info": []},
]
OV_CONTAINERS = [
    {"Id": CID_W, "Name": "/web", "State": {"Status": "running"}, "HostConfig": {"NetworkMode": "ov"},
     "NetworkSettings": {"Networks": {"ov": {
         "NetworkID": OV_ID, "IPAddress": "10.10.0.2", "IPPrefixLen": 24, "MacAddress": "02:42:0a:0a:00:02",
         "Cove": {"Interface": "eth0", "IfIndex": 5, "HostInterface": "veth1234567", "HostIfIndex": 6,
                  "Bridge": f"ov-{OV_ID[:12]}"}}}, "Ports": {}}},
]


def test_an_overlay_network_shows_its_vxlan_device_and_remote_peers() -> None:
    g = build([OV_NET], OV_CONTAINERS, OV_LINKS)
    edges = {(e.a, e.b, e.label) for e in g.edges}
    bridge, vx = f"host:ov-{OV_ID[:12]}", "host:vx-001000"
    assert "VXLAN VNI 4096" in g.nodes[vx].label and "local VTEP 10.99.0.21, UDP 4789" in g.nodes[vx].label
    assert (bridge, vx, "bridge port") in edges
    assert ("host:eth0", vx, "underlay") in edges
    assert ("host:veth1234567", f"{CID_W}:eth0", "veth pair") in edges       # the local container as before
    # one node per remote host (VTEP), inside its own cluster named by hostname, reached from the vx device
    assert (vx, "peer:10.99.0.22", "VXLAN VNI 4096") in edges and (vx, "peer:10.99.0.23", "VXLAN VNI 4096") in edges
    assert "peer:10.99.0.21" not in g.nodes                                   # this host is no peer of itself
    assert g.clusters["peer:10.99.0.22"] == "remote host hostb\\nVTEP 10.99.0.22"
    assert g.clusters["peer:10.99.0.23"] == "remote host hostc\\nVTEP 10.99.0.23"   # name from Peers
    cli2 = f"peer:10.99.0.22:{OV_ID}:10.10.0.3/24"
    assert g.nodes[cli2].label.startswith("cli2\\n10.10.0.3/24") and g.nodes[cli2].cluster == "peer:10.99.0.22"
    assert ("peer:10.99.0.22", cli2, "FDB + ARP proxy entry") in edges
    assert ("peer:10.99.0.22", f"peer:10.99.0.22:{OV_ID}:10.10.0.5/24", "FDB + ARP proxy entry") in edges
    dot = to_dot(g)
    assert dot.count('subgraph "cluster_peer:10.99.0.2') == 2              # two distinct remote clusters
    for text in ("vx-001000", "VNI 4096", "VTEP 10.99.0.22", "VTEP 10.99.0.23", "cli2", "10.10.0.3/24", "db2",
                 "cli3", "10.10.0.4/24", "UDP 4789"):
        assert text in dot, text
    assert '"host:vx-001000" -- "peer:10.99.0.22" [label="VXLAN VNI 4096", style=dashed];' in dot
    # --network ov keeps the overlay part; another network leaves it out
    assert "peer:10.99.0.22" in build([OV_NET, NETS[0]], OV_CONTAINERS, OV_LINKS, only_network="ov").nodes
    assert "peer:10.99.0.22" not in build([OV_NET, NETS[0]], OV_CONTAINERS, OV_LINKS, only_network="vlan20").nodes
