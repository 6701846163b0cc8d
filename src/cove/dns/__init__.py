"""cove's embedded DNS resolver (Docker's 127.0.0.11), without sockets or namespaces.

:mod:`cove.dns.records` holds which container names exist on which network;
:mod:`cove.dns.server` turns one query packet into one reply packet, answering
container names itself and handing other names to upstream servers.  The
daemon owns the sockets inside each container's namespace and calls
:meth:`Resolver.answer` for every packet it reads.
"""

from __future__ import annotations

from cove.dns.records import Records, valid_name
from cove.dns.server import Resolver, Stats, Upstream, forward_udp_tcp

__all__ = ["Records", "Resolver", "Stats", "Upstream", "forward_udp_tcp", "valid_name"]
