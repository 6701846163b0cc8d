"""The engine: one object that owns networks, endpoints and containers.

``Engine(cfg).open()`` loads the store, picks the firewall backend, and
reconciles the kernel with the stored state; the daemon's routes call its
methods; ``close()`` stops watching (containers keep running).
"""

from __future__ import annotations

import os

from ..dns.records import Records
from ..dns.server import Resolver
from ..dns.service import DnsService
from ..drivers import DriverContext
from ..firewall import get_firewall
from ..kernel.netlink import NetlinkPool
from ..runtime import images as _images
from ..runtime import process as rt
from ..store import SqliteStore
from .containers import ExecRecord
from .guard import FirewallGuard
from .core import EngineConfig, epoch_of, new_id, now_rfc3339
from .reconcile import Reconciler

__all__ = ["Engine", "EngineConfig", "ExecRecord", "epoch_of", "new_id", "now_rfc3339"]


class Engine(Reconciler):
    def __init__(self, cfg: EngineConfig) -> None:
        os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
        os.makedirs(cfg.exec_root, mode=0o711, exist_ok=True)
        super().__init__(cfg, SqliteStore(os.path.join(cfg.data_root, "cove.db")))
        self.init_containers()
        self.images = _images.ImageStore(os.path.join(cfg.data_root, "images"), cfg.image_import_max_size)
        self.driver_ctx = DriverContext(netlink=NetlinkPool(), firewall=get_firewall(cfg.firewall), mtu=cfg.mtu)
        self.drivers = {}
        self.records = Records()
        self.dns = DnsService(Resolver(self.records))
        self.watcher = rt.ExitWatcher(self.on_exit)
        self.guard = FirewallGuard(self)

    def open(self) -> Engine:
        self.load()
        self.reconcile()
        self.guard.start()
        return self

    def close(self) -> None:
        self.events.close()            # open event streams end
        self.guard.close()
        self.watcher.close()
        self.dns.close()
        self.driver_ctx.netlink.close()
        self.store.close()
