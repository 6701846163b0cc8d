"""cove's persistent state: a key/value store with revisions (see :mod:`.base`).

:func:`open_store` picks the backend from a URL: ``sqlite:///abs/path.db`` for
the daemon, ``memory://`` for tests.  An etcd backend for multi-host will be
one more scheme here, implementing the same :class:`Store` protocol.
"""

from __future__ import annotations

import os

from ..errors import field_error
from .base import Compacted, Entry, Event, Store
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["Store", "Entry", "Event", "Compacted", "SqliteStore", "MemoryStore", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///ABSOLUTE/PATH.db`` or ``memory://``."""
    if url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if not path.startswith("/") or path == "/":
            raise field_error("store", url, "the SQLite path must be absolute, e.g. sqlite:///var/lib/cove/cove.db")
        if path.endswith("/"):
            raise field_error("store", url, "the SQLite path names a directory, not a file")
        return SqliteStore(os.path.normpath(path))
    raise field_error("store", url, "unsupported store URL; use sqlite:///ABSOLUTE/PATH.db or memory://")
