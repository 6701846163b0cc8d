"""The SQLite :class:`~cove.store.base.Store`: cove's state on one host.

One file (mode 0600, parent directories made as needed), WAL journal with
``synchronous=NORMAL`` (a commit is a write to the log, not an fsync, so a
put takes microseconds; a power cut may lose the last commits but never
corrupts the file).  One connection shared by the daemon's threads, guarded by
the re-entrant lock of :class:`~cove.store.base.LocalStore`; a transaction is
``BEGIN IMMEDIATE`` .. ``COMMIT`` and a nested one a ``SAVEPOINT``.

Tables: ``kv`` (key, JSON value, revision of its last put), ``events`` (one row
per change, trimmed to the history size) and ``meta`` (the global revision and
the newest revision trimmed from ``events``).  Watchers are woken in-process,
so the file is meant for one daemon at a time.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from typing import Any, Literal

from .. import crashpoint
from .base import (DEFAULT_HISTORY, Entry, Event, LocalStore, check_expect, check_key, decode_value,
                   encode_value)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', 1), ('revision', 0), ('compacted', 0);
"""


class SqliteStore(LocalStore):
    """A :class:`~cove.store.base.Store` in one SQLite file."""

    def __init__(self, path: str, history: int = DEFAULT_HISTORY) -> None:
        super().__init__(history)
        self.path = path
        self._slack = min(1000, history // 10)
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        self._conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.close()
            raise

    def _describe(self) -> str:
        return f"sqlite://{self.path}"

    # reads --------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        with self._lock:
            self._check_open()
            row = self._conn.execute("SELECT value, revision FROM kv WHERE key = ?", (key,)).fetchone()
            return None if row is None else Entry(key, decode_value(row[0]), row[1])

    def list(self, prefix: str) -> builtins.list[Entry]:
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT key, value, revision FROM kv WHERE key >= ? AND substr(key, 1, ?) = ? ORDER BY key",
                (prefix, len(prefix), prefix)).fetchall()
            return [Entry(k, decode_value(v), r) for k, v, r in rows]

    # writes -------------------------------------------------------------------------
    def _key_revision(self, key: str) -> int | None:
        row = self._conn.execute("SELECT revision FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _meta(self, name: str) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0])

    def _bump(self, kind: Literal["put", "delete"], key: str, text: str | None) -> int:
        rev = self._meta("revision") + 1
        self._conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (rev,))
        self._conn.execute("INSERT INTO events (revision, kind, key, value) VALUES (?, ?, ?, ?)",
                           (rev, kind, key, text))
        return rev

    def put(self, key: str, value: dict[str, Any], *, expect: int | None = None) -> int:
        text = encode_value(check_key(key), value)
        with self.txn():
            check_expect(key, self._key_revision(key), expect)
            rev = self._bump("put", key, text)
            self._conn.execute("INSERT INTO kv (key, value, revision) VALUES (?, ?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision",
                               (key, text, rev))
            return rev

    def delete(self, key: str, *, expect: int | None = None) -> bool:
        check_key(key)
        with self.txn():
            current = self._key_revision(key)
            check_expect(key, current, expect)
            if current is None:
                return False
            self._bump("delete", key, None)
            self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            return True

    # transaction hooks --------------------------------------------------------------
    def _tx_begin(self, depth: int) -> None:
        self._conn.execute("BEGIN IMMEDIATE" if depth == 1 else f"SAVEPOINT s{depth}")

    def _tx_commit(self, depth: int) -> None:
        if depth > 1:
            self._conn.execute(f"RELEASE s{depth}")
            return
        self._trim()
        self._conn.execute("COMMIT")
        crashpoint.reached("store commit")

    def _tx_rollback(self, depth: int) -> None:
        if not self._conn.in_transaction:
            return
        if depth == 1:
            self._conn.execute("ROLLBACK")
        else:
            self._conn.execute(f"ROLLBACK TO s{depth}")
            self._conn.execute(f"RELEASE s{depth}")

    def _trim(self) -> None:
        rev, compacted = self._meta("revision"), self._meta("compacted")
        if rev - compacted > self._history + self._slack:
            cut = rev - self._history
            self._conn.execute("DELETE FROM events WHERE revision <= ?", (cut,))
            self._conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (cut,))

    # watch hooks --------------------------------------------------------------------
    def _current_revision(self) -> int:
        return self._meta("revision")

    def _compacted_revision(self) -> int:
        return self._meta("compacted")

    def _events_after(self, since: int, prefix: str) -> builtins.list[Event]:
        rows = self._conn.execute(
            "SELECT revision, kind, key, value FROM events WHERE revision > ? AND substr(key, 1, ?) = ? "
            "ORDER BY revision", (since, len(prefix), prefix)).fetchall()
        return [Event(kind, key, None if text is None else decode_value(text), rev) for rev, kind, key, text in rows]

    def _close(self) -> None:
        self._conn.close()
