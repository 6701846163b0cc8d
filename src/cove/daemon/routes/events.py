"""Docker Engine API routes: the event stream (``GET /events``).

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

from ..backend import Backend
from ...events import EventFilter, parse_timestamp
from ..http import Handler, Request, Response
from ._common import _filters


def events(engine: Backend, req: Request) -> Response:
    since = parse_timestamp(req.arg("since"), "since")
    until = parse_timestamp(req.arg("until"), "until")
    sub = engine.events.subscribe(since, until, EventFilter(_filters(req)))
    return Response(stream=sub.json_lines(), on_hangup=sub.close)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/events", events),
]
