"""The ``filters`` of ``GET /containers/json`` and ``GET /networks``, as dockerd applies them.

Pure functions over the list summaries (no engine, no kernel), so the rules
are unit-tested on their own.  Every key ``docker ps`` / ``docker network ls``
documents either works or is refused with a message that names it; an unknown
key is refused as dockerd refuses it (400 ``Invalid filter 'KEY'``).  Nothing
is silently ignored.

dockerd's matching rules (read in moby's ``daemon/list.go`` and
``daemon/network/filter.go``): ``name`` and ``id`` are unanchored regular
expressions (a container's name starts with ``/``), ``label`` wants every
``key``/``key=value``, ``driver``/``scope`` are exact, ``status`` must be a
state name; ``before``/``since``/``exited``/``status`` and ``limit`` make
stopped containers count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument, NotImplementedByCove
from ..events import check_keys, labels_match, regex_match

PS_FILTERS = frozenset(("ancestor", "before", "exited", "expose", "health", "id", "isolation", "is-task",
                        "label", "name", "network", "publish", "since", "status", "volume"))
#: documented by Docker, refused by cove: key -> why
PS_UNSUPPORTED = {"volume": "cove has no volumes or mounts to match"}
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")

NETWORK_FILTERS = frozenset(("dangling", "driver", "id", "label", "name", "scope", "type"))


def _invalid(key: str, value: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid filter '{key}={value}'")


def parse_port_filter(key: str, value: str) -> set[str]:
    """``80``, ``80/udp``, ``8000-8010/tcp`` -> {"80/tcp", ...} (tcp when no protocol)."""
    spec, _, proto = value.partition("/")
    proto = (proto or "tcp").lower()
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", spec)
    if not m or proto not in ("tcp", "udp", "sctp"):
        raise _invalid(key, value)
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not (0 < lo <= hi <= 65535):
        raise _invalid(key, value)
    return {f"{p}/{proto}" for p in range(lo, hi + 1)}


@dataclass
class ContainerRow:
    summary: dict[str, Any]           # the /containers/json item
    exit_code: int | None = None
    started: bool = False             # it ran at least once


def select_containers(rows: list[ContainerRow], f: dict[str, list[str]], *, all_: bool = False,
                      limit: int = 0, index_of: Callable[[str], int] | None = None,
                      image_id_of: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """Filter ``rows`` (newest first) as ``docker ps`` does.

    ``index_of(ref)`` finds a container's position in ``rows`` (raising NotFound),
    for ``before``/``since``; ``image_id_of(ref)`` resolves an image (None: unknown).
    """
    check_keys(f, PS_FILTERS)
    for key, why in PS_UNSUPPORTED.items():
        if key in f:
            raise NotImplementedByCove(f"the filter '{key}' is not supported by cove: {why}")
    exited: set[int] = set()
    for v in f.get("exited", []):
        try:
            exited.add(int(v))
        except ValueError:
            raise _invalid("exited", v) from None
    for v in f.get("status", []):
        if v not in STATES:
            raise _invalid("status", v)
    for v in f.get("health", []):
        if v not in HEALTH:
            raise InvalidArgument(f"Unrecognised filter value for health: {v}")
    for v in f.get("is-task", []):
        if v not in ("true", "false", "1", "0"):
            raise _invalid("is-task", v)
    publish: set[str] = set()
    expose: set[str] = set()
    for v in f.get("publish", []):
        publish |= parse_port_filter("publish", v)
    for v in f.get("expose", []):
        expose |= parse_port_filter("expose", v)
    before = since = None
    if "before" in f or "since" in f:
        if index_of is None:
            raise InvalidArgument("invalid filter: before/since need a container to compare with")
        before = min((index_of(v) for v in f.get("before", [])), default=None)
        since = max((index_of(v) for v in f.get("since", [])), default=None)
    ancestors: set[str] | None = None
    if "ancestor" in f:
        ancestors = set()
        for v in f["ancestor"]:
            iid = image_id_of(v) if image_id_of is not None else None
            if iid:
                ancestors.add(iid)
    show_stopped = all_ or limit > 0 or before is not None or since is not None or "status" in f
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        s = row.summary
        running = s.get("State") == "running"
        if not running and not show_stopped:
            continue
        if before is not None and i <= before:        # newest first: older ones come after it
            continue
        if since is not None and i >= since:
            continue
        if "name" in f and not any(regex_match(f["name"], n) for n in s.get("Names") or []):
            continue
        if "id" in f and not regex_match(f["id"], s["Id"]):
            continue
        if "label" in f and not labels_match(s.get("Labels") or {}, f["label"]):
            continue
        if "isolation" in f and not regex_match(f["isolation"], "default"):
            continue
        if exited and (running or not row.started or row.exit_code not in exited):
            continue
        if "status" in f and s.get("State") not in f["status"]:
            continue
        if "health" in f and "none" not in f["health"]:
            continue
        if "is-task" in f and not any(v in ("false", "0") for v in f["is-task"]):
            continue
        if ancestors is not None and s.get("ImageID") not in ancestors:
            continue
        if "network" in f:
            nets = (s.get("NetworkSettings") or {}).get("Networks") or {}
            if not any(v in nets or any((ep or {}).get("NetworkID", "").startswith(v) for ep in nets.values())
                       for v in f["network"]):
                continue
        if publish or expose:
            ports = s.get("Ports") or []
            if not any((p.get("PublicPort") and f"{p['PublicPort']}/{p.get('Type', 'tcp')}" in publish)
                       or f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}" in expose for p in ports):
                continue
        out.append(s)
        if limit > 0 and len(out) == limit:
            break
    return out


@dataclass
class NetworkRow:
    summary: dict[str, Any]           # the /networks item
    predefined: bool
    in_use: bool                      # it has endpoints (running containers)


def select_networks(rows: list[NetworkRow], f: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Filter ``rows`` as ``docker network ls`` does."""
    check_keys(f, NETWORK_FILTERS)
    for v in f.get("type", []):
        if v not in ("builtin", "custom"):
            raise InvalidArgument(f"invalid filter: 'type'='{v}'")
    dangling: bool | None = None
    if "dangling" in f:
        if len(f["dangling"]) > 1:
            raise InvalidArgument('got more than one value for filter key "dangling"')
        v = f["dangling"][0]
        if v not in ("true", "1", "false", "0"):
            raise InvalidArgument("invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                                  "or \"false\" (or \"0\")")
        dangling = v in ("true", "1")
    out = []
    for row in rows:
        n = row.summary
        if "driver" in f and n.get("Driver") not in f["driver"]:
            continue
        if "name" in f and not regex_match(f["name"], n.get("Name", "")):
            continue
        if "id" in f and not regex_match(f["id"], n.get("Id", "")):
            continue
        if "label" in f and not labels_match(n.get("Labels") or {}, f["label"]):
            continue
        if "scope" in f and n.get("Scope", "local") not in f["scope"]:
            continue
        if dangling is True and (row.predefined or row.in_use):
            continue
        if dangling is False and not (row.predefined or row.in_use):
            continue
        if "type" in f and not (("builtin" in f["type"] and row.predefined)
                                or ("custom" in f["type"] and not row.predefined)):
            continue
        out.append(n)
    return out
