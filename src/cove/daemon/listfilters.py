"""The ``filters`` of ``GET /containers/json`` and ``GET /networks``, as dockerd applies them.

Pure functions over the list summaries (no engine, no kernel), so the rules
are unit-tested on their own.  Every key ``docker ps`` / ``docker network ls``
documents either works or is refused with a message that names it; an unknown
key is refused as dockerd refuses it (400 ``Invalid filter 'KEY'``).  Nothing
is silently ignored.

dockerd's matching rules (read in moby's ``daemon/list.go`` and
``daemon/network/filter.go``): ``name`` and ``id`` are unanchored regular
expressions (a container's name starts with ``/``), so a plain value matches
any part of the name or id (``web`` finds ``/myweb1``, ``^abc`` an id prefix),
``label`` wants every
``key``/``key=value``, ``driver``/``scope`` are exact, ``status`` must be a
state name; ``before``/``since``/``exited``/``status`` and ``limit`` make
stopped containers count.

The patterns come from the client, so they are never given to Python's ``re``
(a backtracking engine: ``([0-9a-f]*)*z`` against a 64-digit id takes longer
than the age of the universe, under the engine lock).  They go to RE2 (the
``google-re2`` bindings), the engine and syntax of Go's ``regexp`` that
dockerd uses: matching time is linear in the pattern and the text, whatever
the pattern.  A pattern RE2 refuses (a back-reference, a repeat over 1000)
matches nothing but an equal string, as in dockerd where ``regexp`` refuses it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from ..errors import InvalidArgument, NotImplementedByCove
from ..events import check_keys, labels_match
from ..model import parse_bool

PS_FILTERS = frozenset(("ancestor", "before", "exited", "expose", "health", "id", "isolation", "is-task",
                        "label", "name", "network", "publish", "since", "status", "volume"))
#: documented by Docker, refused by cove: key -> why
PS_UNSUPPORTED: dict[str, str] = {}
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")

NETWORK_FILTERS = frozenset(("dangling", "driver", "id", "label", "name", "scope", "type"))


#: RE2's memory for one compiled pattern.  1 MiB holds any pattern a person types
#: (RE2 needs about 1 KiB per 10 states); a bigger one fails to compile and then
#: matches only an equal string.  Compiled patterns are cached (PATTERN_CACHE), so
#: the worst a client can hold is PATTERN_CACHE MiB, briefly.
PATTERN_MEMORY = 1 << 20
PATTERN_CACHE = 64
#: longer values are compared, not compiled (no name or id is near this long), so the
#: pattern cache holds at most PATTERN_CACHE * 4 KiB of client text
MAX_PATTERN = 4096
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = PATTERN_MEMORY
_RE2_OPTIONS.log_errors = False     # a refused pattern is the client's mistake, not a log line


@functools.lru_cache(maxsize=PATTERN_CACHE)
def _pattern(value: str) -> Any:
    """``value`` compiled by RE2, or None when RE2 refuses it."""
    try:
        return re2.compile(value, _RE2_OPTIONS)
    except re2.error:
        return None


def docker_match(values: list[str], source: str) -> bool:
    """dockerd's ``filters.Args.Match``: ``source`` equals one of ``values`` or one of them,
    read as an unanchored Go (RE2) regular expression, matches part of it.  Linear time."""
    for v in values:
        if v == source:
            return True
        rx = _pattern(v) if len(v) <= MAX_PATTERN else None
        if rx is not None and rx.search(source) is not None:
            return True
    return False


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
    health: str = "none"              # State.Health.Status, "none" without a check
    volumes: tuple[str, ...] = ()     # its volumes' names and its mount points (the volume= filter)


def _check_int(key: str, v: str) -> None:
    try:
        int(v)
    except ValueError:
        raise _invalid(key, v) from None


def _check_in(choices: tuple[str, ...]) -> Callable[[str, str], None]:
    def check(key: str, v: str) -> None:
        if v not in choices:
            raise _invalid(key, v)
    return check


def _check_health(key: str, v: str) -> None:
    if v not in HEALTH:
        raise InvalidArgument(f"Unrecognised filter value for health: {v}")


def _check_bool(key: str, v: str) -> None:
    try:
        parse_bool(key, v)
    except InvalidArgument:
        raise _invalid(key, v) from None


#: filter key -> the check of each of its values (a 400 naming the filter), before any row is looked at
PS_CHECKS: dict[str, Callable[[str, str], None]] = {
    "exited": _check_int, "status": _check_in(STATES), "health": _check_health, "is-task": _check_bool,
}


def _on_network(row: ContainerRow, values: list[str]) -> bool:
    nets = (row.summary.get("NetworkSettings") or {}).get("Networks") or {}
    return any(v in nets or any((ep or {}).get("NetworkID", "").startswith(v) for ep in nets.values())
               for v in values)


def _exited_with(row: ContainerRow, values: list[str]) -> bool:
    return (row.summary.get("State") != "running" and row.started
            and any(row.exit_code == int(v) for v in values))


#: filter key -> whether a row passes, given the key's (checked) values; every key given must pass.
#: ``before``/``since``, ``ancestor`` and ``publish``/``expose`` need more than the row: see below.
PS_MATCH: dict[str, Callable[[ContainerRow, list[str]], bool]] = {
    "name": lambda row, vs: any(docker_match(vs, n) for n in row.summary.get("Names") or []),
    "id": lambda row, vs: docker_match(vs, row.summary["Id"]),
    "label": lambda row, vs: labels_match(row.summary.get("Labels") or {}, vs),
    "isolation": lambda row, vs: docker_match(vs, "default"),
    "exited": _exited_with,
    "status": lambda row, vs: row.summary.get("State") in vs,
    "health": lambda row, vs: row.health in vs,
    "volume": lambda row, vs: any(v in row.volumes for v in vs),
    "is-task": lambda row, vs: any(not parse_bool("is-task", v) for v in vs),
    "network": _on_network,
}


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
    for key, check in PS_CHECKS.items():
        for v in f.get(key, []):
            check(key, v)
    matches = [(match, f[key]) for key, match in PS_MATCH.items() if key in f]
    # checked here too; a port filter passes when one port is published or exposed as asked (dockerd's rule)
    publish = set().union(*(parse_port_filter("publish", v) for v in f.get("publish", [])))
    expose = set().union(*(parse_port_filter("expose", v) for v in f.get("expose", [])))
    before = since = None
    if "before" in f or "since" in f:
        if index_of is None:
            raise InvalidArgument("invalid filter: before/since need a container to compare with")
        before = min((index_of(v) for v in f.get("before", [])), default=None)
        since = max((index_of(v) for v in f.get("since", [])), default=None)
    ancestors: set[str] | None = None
    if "ancestor" in f:
        found = (image_id_of(v) if image_id_of is not None else None for v in f["ancestor"])
        ancestors = {iid for iid in found if iid}
    show_stopped = all_ or limit > 0 or before is not None or since is not None or "status" in f
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        s = row.summary
        if s.get("State") != "running" and not show_stopped:
            continue
        if before is not None and i <= before:        # newest first: older ones come after it
            continue
        if since is not None and i >= since:
            continue
        if not all(match(row, values) for match, values in matches):
            continue
        if ancestors is not None and s.get("ImageID") not in ancestors:
            continue
        if (publish or expose) and not any(
                (p.get("PublicPort") and f"{p['PublicPort']}/{p.get('Type', 'tcp')}" in publish)
                or f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}" in expose for p in s.get("Ports") or []):
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
        try:
            dangling = parse_bool("dangling", v)
        except InvalidArgument:
            raise InvalidArgument("invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                                  "or \"false\" (or \"0\")") from None
    out = []
    for row in rows:
        n = row.summary
        if "driver" in f and n.get("Driver") not in f["driver"]:
            continue
        if "name" in f and not docker_match(f["name"], n.get("Name", "")):
            continue
        if "id" in f and not docker_match(f["id"], n.get("Id", "")):
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
