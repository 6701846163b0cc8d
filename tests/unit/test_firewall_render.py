"""The rulesets the backends write, reviewable without root.

nftables: the JSON commands of one network (a fixed set of objects, removed
exactly); iptables: the ``iptables-restore --noflush`` text of one change,
computed from a saved ruleset (it touches only that network's lines).
"""

from __future__ import annotations

import inspect

import pytest

from cove.errors import InvalidArgument
from cove.firewall import get_firewall
from cove.firewall.base import Firewall, NetworkRules
from cove.firewall.iptables import (Saved, change_text, comment_of, network_lines, port_line, sync_text,
                                    teardown_text)
from cove.firewall.nftables import network_commands, port_elements, removal_commands, replace_commands
from cove.firewall.none import NoFirewall
from cove.portmap import PortMapping

NET = NetworkRules(id="ab" * 32, bridge="br-abab", subnets=("172.18.0.0/16",))
INTERNAL = NetworkRules(id="cd" * 32, bridge="br-cdcd", subnets=("10.9.0.0/24",), internal=True)
OTHER = NetworkRules(id="ef" * 32, bridge="br-efef", subnets=("172.19.0.0/16",))


# --- nftables -------------------------------------------------------------------------

def _adds(cmds: list[dict], kind: str) -> list[dict]:
    return [c["add"][kind] for c in cmds if kind in c.get("add", {})]


def test_nft_network_is_a_fixed_set_of_objects() -> None:
    cmds = network_commands(NET)
    assert [c["name"] for c in _adds(cmds, "chain")] == ["from-abababababab", "to-abababababab", "nat-abababababab"]
    assert [e["name"] for e in _adds(cmds, "element")] == ["bridges", "from_bridge", "to_bridge", "masq"]
    assert all(r["comment"] == f"cove network {NET.id}" for r in _adds(cmds, "rule"))


V6 = NetworkRules(id="ab" * 32, bridge="br-abab", subnets=("172.18.0.0/16",),
                  subnets6=("fd00:30::/64", "2001:db8:30::/64"))


def test_nft_ipv6_table_mirrors_filters_masquerades_only_ula_and_maps_ports() -> None:
    v4, v6 = network_commands(V6), network_commands(V6, "ip6")
    assert all(c["add"][k]["family"] == "ip6" for c in v6 for k in c["add"])
    filt = lambda cmds: [r["expr"] for r in _adds(cmds, "rule") if not r["chain"].startswith("nat-")]  # noqa: E731
    assert filt(v4) == filt(v6)                              # the same isolation rules in both families
    masq = [e["elem"][0][0]["prefix"]["addr"] for e in _adds(v6, "element") if e["name"] == "masq"]
    assert masq == ["fd00:30::", "2001:db8:30::"]            # both reach the nat chain (hairpin) ...
    egress = [r["expr"] for r in _adds(v6, "rule") if r["chain"] == "nat-abababababab" and
              {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "br-abab"}} in r["expr"]]
    assert len(egress) == 1 and "fd00:30::" in repr(egress) and "2001:db8" not in repr(egress)   # ... ULA only
    assert "masq" not in repr([e for e in _adds(network_commands(NET, "ip6"), "element")])   # a v4-only network
    ports = [PortMapping("tcp", "::", 8080, "fd00:30::2", 80), PortMapping("udp", "2001:db8::1", 53, "fd00:30::2", 53),
             PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80)]
    assert port_elements(ports, "ip6") == [
        ("pub_any_tcp", [8080, {"concat": ["fd00:30::2", 80]}]),
        ("pub_ip_udp", [{"concat": ["2001:db8::1", 53]}, {"concat": ["fd00:30::2", 53]}])]
    assert port_elements(ports) == [("pub_any_tcp", [8080, {"concat": ["172.18.0.2", 80]}])]


def test_iptables_ipv6_lines() -> None:
    lines = network_lines(V6, v6=True)
    assert lines["filter"] == network_lines(V6)["filter"]
    assert not any("127.0.0.0" in line for t in lines.values() for line in t)
    egress = [line for line in lines["nat"] if "! -o br-abab" in line]
    assert len(egress) == 1 and "-s fd00:30::/64" in egress[0]
    assert any("-s 2001:db8:30::/64 -o br-abab -m conntrack --ctstate DNAT" in line for line in lines["nat"])
    p = PortMapping("tcp", "2001:db8::1", 8080, "fd00:30::2", 80)
    assert "-d 2001:db8::1/128 -p tcp" in port_line(p) and "--to-destination [fd00:30::2]:80" in port_line(p)
    text6 = change_text(Saved(), add=[V6], add_ports=[p, PortMapping("tcp", "0.0.0.0", 81, "172.18.0.2", 80)], v6=True)
    assert "[fd00:30::2]:80" in text6 and "172.18.0.2:80" not in text6
    assert "-I PREROUTING 1 ! -d ::1/128 -m addrtype --dst-type LOCAL -j COVE-DNAT" in text6
    assert "[fd00:30::2]" not in change_text(Saved(), add_ports=[p])          # the IPv4 text leaves it out


