"""Network drivers, one file each; importing this package registers them all.

The import line below is the driver table: a new driver is one new file (a
class with :func:`register`) and its name added here.
"""

from __future__ import annotations

from . import bridge, host, macvlan, null, overlay  # noqa: F401 - the driver table: imported to register
from .base import DRIVERS, Collector, DriverContext, EndpointRestorer, Firewalled, NetworkDriver, register

__all__ = ["DRIVERS", "Collector", "DriverContext", "EndpointRestorer", "Firewalled", "NetworkDriver", "register"]
