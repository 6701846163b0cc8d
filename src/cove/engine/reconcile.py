"""Bring the kernel back in line with the store: at start-up and after a crash.

What the store says is the desired state.  Reconcile makes the kernel match it
and removes what cove made that the store no longer knows (found by tag, never
by name pattern):

- first, the operations a ``kill -9`` interrupted (their intents, :mod:`cove.engine.intents`)
  become whole or undone: an interface made but not yet recorded (maybe not yet
  tagged) is removed, a half-done connect undone, a half-done disconnect finished;
- a container the store does not call running is not left running: a start the
  daemon died in is ended, shim, runc and init (``runtime.abandon``);
- predefined networks exist (``bridge`` on ``cove0``, ``host``, ``none``);
- every bridge network has its bridge, gateway address and firewall rules
  (``firewall.sync`` with the full list, in one transaction);
- every container the store calls running is checked: still alive, it is
  watched again (containers survive a daemon restart); gone, its exit is
  processed as if the daemon had seen it;
- ``cove attach`` interfaces of containers that no longer run are dropped;
- links tagged ``cove:net:``/``cove:ep:``/``cove:vlan:``/``cove:shim:``/``cove:pw:`` (and Open
  vSwitch ports with ``external_ids:cove-pw``) that belong to no network or endpoint, and
  namespace files under ``<exec-root>/netns`` that no container holds, are deleted; an orphan
  bridge holding a host NIC (an uplink) gives the NIC its addresses and routes back;
- a driver's ``restore_endpoint(net, ep)`` (when it has one) runs for the
  endpoints of running containers (macvlan's host-access routes).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Interface
from typing import TYPE_CHECKING, Any

from .. import ipam
from ..drivers import DRIVERS
from ..drivers.base import Collector, EndpointRestorer, Firewalled
from ..drivers.bridge import BridgeMode, default_network_options, derived_name, mode_of
from ..errors import CoveError, Unavailable
from ..model import Endpoint, Network
from . import intents
from .core import log

if TYPE_CHECKING:
    from ..firewall import Firewall
    from ..kernel.api import Kernel
    from .containers import ContainerService
    from .names import NameService
    from .networks import NetworkService
    from .pipework import PipeworkService
    from .ports import PortPublisher
    from .sandboxes import SandboxService
    from .state import Drivers, State


def clear_other_backends(current: str) -> None:
    """Remove what another firewall backend of cove left (after a backend switch)."""
    from ..firewall import available_backends, get_firewall

    if current not in ("nftables", "iptables", "none"):
        return          # a backend passed in (a test's fake): the machine's own rules are not ours to probe
    for name in available_backends():
        if name not in (current, "none"):
            try:
                get_firewall(name).teardown()
            except Exception as exc:  # noqa: BLE001 - best effort, logged
                log.warning("clearing the %s backend's leftovers: %s", name, exc)

#: Docker's fixed id style for predefined networks is random too; names are what matter
DEFAULT_BRIDGE_SUBNET = "172.17.0.0/16"


class Reconciler:
    """Start-up and crash recovery, built from the engine's state and the services it drives."""

    def __init__(self, state: State, kernel: Kernel, firewall: Firewall, drivers: Drivers, *,
                 nets: NetworkService, names: NameService, ports: PortPublisher, pipework: PipeworkService,
                 containers: ContainerService, sandboxes: SandboxService, runtime: Any) -> None:
        self.state, self.kernel, self.firewall, self.drivers = state, kernel, firewall, drivers
        self.nets, self.names, self.ports, self.pipework = nets, names, ports, pipework
        self.container_svc, self.sandbox_svc, self.runtime = containers, sandboxes, runtime
        self.driver_by_name, self.driver_of = drivers.by_name, drivers.of
        # the shared records and helpers, by the names the methods below use
        self.cfg, self.store, self.lock = state.cfg, state.store, state.lock
        self.networks, self.containers, self.endpoints = state.networks, state.containers, state.endpoints
        self.endpoints_on, self.save_network, self.forget_pools = (state.endpoints_on, state.save_network,
                                                                   state.forget_pools)

    def default_bridge_config(self, current: Network | None) -> tuple[list[ipam.IpamConfig], dict[str, str]]:
        """The IPAM config and options the daemon's settings ask of the ``bridge`` network."""
        options = default_network_options(self.cfg)
        gateway: str | None = None
        if self.cfg.external_bridge:
            iface = self._external_bridge_address(self.cfg.external_bridge)
            subnet, gateway = str(iface.network), str(iface.ip)
        elif self.cfg.bip:
            iface = IPv4Interface(self.cfg.bip)
            subnet, gateway = str(iface.network), str(iface.ip)
        elif current is not None and mode_of(current) is not BridgeMode.EXTERNAL and current.ipam:
            subnet = str(current.ipam[0].subnet)
            if current.ipam[0].gateway is not None:
                gateway = str(current.ipam[0].gateway)
        else:
            subnet = str(ipam.pick_subnet(self.nets._taken_subnets(), ipam.DEFAULT_POOLS))
        return [ipam.parse_ipam_config(subnet, gateway, self.cfg.fixed_cidr or None)], options

    def _external_bridge_address(self, name: str) -> IPv4Interface:
        host = self.kernel.host
        link = host.find(name)
        if link is None or link.kind != "bridge":
            raise Unavailable(f"invalid daemon setting bridge={name!r}: no Linux bridge of that name exists")
        addrs: list[IPv4Interface] = [a for _, a in host.addresses(link.index)]
        if not addrs:
            raise Unavailable(f"invalid daemon setting bridge={name!r}: the bridge has no IPv4 address to use")
        return addrs[0]

    def ensure_predefined(self) -> None:
        current = next((n for n in self.networks.values() if n.name == "bridge"), None)
        want_ipam, want_opts = self.default_bridge_config(current)
        if current is not None:
            have = [(c.subnet, c.gateway, c.ip_range) for c in current.ipam]
            want = [(w.subnet, h.gateway if w.gateway is None else w.gateway, w.ip_range)
                    for w, h in zip(want_ipam, current.ipam)] + [(w.subnet, w.gateway, w.ip_range)
                                                                 for w in want_ipam[len(current.ipam):]]
            if have != want or current.options != want_opts:
                if self.endpoints_on(current.id):
                    log.warning("default bridge settings changed; the old ones stay until its containers stop")
                else:
                    log.info("default bridge settings changed: %s %s -> %s %s", have, current.options, want, want_opts)
                    self.driver_of(current).delete(current)
                    self.store.delete(f"networks/{current.id}")
                    del self.networks[current.id]
                    self.nets.create_network("bridge", "bridge", want_ipam, options=want_opts, predefined=True,
                                        net_id=current.id)
        else:
            self.nets.create_network("bridge", "bridge", want_ipam, options=want_opts, predefined=True)
        names = {n.name for n in self.networks.values()}
        if "host" not in names:
            self.nets.create_network("host", "host", predefined=True)
        if "none" not in names:
            self.nets.create_network("none", "null", predefined=True)

    def forward_policy(self) -> frozenset[str]:
        """The families whose forwarded traffic of no cove bridge is dropped: those where cove turns
        forwarding on (IPv4 with ip-forward; IPv6 once an IPv6 network exists), unless ip-forward-no-drop."""
        if not self.cfg.ip_forward or self.cfg.ip_forward_no_drop:
            return frozenset()
        return frozenset({"ipv4", *(["ipv6"] if any(n.ipv6 for n in self.networks.values()) else [])})

    def restore_firewall(self) -> None:
        """Rewrite cove's whole ruleset from the engine's state (start-up, or after a flush)."""
        fw = self.firewall
        fw.forward_drop = self.forward_policy()
        fw.setup()
        rules = []
        for net in self.networks.values():
            drv = self.driver_of(net)
            if isinstance(drv, Firewalled) and (r := drv.firewall_rules(net)) is not None:
                rules.append(r)
        fw.sync(rules, self.ports.programmed())

    # the operations a kill -9 interrupted (cove.engine.intents) ---------------------------
    def replay_intents(self) -> None:
        """Turn each operation the dead daemon left unfinished into all of it or none of it."""
        for key, rec in intents.pending(self.store):
            kind = rec.get("kind")
            log.warning("finishing an operation a stopped daemon left unfinished: %s %s", kind,
                        {k: v for k, v in rec.items() if k in ("container", "network")})
            try:
                if kind == "attach":
                    self._undo_attach(Endpoint.from_dict(rec["endpoint"]), str(rec.get("sandbox") or ""))
                elif kind == "connect":
                    self._undo_connect(str(rec["container"]), str(rec["network"]))
                elif kind == "disconnect":
                    self._finish_disconnect(str(rec["container"]), str(rec["network"]))
                elif kind == "network-create":
                    self._undo_network_create(Network.from_dict(rec["network"]))
                else:
                    log.warning("unknown intent %s: %s", key, rec)
            except (CoveError, OSError, KeyError, ValueError) as exc:
                log.warning("intent %s (%s): %s", key, kind, exc)
            self.store.delete(key)

    def _undo_attach(self, ep: Endpoint, sandbox: str) -> None:
        """An interface made before its endpoint record (it may be untagged yet: GC would miss it)."""
        stored = self.endpoints.get(ep.container_id, {}).get(ep.network_id)
        if stored is not None and stored.id == ep.id:
            return                                  # the record was written: the attach is whole
        net = self.networks.get(ep.network_id)
        if net is not None:
            self.driver_of(net).leave(net, ep, sandbox or None)
        elif ep.host_ifname:
            self.kernel.host.delete_link(ep.host_ifname)

    def _undo_connect(self, cid: str, net_id: str) -> None:
        c = self.containers.get(cid)
        if c is None or net_id in c.networks:
            return                                  # the container's record names it: the connect is whole
        if net_id in self.endpoints.get(cid, {}):
            self.nets.detach(c, net_id, c.state.netns or None)

    def _finish_disconnect(self, cid: str, net_id: str) -> None:
        c = self.containers.get(cid)
        if c is None:
            return
        if net_id in self.endpoints.get(cid, {}):
            self.nets.detach(c, net_id, c.state.netns or None)
        moved = False
        if c.running and self.runtime.is_alive(self.cfg.container_state_dir(cid)):
            moved = self.ports.follow_gateway(c, program=False)   # restore_firewall programs them
        if net_id in c.networks or moved:
            c.networks.pop(net_id, None)
            self.state.save_container(c)

    def _undo_network_create(self, net: Network) -> None:
        if net.id in self.networks:
            return                                  # the record was written: the create is whole
        self.driver_of(net).delete(net)
        # a bridge the kernel made but cove had not tagged yet: only the name cove derives from the
        # network's own id identifies it (a name given by option may be a bridge of the host's)
        if net.bridge and net.bridge == derived_name(net):
            link = self.kernel.host.find(net.bridge)
            if link is not None and not link.alias:
                self.kernel.host.delete_link(net.bridge)

    def reconcile(self) -> None:
        with self.lock:
            self.replay_intents()
            if self.cfg.ip_forward:
                self.kernel.sysctl("net.ipv4.ip_forward", "1")
            fw = self.firewall
            clear_other_backends(fw.name)
            for net in self.networks.values():
                if not self.driver_of(net).singleton:
                    before = net.to_dict()
                    self.driver_of(net).restore(net)
                    if net.to_dict() != before:
                        self.save_network(net)
            if any(n.ipv6 for n in self.networks.values()):
                self.nets.ipv6_forwarding()
            self.restore_firewall()
            self.collect_garbage()          # before the predefined networks: frees cove0 if a lost store held it
            self.ensure_predefined()
            for c in list(self.containers.values()):
                state_dir = self.cfg.container_state_dir(c.id)
                if not c.running:
                    # the daemon died between starting it and recording that (kill -9 during a
                    # run): for the user that start failed, so the container must not run
                    # unseen (it showed as Created, and `start` said "already running"); its shim
                    # may still be inside `runc run`, with no init recorded yet
                    if self.runtime.abandon(state_dir):
                        log.warning("container %s (%s) was left half-started; stopped it", c.name, c.id[:12])
                    continue
                if self.runtime.is_alive(state_dir):
                    self.container_svc.watcher.watch(c.id, state_dir)
                    for ep in self.endpoints.get(c.id, {}).values():
                        self.names.register(c, ep)
                        ep_net = self.networks.get(ep.network_id)
                        drv = self.driver_of(ep_net) if ep_net else None
                        if ep_net is not None and isinstance(drv, EndpointRestorer):
                            try:
                                drv.restore_endpoint(ep_net, ep)
                            except CoveError as exc:
                                log.warning("endpoint %s on network %s: %s", ep.id[:12], ep_net.name, exc)
                    if c.mode == "bridge":
                        self.names.start_resolver(c, c.state.netns)
                    log.info("container %s (%s) still running, pid %d", c.name, c.id[:12], c.state.pid)
                else:
                    self.container_svc.on_exit(c.id, self.runtime.exit_code(state_dir))
            self.sandbox_svc.restore()
            for cid in list(self.endpoints):
                holder = self.containers.get(cid)
                if holder is None and cid in self.state.sandboxes:
                    continue             # an external sandbox's (restored just above)
                if holder is None or not holder.running:
                    for net_id, ep in list(self.endpoints[cid].items()):
                        log.warning("releasing stale endpoint %s on network %s", ep.id[:12], net_id[:12])
                        if ep.host_ifname:
                            self.kernel.host.delete_link(ep.host_ifname)
                        self.store.delete(f"endpoints/{cid}/{net_id}")
                    del self.endpoints[cid]
                    self.forget_pools()
            self.pipework.drop_stale()
            self.collect_garbage()
            self._collect_container_dirs()

    def collect_garbage(self) -> None:
        """Delete cove-tagged links and namespace files that no record owns (each driver its own tags)."""
        host = self.kernel.host
        nets = set(self.networks)
        eps = {ep.id for d in self.endpoints.values() for ep in d.values()}
        for name in sorted(DRIVERS):
            drv = self.driver_by_name(name)
            if isinstance(drv, Collector):
                drv.collect_garbage(host.links(), nets, eps)
        self.pipework.collect_garbage(host.links())
        held = {c.state.netns for c in self.containers.values() if c.running and c.state.netns}
        for path in self.kernel.bound_netns(self.cfg.netns_dir):
            if path not in held:
                log.warning("removing orphan network namespace %s", path)
                self.kernel.delete_netns(path)
        if os.path.isdir(self.cfg.netns_dir):
            for name in os.listdir(self.cfg.netns_dir):
                path = os.path.join(self.cfg.netns_dir, name)
                if path not in held:
                    self.kernel.delete_netns(path)
        if os.path.isdir(self.cfg.userns_dir):           # --userns-remap: the owners of those namespaces
            for name in os.listdir(self.cfg.userns_dir):
                if os.path.join(self.cfg.netns_dir, name) not in held:
                    self.kernel.delete_netns(os.path.join(self.cfg.userns_dir, name))

    def _collect_container_dirs(self) -> None:
        """Remove the state and data dirs of containers no record holds: a kill -9 inside a removal,
        after the store delete and before the dirs went (the runtime is stopped first, as in rm)."""
        orphans: set[str] = set()
        for root in (self.cfg.exec_root, self.cfg.data_root):
            parent = os.path.join(root, "containers")
            if os.path.isdir(parent):
                orphans.update(cid for cid in os.listdir(parent)
                               if cid not in self.containers and os.path.isdir(os.path.join(parent, cid)))
        for cid in sorted(orphans):
            state_dir, data_dir = self.cfg.container_state_dir(cid), self.cfg.container_data_dir(cid)
            log.warning("removing the files of container %s, which no record holds", cid[:12])
            self.runtime.abandon(state_dir)
            self.runtime.cleanup(state_dir, data_dir)
