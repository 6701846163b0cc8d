"""The engine's configuration (:class:`EngineConfig`), its ids and timestamps, and its logger.

The engine is a facade (:class:`cove.engine.Engine`) over services, each built from one
:class:`cove.engine.state.State` (the records, the lock, the store, the event bus) and the
parts it needs: :mod:`.networks` creates and removes networks and endpoints; :mod:`.containers`
runs containers; :mod:`.ports`, :mod:`.names`, :mod:`.pipework` publish ports, serve names and
add ``cove attach`` interfaces; :mod:`.reconcile` brings the kernel back in line with the store
after a restart or crash.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..runtime.userns import IdMaps

log = logging.getLogger("cove.engine")


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
    cluster_store: str = ""                   # --cluster-store: etcd://h1:2379,... ("" : single host)
    cluster_store_opts: dict[str, str] = field(default_factory=dict)   # --cluster-store-opt kv.*: TLS to etcd
    cluster_advertise: str = ""               # --cluster-advertise: this host's VTEP address or interface
    cluster_lease_ttl: int = 30               # --cluster-lease-ttl (seconds)
    userns_remap: IdMaps | None = None        # --userns-remap, resolved (cove.runtime.userns); None: off
    cgroup_parent: str = "/cove"              # --cgroup-parent: containers' cgroups are <it>/<id>

    @property
    def netns_dir(self) -> str:
        return os.path.join(self.exec_root, "netns")

    @property
    def userns_dir(self) -> str:
        return os.path.join(self.exec_root, "userns")

    def container_state_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, "containers", cid)

    def container_data_dir(self, cid: str) -> str:
        return os.path.join(self.data_root, "containers", cid)


def new_id() -> str:
    return secrets.token_hex(32)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
