"""The ``host`` driver: the container stays in the host's network namespace.

There is nothing to create and nothing to join; the engine runs the container
without a namespace of its own.  Only the predefined ``host`` network uses it.
"""

from __future__ import annotations

from .base import SingletonDriver, register


@register("host")
class HostDriver(SingletonDriver):
    name = "host"
    network_name = "host"
