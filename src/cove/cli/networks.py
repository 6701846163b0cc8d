"""``cove network ...``: create, ls, inspect, rm, connect, disconnect, prune.

Each command is one or a few calls to the daemon's ``/networks`` endpoints with the
request bodies the docker CLI sends.  ``--subnet``, ``--gateway``, ``--ip-range`` and
``--aux-address`` are grouped into IPAM configs the way docker does: one config per
subnet, each gateway/range/aux address going to the subnet that contains it.
"""

from __future__ import annotations

from typing import Any

import click

from cove.cli.main import client


def parse_kv(values: tuple[str, ...], flag: str, *, value_required: bool = True) -> dict[str, str]:
    """``("k=v", ...)`` -> ``{"k": "v"}``; a one-line usage error names the bad value."""
    result: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key or (value_required and not sep):
            raise click.BadParameter(f"{item!r} is not of the form KEY=VALUE", param_hint=flag)
        result[key] = value
    return result


def filters_query(values: tuple[str, ...]) -> dict[str, str]:
    """``-f k=v`` options as docker's ``filters`` query: ``{"k": {"v": true}}`` JSON."""
    if not values:
        return {}
    import json

    filters: dict[str, dict[str, bool]] = {}
    for key, value in (v.partition("=")[::2] for v in values):
        if not key:
            raise click.BadParameter("filters are KEY=VALUE", param_hint="--filter")
        filters.setdefault(key, {})[value] = True
    return {"filters": json.dumps(filters, separators=(",", ":"))}


def ipam_configs(subnets: tuple[str, ...], gateways: tuple[str, ...], ranges: tuple[str, ...],
                 aux: dict[str, str]) -> list[dict[str, Any]]:
    """IPAM ``Config`` entries, grouped by subnet like docker's consolidateIpam."""
    import ipaddress

    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise click.UsageError("every ip-range or gateway must have a corresponding subnet")
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for subnet in subnets:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise click.BadParameter(f"invalid CIDR address: {subnet}", param_hint="--subnet")
        if any(net.version == other.version and net.overlaps(other) for other in nets):
            raise click.UsageError("multiple overlapping subnet configuration is not supported")
        nets.append(net)
    configs: list[dict[str, Any]] = [{"Subnet": s} for s in subnets]

    def place(value: str, what: str, key: str | None, name: str = "") -> None:
        try:
            probe = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise click.BadParameter(f"invalid address {value!r}", param_hint=f"--{what}")
        matched = False
        for net, config in zip(nets, configs):
            if probe.version != net.version or not probe.subnet_of(net):  # type: ignore[arg-type]
                continue
            matched = True
            if key is None:
                config.setdefault("AuxiliaryAddresses", {})[name] = value
            elif key in config:
                raise click.UsageError(
                    f"cannot configure multiple {what}s ({value}, {config[key]}) on the same"
                    f" subnet ({config['Subnet']})"
                )
            else:
                config[key] = value
        if not matched:
            raise click.UsageError(f"no matching subnet for {what} {value}")

    for value in ranges:
        place(value, "ip-range", "IPRange")
    for value in gateways:
        place(value, "gateway", "Gateway")
    for name, value in aux.items():
        place(value, "aux-address", None, name)
    return configs


@click.group("network")
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Network driver.")
@click.option("--subnet", multiple=True, help="Subnet in CIDR format (repeatable).")
@click.option("--gateway", multiple=True, help="Gateway for a subnet (repeatable).")
@click.option("--ip-range", "ip_range", multiple=True, help="Allocate addresses from a sub-range.")
@click.option("--aux-address", multiple=True, metavar="NAME=IP",
              help="Address the IPAM driver must not hand out (repeatable).")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.option("--attachable", is_flag=True, help="Enable manual container attachment.")
