"""cove's persistent state: a key/value store with revisions (see :mod:`.base`).

:func:`open_store` picks the backend from a URL: ``sqlite:///abs/path.db`` for
the daemon, ``memory://`` for tests.  An etcd backend for multi-host will be
``etcd://h1:2379,h2:2379`` opens :class:`~cove.store.etcd.EtcdStore` (the cluster store).
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
    if url.startswith("etcd://"):
        from .etcd import EtcdStore  # noqa: PLC0415  (only cluster daemons need it)
        return EtcdStore.from_url(url, "store")
    raise field_error("store", url, "unsupported store URL; use sqlite:///ABSOLUTE/PATH.db, memory:// "
                      "or etcd://HOST:PORT[,HOST:PORT...]")
