"""Looking inside: ``cove nsenter`` and ``cove capture``.

Both ask the daemon where a container lives in the kernel (its init's PID, the
host end of its veth) and then run a *host* program there, as the seed articles
do by hand with ``docker inspect -f '{{.State.Pid}}'``, ``nsenter -t PID -n``
and ``tcpdump -i vethXXXX``: a host ``ip``, ``ss``, ``tcpdump`` or ``nft`` sees
the container's view even when its image has none of them.  They run on the
machine where the CLI runs, which must be the daemon's.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import click

from cove.cli.main import client


def _inspect(ctx: click.Context, kind: str, name: str) -> dict[str, Any]:
    from cove.cli.client import segment

    path = f"/containers/{segment(name)}/json" if kind == "container" else f"/networks/{segment(name)}"
    return client(ctx).get(path)  # type: ignore[no-any-return]


def _exec(argv: list[str]) -> None:
    tool = shutil.which(argv[0])
    if tool is None:
        raise click.ClickException(f"{argv[0]} is not installed on this host")
    sys.stdout.flush()
    os.execv(tool, argv)


@click.command("nsenter", context_settings={"allow_interspersed_args": False})
@click.option("--net", "-n", "net", is_flag=True, help="Enter the network namespace.")
@click.option("--mount", "-m", "mount", is_flag=True, help="Enter the mount namespace (and root).")
@click.option("--uts", "-u", "uts", is_flag=True, help="Enter the UTS namespace (hostname).")
@click.option("--ipc", "-i", "ipc", is_flag=True, help="Enter the IPC namespace.")
@click.option("--pid", "-p", "pid", is_flag=True, help="Enter the PID namespace.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def nsenter(ctx: click.Context, net: bool, mount: bool, uts: bool, ipc: bool, pid: bool, container: str,
            command: tuple[str, ...]) -> None:
    """Run a host COMMAND inside chosen namespaces of CONTAINER (default: --net only)."""
    state = _inspect(ctx, "container", container)["State"]
    if not state.get("Running"):
        raise click.ClickException(f"container {container} is not running")
    if command and command[0] == "--":
        command = command[1:]
    flags = [f for f, on in (("--net", net), ("--mount", mount), ("--uts", uts), ("--ipc", ipc), ("--pid", pid)) if on]
    _exec(["nsenter", f"--target={state['Pid']}", *(flags or ["--net"]), "--", *command])


@click.command("capture")
@click.option("--iface", default=None, help="Interface inside the container (default eth0).")
@click.option("--network", "network", default=None, help="Capture a whole network's bridge instead.")
@click.option("-w", "--write", "write", default=None, metavar="FILE.pcap", help="Write packets to a pcap file.")
@click.option("-c", "--count", type=int, default=None, help="Stop after this many packets.")
@click.argument("target", required=False)
@click.argument("filter", nargs=-1)
@click.pass_context
def capture(ctx: click.Context, iface: str | None, network: str | None, write: str | None, count: int | None,
            target: str | None, filter: tuple[str, ...]) -> None:
    """Capture CONTAINER's traffic from the host side with tcpdump (the veth's host end)."""
    if network:
        if target:
            filter = (target, *filter)
        info = _inspect(ctx, "network", network)
        dev = (info.get("Cove") or {}).get("Bridge")
        if not dev:
            raise click.ClickException(f"network {network} has no bridge to capture")
    else:
        if not target:
            raise click.UsageError("give a CONTAINER or --network NET")
        data = _inspect(ctx, "container", target)
        want = iface or "eth0"
        dev = None
        for settings in (data["NetworkSettings"].get("Networks") or {}).values():
            cove = settings.get("Cove") or {}
            if cove.get("Interface") == want:
                dev = cove.get("HostInterface")
        if dev is None:
            raise click.ClickException(f"container {target} has no interface {want} on a bridge "
                                       "(host/none/container modes: use `cove nsenter ... tcpdump`)")
    argv = ["tcpdump", "-n", "-i", dev]
    if write:
        argv += ["-w", write]
    if count:
        argv += ["-c", str(count)]
    click.echo(f"cove: capturing on {dev}", err=True)
    _exec([*argv, *filter])
