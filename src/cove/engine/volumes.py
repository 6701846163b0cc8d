"""Volumes and mounts: the ``local`` driver, Docker's ``Binds`` / ``Mounts`` / ``Volumes``.

A named volume is a directory ``DATA_ROOT/volumes/NAME/_data`` (as dockerd's
``/var/lib/docker/volumes``) with its record in the store (``volumes/NAME``).
A container's mounts are normalised at create time into plain dicts
(``{"Type", "Source", "Target", "ReadOnly", "Propagation"}``) kept in its
HostConfig; start turns them into OCI bind mounts (:func:`oci_mounts`).

Docker's rules, mimicked:

- ``-v /host:/ctr`` (``Binds``) creates a missing host directory; ``--mount
  type=bind`` (``Mounts``) refuses a missing source with a 400;
- a named volume that does not exist is created on use (``local`` driver only);
- ``Volumes`` of the request and of the image make anonymous volumes (64-hex
  names) unless a mount already covers that path; ``rm -v`` removes them;
- a volume in use by a container (running or not) cannot be removed (409).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from ..errors import Conflict, InvalidArgument, NotFound
from ..model import Container
from ..mounts import ANON_LABEL, VOLUME_NAME
from .core import log, new_id, now_rfc3339
from .state import State

class VolumeService:
    """Named volumes on disk plus their records; the lock is the engine's."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.volumes: dict[str, dict[str, Any]] = {}
        self.root = os.path.join(state.cfg.data_root, "volumes")

    def load(self) -> None:
        for entry in self.state.store.list("volumes/"):
            v = dict(entry.value)
            v.pop("_v", None)
            self.volumes[v["Name"]] = v

    def path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    # the API's verbs -----------------------------------------------------------------------
    def create(self, name: str = "", driver: str = "local", opts: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
        if driver not in ("", "local"):
            raise InvalidArgument(f"invalid Driver: {driver!r}: cove has the local driver only")
        if opts:
            raise InvalidArgument(f"invalid DriverOpts: {sorted(opts)}: the local driver takes no options in cove")
        if name and not VOLUME_NAME.match(name):
            raise InvalidArgument(f"invalid Name: {name!r}: volume names match [a-zA-Z0-9][a-zA-Z0-9_.-]+")
        with self.state.lock:
            if name and name in self.volumes:
                return self.volumes[name]     # as dockerd: create of an existing local volume returns it
            name = name or new_id()
            path = self.path(name)
            os.makedirs(path, mode=0o755, exist_ok=True)
            os.chmod(os.path.dirname(path), 0o700)
            v = {"Name": name, "Driver": "local", "Mountpoint": path, "CreatedAt": now_rfc3339(),
                 "Labels": dict(labels or {}), "Scope": "local", "Options": {}}
            try:
                self.state.store.put(f"volumes/{name}", v)
            except Exception:
                shutil.rmtree(os.path.dirname(path), ignore_errors=True)
                raise
            self.volumes[name] = v
            self.state.events.publish("volume", "create", name, {"driver": "local"})
            log.info("volume %s created", name)
            return v

    def find(self, name: str) -> dict[str, Any]:
        v = self.volumes.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def users(self, name: str) -> list[Container]:
        return [c for c in self.state.containers.values()
                if any(m["Type"] == "volume" and m["Source"] == name for m in c.host_config.mounts)]

    def remove(self, name: str, force: bool = False) -> None:
        with self.state.lock:
            if name not in self.volumes:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            used = self.users(name)
            if used:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(c.id for c in used)}]")
            self.state.store.delete(f"volumes/{name}")
            self.volumes.pop(name)
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
            self.state.events.publish("volume", "destroy", name, {"driver": "local"})
            log.info("volume %s removed", name)

    def prune(self, all_volumes: bool = False, labels: list[str] | None = None) -> tuple[list[str], int]:
        """Unused volumes (anonymous only, as dockerd >= 23, unless ``all``) go; returns names and bytes."""
        gone: list[str] = []
        freed = 0
        with self.state.lock:
            for name, v in list(self.volumes.items()):
                if self.users(name):
                    continue
                if not all_volumes and ANON_LABEL not in v["Labels"] and not _hex64(name):
                    continue
                if labels and not all(_label_match(v["Labels"], f) for f in labels):
                    continue
                freed += _du(os.path.join(self.root, name))
                self.remove(name)
                gone.append(name)
        return gone, freed

    # containers ----------------------------------------------------------------------------
    def prepare(self, c: Container, image_volumes: dict[str, Any] | None) -> list[str]:
        """At create: the image's volumes become anonymous volumes; every volume exists; returns the
        names of the volumes created here (removed again if the create fails)."""
        mounts = c.host_config.mounts
        targets = {m["Target"] for m in mounts}
        for path in image_volumes or {}:
            target = os.path.normpath(path) if path.startswith("/") else None
            if target and target != "/" and target not in targets:
                mounts.append({"Type": "volume", "Source": "", "Target": target, "ReadOnly": False,
                               "Propagation": ""})
                targets.add(target)
        made: list[str] = []
        try:
            for m in mounts:
                if m["Type"] == "bind" and m.get("Create") and not os.path.exists(m["Source"]):
                    os.makedirs(m["Source"], mode=0o755, exist_ok=True)     # as `docker run -v`
                if m["Type"] != "volume":
                    continue
                if not m["Source"]:
                    v = self.create(labels={ANON_LABEL: ""})
                    m["Source"] = v["Name"]
                    m["Anonymous"] = True
                    made.append(v["Name"])
                elif m["Source"] not in self.volumes:
                    self.create(m["Source"], labels=m.get("Labels"))
                    made.append(m["Source"])
        except Exception:
            self.drop(made)
            raise
        return made

    def drop(self, names: list[str]) -> None:
        for name in names:
            try:
                self.remove(name, force=True)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                log.warning("volume %s: %s", name, exc)

    def on_remove(self, c: Container, remove_anonymous: bool) -> None:
        if remove_anonymous:
            self.drop([m["Source"] for m in c.host_config.mounts if m["Type"] == "volume" and m.get("Anonymous")
                       and len(self.users(m["Source"])) <= 1])

    def spec_mounts(self, c: Container, rootfs: str | None) -> list[dict[str, Any]]:
        """The runtime's mounts for ``c``: host sources resolved; a new, empty volume is first filled
        with what the image holds at its target (as Docker's copy-up, unless NoCopy)."""
        out: list[dict[str, Any]] = []
        for m in c.host_config.mounts:
            if m["Type"] == "volume":
                src = self.path(m["Source"])
                if m["Source"] not in self.volumes:
                    raise NotFound(f"volume {m['Source']} of container {c.name} is gone")
                if rootfs and not m.get("NoCopy"):
                    _copy_up(rootfs, m["Target"], src)
            elif m["Type"] == "bind":
                src = m["Source"]
                if not os.path.exists(src):
                    raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not "
                                          f"exist: {src}")
            else:
                src = ""
            out.append({"type": m["Type"], "source": src, "target": m["Target"], "readonly": bool(m["ReadOnly"]),
                        "propagation": m.get("Propagation") or "rprivate", "size": int(m.get("SizeBytes") or 0),
                        "mode": int(m.get("Mode") or 0)})
        return out

    def inspect_mounts(self, c: Container) -> list[dict[str, Any]]:
        """Inspect's ``Mounts``."""
        out = []
        for m in c.host_config.mounts:
            if m["Type"] == "volume":
                out.append({"Type": "volume", "Name": m["Source"], "Source": self.path(m["Source"]),
                            "Destination": m["Target"], "Driver": "local", "Mode": "z" if not m["ReadOnly"] else "ro",
                            "RW": not m["ReadOnly"], "Propagation": ""})
            else:
                out.append({"Type": m["Type"], "Source": m["Source"], "Destination": m["Target"], "Mode": "",
                            "RW": not m["ReadOnly"], "Propagation": m.get("Propagation") or ""})
        return out


def _copy_up(rootfs: str, target: str, volume_dir: str) -> None:
    """Copy the image's files at ``target`` into an empty volume. A path that leads out of the
    image through a symlink (``/data -> /etc``, resolved on the host, would be the host's /etc)
    is not copied at all; symlinks inside are copied as links, never followed."""
    root = os.path.realpath(rootfs)
    image_dir = os.path.realpath(os.path.join(root, target.lstrip("/")))
    if not image_dir.startswith(root + os.sep) or os.listdir(volume_dir) or not os.path.isdir(image_dir):
        return
    shutil.copytree(image_dir, volume_dir, symlinks=True, dirs_exist_ok=True)


def _hex64(name: str) -> bool:
    return len(name) == 64 and all(ch in "0123456789abcdef" for ch in name)


def _label_match(labels: dict[str, str], f: str) -> bool:
    k, sep, v = f.partition("=")
    return k in labels and (not sep or labels[k] == v)


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
