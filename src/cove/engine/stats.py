"""Container resource counters in Docker's ``/containers/{id}/stats`` shape.

The network part (``networks: {eth0: {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}}``)
comes from the kernel's link counters read **inside the container's namespace**, every link
but ``lo``, in one netlink dump (:meth:`cove.kernel.api.Netlink.link_stats`).  Not from the
host-side veth with rx and tx swapped, because:

- macvlan, ipvlan, OVS and pipework interfaces have no host-side peer to read;
- the container's own end is what the user sees as ``eth0`` (rx is what the container
  received), so nothing needs swapping and ``ip -s link`` inside the container agrees;
- it is what Docker does (libnetwork reads the sandbox's interfaces in the sandbox).

A container in another's namespace (``--network container:X``) shows X's interfaces, as in
Docker; one on the host's network or ``none`` has no ``networks`` key (Docker omits it too).
CPU, memory, pids and block I/O come from the container's cgroups
(:func:`cove.runtime.cgroups.container_stats`), zeros where the machine does not count them.
A container that is not running gets Docker's empty answer: name and id, zero times, no
counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import CoveError
from ..kernel.api import Kernel
from ..runtime import cgroups
from ..stats import empty_stats, network_json, rfc3339_nano
from .state import State


class StatsService:
    """One sample of a container's counters (:meth:`sample`); pairing samples is the caller's."""

    def __init__(self, state: State, kernel: Kernel,
                 cgroup_reader: Callable[[int], dict[str, Any]] = cgroups.container_stats,
                 clock: Callable[[], float] = time.time) -> None:
        self.state, self.kernel = state, kernel
        self.cgroup_reader, self.clock = cgroup_reader, clock

    def sample(self, ref: str) -> dict[str, Any]:
        """The container's counters now (Docker's shape without ``preread``/``precpu_stats``);
        :func:`empty_stats` if it is not running.  NotFound for an unknown container."""
        with self.state.lock:
            c = self.state.find_container(ref)
            running, name, cid, netns, pid = c.running, c.name, c.id, c.state.netns, c.state.pid
            if not running:
                return empty_stats(name, cid)
            # under the lock: a stop cannot delete the namespace (and drop its socket) between the
            # check and the read, which would leave a socket open in a dead namespace
            networks = self.networks(netns)
        read = rfc3339_nano(self.clock())
        out: dict[str, Any] = {"name": "/" + name, "id": cid, "read": read, "num_procs": 0, "storage_stats": {},
                               **self.cgroup_reader(pid)}
        if networks:
            out["networks"] = networks
        return out

    def networks(self, netns: str) -> dict[str, dict[str, int]]:
        """The ``networks`` object of the namespace at ``netns`` ({} for the host's, or if it is gone)."""
        if not netns:
            return {}
        try:
            return network_json(self.kernel.get(netns).link_stats())
        except CoveError:           # the namespace went away under a stopping container
            return {}
