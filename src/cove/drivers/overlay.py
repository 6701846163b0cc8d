"""The overlay driver: one L2 network across hosts, over VXLAN (UDP 4789).

Per overlay network, on every host of the cluster (made when the network appears there):

- a Linux bridge ``ov-<12 hex of the id>`` tagged ``cove:net:<id>``, holding the gateway
  address (the same on every host: an anycast gateway) and the network's firewall rules, exactly
  as a bridge network's (isolation from the other networks, masquerade out of the local host
  unless ``--internal``, ``-p`` on the local host);
- a VXLAN device ``vx-<VNI hex>`` (``nolearning proxy``, no multicast group, ``local`` = this
  host's VTEP, MTU = the underlay's − 50 unless ``com.docker.network.driver.mtu``) enslaved
  to that bridge, tagged ``cove:vx:<id>`` for garbage collection.

Endpoints are veth'd into the bridge as for bridge networks.  Remote endpoints become one
permanent FDB entry (MAC → remote VTEP) and one permanent neighbour entry (IP → MAC, for the
device's ARP proxy) each, programmed by :mod:`cove.engine.overlay` from the cluster store's
watch (:meth:`OverlayDriver.add_peer` / :meth:`OverlayDriver.remove_peer`).  There is no
flood entry: broadcast and multicast stay on each host, as in Docker swarm and flannel.

Why NAT on the overlay bridge and not a second veth to a gateway bridge (Docker's
``docker_gwbridge``): the bridge driver's rules already isolate, masquerade and publish
ports for a bridge with a subnet, so the overlay bridge reuses them unchanged; a second
interface per container would need its own IPAM, routes and rules on every host.  Each
host's bridge has its own MAC for the shared gateway address, which is harmless: ARP for
the gateway never crosses hosts (no flood entry; the proxy answers only for known peers).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from ..errors import CoveError, field_error
from ..kernel.api import ALIAS_PREFIX, Link
from ..model import Network
from .base import register
from .bridge import OPT_MTU, BridgeDriver, net_alias, plan_create
from .bridge_plan import apply_bridge

log = logging.getLogger("cove.drivers")

#: the VXLAN id of a network (Docker's option; cove writes the allocated one back here)
OPT_VNI = "com.docker.network.driver.overlay.vxlanid_list"
KNOWN_OPTIONS = {OPT_VNI, OPT_MTU}
#: IANA's VXLAN port, the one Docker uses
VXLAN_PORT = 4789
#: IPv4 + UDP + VXLAN headers + the inner Ethernet header
VXLAN_OVERHEAD = 50
VNI_MIN, VNI_MAX = 1, (1 << 24) - 1


def vni_of(net: Network) -> int:
    """The network's VXLAN id (validated)."""
    raw = net.options.get(OPT_VNI, "")
    try:
        vni = int(raw.split(",")[0])
    except ValueError:
        raise field_error(f"option {OPT_VNI}", raw, "must be a VXLAN id (an integer)") from None
    if not VNI_MIN <= vni <= VNI_MAX:
        raise field_error(f"option {OPT_VNI}", raw, f"must be between {VNI_MIN} and {VNI_MAX}")
    return vni


def vxlan_name(net: Network) -> str:
    return f"vx-{vni_of(net):06x}"


def vx_alias(net: Network) -> str:
    return f"{ALIAS_PREFIX}vx:{net.id}"


