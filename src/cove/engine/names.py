"""Names: the embedded resolver's records and listeners, and the resolv.conf they imply.

As in Docker, names resolve only on user-defined networks: a container there
is found by its name, its short id and every alias it has on that network, by
containers that share the network.  The default ``bridge`` network has no
name resolution (``--link`` writes /etc/hosts there instead).  A container on
at least one user-defined network gets ``nameserver 127.0.0.11`` with
``options ndots:0``; its ``--dns`` servers (or the host's) become the
upstreams the resolver forwards other names to, from the host's namespace,
unless every network it is on is ``--internal`` (then nothing is forwarded:
Docker's CVE-2024-29018).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..dns.records import Records, valid_name
from ..dns.server import Upstream
from ..dns.service import DnsService
from ..etcfiles import parse_resolv_conf
from ..model import Container, Endpoint, Network
from .core import log
from .state import State

if TYPE_CHECKING:
    from ..drivers import NetworkDriver

MAX_UPSTREAMS = 3


class NameService:
    """The embedded resolver's records and listeners for the containers on user networks."""

    def __init__(self, state: State, records: Records, dns: DnsService,
                 driver_of: Callable[[Network], NetworkDriver]) -> None:
        self.state = state
        self.records = records
        self.dns = dns
        self.driver_of = driver_of

    def resolves_names(self, net: Network | None) -> bool:
        return net is not None and not self.driver_of(net).singleton and net.name != "bridge"

    def dns_networks(self, c: Container) -> list[str]:
        return [nid for nid in self.state.endpoints.get(c.id, {})
                if self.resolves_names(self.state.networks.get(nid))]

    def register(self, c: Container, ep: Endpoint) -> None:
        net = self.state.networks.get(ep.network_id)
        if not self.resolves_names(net):
            return
        req = c.networks.get(ep.network_id)
        # the short id answers as in Docker, when it is a name at all (a CNI sandbox's id
        # `cni-default-c1-eth0` cut at 12 ends in '-': ctr's ids are `<namespace>-<id>`)
        short = [c.id[:12]] if valid_name(c.id[:12]) else []
        names = [c.name, *short, *(req.aliases if req else [])]
        self.records.set_endpoint(ep.network_id, c.id, names, ep.ip, ep.ip6)

    def unregister(self, container_id: str, network_id: str) -> None:
        self.records.remove_endpoint(network_id, container_id)

    def upstreams(self, c: Container) -> list[Upstream]:
        """Where the resolver forwards names it does not know: none for a container whose every
        network is ``--internal`` (a DNS query would otherwise carry data out of a network that
        has no way out: Docker's CVE-2024-29018); its networks' names still resolve."""
        nets = [self.state.networks.get(nid) for nid in self.state.endpoints.get(c.id, {})]
        if nets and all(n is not None and n.internal for n in nets):
            return []
        cfg = self.state.cfg
        servers = list(c.host_config.dns or cfg.dns)
        if not servers:
            try:
                with open(cfg.host_resolv_conf) as f:
                    servers, _, _ = parse_resolv_conf(f.read())
            except OSError:
                servers = []
        return [Upstream(s) for s in servers[:MAX_UPSTREAMS]]

    def start_resolver(self, c: Container, sandbox: str) -> bool:
        """Listen at 127.0.0.11 in the container's namespace if it is on a user network."""
        if not sandbox or not self.dns_networks(c):
            return False
        cid, containers = c.id, self.state.containers
        self.dns.serve(cid, sandbox,
                       networks=lambda: self.dns_networks(containers[cid]) if cid in containers else [],
                       upstreams=lambda: self.upstreams(containers[cid]) if cid in containers else [])
        log.debug("resolver for %s at 127.0.0.11", c.name)
        return True

    def networks_changed(self, container_id: str) -> None:
        """A container joined or left a network: its resolver decides forwarding afresh."""
        self.dns.refresh(container_id)

    def stop_resolver(self, container_id: str) -> None:
        self.dns.stop(container_id)
