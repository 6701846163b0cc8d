"""The Docker Engine API routes cove serves, as one flat table.

Handlers translate wire JSON to engine calls and back (shapes in
:mod:`.schema`), nothing more; errors propagate as :class:`cove.errors.CoveError`
and :func:`.http.error_response` turns them into ``{"message": ...}`` with the
status of their category.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
from collections.abc import Iterator
from typing import Any

from .. import __version__, pipework
from ..errors import InvalidArgument, NotFound
from ..engine import Engine
from ..model import PREDEFINED
from ..events import EventFilter, parse_filters, parse_timestamp
from ..runtime.proc import descendants
from ..runtime.streams import close_write, frame, pump_exec, pump_to_fifo
from .info import kernel_features
from . import schema
from .listfilters import ContainerRow, NetworkRow, select_containers, select_networks
from .settings import Settings, effective
from .http import Request, Response, Router

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"


def _filters(req: Request) -> dict[str, list[str]]:
    return parse_filters(req.arg("filters"))


def _size(req: Request, name: str) -> int:
    """``h``/``w`` of a resize: an unsigned integer, as dockerd insists (400 otherwise)."""
    raw = req.arg(name)
    if raw is None or not raw.isdigit() or int(raw) > 0xFFFF:
        raise InvalidArgument(f"invalid {name}: {raw!r} is not a terminal size (0-65535)")
    return int(raw)


def build_router(engine: Engine, settings: Settings | None = None) -> Router:
    r = Router()
    E = engine

    # system -------------------------------------------------------------------------
    def ping(req: Request) -> Response:
        return Response(body=b"OK", content_type="text/plain; charset=utf-8",
                        headers=[("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")])

    def version(req: Request) -> Response:
        u = platform.uname()
        details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
                   "GoVersion": "python" + platform.python_version(), "Os": "linux",
                   "Arch": "amd64" if u.machine == "x86_64" else u.machine, "KernelVersion": u.release,
                   "Experimental": "false", "BuildTime": ""}
        return Response.json({
            "Platform": {"Name": "cove"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, **{k: v for k, v in details.items() if k != "Experimental"},
            "Experimental": False,
        })

    def info(req: Request) -> Response:
        with E.lock:
            cs = list(E.containers.values())
            running = sum(1 for c in cs if c.running)
            return Response.json({
                "ID": "cove", "Name": socket.gethostname(), "ServerVersion": __version__,
                "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": 0,
                "ContainersStopped": len(cs) - running, "Images": len(E.images.list()),
                "Driver": "overlay", "DockerRootDir": E.cfg.data_root, "OperatingSystem": platform.platform(),
                "KernelVersion": platform.release(), "OSType": "linux", "Architecture": platform.machine(),
                "NCPU": os.cpu_count(), "IPv4Forwarding": E.cfg.ip_forward,
                "NEventsListener": E.events.subscribers,
                "Plugins": {"Network": ["bridge", "host", "null"], "Volume": [], "Log": ["file"]},
                "FirewallBackend": {"Driver": E.driver_ctx.firewall.name},
                "CoveExecRoot": E.cfg.exec_root,
                "CoveSettings": effective(settings) if settings is not None else {},
                "CoveKernelFeatures": kernel_features(),
            })

    def events(req: Request) -> Response:
        since = parse_timestamp(req.arg("since"), "since")
        until = parse_timestamp(req.arg("until"), "until")
        sub = E.events.subscribe(since, until, EventFilter(_filters(req)))
        return Response(stream=sub.json_lines(), on_hangup=sub.close)

    r.add("GET", "/events", events)
    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)

    # networks -----------------------------------------------------------------------
    def networks_list(req: Request) -> Response:
        f = _filters(req)
        with E.lock:
            rows = [NetworkRow(schema.network_json(E, net, detail=False), net.name in PREDEFINED,
                               bool(E.endpoints_on(net.id))) for net in E.networks.values()]
        out = select_networks(rows, f)
        return Response.json(sorted(out, key=lambda n: n["Name"]))

    def network_inspect(req: Request, ref: str) -> Response:
        with E.lock:
            return Response.json(schema.network_json(E, E.find_network(ref)))

    def network_create(req: Request) -> Response:
        body = req.json()
        name = body.get("Name")
        if not name:
            raise InvalidArgument("invalid Name: a network name is required")
        net = E.create_network(name, body.get("Driver") or "bridge", schema.ipam_request(body),
                               internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
                               ipv6=bool(body.get("EnableIPv6")), options=body.get("Options") or {},
                               labels=body.get("Labels") or {})
        return Response.json({"Id": net.id, "Warning": ""}, 201)

    def network_delete(req: Request, ref: str) -> Response:
        E.remove_network(ref)
        return Response.empty()

    def network_connect(req: Request, ref: str) -> Response:
        body = req.json()
        E.connect(ref, body.get("Container") or "", schema.endpoint_request(body.get("EndpointConfig")))
        return Response.empty(200)

    def network_disconnect(req: Request, ref: str) -> Response:
        body = req.json()
        E.disconnect(ref, body.get("Container") or "", force=bool(body.get("Force")))
        return Response.empty(200)

    def network_prune(req: Request) -> Response:
        return Response.json({"NetworksDeleted": E.prune_networks()})

    r.add("GET", "/networks", networks_list)
    r.add("POST", "/networks/create", network_create)
    r.add("POST", "/networks/prune", network_prune)
    r.add("GET", "/networks/{ref}", network_inspect)
    r.add("DELETE", "/networks/{ref}", network_delete)
    r.add("POST", "/networks/{ref}/connect", network_connect)
    r.add("POST", "/networks/{ref}/disconnect", network_disconnect)

    # containers ---------------------------------------------------------------------
    def containers_list(req: Request) -> Response:
        f = _filters(req)
        limit_arg = req.arg("limit") or "0"
        try:
            limit = int(limit_arg)
        except ValueError:
            raise InvalidArgument(f"invalid limit: {limit_arg!r} is not an integer") from None
        with E.lock:
            cs = sorted(E.containers.values(), key=lambda c: c.created, reverse=True)
            rows = [ContainerRow(schema.container_summary(E, c), c.state.exit_code,
                                 not c.state.started_at.startswith("0001"))
                    for c in cs]
            ids = [c.id for c in cs]

            def index_of(ref: str) -> int:
                return ids.index(E.find_container(ref).id)

            def image_id_of(ref: str) -> str | None:
                try:
                    return E.images.get(ref).id
                except NotFound:
                    return None

            out = select_containers(rows, f, all_=req.flag("all"), limit=limit, index_of=index_of,
                                    image_id_of=image_id_of)
        return Response.json(out)

    def container_create(req: Request) -> Response:
        config, host, endpoints = schema.container_request(req.json())
        c = E.create_container(req.arg("name"), config, host, endpoints)
        return Response.json({"Id": c.id, "Warnings": []}, 201)

    def container_inspect(req: Request, ref: str) -> Response:
        with E.lock:
            return Response.json(schema.container_json(E, E.find_container(ref)))

    def container_start(req: Request, ref: str) -> Response:
        return Response.empty(204 if E.start_container(ref) else 304)

    def container_stop(req: Request, ref: str) -> Response:
        t = req.arg("t")
        return Response.empty(204 if E.stop_container(ref, float(t) if t else None) else 304)

    def container_restart(req: Request, ref: str) -> Response:
        t = req.arg("t")
        E.restart_container(ref, float(t) if t else None)
        return Response.empty()

    def container_kill(req: Request, ref: str) -> Response:
        E.kill_container(ref, req.arg("signal"))
        return Response.empty()

    def container_wait(req: Request, ref: str) -> Response:
        block = E.wait_container(ref, req.arg("condition") or "not-running")

        def body() -> Iterator[bytes]:   # headers go out first: the wait is registered
            yield (json.dumps({"StatusCode": block(None), "Error": None}) + "\n").encode()

        return Response(stream=body())

    def container_delete(req: Request, ref: str) -> Response:
        E.remove_container(ref, force=req.flag("force"))
        return Response.empty()

    def container_rename(req: Request, ref: str) -> Response:
        new = req.arg("name")
        if not new:
            raise InvalidArgument("invalid name: the new name is required")
        E.rename_container(ref, new)
        return Response.empty()

    def container_top(req: Request, ref: str) -> Response:
        with E.lock:
            c = E.find_container(ref)
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

    def container_logs(req: Request, ref: str) -> Response:
        with E.lock:
            c = E.find_container(ref)
            tty = c.config.tty
        want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
        it = E.logs(ref, follow=req.flag("follow"))
        tail = req.arg("tail")

        def gen() -> Iterator[bytes]:
            chunks = it
            if tail and tail != "all":
                chunks = iter(_tail_lines(list(it), int(tail)))
            for stream, data in chunks:
                if not want.get(stream, False):
                    continue
                yield data if tty else frame(1 if stream == "stdout" else 2, data)

        ctype = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        return Response(stream=gen(), content_type=ctype)

    def container_attach(req: Request, ref: str) -> Response:
        with E.lock:
            c = E.find_container(ref)
            cid, tty, open_stdin = c.id, c.config.tty, c.config.open_stdin
        want_stdin = req.flag("stdin") and open_stdin
        want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
        if not req.flag("stream"):
            raise InvalidArgument("invalid stream: cove supports attach with stream=1 only")

        E.attach_begin(cid)    # now, before the client starts the container

        def run(sock: socket.socket, leftover: bytes) -> None:
            try:
                with E.lock:
                    E.changed.wait_for(lambda: cid not in E.containers or E.containers[cid].running
                                       or E.containers[cid].state.status == "exited", 300)
                if want_stdin:
                    fifo = os.path.join(E.cfg.container_state_dir(cid), "stdin")
                    threading.Thread(target=pump_to_fifo, args=(sock, leftover, fifo), daemon=True).start()
                for stream, data in E.logs(cid, follow=True):
                    if want.get(stream, False):
                        sock.sendall(data if tty else frame(1 if stream == "stdout" else 2, data))
            except (NotFound, OSError):
                pass
            finally:
                E.attach_end(cid)
            close_write(sock)

        return Response(hijack=run, content_type="application/vnd.docker.raw-stream" if tty
                        else "application/vnd.docker.multiplexed-stream")

    r.add("GET", "/containers/json", containers_list)
    r.add("POST", "/containers/create", container_create)
    r.add("GET", "/containers/{ref}/json", container_inspect)
    r.add("POST", "/containers/{ref}/start", container_start)
    r.add("POST", "/containers/{ref}/stop", container_stop)
    r.add("POST", "/containers/{ref}/restart", container_restart)
    r.add("POST", "/containers/{ref}/kill", container_kill)
    r.add("POST", "/containers/{ref}/wait", container_wait)
    r.add("POST", "/containers/{ref}/rename", container_rename)
    r.add("GET", "/containers/{ref}/top", container_top)
    r.add("GET", "/containers/{ref}/logs", container_logs)
    r.add("POST", "/containers/{ref}/attach", container_attach)
    r.add("DELETE", "/containers/{ref}", container_delete)

    def container_resize(req: Request, ref: str) -> Response:
        E.resize_container(ref, _size(req, "h"), _size(req, "w"))
        return Response(body=b"", content_type="text/plain; charset=utf-8")

    r.add("POST", "/containers/{ref}/resize", container_resize)

    # pipework-style extra interfaces (`cove attach`): a cove extension ----------------
    def interfaces_list(req: Request, ref: str) -> Response:
        with E.lock:
            c = E.find_container(ref)
            return Response.json([pipework.to_json(x) for x in E.extra_interfaces(c.id)])

    def interface_add(req: Request, ref: str) -> Response:
        x = E.add_interface(ref, pipework.parse_request(req.json()))
        return Response.json(pipework.to_json(x), 201)

    def interface_remove(req: Request, ref: str, ifname: str) -> Response:
        E.remove_interface(ref, ifname)
        return Response.empty()

    r.add("GET", "/containers/{ref}/interfaces", interfaces_list)
    r.add("POST", "/containers/{ref}/interfaces", interface_add)
    r.add("DELETE", "/containers/{ref}/interfaces/{ifname}", interface_remove)

    # exec ---------------------------------------------------------------------------
    def exec_create(req: Request, ref: str) -> Response:
        body = req.json()
        rec = E.exec_create(ref, schema._str_list(body.get("Cmd"), "Cmd"), schema._str_list(body.get("Env"), "Env"),
                            body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
                            stdin=bool(body.get("AttachStdin")), stdout=body.get("AttachStdout", True),
                            stderr=body.get("AttachStderr", True))
        return Response.json({"Id": rec.id}, 201)

    def exec_start(req: Request, exec_id: str) -> Response:
        body = req.json()
        rec = E.find_exec(exec_id)
        handle = E.exec_start(exec_id)
        if body.get("Detach"):
            threading.Thread(target=_reap_exec, args=(E, exec_id, handle), daemon=True).start()
            return Response.empty(200)

        def run(sock: socket.socket, leftover: bytes) -> None:
            try:
                pump_exec(handle, sock, leftover, rec.tty, rec.stdin)
            finally:
                E.exec_finished(exec_id, handle.popen.wait())
            close_write(sock)

        return Response(hijack=run, content_type="application/vnd.docker.raw-stream" if rec.tty
                        else "application/vnd.docker.multiplexed-stream")

    def exec_inspect(req: Request, exec_id: str) -> Response:
        rec = E.find_exec(exec_id)
        return Response.json({"ID": rec.id, "ContainerID": rec.container_id, "Running": rec.running,
                              "ExitCode": rec.exit_code, "Pid": rec.pid,
                              "ProcessConfig": {"entrypoint": rec.cmd[0], "arguments": rec.cmd[1:], "tty": rec.tty},
                              "OpenStdin": rec.stdin, "OpenStdout": rec.stdout, "OpenStderr": rec.stderr})

    r.add("POST", "/containers/{ref}/exec", exec_create)
    r.add("POST", "/exec/{exec_id}/start", exec_start)
    r.add("GET", "/exec/{exec_id}/json", exec_inspect)

    def exec_resize(req: Request, exec_id: str) -> Response:
        E.resize_exec(exec_id, _size(req, "h"), _size(req, "w"))
        return Response(body=b"", content_type="text/plain; charset=utf-8")

    r.add("POST", "/exec/{exec_id}/resize", exec_resize)

    # images -------------------------------------------------------------------------
    def image_create(req: Request) -> Response:
        if req.arg("fromSrc") != "-":
            raise NotFound("cove has no registry to pull from: import a root filesystem with "
                           "`cove import FILE NAME` (POST /images/create?fromSrc=-)")
        import io

        repo = req.arg("repo") or ""
        tag = req.arg("tag") or "latest"
        if ":" in repo and "/" not in repo.rsplit(":", 1)[1]:
            repo, tag = repo.rsplit(":", 1)
        img = E.images.import_tar(io.BytesIO(req.body), repo, tag, req.query.get("changes", []))
        return Response(body=(json.dumps({"status": img.id}) + "\n").encode())

    def images_list(req: Request) -> Response:
        import fnmatch

        f = _filters(req)
        unknown = sorted(set(f) - {"reference", "dangling", "label"})
        if unknown:
            raise InvalidArgument(f"invalid filter {unknown[0]!r}: cove filters images by reference, dangling, label")
        out = []
        for img in E.images.list():
            if "reference" in f and not any(
                    fnmatch.fnmatchcase(name, pat) for pat in f["reference"]
                    for tag in img.repo_tags for name in (tag, tag.rpartition(":")[0])):
                continue
            if "dangling" in f and (f["dangling"][0] in ("true", "1")) != (not img.repo_tags):
                continue
            if "label" in f:                # imported images carry no labels
                continue
            out.append({"Id": img.id, "RepoTags": list(img.repo_tags), "Created": int(img.created),
                        "Size": img.size, "VirtualSize": img.size, "Labels": {}, "ParentId": "",
                        "RepoDigests": [], "SharedSize": -1, "Containers": -1})
        return Response.json(out)

    def image_inspect(req: Request, ref: str) -> Response:
        img = E.images.get(ref)
        return Response.json({"Id": img.id, "RepoTags": list(img.repo_tags), "Created": img.created,
                              "Size": img.size, "Os": "linux", "Architecture": "amd64",
                              "Config": {"Cmd": None, "Env": None, **img.config},
                              "RootFS": {"Type": "layers", "Layers": []},
                              "CoveRootfs": img.rootfs})

    def image_delete(req: Request, ref: str) -> Response:
        img = E.images.get(ref)
        with E.lock:
            users = [c.name for c in E.containers.values() if c.config.image_id == img.id]
        if users and not req.flag("force"):
            from ..errors import Conflict

            raise Conflict(f"conflict: unable to remove image {ref}: image is being used by container(s) "
                           + ", ".join(users))
        E.images.remove(ref, force=req.flag("force"))
        return Response.json([{"Untagged": ref}])

    def image_tag(req: Request, ref: str) -> Response:
        E.images.tag(ref, req.arg("repo") or "", req.arg("tag") or "latest")
        return Response.empty(201)

    r.add("POST", "/images/create", image_create)
    r.add("GET", "/images/json", images_list)
    r.add("GET", "/images/{ref}/json", image_inspect)
    r.add("DELETE", "/images/{ref}", image_delete)
    r.add("POST", "/images/{ref}/tag", image_tag)
    return r


def _tail_lines(chunks: list[tuple[str, bytes]], n: int) -> list[tuple[str, bytes]]:
    lines: list[tuple[str, bytes]] = []
    for stream, data in chunks:
        for line in data.splitlines(keepends=True):
            lines.append((stream, line))
    return lines[-n:] if n > 0 else []


def _reap_exec(engine: Engine, exec_id: str, handle: Any) -> None:
    engine.exec_finished(exec_id, handle.popen.wait())
