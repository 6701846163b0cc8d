"""Network drivers, one file each; importing this package registers them all."""

from __future__ import annotations

from . import bridge, host, macvlan, null  # noqa: F401 - imported to register
from .base import DRIVERS, DriverContext, NetworkDriver, register

__all__ = ["DRIVERS", "DriverContext", "NetworkDriver", "register"]
