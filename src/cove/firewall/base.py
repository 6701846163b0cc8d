"""The firewall contract: what a backend must do for each bridge network.

Semantics (Docker's observable behaviour for bridge networks):

1. Forwarded packets between two different cove bridges are dropped, both ways.
2. ``internal`` networks: nothing is forwarded between the bridge and any
   other interface, and nothing is masqueraded.
3. Otherwise: traffic from the bridge out is accepted; replies back in
   (``ct state established,related``) and DNAT'ed packets (published ports)
   are accepted; new connections from elsewhere into the bridge are dropped.
4. Masquerade: packets from the network's subnets leaving by another
   interface than its bridge are masqueraded (``masquerade=True``).

IPv6 (``--ipv6`` networks): the same rules, in IPv6 tables of their own, for
every network (so isolation, ``--internal`` and the drops hold for IPv6 too);
egress is masqueraded only from unique local subnets (``fc00::/7``, see
:attr:`NetworkRules.masq6`); published ports bound to an IPv6 host address or
to ``::`` are DNAT'ed the same way.  ``[::1]`` cannot be published: Linux has
no ``route_localnet`` for IPv6 and drops loopback-sourced packets that would
leave by another interface, and cove has no userland proxy.
5. Traffic between containers of one bridge is bridged at layer 2 and is not
   the firewall's business (``enable_icc=false`` is bridge port isolation).

Published ports (``-p``): packets to a host address and port are DNAT'ed to
the container (``prerouting`` for other hosts and containers, ``output`` for
the host itself, 127.0.0.1 included: the bridges get ``route_localnet`` and
loopback sources are masqueraded); a container reaching its own published
port through the host (hairpin) is masqueraded; packets from other hosts keep
their source address.  Packets to 127.0.0.0/8 arriving from outside are never
DNAT'ed, so a port bound to 127.0.0.1 stays local.  There is no proxy process.

Admin hook: packets forwarded into a cove bridge first jump to a chain cove
creates empty and never touches afterwards (``user`` in nftables, ``COVE-USER``
in iptables), as Docker's ``DOCKER-USER``: rules placed there filter traffic to
containers (and so to published ports) before cove's own accepts.

``--internal`` networks are sealed both ways: a packet from their bridge to
another interface is dropped even when it was DNAT'ed (a published port of
another network reached through the gateway).

Forward policy (:attr:`Firewall.forward_drop`): when cove turns on IP
forwarding it also drops forwarded packets that touch no cove bridge (as
Docker sets iptables' ``FORWARD`` policy to ``DROP``), so the host does not
start routing between its other interfaces; the daemon's
``ip-forward-no-drop`` setting turns this off.  nftables: a last ``drop`` rule
in cove's ``forward`` chains; iptables: the ``FORWARD`` chain's policy is set
to ``DROP`` (an admin's ``ACCEPT`` rules in ``FORWARD`` or ``COVE-USER`` still
win) and set back to ``ACCEPT`` when cove no longer wants it, if cove was the
one that changed it.  Frames a bridge switches between its own ports pass
(with ``br_netfilter`` they meet the forward hook too, but are not routed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Network, ip_network
from typing import Protocol

from ..portmap import PortMapping


ULA = IPv6Network("fc00::/7")


@dataclass(frozen=True)
class NetworkRules:
    id: str                     # network id (64 hex chars); the first 12 name chains and tag rules
    bridge: str                 # Linux bridge interface name, e.g. "cove0" or "br-0123456789ab"
    subnets: tuple[str, ...]    # IPv4 CIDRs of the network, e.g. ("172.18.0.0/16",)
    internal: bool = False      # no way in or out: drop anything forwarded between the bridge and any other interface
    masquerade: bool = True     # SNAT (masquerade) traffic from the subnets that leaves through another interface
    subnets6: tuple[str, ...] = ()   # IPv6 CIDRs of an ``--ipv6`` network, e.g. ("fd00:30::/64",)

    @property
    def masq6(self) -> tuple[str, ...]:
        """The IPv6 subnets that are masqueraded on egress: unique local ones (fc00::/7) only.

        A ULA prefix is not routable on the internet, so egress needs NAT as IPv4
        does; a global prefix is left as it is (the admin routes it to the host).
        """
        if not self.masquerade or self.internal:
            return ()
        return tuple(s for s in self.subnets6 if isinstance(n := ip_network(s), IPv6Network) and n.subnet_of(ULA))

    @property
    def short(self) -> str:
        return self.id[:12]


IFNAMSIZ = 15
#: what the iptables backend accepts in a bridge name: ``+`` is iptables' wildcard (``+``
#: alone matches every interface), ``!`` its negation, quotes and spaces split its lines
_IPTABLES_IFNAME = re.compile(r"[A-Za-z0-9_.@-]+")


def ifname_problem(name: object, backend: str = "") -> str | None:
    """Why ``name`` cannot be a bridge cove writes firewall rules for, or None.

    Linux's rules (``dev_valid_name``): 1 to 15 bytes, not ``.`` or ``..``, no
    ``/``, ``:`` or white space; plus no ``%``, which the kernel reads as a
    template (``br%d`` names the first free ``br0``, ``br1``..., not the name cove
    would write rules for); for the iptables backend only letters, digits and
    ``_ . @ -`` (see :data:`_IPTABLES_IFNAME`).
    """
    if not isinstance(name, str) or not name:
        return "an interface name is required"
    if len(name.encode()) > IFNAMSIZ:
        return f"at most {IFNAMSIZ} bytes"
    if name in (".", ".."):
        return "not a valid interface name"
    bad = next((c for c in name if c in "/:%" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        return f"{bad!r} is not allowed in an interface name" + (" (the kernel reads % as a name template)"
                                                                  if bad == "%" else "")
    if backend == "iptables" and not _IPTABLES_IFNAME.fullmatch(name):
        return ("with the iptables firewall backend an interface name may hold only letters, digits and "
                "_ . @ - (iptables reads + as a wildcard and ! as a negation)")
    return None


class Firewall(Protocol):
    name: str                                   # "nftables" | "iptables" | "none"
    #: the families ("ipv4", "ipv6") where forwarded packets touching no cove bridge are dropped;
    #: set by the engine before setup()/sync() (empty: no drop, as with ip-forward-no-drop)
    forward_drop: frozenset[str]

    def setup(self) -> None: ...                # create cove's base table/chains (idempotent)
    def ensure_network(self, net: NetworkRules) -> None: ...   # add or replace this network's rules, one transaction
    def remove_network(self, net_id: str) -> None: ...         # idempotent
    def add_ports(self, ports: Sequence[PortMapping]) -> None: ...      # DNAT host ip:port -> container
    def remove_ports(self, ports: Sequence[PortMapping]) -> None: ...   # idempotent
    # make the kernel hold exactly these networks' (and ports') rules, base objects included: one transaction
    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None: ...
    def teardown(self) -> None: ...             # remove everything cove owns (tables/chains/jumps); idempotent
    def intact(self) -> bool: ...               # False if cove's base objects were flushed/removed by someone else
