"""Docker Engine API routes: images: import, list, inspect, remove, tag.

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ...errors import InvalidArgument, NotFound
from ...model import parse_bool
from ..backend import Backend
from ..http import Handler, Request, Response
from ._common import _filters


def image_create(engine: Backend, req: Request) -> Response:
    if req.arg("fromSrc") != "-":
        raise NotFound("cove has no registry to pull from: import a root filesystem with "
                       "`cove import FILE NAME` (POST /images/create?fromSrc=-)")
    repo = req.arg("repo") or ""
    tag = req.arg("tag") or "latest"
    if ":" in repo and "/" not in repo.rsplit(":", 1)[1]:
        repo, tag = repo.rsplit(":", 1)
    img = engine.images.import_tar(req.stream(), repo, tag, req.query.get("changes", []),
                                   devices=req.flag("allowDevices"))
    return Response(body=(json.dumps({"status": img.id}) + "\n").encode())


def images_list(engine: Backend, req: Request) -> Response:
    import fnmatch

    f = _filters(req)
    unknown = sorted(set(f) - {"reference", "dangling", "label"})
    if unknown:
        raise InvalidArgument(f"invalid filter {unknown[0]!r}: cove filters images by reference, dangling, label")
    out = []
    for img in engine.images.list():
        if "reference" in f and not any(
                fnmatch.fnmatchcase(name, pat) for pat in f["reference"]
                for tag in img.repo_tags for name in (tag, tag.rpartition(":")[0])):
            continue
        if "dangling" in f and parse_bool("filter dangling", f["dangling"][0]) != (not img.repo_tags):
            continue
        if "label" in f:                # imported images carry no labels
            continue
        out.append({"Id": img.id, "RepoTags": list(img.repo_tags), "Created": int(img.created),
                    "Size": img.size, "VirtualSize": img.size, "Labels": {}, "ParentId": "",
                    "RepoDigests": [], "SharedSize": -1, "Containers": -1})
    return Response.json(out)


def image_inspect(engine: Backend, req: Request, ref: str) -> Response:
    img = engine.images.get(ref)
    created = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(img.created))
               + f".{int(img.created % 1 * 1e9):09d}Z")
    config = image_config(img.config)
    # Docker 20.10's shape: an imported image has an empty ContainerConfig (the build container's
    # config); docker-compose reads ContainerConfig.Volumes when it recreates a container
    return Response.json({"Id": img.id, "RepoTags": list(img.repo_tags), "RepoDigests": [], "Parent": "",
                          "Comment": "Imported from -", "Created": created, "Container": "",
                          "ContainerConfig": image_config({}), "DockerVersion": "", "Author": "",
                          "Config": config, "Architecture": "amd64", "Os": "linux",
                          "Size": img.size, "VirtualSize": img.size,
                          "GraphDriver": {"Name": "overlay2", "Data": None},
                          "RootFS": {"Type": "layers", "Layers": []},
                          "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
                          "CoveRootfs": img.rootfs})


def image_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """An image's ``Config`` (or ``ContainerConfig``) with every key Docker 20.10 writes."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
            "AttachStderr": False, "ExposedPorts": None, "Tty": False, "OpenStdin": False, "StdinOnce": False,
            "Env": None, "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
            "OnBuild": None, "Labels": None, **cfg}


def image_delete(engine: Backend, req: Request, ref: str) -> Response:
    img = engine.images.get(ref)
    with engine.lock:
        users = [c.name for c in engine.containers.values() if c.config.image_id == img.id]
    if users and not req.flag("force"):
        from ...errors import Conflict

        raise Conflict(f"conflict: unable to remove image {ref}: image is being used by container(s) "
                       + ", ".join(users))
    engine.images.remove(ref, force=req.flag("force"))
    return Response.json([{"Untagged": ref}])


def image_tag(engine: Backend, req: Request, ref: str) -> Response:
    engine.images.tag(ref, req.arg("repo") or "", req.arg("tag") or "latest")
    return Response.empty(201)


#: routes whose handler reads the body itself (``req.stream()``): an import goes to disk, not to memory
STREAMED_BODY = frozenset({("POST", "/images/create")})

ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/images/create", image_create),
    ("GET", "/images/json", images_list),
    ("GET", "/images/{ref}/json", image_inspect),
    ("DELETE", "/images/{ref}", image_delete),
    ("POST", "/images/{ref}/tag", image_tag),
]
