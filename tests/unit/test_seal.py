"""Issue 13 (seal): fields written into /etc files refuse control characters; the daemon's
autostart cannot be hijacked from the caller's directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cove.daemon.schema import container_request
from cove.errors import InvalidArgument

INJECT = "x\nnameserver 203.0.113.66"


@pytest.mark.parametrize("where, field, value", [
    ("", "Hostname", "web\n203.0.113.66 evil"),
    ("", "Domainname", "corp\rsearch evil"),
    ("HostConfig", "Dns", ["192.0.2.1\nnameserver 203.0.113.66"]),
    ("HostConfig", "DnsSearch", ["corp.example\nnameserver 203.0.113.66"]),
    ("HostConfig", "DnsOptions", ["ndots:1\nnameserver 203.0.113.66"]),
    ("HostConfig", "ExtraHosts", ["db:192.0.2.9\n203.0.113.66 bank.example"]),
    ("HostConfig", "ExtraHosts", ["db\0:192.0.2.9"]),
])
def test_control_characters_in_etc_file_fields_are_refused(where: str, field: str, value: object) -> None:
    body: dict[str, object] = {"Image": "bb"}
    if where:
        body[where] = {field: value}
    else:
        body[field] = value
    with pytest.raises(InvalidArgument) as e:
        container_request(body)
    assert field in str(e.value) and "control characters" in str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_ordinary_values_still_pass() -> None:
    cfg, host, _ = container_request({"Image": "bb", "Hostname": "web", "Domainname": "corp.example",
                                      "HostConfig": {"Dns": ["192.0.2.1"], "DnsSearch": ["a.example"],
                                                     "DnsOptions": ["ndots:2", "timeout:1"],
                                                     "ExtraHosts": ["db:192.0.2.9", "v6:fd00::9"]}})
    assert (cfg.hostname, cfg.domainname, host.dns_options) == ("web", "corp.example", ["ndots:2", "timeout:1"])


def test_daemon_command_ignores_a_cove_package_in_the_current_directory(tmp_path: Path) -> None:
    """The autostart's command line runs this cove, not ``./cove``.  With the old
    ``[sys.executable, "-m", "cove", ...]`` in :func:`daemon_command` the planted package runs."""
    from cove.cli.main import daemon_command

    planted = tmp_path / "cove"
    planted.mkdir()
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('planted code ran')\nraise SystemExit(0)\n"
    (planted / "__init__.py").write_text(payload)
    (planted / "__main__.py").write_text(payload)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONSTARTUP": str(planted / "__init__.py")}
    r = subprocess.run(daemon_command("--version"), cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert not marker.exists(), "the planted cove/ package ran"
    assert r.returncode == 0 and r.stdout.startswith("cove version"), r.stderr


# -- firewall: internal networks sealed, forward drop policy, interface names -------------------

from cove.firewall.base import NetworkRules, ifname_problem  # noqa: E402
from cove.firewall.iptables import POLICY_NOTE, Saved, network_lines, sync_text, teardown_text  # noqa: E402
from cove.firewall.nftables import FORWARD_DROP_COMMENT, base_rules, network_commands  # noqa: E402

NET = NetworkRules(id="ab" * 32, bridge="br-abab", subnets=("172.18.0.0/16",))
INTERNAL = NetworkRules(id="cd" * 32, bridge="br-cdcd", subnets=("10.9.0.0/24",), internal=True)


def _nft_rules(cmds: list[dict], chain: str) -> list[list[dict]]:
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def test_internal_network_accepts_no_dnat_out_of_its_bridge() -> None:
    """``ct status dnat accept`` before the drop let an internal container reach other networks'
    published ports through its gateway."""
    frm = _nft_rules(network_commands(INTERNAL), "from-cdcdcdcdcdcd")
    assert not any("ct" in str(expr) for expr in frm)
    assert any("ct" in str(expr) for expr in _nft_rules(network_commands(NET), "from-abababababab"))
    lines = network_lines(INTERNAL)["filter"]
    assert not any(ln.startswith("-A COVE-F-cdcdcdcdcdcd") and "DNAT" in ln for ln in lines)
    assert any(ln.startswith("-A COVE-F-abababababab") and "DNAT" in ln for ln in network_lines(NET)["filter"])


def test_nft_forward_drop_is_the_forward_chains_last_rule() -> None:
    with_drop = base_rules("ip", forward_drop=True)
    forward = [c["add"]["rule"] for c in with_drop if c["add"]["rule"]["chain"] == "forward"]
    assert forward[-1]["expr"] == [{"drop": None}] and forward[-1]["comment"] == FORWARD_DROP_COMMENT
    assert not any(r["add"]["rule"].get("comment") == FORWARD_DROP_COMMENT for r in base_rules("ip"))


def test_iptables_forward_policy_is_set_and_given_back_only_if_cove_set_it() -> None:
    fresh = Saved()
    fresh.policies["FORWARD"] = "ACCEPT"
    lines = sync_text(fresh, [NET], forward_drop=True).splitlines()
    assert ":FORWARD DROP [0:0]" in lines and f":{POLICY_NOTE} - [0:0]" in lines
    noted = Saved()
    noted.policies["FORWARD"] = "DROP"
    noted.chains["filter"].add(POLICY_NOTE)
    assert f"-X {POLICY_NOTE}" not in sync_text(noted, [NET], forward_drop=True).splitlines()
    back = sync_text(noted, [NET], forward_drop=False).splitlines()       # ip-forward-no-drop: today's behaviour
    assert ":FORWARD ACCEPT [0:0]" in back and f"-X {POLICY_NOTE}" in back
    assert ":FORWARD ACCEPT [0:0]" in teardown_text(noted).splitlines()
    admins = Saved()                         # the admin's own DROP policy: cove never turns it to ACCEPT
    admins.policies["FORWARD"] = "DROP"
    assert not any(ln.startswith(":FORWARD") for ln in sync_text(admins, [NET], forward_drop=False).splitlines())
    assert not any(ln.startswith(":FORWARD") for ln in teardown_text(admins).splitlines())


@pytest.mark.parametrize("name, backend, words", [
    ("+", "iptables", "wildcard"), ("br+", "iptables", "wildcard"), ("!br", "iptables", "negation"),
    ("br%d", "nftables", "template"), ("br%d", "iptables", "template"), ("a/b", "nftables", "'/'"),
    ("a:b", "nftables", "':'"), ("a b", "nftables", "' '"), ("..", "nftables", "not a valid"),
    ("x" * 16, "nftables", "15 bytes"), ("", "nftables", "required"),
])
def test_interface_names_are_checked(name: str, backend: str, words: str) -> None:
    assert words in (ifname_problem(name, backend) or "")


def test_ordinary_interface_names_pass_and_iptables_refuses_a_plus_bridge() -> None:
    for name in ("cove0", "br-0123456789ab", "lan.10", "my_br@x"):
        assert ifname_problem(name, "iptables") is None
    assert ifname_problem("br+", "nftables") is None        # nftables matches names exactly
    with pytest.raises(InvalidArgument, match="'\\+'"):
        network_lines(NetworkRules(id="ef" * 32, bridge="+", subnets=("10.7.0.0/24",)))


def test_iptables_internal_sealing_jump_comes_before_other_networks_jumps() -> None:
    """In COVE-FORWARD an earlier network's ``-o <bridge> -j COVE-T-...`` accepted the DNAT'ed packet
    before the internal network's own ``-i`` jump was reached (HTTP 200 through the gateway)."""
    from cove.firewall.iptables import change_text
    lines = sync_text(Saved(), [NET, INTERNAL]).splitlines()
    fwd = [ln for ln in lines if ln.startswith("-A COVE-FORWARD")]
    assert fwd[0] == "-A COVE-FORWARD -j COVE-USER" and fwd[1].startswith("-A COVE-FORWARD -i br-cdcd ")
    added = change_text(Saved(), add=[INTERNAL]).splitlines()
    assert any(ln.startswith("-I COVE-FORWARD 2 -i br-cdcd ") for ln in added)
    assert any(ln.startswith("-A COVE-FORWARD -o br-cdcd ") for ln in added)


def test_bridged_frames_pass_the_forward_drop() -> None:
    """With br_netfilter, frames a LAN uplink bridge or an admin's bridge switches meet the forward
    hook: they are not routed and must pass (test_lan_bridge and test_pipework failed without this)."""
    from cove.firewall.iptables import BRIDGED, change_text
    rules = [c["add"]["rule"]["expr"] for c in base_rules("ip", forward_drop=True)
             if c["add"]["rule"]["chain"] == "forward"]
    assert rules[-2][:2] == [{"match": {"op": "==", "left": {"meta": {"key": "iifkind"}}, "right": "bridge"}},
                             {"match": {"op": "==", "left": {"meta": {"key": "oifkind"}}, "right": "bridge"}}]
    assert BRIDGED in sync_text(Saved(), [NET], forward_drop=True).splitlines()
    assert BRIDGED not in sync_text(Saved(), [NET], forward_drop=False).splitlines()
    assert BRIDGED in change_text(Saved(), forward_drop=True).splitlines()
    has = Saved()
    has.rules["filter"].append(BRIDGED)
    assert "-D" + BRIDGED[2:] in change_text(has, forward_drop=False).splitlines()
    assert not any("physdev" in ln for ln in change_text(has).splitlines())     # a plain change leaves it
