"""Firewall backends, one file each, behind the :class:`Firewall` protocol.

:func:`get_firewall` picks one by name once per daemon: ``nftables`` (default
where the kernel has it), ``iptables`` (iptables-legacy, for kernels without
nftables such as User-Mode Linux), or ``none``.
"""

from __future__ import annotations

import functools

from ..errors import InvalidArgument, Unavailable
from .base import Firewall, NetworkRules

__all__ = ["Firewall", "NetworkRules", "available_backends", "get_firewall"]

BACKENDS = ("nftables", "iptables", "none")


@functools.cache
def available_backends() -> tuple[str, ...]:
    """Backends that work in this kernel and user space (probed once per process)."""
    from . import nftables

    found = []
    if nftables.probe():
        found.append("nftables")
    try:
        from . import iptables

        if iptables.probe():
            found.append("iptables")
    except ImportError:
        pass
    found.append("none")
    return tuple(found)


def get_firewall(name: str | None = None) -> Firewall:
    if name in (None, "", "auto"):
        have = available_backends()
        name = have[0]
    if name not in BACKENDS:
        raise InvalidArgument(f"invalid firewall-backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "none":
        from .none import NoFirewall

        return NoFirewall()
    if name not in available_backends():
        if name == "nftables":
            from .nftables import unavailable

            raise unavailable()
        raise Unavailable("iptables-legacy is not available (install the iptables package; the kernel needs "
                          "CONFIG_IP_NF_IPTABLES and CONFIG_IP_NF_NAT)")
    if name == "nftables":
        from .nftables import NftablesFirewall

        return NftablesFirewall()
    from .iptables import IptablesFirewall

    return IptablesFirewall()
