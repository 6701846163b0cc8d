"""The ``cove`` command: the click group, global options and daemon start-up.

cove's CLI is a thin client of the daemon's Docker Engine API.  To keep ``cove
--version`` fast, this module imports only click and the standard library's cheap
modules; each command's module (and :mod:`cove.cli.client`, cove's own small HTTP/1.1
client) is imported only when that command runs.

The socket is ``-H/--host``, else ``$COVE_HOST``, else ``unix:///run/cove/cove.sock``
(the same precedence as docker's ``-H`` over ``$DOCKER_HOST``).  When nothing answers
on a local unix socket and :func:`cove.cli.client.autostart_allowed` (a terminal, or
``COVE_AUTOSTART=1``), :func:`spawn_daemon` starts ``cove daemon`` (isolated from the
caller's directory) in the background and the request is retried for up to 10 s;
otherwise the error says how to start one.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from cove import __version__

if TYPE_CHECKING:
    from cove.cli.client import Client, Endpoint, Spawned

DAEMON_LOG = "/var/log/cove-daemon.log"

# command name -> "module:attribute"; imported on first use.
LAZY_COMMANDS = {
    "network": "cove.cli.networks:network",
    "create": "cove.cli.run:create",
    "run": "cove.cli.run:run",
    "start": "cove.cli.run:start",
    "stop": "cove.cli.containers:stop",
    "restart": "cove.cli.containers:restart",
    "kill": "cove.cli.containers:kill",
    "rm": "cove.cli.containers:rm",
    "wait": "cove.cli.containers:wait",
    "ps": "cove.cli.containers:ps",
    "inspect": "cove.cli.containers:inspect",
    "logs": "cove.cli.containers:logs",
    "exec": "cove.cli.attach:exec_",
    "events": "cove.cli.events:events",
    "port": "cove.cli.containers:port",
    "rename": "cove.cli.containers:rename",
    "top": "cove.cli.containers:top",
    "import": "cove.cli.images:import_",
    "images": "cove.cli.images:images",
    "rmi": "cove.cli.images:rmi",
    "tag": "cove.cli.images:tag",
    "nsenter": "cove.cli.debug:nsenter",
    "capture": "cove.cli.debug:capture",
    "attach": "cove.cli.interfaces:attach",
    "detach": "cove.cli.interfaces:detach",
    "graph": "cove.cli.graph:graph",
    "diagnose": "cove.cli.diagnose:diagnose",
    "completion": "cove.cli.complete:completion",
    "ui": "cove.cli.ui:ui",
    "setup": "cove.cli.setup:setup",
    "stats": "cove.cli.stats:stats",
}


class Settings:
    """Global options, stored as the context object."""

    def __init__(self, host: str | None) -> None:
        self.host = host


class CoveGroup(click.Group):
    """A group that imports subcommands lazily and prints API errors like docker."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        import importlib

        module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
        loaded: click.Command = getattr(importlib.import_module(module), attr)
        if "_COVE_COMPLETE" in os.environ:       # only while the shell asks for completions
            from cove.cli.complete import attach

            attach(cmd_name, loaded)
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - only cove's own errors are handled
            code = report_error(exc)
            if code is None:
                raise
            ctx.exit(code)


def report_error(exc: BaseException, code: int = 1) -> int | None:
    """Print a cove error the way docker does; return the exit code (None: not ours)."""
    from cove.errors import CoveError

    if not isinstance(exc, CoveError):
        return None
    from cove.cli.client import APIError, DaemonUnreachable

    if isinstance(exc, APIError):
        click.echo(f"Error response from daemon: {exc.message}", err=True)
    elif isinstance(exc, DaemonUnreachable):
        click.echo(f"cove: {exc.message}", err=True)
    else:
        click.echo(f"Error: {exc.message}", err=True)
    return code


@click.group(cls=CoveGroup, context_settings={"max_content_width": 100})
@click.option(
    "-H", "--host", envvar="COVE_HOST", metavar="URL",
    help="Daemon socket to connect to (default: $COVE_HOST, else unix:///run/cove/cove.sock).",
)
@click.version_option(__version__, "-v", "--version", prog_name="cove",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None) -> None:
    """cove: Docker's container networking, rebuilt in Python."""
    ctx.obj = Settings(host)


def client(ctx: click.Context | None = None) -> Client:
    """A client for the daemon chosen by the global options (starting it if needed and allowed)."""
    from cove.cli.client import DEFAULT_HOST, cli_client

    ctx = ctx or click.get_current_context()
    settings = ctx.find_object(Settings)
    host = (settings.host if settings else None) or DEFAULT_HOST
    return cli_client(host, _autostart)


