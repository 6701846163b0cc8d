"""Publishing ports (``-p``, ``-P``) for running containers.

At start, after the container's endpoints exist: read its bindings
(:func:`cove.portmap.requests`), choose host ports (:func:`cove.portmap.allocate`,
checking every port already published and probing the host for listeners),
and hand the mappings to the firewall (DNAT).  IPv6 host addresses map to the
container's IPv6 address (``--ipv6`` networks only; checked at create).  At exit: remove them and drop
the UDP conntrack entries that would otherwise keep steering a client's
packets to the dead container.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

from collections.abc import Callable

from .. import portmap
from ..errors import Conflict
from ..firewall import Firewall
from ..kernel.api import Kernel
from ..model import Container
from ..portmap import PortMapping
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
        """Every mapping held by a running container."""
        return [PortMapping.from_dict(d) for c in self.state.containers.values()
                if c.running and c.id != exclude for d in c.state.ports] + \
            [PortMapping.from_dict(d) for sb in self.state.sandboxes.values() for d in sb.ports]

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
        reqs = portmap.requests(c.host_config.port_bindings, c.config.exposed_ports, c.host_config.publish_all,
                                self.state.cfg.default_host_ip)
        if not reqs:
            return []
        host = self.kernel.host
        addrs = [str(a.ip) for _, a in host.addresses()]
        if container_ip6:
            addrs += [str(a.ip) for _, a in host.addresses(family=10)]
        mappings = portmap.allocate(reqs, container_ip, self.published(exclude=c.id), self._probe or host_port_free,
                                    ephemeral_range(), addrs, container_ip6)
        self.firewall.add_ports(mappings)
        return mappings

    def unpublish(self, mappings: Sequence[PortMapping]) -> None:
        if not mappings:
            return
        self.firewall.remove_ports(mappings)
        for m in mappings:
            if m.proto == "udp":
                self.kernel.forget_udp_port(m.host_port, "ipv6" if ":" in m.host_ip else "ipv4")
