"""``--userns-remap`` for one container: dockerd's rules at create, the spec's fields at start.

With the daemon's remapped root (:mod:`cove.runtime.userns`) every container gets a user
namespace unless it opts out with ``--userns=host`` (``HostConfig.UsernsMode: "host"``).
As dockerd (``verifyPlatformContainerSettings``), a container in the user namespace cannot be
``--privileged`` or share the host's network namespace; cove adds the built-in ``host``
image, whose root is the host's own files.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..model import Container, HostConfig
from ..runtime import userns
from ..runtime.userns import IdMaps


def applies(remap: IdMaps | None, host: HostConfig) -> bool:
    return remap is not None and host.userns_mode != "host"


def check_create(remap: IdMaps | None, host: HostConfig, rootfs: str | None) -> None:
    """A 400 in dockerd's words for what a remapped container cannot be."""
    if not applies(remap, host):
        return
    if host.privileged:
        raise InvalidArgument("privileged mode is incompatible with user namespaces.  You must run the container "
                              "in the host namespace when running privileged mode (--userns=host)")
    if host.network_mode == "host":
        raise InvalidArgument("cannot share the host's network namespace when user namespaces are enabled "
                              "(--userns=host)")
    if rootfs is None:
        raise InvalidArgument("the built-in image host shares the host's files: it cannot run in a user "
                              "namespace (--userns=host)")


#: what dockerd (20.10+) sets in every container's network namespace.  cove's namespace belongs to
#: the host's user namespace, where a remapped root has no CAP_NET_RAW or CAP_NET_BIND_SERVICE:
#: with these, ping uses ICMP datagram sockets and ports below 1024 can be bound
NETNS_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}


def netns_sysctls(remap: IdMaps | None, c: Container) -> dict[str, str]:
    """The sysctls the daemon sets in a remapped container's own network namespace: runc would
    write them from inside the user namespace, which may not change a namespace it does not own."""
    if not applies(remap, c.host_config) or c.mode not in ("bridge", "none"):
        return {}
    return {**NETNS_SYSCTLS, **c.host_config.sysctls}


def spec_fields(remap: IdMaps | None, host: HostConfig, rootfs: str | None) -> dict[str, Any]:
    """The ContainerSpec's rootfs (the image's copy the remapped root owns), id maps, and no
    sysctls for runc (:func:`netns_sysctls`)."""
    if not applies(remap, host) or rootfs is None:
        return {"rootfs": rootfs}
    assert remap is not None
    uid_map, gid_map = remap.oci()
    return {"rootfs": userns.remapped_rootfs(rootfs, remap), "uid_map": uid_map, "gid_map": gid_map, "sysctls": {}}
