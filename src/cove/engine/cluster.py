"""This host's membership in a cluster store (``--cluster-store etcd://...``).

With a cluster store the daemon keeps a session in etcd: one lease per host (TTL
``--cluster-lease-ttl``, renewed every TTL/3 by :class:`~cove.store.etcd.Lease`) and the
record ``hosts/<host-id>`` attached to it (name, VTEP address, VXLAN port), so the
other hosts forget this one when it goes silent.  The host id is kept in the local
store (``meta/host-id``); the lease id too, so a restart within the TTL reuses the lease.
The session starts in a thread: an unreachable etcd never delays or blocks the
daemon's start-up, and no etcd I/O runs under the engine lock.  With the ``kv.*`` options
(``--cluster-store-opt``) every etcd request is HTTPS with that CA and client certificate; a
TLS failure (wrong CA, certificate refused) is the session's error, which ``network create -d
overlay`` then names.

Global overlay networks (:mod:`cove.engine.overlay`: global IPAM, endpoint records and the
FDB/neighbour watcher) build on this session: ``on_join`` runs once the host has joined.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import CoveError, InvalidArgument, Unavailable
from ..store.base import Store

if TYPE_CHECKING:
    from ..store.etcd import EtcdStore, Lease
    from .core import EngineConfig

log = logging.getLogger("cove.cluster")

#: the VXLAN port overlay networks use (IANA's)
VXLAN_PORT = 4789


def refuse_overlay(cfg: EngineConfig) -> None:
    """Refuse ``network create -d overlay`` with one clear line when it cannot work here."""
    if not cfg.cluster_store:
        raise InvalidArgument('invalid driver "overlay": overlay networks need a cluster store; start the '
                              "daemon with --cluster-store etcd://HOST:PORT[,HOST:PORT...] "
                              "(and --cluster-advertise ADDRESS)")
    raise Unavailable("cluster store unavailable: this engine was opened without its cluster session "
                      "(restart the daemon with --cluster-store)")


def _interface_ipv4(name: str) -> str:
    """The IPv4 address of interface ``name`` in this namespace ("" if none): SIOCGIFADDR."""
    import fcntl
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        return socket.inet_ntoa(raw[20:24])
    except OSError:
        return ""
    finally:
        s.close()


class ClusterSession:
    """Register this host in the cluster store under its lease, in the background."""

    def __init__(self, cfg: EngineConfig, local: Store, host_id: str) -> None:
        self.cfg = cfg
        self.local = local
        self.host_id = host_id
        self.etcd: EtcdStore | None = None
        self.lease: Lease | None = None
        self.error = ""
        #: called (in the session's thread) once this host has joined: the overlay's watches start
        self.on_join: Callable[[], None] | None = None
        #: called (in the session's thread) after the host joined again under a new lease, its old
        #: one having expired (a partition or an etcd outage longer than the TTL): the overlay puts
        #: this host's endpoints back
        self.on_rejoin: Callable[[], None] | None = None
        self.rejoins = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cove-cluster", daemon=True)

    def start(self) -> ClusterSession:
        self._thread.start()
        return self

    def vtep(self) -> str:
        adv = self.cfg.cluster_advertise
        host = adv.rsplit(":", 1)[0] if adv.count(":") == 1 else adv
        if not host:
            return ""
        try:
            socket.inet_aton(host)
            return host
        except OSError:
            return _interface_ipv4(host)

    def _run(self) -> None:
        from ..store.etcd import EtcdStore

        try:
            self.etcd = EtcdStore.from_url(self.cfg.cluster_store, opts=self.cfg.cluster_store_opts)
        except CoveError as exc:       # the daemon read the kv.* files at start; they went since
            self.error = str(exc)
            log.error("cluster store: %s", exc)
            return
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self._join()
                self.error = ""
                if self.on_join is not None and not self._stop.is_set():
                    self.on_join()
                break
            except CoveError as exc:
                self.error = str(exc)
                log.warning("cluster store: %s (retrying)", exc)
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
        self._keep()

    def _keep(self) -> None:
        """Watch the lease: once etcd says it expired (keepalive answers TTL 0, after this host was
        cut off for longer than the TTL), every key on it is gone, so the others forgot this host.
        Join again under a new lease and let the overlay register this host's endpoints again.
        Waits between tries like the first join; never spins while etcd is away."""
        backoff = 0.2
        while not self._stop.wait(max(0.2, self.cfg.cluster_lease_ttl / 3)):
            lease = self.lease
            if lease is None or lease.alive:
                backoff = 0.2
                continue
            log.warning("cluster store: lease %x expired (this host was cut off for longer than %ds); "
                        "joining again", lease.id, self.cfg.cluster_lease_ttl)
            lease.close()
            while not self._stop.is_set():
                try:
                    self._join()
                    self.error = ""
                    self.rejoins += 1
                    if self.on_rejoin is not None and not self._stop.is_set():
                        try:
                            self.on_rejoin()
                        except Exception:      # the watches' next re-list retries; the session keeps going
                            log.exception("cluster store: registering this host's endpoints again failed")
                    break
                except CoveError as exc:
                    self.error = str(exc)
                    log.warning("cluster store: %s (retrying)", exc)
                    self._stop.wait(backoff)
                    backoff = min(5.0, backoff * 2)

    def _join(self) -> None:
        assert self.etcd is not None
        saved = self.local.get("meta/cluster-lease")
        reuse = int(saved.value.get("id", 0)) if saved else None
        lease = self.etcd.lease(self.cfg.cluster_lease_ttl, reuse=reuse)
        if self._stop.is_set():
            lease.close()
            return
        self.lease = lease
        self.local.put("meta/cluster-lease", {"id": lease.id})
        self.etcd.put(f"hosts/{self.host_id}", {"name": socket.gethostname(), "vtep": self.vtep(),
                                                "vxlan_port": VXLAN_PORT, "started": time.time()}, lease=lease)
        log.info("cluster store: joined as host %s (lease %x, ttl %ds)", self.host_id[:12], lease.id, lease.ttl)

    def close(self) -> None:
        """Stop renewing the lease (never revoke it: the containers keep running)."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self.lease is not None:
            self.lease.close()
        if self.etcd is not None:
            self.etcd.close()
