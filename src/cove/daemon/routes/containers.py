"""Docker Engine API routes: containers: create, inspect, start/stop/kill, wait, logs, attach, top,
and ``cove attach`` interfaces (a cove extension).

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

from ... import pipework
from ...errors import InvalidArgument, NotFound, NotImplementedByCove
from ..backend import Backend
from ...runtime.proc import descendants
from ...runtime.streams import close_write, frame, pump_to_fifo
from .. import schema, wire
from ..listfilters import ContainerRow, select_containers
from ..http import Handler, Request, Response
from ._common import _filters, _size, read_view


def containers_list(engine: Backend, req: Request) -> Response:
    f = _filters(req)
    limit = wire.query_int(req, "limit", -1, 2**31 - 1) or 0
    return Response.json(read_view(engine, lambda: _list_containers(engine, req, f, limit)))


def _list_containers(engine: Backend, req: Request, f: dict[str, list[str]], limit: int) -> list[dict[str, Any]]:
    cs = sorted(list(engine.containers.values()), key=lambda c: c.created, reverse=True)
    rows = [ContainerRow(schema.container_summary(engine, c), c.state.exit_code,
                         not c.state.started_at.startswith("0001"),
                         health=(c.state.health.get("Status") or "none") if c.running else "none",
                         volumes=tuple(x for m in c.host_config.mounts for x in (m["Source"], m["Target"])))
            for c in cs]
    ids = [c.id for c in cs]

    def index_of(ref: str) -> int:
        cid = engine.find_container(ref).id
        if cid not in ids:
            raise KeyError(cid)        # created after the list was taken: read again (cove.daemon.routes._common)
        return ids.index(cid)

    def image_id_of(ref: str) -> str | None:
        try:
            return engine.images.get(ref).id
        except NotFound:
            return None

    return select_containers(rows, f, all_=req.flag("all"), limit=limit, index_of=index_of,
                             image_id_of=image_id_of)


def container_create(engine: Backend, req: Request) -> Response:
    config, host, endpoints = schema.container_request(wire.body_object(req, "container create"))
    c = engine.create_container(req.arg("name"), config, host, endpoints)
    return Response.json({"Id": c.id, "Warnings": []}, 201)


def container_inspect(engine: Backend, req: Request, ref: str) -> Response:
    return Response.json(read_view(engine, lambda: schema.container_json(engine, engine.find_container(ref))))


def container_start(engine: Backend, req: Request, ref: str) -> Response:
    return Response.empty(204 if engine.start_container(ref) else 304)


def container_stop(engine: Backend, req: Request, ref: str) -> Response:
    t = wire.query_int(req, "t", -1, STOP_TIMEOUT_MAX)
    return Response.empty(204 if engine.stop_container(ref, _timeout(t)) else 304)


#: the longest ``stop?t=`` (seconds) cove accepts: a day
STOP_TIMEOUT_MAX = 86400


def _timeout(t: int | None) -> float | None:
    """``t=-1`` is Docker's "wait for the process forever": the longest wait cove has."""
    if t is None:
        return None
    return float(STOP_TIMEOUT_MAX if t < 0 else t)


def container_restart(engine: Backend, req: Request, ref: str) -> Response:
    t = wire.query_int(req, "t", -1, STOP_TIMEOUT_MAX)
    engine.restart_container(ref, _timeout(t))
    return Response.empty()


def container_kill(engine: Backend, req: Request, ref: str) -> Response:
    engine.kill_container(ref, req.arg("signal"))
    return Response.empty()


def container_wait(engine: Backend, req: Request, ref: str) -> Response:
    block = engine.wait_container(ref, req.arg("condition") or "not-running")

    def body() -> Iterator[bytes]:   # headers go out first: the wait is registered
        yield (json.dumps({"StatusCode": block(None), "Error": None}) + "\n").encode()

    return Response(stream=body())


def container_delete(engine: Backend, req: Request, ref: str) -> Response:
    engine.remove_container(ref, force=req.flag("force"), volumes=req.flag("v"))
    return Response.empty()


def container_rename(engine: Backend, req: Request, ref: str) -> Response:
    new = req.arg("name")
    if not new:
        raise InvalidArgument("invalid name: the new name is required")
    engine.rename_container(ref, new)
    return Response.empty()


def container_top(engine: Backend, req: Request, ref: str) -> Response:
    with engine.lock:
        c = engine.find_container(ref)
        if not c.running:
            raise InvalidArgument(f"Container {c.id} is not running")
        pid = c.state.pid
    procs = []
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        procs.append(["root", str(p), cmd])
    return Response.json({"Titles": ["UID", "PID", "CMD"], "Processes": procs})


