"""The ``null`` driver: a namespace of its own with only ``lo`` (``--network none``).

The engine makes the namespace and brings ``lo`` up; the driver adds nothing.
"""

from __future__ import annotations

from ..errors import Forbidden
from ..model import Endpoint, Network
from .base import DriverContext, register


@register("null")
class NullDriver:
    name = "null"
    has_endpoints = False

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    def validate(self, net: Network) -> None:
        if net.name != "none":
            raise Forbidden("only one instance of \"none\" network is allowed")

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
