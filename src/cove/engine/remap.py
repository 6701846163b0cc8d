"""``--userns-remap`` for one container: dockerd's rules at create, the spec's fields at start.

With the daemon's remapped root (:mod:`cove.runtime.userns`) every container gets a user
namespace unless it opts out with ``--userns=host`` (``HostConfig.UsernsMode: "host"``).
As dockerd (``verifyPlatformContainerSettings``), a container in the user namespace cannot be
``--privileged`` or share the host's network namespace; cove adds the built-in ``host``
image, whose root is the host's own files.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidArgument
from ..model import Container, HostConfig
from ..runtime import userns
from ..runtime.userns import IdMaps
from .core import EngineConfig


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


def userns_file(cfg: EngineConfig, cid: str) -> str:
    """Where a remapped container's user namespace is bound (beside its network namespace, which
    it owns: :meth:`cove.kernel.api.Kernel.create_userns_netns`)."""
    return os.path.join(cfg.userns_dir, cid)


def userns_for(cfg: EngineConfig, c: Container, other: Container | None) -> str | None:
    """The bound user namespace the container joins: its own, or with ``--network container:NAME``
    the other's when it has one (as dockerd: sharing a network namespace means sharing its owner)."""
    if not applies(cfg.userns_remap, c.host_config):
        return None
    if c.mode in ("bridge", "none"):
        return userns_file(cfg, c.id)
    if other is not None and os.path.exists(userns_file(cfg, other.id)):
        return userns_file(cfg, other.id)
    return None


def claim_volumes(remap: IdMaps | None, host: HostConfig, mounts: list[dict[str, Any]]) -> None:
    """Hand the named volumes a remapped container uses to its root, as dockerd makes them for it:
    a volume still owned by host root (new, or filled from the image by copy-up) is shifted once
    (its files' ids mapped, :func:`cove.runtime.userns.shift_tree`); one the remapped root owns
    already is left alone."""
    if not applies(remap, host):
        return
    assert remap is not None
    for m in mounts:
        if m["type"] == "volume":
            st = os.stat(m["source"])
            if (st.st_uid, st.st_gid) == (0, 0):
                userns.shift_tree(m["source"], remap)


def spec_fields(remap: IdMaps | None, host: HostConfig, rootfs: str | None, userns_path: str | None) -> dict[str, Any]:
    """The ContainerSpec's rootfs (the image's copy the remapped root owns), id maps and user namespace."""
    if not applies(remap, host) or rootfs is None:
        return {"rootfs": rootfs}
    assert remap is not None
    uid_map, gid_map = remap.oci()
    return {"rootfs": userns.remapped_rootfs(rootfs, remap), "uid_map": uid_map, "gid_map": gid_map,
            "userns": userns_path}
