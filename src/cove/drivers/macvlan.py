"""The ``macvlan`` and ``ipvlan`` drivers: containers directly on a host NIC's segment.

Each endpoint is a macvlan (own MAC) or ipvlan (the parent's MAC) link stacked
on the parent interface and created straight inside the container's
namespace; there is no bridge, no NAT and no firewall rule: the container is a
host on the LAN, reached by the LAN's own routing.

Options (Docker's names):

- ``parent``: the host interface (required).  ``parent=eth0.20`` means VLAN 20
  on eth0: cove creates that 802.1q sub-interface when it is missing (tagged
  ``cove:vlan:<network id>``) and deletes it with the network that made it.
- ``macvlan_mode``: bridge (default), private, vepa, passthru.
- ``ipvlan_mode``: l2 (default), l3, l3s; ``ipvlan_flag``: bridge (default), private, vepa.

Linux forbids a macvlan parent from talking to its own macvlan children, so the
host itself does not reach these containers (other hosts and the containers do).
``host_access=true`` (macvlan, mode bridge) lifts that the way admins do by
hand: a host-side macvlan link in bridge mode on the same parent (the "shim",
``cove-h<9 hex>``, tagged ``cove:shim:<network id>``), with one address per
subnet from the network's IPAM (auxiliary address ``cove-host-access``, so no
container gets it) as a /32, and a /32 route per container through it, added
when the endpoint joins and removed when it leaves.  /32 routes win over a
connected route the host may already have for the LAN on the parent, so
nothing else changes.  The shim goes with the network (and with a failed create).

The endpoint's link is created inside the container's namespace under a temporary unique
name (``cove-t<8 hex>``) and renamed there to its final name (``eth0``): kernels before the
2025 change "rtnetlink: Lookup device in target netns when creating link" (Debian 12's 6.1,
Ubuntu 22.04, RHEL 9) check a new link's name in the *caller's* namespace, so creating it
as ``eth0`` failed with "File exists" whenever the parent itself is the host's ``eth0``.

Kernel support is probed once (:mod:`cove.kernel.features`); a missing module
fails before anything changes, naming the kernel option.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import ExitStack
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..errors import CoveError, InvalidArgument, NotFound, field_error
from ..kernel import features
from ..kernel.api import RT_SCOPE_LINK, Link
from ..ipam import IpamConfig
from ..model import Endpoint, Network
from .base import DriverContext, register
from .options import bool_option

MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}


log = logging.getLogger("cove.drivers")

OPT_HOST_ACCESS = "host_access"
RTPROT_STATIC = 4
#: the IPAM auxiliary-address name of the shim's address in each subnet
SHIM_AUX = "cove-host-access"


def vlan_alias(net: Network) -> str:
    return f"cove:vlan:{net.id}"


def shim_alias(net: Network) -> str:
    return f"cove:shim:{net.id}"


def shim_name(net: Network) -> str:
    return f"cove-h{net.id[:9]}"


def host_access(net: Network) -> bool:
    return bool_option(net, OPT_HOST_ACCESS, False)


def _pick_shim_address(parsed: IpamConfig) -> IPv4Address:
    """The highest free address of the ip range (or subnet): containers are allocated from the bottom."""
    taken = {str(ip) for ip in parsed.aux.values()} | {str(parsed.gateway)}
    rng = parsed.ip_range or parsed.subnet
    top, bottom = int(rng.broadcast_address), int(rng.network_address)
    for n in range(top, bottom - 1, -1):
        ip = IPv4Address(n)
        if ip in (parsed.subnet.network_address, parsed.subnet.broadcast_address) or str(ip) in taken:
            continue
        return ip
    raise field_error("option host_access", "true", f"no free address in {rng} for the host's link")


class _StackedDriver:
    """What macvlan and ipvlan share: the parent, its VLAN, and the endpoint's lifecycle."""

    name = ""
    has_endpoints = True
    supports_ipv6 = False
    singleton = False
    flushes_conntrack = False
    known: set[str] = {"parent"}

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    def host_ifname(self, ep_id: str) -> str:
        return ""

    def collect_garbage(self, links: list[Link], networks: set[str], endpoints: set[str]) -> None:
        """Host-access links and VLAN interfaces of networks that are gone."""
        for link in links:
            alias = link.alias or ""
            for tag, what in (("cove:shim:", "host-access link"), ("cove:vlan:", "VLAN interface")):
                if alias.startswith(tag) and alias[len(tag):] not in networks:
                    log.warning("removing orphan %s %s (%s)", what, link.name, alias)
                    self.ctx.kernel.host.delete_link(link.name)

    # network ----------------------------------------------------------------------
    def validate(self, net: Network) -> None:
        unknown = sorted(set(net.options) - self.known)
        if unknown:
            raise field_error("option", unknown[0], f"not an option of the {self.name} driver "
                              f"(known: {', '.join(sorted(self.known))})")
        parent = net.options.get("parent")
        if not parent:
            raise InvalidArgument(f"invalid option parent: the {self.name} driver needs -o parent=INTERFACE")
        if net.internal:
            raise InvalidArgument(f"invalid internal: {self.name} networks sit on a LAN and cannot be internal")
        features.require(self.name)
        base, dot, vid = parent.partition(".")
        if dot:
            if not (vid.isascii() and vid.isdigit()) or not 1 <= int(vid) <= 4094:
                raise field_error("option parent", parent, "the VLAN id after the dot must be 1-4094")
            features.require("vlan")
            if self.ctx.netlink.get(None).find(base) is None:
                raise field_error("option parent", parent, f"the interface {base} does not exist")
        elif self.ctx.netlink.get(None).find(parent) is None:
            raise field_error("option parent", parent, "no such interface on this host")
        net.bridge = parent          # shown in inspect as the kernel object behind the network
        if host_access(net):
            for i, cfg in enumerate(net.ipam):   # the shim's address in each subnet, reserved like an aux address
                if SHIM_AUX not in cfg.aux:
                    net.ipam[i] = replace(cfg, aux={**cfg.aux, SHIM_AUX: _pick_shim_address(cfg)})

    def create(self, net: Network) -> None:
        parent = net.options["parent"]
        base, dot, vid = parent.partition(".")
        host = self.ctx.netlink.get(None)
        with ExitStack() as undo:
            if dot and host.find(parent) is None:
                host.add_link(parent, "vlan", vlan_alias(net), link=host.index(base), vlan_id=int(vid))
                undo.callback(host.delete_link, parent)
                host.set_link(host.index(parent), state="up")
            if host_access(net):
                self._ensure_shim(net)
            undo.pop_all()

    def _shim_addresses(self, net: Network) -> list[tuple[IPv4Network, IPv4Address]]:
        out = []
        for c in net.ipam:
            ip = c.aux[SHIM_AUX]
            if isinstance(c.subnet, IPv4Network) and isinstance(ip, IPv4Address):
                out.append((c.subnet, ip))
        return out

    def _ensure_shim(self, net: Network) -> None:
        """The host's own macvlan link on the parent, with its /32 addresses, up (idempotent)."""
        host = self.ctx.netlink.get(None)
        name = shim_name(net)
        link = host.find(name)
        with ExitStack() as undo:
            if link is None:
                index = host.add_link(name, "macvlan", shim_alias(net), link=host.index(net.options["parent"]),
                                      macvlan_mode="bridge")
                undo.callback(host.delete_link, name)
            else:
                index = link.index
            have = {str(a) for _, a in host.addresses(index)}
            for _, ip in self._shim_addresses(net):
                if f"{ip}/32" not in have:
                    host.add_address(index, ip, 32)
            host.set_link(index, state="up")
            undo.pop_all()

    def delete(self, net: Network) -> None:
        host = self.ctx.netlink.get(None)
        shim = host.find(shim_name(net))
        if shim is not None and shim.alias == shim_alias(net):
            host.delete_link(shim.name)         # its routes go with it
        link = host.find(net.options.get("parent", ""))
        if link is not None and link.alias == vlan_alias(net):
            host.delete_link(link.name)

    def restore(self, net: Network) -> None:
        """Re-make a missing VLAN interface or host-access link; a vanished parent is logged, not fatal."""
        try:
            self.create(net)
        except CoveError as exc:
            log.warning("network %s: cannot restore its links on %s: %s", net.name, net.options.get("parent"), exc)

    # the host's route to one container, through the shim -------------------------------
    def _host_route(self, net: Network, ep: Endpoint) -> tuple[dict[str, Any], int] | None:
        if not host_access(net):
            return None
        host = self.ctx.netlink.get(None)
        src = next((ip for subnet, ip in self._shim_addresses(net) if IPv4Address(ep.ip) in subnet), None)
        rec: dict[str, Any] = {"dst": f"{ep.ip}/32", "scope": RT_SCOPE_LINK, "proto": RTPROT_STATIC}
        if src is not None:
            rec["prefsrc"] = str(src)
        return rec, host.index(shim_name(net))

    def restore_endpoint(self, net: Network, ep: Endpoint) -> None:
        route = self._host_route(net, ep)
        if route is not None:
            self.ctx.netlink.get(None).add_route(route[0], route[1], replace=True)

    # endpoints ----------------------------------------------------------------------
    def link_spec(self, net: Network) -> dict[str, Any]:
        raise NotImplementedError

    def join(self, net: Network, ep: Endpoint, sandbox: str) -> None:
        host = self.ctx.netlink.get(None)
        inside = self.ctx.netlink.get(sandbox)
        parent = host.find(net.options["parent"])
        if parent is None:
            raise NotFound(f"parent interface {net.options['parent']} of network {net.name} is gone")
        with ExitStack() as undo:
            # a temporary name, free on the host too (old kernels check it there), then the real one
            name = [f"cove-t{secrets.token_hex(4)}"]
            host.add_link_in(name[0], self.name, sandbox, link=parent.index, **self.link_spec(net))
            undo.callback(lambda: inside.delete_link(name[-1]))
            index = inside.index(name[0])
            inside.set_link(index, ifname=ep.ifname)
            name.append(ep.ifname)
            ep.ifindex, ep.host_ifindex = index, parent.index
            if self.name == "macvlan":
                inside.set_link(index, address=ep.mac)
            inside.add_address(index, IPv4Address(ep.ip), ep.prefixlen)
            inside.set_link(index, state="up")
            if ep.ifname == "eth0":
                if net.options.get("ipvlan_mode") in ("l3", "l3s"):
                    inside.add_default_route_dev(index)      # L3: no gateway, no broadcast
                elif ep.gateway:
                    inside.add_default_route(IPv4Address(ep.gateway))
            route = self._host_route(net, ep)
            if route is not None:
                host.add_route(route[0], route[1], replace=True)
            undo.pop_all()

    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None:
        if host_access(net) and self.ctx.netlink.get(None).find(shim_name(net)) is not None:
            route = self._host_route(net, ep)
            if route is not None:
                self.ctx.netlink.get(None).delete_route(route[0], route[1])
        if sandbox:
            # the sub-interface lives only in the container's namespace; one already gone (the
            # namespace died with the container) is delete_link's False, not an error
            self.ctx.netlink.get(sandbox).delete_link(ep.ifname)


