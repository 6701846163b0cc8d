"""The network driver contract and the registry of drivers.

A driver turns one kind of network into kernel objects.  The engine calls it in
this order, and undoes in reverse if a later step fails:

- ``validate(net)``: parse ``net.options`` into the typed fields of the network,
  before anything touches the kernel (errors name the option);
- ``create(net)`` / ``delete(net)``: the network's own objects (a bridge, its
  address, its firewall rules); ``restore(net)`` re-creates whatever is missing
  after a crash or restart and must be idempotent;
- ``join(net, ep, sandbox)`` / ``leave(net, ep, sandbox)``: one endpoint, an
  interface inside the container's namespace at ``sandbox`` (a bound nsfs path).

What the engine needs to know about a driver it learns from capability flags
(``has_endpoints``, ``supports_ipv6``, ``singleton``, ``flushes_conntrack``)
and from the optional Protocols below (libnetwork's "optional interface for a
network driver"), tested with ``isinstance``; it never tests a driver's name:

- :class:`Firewalled`: the network's firewall rules (bridge);
- :class:`EndpointRestorer`: re-make an endpoint's host-side objects after a
  restart (macvlan's host-access routes);
- :class:`Collector`: garbage collection of the driver's own tagged links.

A new driver is one new file that defines a class with these methods and adds
itself to :data:`DRIVERS` through :func:`register`, plus its import line in
:mod:`cove.drivers` (the driver table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from collections.abc import Callable

if TYPE_CHECKING:
    from ..firewall import Firewall, NetworkRules
    from ..kernel.api import Kernel, Link
    from ..model import Endpoint, Network


@dataclass
class DriverContext:
    """What every driver is handed: the kernel surfaces it may use, and defaults."""

    kernel: Kernel
    firewall: Firewall
    mtu: int = 0
    #: this host's VXLAN tunnel endpoint address (``--cluster-advertise``; "" on a single host)
    vtep: str = ""

    @property
    def netlink(self) -> Kernel:
        """The older name of :attr:`kernel` (``ctx.netlink.get(path)``)."""
        return self.kernel


class NetworkDriver(Protocol):
    name: str
    #: True when endpoints on this network get an interface and an address from IPAM
    has_endpoints: bool
    #: True when ``--ipv6`` networks of this driver get IPv6 addresses
    supports_ipv6: bool
    #: True for drivers only the predefined network of their name may use (``host``, ``null``)
    singleton: bool
    #: True when the conntrack entries of a leaving endpoint's addresses must go (NAT'ed networks)
    flushes_conntrack: bool

    def host_ifname(self, ep_id: str) -> str:
        """The host-side interface name of a new endpoint ("" when it has none)."""
        ...

    def validate(self, net: Network) -> None: ...
    def create(self, net: Network) -> None: ...
    def delete(self, net: Network) -> None: ...
    def restore(self, net: Network) -> None: ...
    def join(self, net: Network, ep: Endpoint, sandbox: str) -> None: ...
    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None: ...


@runtime_checkable
class Firewalled(Protocol):
    """A driver whose networks have firewall rules (isolation, masquerade)."""

    def firewall_rules(self, net: Network) -> NetworkRules | None:
        """The network's rules; None when this network has none (a bridge holding the LAN's NIC)."""
        ...


@runtime_checkable
class EndpointRestorer(Protocol):
    """A driver with host-side objects per endpoint to re-make after a restart."""

    def restore_endpoint(self, net: Network, ep: Endpoint) -> None: ...


@runtime_checkable
class Collector(Protocol):
    """A driver that removes its own tagged links no record owns (found by tag, never by name)."""

    def collect_garbage(self, links: list[Link], networks: set[str], endpoints: set[str]) -> None:
        """``links``: the host's; ``networks``/``endpoints``: the ids the engine knows."""
        ...


DRIVERS: dict[str, Callable[[DriverContext], NetworkDriver]] = {}


def register(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        DRIVERS[name] = cls
        return cls

    return deco


class SingletonDriver:
    """Base of drivers with no kernel objects of their own (``host``, ``null``).

    Only the predefined network of that name may use them, as in Docker.
    """

    name = ""
    network_name = ""
    has_endpoints = False
    supports_ipv6 = False
    singleton = True
    flushes_conntrack = False

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    def host_ifname(self, ep_id: str) -> str:
        return ""

    def validate(self, net: Network) -> None:
        from ..errors import Forbidden

        if net.name != self.network_name:
            raise Forbidden(f'only one instance of "{self.network_name}" network is allowed')

    def create(self, net: Network) -> None:
        pass

    def delete(self, net: Network) -> None:
        pass

    def restore(self, net: Network) -> None:
        pass

    def join(self, net: Network, ep: Endpoint, sandbox: str) -> None:
        pass

    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None:
        pass
