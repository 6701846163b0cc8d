"""The engine's shared state: configuration, the store, indices, lookups.

The engine is split by lifecycle (as libnetwork splits a driver): this module
holds what every part needs; :mod:`.networks` creates and removes networks and
endpoints; :mod:`.containers` runs containers; :mod:`.reconcile` brings the
kernel back in line with the store after a restart or crash.

Concurrency: the daemon serves requests on many threads.  Every change of state
holds ``self.lock`` (re-entrant) from validation to the store write, so a
change sees a consistent model and either fully lands or fully rolls back.
Waiting (container stop, wait) happens outside the lock, on ``self.changed``.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, TypeVar
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import Conflict, InvalidArgument
from ..model import Container, Endpoint, Network
from ..pipework import ExtraInterface
from ..sandbox import Sandbox
from ..store import Store
from .state import State

if TYPE_CHECKING:
    from ..drivers import DriverContext, NetworkDriver
    from ..kernel.api import Kernel
    from .containers import ContainerService
    from .names import NameService
    from .networks import NetworkService
    from .state import Drivers
    from .pipework import PipeworkService
    from .ports import PortPublisher
    from .sandboxes import SandboxService

log = logging.getLogger("cove.engine")

_T = TypeVar("_T")


@dataclass
class EngineConfig:
    """Daemon-wide settings (dockerd's names in comments)."""

    data_root: str = "/var/lib/cove"          # --data-root
    exec_root: str = "/run/cove"              # --exec-root
    firewall: str | None = None               # --firewall-backend: nftables | iptables | none | auto
    bridge_name: str = "cove0"                # the default bridge's Linux name
    external_bridge: str | None = None        # -b/--bridge: an existing bridge cove uses but never owns
    bip: str | None = None                    # --bip, e.g. 172.17.0.1/16
    fixed_cidr: str | None = None             # --fixed-cidr: the default bridge's --ip-range
    default_host_ip: str = "0.0.0.0"          # --ip: host address of -p without one
    dns: list[str] = field(default_factory=list)          # --dns: for containers without their own
    dns_search: list[str] = field(default_factory=list)   # --dns-search
    dns_options: list[str] = field(default_factory=list)  # --dns-opt
    mtu: int = 0                              # --mtu
    ip_forward: bool = True                   # --ip-forward
    ip_masq: bool = True                      # --ip-masq
    ip_forward_no_drop: bool = False          # --ip-forward-no-drop: no drop policy for forwarded non-cove traffic
    image_import_max_size: int = 16 << 30     # --image-import-max-size (bytes; 0: no cap)
    icc: bool = True                          # --icc
    default_pools: list[str] = field(default_factory=list)   # --default-address-pool
    host_resolv_conf: str = "/etc/resolv.conf"

    @property
    def netns_dir(self) -> str:
        return os.path.join(self.exec_root, "netns")

    def container_state_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, "containers", cid)

    def container_data_dir(self, cid: str) -> str:
        return os.path.join(self.data_root, "containers", cid)


def new_id() -> str:
    return secrets.token_hex(32)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EngineCore:
    """State and lookups shared by the engine's parts."""

    kernel: Kernel
    driver_ctx: DriverContext
    ports: PortPublisher
    names: NameService
    pipework: PipeworkService
    driver_table: Drivers
    nets: NetworkService
    container_svc: ContainerService
    sandbox_svc: SandboxService
    runtime: Any

    def driver_by_name(self, name: str) -> NetworkDriver:
        return self.driver_table.by_name(name)

    def driver_of(self, net: Network) -> NetworkDriver:
        return self.driver_table.of(net)

    def __init__(self, cfg: EngineConfig, store: Store) -> None:
        # the parts still written as methods here reach the shared state through these names
        # (the very objects of :class:`State`, which the services are given)
        self.state = st = State(cfg, store)
        self.cfg, self.store, self.lock, self.changed = cfg, store, st.lock, st.changed
        self.networks, self.containers, self.endpoints = st.networks, st.containers, st.endpoints
        self.pools, self.extra_ifaces = st.pools, st.extra_ifaces
        self.started, self.events = st.started, st.events
        self.container_event, self.network_event = st.container_event, st.network_event
        self.save_network, self.save_container, self.save_endpoint = st.save_network, st.save_container, st.save_endpoint
        self.forget_pools = st.forget_pools

    def load(self) -> None:
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
            self.state.sandboxes[sb.id] = sb

    # lookups (Docker's rules: full id, name, unique id prefix) ------------------------
    def find_network(self, ref: str) -> Network:
        return self.state.find_network(ref)

    def find_container(self, ref: str) -> Container:
        return self.state.find_container(ref)

    def leases(self, net_id: str) -> set[str]:
        return self.state.leases(net_id)

    def leases6(self, net_id: str) -> set[str]:
        return self.state.leases6(net_id)

    def endpoints_on(self, net_id: str) -> list[Endpoint]:
        return self.state.endpoints_on(net_id)

    def check_unique_container_name(self, name: str, exclude: str | None = None) -> None:
        for c in self.containers.values():
            if c.name == name and c.id != exclude:
                raise Conflict(f'The container name "/{name}" is already in use by container "{c.id}". '
                               "You have to remove (or rename) that container to be able to reuse that name.")

    def require(self, cond: bool, message: str) -> None:
        if not cond:
            raise InvalidArgument(message)
