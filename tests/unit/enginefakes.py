"""Fakes around the engine for unit tests: firewall, runtime, images, DNS; and an engine built on them.

The kernel fake is :mod:`cove.kernel.fake` (part of the package: it implements
the kernel seam).  Nothing here touches the machine: the engine gets a
:class:`FakeKernel`, a :class:`MemoryStore`, and these.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cove.engine import Engine, EngineConfig
from cove.errors import CoveError, NotFound
from cove.firewall import NetworkRules
from cove.kernel.fake import FakeKernel
from cove.portmap import PortMapping
from cove.runtime.images import Image
from cove.store import MemoryStore


class FakeFirewall:
    """Remembers each network's rules and each published port; ``dump()`` is the ruleset as text."""

    name = "fake"

    def __init__(self, kernel: FakeKernel | None = None) -> None:
        self.kernel = kernel       # its calls count as kernel calls (and can fail) when given
        self.networks: dict[str, NetworkRules] = {}
        self.ports: set[PortMapping] = set()

    def _call(self, what: str) -> None:
        if self.kernel is not None:
            self.kernel.call(f"firewall {what}")

    def setup(self) -> None:
        self._call("setup")

    def ensure_network(self, net: NetworkRules) -> None:
        self._call(f"ensure network {net.id[:12]}")
        self.networks[net.id] = net

    def remove_network(self, net_id: str) -> None:
        self._call(f"remove network {net_id[:12]}")
        self.networks.pop(net_id, None)

    def add_ports(self, ports: Sequence[PortMapping]) -> None:
        self._call(f"add {len(ports)} ports")
        self.ports |= set(ports)

    def remove_ports(self, ports: Sequence[PortMapping]) -> None:
        self._call(f"remove {len(ports)} ports")
        self.ports -= set(ports)

    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None:
        self._call("sync")
        self.networks = {n.id: n for n in nets}
        self.ports = set(ports)

    def teardown(self) -> None:
        self.networks, self.ports = {}, set()

    def intact(self) -> bool:
        return True

    def dump(self) -> str:
        lines = [f"fw net {n}" for n in sorted(map(repr, self.networks.values()))]
        lines += [f"fw port {p}" for p in sorted(map(repr, self.ports))]
        return "\n".join(lines) + "\n"


class FakeExitWatcher:
    def __init__(self, callback: Callable[[str, int | None], None]) -> None:
        self.callback = callback
        self.watched: dict[str, str] = {}

    def watch(self, container_id: str, state_dir: str) -> None:
        self.watched[container_id] = state_dir

    def unwatch(self, container_id: str) -> None:
        self.watched.pop(container_id, None)

    def close(self) -> None:
        pass


class FakeLaunch:
    """A shim waiting to run runc: ``release`` is the runtime's ``start`` (as overridden by a test)."""

    def __init__(self, runtime: FakeRuntime, spec: Any) -> None:
        self.runtime, self.spec = runtime, spec

    def release(self) -> int:
        assert self.spec.id in self.runtime.pending, "a launch is released or cancelled once"
        self.runtime.pending.discard(self.spec.id)
        return self.runtime.start(self.spec)

    def cancel(self) -> None:
        self.runtime.pending.discard(self.spec.id)


class FakeRuntime:
    """The verbs of :mod:`cove.runtime.process` the engine uses; processes are entries of a dict."""

    ExitWatcher = FakeExitWatcher

    def __init__(self) -> None:
        self.running: dict[str, int] = {}      # state dir -> pid
        self.pids = itertools.count(1000)
        self.fail_start = False
        self.cleaned: list[tuple[str, str | None]] = []     # (state dir, data dir) of each cleanup
        self.pending: set[str] = set()                      # launched, neither released nor cancelled: a shim left waiting

    def start(self, spec: Any) -> int:
        if self.fail_start:
            raise CoveError("runtime: injected start failure")
        pid = next(self.pids)
        self.running[spec.state_dir] = pid
        return pid

    def launch(self, spec: Any) -> FakeLaunch:
        self.pending.add(spec.id)
        return FakeLaunch(self, spec)

    def stop(self, state_dir: str, timeout: float = 10, on_kill: Callable[[], None] | None = None) -> int:
        self.running.pop(state_dir, None)
        return 0

    def kill(self, state_dir: str, sig: int) -> bool:
        return self.running.pop(state_dir, None) is not None

    def is_alive(self, state_dir: str) -> bool:
        return state_dir in self.running

    def wait_gone(self, state_dir: str, timeout: float) -> bool:
        return state_dir not in self.running

    def abandon(self, state_dir: str) -> bool:
        return self.running.pop(state_dir, None) is not None

    def exit_code(self, state_dir: str) -> int | None:
        return 0

    def cleanup(self, target: Any, data_dir: str | None = None) -> None:
        self.cleaned.append((target if isinstance(target, str) else target.state_dir, data_dir))


