"""Docker Engine API routes: volumes (local driver): create, inspect, list, remove, prune."""

from __future__ import annotations

from ...errors import InvalidArgument
from ...events import check_keys, labels_match
from ..backend import Backend
from .. import wire
from ..http import Handler, Request, Response
from ._common import _filters


def volumes_list(engine: Backend, req: Request) -> Response:
    f = _filters(req)
    check_keys(f, {"name", "driver", "label", "dangling"}, "volume")
    svc = engine.volume_svc
    with engine.lock:
        out = []
        for name, v in svc.volumes.items():
            if "name" in f and not any(w in name for w in f["name"]):
                continue
            if "driver" in f and v["Driver"] not in f["driver"]:
                continue
            if "label" in f and not labels_match(v["Labels"], f["label"]):
                continue
            if "dangling" in f:
                want = f["dangling"][-1].lower()
                if want not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter 'dangling={want}'")
                if (want in ("true", "1")) == bool(svc.users(name)):
                    continue
            out.append(v)
    return Response.json({"Volumes": sorted(out, key=lambda v: v["Name"]), "Warnings": None})


def volume_create(engine: Backend, req: Request) -> Response:
    body = wire.body_object(req, "volume create")
    name = wire.string(body.get("Name"), "Name")
    driver = wire.string(body.get("Driver"), "Driver") or "local"
    opts, labels = wire.str_map(body.get("DriverOpts"), "DriverOpts"), wire.str_map(body.get("Labels"), "Labels")
    return Response.json(engine.volume_svc.create(name, driver, opts, labels), 201)


def volume_inspect(engine: Backend, req: Request, name: str) -> Response:
    with engine.lock:
        return Response.json(engine.volume_svc.find(name))


def volume_delete(engine: Backend, req: Request, name: str) -> Response:
    engine.volume_svc.remove(name, force=req.flag("force"))
    return Response.empty()


def volumes_prune(engine: Backend, req: Request) -> Response:
    f = _filters(req)
    check_keys(f, {"label", "all"}, "volume prune")
    all_volumes = (f.get("all") or ["false"])[-1].lower() in ("true", "1")
    gone, freed = engine.volume_svc.prune(all_volumes, f.get("label"))
    return Response.json({"VolumesDeleted": gone, "SpaceReclaimed": freed})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/volumes", volumes_list),
    ("POST", "/volumes/create", volume_create),
    ("POST", "/volumes/prune", volumes_prune),
    ("GET", "/volumes/{name}", volume_inspect),
    ("DELETE", "/volumes/{name}", volume_delete),
]
