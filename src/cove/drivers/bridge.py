"""The ``bridge`` driver: a Linux bridge per network, a veth pair per endpoint.

Kernel objects, all tagged with an interface alias so that reconcile finds
exactly cove's own (``cove:net:<network id>`` on bridges, ``cove:ep:<endpoint
id>`` on host-side veth ends):

- the bridge (``cove0`` for the default network, ``br-<12 hex>`` otherwise),
  holding the gateway address, up;
- per endpoint, a veth pair created with its peer directly inside the
  container's namespace (named ``eth0``, ``eth1``...), the host end enslaved to
  the bridge; inside: MAC, address, up, and the default route via the gateway
  for the first endpoint;
- the host end gets ``disable_ipv6=1`` before the inner end comes up: it is a
  bridge port, never addressed (an IPv6 network's gateway is on the bridge).
  Left on, each port with carrier gets a link-local address, an ``fe80::/64``
  route and two local routes in the *host's* table, and every link event
  (a veth created, up, carrier, deleted) walks that whole table
  (``fib6_clean_all``): with 1,000 containers on a network the host held
  1,001 + 2,003 IPv6 routes and ``perf`` put a quarter of the kernel time of
  an attach's create request in those walks (issue #17,
  bench/results/2026-12-06-scale-flat.md);
- ``--ipv6`` networks: the bridge also holds the IPv6 gateway address and each
  endpoint an IPv6 address (both added ``nodad``, so usable at once; IPv6 is
  switched on for those interfaces with ``disable_ipv6=0``), with a default IPv6
  route via the gateway on ``eth0``;
- firewall rules for the network (isolation, masquerade) through
  :mod:`cove.firewall`;
- ``enable_icc=false`` is bridge *port isolation*: isolated ports cannot
  exchange frames with each other, only with the bridge itself (the host and
  the gateway), so egress still works with no ``br_netfilter`` involved.

Options (Docker's names): ``com.docker.network.bridge.name``,
``com.docker.network.bridge.enable_icc``,
``com.docker.network.bridge.enable_ip_masquerade``,
``com.docker.network.driver.mtu``; and cove's ``cove.bridge.uplink=NIC``:

- the NIC is enslaved to the bridge and its IPv4 addresses and routes (the
  default route too) move to the bridge (:mod:`cove.drivers.uplink`); the
  bridge takes the NIC's MAC so the LAN's ARP caches stay right;
- the network's gateway is the LAN's router: nothing is put on the bridge
  for it, containers route through it directly, with their own addresses;
- the host's own addresses in the subnet are reserved in IPAM (auxiliary
  address ``cove-uplink-host``), so no container gets one;
- the firewall has no rules for this bridge (no masquerade, no isolation):
  it is the host's LAN interface, which other networks' traffic leaves by,
  and containers on it are hosts of the LAN like any other;
- ``network rm`` moves the addresses and routes the bridge then holds back to
  the NIC and releases it; reconcile leaves a present bridge as it is and
  redoes the move when the bridge is gone (after a reboot).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import replace
from enum import Enum
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface
from typing import Any, Protocol

from ..errors import Conflict, CoveError, InvalidArgument, field_error
from ..firewall import NetworkRules
from ..firewall.base import ifname_problem
from ..kernel.api import ALIAS_PREFIX, Link
from ..ipam import AddressPool
from ..model import Endpoint, Network
from . import uplink
from .base import DriverContext, register
from .bridge_plan import Address, BridgePlan, BridgeExists, JoinPlan, apply_bridge, apply_join
from .options import bool_option
from .uplink import HOST_AUX, OPT_UPLINK

OPT_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"
OPT_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
#: set by the daemon for ``-b/--bridge``: the bridge is the admin's; cove never creates or deletes it
OPT_EXTERNAL = "cove.bridge.external"
KNOWN_OPTIONS = {OPT_NAME, OPT_ICC, OPT_MASQ, OPT_MTU, OPT_DEFAULT, OPT_HOST_BINDING, OPT_EXTERNAL, OPT_UPLINK}

#: the longest interface name Linux accepts (IFNAMSIZ - 1)
IFNAMSIZ = 15

log = logging.getLogger("cove.drivers")


class BridgeMode(Enum):
    """Who owns the bridge, and what is on it."""

    MANAGED = "managed"      # cove makes and deletes it
    EXTERNAL = "external"    # the admin's (``-b/--bridge``): cove uses it, never creates or deletes it
    UPLINK = "uplink"        # cove makes it with a host NIC inside (``cove.bridge.uplink``)


def mode_of(net: Network) -> BridgeMode:
    if OPT_UPLINK in net.options:
        return BridgeMode.UPLINK
    if net.options.get(OPT_EXTERNAL) == "true":
        return BridgeMode.EXTERNAL
    return BridgeMode.MANAGED


def net_alias(net: Network) -> str:
    return f"cove:net:{net.id}"


def ep_alias(ep: Endpoint) -> str:
    return f"cove:ep:{ep.id}"


def route_localnet(ctx: DriverContext, bridge: str) -> None:
    """Let the host's own connections to 127.0.0.1:PORT be DNAT'ed out of this bridge.

    Only the bridge gets it: packets to 127.0.0.0/8 arriving from the LAN are
    still martians, and the firewall drops such packets coming *from* a bridge.
    Only where a firewall backend writes that drop: with ``none`` it is turned
    off, or containers would reach the host's services on 127.0.0.1.
    """
    ctx.kernel.sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "0" if ctx.firewall.name == "none" else "1")


def firewalled(net: Network) -> bool:
    """False for a bridge that holds a host NIC: the firewall treats it as the LAN interface it is."""
    return mode_of(net) is not BridgeMode.UPLINK


def rules_for(net: Network) -> NetworkRules:
    return NetworkRules(
        id=net.id,
        bridge=net.bridge,
        subnets=tuple(str(c.subnet) for c in net.ipam_v4()),
        internal=net.internal,
        masquerade=net.masquerade,
        subnets6=tuple(str(c.subnet) for c in net.ipam_v6()) if net.ipv6 else (),
    )


def enable_ipv6(ctx: DriverContext, bridge: str) -> None:
    """IPv6 on the bridge even where the host's default is ``disable_ipv6=1``."""
    ctx.kernel.sysctl(f"net.ipv6.conf.{bridge}.disable_ipv6", "0")


