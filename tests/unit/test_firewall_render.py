"""The rulesets the backends write, reviewable without root."""

from __future__ import annotations

from cove.firewall.base import NetworkRules
from cove.firewall.iptables import render
from cove.firewall.nftables import network_commands, port_elements
from cove.portmap import PortMapping

NET = NetworkRules(id="ab" * 32, bridge="br-abab", subnets=("172.18.0.0/16",))
INTERNAL = NetworkRules(id="cd" * 32, bridge="br-cdcd", subnets=("10.9.0.0/24",), internal=True)


def test_nft_network_is_a_fixed_set_of_objects() -> None:
    cmds = network_commands(NET)
    chains = [c["add"]["chain"]["name"] for c in cmds if "chain" in c.get("add", {})]
    assert chains == ["from-abababababab", "to-abababababab", "nat-abababababab"]
    elements = [c["add"]["element"]["name"] for c in cmds if "element" in c.get("add", {})]
    assert elements == ["bridges", "from_bridge", "to_bridge", "masq"]


def test_nft_internal_network_drops_both_ways_and_has_no_masquerade() -> None:
    cmds = network_commands(INTERNAL)
    text = repr(cmds)
    assert "masquerade" not in text and "'masq'" not in text
    to_rules = [c["add"]["rule"]["expr"] for c in cmds if c.get("add", {}).get("rule", {}).get("chain") == "to-cdcdcdcdcdcd"]
    assert to_rules == [[{"drop": None}]]


def test_nft_port_elements() -> None:
    els = port_elements([PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80),
                         PortMapping("udp", "127.0.0.1", 53, "172.18.0.2", 53)])
    assert els == [("pub_any_tcp", [8080, {"concat": ["172.18.0.2", 80]}]),
                   ("pub_ip_udp", [{"concat": ["127.0.0.1", 53]}, {"concat": ["172.18.0.2", 53]}])]


def test_iptables_render_rebuilds_cove_chains_and_keeps_the_user_chain() -> None:
    text = render([NET, INTERNAL], {"filter:COVE-USER", "filter:COVE-F-0123456789ab"}, {},
                  [PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80)])
    lines = text.splitlines()
    assert ":COVE-USER - [0:0]" not in lines                      # the admin's chain is never flushed
    assert "-X COVE-F-0123456789ab" in lines                       # a stale network's chain goes
    assert "-I FORWARD 1 -j COVE-FORWARD" in lines
    assert "-A COVE-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80" in lines
    assert any(line.startswith("-A COVE-POSTROUTING -s 172.18.0.0/16 ! -o br-abab") for line in lines)
    assert not any("10.9.0.0/24" in line and "MASQUERADE" in line for line in lines)
    assert text.count("COMMIT") == 3
