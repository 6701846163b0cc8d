"""A container's exit teardown runs without the engine lock (issue 14), its addresses and ports held until it is done.

A fake kernel whose deletion of one veth waits on a gate stands for the ~70 ms of kernel
work of an exit (veths, namespace, map elements, conntrack).  While one container's
teardown is inside it: requests about other containers complete; the dying container's
address and host port are not given to anyone; an operation on it waits (after
``BUSY_WAIT``, 409 naming it busy); once the teardown is done, both are free again.  A
``kill -9`` in the middle (the old engine stops in the kernel call; a new one starts on
the same store and kernel) ends with the container exited and nothing of it left.

Seen failing: ``test_other_containers_go_on_during_an_exit_teardown`` with the old
``_on_exit`` (the whole teardown under the lock: the other client's requests waited for
the gate); ``test_the_address_and_port_are_not_reused_before_the_teardown_is_done`` with
the endpoints forgotten (addresses back to the pools) and the ports cleared before the
kernel work instead of after it (the second container got 10.71.0.50 and 8080 while the
first one's veth and map element still existed);
``test_a_firewall_restore_during_the_teardown_does_not_bring_its_port_back`` with the restore
programming ``published()`` (the exited container's 8080 was back in the firewall for good).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.schema import container_json
from cove.engine import Engine
from cove.errors import Conflict
from cove.ipam import parse_ipam_config
from cove.model import Container, ContainerConfig, EndpointRequest, HostConfig

from .enginefakes import FakeImages, Rig

ADDRESS = "10.71.0.50"


class Crashed(BaseException):
    """The daemon was killed where the gated call stood (nothing after it runs)."""


class KernelGate:
    """The fake kernel's call whose label contains ``match`` waits until the test opens the gate."""

    def __init__(self, rig: Rig, match: str) -> None:
        self.inside, self.gate = threading.Event(), threading.Event()
        self.crash = False
        real = rig.kernel.call

        def call(what: str) -> None:
            if match in what and not self.gate.is_set():
                self.inside.set()
                assert self.gate.wait(30), "the test never opened the gate"
                if self.crash:
                    raise Crashed(what)
            real(what)

        rig.kernel.call = call  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    r.engine.create_network("side", "bridge", [parse_ipam_config("10.71.0.0/24")])
    return r


def _create(r: Rig, name: str, port: str | None = None, ip: str | None = None) -> Container:
    """``port``: the host port of its ``-p PORT:80`` ("" for one the daemon picks; None: no ``-p``)."""
    bindings = {"80/tcp": [{"HostPort": port}]} if port is not None else {}
    return r.engine.create_container(name, ContainerConfig(image="busybox", image_id="", cmd=["sleep", "1d"],
                                                           exposed_ports={"80/tcp": {}}),
                                     HostConfig(network_mode="side", port_bindings=bindings),
                                     {"side": EndpointRequest(ip=ip)})


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except (Exception, Crashed) as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _dying(r: Rig) -> tuple[Container, KernelGate, threading.Thread, list[Any]]:
    """Container ``a`` (ADDRESS, host port 8080) exits; its teardown stops at its veth's deletion."""
    a = _create(r, "a", "8080", ADDRESS)
    r.engine.start_container(a.id)
    ep = next(iter(r.engine.endpoints[a.id].values()))
    gate = KernelGate(r, f"delete link {ep.host_ifname}")
    r.runtime.running.pop(r.engine.cfg.container_state_dir(a.id))          # its process is gone
    t, out = _in_thread(lambda: r.engine.on_exit(a.id, 3))                 # as the exit watcher reports it
    assert gate.inside.wait(10)
    return a, gate, t, out


@pytest.fixture
def dying(rig: Rig) -> Iterator[tuple[Rig, Container, KernelGate, threading.Thread, list[Any]]]:
    a, gate, t, out = _dying(rig)
    yield rig, a, gate, t, out
    gate.gate.set()
    t.join(10)


