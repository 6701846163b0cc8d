"""An in-memory :class:`~cove.store.base.Store`, for tests and fakes.

Same semantics as the SQLite backend (revisions, compare-and-swap, atomic and
nested transactions, watch with a bounded history), nothing written anywhere.
Values are kept as JSON text, so what comes back is a fresh copy exactly as
a persistent backend would return it.
"""

from __future__ import annotations

import builtins
from typing import Any, Literal

from .base import (DEFAULT_HISTORY, Entry, Event, LocalStore, check_expect, check_key, decode_value,
                   encode_value)

#: one change as kept in the history: (revision, kind, key, JSON value or None)
_Change = tuple[int, Literal["put", "delete"], str, str | None]


class MemoryStore(LocalStore):
    """A dict with revisions, an undo log for transactions and a list of events."""

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        super().__init__(history)
        self._data: dict[str, tuple[str, int]] = {}
        self._rev = 0
        self._compacted = 0
        self._events: list[_Change] = []          # committed, contiguous revisions
        self._slack = min(1000, history // 10)
        # open transaction: undo log (key, previous (value, revision) or None) and unpublished events
        self._undo: list[tuple[str, tuple[str, int] | None]] = []
        self._pending: list[_Change] = []
        self._marks: list[tuple[int, int, int]] = []

    # reads --------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        with self._lock:
            self._check_open()
            cur = self._data.get(key)
            return None if cur is None else Entry(key, decode_value(cur[0]), cur[1])

    def list(self, prefix: str) -> builtins.list[Entry]:
        with self._lock:
            self._check_open()
            keys = sorted(k for k in self._data if k.startswith(prefix))
            return [Entry(k, decode_value(self._data[k][0]), self._data[k][1]) for k in keys]

    # writes -------------------------------------------------------------------------
    def put(self, key: str, value: dict[str, Any], *, expect: int | None = None) -> int:
        text = encode_value(check_key(key), value)
        with self.txn():
            cur = self._data.get(key)
            check_expect(key, None if cur is None else cur[1], expect)
            return self._change("put", key, text)

    def delete(self, key: str, *, expect: int | None = None) -> bool:
        check_key(key)
        with self.txn():
            cur = self._data.get(key)
            check_expect(key, None if cur is None else cur[1], expect)
            if cur is None:
                return False
            self._change("delete", key, None)
            return True

    def _change(self, kind: Literal["put", "delete"], key: str, text: str | None) -> int:
        self._undo.append((key, self._data.get(key)))
        self._rev += 1
        if text is None:
            del self._data[key]
        else:
            self._data[key] = (text, self._rev)
        self._pending.append((self._rev, kind, key, text))
        return self._rev

    # transaction hooks --------------------------------------------------------------
    def _tx_begin(self, depth: int) -> None:
        self._marks.append((len(self._undo), len(self._pending), self._rev))

    def _tx_commit(self, depth: int) -> None:
        self._marks.pop()
        if depth == 1:
            self._events.extend(self._pending)
            self._pending.clear()
            self._undo.clear()
            if len(self._events) > self._history + self._slack:
                drop = len(self._events) - self._history
                self._compacted = self._events[drop - 1][0]
                del self._events[:drop]

    def _tx_rollback(self, depth: int) -> None:
        undo_len, pending_len, rev = self._marks.pop()
        while len(self._undo) > undo_len:
            key, old = self._undo.pop()
            if old is None:
                self._data.pop(key, None)
            else:
                self._data[key] = old
        del self._pending[pending_len:]
        self._rev = rev

    # watch hooks --------------------------------------------------------------------
    def _current_revision(self) -> int:
        return self._rev

    def _compacted_revision(self) -> int:
        return self._compacted

    def _events_after(self, since: int, prefix: str) -> builtins.list[Event]:
        if not self._events:
            return []
        start = max(0, since + 1 - self._events[0][0])
        return [Event(kind, key, None if text is None else decode_value(text), rev)
                for rev, kind, key, text in self._events[start:] if key.startswith(prefix)]

    def _close(self) -> None:
        self._data.clear()
        self._events.clear()
