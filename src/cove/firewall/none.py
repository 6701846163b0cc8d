"""The ``none`` backend: cove writes no firewall rules at all (``--firewall-backend=none``).

Networks still get their bridges and addresses, but no isolation between
bridges, no masquerade and no DNAT for published ports: the admin's own rules
decide.  Bridges get no ``route_localnet`` (nothing would drop a container's
packets to 127.0.0.0/8), so ports published on 127.0.0.1 are not reachable.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..portmap import PortMapping
from .base import NetworkRules


class NoFirewall:
    """No rules, so nothing guards a bridge's ``route_localnet`` either: cove leaves it off
    (containers would reach the host's 127.0.0.1 services), and there is no forward drop."""

    name = "none"

    def __init__(self) -> None:
        self.forward_drop: frozenset[str] = frozenset()

    def setup(self) -> None:
        pass

    def ensure_network(self, net: NetworkRules) -> None:
        pass

    def remove_network(self, net_id: str) -> None:
        pass

    def add_ports(self, ports: Sequence[PortMapping]) -> None:
        pass

    def remove_ports(self, ports: Sequence[PortMapping]) -> None:
        pass

    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None:
        pass

    def teardown(self) -> None:
        pass

    def intact(self) -> bool:
        return True
