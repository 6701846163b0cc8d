"""The ``host`` driver: the container stays in the host's network namespace.

There is nothing to create and nothing to join; the engine runs the container
without a namespace of its own.  Only the predefined ``host`` network uses it.
"""

from __future__ import annotations

from ..errors import Forbidden
from ..model import Endpoint, Network
from .base import DriverContext, register


@register("host")
class HostDriver:
    name = "host"
    has_endpoints = False

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    def validate(self, net: Network) -> None:
        if net.name != "host":
            raise Forbidden("only one instance of \"host\" network is allowed")

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
