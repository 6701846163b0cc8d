"""Networks and endpoints: create, remove, connect, disconnect, prune.

Each operation validates everything first, then changes the kernel step by
step with an undo stack (``ExitStack``), and writes the store last; if any step
fails, the steps already done are undone in reverse and the error propagates,
so no half-made bridge, veth, rule or lease remains.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address, ip_network

from .. import ipam
from ..errors import Conflict, CoveError, Forbidden, InvalidArgument, NotFound, Unavailable, field_error
from ..dns.records import valid_name
from ..kernel.api import Kernel
from ..model import PREDEFINED, Container, Endpoint, EndpointRequest, Network, check_name
from . import intents
from .core import log, new_id, now_rfc3339
from .names import NameService
from .state import Drivers, State

if TYPE_CHECKING:
    from .overlay import OverlayNetworks


def check_dns_name(field: str, name: str) -> None:
    """Names and aliases must be valid DNS names, or the resolver could never answer them."""
    if not valid_name(name):
        raise field_error(field, name, "not a valid DNS name (labels of letters, digits, - and _; "
                          "at most 63 characters each)")


class NetworkService:
    """Networks and endpoints, built from the engine's state, the kernel, the driver table and the names."""

    def __init__(self, state: State, kernel: Kernel, drivers: Drivers, names: NameService) -> None:
        self.state, self.kernel, self.names, self.drivers = state, kernel, names, drivers
        self.driver_by_name, self.driver_of = drivers.by_name, drivers.of
        # the shared records and helpers, by the names the methods below use
        self.cfg, self.store, self.lock = state.cfg, state.store, state.lock
        self.networks, self.containers, self.endpoints, self.pools = (state.networks, state.containers,
                                                                      state.endpoints, state.pools)
        self.find_network, self.find_container = state.find_network, state.find_container
        self.endpoints_on, self.leases, self.leases6 = state.endpoints_on, state.leases, state.leases6
        self.save_network, self.save_endpoint, self.save_container = (state.save_network, state.save_endpoint,
                                                                      state.save_container)
        self.network_event, self.forget_pools = state.network_event, state.forget_pools
        #: called after a running container's endpoints changed (the containers part rewrites /etc/hosts)
        self.endpoints_changed: Callable[[Container], None] = lambda c: None
        #: called after a running container's endpoint left: the default route and the published
        #: ports follow the gateway endpoint (:meth:`cove.engine.ports.PortPublisher.follow_gateway`
        #: after a disconnect, :meth:`~cove.engine.ports.PortPublisher.gateway_joined` after a connect,
        #: which returns the undo of what it changed)
        self.follow_gateway: Callable[[Container], bool] = lambda c: False
        self.gateway_joined: Callable[[Container, Endpoint], Callable[[], None] | None] = lambda c, ep: None
        #: the global half of overlay networks (cove.engine.overlay); None without a cluster store
        self.overlay: OverlayNetworks | None = None
    # subnets ------------------------------------------------------------------------
    def _taken_subnets(self) -> list[IPv4Network]:
        taken = [s for n in self.networks.values() for s in n.subnets_v4()]
        host = self.kernel.host
        addresses, routes = self.kernel.run(lambda: (host.addresses(), host.routes()))    # one hand-off
        taken += [a.network for _, a in addresses if not a.is_loopback]
        taken += [r for r in routes if r.prefixlen > 0]
        return taken

    def _ipam_configs(self, requested: list[ipam.IpamConfig], ipv6: bool = False) -> list[ipam.IpamConfig]:
        """IPv4 configs (one picked from the pools if none is given), then IPv6 ones (``ipv6`` only)."""
        if not requested:
            if ipv6:
                raise InvalidArgument("invalid ipv6: an IPv6 network needs an IPv6 --subnet "
                                      "(e.g. --subnet fd00:1::/64): cove has no default IPv6 address pool")
            pools = [ipam.parse_pool(p) for p in self.cfg.default_pools] or ipam.DEFAULT_POOLS
            subnet = ipam.pick_subnet(self._taken_subnets(), pools)
            return [ipam.parse_ipam_config(str(subnet))]
        configs = []
        existing = {n.name: c.subnet for n in self.networks.values() for c in n.ipam}
        for cfg in requested:
            ipam.check_overlap(cfg.subnet, existing)
            existing[f"(this request) {cfg.subnet}"] = cfg.subnet
            configs.append(cfg)
        v4 = [c for c in configs if c.version == 4]
        v6 = [c for c in configs if c.version == 6]
        if ipv6 and not v6:
            raise InvalidArgument("invalid ipv6: an IPv6 network needs an IPv6 --subnet "
                                  "(e.g. --subnet fd00:1::/64): cove has no default IPv6 address pool")
        if not v4:
            v4 = self._ipam_configs([])
        return v4 + v6      # an IPv6 subnet without --ipv6 is kept but unused, as in Docker 20.10

    @staticmethod
    def _with_gateway(cfg: ipam.IpamConfig) -> ipam.IpamConfig:
        """The config as stored: the IPv4 gateway is filled in, an IPv6 one only if given."""
        if cfg.gateway is None and cfg.version == 4:
            return replace(cfg, gateway=ipam.AddressPool(cfg).gateway)
        return cfg

    # networks -----------------------------------------------------------------------
    def create_network(self, name: str, driver: str = "bridge", ipam_config: list[ipam.IpamConfig] | None = None,
                       internal: bool = False, attachable: bool = False, ipv6: bool = False,
                       options: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                       predefined: bool = False, net_id: str | None = None) -> Network:
        check_name("network name", name)
        driver = driver or "bridge"
        if driver == "overlay":
            if self.overlay is None:
                from .cluster import refuse_overlay

                refuse_overlay(self.cfg)
            assert self.overlay is not None
            if ipv6:
                raise field_error("ipv6", "true", "overlay networks are IPv4 only in cove")
            return self.overlay.create(name, list(ipam_config or []), internal, attachable, dict(options or {}),
                                       dict(labels or {}))
        with self.lock:
            if any(n.name == name for n in self.networks.values()):
                raise Conflict(f"network with name {name} already exists")
            drv = self.driver_by_name(driver)
            if ipv6 and not drv.supports_ipv6:
                raise InvalidArgument(f"invalid ipv6: cove supports IPv6 on bridge networks only, not {driver}")
            if drv.singleton and not predefined:
                raise Forbidden(f'only one instance of "{getattr(drv, "network_name", driver)}" network is allowed')
            configs = self._ipam_configs(list(ipam_config or []), ipv6) if drv.has_endpoints else []
            net = Network(id=net_id or new_id(), name=name, driver=driver, created=now_rfc3339(),
                          ipam=[self._with_gateway(c) for c in configs], internal=internal,
                          attachable=attachable, ipv6=ipv6, options=dict(options or {}), labels=dict(labels or {}))
            drv.validate(net)
            if ipv6:
                self.ipv6_forwarding()
            with ExitStack() as undo:
                intent = intents.begin(self.store, "network-create", network=net.to_dict())
                undo.callback(intents.clear, self.store, intent)
                drv.create(net)
                undo.callback(drv.delete, net)
                with self.store.txn():
                    self.save_network(net)
                    intents.clear(self.store, intent)
                undo.pop_all()
            self.networks[net.id] = net
            if not predefined:
                self.network_event(net, "create")
            log.info("network %s (%s) created: %s", net.name, net.id[:12], [str(c.subnet) for c in net.ipam])
            return net

    def ipv6_forwarding(self) -> None:
        """``net.ipv6.conf.all.forwarding=1`` (with ``--ip-forward``), set once an IPv6 network exists.

        Only then: on a host that takes its own IPv6 address from router
        advertisements, forwarding makes the kernel ignore them (``accept_ra=1``).
        """
        if self.cfg.ip_forward:
            self.kernel.sysctl("net.ipv6.conf.all.forwarding", "1")
            fw = self.drivers.ctx.firewall
            if not self.cfg.ip_forward_no_drop and "ipv6" not in fw.forward_drop:
                fw.forward_drop = fw.forward_drop | {"ipv6"}      # cove turned IPv6 forwarding on
                fw.setup()

    def remove_network(self, ref: str) -> Network:
        with self.lock:
            net = self.find_network(ref)
            if net.name in PREDEFINED:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            active = self.endpoints_on(net.id)
            if active:
                names = ", ".join(sorted(self.containers[e.container_id].name for e in active))
                raise Conflict(f"error while removing network: network {net.name} id {net.id} has active endpoints ({names})")
            if self.overlay is not None and net.driver == "overlay":
                self.overlay.remove(net)          # refused while any other host has an endpoint
            self.driver_of(net).delete(net)
            self.store.delete(f"networks/{net.id}")
            if self.networks.pop(net.id, None) is None:
                return net            # an overlay network the cluster watch has removed meanwhile
            self.forget_pools(net.id)
            self.network_event(net, "destroy")
            log.info("network %s (%s) removed", net.name, net.id[:12])
            return net

    def prune_networks(self, match: Callable[[Network], bool] | None = None) -> list[str]:
        """Remove the unused networks (``match``: only those it accepts, the API's filters)."""
        with self.lock:
            removed = []
            for net in list(self.networks.values()):
                if net.name in PREDEFINED or self.endpoints_on(net.id) or (match is not None and not match(net)):
                    continue
                if any(net.id in c.networks for c in self.containers.values()):
                    continue
                try:
                    self.remove_network(net.id)
                except (Conflict, Unavailable):
                    if net.driver != "overlay":
                        raise
                    continue          # used on another host, or the cluster store is away
                removed.append(net.name)
            return removed

    # endpoints ----------------------------------------------------------------------
    def _next_ifname(self, cid: str) -> str:
        used = {ep.ifname for ep in self.endpoints.get(cid, {}).values()}
        n = 0
        while f"eth{n}" in used:
            n += 1
        return f"eth{n}"

    def check_request(self, net: Network, req: EndpointRequest, predefined_ok: bool = False) -> None:
        """Validate an endpoint request against the network before anything changes."""
        if req.ip is not None:
            if net.name == "bridge" and not predefined_ok:
                raise InvalidArgument("invalid ip: user specified IP address is supported on user defined networks only")
            try:
                ip = IPv4Address(req.ip)
            except ValueError:
                raise field_error("ip", req.ip, "not an IPv4 address") from None
            if not any(ip in c.subnet for c in net.ipam_v4()):
                subnets = ", ".join(str(c.subnet) for c in net.ipam_v4())
                raise field_error("ip", req.ip, f"not in the subnet of network {net.name} ({subnets})")
            if str(ip) in self.leases(net.id):
                raise Conflict(f"ip {ip} is already in use on network {net.name}")
        if req.ip6 is not None:
            if not net.ipv6 or not net.ipam_v6():
                raise field_error("ip6", req.ip6, f"network {net.name} has no IPv6 (create it with --ipv6 and "
                                  "an IPv6 --subnet)")
            if net.name == "bridge" and not predefined_ok:
                raise InvalidArgument("invalid ip6: user specified IP address is supported on user defined "
                                      "networks only")
            try:
                ip6 = IPv6Address(req.ip6)
            except ValueError:
                raise field_error("ip6", req.ip6, "not an IPv6 address") from None
            if not any(ip6 in c.subnet for c in net.ipam_v6()):
                subnets = ", ".join(str(c.subnet) for c in net.ipam_v6())
                raise field_error("ip6", req.ip6, f"not in the IPv6 subnet of network {net.name} ({subnets})")
            req.ip6 = str(ip6)
            if req.ip6 in self.leases6(net.id):
                raise Conflict(f"ip6 {ip6} is already in use on network {net.name}")
        if req.mac is not None:
            req.mac = ipam.parse_mac(req.mac)
        for alias in req.aliases:
            check_dns_name("alias", alias)

    def attach(self, c: Container, net: Network, req: EndpointRequest, sandbox: str,
               ifname: str | None = None) -> Endpoint:
        """Lease an address and make the interface (named ``ifname``, else the next ethN); undone entirely on failure."""
        with self.lock:
            if net.id in self.endpoints.get(c.id, {}):
                raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
            v4 = net.ipam_v4()
            want = v4[0]
            if req.ip is not None:
                want = next(c for c in v4 if IPv4Address(req.ip) in c.subnet)
            pool = self._pool(net, want)
            cfg = pool.cfg
            try:
                ip = pool.allocate(req.ip)
            except BaseException:
                self.forget_pools(net.id)
                raise
            ip6, plen6, gw6 = "", 0, ""
            drv = self.driver_of(net)
            v6 = net.ipam_v6() if net.ipv6 and drv.supports_ipv6 else []
            if v6:
                d6 = v6[0]
                if req.ip6 is not None:
                    d6 = next(c for c in v6 if IPv6Address(req.ip6) in c.subnet)
                pool6 = self._pool(net, d6)
                try:
                    ip6, plen6, gw6 = str(pool6.allocate(req.ip6)), pool6.cfg.subnet.prefixlen, str(pool6.gateway)
                except BaseException:
                    self.forget_pools(net.id)
                    raise
            epid = new_id()
            ep = Endpoint(id=epid, network_id=net.id, container_id=c.id, ifname=ifname or self._next_ifname(c.id),
                          host_ifname=drv.host_ifname(epid),
                          ip=str(ip), prefixlen=cfg.subnet.prefixlen,
                          gateway=str(pool.gateway), mac=req.mac or ipam.mac_for_ip(ip),
                          ip6=ip6, prefixlen6=plen6, gateway6=gw6)
            with ExitStack() as undo:
                undo.callback(self.forget_pools, net.id)       # a failure: the pools forget this lease
                # a kill -9 from here on leaves the intent, and reconcile undoes the interface (an
                # overlay reservation without its endpoint record is released when the host's
                # endpoints are next listed, cove.engine.overlay)
                intent = intents.begin(self.store, "attach", endpoint=ep.to_dict(), sandbox=sandbox)
                undo.callback(intents.clear, self.store, intent)
                if self.overlay is not None and net.driver == "overlay":
                    overlay = self.overlay
                    undo.callback(overlay.reserved, ep.id)
                    try:      # cluster-wide first, without the engine lock: it may move the address
                        overlay.reserve(c, net, req, ep, pool, unlocked=lambda: self.state.unlocked_for(c))
                    finally:
                        undo.callback(overlay.release, net, ep, c)      # what a failed Txn left is nobody's
                    if self.networks.get(net.id) is not net:
                        raise NotFound(f"network {net.name} not found (removed meanwhile)")
                    if ep.ip != str(ip):           # the address moved (a race lost to another host)
                        ip = IPv4Address(ep.ip)
                        self.store.put(intent, {"kind": "attach", "endpoint": ep.to_dict(), "sandbox": sandbox})
                drv.join(net, ep, sandbox)
                undo.callback(drv.leave, net, ep, sandbox)
                self.names.register(c, ep)       # may refuse a name: before anything is saved
                undo.callback(self.names.unregister, c.id, net.id)
                if req.ip is None:
                    net.last_ip = str(ip)
                if ip6 and req.ip6 is None:
                    net.last_ip6 = ip6
                with self.store.txn():
                    self.save_endpoint(ep)
                    self.save_network(net)
                    intents.clear(self.store, intent)
                undo.pop_all()
            self.endpoints.setdefault(c.id, {})[net.id] = ep
            if self.overlay is not None:
                self.overlay.reserved(ep.id)
            self.network_event(net, "connect", container=c.id)
            return ep

    def _pool(self, net: Network, cfg: ipam.IpamConfig) -> ipam.AddressPool:
        """The cached address pool of one of the network's subnets (built from its endpoints)."""
        key = (net.id, str(cfg.subnet))
        pool = self.pools.get(key)
        if pool is None:
            if cfg.version == 4:
                remote = self.overlay.remote_leases(net.id) if self.overlay is not None else []
                pool = ipam.AddressPool(cfg, leased=[IPv4Address(a) for a in [*self.leases(net.id), *remote]],
                                        last=IPv4Address(net.last_ip) if net.last_ip else None)
            else:
                pool = ipam.AddressPool(cfg, leased=self.leases6(net.id),
                                        last=net.last_ip6 if net.last_ip6 else None)
            self.pools[key] = pool
        return pool

    def _release(self, net_id: str, ep: Endpoint) -> None:
        """Give an endpoint's addresses back to the cached pools that hold them."""
        for (nid, subnet), pool in self.pools.items():
            if nid != net_id:
                continue
            for addr in (ep.ip, ep.ip6):
                if addr and ip_address(addr) in ip_network(subnet):
                    pool.release(addr)

    def detach(self, c: Container, net_id: str, sandbox: str | None) -> None:
        """Remove one endpoint; an already-missing kernel object counts as removed."""
        with self.lock:
            ep = self.endpoints.get(c.id, {}).get(net_id)
            if ep is None:
                return
            net = self.networks.get(net_id)
            self.names.unregister(c.id, net_id)
            try:
                self.unplug(net, ep, sandbox)
            finally:
                self.store.delete(f"endpoints/{c.id}/{net_id}")
                self.forget(c, net_id, ep)
            if net is not None:
                self.network_event(net, "disconnect", container=c.id)

    def unplug(self, net: Network | None, ep: Endpoint, sandbox: str | None) -> None:
        """The kernel half of a detach: the endpoint's interfaces and its addresses' conntrack entries.

        Touches no record, so a container's exit runs it without the engine lock (the endpoint
        stays recorded, its addresses leased, until :meth:`forget` under the lock)."""
        if net is None:
            return
        drv = self.driver_of(net)
        drv.leave(net, ep, sandbox)
        if drv.flushes_conntrack:
            self.kernel.forget_flows(ep.ip, ep.ip6)

    def forget(self, c: Container, net_id: str, ep: Endpoint) -> None:
        """The records half of a detach, under the lock, once :meth:`unplug` is done (the store
        record is the caller's to delete): the addresses go back to the pools, an overlay
        endpoint's cluster keys are queued for release, the entry goes."""
        net = self.networks.get(net_id)
        self._release(net_id, ep)
        if self.overlay is not None and net is not None and net.driver == "overlay":
            self.overlay.release(net, ep, c)
        mine = self.endpoints.get(c.id, {})
        if mine.get(net_id) is ep:
            del mine[net_id]
        if not mine:
            self.endpoints.pop(c.id, None)

    def connect(self, net_ref: str, container_ref: str, req: EndpointRequest) -> None:
        with self.lock:
            self.find_network(net_ref)              # a missing network is named before the container
            self.find_container(container_ref)
        with self.state.occupy(container_ref, "network connect") as c:
            self._connect(net_ref, c, req)

    def _connect(self, net_ref: str, c: Container, req: EndpointRequest) -> None:
        with self.lock:
            net = self.find_network(net_ref)
            if not self.driver_of(net).has_endpoints or c.mode != "bridge":
                raise Forbidden("container sharing network namespace with another container or host "
                                "cannot be connected to any other network")
            if net.id in c.networks:
                raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
            self.check_request(net, req)
            for alias in req.aliases:
                check_dns_name("alias", alias)
            c.networks[net.id] = req          # before attach: the resolver registers its aliases
            intent = intents.begin(self.store, "connect", container=c.id, network=net.id) if c.running else None
            undo_ports = ExitStack()
            try:
                if c.running:
                    self.attach(c, net, req, c.state.netns)
                    self.names.start_resolver(c, c.state.netns)
                    # the new endpoint may be its gateway endpoint now (it had only internal
                    # networks): the default route and the ports go there; a fixed host port
                    # taken meanwhile is a 409, and the connect is undone below
                    undo = self.gateway_joined(c, self.endpoints[c.id][net.id])
                    if undo is not None:
                        undo_ports.callback(undo)
                with self.store.txn():
                    self.save_container(c)
                    if intent is not None:
                        intents.clear(self.store, intent)
            except BaseException:
                undo_ports.close()
                del c.networks[net.id]
                if intent is not None:
                    if net.id in self.endpoints.get(c.id, {}):
                        self.detach(c, net.id, c.state.netns)
                    intents.clear(self.store, intent)
                raise
            self.on_endpoints_changed(c)

    def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        with self.lock:
            try:
                self.find_network(net_ref)
            except NotFound:
                if not force:
                    raise
                return
            self.find_container(container_ref)
        with self.state.occupy(container_ref, "network disconnect") as c:
            self._disconnect(net_ref, c, force)

    def _disconnect(self, net_ref: str, c: Container, force: bool) -> None:
        with self.lock:
            try:
                net = self.find_network(net_ref)
            except NotFound:
                if not force:
                    raise
                return
            if net.id not in c.networks:
                raise Conflict(f"container {c.id[:12]} is not connected to network {net.name}")
            # the interface goes before the records: a kill -9 in between leaves the intent,
            # and reconcile finishes the disconnect
            intent = intents.begin(self.store, "disconnect", container=c.id, network=net.id)
            with intents.failing_clears(self.store, intent):
                if c.running:
                    self.detach(c, net.id, c.state.netns)
                else:      # dockerd reports this one for a stopped container too
                    self.network_event(net, "disconnect", container=c.id)
            del c.networks[net.id]
            if c.running:
                try:
                    self.follow_gateway(c)
                except CoveError as exc:     # the disconnect itself is done: it stands
                    log.warning("container %s: moving its gateway after leaving %s: %s", c.name, net.name, exc)
            with self.store.txn():
                self.save_container(c)
                intents.clear(self.store, intent)
            self.on_endpoints_changed(c)

    def on_endpoints_changed(self, c: Container) -> None:
        self.endpoints_changed(c)
