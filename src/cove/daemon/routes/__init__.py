"""The Docker Engine API routes cove serves: one module per resource, each a flat table.

Handlers translate wire JSON to engine calls and back (shapes in
:mod:`cove.daemon.schema`), nothing more; errors propagate as
:class:`cove.errors.CoveError` and :func:`cove.daemon.http.error_response` turns
them into ``{"message": ...}`` with the status of their category.  Each module
(:mod:`.system`, :mod:`.events`, :mod:`.networks`, :mod:`.containers`,
:mod:`.exec`, :mod:`.images`) holds module-level handlers ``handler(engine, req,
*path_params)`` and a ``ROUTES`` table; :func:`build_router` binds them to one
engine.
"""

from __future__ import annotations

from functools import partial

from ..backend import Backend
from ..http import Router
from ..settings import Settings
from . import containers, events, images, networks, sandboxes, stats, system, volumes
from . import exec as exec_routes
from ._common import API_VERSION, MIN_API_VERSION

__all__ = ["API_VERSION", "MIN_API_VERSION", "build_router"]


def build_router(engine: Backend, settings: Settings | None = None) -> Router:
    r = Router()
    for module in (events, system, networks, containers, exec_routes, images, sandboxes, volumes, stats):
        for method, path, handler in module.ROUTES:
            r.add(method, path, partial(handler, engine), stream_body=(method, path) in images.STREAMED_BODY)
    r.add("GET", "/info", partial(system.info, engine, settings=settings))
    return r
