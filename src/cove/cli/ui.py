"""``cove ui``: a local web page with the live picture of the network, who reaches whom, and details.

The page is one static HTML document with a little plain JavaScript (``ui.html``; no build step,
nothing fetched from elsewhere).  This process serves it and a few JSON resources, reading everything
from the daemon with the CLI's own client:

- ``/api/state``: networks and containers (names, addresses, networks), for the lists;
- ``/api/graph.svg``: the picture of ``cove graph``, drawn by Graphviz;
- ``/api/matrix``: the reachability of every ordered pair of running containers, from the same
  verdict logic as ``cove diagnose`` (``?probe=1`` also runs the real probes, on demand);
- ``/api/container/ID``: a container's inspect; ``/api/container/ID/stats``: one sample of its
  counters (the picture labels each container interface with its rx / tx bytes too);
- ``/api/events``: the daemon's ``/events`` relayed as Server-Sent Events, so the page redraws
  when something changes;
- ``POST /api/container/ID/{start,stop,restart}``: only with ``--allow-actions`` (403 otherwise).

It listens on 127.0.0.1 unless told otherwise (it shows what runs on the host, and with
``--allow-actions`` it can stop containers).  The standard library's threading HTTP server is
enough for one local viewer; every request opens its own connection to the daemon.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from cove.cli.main import client

def page_html() -> str:
    """The page (``ui.html`` beside this module): one HTML document with its own script and style."""
    from importlib.resources import files

    return (files("cove.cli") / "ui.html").read_text(encoding="utf-8")


def state(api: Any) -> dict[str, Any]:
    from cove.cli.client import segment

    networks = []
    for n in api.get("/networks"):
        cfg = (n.get("IPAM") or {}).get("Config") or []
        networks.append({"name": n["Name"], "id": n["Id"], "driver": n["Driver"],
                         "subnets": [c.get("Subnet", "") for c in cfg if c.get("Subnet")]})
    containers = []
    for c in api.get("/containers/json", {"all": "1"}):
        info = api.get(f"/containers/{segment(c['Id'])}/json")
        eps = (info.get("NetworkSettings") or {}).get("Networks") or {}
        containers.append({"name": info["Name"].lstrip("/"), "id": info["Id"], "state": info["State"]["Status"],
                           "networks": sorted(eps), "addresses": [e["IPAddress"] for e in eps.values()
                                                                  if e.get("IPAddress")]})
    return {"networks": networks, "containers": containers}


def matrix(api: Any, probe: bool) -> dict[str, Any]:
    """Every ordered pair of running containers through ``cove diagnose``'s verdict (and probe)."""
    from dataclasses import asdict

    from cove.cli.diagnose import End, analyse, run_probe, sandbox_of
    from cove.cli.client import segment

    ends = []
    for c in api.get("/containers/json"):
        info = api.get(f"/containers/{segment(c['Id'])}/json")
        ends.append(End("container", info["Name"].lstrip("/"), info))
    for end in ends:
        if end.mode.startswith("container:"):
            owner = api.get(f"/containers/{segment(end.mode.split(':', 1)[1])}/json")
            end.info["NetworkSettings"]["Networks"] = owner["NetworkSettings"].get("Networks") or {}
    nets = {nid: api.get(f"/networks/{segment(nid)}") for e in ends for nid in e.endpoints()}
    cells = {}
    for a in ends:
        for b in ends:
            if a is b:
                continue
            v = analyse(a, b, nets)
            if probe:
                v.netns = sandbox_of(api, a)
                run_probe(v)
            cells[f"{a.label} {b.label}"] = {k: x for k, x in asdict(v).items() if k != "probe"}
    return {"names": [e.label for e in ends], "cells": cells}


def make_handler(ctx: click.Context, allow_actions: bool) -> type[BaseHTTPRequestHandler]:
    from cove.cli.client import APIError, segment

    page = page_html().replace("__ACTIONS__", "true" if allow_actions else "false").encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "cove-ui"

        def log_message(self, format: str, *args: Any) -> None:   # quiet: the terminal is the user's
            pass

        def send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def json(self, value: Any, code: int = 200) -> None:
            self.send(code, json.dumps(value).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            api = client(ctx)
            try:
                if url.path == "/":
                    self.send(200, page, "text/html; charset=utf-8")
                elif url.path == "/api/state":
                    self.json(state(api))
                elif url.path == "/api/matrix":
                    self.json(matrix(api, parse_qs(url.query).get("probe") == ["1"]))
                elif url.path == "/api/graph.svg":
                    self.send(200, render_svg(ctx), "image/svg+xml")
                elif url.path.startswith("/api/container/") and url.path.endswith("/stats"):
                    ref = url.path.split("/")[3]
                    self.json(api.get(f"/containers/{segment(ref)}/stats", {"stream": False, "one-shot": True}))
                elif url.path.startswith("/api/container/"):
                    self.json(api.get(f"/containers/{segment(url.path.rsplit('/', 1)[1])}/json"))
                elif url.path == "/api/events":
                    self.relay_events(api)
                else:
                    self.json({"message": "not found"}, 404)
            except APIError as exc:
                self.json({"message": exc.message}, exc.status)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path).path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["api", "container"] or parts[3] not in ("start", "stop", "restart"):
                return self.json({"message": "not found"}, 404)
            if not allow_actions:
                return self.json({"message": "read-only: start cove ui with --allow-actions"}, 403)
            try:
                client(ctx).post(f"/containers/{segment(parts[2])}/{parts[3]}")
                self.json({"ok": True})
            except APIError as exc:
                self.json({"message": exc.message}, exc.status)

        def relay_events(self, api: Any) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(b": connected\n\n")
            self.wfile.flush()
            from cove.errors import CoveError

            with api.request("GET", "/events") as resp:
                buf = b""
                while True:
                    try:
                        data = resp.read1()
                    except CoveError:       # the daemon's stream broke: the page's EventSource reconnects
                        return
                    if not data:
                        return
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            self.wfile.write(b"data: " + line.strip() + b"\n\n")
                            self.wfile.flush()

    return Handler


def render_svg(ctx: click.Context) -> bytes:
    import shutil
    import subprocess

    from cove.cli.graph import build, collect, host_links, link_counters, to_dot

    networks, containers = collect(ctx)
    dot = to_dot(build(networks, containers, host_links(), counters=link_counters(ctx, containers)))
    tool = shutil.which("dot")
    if tool is None:
        return b"<svg xmlns='http://www.w3.org/2000/svg'><text y='20'>Graphviz is not installed</text></svg>"
    return subprocess.run([tool, "-Tsvg"], input=dot.encode(), capture_output=True, check=True).stdout


@click.command("ui")
@click.option("--listen", default="127.0.0.1:8089", show_default=True, metavar="ADDR:PORT",
              help="Where the page is served (keep it on 127.0.0.1 unless you mean otherwise).")
@click.option("--allow-actions", is_flag=True, help="Let the page start, stop and restart containers.")
@click.pass_context
def ui(ctx: click.Context, listen: str, allow_actions: bool) -> None:
    """Serve a local web page: the live picture, who reaches whom, and each container's details."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not host:
        raise click.BadParameter(f"{listen!r}: give ADDR:PORT", param_hint="'--listen'")
    client(ctx).get("/version")        # no daemon: fail now, not at the first page load
    server = ThreadingHTTPServer((host.strip("[]"), int(port)), make_handler(ctx, allow_actions))
    server.daemon_threads = True
    click.echo(f"cove ui: http://{listen}/ ({'actions allowed' if allow_actions else 'read-only'}); Ctrl-C stops",
               err=True)
    try:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
