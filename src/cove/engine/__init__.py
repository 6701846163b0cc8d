"""The engine: one object that owns networks, endpoints and containers.

``Engine(cfg).open()`` loads the store, picks the firewall backend, and
reconciles the kernel with the stored state; the daemon's routes call its
methods; ``close()`` stops watching (containers keep running).

Every outside part can be passed in (the kernel, the firewall, the store, the
image store, the DNS service, the container runtime); what is not given is the
real one.  Unit tests pass :class:`cove.kernel.fake.FakeKernel` and
:class:`cove.store.MemoryStore`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from ..dns.records import Records
from ..dns.server import Resolver
from ..dns.service import DnsService
from ..drivers import DriverContext
from ..firewall import Firewall, get_firewall
from ..ipam import IpamConfig
from ..kernel.api import Kernel
from ..model import Container, ContainerConfig, EndpointRequest, HostConfig, Network
from ..pipework import ExtraInterface, InterfaceRequest
from ..runtime import images as _images
from ..runtime import process as rt
from ..store import Store, open_store
from .containers import ContainerService, ExecRecord
from .guard import FirewallGuard
from .names import NameService
from .networks import NetworkService
from .pipework import PipeworkService
from .sandboxes import SandboxService
from ..sandbox import AttachRequest
from .state import Drivers, State
from .ports import PortPublisher
from ..model import epoch_of
from .core import EngineConfig, new_id, now_rfc3339
from .reconcile import Reconciler
from .stats import StatsService
from .cluster import ClusterSession
from .overlay import EtcdKV, OverlayNetworks

__all__ = ["Engine", "EngineConfig", "ExecRecord", "epoch_of", "new_id", "now_rfc3339"]


class Engine:
    """The facade the daemon's routes use (:class:`cove.daemon.backend.Backend`): it builds the
    state and the services from the outside parts, and hands each verb to its service."""

    #: this host's session in the cluster store (--cluster-store), None on a single host
    cluster: ClusterSession | None = None
    #: the global half of overlay networks (with a cluster store)
    overlay: OverlayNetworks | None = None

    def __init__(self, cfg: EngineConfig, *, store: Store | None = None, kernel: Kernel | None = None,
                 firewall: Firewall | None = None, images: _images.ImageStore | None = None,
                 dns: Any = None, runtime: Any = None) -> None:
        os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
        os.makedirs(cfg.exec_root, mode=0o711, exist_ok=True)
        self.state = st = State(cfg, store if store is not None
                                else open_store(f"sqlite://{os.path.abspath(os.path.join(cfg.data_root, 'cove.db'))}"))
        # the records and helpers the routes read, by their names (the very objects of the State)
        self.cfg, self.store, self.lock, self.changed = cfg, st.store, st.lock, st.changed
        self.networks, self.containers, self.endpoints = st.networks, st.containers, st.endpoints
        self.pools, self.extra_ifaces, self.started, self.events = st.pools, st.extra_ifaces, st.started, st.events
        self.find_network, self.find_container, self.endpoints_on = st.find_network, st.find_container, st.endpoints_on
        self.images = images if images is not None else _images.ImageStore(os.path.join(cfg.data_root, "images"),
                                                                                     cfg.image_import_max_size)
        if kernel is None:
            from ..kernel.linux import LinuxKernel

            kernel = LinuxKernel()
        self.kernel = kernel
        self.runtime = runtime if runtime is not None else rt
        self.driver_ctx = DriverContext(kernel=kernel, firewall=firewall if firewall is not None
                                        else get_firewall(cfg.firewall), mtu=cfg.mtu)
        self.driver_table = Drivers(self.driver_ctx)
        self.driver_by_name, self.driver_of = self.driver_table.by_name, self.driver_table.of
        self.records = Records()
        self.dns = dns if dns is not None else DnsService(Resolver(self.records))
        self.ports = PortPublisher(self.state, self.driver_ctx.firewall, kernel)
        self.names = NameService(self.state, self.records, self.dns, self.driver_of)
        self.pipework = PipeworkService(self.state, kernel)
        self.nets = NetworkService(self.state, kernel, self.driver_table, self.names)
        self.container_svc = ContainerService(self.state, kernel, self.nets, self.ports, self.names, self.pipework,
                                              self.images, self.runtime)
        self.nets.endpoints_changed = self.container_svc.on_endpoints_changed
        self.nets.follow_gateway = self.ports.follow_gateway
        self.nets.gateway_joined = self.ports.gateway_joined
        self.sandbox_svc = SandboxService(self.state, kernel, self.nets, self.names, self.driver_ctx.firewall)
        self.watcher = self.container_svc.watcher
        self.reconciler = Reconciler(self.state, kernel, self.driver_ctx.firewall, self.driver_table,
                                     nets=self.nets, names=self.names, ports=self.ports, pipework=self.pipework,
                                     containers=self.container_svc, sandboxes=self.sandbox_svc,
                                     runtime=self.runtime)
        self.volume_svc = self.container_svc.volumes
        self.guard = FirewallGuard(self)
        self.stats = StatsService(self.state, kernel)

    # start-up and recovery (the work is the State's and the Reconciler's) ----------------------
    def load(self) -> None:
        self.state.load()

    def reconcile(self) -> None:
        self.reconciler.reconcile()

    def restore_firewall(self) -> None:
        self.reconciler.restore_firewall()

    def collect_garbage(self) -> None:
        self.reconciler.collect_garbage()

    # containers (the facade's verbs; the work is ContainerService's) --------------------------
    def create_container(self, name: str | None, config: ContainerConfig, host: HostConfig,
                         endpoints: dict[str, EndpointRequest]) -> Container:
        return self.container_svc.create_container(name, config, host, endpoints)

    def start_container(self, ref: str) -> bool:
        return self.container_svc.start_container(ref)

    def stop_container(self, ref: str, timeout: float | None = None) -> bool:
        return self.container_svc.stop_container(ref, timeout)

    def restart_container(self, ref: str, timeout: float | None = None) -> None:
        self.container_svc.restart_container(ref, timeout)

    def kill_container(self, ref: str, sig: str | int | None = None) -> None:
        self.container_svc.kill_container(ref, sig)

    def wait_container(self, ref: str, condition: str = "not-running") -> Callable[[float | None], int]:
        return self.container_svc.wait_container(ref, condition)

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self.container_svc.remove_container(ref, force, volumes)

    def rename_container(self, ref: str, new_name: str) -> None:
        self.container_svc.rename_container(ref, new_name)

    def resize_container(self, ref: str, height: int, width: int) -> None:
        self.container_svc.resize_container(ref, height, width)

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             timestamps: bool = False) -> Iterator[tuple[str, bytes]]:
        return self.container_svc.logs(ref, follow, tail, timestamps)

    def attach_begin(self, cid: str) -> None:
        self.container_svc.attach_begin(cid)

    def attach_end(self, cid: str) -> None:
        self.container_svc.attach_end(cid)

    def on_exit(self, cid: str, code: int | None) -> None:
        self.container_svc.on_exit(cid, code)

    # exec
    def exec_create(self, ref: str, cmd: list[str], env: list[str] | None = None, workdir: str = "",
                    tty: bool = False, stdin: bool = False, stdout: bool = True,
                    stderr: bool = True) -> ExecRecord:
        return self.container_svc.exec_create(ref, cmd, env, workdir, tty, stdin, stdout, stderr)

    def find_exec(self, exec_id: str) -> ExecRecord:
        return self.container_svc.find_exec(exec_id)

    def exec_start(self, exec_id: str) -> rt.ExecHandle:
        return self.container_svc.exec_start(exec_id)

    def exec_finished(self, exec_id: str, code: int) -> None:
        self.container_svc.exec_finished(exec_id, code)

    def resize_exec(self, exec_id: str, height: int, width: int) -> None:
        self.container_svc.resize_exec(exec_id, height, width)

    # networks (the facade's verbs; the work is NetworkService's) ------------------------------
    def create_network(self, name: str, driver: str = "bridge", ipam_config: list[IpamConfig] | None = None,
                       internal: bool = False, attachable: bool = False, ipv6: bool = False,
                       options: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                       predefined: bool = False, net_id: str | None = None) -> Network:
        return self.nets.create_network(name, driver, ipam_config, internal, attachable, ipv6, options, labels,
                                        predefined, net_id)

    def remove_network(self, ref: str) -> Network:
        return self.nets.remove_network(ref)

    def prune_networks(self, match: Callable[[Network], bool] | None = None) -> list[str]:
        return self.nets.prune_networks(match)

    def connect(self, net_ref: str, container_ref: str, req: EndpointRequest) -> None:
        self.nets.connect(net_ref, container_ref, req)

    def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        self.nets.disconnect(net_ref, container_ref, force)

    # `cove attach` (the facade's verbs; the work is PipeworkService's) -----------------------
    def add_interface(self, ref: str, req: InterfaceRequest) -> ExtraInterface:
        return self.pipework.add_interface(ref, req)

    def remove_interface(self, ref: str, ifname: str) -> None:
        self.pipework.remove_interface(ref, ifname)

    def extra_interfaces(self, cid: str) -> list[ExtraInterface]:
        return self.pipework.extra_interfaces(cid)

    # external sandboxes (cove.sandbox; the work is SandboxService's) ------------------------
    def attach_sandbox(self, req: AttachRequest) -> dict[str, Any]:
        try:
            return self.sandbox_svc.attach(req)
        finally:
            self.state.settle_unlocked()     # overlay keys its failed or replaced endpoints held

    def detach_sandbox(self, sid: str, network: str | None = None) -> None:
        try:
            self.sandbox_svc.detach(sid, network)
        finally:
            self.state.settle_unlocked()     # its overlay endpoints' keys (cove.engine.overlay)

    def sandbox_status(self, sid: str) -> dict[str, Any]:
        return self.sandbox_svc.status(sid)

    def list_sandboxes(self) -> list[dict[str, Any]]:
        return self.sandbox_svc.list_all()

    # stats (the work is StatsService's) ----------------------------------------------------------
    def container_stats(self, ref: str) -> dict[str, Any]:
        return self.stats.sample(ref)

    @property
    def firewall_name(self) -> str:
        return self.driver_ctx.firewall.name

    def open(self) -> Engine:
        if self.cfg.cluster_store:       # before the reconcile: VXLAN devices are restored with this host's VTEP
            self.cluster = ClusterSession(self.cfg, self.store, self._host_id())
            self.driver_ctx.vtep = self.cluster.vtep()
            self.overlay = OverlayNetworks(self.state, self.nets, self.records, EtcdKV(self.cluster),
                                           guard=self._vxlan_guard())
            self.nets.overlay = self.overlay
            self.cluster.on_join = self.overlay.start
            self.cluster.on_rejoin = self.overlay.rejoined
        self.load()
        self.volume_svc.load()
        self.reconcile()
        self.container_svc.restarter.on_daemon_start()
        with self.lock:
            for c in self.containers.values():
                if c.running and c.id not in self.container_svc.health.stops:
                    self.container_svc.health.begin(c, resume=True)
        self.guard.start()
        if self.cluster is not None:
            self.cluster.start()
        return self

    def _vxlan_guard(self) -> Callable[[set[str]], None] | None:
        """The VXLAN input filter (accept only registered hosts) where libnftables is there."""
        if self.driver_ctx.firewall.name != "nftables":
            return None
        from ..firewall.vxlan import VxlanGuard

        return VxlanGuard().apply

    def _host_id(self) -> str:
        """This host's id in the cluster, made once and kept in the local store (``meta/host-id``)."""
        e = self.store.get("meta/host-id")
        if e is not None:
            return str(e.value["id"])
        hid = new_id()
        self.store.put("meta/host-id", {"id": hid})
        return hid

    def close(self) -> None:
        if self.overlay is not None:
            self.overlay.close()       # the watches stop; the kernel entries stay (containers keep running)
        if self.cluster is not None:
            self.cluster.close()       # stops renewing the lease; never revokes it
        self.events.close()            # open event streams end
        self.guard.close()
        self.container_svc.restarter.close()
        self.container_svc.health.close()
        self.watcher.close()
        self.dns.close()
        self.kernel.close()
        self.store.close()