def gateways(net: Network) -> list[tuple[Any, int]]:
    """The gateway addresses a bridge holds (IPv6 ones on ``--ipv6`` networks: ``::1`` by default)."""
    out = []
    for cfg in net.ipam_v4() + (net.ipam_v6() if net.ipv6 else []):
        gw = cfg.gateway or AddressPool(cfg).gateway
        out.append((gw, cfg.subnet.prefixlen))
    return out


def derived_name(net: Network) -> str:
    """The bridge name cove gives a network without ``com.docker.network.bridge.name``: only this
    name is surely cove's (a name given by option may be a link of the host's)."""
    return f"br-{net.id[:12]}"


def plan_create(net: Network, default_mtu: int, firewall: str) -> BridgePlan:
    """What ``create`` makes for a bridge cove owns (pure: from the validated network alone)."""
    sysctls = [(f"net.ipv6.conf.{net.bridge}.disable_ipv6", "0")] if net.ipv6 else []
    sysctls.append((f"net.ipv4.conf.{net.bridge}.route_localnet", "0" if firewall == "none" else "1"))
    return BridgePlan(name=net.bridge, alias=net_alias(net), mtu=net.mtu or default_mtu or None,
                      sysctls=tuple(sysctls), addresses=tuple(gateways(net)), rules=rules_for(net),
                      rules_beside=net.bridge == derived_name(net))


