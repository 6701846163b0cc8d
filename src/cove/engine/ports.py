"""Publishing ports (``-p``, ``-P``) for running containers.

At start, after the container's endpoints exist: read its bindings
(:func:`cove.portmap.requests`), choose host ports (:func:`cove.portmap.allocate`,
checking every port already published and probing the host for listeners),
and hand the mappings to the firewall (DNAT).  IPv6 host addresses map to the
container's IPv6 address (``--ipv6`` networks only; checked at create).  At exit: remove them and drop
the UDP conntrack entries that would otherwise keep steering a client's
packets to the dead container.

External connectivity follows the *gateway endpoint* (libnetwork's
``sbJoin``/``sbLeave``/``updateGateway``): ``eth0`` while it is there on a network that
is not ``--internal``; else the first endpoint on a network with a gateway (not
internal), by network name as Docker orders them.  Ports are published on it at
start and nowhere when there is none (a container only on internal networks:
libnetwork programs external connectivity only ``if !n.internal``).  When the
gateway endpoint changes (:meth:`PortPublisher.follow_gateway`, after a
``network connect`` or ``disconnect``), the default route and the published ports
move to it with the same host ports; with none left, the ports are withdrawn; and
a container whose ports were withdrawn gets them again, chosen afresh, when it
joins a network with a gateway (a fixed host port taken meanwhile refuses that
connect with Docker's 409, and the connect is undone).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, ip_address

from .. import portmap
from ..errors import Conflict, CoveError
from ..firewall import Firewall
from ..kernel.api import Kernel
from ..model import Container, Endpoint
from ..portmap import PortMapping
from .core import log
from .state import State

_SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


def host_port_free(proto: str, ip: str, port: int) -> bool:
    """Can a host process bind ip:port?  (If not, someone listens there already.)"""
    kind = _SOCK_TYPES.get(proto)
    if kind is None:
        return True   # SCTP: no probe without the sctp module; the DNAT still wins over a listener
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind)
    try:
        if ":" in ip:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)   # "::" alone, not 0.0.0.0 too
        s.bind((ip, port))
        return True
    except OSError as exc:
        return exc.errno != errno.EADDRINUSE
    finally:
        s.close()


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


class PortPublisher:
    """Host ports for running containers: chosen, checked and handed to the firewall (DNAT)."""

    def __init__(self, state: State, firewall: Firewall, kernel: Kernel,
                 probe: Callable[[str, str, int], bool] | None = None) -> None:
        self.state = state
        self.firewall = firewall
        self.kernel = kernel
        self._probe = probe

    def published(self, exclude: str | None = None) -> list[PortMapping]:
        """Every mapping held by a running container (or one being started, its runtime call unlocked)."""
        return [PortMapping.from_dict(d) for c in self.state.containers.values()
                if c.running and c.id != exclude for d in c.state.ports] + \
            [m for cid, ms in self.state.starting_ports.items() if cid != exclude for m in ms] + \
            [PortMapping.from_dict(d) for sb in self.state.sandboxes.values() for d in sb.ports]

    def programmed(self) -> list[PortMapping]:
        """What the firewall must hold (a restore after a flush): :meth:`published` but the mappings an
        exit is withdrawing without the lock (:attr:`State.exiting`), which stay reserved, so no one
        else gets their host ports, until their elements are gone."""
        leaving = {m for ms in self.state.exiting.values() for m in ms}
        return [m for m in self.published() if m not in leaving]

    def check_ports(self, c: Container) -> None:
        """Validate the bindings at create time; refuse a fixed host port that is taken now."""
        reqs = portmap.requests(c.host_config.port_bindings, c.config.exposed_ports, c.host_config.publish_all,
                                self.state.cfg.default_host_ip)
        taken = self.published()
        v6 = portmap.need_ipv6(reqs)
        if v6 is not None:
            primary = self.state.networks.get(next(iter(c.networks), ""))
            if primary is None or not primary.ipv6 or not primary.ipam_v6():
                raise portmap.ipv6_refusal(v6)
        by_port: dict[tuple[str, int], list[str]] = {}      # a check per request costs the same at any scale
        for m in taken:
            by_port.setdefault((m.proto, m.host_port), []).append(m.host_ip)
        for r in reqs:
            if r.host_range and r.host_range[0] == r.host_range[1]:
                port = r.host_range[0]
                if any(portmap.overlap(ip, r.host_ip) for ip in by_port.get((r.proto, port), ())):
                    raise Conflict(f"Bind for {portmap.host_spec(r.host_ip, port)} failed: port is already allocated")

    def publish(self, c: Container, container_ip: str, container_ip6: str = "") -> list[PortMapping]:
        mappings = self._allocate(c, container_ip, container_ip6)
        if mappings:
            self.firewall.add_ports(mappings)
        return mappings

    def publish_on_gateway(self, c: Container) -> list[PortMapping]:
        """At start, after the endpoints exist: the ports on the gateway endpoint (none without one)."""
        gw = self.gateway_endpoint(c)
        return [] if gw is None else self.publish(c, gw.ip, gw.ip6)

    def _allocate(self, c: Container, container_ip: str, container_ip6: str = "") -> list[PortMapping]:
        reqs = portmap.requests(c.host_config.port_bindings, c.config.exposed_ports, c.host_config.publish_all,
                                self.state.cfg.default_host_ip)
        if not reqs:
            return []
        host = self.kernel.host
        addrs = [str(a.ip) for _, a in host.addresses()]
        if container_ip6:
            addrs += [str(a.ip) for _, a in host.addresses(family=10)]
        return portmap.allocate(reqs, container_ip, self.published(exclude=c.id), self._probe or host_port_free,
                                ephemeral_range(), addrs, container_ip6)

    def unpublish(self, mappings: Sequence[PortMapping]) -> None:
        if not mappings:
            return
        self.firewall.remove_ports(mappings)
        for m in mappings:
            if m.proto == "udp":
                self.kernel.forget_udp_port(m.host_port, "ipv6" if ":" in m.host_ip else "ipv4")

    # the gateway endpoint (libnetwork's getGatewayEndpoint) ------------------------------------
    def gateway_endpoint(self, c: Container) -> Endpoint | None:
        """The endpoint that gives ``c`` its external connectivity: ``eth0`` while it is there on a
        network that is not internal, else the first endpoint on a network with a gateway (not
        internal), by network name; None on internal networks only."""
        eps = list(self.state.endpoints.get(c.id, {}).values())
        nets = self.state.networks
        usable = [ep for ep in eps if ep.gateway and ep.network_id in nets and not nets[ep.network_id].internal]
        for ep in usable:
            if ep.ifname == "eth0":
                return ep
        return min(usable, key=lambda ep: (nets[ep.network_id].name, ep.ifname), default=None)

    def gateway_joined(self, c: Container, ep: Endpoint) -> Callable[[], None] | None:
        """After ``ep`` joined running ``c``: when it is the gateway endpoint now (the container had
        none, or only one it sorts before), :meth:`follow_gateway`; returns the undo of the ports'
        change (for a connect that fails later), None when nothing changed."""
        gw = self.gateway_endpoint(c)
        if gw is None or gw.id != ep.id:
            return None
        saved = list(c.state.ports)
        if not self.follow_gateway(c):
            return None

        def undo() -> None:
            was = [PortMapping.from_dict(d) for d in saved]
            now = [PortMapping.from_dict(d) for d in c.state.ports]
            self.unpublish([m for m in now if m not in was])
            back = [m for m in was if m not in now]
            if back:
                self.firewall.add_ports(back)
            c.state.ports = saved
        return undo

    def follow_gateway(self, c: Container, program: bool = True) -> bool:
        """After an endpoint joined or left: give the gateway endpoint the default route (if the
        namespace has none) and the published ports (those that point at another address); a
        container with no ports published (withdrawn when only internal networks were left) gets
        them afresh when it has a gateway endpoint again.

        Idempotent (a replayed disconnect calls it again); returns whether ``c.state.ports``
        changed (the caller saves the container).  ``program`` False: the firewall is left alone
        (at start-up, where the whole ruleset is rewritten from the records afterwards).  A fresh
        publication that cannot have its host ports raises (:class:`Conflict`) with nothing changed.
        """
        if not c.running or c.mode != "bridge" or not c.state.netns:
            return False
        gw = self.gateway_endpoint(c)
        if gw is not None and gw.gateway:
            inside = self.kernel.get(c.state.netns)
            others = {ep.gateway for ep in self.state.endpoints.get(c.id, {}).values() if ep is not gw}
            route = inside.default_route()
            # none: it went with the old gateway endpoint's interface; via another endpoint's
            # gateway: an internal network's (an admin's or pipework's own route is left alone)
            if route is None or (route[0] != gw.gateway and route[0] in others):
                inside.replace_default_route(IPv4Address(gw.gateway), inside.index(gw.ifname))
                if gw.ip6 and gw.gateway6:
                    try:
                        inside.add_default_route(ip_address(gw.gateway6))
                    except CoveError as exc:          # an IPv6 default route of someone else's: kept
                        log.warning("container %s: IPv6 default route via %s: %s", c.name, gw.gateway6, exc)
        old = [PortMapping.from_dict(d) for d in c.state.ports]
        if not old:
            fresh = [] if gw is None else self._allocate(c, gw.ip, gw.ip6)
            if not fresh:
                return False
            if program:
                self.firewall.add_ports(fresh)
            c.state.ports = [m.to_dict() for m in fresh]
            return True
        here = {a for a in (gw.ip, gw.ip6) if a} if gw is not None else set()
        stale = [m for m in old if m.container_ip not in here]
        if not stale:
            return False
        moved: list[PortMapping] = []
        if gw is not None:
            for m in stale:
                ip = gw.ip6 if ":" in m.container_ip else gw.ip
                if ip:
                    moved.append(replace(m, container_ip=ip))
        keep = [m for m in old if m not in stale]
        if program:
            self.unpublish(stale)
            try:
                self.firewall.add_ports(moved)
            except CoveError as exc:
                log.warning("container %s: its published ports could not follow its gateway endpoint: %s",
                            c.name, exc)
                moved = []
        c.state.ports = [m.to_dict() for m in keep + moved]
        return True