@register("macvlan")
class MacvlanDriver(_StackedDriver):
    name = "macvlan"
    known = {"parent", "macvlan_mode", OPT_HOST_ACCESS}

    def validate(self, net: Network) -> None:
        mode = net.options.get("macvlan_mode", "bridge")
        if mode not in MACVLAN_MODES:
            raise field_error("option macvlan_mode", mode, f"must be one of {', '.join(MACVLAN_MODES)}")
        if host_access(net) and mode != "bridge":
            raise field_error("option host_access", net.options[OPT_HOST_ACCESS],
                              f"needs macvlan_mode=bridge (in mode {mode} the host's link cannot reach the containers)")
        super().validate(net)

    def link_spec(self, net: Network) -> dict[str, Any]:
        return {"macvlan_mode": net.options.get("macvlan_mode", "bridge")}


@register("ipvlan")
class IpvlanDriver(_StackedDriver):
    name = "ipvlan"
    known = {"parent", "ipvlan_mode", "ipvlan_flag", OPT_HOST_ACCESS}

    def validate(self, net: Network) -> None:
        if host_access(net):
            raise field_error("option host_access", net.options[OPT_HOST_ACCESS],
                              "only the macvlan driver offers it (use -d macvlan, or route to the "
                              "containers by hand)")
        mode = net.options.get("ipvlan_mode", "l2")
        if mode not in IPVLAN_MODES:
            raise field_error("option ipvlan_mode", mode, "must be l2, l3 or l3s")
        flag = net.options.get("ipvlan_flag", "bridge")
        if flag not in IPVLAN_FLAGS:
            raise field_error("option ipvlan_flag", flag, "must be bridge, private or vepa")
        super().validate(net)

    def link_spec(self, net: Network) -> dict[str, Any]:
        return {"ipvlan_mode": IPVLAN_MODES[net.options.get("ipvlan_mode", "l2")],
                "ipvlan_flags": IPVLAN_FLAGS[net.options.get("ipvlan_flag", "bridge")]}
