"""Container commands that do not attach: stop, restart, kill, rm, wait, ps, inspect,
logs, port, rename, top.

Commands taking several names act on each in turn, print each name on success and
each daemon error on stderr (``Error response from daemon: ...``), then exit 1 if any
failed, as docker does.  Output formats (tables, ``80/tcp -> 0.0.0.0:8080``, JSON with
4-space indent) follow the docker CLI.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import click

from cove.cli.main import client
from cove.cli.format import container_names, ps_table

if TYPE_CHECKING:
    from cove.cli.client import Client


PROGRESS_FROM = 5     # names on one command line before rm/stop/kill/... show a progress bar


def for_each(ctx: click.Context, names: tuple[str, ...], action: Callable[[str], Any],
             echo: Callable[[str, Any], str | None] = lambda name, _: name) -> None:
    """Run ``action`` per name, echo its result line, report errors; exit 1 if any failed."""
    from cove.cli.client import APIError

    from cove.cli.progress import Progress

    failed = False
    # a bar only for many names (rm -f $(cove ps -aq)) and only on a terminal
    bar = Progress(len(names), ctx.command_path) if len(names) >= PROGRESS_FROM else None
    for name in names:
        try:
            result = action(name)
        except APIError as exc:
            if bar:
                bar.stream.write("\r\x1b[K")
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        finally:
            if bar:
                bar.advance()
        line = echo(name, result)
        if line is not None and bar:
            bar.echo(line)
        elif line is not None:
            click.echo(line)
    if bar:
        bar.close()
    ctx.exit(1 if failed else 0)


def cpath(name: str, suffix: str = "") -> str:
    from cove.cli.client import segment

    return f"/containers/{segment(name)}{suffix}"


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait before killing the container.")
@click.option("-s", "--signal", "signal_", default=None, help="Signal to stop with.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def stop(ctx: click.Context, timeout: int | None, signal_: str | None,
         names: tuple[str, ...]) -> None:
    """Stop one or more running containers."""
    api = client(ctx)
    query = {"t": timeout, "signal": signal_}
    for_each(ctx, names, lambda n: api.post(cpath(n, "/stop"), query=query))


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait before killing the container.")
@click.option("-s", "--signal", "signal_", default=None, help="Signal to stop with.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, timeout: int | None, signal_: str | None,
            names: tuple[str, ...]) -> None:
    """Restart one or more containers."""
    api = client(ctx)
    query = {"t": timeout, "signal": signal_}
    for_each(ctx, names, lambda n: api.post(cpath(n, "/restart"), query=query))


@click.command("kill")
@click.option("-s", "--signal", "signal_", default=None, help="Signal to send (default KILL).")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def kill(ctx: click.Context, signal_: str | None, names: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    api = client(ctx)
    for_each(ctx, names, lambda n: api.post(cpath(n, "/kill"), query={"signal": signal_}))


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill and remove a running container.")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes too.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, volumes: bool, names: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    api = client(ctx)
    query = {"force": force or None, "v": volumes or None}
    for_each(ctx, names, lambda n: api.delete(cpath(n), query))


@click.command("wait")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def wait(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Block until containers stop, then print their exit codes."""
    api = client(ctx)
    for_each(ctx, names, lambda n: api.post(cpath(n, "/wait")) or {},
             lambda _, reply: str(reply.get("StatusCode", "")))


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default: running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-n", "--last", type=int, default=None, help="Show the n last created containers.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output (e.g. name=web, status=exited).")
@click.option("--format", "template", default=None, help="Format the output using a Go template ('table ...' for columns).")
@click.pass_context
def ps(ctx: click.Context, all_: bool, quiet: bool, no_trunc: bool, last: int | None,
       latest: bool, filters: tuple[str, ...], template: str | None) -> None:
    """List containers."""
    from cove.cli.networks import filters_query

    api = client(ctx)
    limit = 1 if latest else last
    query: dict[str, Any] = {"all": True if (all_ or limit) else None, "limit": limit}
    query.update(filters_query(filters))
    containers = api.get("/containers/json", query) or []
    if quiet:
        for c in containers:
            click.echo(c.get("Id", "") if no_trunc else c.get("Id", "")[:12])
        return
    if template:
        from cove.cli.format import format_rows

        click.echo(format_rows(template, [ps_row(c, time.time(), not no_trunc) for c in containers], PS_HEADERS,
                               [c.get("Labels") or {} for c in containers]))
        return
    click.echo(ps_table(containers, time.time(), trunc=not no_trunc,
                        status_of=lambda ident: _status_from_inspect(api, ident)))


PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Names": "NAMES",
              "Labels": "LABELS", "Networks": "NETWORKS", "Size": "SIZE", "Mounts": "MOUNTS"}


def ps_row(c: dict[str, Any], now: float, trunc: bool) -> dict[str, Any]:
    """The fields docker's ``ps --format`` offers, for one container."""
    from cove.cli.format import ago, display_ports, ellipsis, go_quote

    command = c.get("Command", "")
    return {
        "ID": c.get("Id", "")[:12] if trunc else c.get("Id", ""), "Image": c.get("Image", ""),
        "Command": go_quote(ellipsis(command, 20) if trunc else command),
        "CreatedAt": c.get("Created", ""), "RunningFor": ago(c["Created"], now) if c.get("Created") else "",
        "Ports": display_ports(c.get("Ports")), "State": c.get("State", ""), "Status": c.get("Status", ""),
        "Names": container_names(c.get("Names"), trunc),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((c.get("Labels") or {}).items())),
        "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}))),
        "Size": "", "Mounts": "",
    }


def _status_from_inspect(api: Client, ident: str) -> str:
    from cove.cli.format import container_status
    from cove.errors import CoveError

    try:
        state = (api.get(cpath(ident, "/json")) or {}).get("State") or {}
    except CoveError:
        return ""
    return container_status(state, time.time()) if isinstance(state, dict) else str(state)


INSPECT_KINDS = {
    "container": ("/containers/{}/json", "container"),
    "network": ("/networks/{}", "network"),
    "image": ("/images/{}/json", "image"),
}


@click.command("inspect")
@click.option("--type", "kind", type=click.Choice(sorted(INSPECT_KINDS)), default=None,
              help="Only look for this kind of object.")
@click.option("-f", "--format", "template", default=None, help="Format the output using a Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, kind: str | None, template: str | None, names: tuple[str, ...]) -> None:
    """Show containers, networks or images as a JSON array (or through a Go template)."""
    from cove.cli.format import print_objects
    from cove.cli.client import APIError, segment

    api = client(ctx)
    kinds = [kind] if kind else ["container", "network", "image"]
    found: list[Any] = []
    failed = False
    for name in names:
        for each in kinds:
            try:
                found.append(api.get(INSPECT_KINDS[each][0].format(segment(name))))
                break
            except APIError as exc:
                if exc.status != 404:
                    click.echo(f"Error response from daemon: {exc.message}", err=True)
                    failed = True
                    break
        else:
            what = kind or "object"
            click.echo(f"Error: No such {what}: {name}", err=True)
            failed = True
    print_objects(found, template)
    ctx.exit(1 if failed else 0)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", show_default=True,
              help="Number of lines to show from the end.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("name")
@click.pass_context
def logs(ctx: click.Context, follow: bool, tail: str, timestamps: bool, name: str) -> None:
    """Print a container's logs."""
    from cove.cli.streams import copy_output

    api = client(ctx)
    info = api.get(cpath(name, "/json")) or {}
    tty = bool((info.get("Config") or {}).get("Tty"))
    query = {"stdout": True, "stderr": True, "follow": follow or None,
             "tail": tail, "timestamps": timestamps or None}
    with api.request("GET", cpath(name, "/logs"), query=query) as resp:
        copy_output(resp.read1, tty=tty)


@click.command("port")
@click.argument("name")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
@click.pass_context
def port(ctx: click.Context, name: str, private_port: str | None) -> None:
    """List port mappings of a container, or the host side of one port."""
    from cove.cli.format import join_host_port, natural_key

    info = client(ctx).get(cpath(name, "/json")) or {}
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if private_port:
        number, _, proto = private_port.partition("/")
        key = f"{number}/{proto or 'tcp'}"
        bindings = ports.get(key) or []
        if not bindings:
            click.echo(f"Error: No public port '{key}' published for {name}", err=True)
            ctx.exit(1)
        lines = [join_host_port(b.get("HostIp", ""), b.get("HostPort", "")) for b in bindings]
    else:
        lines = [f"{key} -> {join_host_port(b.get('HostIp', ''), b.get('HostPort', ''))}"
                 for key, bindings in ports.items() for b in bindings or []]
    for line in sorted(lines, key=natural_key):
        click.echo(line)


@click.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename a container."""
    client(ctx).post(cpath(old, "/rename"), query={"name": new})


@click.command("top", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, name: str, ps_args: tuple[str, ...]) -> None:
    """Show the running processes of a container."""
    from cove.cli.format import table

    query = {"ps_args": " ".join(ps_args) or None}
    reply = client(ctx).get(cpath(name, "/top"), query) or {}
    titles = reply.get("Titles") or []
    click.echo(table(titles, reply.get("Processes") or [], min_width=20))
