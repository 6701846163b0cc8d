"""Firewall backends, one file each, behind the :class:`Firewall` protocol.

:func:`get_firewall` picks one by name once per daemon: ``nftables`` (default
where the kernel has it), ``iptables`` (iptables-legacy, for kernels without
nftables such as User-Mode Linux), or ``none``.  :func:`available_backends`
says which work here; the probe (which creates and deletes a throwaway table)
runs once per process.

Admin hook: packets forwarded into a cove bridge first jump to a chain cove
creates empty and never writes (``user`` in ``table ip cove``, ``COVE-USER``
in iptables' filter table), as Docker's ``DOCKER-USER``; see :mod:`.base`.
"""

from __future__ import annotations

import functools

from ..errors import InvalidArgument, Unavailable
from .base import Firewall, NetworkRules

__all__ = ["Firewall", "NetworkRules", "available_backends", "get_firewall"]

BACKENDS = ("nftables", "iptables", "none")


@functools.cache
def _probe() -> tuple[str, ...]:
    from . import iptables, nftables

    found = [name for name, works in (("nftables", nftables.probe), ("iptables", iptables.probe)) if works()]
    return (*found, "none")


def available_backends() -> list[str]:
    """Backends that work in this kernel and user space, best first; ``none`` always last.

    nftables: libnftables can create and delete a table ``ip cove-probe`` here;
    iptables: the legacy binaries exist and can list the filter, nat and raw tables.
    """
    return list(_probe())


def get_firewall(name: str | None = None) -> Firewall:
    """The backend ``name`` (None, "" or "auto": nftables if it works, else iptables, else none)."""
    if name in (None, "", "auto"):
        name = _probe()[0]
    if name not in BACKENDS:
        raise InvalidArgument(f"invalid firewall-backend {name!r}: choose one of {', '.join(BACKENDS)} or auto")
    if name == "none":
        from .none import NoFirewall

        return NoFirewall()
    if name not in _probe():
        if name == "nftables":
            from .nftables import unavailable

            raise unavailable()
        raise Unavailable("iptables-legacy is not available (install the iptables package; the kernel needs "
                          "CONFIG_IP_NF_IPTABLES, CONFIG_IP_NF_FILTER and CONFIG_IP_NF_NAT); "
                          "use --firewall-backend=nftables")
    if name == "nftables":
        from .nftables import NftablesFirewall

        return NftablesFirewall()
    from .iptables import IptablesFirewall

    return IptablesFirewall()
