"""Docker-shaped events: a small in-process bus, its filters and timestamps.

The engine publishes an :class:`Event` at the point an action completes
(container create/start/die/..., network create/connect/...).  The bus keeps
the last :data:`RING_SIZE` events for ``since`` and hands every subscriber a
queue of its own; ``GET /events`` turns a subscription into a JSON-lines
stream.  Nothing here polls: a subscriber blocks on its queue's condition
until an event arrives, its ``until`` deadline passes, or it is closed (the
client went away, or the daemon stops).

The wire shape is Docker's ``events.Message``: ``Type``, ``Action``,
``Actor{ID, Attributes}``, ``scope``, ``time``, ``timeNano``, plus the legacy
``status``/``id``/``from`` for container events.  Filters follow dockerd's
``daemon/events/filter.go`` rules (read, not copied): ``event`` exact (prefix
for ``exec_create``/``exec_start``/``health_status``), ``type`` and ``scope``
exact, ``container``/``network``/... an ID or name prefix, ``image`` exact on
the image attribute (with or without tag), ``label`` a ``key`` or ``key=value``
that every attribute set must carry.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidArgument

RING_SIZE = 256              #: dockerd keeps the last 256 events for ``since``
QUEUE_LIMIT = 4096           #: a subscriber this far behind is dropped (its stream ends)

#: filter keys dockerd knows for events; the ``kind`` ones match an actor of that type
KIND_FILTERS = ("container", "network", "volume", "plugin", "node", "service", "secret", "config", "daemon")
FILTER_KEYS = frozenset((*KIND_FILTERS, "event", "type", "scope", "image", "label"))
#: actions whose wire form carries the command (``exec_create: sh -c ...``): a bare name matches as prefix
PREFIX_ACTIONS = ("exec_create", "exec_start", "health_status")


@dataclass(frozen=True)
class Event:
    type: str                         # container | network | image | daemon ...
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type == "container":          # the legacy fields dockerd still fills for containers
            out = {"status": self.action, "id": self.actor_id, "from": self.attributes.get("image", "")}
        out.update({"Type": self.type, "Action": self.action,
                    "Actor": {"ID": self.actor_id, "Attributes": dict(sorted(self.attributes.items()))},
                    "scope": self.scope, "time": self.time_nano // 1_000_000_000, "timeNano": self.time_nano})
        return out

    def to_json_line(self) -> bytes:
        return (json.dumps(self.to_docker(), separators=(",", ":")) + "\n").encode()


# -- filters --------------------------------------------------------------------------------
def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """The ``filters`` query parameter (``{"key": ["v"]}`` or ``{"key": {"v": true}}``)."""
    if not raw:
        return {}
    try:
        f = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid filters: {raw!r} is not JSON") from None
    if not isinstance(f, dict):
        raise InvalidArgument(f"invalid filters: {raw!r} is not a JSON object")
    out: dict[str, list[str]] = {}
    for k, v in f.items():
        # dockerd decodes {"key": {"value": true}} or {"key": ["value"]}; anything else is a 400
        if isinstance(v, dict) and all(isinstance(on, bool) for on in v.values()):
            out[str(k)] = [str(x) for x, on in v.items() if on]
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[str(k)] = list(v)
        else:
            raise InvalidArgument(f"invalid filters: the value of {str(k)[:64]!r} must be a list of strings "
                                  "or an object of booleans")
    return out


def check_keys(filters: dict[str, list[str]], accepted: frozenset[str] | set[str], what: str = "") -> None:
    """Docker's answer to an unknown filter key: 400 ``Invalid filter 'KEY'``."""
    for key in filters:
        if key not in accepted:
            raise InvalidArgument(f"Invalid filter '{key}'" + (f" for {what} (accepted: "
                                  f"{', '.join(sorted(accepted))})" if what else ""))


def labels_match(attrs: dict[str, str], wanted: list[str]) -> bool:
    """Every ``key`` / ``key=value`` in ``wanted`` is in ``attrs`` (dockerd's MatchKVList)."""
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in attrs or (eq and attrs[k] != v):
            return False
    return True


