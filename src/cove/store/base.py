"""The store interface: a small key/value store with revisions, shaped like etcd.

This is the seam an etcd backend will implement later for multi-host; the
engine only ever talks to :class:`Store`.  Semantics every backend keeps:

- keys are strings (``networks/<id>``), values JSON-serialisable dicts; a value
  read back is a fresh copy, as if it had gone through JSON;
- one global revision counts changes; every put or delete increases it by one
  and the entry records the revision of its last put;
- compare-and-swap: ``put``/``delete`` take ``expect`` (``None`` unconditional,
  ``0`` the key must not exist, ``n`` the key's revision must be ``n``) and
  raise :class:`~cove.errors.Conflict` naming the key on mismatch;
- ``txn()``: the puts and deletes one thread makes inside the block land
  together or not at all; other threads wait until the block ends (so they
  never see half of it).  A nested ``txn()`` joins the outer one: it becomes
  durable only with the outer one, and if an exception leaves the inner block
  only the inner block's changes are undone (a savepoint);
- ``watch(prefix, since, timeout)``: the events after revision ``since``,
  blocking until there is one; a bounded history is kept and a ``since`` older
  than it raises :class:`Compacted` (re-list, then watch from ``revision()``).

Also here: what the local backends share (:class:`LocalStore`: the lock, the
transaction nesting, the watch loop; the compare-and-swap check; value encoding).
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import Conflict, CoveError, Unavailable

#: how many events a backend keeps for watch() by default
DEFAULT_HISTORY = 10_000


@dataclass(frozen=True)
class Entry:
    """One key's current value and the revision that last wrote it."""

    key: str
    value: dict[str, Any]
    revision: int


@dataclass(frozen=True)
class Event:
    """One change: ``put`` (with the new value) or ``delete`` (value ``None``)."""

    kind: Literal["put", "delete"]
    key: str
    value: dict[str, Any] | None
    revision: int


class Compacted(CoveError):
    """A watch asked for events older than the history the store still keeps."""

    def __init__(self, since: int, compacted: int) -> None:
        super().__init__(f"watch since revision {since}: events up to revision {compacted} were compacted; "
                         "list again and watch from the current revision")
        self.since = since
        self.compacted = compacted


@runtime_checkable
class Store(Protocol):
    """What the engine needs from persistent state (SQLite now, etcd later)."""

    def get(self, key: str) -> Entry | None: ...

    def list(self, prefix: str) -> builtins.list[Entry]: ...

    def put(self, key: str, value: dict[str, Any], *, expect: int | None = None) -> int: ...

    def delete(self, key: str, *, expect: int | None = None) -> bool: ...

    def txn(self) -> AbstractContextManager[None]: ...

    def revision(self) -> int: ...

    def watch(self, prefix: str, since: int, timeout: float | None = None) -> builtins.list[Event]: ...

    def close(self) -> None: ...


# --- helpers both backends share ----------------------------------------------------

def check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"store key must be a non-empty string, got {key!r}")
    return key


def encode_value(key: str, value: dict[str, Any]) -> str:
    """JSON text of ``value``; a TypeError names the key if it is not a JSON dict."""
    if not isinstance(value, dict):
        raise TypeError(f"store value for key {key!r} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"store value for key {key!r} is not JSON-serialisable: {e}") from None


def decode_value(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def check_expect(key: str, current: int | None, expect: int | None) -> None:
    """Raise Conflict unless the key's revision ``current`` (None: absent) meets ``expect``."""
    if expect is None:
        return
    if expect < 0:
        raise ValueError(f"expect must be None or >= 0, got {expect}")
    if expect == 0:
        if current is not None:
            raise Conflict(f'key "{key}" already exists (revision {current})')
        return
    if current is None:
        raise Conflict(f'key "{key}" does not exist (expected revision {expect})')
    if current != expect:
        raise Conflict(f'key "{key}" was changed concurrently (expected revision {expect}, found {current})')


class LocalStore:
    """Machinery the single-process backends share; they fill in the ``_hook`` methods.

    One re-entrant lock guards all state.  ``txn()`` holds it for the whole
    block, so other threads neither see a half-done transaction nor interleave
    with it; every single put or delete runs as its own (possibly nested) txn.
    Watchers wait on a condition of the same lock, woken by each outermost commit.
    """

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self._history = history
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._depth = 0
        self._closed = False

    # hooks --------------------------------------------------------------------------
    def _tx_begin(self, depth: int) -> None:
        """Start the transaction (depth 1) or a savepoint (depth > 1)."""
        raise NotImplementedError

    def _tx_commit(self, depth: int) -> None:
        raise NotImplementedError

    def _tx_rollback(self, depth: int) -> None:
        raise NotImplementedError

    def _current_revision(self) -> int:
        raise NotImplementedError

    def _compacted_revision(self) -> int:
        """The newest revision no longer in the event history (0: nothing dropped)."""
        raise NotImplementedError

    def _events_after(self, since: int, prefix: str) -> builtins.list[Event]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _describe(self) -> str:
        return type(self).__name__

    # shared -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"store {self._describe()} is closed")

    @contextmanager
    def txn(self) -> Iterator[None]:
        with self._lock:
            self._check_open()
            depth = self._depth + 1
            self._tx_begin(depth)
            self._depth = depth
            try:
                try:
                    yield
                except BaseException:
                    self._tx_rollback(depth)
                    raise
                try:
                    self._tx_commit(depth)
                except BaseException:
                    self._tx_rollback(depth)
                    raise
            finally:
                self._depth = depth - 1
            if depth == 1:
                self._cond.notify_all()

    def revision(self) -> int:
        with self._lock:
            self._check_open()
            return self._current_revision()

    def watch(self, prefix: str, since: int, timeout: float | None = None) -> builtins.list[Event]:
        since = max(0, since)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._depth:
                raise RuntimeError("watch() inside txn() would wait for its own transaction")
            while True:
                self._check_open()
                compacted = self._compacted_revision()
                if since < compacted:
                    raise Compacted(since, compacted)
                events = self._events_after(since, prefix)
                if events:
                    return events
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    self._cond.wait(remaining)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._depth:
                raise RuntimeError("close() inside txn()")
            self._closed = True
            try:
                self._close()
            finally:
                self._cond.notify_all()
