"""``cove create``, ``run`` and ``start``.

``create``/``run`` turn docker's flags into the ``POST /containers/create`` body the
docker CLI sends.  ``run -d`` then starts the container and prints its id; ``run``
without ``-d`` (and ``start -a``) attach to it through :mod:`cove.cli.attach` and exit
with the container's status.  Like docker, ``run``/``create`` exit 125 when cove itself
fails (bad flags, daemon errors), so that status never looks like the container's own.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

import click

from cove.cli.main import client, report_error

if TYPE_CHECKING:
    from cove.cli.client import Client

RUN_ERROR = 125


class RunCommand(click.Command):
    """A command whose usage errors exit 125, as ``docker run``/``create`` do."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = RUN_ERROR
            raise


def usage_error(message: str) -> click.UsageError:
    """A one-line usage error that exits 125."""
    error = click.UsageError(message)
    error.exit_code = RUN_ERROR
    return error


def env_list(values: tuple[str, ...]) -> list[str]:
    """``-e`` values: ``K=V`` as given, a bare ``K`` from our environment (dropped if unset)."""
    result = []
    for item in values:
        key, sep, _ = item.partition("=")
        if not key:
            raise usage_error(f"invalid environment variable: {item}")
        if sep:
            result.append(item)
        elif key in os.environ:
            result.append(f"{key}={os.environ[key]}")
    return result


def check_ip(value: str | None, version: int, flag: str) -> None:
    import ipaddress

    if not value:
        return
    try:
        ok = ipaddress.ip_address(value).version == version
    except ValueError:
        ok = False
    if not ok:
        raise usage_error(f"invalid IPv{version} address for {flag}: {value}")


