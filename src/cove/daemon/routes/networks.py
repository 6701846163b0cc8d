"""Docker Engine API routes: networks: list, inspect, create, remove, connect, disconnect, prune.

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from ..backend import Backend
from ...events import check_keys, labels_match, parse_timestamp
from ...model import PREDEFINED, Network, epoch_of
from .. import schema, wire
from ..listfilters import NetworkRow, select_networks
from ..http import Handler, Request, Response
from ._common import _filters, read_view


def networks_list(engine: Backend, req: Request) -> Response:
    f = _filters(req)
    rows = read_view(engine, lambda: [NetworkRow(schema.network_json(engine, net, detail=False), net.name in PREDEFINED,
                                                 bool(engine.endpoints_on(net.id)))
                                      for net in list(engine.networks.values())])
    out = select_networks(rows, f)
    return Response.json(sorted(out, key=lambda n: n["Name"]))


def network_inspect(engine: Backend, req: Request, ref: str) -> Response:
    return Response.json(read_view(engine, lambda: schema.network_json(engine, engine.find_network(ref))))


def network_create(engine: Backend, req: Request) -> Response:
    body = wire.body_object(req, "network create")
    name = wire.string(body.get("Name"), "Name")
    if not name:
        raise InvalidArgument("invalid Name: a network name is required")
    net = engine.create_network(name, wire.string(body.get("Driver"), "Driver") or "bridge", schema.ipam_request(body),
                                internal=wire.boolean(body.get("Internal"), "Internal"),
                                attachable=wire.boolean(body.get("Attachable"), "Attachable"),
                                ipv6=wire.boolean(body.get("EnableIPv6"), "EnableIPv6"),
                                options=wire.str_map(body.get("Options"), "Options"),
                                labels=wire.str_map(body.get("Labels"), "Labels"))
    return Response.json({"Id": net.id, "Warning": ""}, 201)


def network_delete(engine: Backend, req: Request, ref: str) -> Response:
    engine.remove_network(ref)
    return Response.empty()


def network_connect(engine: Backend, req: Request, ref: str) -> Response:
    body = wire.body_object(req, "network connect")
    engine.connect(ref, wire.string(body.get("Container"), "Container"),
                   schema.endpoint_request(body.get("EndpointConfig"), "EndpointConfig"))
    return Response.empty(200)


def network_disconnect(engine: Backend, req: Request, ref: str) -> Response:
    body = wire.body_object(req, "network disconnect")
    engine.disconnect(ref, wire.string(body.get("Container"), "Container"),
                      force=wire.boolean(body.get("Force"), "Force"))
    return Response.empty(200)


def network_prune(engine: Backend, req: Request) -> Response:
    """Docker's filters ``label``, ``label!`` and ``until``; any other is a 400 (never ignored: a
    prune that dropped its filter would remove every unused network)."""
    f = _filters(req)
    check_keys(f, {"label", "label!", "until"}, "network prune")
    until = parse_timestamp(f["until"][-1], "until") if f.get("until") else None

    def match(net: Network) -> bool:
        if "label" in f and not labels_match(net.labels, f["label"]):
            return False
        if "label!" in f and any(labels_match(net.labels, [w]) for w in f["label!"]):
            return False
        return until is None or epoch_of(net.created) * 1e9 < until

    return Response.json({"NetworksDeleted": engine.prune_networks(match if f else None)})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/networks", networks_list),
    ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", network_prune),
    ("GET", "/networks/{ref}", network_inspect),
    ("DELETE", "/networks/{ref}", network_delete),
    ("POST", "/networks/{ref}/connect", network_connect),
    ("POST", "/networks/{ref}/disconnect", network_disconnect),
]
