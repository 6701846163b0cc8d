"""What the route modules share: the API version, filter and size parsing, exec reaping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import InvalidArgument
from ..backend import Backend
from ...events import parse_filters
from .. import wire
from ..http import Request

_T = TypeVar("_T")

#: tries of a read without the engine lock before it takes the lock
READ_TRIES = 3

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"


def _filters(req: Request) -> dict[str, list[str]]:
    return parse_filters(req.arg("filters"))


def _size(req: Request, name: str) -> int:
    """``h``/``w`` of a resize: an unsigned integer, as dockerd insists (400 otherwise)."""
    n = wire.query_int(req, name, 0, 0xFFFF)
    if n is None:
        raise InvalidArgument(f"invalid {name}: a terminal size (0-65535) is required")
    return n


def _reap_exec(engine: Backend, exec_id: str, handle: Any) -> None:
    engine.exec_finished(exec_id, handle.wait())


def read_view(engine: Backend, build: Callable[[], _T]) -> _T:
    """A read (``GET /containers/json``, ``/containers/{id}/json``, ``/networks``, ``/networks/{id}``)
    built from the records without the engine lock, so it never waits behind kernel work (issue 14),
    as dockerd answers them from its in-memory view.  It sees each record as some operation left it
    (a container being started shows its endpoints before it runs, as between two requests).  A
    writer changing a table under it (``RuntimeError``: changed size during iteration) or removing a
    record it was following (``KeyError``): built again; after :data:`READ_TRIES`, under the lock."""
    for _ in range(READ_TRIES):
        try:
            return build()
        except (RuntimeError, KeyError):
            continue
    with engine.lock:
        return build()
