"""The Reconciler is a service of its own: built from the engine's State and the services it drives
(no Engine), it brings a fake kernel in line with the store at start-up and after a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cove.dns.records import Records
from cove.drivers import DriverContext
from cove.engine import Engine, EngineConfig
from cove.engine.containers import ContainerService
from cove.engine.names import NameService
from cove.engine.networks import NetworkService
from cove.engine.pipework import PipeworkService
from cove.engine.ports import PortPublisher
from cove.engine.reconcile import Reconciler
from cove.engine.sandboxes import SandboxService
from cove.engine.state import Drivers, State
from cove.kernel.fake import FakeKernel
from cove.model import ContainerConfig, EndpointRequest, HostConfig
from cove.store import MemoryStore

from .enginefakes import FakeDns, FakeFirewall, FakeImages, FakeRuntime, Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def _reconciler(tmp: Path) -> tuple[Reconciler, State, FakeKernel, FakeFirewall]:
    """A Reconciler and the services it drives, wired by hand: no Engine."""
    state = State(EngineConfig(data_root=str(tmp / "data"), exec_root=str(tmp / "run"),
                               host_resolv_conf=str(tmp / "resolv.conf")), MemoryStore())
    kernel = FakeKernel()
    firewall = FakeFirewall(kernel)
    drivers = Drivers(DriverContext(kernel=kernel, firewall=firewall, mtu=0))
    runtime = FakeRuntime()
    names = NameService(state, Records(), FakeDns(), drivers.of)  # type: ignore[arg-type]
    ports = PortPublisher(state, firewall, kernel)
    pipework = PipeworkService(state, kernel)
    nets = NetworkService(state, kernel, drivers, names)
    containers = ContainerService(state, kernel, nets, ports, names, pipework, FakeImages(),  # type: ignore[arg-type]
                                  runtime)
    sandboxes = SandboxService(state, kernel, nets, names, firewall)
    rec = Reconciler(state, kernel, firewall, drivers, nets=nets, names=names, ports=ports, pipework=pipework,
                     containers=containers, sandboxes=sandboxes, runtime=runtime)
    return rec, state, kernel, firewall


def test_a_first_start_makes_the_predefined_networks_and_a_second_changes_nothing(tmp_path: Path) -> None:
    rec, state, kernel, firewall = _reconciler(tmp_path)
    rec.reconcile()
    assert sorted(n.name for n in state.networks.values()) == ["bridge", "host", "none"]
    bridge = next(n for n in state.networks.values() if n.name == "bridge")
    assert "cove0" in kernel.dump() and list(firewall.networks) == [bridge.id]
    assert sorted(e.key for e in state.store.list("networks/")) == sorted(f"networks/{i}" for i in state.networks)
    before = (kernel.dump(), firewall.dump(), [(e.key, e.value) for e in state.store.list("")])
    rec.reconcile()
    assert (kernel.dump(), firewall.dump(), [(e.key, e.value) for e in state.store.list("")]) == before


def test_a_flushed_ruleset_is_rewritten_from_the_state(tmp_path: Path) -> None:
    rec, state, kernel, firewall = _reconciler(tmp_path)
    rec.reconcile()
    want = firewall.dump()
    firewall.teardown()                               # someone ran `nft flush ruleset`
    assert firewall.dump() != want
    rec.restore_firewall()
    assert firewall.dump() == want


def _restart(rig: Rig) -> Engine:
    """The daemon again, on the same store, kernel, firewall and runtime (containers outlive it)."""
    engine = Engine(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall, images=FakeImages(),
                    dns=rig.dns, runtime=rig.runtime)  # type: ignore[arg-type]
    engine.load()
    engine.reconcile()
    return engine


def _run(rig: Rig, **networks: EndpointRequest) -> Any:
    rig.engine.create_network("back", "bridge")
    c = rig.engine.create_container("web", ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"]),
                                    HostConfig(network_mode="bridge"), dict(networks))
    rig.engine.start_container(c.id)
    return c


def test_a_container_that_outlived_the_daemon_is_watched_again(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest(aliases=["db"]))
    kernel_before = rig.kernel.dump()
    engine = _restart(rig)
    assert engine.containers[c.id].running and c.id in engine.watcher.watched  # type: ignore[attr-defined]
    back = next(n.id for n in engine.networks.values() if n.name == "back")
    assert engine.records.lookup([back], "db") == [engine.endpoints[c.id][back].ip]   # its names are served again
    assert rig.kernel.dump() == kernel_before          # its veths, bridges and namespace stay


def test_a_container_that_died_with_the_daemon_is_released(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = _run(rig, back=EndpointRequest())
    ep_ifnames = [ep.host_ifname for ep in rig.engine.endpoints[c.id].values()]
    assert ep_ifnames and all(name in rig.kernel.dump() for name in ep_ifnames)
    rig.runtime.running.clear()                        # the container died while no daemon ran
    engine = _restart(rig)
    assert not engine.containers[c.id].running and c.id not in engine.endpoints
    assert not [e.key for e in rig.store.list("endpoints/")]
    assert not any(name in rig.kernel.dump() for name in ep_ifnames)


def test_a_half_started_container_is_stopped(tmp_path: Path) -> None:
    """kill -9 between the runtime's start and the store write: the container must not run unseen."""
    rig = Rig(tmp_path)
    c = rig.engine.create_container("half", ContainerConfig(image="busybox", image_id="", cmd=["sh"]),
                                    HostConfig(network_mode="none"), {})
    state_dir = rig.engine.cfg.container_state_dir(c.id)
    rig.runtime.running[state_dir] = 4242            # alive, though the store says Created
    _restart(rig)
    assert state_dir not in rig.runtime.running


def test_the_files_of_a_removal_cut_short_by_a_kill_are_swept(tmp_path: Path) -> None:
    """kill -9 inside rm, after the store delete and before the dirs went: the next start stops
    whatever of it might run and has its state and data dirs removed; a known container's stay."""
    rig = Rig(tmp_path)
    kept = _run(rig)
    gone = rig.engine.create_container("gone", ContainerConfig(image="busybox", image_id="", cmd=["sh"]),
                                       HostConfig(network_mode="none"), {})
    cfg = rig.engine.cfg
    for cid in (kept.id, gone.id):
        for d in (cfg.container_state_dir(cid), cfg.container_data_dir(cid)):
            Path(d).mkdir(parents=True, exist_ok=True)
    rig.runtime.running[cfg.container_state_dir(gone.id)] = 4343
    rig.store.delete(f"containers/{gone.id}")
    rig.runtime.cleaned.clear()
    engine = _restart(rig)
    assert gone.id not in engine.containers and kept.id in engine.containers
    assert cfg.container_state_dir(gone.id) not in rig.runtime.running                # stopped
    assert rig.runtime.cleaned == [(cfg.container_state_dir(gone.id), cfg.container_data_dir(gone.id))]
