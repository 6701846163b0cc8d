"""Docker's ``Binds``, ``Mounts`` and ``Volumes`` of a container create, checked and normalised.

Pure parsing (no I/O but the existence check of a ``--mount type=bind`` source, which
dockerd refuses with a 400): the HTTP layer calls :func:`parse_mounts`, the engine's
:mod:`cove.engine.volumes` makes the volumes and mounts them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import InvalidArgument

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_BIND_OPTS = {"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated"}
_PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
ANON_LABEL = "com.docker.volume.anonymous"


def _target(field: str, target: Any) -> str:
    if not isinstance(target, str) or not target.startswith("/"):
        raise InvalidArgument(f"invalid {field}: the mount target {target!r} must be an absolute path")
    norm = os.path.normpath(target)
    if norm == "/":
        raise InvalidArgument(f"invalid {field}: the mount target cannot be '/'")
    return norm


def parse_bind(spec: str) -> dict[str, Any]:
    """One ``HostConfig.Binds`` entry: ``SRC:DST[:OPTS]`` (SRC a host path or a volume name)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid HostConfig.Binds: {spec!r}: expected SOURCE:TARGET[:OPTIONS]")
    src, dst = parts[0], parts[1]
    opts = [o for o in parts[2].split(",") if o] if len(parts) == 3 else []
    ro, propagation = False, ""
    for o in opts:
        if o in _PROPAGATION:
            propagation = o
        elif o in _BIND_OPTS:
            ro = ro or o == "ro"
        else:
            raise InvalidArgument(f"invalid HostConfig.Binds: {spec!r}: unknown option {o!r}")
    target = _target("HostConfig.Binds", dst)
    if src.startswith("/"):
        return {"Type": "bind", "Source": os.path.normpath(src), "Target": target, "ReadOnly": ro,
                "Propagation": propagation or "rprivate", "Create": True}
    if not VOLUME_NAME.match(src):
        raise InvalidArgument(f"invalid HostConfig.Binds: {spec!r}: {src!r} is neither an absolute path nor a "
                              "volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)")
    if propagation:
        raise InvalidArgument(f"invalid HostConfig.Binds: {spec!r}: propagation applies to bind mounts only")
    return {"Type": "volume", "Source": src, "Target": target, "ReadOnly": ro, "Propagation": ""}


def parse_mount(m: Any) -> dict[str, Any]:
    """One ``HostConfig.Mounts`` entry (``--mount``)."""
    if not isinstance(m, dict):
        raise InvalidArgument("invalid HostConfig.Mounts: each mount must be an object")
    kind = m.get("Type") or "volume"
    target = _target("HostConfig.Mounts.Target", m.get("Target"))
    ro = bool(m.get("ReadOnly"))
    src = m.get("Source") or ""
    if not isinstance(src, str):
        raise InvalidArgument("invalid HostConfig.Mounts.Source: expected a string")
    consistency = m.get("Consistency") or ""
    if consistency not in ("", "default", "consistent", "cached", "delegated"):
        raise InvalidArgument(f"invalid HostConfig.Mounts.Consistency: {consistency!r}")
    if kind == "bind":
        if m.get("VolumeOptions") or m.get("TmpfsOptions"):
            raise InvalidArgument('invalid HostConfig.Mounts: VolumeOptions/TmpfsOptions need type "volume"/"tmpfs"')
        if not src.startswith("/"):
            raise InvalidArgument(f"invalid HostConfig.Mounts.Source: bind source {src!r} must be an absolute path")
        if not os.path.exists(src):
            raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: {src}')
        bopts = m.get("BindOptions") or {}
        propagation = bopts.get("Propagation") or "rprivate"
        if propagation not in _PROPAGATION:
            raise InvalidArgument(f"invalid HostConfig.Mounts.BindOptions.Propagation: {propagation!r}")
        if bopts.get("NonRecursive"):
            raise InvalidArgument("invalid HostConfig.Mounts.BindOptions.NonRecursive: not supported by cove")
        return {"Type": "bind", "Source": os.path.normpath(src), "Target": target, "ReadOnly": ro,
                "Propagation": propagation, "Create": False}
    if kind == "volume":
        if m.get("BindOptions") or m.get("TmpfsOptions"):
            raise InvalidArgument('invalid HostConfig.Mounts: BindOptions/TmpfsOptions need type "bind"/"tmpfs"')
        vopts = m.get("VolumeOptions") or {}
        driver = ((vopts.get("DriverConfig") or {}).get("Name")) or "local"
        if driver != "local":
            raise InvalidArgument(f"invalid HostConfig.Mounts.VolumeOptions.DriverConfig.Name: {driver!r}: "
                                  "cove has the local driver only")
        if (vopts.get("DriverConfig") or {}).get("Options"):
            raise InvalidArgument("invalid HostConfig.Mounts.VolumeOptions.DriverConfig.Options: not supported")
        if src and not VOLUME_NAME.match(src):
            raise InvalidArgument(f"invalid HostConfig.Mounts.Source: {src!r} is not a volume name")
        return {"Type": "volume", "Source": src, "Target": target, "ReadOnly": ro, "Propagation": "",
                "NoCopy": bool(vopts.get("NoCopy")), "Labels": dict(vopts.get("Labels") or {})}
    if kind == "tmpfs":
        if src:
            raise InvalidArgument("invalid HostConfig.Mounts.Source: a tmpfs mount has no source")
        topts = m.get("TmpfsOptions") or {}
        size = topts.get("SizeBytes") or 0
        mode = topts.get("Mode") or 0
        if not isinstance(size, int) or not isinstance(mode, int) or size < 0:
            raise InvalidArgument("invalid HostConfig.Mounts.TmpfsOptions: SizeBytes and Mode are integers")
        return {"Type": "tmpfs", "Source": "", "Target": target, "ReadOnly": ro, "Propagation": "",
                "SizeBytes": size, "Mode": mode}
    raise InvalidArgument(f"invalid HostConfig.Mounts.Type: {kind!r}: cove supports bind, volume and tmpfs")


def parse_mounts(binds: list[str], mounts: Any, volumes: Any) -> list[dict[str, Any]]:
    """Binds, Mounts and the request's Volumes, checked (a 400 naming the field), targets unique."""
    out = [parse_bind(b) for b in binds]
    if mounts is not None and not isinstance(mounts, list):
        raise InvalidArgument("invalid HostConfig.Mounts: expected a list")
    out += [parse_mount(m) for m in mounts or []]
    seen: set[str] = set()
    for m in out:
        if m["Target"] in seen:
            raise InvalidArgument(f"invalid mounts: duplicate mount point: {m['Target']}")
        seen.add(m["Target"])
    if volumes is not None and not isinstance(volumes, dict):
        raise InvalidArgument("invalid Volumes: expected an object of paths")
    for path in volumes or {}:
        target = _target("Volumes", path)
        if target not in seen:
            out.append({"Type": "volume", "Source": "", "Target": target, "ReadOnly": False, "Propagation": ""})
            seen.add(target)
    return out


