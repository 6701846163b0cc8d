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
Kernel support is probed once (:mod:`cove.kernel.features`); a missing module
fails before anything changes, naming the kernel option.
"""

from __future__ import annotations

from contextlib import ExitStack
from ipaddress import IPv4Address
from typing import Any

from ..errors import Conflict, InvalidArgument, NotFound, field_error
from ..kernel import features
from ..model import Endpoint, Network
from .base import DriverContext, register

MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}


def vlan_alias(net: Network) -> str:
    return f"cove:vlan:{net.id}"


class _StackedDriver:
    """What macvlan and ipvlan share: the parent, its VLAN, and the endpoint's lifecycle."""

    name = ""
    has_endpoints = True
    known: set[str] = {"parent"}

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

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
            if not vid.isdigit() or not 1 <= int(vid) <= 4094:
                raise field_error("option parent", parent, "the VLAN id after the dot must be 1-4094")
            features.require("vlan")
            if self.ctx.netlink.get(None).find(base) is None:
                raise field_error("option parent", parent, f"the interface {base} does not exist")
        elif self.ctx.netlink.get(None).find(parent) is None:
            raise field_error("option parent", parent, "no such interface on this host")
        net.bridge = parent          # shown in inspect as the kernel object behind the network

    def create(self, net: Network) -> None:
        parent = net.options["parent"]
        base, dot, vid = parent.partition(".")
        host = self.ctx.netlink.get(None)
        if dot and host.find(parent) is None:
            host.add_link(parent, "vlan", vlan_alias(net), link=host.index(base), vlan_id=int(vid))
            host.set_link(host.index(parent), state="up")

    def delete(self, net: Network) -> None:
        host = self.ctx.netlink.get(None)
        link = host.find(net.options.get("parent", ""))
        if link is not None and link.alias == vlan_alias(net):
            host.delete_link(link.name)

    def restore(self, net: Network) -> None:
        self.create(net)

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
            host.add_link_in(ep.ifname, self.name, sandbox, link=parent.index, **self.link_spec(net))
            undo.callback(inside.delete_link, ep.ifname)
            index = inside.index(ep.ifname)
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
            undo.pop_all()

    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None:
        if sandbox:
            try:
                self.ctx.netlink.get(sandbox).delete_link(ep.ifname)
            except Conflict:
                pass


@register("macvlan")
class MacvlanDriver(_StackedDriver):
    name = "macvlan"
    known = {"parent", "macvlan_mode"}

    def validate(self, net: Network) -> None:
        mode = net.options.get("macvlan_mode", "bridge")
        if mode not in MACVLAN_MODES:
            raise field_error("option macvlan_mode", mode, f"must be one of {', '.join(MACVLAN_MODES)}")
        super().validate(net)

    def link_spec(self, net: Network) -> dict[str, Any]:
        return {"macvlan_mode": net.options.get("macvlan_mode", "bridge")}


@register("ipvlan")
class IpvlanDriver(_StackedDriver):
    name = "ipvlan"
    known = {"parent", "ipvlan_mode", "ipvlan_flag"}

    def validate(self, net: Network) -> None:
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
