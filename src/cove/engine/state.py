"""The engine's state, shared by its services: the records, the lock, the store, the event bus.

Every service is built from one :class:`State` and the outside parts it needs
(passed in, never found through ``self``): :class:`cove.engine.ports.PortPublisher`
(firewall, kernel), :class:`cove.engine.names.NameService` (records, DNS, the
driver table).  Concurrency: every change of state holds ``lock`` (re-entrant)
from validation to the store write; waiting happens on ``changed``.  The slow
runtime calls (``runc`` start, stop, kill, delete), a container's exit teardown
(its veths, namespace, published ports, conntrack entries: the records change
under the lock only once the kernel objects are gone) and the cluster store's
(an overlay endpoint's reservation, :meth:`State.unlocked_for`; its release,
:attr:`State.settle`) run without the lock, so requests about other containers
go on meanwhile; an operation on one container
(start, stop, kill, rm, connect, disconnect, the exit teardown) first marks it busy
(:meth:`State.occupy`): another one on the same container waits for it, as
behind dockerd's per-container lock, and after :data:`BUSY_WAIT` seconds is
refused with 409 naming the container busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..drivers import DRIVERS, DriverContext, NetworkDriver
from ..errors import Conflict, NotFound
from ..events import EventBus
from ..model import Container, Endpoint, Network
from ..pipework import ExtraInterface
from ..sandbox import Sandbox
from ..store import Store

if TYPE_CHECKING:
    from .core import EngineConfig

_T = TypeVar("_T")

#: how long an operation on a container waits for another one on the same container to end
BUSY_WAIT = 30.0


def _by_prefix(ref: str, table: dict[str, _T], kind: str) -> _T:
    if ref:
        hits = [v for k, v in table.items() if k.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise Conflict(f"{kind} {ref} is ambiguous: {len(hits)} {kind}s match that id prefix")
    if kind == "network":
        raise NotFound(f"network {ref} not found")
    raise NotFound(f"No such container: {ref}")


@dataclass(eq=False)
class State:
    cfg: EngineConfig
    store: Store
    lock: threading.RLock = field(default_factory=threading.RLock)
    networks: dict[str, Network] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    #: container id -> network id -> endpoint
    endpoints: dict[str, dict[str, Endpoint]] = field(default_factory=dict)
    #: (network id, subnet) -> its address pool, built from the endpoints once and then kept
    #: up to date by attach/detach (so an attach costs the same with 10 or 1,000 neighbours)
    pools: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: container id -> ifname -> a `cove attach` interface
    extra_ifaces: dict[str, dict[str, ExtraInterface]] = field(default_factory=dict)
    #: sandbox id -> an externally created namespace on cove networks (cove.sandbox)
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    events: EventBus = field(default_factory=EventBus)
    started: float = field(default_factory=time.time)
    #: container id -> (operation, thread, depth): an operation on it is in progress (:meth:`occupy`)
    busy: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    #: container id -> the host ports a start in progress has published (not yet in its state)
    starting_ports: dict[str, list[Any]] = field(default_factory=dict)
    #: container id -> the host ports its exit is withdrawing without the lock: still held in its
    #: state (no one else gets them) but no longer programmed (a firewall restore leaves them out)
    exiting: dict[str, list[Any]] = field(default_factory=dict)
    #: run once an operation has let go of the lock (the end of :meth:`occupy`, of an exit): the
    #: overlay's cluster-store releases that detaches queued under the lock (cove.engine.overlay)
    settle: Callable[..., None] = field(default=lambda **kw: None)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def load(self) -> None:
        """Read every record from the store (at start-up, before the reconcile)."""
        for e in self.store.list("networks/"):
            net = Network.from_dict(e.value)
            self.networks[net.id] = net
        for e in self.store.list("containers/"):
            c = Container.from_dict(e.value)
            self.containers[c.id] = c
        for e in self.store.list("endpoints/"):
            ep = Endpoint.from_dict(e.value)
            self.endpoints.setdefault(ep.container_id, {})[ep.network_id] = ep
        for e in self.store.list("pipework/"):
            x = ExtraInterface.from_dict(e.value)
            self.extra_ifaces.setdefault(x.container_id, {})[x.ifname] = x
        for e in self.store.list("sandboxes/"):
            sb = Sandbox.from_dict(e.value)
            self.sandboxes[sb.id] = sb

    # one operation per container at a time ---------------------------------------------
    def claim(self, ref: str, op: str, wait: float | None = None) -> Container:
        """Mark the container ``ref`` busy with ``op`` and return it.  Another operation on it in
        progress: wait up to ``wait`` (:data:`BUSY_WAIT`) seconds for its end, then 409 naming the
        container busy.  Re-entrant in one thread (``restart`` is a stop and a start)."""
        with self.lock:
            c = self.find_container(ref)
            me = threading.get_ident()

            def free() -> bool:
                cur = self.busy.get(c.id)
                return cur is None or cur[1] == me

            if not self.changed.wait_for(free, BUSY_WAIT if wait is None else wait):
                raise Conflict(f"container {c.name} is busy: a {self.busy[c.id][0]} of it is in progress, "
                               "try again when it is done")
            if self.containers.get(c.id) is not c:
                raise NotFound(f"No such container: {ref}")        # removed while this one waited
            first, _, depth = self.busy.get(c.id, (op, me, 0))
            self.busy[c.id] = (first, me, depth + 1)
            return c

    def release(self, c: Container) -> None:
        with self.lock:
            cur = self.busy.get(c.id)
            if cur is None:
                return
            if cur[2] > 1:
                self.busy[c.id] = (cur[0], cur[1], cur[2] - 1)
            else:
                del self.busy[c.id]
                self.changed.notify_all()

    @contextmanager
    def occupy(self, ref: str, op: str) -> Iterator[Container]:
        """``with state.occupy(ref, "start") as c:`` -- :meth:`claim`, then :meth:`release` at the end."""
        c = self.claim(ref, op)
        try:
            yield c
        finally:
            self.release(c)
            self.settle_unlocked(c.id)

    def settle_unlocked(self, container: str | None = None) -> None:
        """Run :attr:`settle` if this thread does not hold the lock (else its outer operation will);
        with ``container``, that container's queued releases too, whichever thread queued them."""
        if not self.lock._is_owned():        # type: ignore[attr-defined]  # RLock's, as Condition uses it
            if container is None:
                self.settle()
            else:
                self.settle(container=container)

    @contextmanager
    def unlocked_for(self, c: Container) -> Iterator[None]:
        """Let go of the lock (all its levels) around a slow call that is not the kernel's or the local
        store's (a cluster-store Txn), and take it back after; only when this thread holds ``c`` busy
        (:meth:`occupy`), so no other operation on ``c`` can run in between, while requests about other
        containers go on.  Otherwise (an external sandbox, the reconcile) the lock stays held."""
        cur = self.busy.get(c.id)
        if cur is None or cur[1] != threading.get_ident() or not self.lock._is_owned():  # type: ignore[attr-defined]
            yield
            return
        saved = self.lock._release_save()      # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.lock._acquire_restore(saved)  # type: ignore[attr-defined]

    # events (published where an action completes) ------------------------------------
    def container_event(self, c: Container, action: str, **extra: object) -> None:
        """Docker's container event: the labels, ``image`` and ``name``, then ``extra``."""
        attrs = {**c.config.labels, "image": c.config.image, "name": c.name}
        attrs.update({k: str(v) for k, v in extra.items()})
        self.events.publish("container", action, c.id, attrs)

    def network_event(self, net: Network, action: str, **extra: object) -> None:
        attrs = {"name": net.name, "type": net.driver, **{k: str(v) for k, v in extra.items()}}
        self.events.publish("network", action, net.id, attrs)

    # persistence ---------------------------------------------------------------------
    def save_network(self, net: Network) -> None:
        self.store.put(f"networks/{net.id}", net.to_dict())

    def save_container(self, c: Container) -> None:
        self.store.put(f"containers/{c.id}", c.to_dict())

    def save_endpoint(self, ep: Endpoint) -> None:
        self.store.put(f"endpoints/{ep.container_id}/{ep.network_id}", ep.to_dict())

    def forget_pools(self, net_id: str | None = None) -> None:
        """Drop cached address pools (of one network, or all): rebuilt from the endpoints when needed."""
        for key in [k for k in self.pools if net_id is None or k[0] == net_id]:
            del self.pools[key]

    # lookups (Docker's rules: full id, name, unique id prefix) ------------------------
    def find_network(self, ref: str) -> Network:
        if ref in self.networks:
            return self.networks[ref]
        for net in self.networks.values():
            if net.name == ref:
                return net
        return _by_prefix(ref, self.networks, "network")

    def find_container(self, ref: str) -> Container:
        if ref in self.containers:
            return self.containers[ref]
        name = ref.lstrip("/")
        for c in self.containers.values():
            if c.name == name:
                return c
        return _by_prefix(ref, self.containers, "container")

    def check_unique_container_name(self, name: str, exclude: str | None = None) -> None:
        for c in self.containers.values():
            if c.name == name and c.id != exclude:
                raise Conflict(f'The container name "/{name}" is already in use by container "{c.id}". '
                               "You have to remove (or rename) that container to be able to reuse that name.")

    def endpoints_on(self, net_id: str) -> list[Endpoint]:
        return [eps[net_id] for eps in self.endpoints.values() if net_id in eps]

    def leases(self, net_id: str) -> set[str]:
        """Addresses in use on a network: exactly its live endpoints' addresses."""
        return {eps[net_id].ip for eps in self.endpoints.values() if net_id in eps}

    def leases6(self, net_id: str) -> set[str]:
        """IPv6 addresses in use on a network (``--ipv6`` networks)."""
        return {eps[net_id].ip6 for eps in self.endpoints.values() if net_id in eps and eps[net_id].ip6}


class Drivers:
    """The driver table of one engine: one instance per registered driver, made on first use."""

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        self._made: dict[str, NetworkDriver] = {}

    def by_name(self, name: str) -> NetworkDriver:
        """The driver ``name`` (``NotFound`` naming the drivers there are)."""
        drv = self._made.get(name)
        if drv is None:
            if name not in DRIVERS:
                raise NotFound(f'plugin "{name}" not found: cove has the drivers {", ".join(sorted(DRIVERS))}')
            drv = DRIVERS[name](self.ctx)
            self._made[name] = drv
        return drv

    def of(self, net: Network) -> NetworkDriver:
        return self.by_name(net.driver)
