"""Issue 14: nothing the engine keeps in memory grows with churn (on fakes).

Rounds of network create, run with a published port, connect, disconnect, exec, rm -f and
network rm; every dict, set, list and deque reachable from the engine's services (two
attributes deep) must be no larger after many rounds than after a few: something kept per
removed container or network would grow by one each round.  Not counted: the rig's fakes
(the kernel's and the store's journals) and deques with a ``maxlen`` (the event ring).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from cove.daemon.schema import ipam_configs
from cove.model import ContainerConfig, EndpointRequest, HostConfig

from .enginefakes import Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def sizes(root: object, fakes: tuple[object, ...]) -> dict[str, int]:
    """``path -> len`` of every container reachable from ``root``'s attributes, two levels deep
    (not through ``fakes``)."""
    out: dict[str, int] = {}
    seen: set[int] = {id(f) for f in fakes}

    def walk(obj: object, path: str, depth: int) -> None:
        if id(obj) in seen or depth > 2:
            return
        seen.add(id(obj))
        for name, value in list(getattr(obj, "__dict__", {}).items()):
            where = f"{path}.{name}"
            if id(value) in seen or (isinstance(value, deque) and value.maxlen is not None):
                continue
            if isinstance(value, (dict, set, list, deque)):
                out[where] = len(value)
            elif hasattr(value, "__dict__") and type(value).__module__.startswith("cove."):
                walk(value, where, depth + 1)

    walk(root, "engine", 0)
    return out


def churn(rig: Rig, n: int) -> None:
    e = rig.engine
    e.create_network(f"front{n}", "bridge", ipam_configs([{"Subnet": f"10.97.{n % 200}.0/24"}]))
    e.create_network(f"back{n}", "bridge", ipam_configs([{"Subnet": f"10.98.{n % 200}.0/24"}]))
    c = e.create_container(f"c{n}", ContainerConfig(image="busybox", image_id="", cmd=["httpd", "-f"]),
                           HostConfig(network_mode=f"front{n}",
                                      port_bindings={"80/tcp": [{"HostIp": "", "HostPort": str(18100 + n % 400)}]}),
                           {f"front{n}": EndpointRequest()})
    e.start_container(c.id)
    e.connect(f"back{n}", c.id, EndpointRequest(aliases=[f"alias{n}"]))
    e.disconnect(f"back{n}", c.id)
    rec = e.exec_create(c.id, ["true"])
    e.exec_finished(rec.id, 0)
    e.remove_container(c.id, force=True)
    e.remove_network(f"back{n}")
    e.remove_network(f"front{n}")


def test_engine_state_does_not_grow_with_churn(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for n in range(80):           # more rounds than any bound here (LAST_EXITS: 64)
        churn(rig, n)
    early = sizes(rig.engine, (rig.kernel, rig.store))
    for n in range(80, 240):
        churn(rig, n)
    late = sizes(rig.engine, (rig.kernel, rig.store))
    grown = {k: (early.get(k, 0), v) for k, v in late.items() if v > early.get(k, 0) + 2}
    assert not grown, f"grew over 160 rounds (after 80, after 240): {grown}"
