"""What the route modules share: the API version, filter and size parsing, exec reaping."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidArgument
from ..backend import Backend
from ...events import parse_filters
from .. import wire
from ..http import Request

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
    engine.exec_finished(exec_id, handle.popen.wait())