def test_nft_internal_network_drops_both_ways_and_has_no_masquerade() -> None:
    cmds = network_commands(INTERNAL)
    assert "masquerade" not in repr(cmds) and "'masq'" not in repr(cmds)
    to_rules = [r["expr"] for r in _adds(cmds, "rule") if r["chain"] == "to-cdcdcdcdcdcd"]
    assert to_rules == [[{"drop": None}]]


def test_nft_masquerade_off_keeps_only_the_hairpin_rule() -> None:
    cmds = network_commands(NetworkRules(id=NET.id, bridge=NET.bridge, subnets=NET.subnets, masquerade=False))
    nat = [r["expr"] for r in _adds(cmds, "rule") if r["chain"] == "nat-abababababab"]
    assert len(nat) == 1 and {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "br-abab"}} in nat[0]


def test_nft_removal_deletes_exactly_what_was_added() -> None:
    added = network_commands(NET)
    removed = removal_commands(NET)
    added_elems = sorted((e["name"], repr(e["elem"][0] if not isinstance(e["elem"][0], list) else e["elem"][0][0]))
                         for e in _adds(added, "element"))
    removed_elems = sorted((c["delete"]["element"]["name"], repr(c["delete"]["element"]["elem"][0]))
                           for c in removed if "element" in c.get("delete", {}))
    assert added_elems == removed_elems
    assert [c["delete"]["chain"]["name"] for c in removed if "chain" in c.get("delete", {})] == \
        [c["name"] for c in _adds(added, "chain")]
    assert OTHER.short not in repr(removed) and OTHER.bridge not in repr(removed)


def test_nft_replace_touches_only_that_network() -> None:
    cmds = replace_commands(NET, NetworkRules(id=NET.id, bridge=NET.bridge, subnets=("172.20.0.0/16",)))
    flushed = [c["flush"]["chain"]["name"] for c in cmds if "flush" in c]
    assert flushed == ["from-abababababab", "to-abababababab", "nat-abababababab"]
    deleted = [c["delete"]["element"] for c in cmds if "delete" in c]
    assert {"prefix": {"addr": "172.18.0.0", "len": 16}} in [d["elem"][0] for d in deleted]
    assert not any("chain" in c.get("delete", {}) for c in cmds)        # chains are emptied, not deleted
    assert replace_commands(None, NET) == network_commands(NET)


def test_nft_port_elements() -> None:
    els = port_elements([PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80),
                         PortMapping("udp", "127.0.0.1", 53, "172.18.0.2", 53)])
    assert els == [("pub_any_tcp", [8080, {"concat": ["172.18.0.2", 80]}]),
                   ("pub_ip_udp", [{"concat": ["127.0.0.1", 53]}, {"concat": ["172.18.0.2", 53]}])]


# --- iptables -------------------------------------------------------------------------

def saved_with(*nets: NetworkRules, ports: tuple[PortMapping, ...] = (), user: bool = True,
               extra_chains: tuple[str, ...] = ()) -> Saved:
    """A kernel state as ``iptables-legacy-save`` would show it after cove wrote ``nets``."""
    s = Saved()
    s.chains["filter"] |= {"COVE-FORWARD", "COVE-ISOLATION", *extra_chains} | ({"COVE-USER"} if user else set())
    s.chains["nat"] |= {"COVE-POSTROUTING", "COVE-DNAT"}
    s.chains["raw"] |= {"COVE-RAW"}
    s.rules["filter"] += ["-A FORWARD -j COVE-FORWARD", "-A COVE-FORWARD -j COVE-USER"]
    s.rules["nat"] += ["-A POSTROUTING -j COVE-POSTROUTING",
                       "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j COVE-DNAT",
                       "-A OUTPUT -m addrtype --dst-type LOCAL -j COVE-DNAT"]
    s.rules["raw"] += ["-A PREROUTING -j COVE-RAW"]
    for n in nets:
        s.chains["filter"] |= {f"COVE-F-{n.short}", f"COVE-T-{n.short}"}
        for table, lines in network_lines(n).items():
            s.rules[table] += lines
    s.rules["nat"] += [port_line(p) for p in ports]
    return s


