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
from ..store import SqliteStore, Store
from .containers import ContainerService, ExecRecord
from .guard import FirewallGuard
from .names import NameService
from .networks import NetworkService
from .pipework import PipeworkService
from .state import Drivers
from .ports import PortPublisher
from ..model import epoch_of
from .core import EngineConfig, new_id, now_rfc3339
from .reconcile import Reconciler

__all__ = ["Engine", "EngineConfig", "ExecRecord", "epoch_of", "new_id", "now_rfc3339"]


class Engine(Reconciler):
    def __init__(self, cfg: EngineConfig, *, store: Store | None = None, kernel: Kernel | None = None,
                 firewall: Firewall | None = None, images: _images.ImageStore | None = None,
                 dns: Any = None, runtime: Any = None) -> None:
        os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
        os.makedirs(cfg.exec_root, mode=0o711, exist_ok=True)
        super().__init__(cfg, store if store is not None else SqliteStore(os.path.join(cfg.data_root, "cove.db")))
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
        self.records = Records()
        self.dns = dns if dns is not None else DnsService(Resolver(self.records))
        self.ports = PortPublisher(self.state, self.driver_ctx.firewall, kernel)
        self.names = NameService(self.state, self.records, self.dns, self.driver_of)
        self.pipework = PipeworkService(self.state, kernel)
        self.nets = NetworkService(self.state, kernel, self.driver_table, self.names)
        self.container_svc = ContainerService(self.state, kernel, self.nets, self.ports, self.names, self.pipework,
                                              self.images, self.runtime)
        self.nets.endpoints_changed = self.container_svc.on_endpoints_changed
        self.watcher = self.container_svc.watcher
        self.volume_svc = self.container_svc.volumes
        self.guard = FirewallGuard(self)

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

    def logs(self, ref: str, follow: bool = False, tail: int | None = None) -> Iterator[tuple[str, bytes]]:
        return self.container_svc.logs(ref, follow, tail)

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

    def prune_networks(self) -> list[str]:
        return self.nets.prune_networks()

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

    @property
    def firewall_name(self) -> str:
        return self.driver_ctx.firewall.name

    def open(self) -> Engine:
        self.load()
        self.volume_svc.load()
        self.reconcile()
        self.container_svc.restarter.on_daemon_start()
        with self.lock:
            for c in self.containers.values():
                if c.running and c.id not in self.container_svc.health.stops:
                    self.container_svc.health.begin(c, resume=True)
        self.guard.start()
        return self

    def close(self) -> None:
        self.events.close()            # open event streams end
        self.guard.close()
        self.container_svc.restarter.close()
        self.container_svc.health.close()
        self.watcher.close()
        self.dns.close()
        self.kernel.close()
        self.store.close()