def _autostart(endpoint: Endpoint) -> Spawned:
    spawned = spawn_daemon(endpoint.url)
    click.echo(
        f"cove: no daemon answered on {endpoint.url}; started one in the background"
        f" (pid {spawned.pid}, log: {spawned.log_path})",
        err=True,
    )
    return spawned


def daemon_command(*args: str) -> list[str]:
    """The command line that runs this very cove's CLI with ``args``, whatever the caller's directory holds.

    ``python -m cove`` would put the current directory first on ``sys.path``, so a
    ``cove/`` package planted there would run as root.  Instead the interpreter
    runs isolated (``-I``: no current directory, no ``PYTHON*`` variables, no user
    site-packages) and is told where this cove was imported from, as an absolute
    path; it also starts in ``/``.
    """
    import cove

    home = os.path.dirname(os.path.dirname(os.path.abspath(cove.__file__)))
    code = f"import sys; sys.path.insert(0, {home!r}); from cove.cli.main import main; sys.exit(main())"
    return [sys.executable, "-I", "-c", code, *args]


def spawn_daemon(url: str) -> Spawned:
    """Start ``cove daemon --host URL`` detached (see :func:`daemon_command`), output appended to its log."""
    import subprocess

    from cove.cli.client import Endpoint, Spawned

    socket_dir = os.path.dirname(os.path.abspath(Endpoint.parse(url).address))
    log_path, log = open_daemon_log(socket_dir)
    with log:
        process = subprocess.Popen(
            daemon_command("daemon", "--host", url),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
            start_new_session=True, close_fds=True,
        )
    return Spawned(pid=process.pid, log_path=log_path, poll=process.poll)


def open_daemon_log(socket_dir: str) -> tuple[str, Any]:
    """Open the daemon's log for appending: DAEMON_LOG, else ``<socket dir>/daemon.log``."""
    import tempfile

    candidates = [DAEMON_LOG, os.path.join(socket_dir, "daemon.log"),
                  os.path.join(tempfile.gettempdir(), "cove-daemon.log")]
    error: OSError | None = None
    for index, path in enumerate(candidates):
        try:
            if index == 1:
                os.makedirs(socket_dir, exist_ok=True)
            return path, open(path, "ab")
        except OSError as exc:
            error = exc
    raise click.ClickException(f"cannot open a log file for the daemon: {error}")


@cli.command(
    "daemon",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def daemon(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run the cove daemon (all arguments are passed to it).

    A global ``-H``/``$COVE_HOST`` is passed on as ``--host`` unless ARGS name one.
    """
    from cove.daemon.main import main as daemon_main

    argv = list(args)
    settings = ctx.find_object(Settings)
    named = any(a in ("-H", "--host") or a.startswith(("--host=", "-H=")) for a in argv)
    if settings is not None and settings.host and not named:
        argv = ["--host", settings.host, *argv]
    ctx.exit(daemon_main(argv) or 0)


@cli.command("version")
@click.pass_context
def version(ctx: click.Context) -> None:
    """Show the client and server versions."""
    import platform

    from cove.cli.client import API_VERSION

    rows = [("Version", __version__), ("API version", API_VERSION),
            ("Python version", platform.python_version()),
            ("OS/Arch", f"{sys.platform}/{platform.machine()}")]
    click.echo("Client:")
    click.echo("\n".join(f" {k + ':':<18}{v}" for k, v in rows))
    server = client(ctx).get("/version") or {}
    api = server.get("ApiVersion", "")
    if server.get("MinAPIVersion"):
        api = f"{api} (minimum version {server['MinAPIVersion']})"
    rows = [("Version", server.get("Version", "")), ("API version", api)]
    if server.get("Os") or server.get("Arch"):
        rows.append(("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"))
    shown = {"Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "Components", "Platform"}
    rows += [(key, str(value)) for key, value in server.items()
             if key not in shown and not isinstance(value, (dict, list))]
    click.echo("\nServer:")
    click.echo("\n".join(f" {k + ':':<18}{v}" for k, v in rows))


@cli.command("info")
@click.pass_context
def info(ctx: click.Context) -> None:
    """Show system-wide information (GET /info) as key: value lines."""
    from cove.cli.format import kv_lines

    click.echo("\n".join(kv_lines(client(ctx).get("/info") or {})))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cove`` script; returns the exit status."""
    try:
        rv = cli.main(args=argv, prog_name="cove", standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except click.UsageError as exc:
        # One line that names the flag and the reason, as every cove error; docker exits 125 here.
        cmd = exc.ctx.command_path if exc.ctx is not None else "cove"
        click.echo(f"{cmd}: {exc.format_message()} (see '{cmd} --help')", err=True)
        return 125
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(exc.code, err=True)
        return 1
    return 0
