"""docs/openapi.yaml describes exactly the routes the daemon serves (issue 14).

Every (method, path) of the ROUTES tables of ``cove.daemon.routes`` (and ``GET /info``, added
by ``build_router``) is documented, nothing is documented that is not routed, and the
document is one schemathesis can load (the fuzz test drives it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
import yaml

from cove.daemon import routes
from cove.daemon.routes import containers, events, images, networks, sandboxes, system, volumes
from cove.daemon.routes import exec as exec_routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = {"get", "post", "put", "delete", "head", "patch"}


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DOC.read_text())
    return doc


def routed() -> set[tuple[str, str]]:
    out = {(m, p) for mod in (events, system, networks, containers, exec_routes, images, sandboxes, volumes)
           for m, p, _ in mod.ROUTES}
    router = routes.build_router(object())      # type: ignore[arg-type]  # handlers are only bound here
    out |= {(m, rx.pattern.strip("^$").replace("(?P<", "{").replace(">[^/]+)", "}"))
            for m, rx, _ in router._routes}
    return out


def documented() -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in _doc()["paths"].items() for m in item if m in METHODS}


def test_every_route_is_documented_and_nothing_else() -> None:
    r, d = routed(), documented()
    assert ("GET", "/info") in r and ("POST", "/networks/create") in r
    assert sorted(r - d) == [], "routed but not in docs/openapi.yaml"
    assert sorted(d - r) == [], "in docs/openapi.yaml but not routed"


def test_path_parameters_match_the_route_captures() -> None:
    doc = _doc()
    for path, item in doc["paths"].items():
        names = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        params = list(item.get("parameters", []))
        for m in METHODS & set(item):
            params += item[m].get("parameters", [])
        declared = set()
        for p in params:
            if "$ref" in p:
                p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
            if p["in"] == "path":
                declared.add(p["name"])
        assert declared == names, path


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(_doc())
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) == len(documented())