@register("overlay")
class OverlayDriver(BridgeDriver):
    name = "overlay"
    has_endpoints = True
    supports_ipv6 = False
    singleton = False
    flushes_conntrack = True

    def underlay_mtu(self) -> int:
        """The MTU of the interface holding this host's VTEP address (1500 if none is found)."""
        host = self.ctx.kernel.host
        if self.ctx.vtep:
            for index, iface in host.addresses():
                if str(iface.ip) == self.ctx.vtep:
                    link = next((lk for lk in host.links() if lk.index == index), None)
                    if link is not None and link.mtu:
                        return link.mtu
        return 1500

    # network ------------------------------------------------------------------------
    def validate(self, net: Network) -> None:
        unknown = sorted(set(net.options) - KNOWN_OPTIONS)
        if unknown:
            raise field_error("option", unknown[0], "not an option of the overlay driver "
                              f"(known: {', '.join(sorted(KNOWN_OPTIONS))})")
        vni_of(net)
        if net.ipv6:
            raise field_error("ipv6", "true", "overlay networks are IPv4 only in cove")
        if not net.ipam:
            raise field_error("subnet", "", "an overlay network needs a subnet")
        net.bridge = f"ov-{net.id[:12]}"
        net.icc = True
        net.masquerade = True
        mtu = net.options.get(OPT_MTU)
        if mtu is not None:
            try:
                net.mtu = int(mtu)
            except ValueError:
                raise field_error(f"option {OPT_MTU}", mtu, "must be an integer") from None
            if not 68 <= net.mtu <= 65535:
                raise field_error(f"option {OPT_MTU}", mtu, "must be between 68 and 65535")
        else:
            net.mtu = self.underlay_mtu() - VXLAN_OVERHEAD

    def create(self, net: Network) -> None:
        host = self.ctx.kernel.host
        stale = host.find(vxlan_name(net))
        if stale is not None and (stale.alias or "").startswith(f"{ALIAS_PREFIX}vx:"):
            host.delete_link(stale.name)        # a VXLAN device of a network gone while we were away
        with ExitStack() as undo:
            if host.find(net.bridge) is None:
                apply_bridge(self.ctx, plan_create(net, self.ctx.mtu, self.ctx.firewall.name))
                undo.callback(BridgeDriver.delete, self, net)
            self._vxlan(net)
            undo.pop_all()

    def _vxlan(self, net: Network) -> int:
        """Make the VXLAN device if missing, enslaved to the bridge and up; its index."""
        host = self.ctx.kernel.host
        name = vxlan_name(net)
        link = host.find(name)
        if link is None:
            attrs: dict[str, object] = {"vxlan_id": vni_of(net), "vxlan_port": VXLAN_PORT, "vxlan_learning": 0,
                                        "vxlan_proxy": 1, "mtu": net.mtu or 1450}
            if self.ctx.vtep:
                attrs["vxlan_local"] = self.ctx.vtep
            index = host.add_link(name, "vxlan", vx_alias(net), **attrs)
        else:
            index = link.index
        try:
            host.set_link(index, master=host.index(net.bridge))
            host.set_link(index, state="up")
        except CoveError:
            if link is None:
                host.delete_link(name)
            raise
        return index

    def delete(self, net: Network) -> None:
        host = self.ctx.kernel.host
        link = host.find(vxlan_name(net))
        if link is not None and link.alias == vx_alias(net):
            host.delete_link(link.name)
        super().delete(net)

    def restore(self, net: Network) -> None:
        super().restore(net)
        self._vxlan(net)

    def collect_garbage(self, links: list[Link], networks: set[str], endpoints: set[str]) -> None:
        """VXLAN devices of networks no record owns (bridges and veths are the bridge driver's)."""
        prefix = f"{ALIAS_PREFIX}vx:"
        for link in links:
            alias = link.alias or ""
            if alias.startswith(prefix) and alias[len(prefix):] not in networks:
                log.warning("removing orphan vxlan device %s (%s)", link.name, alias)
                self.ctx.kernel.host.delete_link(link.name)

    # peers (remote endpoints) ---------------------------------------------------------
    def _vx_index(self, net: Network) -> int | None:
        link = self.ctx.kernel.host.find(vxlan_name(net))
        return link.index if link is not None and link.alias == vx_alias(net) else None

    def add_peer(self, net: Network, ip: str, mac: str, vtep: str) -> None:
        index = self._vx_index(net)
        if index is not None:
            self.ctx.kernel.host.replace_peer(index, ip, mac, vtep)

    def add_peers(self, net: Network, peers: list[tuple[str, str, str]]) -> None:
        """:meth:`add_peer` for many ``(ip, mac, vtep)``: one device look-up, one batch of messages."""
        index = self._vx_index(net)
        if index is not None and peers:
            self.ctx.kernel.host.replace_peers(index, peers)

    def remove_peer(self, net: Network, ip: str, mac: str, vtep: str) -> None:
        index = self._vx_index(net)
        if index is not None:
            self.ctx.kernel.host.delete_peer(index, ip, mac, vtep)

    def remove_peers(self, net: Network, peers: list[tuple[str, str, str]]) -> None:
        index = self._vx_index(net)
        if index is not None and peers:
            self.ctx.kernel.host.delete_peers(index, peers)

    def peers(self, net: Network) -> list[tuple[str, str, str]]:
        index = self._vx_index(net)
        return self.ctx.kernel.host.peers(index) if index is not None else []


__all__ = ["OPT_VNI", "OverlayDriver", "VXLAN_PORT", "net_alias", "vni_of"]