@click.option("-o", "--opt", multiple=True, metavar="KEY=VALUE", help="Driver options.")
@click.option("--label", multiple=True, metavar="KEY=VALUE", help="Metadata on the network.")
@click.option("--ipv6", is_flag=True, help="Enable IPv6 networking.")
@click.argument("name")
@click.pass_context
def create(ctx: click.Context, driver: str, subnet: tuple[str, ...], gateway: tuple[str, ...],
           ip_range: tuple[str, ...], aux_address: tuple[str, ...], internal: bool,
           attachable: bool, opt: tuple[str, ...], label: tuple[str, ...], ipv6: bool,
           name: str) -> None:
    """Create a network and print its id."""
    body = {
        "Name": name,
        "Driver": driver,
        "Internal": internal,
        "Attachable": attachable,
        "EnableIPv6": ipv6,
        "Options": parse_kv(opt, "--opt"),
        "Labels": parse_kv(label, "--label", value_required=False),
        "CheckDuplicate": True,
        "IPAM": {
            "Driver": "default",
            "Config": ipam_configs(subnet, gateway, ip_range, parse_kv(aux_address, "--aux-address")),
            "Options": {},
        },
    }
    reply = client(ctx).post("/networks/create", body) or {}
    if reply.get("Warning"):
        click.echo(f"WARNING: {reply['Warning']}", err=True)
    click.echo(reply.get("Id", ""))


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output (e.g. driver=bridge).")
@click.option("--format", "template", default=None, help="Format the output using a Go template ('table ...' for columns).")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, no_trunc: bool, filters: tuple[str, ...], template: str | None) -> None:
    """List networks."""
    from cove.cli.format import natural_key, short_id, table

    nets = client(ctx).get("/networks", filters_query(filters)) or []
    nets.sort(key=lambda n: natural_key(n.get("Name", "")))
    ids = [short_id(n.get("Id", ""), not no_trunc) for n in nets]
    if quiet:
        for ident in ids:
            click.echo(ident)
        return
    if template:
        from cove.cli.format import format_rows

        headers = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
                   "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
        data = [{"ID": ident, "Name": n.get("Name", ""), "Driver": n.get("Driver", ""), "Scope": n.get("Scope", ""),
                 "IPv6": str(n.get("EnableIPv6", False)).lower(), "Internal": str(n.get("Internal", False)).lower(),
                 "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
                 "CreatedAt": n.get("Created", "")} for ident, n in zip(ids, nets)]
        click.echo(format_rows(template, data, headers, [n.get("Labels") or {} for n in nets]))
        return
    rows = [[ident, n.get("Name", ""), n.get("Driver", ""), n.get("Scope", "")]
            for ident, n in zip(ids, nets)]
    click.echo(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows))


@network.command("inspect")
@click.option("-f", "--format", "template", default=None, help="Format the output using a Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, template: str | None, names: tuple[str, ...]) -> None:
    """Show one or more networks as a JSON array (or through a Go template)."""
    from cove.cli.format import print_objects
    from cove.cli.client import APIError, segment

    api = client(ctx)
    found, failed = [], False
    for name in names:
        try:
            found.append(api.get(f"/networks/{segment(name)}"))
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
    print_objects(found, template)
    ctx.exit(1 if failed else 0)


@network.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more networks."""
    from cove.cli.client import APIError, segment

    api = client(ctx)
    failed = False
    for name in names:
        try:
            api.delete(f"/networks/{segment(name)}")
        except APIError as exc:
            if force and exc.status == 404:
                continue
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        click.echo(name)
    ctx.exit(1 if failed else 0)


@network.command("connect")
@click.option("--ip", help="IPv4 address for the container on this network.")
@click.option("--ip6", help="IPv6 address for the container on this network.")
@click.option("--alias", multiple=True, help="Network-scoped alias (repeatable).")
@click.option("--mac-address", help="MAC address for the container's interface.")
@click.argument("net")
@click.argument("container")
@click.pass_context
def connect(ctx: click.Context, ip: str | None, ip6: str | None, alias: tuple[str, ...],
            mac_address: str | None, net: str, container: str) -> None:
    """Connect a container to a network."""
    from cove.cli.client import segment

    body = {"Container": container,
            "EndpointConfig": endpoint_config(ip, ip6, alias, mac_address)}
    client(ctx).post(f"/networks/{segment(net)}/connect", body)


def endpoint_config(ip: str | None, ip6: str | None, aliases: tuple[str, ...],
                    mac: str | None) -> dict[str, Any]:
    """An ``EndpointSettings`` body as ``network connect`` and ``run --network`` send it."""
    ipam = {}
    if ip:
        ipam["IPv4Address"] = ip
    if ip6:
        ipam["IPv6Address"] = ip6
    return {"IPAMConfig": ipam, "Aliases": list(aliases), "MacAddress": mac or ""}


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect.")
@click.argument("net")
@click.argument("container")
@click.pass_context
def disconnect(ctx: click.Context, force: bool, net: str, container: str) -> None:
    """Disconnect a container from a network."""
    from cove.cli.client import segment

    client(ctx).post(f"/networks/{segment(net)}/disconnect",
                     {"Container": container, "Force": force})


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (e.g. until=24h).")
@click.pass_context
def prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all unused networks."""
    if not force:
        click.echo("WARNING! This will remove all custom networks not used by at least one"
                   " container.")
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        answer = click.get_text_stream("stdin").readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    reply = client(ctx).post("/networks/prune", query=filters_query(filters)) or {}
    deleted = reply.get("NetworksDeleted") or []
    if deleted:
        click.echo("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted))
