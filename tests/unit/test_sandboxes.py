"""External sandboxes (/cove/sandboxes) on an engine with the fake kernel: attach, check, detach, restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.routes import build_router
from cove.engine import Engine

from .enginefakes import Rig
from .test_routes_on_fakes import _no_host_probes, call  # noqa: F401 - the autouse fixture applies here too

NS = "/run/netns/podman-x"


def _rig(tmp_path: Path) -> tuple[Rig, Any]:
    rig = Rig(tmp_path)
    r = build_router(rig.engine)
    assert call(r, "POST", "/networks/create", {"Name": "web", "IPAM": {"Config": [{"Subnet": "10.70.0.0/24"}]}}).status == 201
    rig.kernel.create_netns(NS)
    return rig, r


def _attach(r: Any, **extra: Any) -> Any:
    body = {"id": "c0ffee" * 4, "name": "milk", "netns": NS,
            "networks": {"web": {"ifname": "eth0", "ips": ["10.70.0.9/24"], "aliases": ["m"], "mac": "02:42:0a:46:00:99"}},
            "ports": [{"proto": "tcp", "host_ip": "0.0.0.0", "host_port": 8080, "container_port": 80}]}
    body.update(extra)
    return call(r, "POST", "/cove/sandboxes", body)


def test_attach_check_detach(tmp_path: Path) -> None:
    rig, r = _rig(tmp_path)
    ns = rig.kernel.get(NS)
    ns.set_link(ns.index("lo"), state="up")      # attach brings it up and detach leaves it so
    before = rig.state()
    resp = _attach(r)
    assert resp.status == 201, resp.body
    st = json.loads(resp.body)
    web = st["networks"]["web"]
    assert web["ifname"] == "eth0" and web["mac"] == "02:42:0a:46:00:99"
    assert web["addresses"] == [{"address": "10.70.0.9/24", "gateway": "10.70.0.1"}]
    assert web["dns"] == ["127.0.0.11"] and st["problems"] == []
    dump = rig.kernel.dump()
    assert "addr eth0 10.70.0.9/24" in dump
    assert any(p.host_port == 8080 and p.container_ip == "10.70.0.9" for p in rig.firewall.ports)
    assert rig.dns.served[st["id"]] == NS
    # a retried setup changes nothing; the address is leased (a cove container cannot take it)
    assert _attach(r).status == 201
    assert rig.kernel.dump() == dump
    want = {"web": {"IPAMConfig": {"IPv4Address": "10.70.0.9"}}}
    resp = call(r, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh"], "HostConfig": {"NetworkMode": "web"},
                                                  "NetworkingConfig": {"EndpointsConfig": want}})
    assert resp.status == 409, resp.body
    # the check sees what the kernel lost
    ns = rig.kernel.get(NS)
    ns.delete_link("eth0")
    st = json.loads(call(r, "GET", f"/cove/sandboxes/{st['id']}").body)
    assert st["problems"] == ["no interface eth0"]
    # detach: twice, the second a no-op; everything is as before
    assert call(r, "DELETE", f"/cove/sandboxes/{st['id']}").status == 204
    assert call(r, "DELETE", f"/cove/sandboxes/{st['id']}").status == 204
    assert json.loads(call(r, "GET", "/cove/sandboxes").body) == []
    assert rig.state() == before
    assert not rig.firewall.ports and "10.70.0.9" not in rig.kernel.dump()


def test_failed_attach_changes_nothing(tmp_path: Path) -> None:
    rig, r = _rig(tmp_path)
    before = rig.state()
    nets = {"web": {"ifname": "eth0"}, "nosuch": {"ifname": "eth1"}}
    resp = _attach(r, networks=nets)
    assert resp.status == 404 and b"nosuch" in resp.body
    assert rig.state() == before


@pytest.mark.parametrize("body,words", [
    ({"netns": "relative"}, "netns"),
    ({"networks": {}}, "networks"),
    ({"networks": {"web": {"ifname": "x" * 16}}}, "ifname"),
    ({"networks": {"web": {"ips": ["10.70.0.300"]}}}, "ips"),
    ({"networks": {"web": {"ips": ["10.80.0.3"]}}}, "subnet"),
    ({"ports": [{"host_port": 0, "container_port": 80}]}, "host_port"),
    ({"ports": [{"proto": "icmp", "host_port": 1, "container_port": 80}]}, "proto"),
])
def test_bad_requests_name_the_field(tmp_path: Path, body: dict[str, Any], words: str) -> None:
    rig, r = _rig(tmp_path)
    before = rig.state()
    resp = _attach(r, **body)
    assert resp.status == 400, resp.body
    assert words in json.loads(resp.body)["message"]
    assert rig.state() == before


def test_restart_keeps_a_live_sandbox_and_drops_a_dead_one(tmp_path: Path) -> None:
    rig, r = _rig(tmp_path)
    assert _attach(r).status == 201
    rig.kernel.create_netns("/run/netns/other")
    assert _attach(r, id="b" * 24, name="bread", netns="/run/netns/other", ports=[],
                   networks={"web": {"ifname": "eth0"}}).status == 201
    rig.kernel.delete_netns("/run/netns/other")       # the runtime lost it while the daemon was down
    e2 = Engine(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall, images=rig.engine.images,
                dns=rig.dns, runtime=rig.runtime)
    e2.load()
    e2.reconcile()
    ids = [s["id"] for s in e2.list_sandboxes()]
    assert ids == ["c0ffee" * 4]
    assert e2.state.leases(e2.state.find_network("web").id) == {"10.70.0.9"}
    assert any(p.host_port == 8080 for p in rig.firewall.ports)
    assert "addr eth0 10.70.0.9/24" in rig.kernel.dump()


def test_a_detach_a_kill_9_interrupted_is_finished_at_restart(tmp_path: Path) -> None:
    # the daemon died after removing the endpoint and before rewriting the sandbox's record: the
    # restarted daemon listed the sandbox on a network it had no interface or address on
    rig, r = _rig(tmp_path)
    resp = _attach(r, ports=[])
    assert resp.status == 201, resp.body
    sid = json.loads(resp.body)["id"]
    web = rig.engine.state.find_network("web").id
    rig.kernel.get(NS).delete_link("eth0")             # the detach had got this far
    rig.store.delete(f"endpoints/{sid}/{web}")
    e2 = Engine(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall, images=rig.engine.images,
                dns=rig.dns, runtime=rig.runtime)
    e2.load()
    e2.reconcile()
    assert e2.list_sandboxes() == []
    assert not rig.store.list("sandboxes/") and "10.70.0.9" not in rig.kernel.dump()


def test_an_id_whose_short_form_is_no_name_attaches(tmp_path: Path) -> None:
    # ctr's CNI container ids are `<namespace>-<id>`: cove-cni's sandbox id `cni-default-box1-eth0`,
    # whose 12-character short form ends in '-' (no DNS name): the sandbox's name still answers
    rig, r = _rig(tmp_path)
    resp = _attach(r, id="cni-default-box1-eth0", name="default-box1", ports=[])
    assert resp.status == 201, resp.body
    assert call(r, "DELETE", "/cove/sandboxes/cni-default-box1-eth0").status in (200, 204)


def test_cni_aliases_as_a_list_or_podmans_map() -> None:
    from cove.cli.cni import CniError, _attach_body

    env = {"CNI_CONTAINERID": "abc", "CNI_IFNAME": "eth0", "CNI_NETNS": NS, "CNI_ARGS": "K8S_POD_NAME=pod1"}

    def aliases(value: Any) -> list[str]:
        conf = {"name": "podnet", "runtimeConfig": {"aliases": value}}
        out: list[str] = _attach_body(conf, env, "web")["networks"]["web"]["aliases"]
        return out
    assert aliases(["a", "b"]) == ["a", "b"]                       # the CNI conventions
    assert aliases({"podnet": ["pal"], "other": ["x"]}) == ["pal"]  # podman 4: keyed by its network's name
    assert aliases(None) == [] and aliases({"other": ["x"]}) == []
    with pytest.raises(CniError, match="aliases"):
        aliases("pal")


def test_a_name_refused_after_the_plumbing_undoes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the resolver refuses a name after the interface was made: the attach leaves nothing behind
    from cove.engine.names import NameService
    from cove.errors import InvalidArgument

    rig, r = _rig(tmp_path)
    before = rig.kernel.dump()

    def refuse(self: NameService, c: Any, ep: Any) -> None:
        raise InvalidArgument("invalid name 'x-': not a valid DNS name")
    monkeypatch.setattr(NameService, "register", refuse)
    resp = _attach(r, ports=[])
    assert resp.status == 400 and b"x-" in resp.body
    assert rig.kernel.dump() == before
    assert json.loads(call(r, "GET", "/cove/sandboxes").body) == []
    monkeypatch.undo()
    assert _attach(r, ports=[]).status == 201          # the address was not leased meanwhile
