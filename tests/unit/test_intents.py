"""Intents (issue 14): what a kill -9 in the middle of an operation leaves, made whole or undone at restart.

Each test builds the state a dead daemon leaves at one instant of an operation (the
kernel as it was, the store as far as it was written, the intent written first) and
restarts the engine on it.  tests/integration/test_crashlab.py kills the real daemon at
every step; these show each replay rule on the fake kernel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cove.engine import intents
from cove.model import EndpointRequest

from .enginefakes import Rig
from .test_reconciler import _restart, _run


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def _net(rig: Rig, name: str) -> str:
    return next(n.id for n in rig.engine.networks.values() if n.name == name)


def _untag(rig: Rig, name: str) -> None:
    """The link as the kernel has it between its creation and the request that sets its alias."""
    link = rig.kernel.host._ns.by_name(name)  # type: ignore[attr-defined]
    assert link is not None
    link.alias = None


def _veths(rig: Rig) -> set[str]:
    return {link.name for link in rig.kernel.host.links() if link.name.startswith("veth")}


def test_an_interface_made_but_not_yet_recorded_is_removed(tmp_path: Path) -> None:
    # kill -9 in `connect` after the veth was created, before its alias (the tag GC goes by) was set
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest())
    rig.engine.create_network("side", "bridge")
    before = _veths(rig)
    rig.engine.connect("side", c.id, EndpointRequest())
    side = _net(rig, "side")
    ep = rig.engine.endpoints[c.id][side]
    # the store as it was then: the endpoint and the container's new network not written, the intents there
    rig.store.delete(f"endpoints/{c.id}/{side}")
    c_rec = rig.store.get(f"containers/{c.id}")
    assert c_rec is not None
    value: dict[str, Any] = dict(c_rec.value)
    value["networks"] = {k: v for k, v in value["networks"].items() if k != side}
    rig.store.put(f"containers/{c.id}", value)
    intents.begin(rig.store, "connect", container=c.id, network=side)
    intents.begin(rig.store, "attach", endpoint=ep.to_dict(), sandbox=c.state.netns)
    _untag(rig, ep.host_ifname)                             # made, not tagged yet
    engine = _restart(rig)
    assert _veths(rig) == before                            # seen failing without replay_intents(): the veth stayed
    assert side not in engine.endpoints.get(c.id, {}) and side not in engine.containers[c.id].networks
    assert not rig.store.list(intents.PREFIX)


def test_a_connect_recorded_for_the_endpoint_but_not_the_container_is_undone(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest())
    rig.engine.create_network("side", "bridge")
    before = _veths(rig)
    rig.engine.connect("side", c.id, EndpointRequest())
    side = _net(rig, "side")
    c_rec = rig.store.get(f"containers/{c.id}")
    assert c_rec is not None
    value: dict[str, Any] = dict(c_rec.value)
    value["networks"] = {k: v for k, v in value["networks"].items() if k != side}
    rig.store.put(f"containers/{c.id}", value)
    intents.begin(rig.store, "connect", container=c.id, network=side)
    engine = _restart(rig)
    assert _veths(rig) == before
    assert not [e.key for e in rig.store.list(f"endpoints/{c.id}/{side}")]
    assert side not in engine.containers[c.id].networks


def test_a_disconnect_that_removed_the_interface_is_finished(tmp_path: Path) -> None:
    # kill -9 in `disconnect` after the veth was deleted, before the records were: the endpoint
    # stayed in the store with its veth gone, and its name answered for an address no one held
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest())
    rig.engine.create_network("side", "bridge")
    rig.engine.connect("side", c.id, EndpointRequest())
    side = _net(rig, "side")
    ep = rig.engine.endpoints[c.id][side]
    intents.begin(rig.store, "disconnect", container=c.id, network=side)
    rig.kernel.host.delete_link(ep.host_ifname)
    engine = _restart(rig)
    assert side not in engine.endpoints.get(c.id, {}) and side not in engine.containers[c.id].networks
    assert engine.records.lookup([side], "web") == []
    assert not [e.key for e in rig.store.list(f"endpoints/{c.id}/{side}")]
    assert not rig.store.list(intents.PREFIX)


def test_a_network_whose_bridge_was_made_but_not_recorded_is_removed(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    net = rig.engine.create_network("late", "bridge")
    rig.store.delete(f"networks/{net.id}")
    intents.begin(rig.store, "network-create", network=net.to_dict())
    _untag(rig, net.bridge)                                 # made, not tagged yet
    engine = _restart(rig)
    assert rig.kernel.host.find(net.bridge) is None and net.id not in engine.networks


def test_a_whole_operation_leaves_no_intent(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest())
    rig.engine.create_network("side", "bridge")
    rig.engine.connect("side", c.id, EndpointRequest())
    rig.engine.disconnect("side", c.id)
    rig.engine.remove_container(c.id, force=True)
    assert not rig.store.list(intents.PREFIX)
