"""Shell completion for bash and zsh: commands and options by click, names from the daemon.

``cove completion bash`` (or ``zsh``) prints the script to source; it calls ``cove`` back with
``_COVE_COMPLETE`` set, and then :func:`attach` gives the arguments that name containers,
networks or images a completer that asks the daemon (one request, without starting a daemon
that is not running).  Which argument names what is the table below, kept here in one place
rather than spread over the command modules, so a normal run pays nothing for completion.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

# (command path without "cove", argument name) -> what it names
KINDS: dict[tuple[str, str], str] = {
    **{(cmd, "names"): "container" for cmd in ("stop", "restart", "kill", "rm", "wait", "inspect", "start", "stats")},
    **{(cmd, "name"): "container" for cmd in ("logs", "port", "rename", "top")},
    **{(cmd, "container"): "container" for cmd in ("exec", "nsenter", "attach", "detach", "network connect",
                                                   "network disconnect")},
    ("capture", "target"): "container",
    ("diagnose", "source"): "container",
    ("diagnose", "destination"): "container",
    ("network inspect", "names"): "network",
    ("network rm", "names"): "network",
    ("network connect", "net"): "network",
    ("network disconnect", "net"): "network",
    ("run", "image"): "image",
    ("create", "image"): "image",
    ("rmi", "names"): "image",
    ("tag", "source"): "image",
}


def _names(kind: str) -> list[str]:
    from cove.cli.main import Settings
    from cove.cli.client import DEFAULT_HOST, Client

    ctx = click.get_current_context(silent=True)
    settings = ctx.find_object(Settings) if ctx else None
    api = Client((settings.host if settings else None) or os.environ.get("COVE_HOST") or DEFAULT_HOST, autostart=None)
    try:
        if kind == "container":
            return [n.lstrip("/") for c in api.get("/containers/json", {"all": "1"}) for n in c.get("Names", [])]
        if kind == "network":
            return [n["Name"] for n in api.get("/networks")]
        return [t for i in api.get("/images/json") for t in i.get("RepoTags") or [] if t != "<none>:<none>"]
    except Exception:  # noqa: BLE001 - no daemon, no names: completion must never fail loudly
        return []


def _completer(kind: str) -> Any:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        found = _names(kind)
        if kind == "image":     # "bb:latest" also completes as "bb"
            found += [t.rsplit(":", 1)[0] for t in found if t.endswith(":latest")]
        return [CompletionItem(n) for n in sorted(set(found)) if n.startswith(incomplete)]
    return complete


def attach(path: str, command: click.Command) -> None:
    """Give ``command``'s name arguments their completers (only while completing)."""
    for param in command.params:
        kind = KINDS.get((path, param.name or ""))
        if kind and isinstance(param, click.Argument):
            param._custom_shell_complete = _completer(kind)  # noqa: SLF001 - click's own hook
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            attach(f"{path} {name}", sub)


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL: eval "$(cove completion bash)" in ~/.bashrc."""
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(root, {}, "cove", "_COVE_COMPLETE").source())
