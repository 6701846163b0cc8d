"""Every field of a container create (``POST /containers/create``, API 1.43): what cove does with it.

docker-compose and docker-py send whatever their user wrote; a field cove would drop
without a word is a container that runs differently from what was asked.  So each
field Docker knows is in one of these tables, with its handling:

- ``HONOURED``: cove does what Docker does (parsed in :mod:`cove.daemon.schema`);
- ``ACCEPTED``: nothing to do on the daemon's side (``ContainerIDFile`` is written by the
  client, ``ArgsEscaped`` is for Windows); accepted whatever its value;
- ``DEFAULT_ONLY``: only Docker's default (the values in ``allowed``) is accepted; any other
  value is a 400 naming the field;
- ``REFUSED``: cove cannot do it; a non-empty value is a 400 naming the field.

Zero and empty values (``null``, ``false``, ``0``, ``""``, ``[]``, ``{}``, and the ``-1`` some
clients send for "unset") are Docker's "not set" and are accepted as no-ops everywhere: the
docker CLI sends every HostConfig field, most of them zero.  A field missing from the tables
(a newer API's) is refused the same way when it is set, so nothing is ever silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument

HONOURED = "honoured"
ACCEPTED = "accepted"
DEFAULT_ONLY = "default only"
REFUSED = "refused"


@dataclass(frozen=True)
class Field:
    handling: str
    note: str = ""
    allowed: tuple[Any, ...] = ()


#: the top level of the create body (Docker's ``Config``, with ``HostConfig`` and ``NetworkingConfig``)
CONFIG: dict[str, Field] = {
    "Hostname": Field(HONOURED, "the container's hostname"),
    "Domainname": Field(HONOURED, "the container's domain name"),
    "User": Field(REFUSED, "cove runs the command as root (no user lookup in the image)"),
    "AttachStdin": Field(HONOURED, "recorded, reported by inspect"),
    "AttachStdout": Field(HONOURED, "recorded, reported by inspect"),
    "AttachStderr": Field(HONOURED, "recorded, reported by inspect"),
    "ExposedPorts": Field(HONOURED, "-P publishes them; listed by inspect and ps"),
    "Tty": Field(HONOURED, "a pseudo-terminal"),
    "OpenStdin": Field(HONOURED, "stdin stays open for attach"),
    "StdinOnce": Field(HONOURED, "recorded, reported by inspect"),
    "Env": Field(HONOURED, "over the image's"),
    "Cmd": Field(HONOURED),
    "Healthcheck": Field(HONOURED, "probed through the runtime's exec; State.Health"),
    "ArgsEscaped": Field(ACCEPTED, "Windows only"),
    "Image": Field(HONOURED),
    "Volumes": Field(HONOURED, "anonymous volumes"),
    "WorkingDir": Field(HONOURED),
    "Entrypoint": Field(HONOURED),
    "NetworkDisabled": Field(REFUSED, "use --network none"),
    "MacAddress": Field(HONOURED, "the primary network's MAC address"),
    "OnBuild": Field(REFUSED, "image builds only"),
    "Labels": Field(HONOURED),
    "StopSignal": Field(DEFAULT_ONLY, "a stop sends SIGTERM", ("SIGTERM", "TERM", "15")),
    "StopTimeout": Field(HONOURED, "seconds a stop waits before SIGKILL"),
    "Shell": Field(REFUSED, "image builds only"),
    "HostConfig": Field(HONOURED, "see HOST"),
    "NetworkingConfig": Field(HONOURED, "EndpointsConfig: networks, IPs, aliases, links, MAC"),
}

#: ``HostConfig``
HOST: dict[str, Field] = {
    # honoured ------------------------------------------------------------------------
    "NetworkMode": Field(HONOURED, "bridge, host, none, container:NAME, a user network"),
    "PortBindings": Field(HONOURED),
    "PublishAllPorts": Field(HONOURED),
    "Dns": Field(HONOURED),
    "DnsOptions": Field(HONOURED),
    "DnsSearch": Field(HONOURED),
    "ExtraHosts": Field(HONOURED),
    "Links": Field(HONOURED, "the default bridge's /etc/hosts links"),
    "AutoRemove": Field(HONOURED),
    "CapAdd": Field(HONOURED),
    "CapDrop": Field(HONOURED),
    "Privileged": Field(HONOURED),
    "SecurityOpt": Field(HONOURED, "seccomp=unconfined|PROFILE, no-new-privileges"),
    "PidsLimit": Field(HONOURED),
    "Memory": Field(HONOURED),
    "LogConfig": Field(HONOURED, "json-file (max-size, max-file), local, none"),
    "Sysctls": Field(HONOURED, "namespaced net.* keys, set inside the container's network namespace"),
    "UsernsMode": Field(HONOURED, "host: no user namespace when the daemon runs with --userns-remap"),
    # no work for the daemon -------------------------------------------------------------
    "ContainerIDFile": Field(ACCEPTED, "written by the client"),
    "ConsoleSize": Field(ACCEPTED, "the terminal's size comes with the client's resize call"),
    # volumes, mounts, restart policies (cove.engine.volumes, cove.engine.restart) ----------
    "Binds": Field(HONOURED, "SRC:DST[:ro|rw|PROPAGATION]"),
    "Mounts": Field(HONOURED, "bind, volume (local driver), tmpfs"),
    "VolumeDriver": Field(DEFAULT_ONLY, "volumes use the local driver", ("local",)),
    "RestartPolicy": Field(HONOURED, "no, always, unless-stopped, on-failure[:N]"),
    # Docker's defaults only -----------------------------------------------------------
    "IpcMode": Field(DEFAULT_ONLY, "a private IPC namespace", ("private", "shareable")),
    "PidMode": Field(DEFAULT_ONLY, "a private PID namespace", ("private",)),
    "UTSMode": Field(DEFAULT_ONLY, "a private UTS namespace", ("private",)),
    "CgroupnsMode": Field(DEFAULT_ONLY, "a private cgroup namespace", ("private",)),
    "Isolation": Field(DEFAULT_ONLY, "Windows only", ("default",)),
    "Runtime": Field(DEFAULT_ONLY, "containers run with runc", ("runc",)),
    "Init": Field(DEFAULT_ONLY, "no init process is injected"),
    "ReadonlyRootfs": Field(DEFAULT_ONLY, "the root filesystem is writable"),
    "OomKillDisable": Field(DEFAULT_ONLY, "the OOM killer is left on"),
    # refused when set -----------------------------------------------------------------
    "VolumesFrom": Field(REFUSED),
    "GroupAdd": Field(REFUSED),
    "Cgroup": Field(REFUSED),
    "CgroupParent": Field(REFUSED),
    "OomScoreAdj": Field(REFUSED),
    "ShmSize": Field(REFUSED, "/dev/shm is 64 MiB"),
    "Tmpfs": Field(REFUSED),
    "StorageOpt": Field(REFUSED),
    "MaskedPaths": Field(REFUSED, "Docker's masked paths, or none with --privileged"),
    "ReadonlyPaths": Field(REFUSED, "Docker's read-only paths, or none with --privileged"),
    "Annotations": Field(REFUSED),
    "Ulimits": Field(REFUSED),
    "Devices": Field(REFUSED),
    "DeviceCgroupRules": Field(REFUSED),
    "DeviceRequests": Field(REFUSED),
    "CpuShares": Field(REFUSED),
    "CpuPeriod": Field(REFUSED),
    "CpuQuota": Field(REFUSED),
    "CpuRealtimePeriod": Field(REFUSED),
    "CpuRealtimeRuntime": Field(REFUSED),
    "CpusetCpus": Field(REFUSED),
    "CpusetMems": Field(REFUSED),
    "NanoCpus": Field(REFUSED),
    "CpuCount": Field(REFUSED, "Windows only"),
    "CpuPercent": Field(REFUSED, "Windows only"),
    "IOMaximumIOps": Field(REFUSED, "Windows only"),
    "IOMaximumBandwidth": Field(REFUSED, "Windows only"),
    "BlkioWeight": Field(REFUSED),
    "BlkioWeightDevice": Field(REFUSED),
    "BlkioDeviceReadBps": Field(REFUSED),
    "BlkioDeviceWriteBps": Field(REFUSED),
    "BlkioDeviceReadIOps": Field(REFUSED),
    "BlkioDeviceWriteIOps": Field(REFUSED),
    "KernelMemory": Field(REFUSED),
    "KernelMemoryTCP": Field(REFUSED),
    "MemoryReservation": Field(REFUSED),
    "MemorySwap": Field(REFUSED),
    "MemorySwappiness": Field(REFUSED),
}


def is_empty(value: Any) -> bool:
    """Docker's "not set": null, false, 0, -1, "", [], {} (and lists or maps of those, as ConsoleSize [0, 0])."""
    if value is None or value is False or value == "" or value == -1:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, list):
        return all(is_empty(v) for v in value)
    if isinstance(value, dict):
        return not value
    return False