def check_mac(value: str | None) -> None:
    import re

    if value and not re.fullmatch(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", value):
        raise usage_error(f"{value} is not a valid mac address")


def extra_hosts(values: tuple[str, ...]) -> list[str]:
    """``--add-host name:ip`` (or ``name=ip``) values as ``name:ip``."""
    import ipaddress

    result = []
    for item in values:
        sep = "=" if "=" in item else ":"
        name, found, addr = item.partition(sep)
        addr = addr.strip("[]")
        if not found or not name or not addr:
            raise usage_error(f"invalid argument {item!r} for --add-host: expected HOST:IP")
        if addr != "host-gateway":
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                raise usage_error(f"invalid IP address in add-host: {addr!r}") from None
        result.append(f"{name}:{addr}")
    return result


def dns_servers(values: tuple[str, ...]) -> list[str]:
    import ipaddress

    result = []
    for value in values:
        try:
            result.append(str(ipaddress.ip_address(value)))
        except ValueError:
            raise usage_error(f"invalid argument {value!r} for --dns: not an IP address") from None
    return result


def container_options(func: Any) -> Any:
    """The flags shared by ``create`` and ``run``."""
    options = [
        click.option("-d", "--detach", is_flag=True, help="Run in the background, print the id."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--rm", "auto_remove", is_flag=True, help="Remove the container on exit."),
        click.option("--name", help="Container name."),
        click.option("--network", "--net", "networks", multiple=True,
                     help="Connect the container to a network."),
        click.option("--ip", help="IPv4 address on the network."),
        click.option("--ip6", help="IPv6 address on the network."),
        click.option("--mac-address", help="Container MAC address."),
        click.option("--network-alias", "--alias", "aliases", multiple=True,
                     help="Network-scoped alias (repeatable)."),
        click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V or K)."),
        click.option("-h", "--hostname", default="", help="Container host name."),
        click.option("--dns", multiple=True, help="Custom DNS server."),
        click.option("--dns-search", multiple=True, help="Custom DNS search domain."),
        click.option("--dns-option", "--dns-opt", "dns_options", multiple=True,
                     help="DNS resolver option."),
        click.option("--add-host", multiple=True, metavar="HOST:IP",
                     help="Add a line to /etc/hosts."),
        click.option("--link", multiple=True, metavar="NAME[:ALIAS]",
                     help="Link to another container."),
        click.option("-p", "--publish", multiple=True,
                     metavar="[IP:][HOSTPORT:]PORT[/PROTO]", help="Publish a port."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports."),
        click.option("--expose", multiple=True, help="Expose a port or range."),
        click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE",
                     help="Metadata on the container."),
        click.option("-w", "--workdir", default="", help="Working directory in the container."),
        click.option("--entrypoint", default=None, help="Overwrite the image's entrypoint."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability (or ALL)."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability (or ALL)."),
        click.option("--privileged", is_flag=True,
                     help="Give the container every capability, every device and no seccomp filter."),
        click.option("--userns", default="", metavar="host",
                     help="host: no user namespace when the daemon remaps root (--userns-remap)."),
        click.option("--security-opt", multiple=True,
                     metavar="OPT", help="seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges."),
        click.option("--pids-limit", type=int, default=None, help="Limit the number of processes (-1: none)."),
        click.option("-m", "--memory", default=None, help="Memory limit (like 64m)."),
        click.option("--log-driver", default="", help="Logging driver (json-file)."),
        click.option("--log-opt", multiple=True, metavar="KEY=VALUE", help="max-size=SIZE, max-file=N."),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _bytes(value: str, flag: str) -> int:
    import re

    m = re.fullmatch(r"(\d+)([bkmg]?)b?", value.strip().lower())
    if not m:
        raise usage_error(f"invalid argument {value!r} for {flag}: expected a size like 64m")
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[m.group(2)]


def security_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig fields for the security profile, limits and log options (docker's flags)."""
    security = []
    for opt in opts["security_opt"]:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "seccomp" and value and value != "unconfined":
            try:     # as docker: the CLI reads the profile and sends its text
                with open(value) as f:
                    value = f.read()
            except OSError as exc:
                raise usage_error(f"opening seccomp profile ({value}) failed: {exc.strerror}") from None
            opt = f"seccomp={value}"
        security.append(opt)
    log_opts = {}
    for item in opts["log_opt"]:
        key, sep, value = item.partition("=")
        if not sep:
            raise usage_error(f"invalid argument {item!r} for --log-opt: expected KEY=VALUE")
        log_opts[key] = value
    fields = {
        "CapAdd": list(opts["cap_add"]),
        "CapDrop": list(opts["cap_drop"]),
        "Privileged": opts["privileged"],
        "UsernsMode": opts.get("userns") or "",
        "SecurityOpt": security,
        "PidsLimit": opts["pids_limit"],
        "Memory": _bytes(opts["memory"], "--memory") if opts["memory"] else 0,
        "LogConfig": {"Type": opts["log_driver"], "Config": log_opts} if opts["log_driver"] or log_opts else None,
    }
    return {k: v for k, v in fields.items() if v}     # only what was asked for


def create_body(opts: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /containers/create`` body for ``create``/``run`` options."""
    from cove.cli.networks import endpoint_config, parse_kv
    from cove.cli.ports import port_maps
    from cove.errors import InvalidArgument

    if len(opts["networks"]) > 1:
        raise usage_error("cove connects a container to one network at creation; use"
                          " `cove network connect` for more")
    check_ip(opts["ip"], 4, "--ip")
    check_ip(opts["ip6"], 6, "--ip6")
    check_mac(opts["mac_address"])
    try:
        exposed, bindings = port_maps(opts["publish"], opts["expose"])
    except InvalidArgument as exc:
        raise usage_error(exc.message) from None
    for link in opts["link"]:
        if not link.partition(":")[0]:
            raise usage_error(f"invalid link {link!r}: expected NAME[:ALIAS]")
    network = opts["networks"][0] if opts["networks"] else "default"
    detach = opts["detach"]
    attach_stdin = opts["interactive"] and not detach
    entrypoint = opts["entrypoint"]
    mac = opts["mac_address"] or ""
    return {
        "Hostname": opts["hostname"],
        "AttachStdin": attach_stdin,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "ExposedPorts": exposed,
        "Tty": opts["tty"],
        "OpenStdin": opts["interactive"],
        "StdinOnce": attach_stdin,
        "Env": env_list(opts["env"]),
        "Cmd": list(opts["command"]) or None,
        "Image": opts["image"],
        "WorkingDir": opts["workdir"],
        "Entrypoint": None if entrypoint is None else [entrypoint],
        "MacAddress": mac,
        "Labels": parse_kv(opts["labels"], "--label", value_required=False),
        "HostConfig": {
            "NetworkMode": network,
            "AutoRemove": opts["auto_remove"],
            "Dns": dns_servers(opts["dns"]),
            "DnsSearch": list(opts["dns_search"]),
            "DnsOptions": list(opts["dns_options"]),
            "ExtraHosts": extra_hosts(opts["add_host"]),
            "Links": list(opts["link"]),
            "PortBindings": bindings,
            "PublishAllPorts": opts["publish_all"],
            **security_options(opts),
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                network: endpoint_config(opts["ip"], opts["ip6"], opts["aliases"], mac),
            },
        },
    }


@contextmanager
def run_errors() -> Iterator[None]:
    """Report cove errors the way ``docker run`` does: message on stderr, exit 125."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only cove's own errors are handled
        code = report_error(exc, RUN_ERROR)
        if code is None:
            raise
        raise click.exceptions.Exit(code) from None


def create_container(api: Client, opts: dict[str, Any]) -> str:
    """Create the container (printing the daemon's warnings); return its id."""
    body = create_body(opts)
    reply = api.post("/containers/create", body, query={"name": opts["name"]}) or {}
    for warning in reply.get("Warnings") or []:
        click.echo(f"WARNING: {warning}", err=True)
    return str(reply.get("Id", ""))


@click.command("create", cls=RunCommand, context_settings={"allow_interspersed_args": False})
@container_options
@click.pass_context
def create(ctx: click.Context, /, **opts: Any) -> None:
    """Create a new container and print its id."""
    with run_errors():
        click.echo(create_container(client(ctx), opts))


@click.command("run", cls=RunCommand, context_settings={"allow_interspersed_args": False})
@container_options
@click.pass_context
def run(ctx: click.Context, /, **opts: Any) -> None:
    """Create and start a container; without -d, stream it and exit with its status."""
    from cove.cli.attach import attach_and_start, quietly
    from cove.cli.client import APIError, segment

    with run_errors():
        api = client(ctx)
        cid = create_container(api, opts)
        if opts["detach"]:
            api.post(f"/containers/{segment(cid)}/start")
            click.echo(cid)
            return
        try:
            code = attach_and_start(api, cid, tty=opts["tty"], interactive=opts["interactive"],
                                    auto_remove=opts["auto_remove"])
        except APIError:
            if opts["auto_remove"]:
                quietly(lambda: api.delete(f"/containers/{segment(cid)}", {"force": True}))
            raise
    ctx.exit(code)


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach the container's STDIN.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, attach: bool, interactive: bool, names: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    from cove.cli.attach import attach_and_start
    from cove.cli.client import APIError, segment

    api = client(ctx)
    if attach or interactive:
        if len(names) > 1:
            raise click.UsageError("you cannot start and attach multiple containers at once")
        info = api.get(f"/containers/{segment(names[0])}/json") or {}
        tty = bool((info.get("Config") or {}).get("Tty"))
        auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
        ctx.exit(attach_and_start(api, str(info.get("Id") or names[0]), tty=tty,
                                  interactive=interactive, auto_remove=auto_remove))
    failed = False
    for name in names:
        try:
            api.post(f"/containers/{segment(name)}/start")
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        click.echo(name)
    ctx.exit(1 if failed else 0)
