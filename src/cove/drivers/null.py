"""The ``null`` driver: a namespace of its own with only ``lo`` (``--network none``).

The engine makes the namespace and brings ``lo`` up; the driver adds nothing.
Only the predefined ``none`` network uses it.
"""

from __future__ import annotations

from .base import SingletonDriver, register


@register("null")
class NullDriver(SingletonDriver):
    name = "null"
    network_name = "none"
