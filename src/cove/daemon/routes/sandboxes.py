"""cove's own routes for external sandboxes (:mod:`cove.sandbox`): another runtime's namespaces on cove networks.

``POST /cove/sandboxes`` attaches, ``GET /cove/sandboxes[/{id}]`` lists / shows (with the kernel
check), ``DELETE /cove/sandboxes/{id}[?network=NET]`` detaches (idempotent, 204).
"""

from __future__ import annotations

from ... import sandbox
from ..backend import Backend
from ..http import Handler, Request, Response


def sandbox_attach(engine: Backend, req: Request) -> Response:
    return Response.json(engine.attach_sandbox(sandbox.parse_attach(req.json())), 201)


def sandbox_list(engine: Backend, req: Request) -> Response:
    return Response.json(engine.list_sandboxes())


def sandbox_inspect(engine: Backend, req: Request, sid: str) -> Response:
    return Response.json(engine.sandbox_status(sid))


def sandbox_detach(engine: Backend, req: Request, sid: str) -> Response:
    engine.detach_sandbox(sid, req.arg("network") or None)
    return Response.empty()


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/cove/sandboxes", sandbox_attach),
    ("GET", "/cove/sandboxes", sandbox_list),
    ("GET", "/cove/sandboxes/{sid}", sandbox_inspect),
    ("DELETE", "/cove/sandboxes/{sid}", sandbox_detach),
]