def _strip_tag(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref[: len(ref) - len(last)] + last.split(":", 1)[0] if ":" in last else ref


class EventFilter:
    def __init__(self, filters: dict[str, list[str]] | None = None) -> None:
        self.f = {k: v for k, v in (filters or {}).items()}
        check_keys(self.f, FILTER_KEYS, "events")

    def _exact(self, key: str, value: str) -> bool:
        return key not in self.f or value in self.f[key]

    def _prefix(self, key: str, *values: str) -> bool:
        if key not in self.f:
            return True
        return any(v and any(v.startswith(w) for w in self.f[key]) for v in values)

    def matches(self, ev: Event) -> bool:
        f = self.f
        if "event" in f:
            if any(w in PREFIX_ACTIONS for w in f["event"]):
                if not any(ev.action.startswith(w) for w in f["event"]):
                    return False
            elif ev.action not in f["event"]:
                return False
        if not self._exact("type", ev.type) or not self._exact("scope", ev.scope):
            return False
        name = ev.attributes.get("name", "")
        for kind in KIND_FILTERS:
            if kind in f and not self._prefix(kind, ev.actor_id, name):
                return False
        if "image" in f:
            image = ev.attributes.get("name" if ev.type == "image" else "image", "")
            cands = {ev.actor_id, image, _strip_tag(ev.actor_id), _strip_tag(image)}
            if not any(c and c in f["image"] for c in cands):
                return False
        if "label" in f and not labels_match(ev.attributes, f["label"]):
            return False
        return True


# -- timestamps -----------------------------------------------------------------------------
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_timestamp(value: str | None, field_name: str, now: float | None = None) -> int | None:
    """``since``/``until`` as nanoseconds since the epoch.

    The API takes ``SECONDS[.NANOSECONDS]`` (what the docker CLI sends); cove
    also takes RFC 3339 and Go durations (``10m``: that long ago), as the CLI does.
    """
    if value is None or value == "":
        return None
    v = value.strip()
    m = re.fullmatch(r"(-?\d+)(?:\.(\d{1,9}))?", v)
    if m:
        sec = int(m.group(1))
        frac = int((m.group(2) or "0").ljust(9, "0"))
        return sec * 1_000_000_000 + (frac if sec >= 0 else -frac)
    m = _DURATION.match(v)
    if m:
        ago = float(m.group(1)) * _UNITS[m.group(2)]
        return int(((time.time() if now is None else now) - ago) * 1e9)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid {field_name}: {value!r} is not a timestamp "
                              "(SECONDS[.NANOSECONDS], RFC 3339, or a duration such as 10m)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000_000)


# -- the bus --------------------------------------------------------------------------------
class Subscription:
    """One client's view of the bus: a bounded queue, filled by the publishers."""

    def __init__(self, bus: EventBus, flt: EventFilter, until: int | None) -> None:
        self._bus = bus
        self._filter = flt
        self._until = until
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Event] = deque()
        self._closed = False
        self.dropped = False                  # it fell QUEUE_LIMIT behind and was cut off

    def offer(self, ev: Event) -> None:
        if not self._filter.matches(ev):
            return
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= QUEUE_LIMIT:
                self.dropped = True
                self._closed = True
            else:
                self._queue.append(ev)
            self._cond.notify()

    def close(self) -> None:
        """End the stream (client gone, daemon stopping); safe from any thread, twice."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._bus._unsubscribe(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self) -> Event | None:
        """The next event; None once closed or past ``until`` (the stream's end)."""
        with self._cond:
            while True:
                if self._queue:
                    ev = self._queue.popleft()
                    if self._until is not None and ev.time_nano > self._until:
                        self._closed = True
                        return None
                    return ev
                if self._closed:
                    return None
                timeout = None
                if self._until is not None:
                    timeout = (self._until - time.time_ns()) / 1e9
                    if timeout <= 0:
                        self._closed = True
                        return None
                self._cond.wait(timeout)

    def __iter__(self) -> Iterator[Event]:
        try:
            while (ev := self.get()) is not None:
                yield ev
        finally:
            self.close()

    def json_lines(self) -> Iterator[bytes]:
        for ev in self:
            yield ev.to_json_line()


class EventBus:
    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._lock = threading.Lock()
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subs: set[Subscription] = set()
        self._closed = False
        self._last_ns = 0

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        """Record an event and hand it to every subscriber; never blocks on a slow one."""
        with self._lock:
            now = max(time.time_ns(), self._last_ns + 1)     # strictly increasing: order survives since=
            self._last_ns = now
            ev = Event(type_, action, actor_id, {k: str(v) for k, v in (attributes or {}).items()}, now)
            self._ring.append(ev)
            subs = list(self._subs)
            for s in subs:        # under the bus lock: every subscriber sees events in one order
                s.offer(ev)
        return ev

    def subscribe(self, since: int | None = None, until: int | None = None,
                  flt: EventFilter | None = None) -> Subscription:
        """A new subscription; with ``since``, first the remembered events from then on.

        With an ``until`` already past, the stream holds only remembered events and ends.
        """
        sub = Subscription(self, flt or EventFilter(), until)
        with self._lock:
            if since is not None or until is not None:
                lo = since if since is not None else 0
                for ev in self._ring:
                    if ev.time_nano >= lo and (until is None or ev.time_nano <= until):
                        sub.offer(ev)
            if self._closed or (until is not None and until <= time.time_ns()):
                sub._closed = True
            else:
                self._subs.add(sub)
        return sub

    def recent(self) -> list[Event]:
        with self._lock:
            return list(self._ring)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def close(self) -> None:
        """The daemon stops: every stream ends."""
        with self._lock:
            self._closed = True
            subs = list(self._subs)
            self._subs.clear()
        for s in subs:
            s.close()