def test_iptables_adding_a_network_leaves_the_others_alone() -> None:
    text = change_text(saved_with(OTHER), add=[NET])
    lines = text.splitlines()
    assert OTHER.short not in text and OTHER.bridge not in text
    assert ":COVE-FORWARD - [0:0]" not in lines                    # a shared chain is never re-declared (flushed)
    assert {":COVE-F-abababababab - [0:0]", ":COVE-T-abababababab - [0:0]"} <= set(lines)
    assert '-A COVE-FORWARD -i br-abab -m comment --comment "cove:' + NET.id + '" -j COVE-F-abababababab' in lines
    assert any(ln.startswith("-A COVE-POSTROUTING -s 172.18.0.0/16 ! -o br-abab") for ln in lines)
    assert not any(ln.startswith(("-I ", "-D ")) for ln in lines)   # jumps exist, nothing to replace
    assert text.count("COMMIT") == 3


def test_iptables_replacing_a_network_deletes_its_old_lines_first() -> None:
    text = change_text(saved_with(NET, OTHER), add=[NetworkRules(id=NET.id, bridge=NET.bridge, subnets=NET.subnets,
                                                                 masquerade=False)])
    lines = text.splitlines()
    assert f'-D COVE-POSTROUTING -s 172.18.0.0/16 ! -o br-abab -m comment --comment "cove:{NET.id}" -j MASQUERADE' \
        in lines
    assert not any(ln.startswith("-A COVE-POSTROUTING -s 172.18.0.0/16 ! -o") for ln in lines)
    assert OTHER.short not in text


def test_iptables_removing_a_network_drops_its_lines_and_chains() -> None:
    text = change_text(saved_with(NET, INTERNAL), remove=[INTERNAL.id])
    lines = text.splitlines()
    assert "-X COVE-F-cdcdcdcdcdcd" in lines and "-X COVE-T-cdcdcdcdcdcd" in lines
    assert all(ln.startswith(("-D", ":COVE-F-cdcd", ":COVE-T-cdcd", "-X", "*", "COMMIT")) for ln in lines)
    assert NET.short not in text
    assert change_text(saved_with(NET), remove=[INTERNAL.id]).count("\n") == 6     # idempotent: empty tables


def test_iptables_internal_network_drops_both_ways_without_masquerade() -> None:
    lines = network_lines(INTERNAL)
    assert "-A COVE-F-cdcdcdcdcdcd -j DROP" in lines["filter"] and "-A COVE-T-cdcdcdcdcdcd -j DROP" in lines["filter"]
    assert lines["nat"] == []


def test_iptables_setup_on_an_empty_kernel_creates_chains_and_jumps() -> None:
    lines = change_text(Saved()).splitlines()
    for chain in ("COVE-FORWARD", "COVE-ISOLATION", "COVE-USER", "COVE-POSTROUTING", "COVE-DNAT", "COVE-RAW"):
        assert f":{chain} - [0:0]" in lines
    assert lines.index("-I COVE-FORWARD 1 -j COVE-USER") < lines.index("-I FORWARD 1 -j COVE-FORWARD")
    assert "-I POSTROUTING 1 -j COVE-POSTROUTING" in lines and "-I PREROUTING 1 -j COVE-RAW" in lines


def test_iptables_ports_are_found_by_their_tag() -> None:
    p80 = PortMapping("tcp", "0.0.0.0", 80, "172.18.0.2", 80)
    p8080 = PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.3", 80)
    text = change_text(saved_with(NET, ports=(p80, p8080)), remove_ports=[p80])
    dels = [ln for ln in text.splitlines() if ln.startswith("-D")]
    assert dels == ['-D COVE-DNAT -p tcp -m tcp --dport 80 -m comment --comment "cove-port:tcp/0.0.0.0/80" '
                    "-j DNAT --to-destination 172.18.0.2:80"]
    one = PortMapping("udp", "127.0.0.1", 53, "172.18.0.2", 53)
    assert "-A COVE-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 53" in change_text(Saved(), add_ports=[one])


def test_iptables_sync_rebuilds_cove_chains_and_keeps_the_user_chain() -> None:
    p = PortMapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80)
    text = sync_text(saved_with(extra_chains=("COVE-F-0123456789ab",)), [NET, INTERNAL], [p])
    lines = text.splitlines()
    assert ":COVE-USER - [0:0]" not in lines                       # the admin's chain is never flushed
    assert ":COVE-FORWARD - [0:0]" in lines and "-A COVE-FORWARD -j COVE-USER" in lines
    assert "-X COVE-F-0123456789ab" in lines                       # a stale network's chain goes
    assert any("--dport 8080" in ln for ln in lines)
    assert not any("10.9.0.0/24" in ln and "MASQUERADE" in ln for ln in lines)
    assert not any(ln.startswith("-I ") for ln in lines)           # the jumps are there already
    assert ":COVE-USER - [0:0]" in sync_text(saved_with(user=False), []).splitlines()


def test_iptables_teardown_removes_jumps_and_every_cove_chain() -> None:
    lines = teardown_text(saved_with(NET)).splitlines()
    assert "-D FORWARD -j COVE-FORWARD" in lines and "-D POSTROUTING -j COVE-POSTROUTING" in lines
    assert {"-X COVE-USER", "-X COVE-FORWARD", "-X COVE-F-abababababab", "-X COVE-RAW"} <= set(lines)


