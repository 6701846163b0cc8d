"""Docker Engine API routes: exec: create, start (a hijacked stream), inspect, resize.

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

import socket
import threading

from ..backend import Backend
from ...runtime.streams import close_write, pump_exec
from .. import schema, wire
from ..http import Handler, Request, Response
from ._common import _reap_exec, _size


def exec_create(engine: Backend, req: Request, ref: str) -> Response:
    body = wire.body_object(req, "exec create")
    rec = engine.exec_create(ref, schema._str_list(body.get("Cmd"), "Cmd"), schema._str_list(body.get("Env"), "Env"),
                             wire.string(body.get("WorkingDir"), "WorkingDir"), tty=wire.boolean(body.get("Tty"), "Tty"),
                             stdin=wire.boolean(body.get("AttachStdin"), "AttachStdin"),
                             stdout=wire.boolean(body.get("AttachStdout"), "AttachStdout", default=True),
                             stderr=wire.boolean(body.get("AttachStderr"), "AttachStderr", default=True))
    return Response.json({"Id": rec.id}, 201)


def exec_start(engine: Backend, req: Request, exec_id: str) -> Response:
    body = wire.body_object(req, "exec start")
    detach = wire.boolean(body.get("Detach"), "Detach")
    wire.boolean(body.get("Tty"), "Tty")
    rec = engine.find_exec(exec_id)
    handle = engine.exec_start(exec_id)
    if detach:
        threading.Thread(target=_reap_exec, args=(engine, exec_id, handle), daemon=True).start()
        return Response.empty(200)

    def run(sock: socket.socket, leftover: bytes) -> None:
        try:
            pump_exec(handle, sock, leftover, rec.tty, rec.stdin)
        finally:
            engine.exec_finished(exec_id, handle.wait())
        close_write(sock)

    return Response(hijack=run, content_type="application/vnd.docker.raw-stream" if rec.tty
                    else "application/vnd.docker.multiplexed-stream")


def exec_inspect(engine: Backend, req: Request, exec_id: str) -> Response:
    rec = engine.find_exec(exec_id)
    return Response.json({"ID": rec.id, "ContainerID": rec.container_id, "Running": rec.running,
                          "ExitCode": rec.exit_code, "Pid": rec.pid,
                          "ProcessConfig": {"entrypoint": rec.cmd[0], "arguments": rec.cmd[1:], "tty": rec.tty},
                          "OpenStdin": rec.stdin, "OpenStdout": rec.stdout, "OpenStderr": rec.stderr})


def exec_resize(engine: Backend, req: Request, exec_id: str) -> Response:
    engine.resize_exec(exec_id, _size(req, "h"), _size(req, "w"))
    return Response(body=b"", content_type="text/plain; charset=utf-8")


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/containers/{ref}/exec", exec_create),
    ("POST", "/exec/{exec_id}/start", exec_start),
    ("GET", "/exec/{exec_id}/json", exec_inspect),
    ("POST", "/exec/{exec_id}/resize", exec_resize),
]
