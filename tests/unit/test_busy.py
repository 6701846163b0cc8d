"""The runtime's start runs without the engine lock (issue 14), one operation per container at a time.

A runtime whose ``start`` waits on a gate stands for a slow ``runc``: while one container
is inside it, requests about other containers complete; another operation on that same
container waits for it (and after ``BUSY_WAIT`` is refused with 409 naming it busy); the
host port the start published is not handed to anyone else meanwhile.

Seen failing: ``test_other_containers_go_on_during_a_runtime_start`` with the start's
runtime call back under the lock (the second start never finished while the first was
held); ``test_the_same_container_waits_then_is_refused_as_busy`` with ``State.claim``
reduced to a lookup (the rm went through during the start, which then ran a container
with no record); ``test_a_host_port_published_by_a_start_in_progress_is_not_given_twice``
with ``starting_ports`` left out of ``PortPublisher.published`` (the second container got 8080 too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.schema import container_json
from cove.errors import Conflict
from cove.model import Container, ContainerConfig, EndpointRequest, HostConfig

from .enginefakes import FakeRuntime, Rig


class GatedRuntime(FakeRuntime):
    """``start`` of the containers in ``held`` waits until ``gate`` is set (a slow ``runc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()
        self.gate = threading.Event()
        self.inside = threading.Event()

    def start(self, spec: Any) -> int:
        if spec.id in self.held:
            self.inside.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return super().start(spec)


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Rig, GatedRuntime]]:
    r = Rig(tmp_path)
    rt = GatedRuntime()
    r.runtime = rt
    r.engine.container_svc.runtime = rt
    r.engine.create_network("side", "bridge")
    yield r, rt
    rt.gate.set()


def _create(r: Rig, name: str, port: str = "") -> Container:
    bindings = {"80/tcp": [{"HostPort": port}]} if port else {}
    return r.engine.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"],
                                                           exposed_ports={"80/tcp": {}}),
                                     HostConfig(network_mode="bridge", port_bindings=bindings), {})


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _held_start(r: Rig, rt: GatedRuntime, c: Container) -> tuple[threading.Thread, list[Any]]:
    rt.held.add(c.id)
    t, out = _in_thread(lambda: r.engine.start_container(c.id))
    assert rt.inside.wait(10)
    return t, out


def test_other_containers_go_on_during_a_runtime_start(rig: tuple[Rig, GatedRuntime]) -> None:
    r, rt = rig
    slow = _create(r, "slow")
    t, out = _held_start(r, rt, slow)

    def others() -> str:
        fast = _create(r, "fast")
        r.engine.start_container(fast.id)
        r.engine.connect("side", fast.id, EndpointRequest())
        with r.engine.lock:
            container_json(r.engine, slow)          # inspect of the one starting answers too
        r.engine.remove_container(fast.id, force=True)
        return "done"

    t2, out2 = _in_thread(others)
    t2.join(10)
    finished = not t2.is_alive()
    rt.gate.set()
    t.join(10)
    t2.join(10)
    assert finished, "requests about another container waited for a runtime start"
    assert out2 == ["done"] and out == [True]
    assert r.engine.containers[slow.id].running


def test_the_same_container_waits_then_is_refused_as_busy(rig: tuple[Rig, GatedRuntime],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    r, rt = rig
    c = _create(r, "slow")
    t, out = _held_start(r, rt, c)
    monkeypatch.setattr("cove.engine.state.BUSY_WAIT", 0.05)
    for op in (lambda: r.engine.remove_container(c.id, force=True),
               lambda: r.engine.connect("side", c.id, EndpointRequest()),
               lambda: r.engine.disconnect("bridge", c.id),
               lambda: r.engine.stop_container(c.id)):
        with pytest.raises(Conflict, match="container slow is busy: a start of it is in progress"):
            op()
    monkeypatch.setattr("cove.engine.state.BUSY_WAIT", 30)
    t_stop, out_stop = _in_thread(lambda: r.engine.stop_container(c.id))      # waits for the start
    rt.gate.set()
    t.join(10)
    t_stop.join(10)
    assert out == [True] and out_stop == [True]
    assert not r.engine.containers[c.id].running and c.id not in r.engine.endpoints
    assert not r.engine.state.busy and not r.runtime.running
    r.engine.remove_container(c.id)
    assert c.id not in r.engine.containers


def test_a_host_port_published_by_a_start_in_progress_is_not_given_twice(rig: tuple[Rig, GatedRuntime]) -> None:
    r, rt = rig
    first = _create(r, "first", "8080")
    t, out = _held_start(r, rt, first)
    with pytest.raises(Conflict, match="already allocated"):
        _create(r, "second", "8080")
    rt.gate.set()
    t.join(10)
    assert out == [True]
    assert [m["host_port"] for m in r.engine.containers[first.id].state.ports] == [8080]
    assert not r.engine.state.starting_ports


def test_a_failed_runtime_start_leaves_nothing_and_frees_the_container(rig: tuple[Rig, GatedRuntime]) -> None:
    r, rt = rig
    before = r.state()
    c = _create(r, "bad", "8080")
    rt.fail_start = True
    with pytest.raises(Exception, match="injected start failure"):
        r.engine.start_container(c.id)
    assert not r.engine.state.busy and not r.engine.state.starting_ports
    assert c.state.exit_code == 127 and not r.engine.ports.published()
    r.engine.remove_container(c.id)
    assert r.state() == before