def plan_join(net: Network, ep: Endpoint, default_mtu: int) -> JoinPlan:
    """What ``join`` makes for an endpoint (pure); only ``eth0`` gets the default routes, and not on
    an ``--internal`` network (libnetwork's bridge driver sets no gateway there: the container has
    no way out, ``Network is unreachable``, as under Docker)."""
    addresses: list[Address] = [(IPv4Address(ep.ip), ep.prefixlen)]
    routes: list[IPv4Address | IPv6Address] = []
    if ep.ip6:
        addresses.append((ip_address(ep.ip6), ep.prefixlen6))
    gateway = ep.ifname == "eth0" and not net.internal
    if gateway and ep.gateway:
        routes.append(IPv4Address(ep.gateway))
    if gateway and ep.ip6 and ep.gateway6:
        routes.append(ip_address(ep.gateway6))
    return JoinPlan(host_ifname=ep.host_ifname, ifname=ep.ifname, alias=ep_alias(ep),
                    mtu=net.mtu or default_mtu or None, bridge=net.bridge, isolated=not net.icc, mac=ep.mac,
                    sysctls=((f"net.ipv6.conf.{ep.ifname}.disable_ipv6", "0"),) if ep.ip6 else (),
                    addresses=tuple(addresses), routes=tuple(routes),
                    host_sysctls=((f"net.ipv6.conf.{ep.host_ifname}.disable_ipv6", "1"),))


class DefaultBridgeSettings(Protocol):
    """The daemon settings behind the predefined ``bridge`` network (dockerd's names)."""

    bridge_name: str            # the default bridge's Linux name
    external_bridge: str | None  # -b/--bridge
    bip: str | None             # --bip
    fixed_cidr: str | None      # --fixed-cidr
    mtu: int                    # --mtu
    icc: bool                   # --icc
    ip_masq: bool               # --ip-masq


def default_network_options(cfg: DefaultBridgeSettings) -> dict[str, str]:
    """The options the daemon's settings ask of the predefined ``bridge`` network."""
    options = {OPT_DEFAULT: "true", OPT_NAME: cfg.external_bridge or cfg.bridge_name,
               OPT_ICC: str(cfg.icc).lower(), OPT_MASQ: str(cfg.ip_masq).lower()}
    if cfg.mtu:
        options[OPT_MTU] = str(cfg.mtu)
    if cfg.external_bridge:
        options[OPT_EXTERNAL] = "true"
    return options


