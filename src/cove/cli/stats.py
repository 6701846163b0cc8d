"""``cove stats``: the containers' CPU, memory, network and block I/O, as ``docker stats``.

Each tick samples every container once (``GET /containers/{id}/stats?stream=false&one-shot=1``,
no wait on the daemon's side) and pairs it with the tick before for the CPU %, so N containers
cost N short requests a second, not N open streams.  ``--no-stream`` takes two samples a second
apart and prints one table.  On a terminal each table replaces the one before (as docker's
CLI does); otherwise one table is printed per tick.  Without names, the running containers
(``-a``: all) are listed again at each tick, so new ones appear.  ``--interfaces`` (a cove
extension) prints every interface's eight counters instead of the summary columns.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from cove.cli.client import APIError, Client, segment
from cove.cli.format import format_rows, table
from cove.cli.main import client
from cove.stats import DEFAULT_FORMAT, HEADERS, INTERFACE_FIELDS, interface_rows, row, with_previous

INTERVAL = 1.0
CLEAR = "\033[2J\033[H"


def _targets(api: Client, names: tuple[str, ...], all_: bool) -> list[str]:
    if names:
        return list(names)
    listed = api.get("/containers/json", {"all": True if all_ else None}) or []
    return [str(c.get("Id", "")) for c in listed]


def _sample(api: Client, ref: str) -> dict[str, Any] | None:
    try:
        s: dict[str, Any] = api.get(f"/containers/{segment(ref)}/stats", {"stream": False, "one-shot": True})
        return s
    except APIError as exc:
        if exc.status == 404:       # removed since it was listed
            return None
        raise


def render(samples: list[tuple[str, dict[str, Any]]], template: str | None, interfaces: bool,
           trunc: bool = True) -> str:
    """One table (or the formatted lines) for ``(name as asked, sample)`` pairs."""
    if interfaces:
        head = ["CONTAINER", "INTERFACE", *(f.replace("_", " ").upper() for f in INTERFACE_FIELDS)]
        return table(head, [r for shown, s in samples for r in interface_rows(s, shown)])
    rows = [row(s, shown, trunc) for shown, s in samples]
    if template == "json":
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    return format_rows(template or DEFAULT_FORMAT, rows, HEADERS)


@click.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default: running).")
@click.option("--no-stream", is_flag=True, help="Print one table and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "template", default=None,
              help="A Go template ('table ...' for columns; fields .Container .ID .Name .CPUPerc .MemUsage "
                   ".MemPerc .NetIO .BlockIO .PIDs), or 'json'.")
@click.option("--interfaces", is_flag=True,
              help="Every interface's rx/tx bytes, packets, errors and drops (cove's addition).")
@click.argument("names", nargs=-1)
@click.pass_context
def stats(ctx: click.Context, all_: bool, no_stream: bool, no_trunc: bool, template: str | None,
          interfaces: bool, names: tuple[str, ...]) -> None:
    """Show the containers' resource usage, network I/O included (as docker stats)."""
    api = client(ctx)
    for ref in names:       # an unknown name is an error at once (the daemon's 404), as with docker
        api.get(f"/containers/{segment(ref)}/json")
    tty = sys.stdout.isatty()
    before: dict[str, dict[str, Any]] = {}
    first = True
    while True:
        now: dict[str, dict[str, Any]] = {}
        shown: list[tuple[str, dict[str, Any]]] = []
        for ref in _targets(api, names, all_):
            s = _sample(api, ref)
            if s is None:
                continue
            now[ref] = s
            shown.append((ref if names else str(s.get("name", "")).lstrip("/"), with_previous(s, before.get(ref))))
        if no_stream and first and not interfaces:
            first, before = False, now          # a second sample, so the CPU % has a span
            time.sleep(INTERVAL)
            continue
        out = render(shown, template, interfaces, not no_trunc)
        if no_stream:
            click.echo(out)
            return
        click.echo((CLEAR if tty else "") + out)
        before = now
        time.sleep(INTERVAL)
