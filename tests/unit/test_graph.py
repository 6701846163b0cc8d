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
