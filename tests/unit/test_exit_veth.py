"""An exit cuts a bridge endpoint's veth off and lets it go with the namespace (issue 17).

RTM_DELLINK of a veth waits ~16 ms for RCU; when the container's namespace is deleted next,
with no process left in it, the kernel deletes the pair itself in its own clean-up.  So the
exit only takes the host end off the bridge and down (no frame reaches the dying endpoint:
no conntrack entry is made for its address after the flush), then deletes the namespace.
A namespace another running container joined (``--network container:``) outlives the exit:
there the veth is deleted as before, so the joiner loses the endpoint at once.

Seen failing: with ``leave`` (``delete link``) on every exit, the first test's journal had
``delete link`` and no ``detach link``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.ipam import parse_ipam_config
from cove.model import Container, ContainerConfig, EndpointRequest, HostConfig

from .enginefakes import Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    r.engine.create_network("side", "bridge", [parse_ipam_config("10.72.0.0/24")])
    return r


def _run(r: Rig, name: str, mode: str = "side") -> Container:
    eps = {"side": EndpointRequest()} if mode == "side" else {}
    c = r.engine.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"]),
                                  HostConfig(network_mode=mode), eps)
    r.engine.start_container(c.id)
    return c


def _host_links(r: Rig) -> set[str]:
    return {link.name for link in r.kernel.host.links()}


def test_an_exit_detaches_the_veth_and_the_namespace_takes_it(rig: Rig) -> None:
    a = _run(rig, "a")
    veth = next(iter(rig.engine.endpoints[a.id].values())).host_ifname
    assert veth in _host_links(rig)
    rig.kernel.journal.clear()
    rig.engine.remove_container(a.id, force=True)
    assert f"detach link {veth}" in rig.kernel.journal
    assert f"delete link {veth}" not in rig.kernel.journal
    assert veth not in _host_links(rig)                   # gone with the namespace
    assert not rig.kernel.bound_netns(rig.engine.cfg.netns_dir)


def test_a_joined_namespace_loses_the_veth_at_the_exit(rig: Rig) -> None:
    a = _run(rig, "a")
    veth = next(iter(rig.engine.endpoints[a.id].values())).host_ifname
    b = _run(rig, "b", f"container:{a.id}")
    rig.kernel.journal.clear()
    rig.engine.stop_container(a.id)
    assert f"delete link {veth}" in rig.kernel.journal
    assert veth not in _host_links(rig)
    rig.engine.remove_container(b.id, force=True)
    rig.engine.remove_container(a.id, force=True)