class FakeImages:
    def __init__(self) -> None:
        self.image = Image(id="sha256:" + "ab" * 32, repo_tags=["busybox:latest"], rootfs="/nonexistent",
                           config={"Cmd": ["sh"]})

    def get(self, ref: str) -> Image:
        if ref in ("busybox", "busybox:latest", self.image.id):
            return self.image
        raise NotFound(f"No such image: {ref}")


@dataclass
class FakeDns:
    served: dict[str, str] = field(default_factory=dict)
    refreshed: list[str] = field(default_factory=list)

    def serve(self, container_id: str, sandbox: str, networks: Any, upstreams: Any) -> None:
        self.served[container_id] = sandbox

    def refresh(self, container_id: str) -> None:
        self.refreshed.append(container_id)

    def stop(self, container_id: str) -> None:
        self.served.pop(container_id, None)

    def close(self) -> None:
        pass


def _without_cursors(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("last_ip", "last_ip6")}


class Rig:
    """An engine on fakes, with the host's uplink ``eth0`` (10.99.0.5/24 via 10.99.0.1)."""

    def __init__(self, tmp: Path, **cfg: Any) -> None:
        self.kernel = FakeKernel()
        self.kernel.add_nic("eth0", "10.99.0.5/24", gateway="10.99.0.1")
        self.firewall = FakeFirewall(self.kernel)
        self.store = MemoryStore()
        self.runtime = FakeRuntime()
        self.dns = FakeDns()
        config = EngineConfig(data_root=str(tmp / "data"), exec_root=str(tmp / "run"),
                              host_resolv_conf=str(tmp / "resolv.conf"), **cfg)
        self.engine = Engine(config, store=self.store, kernel=self.kernel, firewall=self.firewall,
                             images=FakeImages(), dns=self.dns, runtime=self.runtime)  # type: ignore[arg-type]
        self.engine.load()
        self.engine.reconcile()

    def state(self) -> str:
        """Everything a failed operation must leave as it found it: kernel, firewall, store, records."""
        # a network's allocation cursors (last_ip, last_ip6) may move on a failed start, as Docker's do:
        # they only say where the next search begins, and hold no address
        store = "\n".join(f"store {e.key} {json.dumps(_without_cursors(e.value), sort_keys=True)}"
                          for e in self.store.list(""))
        e = self.engine
        mem = [f"mem net {n}" for n in sorted(e.networks)]
        mem += [f"mem ep {cid} {nid} {ep.ip} {ep.ip6}" for cid, eps in sorted(e.endpoints.items())
                for nid, ep in sorted(eps.items())]
        mem += [f"mem extra {cid} {name}" for cid, xs in sorted(e.extra_ifaces.items()) for name in sorted(xs)]
        mem += [f"mem running {d}" for d in sorted(self.runtime.running)]
        mem += [f"mem shim waiting {cid}" for cid in sorted(self.runtime.pending)]
        mem += [f"mem dns {c}" for c in sorted(self.dns.served)]
        mem += [f"mem container {c.id} {c.state.status} {sorted(c.networks)} {c.state.netns}"
                for c in sorted(e.containers.values(), key=lambda c: c.id)]
        return self.kernel.dump() + self.firewall.dump() + store + "\n" + "\n".join(mem) + "\n"