def _check(section: str, table: dict[str, Field], body: dict[str, Any]) -> None:
    for key, value in body.items():
        f = table.get(key)
        if f is None:
            if not is_empty(value):
                raise InvalidArgument(f"invalid {section}{key}: cove does not know this field, so it cannot honour it")
            continue
        if f.handling in (HONOURED, ACCEPTED) or is_empty(value):
            continue
        if f.handling == DEFAULT_ONLY and value in f.allowed:
            continue
        why = f" ({f.note})" if f.note else ""
        if f.handling == DEFAULT_ONLY:
            raise InvalidArgument(f"invalid {section}{key} {value!r}: cove supports only Docker's default{why}")
        raise InvalidArgument(f"invalid {section}{key}: cove does not support it{why}")


def check_create(body: dict[str, Any]) -> None:
    """A 400 naming the first field of a create body that cove would not honour."""
    _check("", CONFIG, body)
    hc = body.get("HostConfig")
    if hc is not None and not isinstance(hc, dict):
        raise InvalidArgument("invalid HostConfig: expected an object")
    _check("HostConfig.", HOST, hc or {})


def table_markdown() -> str:
    """The tables as Markdown (docs/api.md keeps a copy; a unit test checks it is current)."""
    lines = ["| Field | Handling | Note |", "|---|---|---|"]
    for section, table in (("", CONFIG), ("HostConfig.", HOST)):
        for key, f in table.items():
            allowed = f" (accepted: {', '.join(map(str, f.allowed))})" if f.allowed else ""
            lines.append(f"| `{section}{key}` | {f.handling} | {f.note}{allowed} |")
    return "\n".join(lines) + "\n"