@register("bridge")
class BridgeDriver:
    name = "bridge"
    has_endpoints = True
    supports_ipv6 = True
    singleton = False
    flushes_conntrack = True

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        #: network id -> (bridge name, its ifindex as last known): a join enslaves to it without a
        #: lookup; a stale one (the bridge made again behind cove's back) is looked up again once
        self._bridge_index: dict[str, tuple[str, int]] = {}

    def bridge_index(self, net: Network) -> int | None:
        """The cached index of ``net``'s bridge, if any (None: the next join looks it up)."""
        known = self._bridge_index.get(net.id)
        return known[1] if known is not None and known[0] == net.bridge else None

    def host_ifname(self, ep_id: str) -> str:
        return f"veth{ep_id[:7]}"

    def firewall_rules(self, net: Network) -> NetworkRules | None:
        return rules_for(net) if firewalled(net) else None

    def collect_garbage(self, links: list[Link], networks: set[str], endpoints: set[str]) -> None:
        """Orphan bridges (an uplink's NIC gets its addresses back) and orphan host-side veths."""
        host = self.ctx.kernel.host
        for link in links:
            alias = link.alias or ""
            if alias.startswith(f"{ALIAS_PREFIX}net:") and alias[len(ALIAS_PREFIX) + 4:] not in networks:
                log.warning("removing orphan bridge %s (%s)", link.name, alias)
                nics = [p for p in host.links() if p.master == link.index
                        and not (p.alias or "").startswith(ALIAS_PREFIX)]
                held = uplink.snapshot(host, link, nics[0].name) if nics else None
                host.delete_link(link.name)
                if held is not None:        # a host NIC was inside (an uplink): give it its addresses back
                    uplink.give_back(host, held)
            elif alias.startswith(f"{ALIAS_PREFIX}ep:") and alias[len(ALIAS_PREFIX) + 3:] not in endpoints:
                log.warning("removing orphan veth %s (%s)", link.name, alias)
                host.delete_link(link.name)

    # network ------------------------------------------------------------------------
    def validate(self, net: Network) -> None:
        unknown = sorted(set(net.options) - KNOWN_OPTIONS)
        if unknown:
            raise field_error("option", unknown[0], "not an option of the bridge driver "
                              f"(known: {', '.join(sorted(KNOWN_OPTIONS))})")
        name = net.options.get(OPT_NAME) or ("cove0" if net.name == "bridge" else derived_name(net))
        problem = ifname_problem(name, self.ctx.firewall.name)
        if problem:
            raise field_error(f"option {OPT_NAME}", name, f"not a valid interface name: {problem}")
        net.bridge = name
        net.icc = bool_option(net, OPT_ICC, True)
        net.masquerade = bool_option(net, OPT_MASQ, True)
        mtu = net.options.get(OPT_MTU)
        if mtu is not None:
            try:
                net.mtu = int(mtu)
            except ValueError:
                raise field_error(f"option {OPT_MTU}", mtu, "must be an integer") from None
            if not 68 <= net.mtu <= 65535:
                raise field_error(f"option {OPT_MTU}", mtu, "must be between 68 and 65535")
        if not net.ipam:
            raise InvalidArgument("a bridge network needs a subnet")
        if mode_of(net) is BridgeMode.UPLINK:
            self._validate_uplink(net)

    def _validate_uplink(self, net: Network) -> None:
        uplink.check_options(net.options, net.internal, net.options.get(OPT_EXTERNAL) == "true")
        if bool_option(net, OPT_MASQ, False):
            raise field_error(f"option {OPT_MASQ}", net.options[OPT_MASQ],
                              f"must be false with {OPT_UPLINK}: containers are on the LAN with their own addresses")
        net.masquerade = False
        subnets = net.subnets_v4()
        _, rec = uplink.inspect(self.ctx.kernel.host, net.options[OPT_UPLINK], subnets, net.bridge)
        # the host's own LAN addresses are never handed to a container
        n = 0
        for a in rec["addresses"]:
            ip = IPv4Address(a["address"])
            for i, cfg in enumerate(net.ipam):
                if ip in cfg.subnet and ip != cfg.gateway and ip not in cfg.aux.values():
                    aux = {**cfg.aux, HOST_AUX if n == 0 else f"{HOST_AUX}-{n + 1}": ip}
                    net.ipam[i] = replace(cfg, aux=aux)
                    n += 1

    def create(self, net: Network) -> None:
        nl = self.ctx.kernel.host
        mode = mode_of(net)
        if mode is BridgeMode.MANAGED:
            try:
                index = apply_bridge(self.ctx, plan_create(net, self.ctx.mtu, self.ctx.firewall.name))
            except BridgeExists as exc:
                raise Conflict(f"bridge {net.bridge} already exists; choose another {OPT_NAME}") from exc
            self._bridge_index[net.id] = (net.bridge, index)
            return
        existing = nl.find(net.bridge)
        if mode is BridgeMode.UPLINK:
            if existing is not None:
                raise Conflict(f"bridge {net.bridge} already exists; choose another {OPT_NAME}")
            self._create_uplink(net)
            return
        if mode is BridgeMode.EXTERNAL:
            if existing is None or existing.kind != "bridge":
                raise Conflict(f"bridge {net.bridge} does not exist; create it first (it is the admin's bridge)")
            nl.set_link(existing.index, state="up")
            route_localnet(self.ctx, net.bridge)
            self.ctx.firewall.ensure_network(rules_for(net))

    def _create_uplink(self, net: Network) -> None:
        """The bridge with the NIC inside and the NIC's addresses and routes on it; all or nothing."""
        nl = self.ctx.kernel.host
        subnets = net.subnets_v4()
        nic, rec = uplink.inspect(nl, net.options[OPT_UPLINK], subnets, net.bridge)
        with ExitStack() as undo:
            undo.callback(uplink.give_back, nl, rec)            # runs after the bridge is deleted
            index = nl.add_bridge(net.bridge, net_alias(net), mtu=net.mtu or None)
            undo.callback(nl.delete_link, net.bridge)
            if nic.mac:
                nl.set_link(index, address=nic.mac)
            nl.set_link(index, state="up")
            uplink.move(nl, nic, index, rec)
            net.host_changes = {"uplink": rec}
            undo.pop_all()

    def _delete_uplink(self, net: Network) -> list[Exception]:
        nl = self.ctx.kernel.host
        rec = net.host_changes.get("uplink")
        link = nl.find(net.bridge)
        if link is not None and link.alias == net_alias(net):
            now = uplink.snapshot(nl, link, net.options[OPT_UPLINK])
            if now["addresses"] or rec is None:
                rec = now
            nl.delete_link(net.bridge)
        else:
            nic = nl.find(net.options[OPT_UPLINK])
            if nic is None or nic.master or nl.address_records(nic.index):
                return []                       # the NIC is not ours to fix any more
        return uplink.give_back(nl, rec) if rec is not None else []

    def _restore_uplink(self, net: Network) -> None:
        nl = self.ctx.kernel.host
        link = nl.find(net.bridge)
        if link is not None:
            nl.set_link(link.index, state="up")
            return
        # the bridge is gone (a reboot, or deleted by hand): move the NIC's addresses again
        rec = net.host_changes.get("uplink")
        try:
            nic = nl.find(net.options[OPT_UPLINK])
            if nic is not None and not nic.master and rec and not nl.address_records(nic.index):
                uplink.give_back(nl, rec)       # deleted by hand: the NIC was left with nothing
            self._create_uplink(net)
        except CoveError as exc:
            uplink.log.warning("network %s: cannot put %s back into bridge %s: %s",
                               net.name, net.options[OPT_UPLINK], net.bridge, exc)

    def delete(self, net: Network) -> None:
        self._bridge_index.pop(net.id, None)
        errors: list[Exception] = []
        try:
            self.ctx.firewall.remove_network(net.id)
        except Exception as exc:  # noqa: BLE001 - teardown goes on
            errors.append(exc)
        if mode_of(net) is BridgeMode.UPLINK:
            try:
                errors += self._delete_uplink(net)
            except CoveError as exc:
                errors.append(exc)
            if errors:
                raise ExceptionGroup(f"removing network {net.name}", errors)
            return
        nl = self.ctx.kernel.host
        link = nl.find(net.bridge)
        if link is not None and link.alias == net_alias(net) and mode_of(net) is not BridgeMode.EXTERNAL:
            try:
                nl.delete_link(net.bridge)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if errors:
            raise ExceptionGroup(f"removing network {net.name}", errors)

    def restore(self, net: Network) -> None:
        if mode_of(net) is BridgeMode.UPLINK:
            self._restore_uplink(net)
            return
        nl = self.ctx.kernel.host
        link = nl.find(net.bridge)
        if mode_of(net) is BridgeMode.EXTERNAL:
            if link is not None:
                nl.set_link(link.index, state="up")
                route_localnet(self.ctx, net.bridge)
            return
        if link is None:
            index = nl.add_bridge(net.bridge, net_alias(net), mtu=net.mtu or self.ctx.mtu or None)
        else:
            index = link.index
        have = {a for _, a in nl.addresses(index)}
        if net.ipv6:
            enable_ipv6(self.ctx, net.bridge)
            have |= {a for _, a in nl.addresses(index, family=10)}
        for gw, plen in gateways(net):
            if ip_interface(f"{gw}/{plen}") not in have:
                nl.add_address(index, gw, plen)
        nl.set_link(index, state="up")
        route_localnet(self.ctx, net.bridge)
        self._bridge_index[net.id] = (net.bridge, index)

    # endpoints ------------------------------------------------------------------------
    def join(self, net: Network, ep: Endpoint, sandbox: str) -> None:
        ep.ifindex, ep.host_ifindex, bridge = apply_join(self.ctx, plan_join(net, ep, self.ctx.mtu), sandbox,
                                                         self.bridge_index(net))
        self._bridge_index[net.id] = (net.bridge, bridge)

    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None:
        # Deleting the host end removes the peer inside the namespace too.
        self.ctx.kernel.host.delete_link(ep.host_ifname)