def test_comment_of() -> None:
    assert comment_of('-A X -i br0 -m comment --comment "cove:abc" -j Y') == "cove:abc"
    assert comment_of("-A X -m comment --comment plain -j Y") == "plain"
    assert comment_of("-A X -j Y") is None


# --- choosing a backend ---------------------------------------------------------------

def test_unknown_backend_names_the_setting() -> None:
    with pytest.raises(InvalidArgument, match="firewall-backend"):
        get_firewall("pf")


def test_none_backend_has_every_method_of_the_protocol() -> None:
    wanted = {n for n, _ in inspect.getmembers(Firewall, inspect.isfunction) if not n.startswith("_")}
    assert wanted <= {n for n in dir(NoFirewall) if not n.startswith("_")}
    fw = get_firewall("none")
    assert fw.name == "none" and fw.intact()
    fw.sync([NET], [PortMapping("tcp", "0.0.0.0", 80, "172.18.0.2", 80)])


SAVE_ALL = """# Generated by iptables-save v1.8.9 on Sun Dec  6 06:00:00 2026
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:COVE-RAW - [0:0]
-A PREROUTING -j COVE-RAW
COMMIT
# Completed on Sun Dec  6 06:00:00 2026
*mangle
:PREROUTING ACCEPT [0:0]
:COVE-NOT-OURS - [0:0]
-A PREROUTING -j COVE-NOT-OURS
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:COVE-FORWARD - [0:0]
-A FORWARD -j COVE-FORWARD
COMMIT
"""


def test_iptables_one_save_of_every_table_reads_as_the_save_of_each() -> None:
    whole = Saved.parse_all(SAVE_ALL)
    each = Saved()
    for table in ("raw", "filter"):
        section = SAVE_ALL.split(f"*{table}\n", 1)[1].split("COMMIT", 1)[0]
        Saved.parse(table, section, each)
    assert whole == each
    assert whole.chains == {"filter": {"COVE-FORWARD"}, "nat": set(), "raw": {"COVE-RAW"}}   # mangle is not cove's
    assert whole.policies["FORWARD"] == "DROP" and whole.rules["nat"] == []
    # the nat table was not loaded: the change declares cove's nat chains and jumps as on an empty kernel
    text = change_text(whole)
    assert ":COVE-POSTROUTING - [0:0]" in text and "-I POSTROUTING 1 -j COVE-POSTROUTING" in text
    assert "-I FORWARD 1 -j COVE-FORWARD" not in text                    # filter's jump is there already


def _fake_iptables(monkeypatch: pytest.MonkeyPatch, fail6: bool) -> list[list[str]]:
    """IptablesFirewall over fake -save/-restore processes (both families), recording each call."""
    import subprocess
    import threading

    from cove.firewall import iptables

    calls: list[list[str]] = []
    lock = threading.Lock()

    def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        with lock:
            calls.append(args)
        failing = fail6 and args[0] == "ip6-restore"
        out = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n" if args[0].endswith("-save") else ""
        return subprocess.CompletedProcess(args, 1 if failing else 0, out, "boom" if failing else "")

    monkeypatch.setattr(iptables, "_run", run)
    monkeypatch.setattr(iptables, "binaries", lambda: ("ip4", "ip4-save", "ip4-restore"))
    monkeypatch.setattr(iptables, "binaries6", lambda: ("ip6", "ip6-save", "ip6-restore"))
    monkeypatch.setattr(iptables, "probe6", lambda: True)
    return calls


def test_iptables_change_reads_each_family_once_and_writes_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from cove.firewall.iptables import IptablesFirewall

    calls = _fake_iptables(monkeypatch, fail6=False)
    IptablesFirewall().ensure_network(NetworkRules(id="a" * 64, bridge="br-aaaaaaaaaaaa", subnets=("10.1.0.0/24",)))
    assert sorted(c[0] for c in calls) == ["ip4-restore", "ip4-save", "ip6-restore", "ip6-save"]
    assert ["ip4-save"] in calls                                    # every table in one call, no -t


def test_iptables_a_failing_family_is_raised_after_the_other_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    from cove.errors import CoveError
    from cove.firewall.iptables import IptablesFirewall

    calls = _fake_iptables(monkeypatch, fail6=True)
    with pytest.raises(CoveError, match=r"ip6tables-legacy-restore \(add network aaaaaaaaaaaa\): boom"):
        IptablesFirewall().ensure_network(NetworkRules(id="a" * 64, bridge="br-aaaaaaaaaaaa",
                                                       subnets=("10.1.0.0/24",)))
    assert any(c[0] == "ip4-restore" for c in calls)
