"""Intent records: what an operation is about to do to the kernel, made durable before it does it.

A ``kill -9`` can land between any two steps of an operation, and the kernel
keeps what the dead daemon made while the store keeps only what it wrote.  Some
steps cannot be made one (the kernel ignores ``IFLA_IFALIAS`` in the request
that creates a link, so a veth or bridge exists untagged for a moment, where
garbage collection, which goes by tag, never finds it).  So an operation that
changes the kernel first writes an intent, ``intents/<id>`` = ``{"kind": ...}``
with what it needs to undo or finish the work (the endpoint with its host-side
interface name, the network with its bridge name), and deletes it in the same
store transaction as its last record.  An intent still there at start-up is an
operation the daemon died in; :meth:`cove.engine.reconcile.Reconciler.replay_intents`
turns each into the whole operation or none of it:

- ``attach`` (an endpoint being made, by ``run``/``start`` or ``connect``): none of
  it, unless its endpoint record was written;
- ``connect``: none of it, unless the container's record names the network;
- ``disconnect``: all of it (the interface may already be gone);
- ``network-create``: none of it, unless the network's record was written.

The operation was not acknowledged to its client before its intent was cleared,
so either outcome is one the client may see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..store import Store

PREFIX = "intents/"


def begin(store: Store, kind: str, **data: Any) -> str:
    """Record that ``kind`` is about to happen; returns the key to clear when it is done."""
    key = f"{PREFIX}{os.urandom(8).hex()}"
    store.put(key, {"kind": kind, **data})
    return key


def clear(store: Store, key: str) -> None:
    store.delete(key)


@contextmanager
def failing_clears(store: Store, key: str) -> Iterator[None]:
    """A failure (the operation's own undo has run) clears the intent: nothing is left to replay."""
    try:
        yield
    except BaseException:
        store.delete(key)
        raise


def pending(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """The intents a dead daemon left, oldest revision first."""
    return [(e.key, e.value) for e in sorted(store.list(PREFIX), key=lambda e: e.revision)]