def container_logs(engine: Backend, req: Request, ref: str) -> Response:
    with engine.lock:
        c = engine.find_container(ref)
        tty = c.config.tty
        if c.host_config.log_config.get("Type") == "none":
            raise NotImplementedByCove("configured logging driver does not support reading")
    want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
    # the last lines are read from the end of the logs, not the whole of them
    tail = None if req.arg("tail") in (None, "", "all") else wire.query_int(req, "tail", -(2**31), 2**31 - 1)
    it = engine.logs(ref, follow=req.flag("follow"), tail=None if tail is None else max(tail, 0),
                     timestamps=req.flag("timestamps"))

    def gen() -> Iterator[bytes]:
        for stream, data in it:
            if not want.get(stream, False):
                continue
            yield data if tty else frame(1 if stream == "stdout" else 2, data)

    ctype = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    return Response(stream=gen(), content_type=ctype)


def container_attach(engine: Backend, req: Request, ref: str) -> Response:
    with engine.lock:
        c = engine.find_container(ref)
        cid, tty, open_stdin = c.id, c.config.tty, c.config.open_stdin
        once = c.config.stdin_once and not tty
    stream_on = req.flag("stream")
    want_stdin = req.flag("stdin") and open_stdin and stream_on
    want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
    # Docker's attach: logs=1 replays what the container wrote so far, then (stream=1) what it
    # writes from now on; without logs, only what comes after the attach.  The position is
    # taken here, before the answer, so output written meanwhile is not lost.
    output = engine.logs(cid, follow=stream_on, tail=None if req.flag("logs") else 0)

    engine.attach_begin(cid)    # now, before the client starts the container

    def run(sock: socket.socket, leftover: bytes) -> None:
        try:
            if stream_on:
                with engine.lock:
                    engine.changed.wait_for(lambda: cid not in engine.containers or engine.containers[cid].running
                                            or engine.containers[cid].state.status == "exited", 300)
            if want_stdin:
                fifo = os.path.join(engine.cfg.container_state_dir(cid), "stdin")
                threading.Thread(target=pump_to_fifo, args=(sock, leftover, fifo, once), daemon=True).start()
            for stream, data in output:
                if want.get(stream, False):
                    sock.sendall(data if tty else frame(1 if stream == "stdout" else 2, data))
        except (NotFound, OSError):
            pass
        finally:
            engine.attach_end(cid)
        close_write(sock)

    return Response(hijack=run, content_type="application/vnd.docker.raw-stream" if tty
                    else "application/vnd.docker.multiplexed-stream")


def container_resize(engine: Backend, req: Request, ref: str) -> Response:
    engine.resize_container(ref, _size(req, "h"), _size(req, "w"))
    return Response(body=b"", content_type="text/plain; charset=utf-8")


def interfaces_list(engine: Backend, req: Request, ref: str) -> Response:
    with engine.lock:
        c = engine.find_container(ref)
        return Response.json([pipework.to_json(x) for x in engine.extra_interfaces(c.id)])


def interface_add(engine: Backend, req: Request, ref: str) -> Response:
    x = engine.add_interface(ref, pipework.parse_request(req.json()))
    return Response.json(pipework.to_json(x), 201)


def interface_remove(engine: Backend, req: Request, ref: str, ifname: str) -> Response:
    engine.remove_interface(ref, ifname)
    return Response.empty()


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/containers/json", containers_list),
    ("POST", "/containers/create", container_create),
    ("GET", "/containers/{ref}/json", container_inspect),
    ("POST", "/containers/{ref}/start", container_start),
    ("POST", "/containers/{ref}/stop", container_stop),
    ("POST", "/containers/{ref}/restart", container_restart),
    ("POST", "/containers/{ref}/kill", container_kill),
    ("POST", "/containers/{ref}/wait", container_wait),
    ("POST", "/containers/{ref}/rename", container_rename),
    ("GET", "/containers/{ref}/top", container_top),
    ("GET", "/containers/{ref}/logs", container_logs),
    ("POST", "/containers/{ref}/attach", container_attach),
    ("DELETE", "/containers/{ref}", container_delete),
    ("POST", "/containers/{ref}/resize", container_resize),
    ("GET", "/containers/{ref}/interfaces", interfaces_list),
    ("POST", "/containers/{ref}/interfaces", interface_add),
    ("DELETE", "/containers/{ref}/interfaces/{ifname}", interface_remove),
]
