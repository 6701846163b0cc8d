"""The real :class:`cove.kernel.api.Kernel`: netlink sockets per namespace, /proc/sys, nsfs bindings.

Netlink work runs on the one kernel thread of :mod:`cove.kernel.netlink` (the
pyroute2 thread rule is kept there); sysctls inside a container's namespace are
written by a short-lived thread that enters it (:func:`netlink.sysctl_set_in`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from .. import crashpoint
from . import netns
from .conntrack import ConntrackFlows
from .netlink import KERNEL_THREAD, NetlinkPool, sysctl_set, sysctl_set_in

T = TypeVar("T")


class LinuxKernel(NetlinkPool):
    def __init__(self) -> None:
        super().__init__()
        self.conntrack = ConntrackFlows()

    def close(self) -> None:
        self.conntrack.close()
        super().close()
        netns.release_all()            # the namespace directories' own mounts, if nothing is bound there

    def run(self, fn: Callable[[], T]) -> T:
        # not get(): its pool lock may be held by a thread waiting for this very thread
        return KERNEL_THREAD.call(fn)

    def start(self, fn: Callable[[], T]) -> Callable[[], T]:
        return KERNEL_THREAD.start(fn)

    def sysctl(self, key: str, value: str, netns: str | None = None) -> None:
        if netns is None:
            sysctl_set(key, value)
        else:
            sysctl_set_in(netns, key, value)

    def create_netns(self, path: str) -> None:
        netns.keep_private(os.path.dirname(path))    # the binds reach no other mount namespace
        if os.path.exists(path):
            netns.delete(path)
        netns.create(path)
        crashpoint.reached("create netns")

    def create_userns_netns(self, path: str, userns_path: str, uid_map: list[list[int]],
                            gid_map: list[list[int]]) -> None:
        for p in (path, userns_path):
            netns.keep_private(os.path.dirname(p))
            if os.path.exists(p):
                netns.delete(p)
        netns.create_owned(path, userns_path, uid_map, gid_map)

    def delete_netns(self, path: str) -> None:
        netns.delete(path)
        crashpoint.reached("delete netns")

    def bound_netns(self, directory: str) -> set[str]:
        return netns.bound_paths(directory)

    def forget_flows(self, *ips: str) -> None:
        self.conntrack.forget_flows(*ips)

    def forget_udp_port(self, port: int, family: str) -> None:
        self.conntrack.forget_udp_port(port, family)