def test_other_containers_go_on_during_an_exit_teardown(dying: Any) -> None:
    r, a, gate, t, out = dying

    def others() -> str:
        b = _create(r, "b", "8081")
        r.engine.start_container(b.id)
        r.engine.connect("bridge", b.id, EndpointRequest())
        with r.engine.lock:
            container_json(r.engine, a)          # inspect of the one exiting answers too
        r.engine.remove_container(b.id, force=True)
        return "done"

    t2, out2 = _in_thread(others)
    t2.join(5)
    finished = not t2.is_alive()
    gate.gate.set()
    t.join(10)
    t2.join(10)
    assert finished, "requests about another container waited for an exit teardown in the kernel"
    assert out2 == ["done"] and out == [None]
    assert r.engine.containers[a.id].state.status == "exited" and r.engine.containers[a.id].state.exit_code == 3


def test_the_address_and_port_are_not_reused_before_the_teardown_is_done(dying: Any) -> None:
    r, a, gate, t, out = dying
    with pytest.raises(Conflict, match=f"ip {ADDRESS} is already in use on network side"):
        _create(r, "b", ip=ADDRESS)
    with pytest.raises(Conflict, match="Bind for 0.0.0.0:8080 failed: port is already allocated"):
        _create(r, "c", "8080")
    # a container asking for neither gets another address and another host port
    d = _create(r, "d", "")
    r.engine.start_container(d.id)
    assert next(iter(r.engine.endpoints[d.id].values())).ip != ADDRESS
    assert [m["host_port"] for m in r.engine.containers[d.id].state.ports] != [8080]
    r.engine.remove_container(d.id, force=True)
    gate.gate.set()
    t.join(10)
    assert out == [None] and not r.firewall.ports
    # done: both are free again
    b = _create(r, "b", "8080", ADDRESS)
    r.engine.start_container(b.id)
    assert next(iter(r.engine.endpoints[b.id].values())).ip == ADDRESS
    assert [m["host_port"] for m in r.engine.containers[b.id].state.ports] == [8080]


def test_an_operation_on_the_exiting_container_waits_for_its_teardown(dying: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    r, a, gate, t, out = dying
    monkeypatch.setattr("cove.engine.state.BUSY_WAIT", 0.05)
    for op in (lambda: r.engine.start_container(a.id),
               lambda: r.engine.remove_container(a.id, force=True),
               lambda: r.engine.connect("bridge", a.id, EndpointRequest())):
        with pytest.raises(Conflict, match="container a is busy: a clean-up of it is in progress"):
            op()
    monkeypatch.setattr("cove.engine.state.BUSY_WAIT", 30)
    t_start, out_start = _in_thread(lambda: r.engine.start_container(a.id))     # waits, then starts it again
    gate.gate.set()
    t.join(10)
    t_start.join(10)
    assert out == [None] and out_start == [True]
    c = r.engine.containers[a.id]
    assert c.running and [ep.ip for ep in r.engine.endpoints[a.id].values()] == [ADDRESS]
    assert not r.engine.state.busy


def test_a_kill_9_during_the_teardown_ends_exited_with_nothing_left(rig: Rig) -> None:
    before = rig.state()
    a, gate, t, out = _dying(rig)
    gate.crash = True
    gate.gate.set()                       # the old daemon dies in the kernel call
    t.join(10)
    assert len(out) == 1 and isinstance(out[0], Crashed)
    engine = Engine(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall, images=FakeImages(),
                    dns=rig.dns, runtime=rig.runtime)  # type: ignore[arg-type]
    engine.load()
    engine.reconcile()
    c = engine.containers[a.id]
    assert c.state.status == "exited" and not c.state.ports and a.id not in engine.endpoints
    rig.engine = engine
    engine.remove_container(a.id)
    assert rig.state() == before


def test_a_firewall_restore_during_the_teardown_does_not_bring_its_port_back(dying: Any) -> None:
    r, a, gate, t, out = dying
    r.firewall.teardown()                 # someone flushed the ruleset; the guard restores it
    r.engine.restore_firewall()
    gate.gate.set()
    t.join(10)
    assert out == [None] and not r.firewall.ports
