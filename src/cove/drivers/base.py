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

A new driver is one new file that defines a class with these methods and adds
itself to :data:`DRIVERS` through :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from collections.abc import Callable

if TYPE_CHECKING:
    from ..firewall import Firewall
    from ..kernel.api import Kernel
    from ..model import Endpoint, Network


@dataclass
class DriverContext:
    """What every driver is handed: the kernel surfaces it may use, and defaults."""

    kernel: Kernel
    firewall: Firewall
    mtu: int = 0

    @property
    def netlink(self) -> Kernel:
        """The older name of :attr:`kernel` (``ctx.netlink.get(path)``)."""
        return self.kernel


class NetworkDriver(Protocol):
    name: str
    #: True when endpoints on this network get a veth and an address from IPAM
    has_endpoints: bool

    def validate(self, net: Network) -> None: ...
    def create(self, net: Network) -> None: ...
    def delete(self, net: Network) -> None: ...
    def restore(self, net: Network) -> None: ...
    def join(self, net: Network, ep: Endpoint, sandbox: str) -> None: ...
    def leave(self, net: Network, ep: Endpoint, sandbox: str | None) -> None: ...


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

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

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
