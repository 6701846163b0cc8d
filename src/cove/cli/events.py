"""``cove events``: the daemon's event stream, printed as the docker CLI prints it.

Without ``--until`` it runs until interrupted.  The default line is docker's:
``TIME TYPE ACTION ACTOR-ID (key=value, ...)`` with the time in RFC 3339 with
nanoseconds (local zone) and the attributes sorted; ``--format`` takes a Go
template (``json`` is ``{{json .}}``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from cove.cli.main import client


def pretty(ev: dict[str, Any]) -> str:
    """One event as ``docker events`` prints it by default."""
    ns = int(ev.get("timeNano") or 0) or int(ev.get("time") or 0) * 1_000_000_000
    out = ""
    if ns:
        local = datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
        zone = local.strftime("%z")
        zone = "Z" if zone in ("+0000", "") else f"{zone[:3]}:{zone[3:]}"
        out = f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{ns % 1_000_000_000:09d}{zone} "
    actor = ev.get("Actor") or {}
    out += f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        out += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return out


@click.command("events")
@click.option("--since", default=None, help="Show events created since this time (timestamp, RFC 3339 or duration).")
@click.option("--until", default=None, help="Stream events until this time.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output (type, event, container, network, image, label, scope).")
@click.option("--format", "template", default=None, help="Format the output using a Go template (or 'json').")
@click.pass_context
def events(ctx: click.Context, since: str | None, until: str | None, filters: tuple[str, ...],
           template: str | None) -> None:
    """Get real time events from the daemon."""
    from cove.cli.networks import filters_query

    query: dict[str, Any] = {"since": since, "until": until}
    query.update(filters_query(filters))
    render = None
    if template:
        from cove.cli.gotemplate import TemplateError, parse

        try:
            tpl = parse("{{json .}}" if template == "json" else template)
        except TemplateError as exc:
            raise click.ClickException(f"template: {exc}") from None
        render = tpl.render
    api = client(ctx)
    with api.request("GET", "/events", query=query) as resp:
        buf = b""
        while True:
            data = resp.read1()
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    ev = json.loads(line)
                    click.echo(render(ev) if render else pretty(ev))
