"""cove-netavark, cove-cni and `cove setup podman` without a daemon: the translations and the files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from click.testing import CliRunner

from cove.cli import cni, netavark
from cove.cli.main import cli

OPTS = {"container_id": "abc", "container_name": "milk",
        "networks": {"red": {"interface_name": "eth0", "static_ips": ["10.77.0.5"], "aliases": ["m"],
                             "static_mac": "02:00:00:00:00:05"},
                     "pod-blue": {"interface_name": "eth1"}},
        "network_info": {"red": {"name": "red", "options": {}}, "pod-blue": {"options": {"cove.network": "blue"}}},
        "port_mappings": [{"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp,udp", "range": 2}]}

STATUS = {"id": "abc", "networks": {
    "red": {"ifname": "eth0", "mac": "02:00:00:00:00:05", "dns": ["127.0.0.11"],
            "addresses": [{"address": "10.77.0.5/24", "gateway": "10.77.0.1"}]},
    "blue": {"ifname": "eth1", "mac": "02:00:00:00:00:06", "dns": [],
             "addresses": [{"address": "10.78.0.2/24", "gateway": "10.78.0.1"}]},
    "other": {"ifname": "eth2", "mac": "x", "dns": [], "addresses": []}}, "problems": []}


def test_netavark_options_become_a_sandbox_request() -> None:
    req = netavark.sandbox_request(OPTS, "/run/netns/x")
    assert req["networks"]["red"] == {"ifname": "eth0", "ips": ["10.77.0.5"], "mac": "02:00:00:00:00:05",
                                      "aliases": ["m"]}
    assert req["networks"]["blue"]["ifname"] == "eth1"          # the cove.network option
    assert sorted((p["proto"], p["host_port"], p["container_port"]) for p in req["ports"]) == [
        ("tcp", 8080, 80), ("tcp", 8081, 81), ("udp", 8080, 80), ("udp", 8081, 81)]


def test_netavark_answer_has_only_the_asked_networks_under_podmans_names() -> None:
    out = netavark.status_blocks(STATUS, OPTS)
    assert set(out) == {"red", "pod-blue"}
    assert out["red"] == {"interfaces": {"eth0": {"mac_address": "02:00:00:00:00:05",
                                                  "subnets": [{"ipnet": "10.77.0.5/24", "gateway": "10.77.0.1"}]}},
                          "dns_server_ips": ["127.0.0.11"], "dns_search_domains": []}


def test_netavark_failure_is_one_json_error_and_nonzero() -> None:
    out = io.StringIO()
    assert netavark.run(["--config", "/x", "setup", "/run/netns/x"], io.StringIO("{not json"), out) == 1
    assert list(json.loads(out.getvalue())) == ["error"]
    out = io.StringIO()
    assert netavark.run(["frobnicate"], io.StringIO(""), out) == 1 and "error" in json.loads(out.getvalue())
    out = io.StringIO()
    assert netavark.run(["--rootless", "false", "version"], io.StringIO(""), out) == 0
    assert "version" in json.loads(out.getvalue())


def test_cni_result_shapes() -> None:
    st = {"networks": {"red": STATUS["networks"]["red"]}}
    new = cni.result(st, "1.0.0", "/run/netns/x")
    assert new["ips"] == [{"address": "10.77.0.5/24", "interface": 0, "gateway": "10.77.0.1"}]
    assert new["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}]
    assert cni.result(st, "0.3.1", "/run/netns/x")["ips"][0]["version"] == "4"


def test_setup_podman_writes_and_undoes(tmp_path: Path) -> None:
    conf, helpers = tmp_path / "conf.d", tmp_path / "helpers"
    r = CliRunner().invoke(cli, ["-H", "unix:///tmp/x.sock", "setup", "podman", "--conf-dir", str(conf),
                                 "--helper-dir", str(helpers)])
    assert r.exit_code == 0, r.output
    text = (conf / "50-cove.conf").read_text()
    assert 'network_backend = "netavark"' in text and f'"{helpers}"' in text
    assert os.path.basename(os.readlink(helpers / "netavark")) == "cove-netavark"
    assert (helpers / "cove-host").read_text().strip() == "unix:///tmp/x.sock"
    (conf / "other.conf").write_text("[engine]\n")                # not ours: kept
    r = CliRunner().invoke(cli, ["setup", "podman", "--undo", "--conf-dir", str(conf), "--helper-dir", str(helpers)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in conf.iterdir()) == ["other.conf"] and not helpers.exists()
