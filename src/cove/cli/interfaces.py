"""``cove attach`` and ``cove detach``: pipework's extra interfaces, made by the daemon.

    cove attach CONTAINER --bridge br0 --ip 192.168.1.150/24@192.168.1.1 [--mac MAC] [--ifname eth1] [--vlan N]
    cove detach CONTAINER --ifname eth1

``cove attach`` is pipework's ``pipework br0 CONTAINER 192.168.1.150/24@192.168.1.1``
(not docker's ``attach``, which connects to a container's output: ``cove start -a`` /
``cove logs -f`` do that here).  It prints the interface's name in the container.
Both are one call to the daemon (``POST`` / ``DELETE /containers/{id}/interfaces``),
which validates, makes or removes the kernel objects and records them.
"""

from __future__ import annotations

import click

from cove.cli.main import client


@click.command("attach")
@click.option("--bridge", "-b", required=True, metavar="BRIDGE",
              help="An existing Linux or Open vSwitch bridge on the host.")
@click.option("--ip", "ip", required=True, metavar="IP/PREFIX[@GW]",
              help="The address and prefix; with @GW the container's default route goes via GW.")
@click.option("--mac", default=None, metavar="MAC", help="The interface's MAC (default: a random local one).")
@click.option("--ifname", "-i", default=None, metavar="NAME",
              help="The interface's name in the container (default: the first free ethN).")
@click.option("--vlan", type=int, default=None, metavar="ID",
              help="VLAN tag of the port (Open vSwitch bridges only).")
@click.argument("container")
@click.pass_context
def attach(ctx: click.Context, bridge: str, ip: str, mac: str | None, ifname: str | None, vlan: int | None,
           container: str) -> None:
    """Add a pipework-style interface on BRIDGE to a running CONTAINER."""
    from cove.cli.client import segment
    from cove.pipework import split_ip_spec

    address, gateway = split_ip_spec(ip)
    body: dict[str, object] = {"Bridge": bridge, "Address": address}
    if "@" in ip:
        body["Gateway"] = gateway
        if not gateway:
            raise click.BadParameter(f"{ip!r}: the gateway after '@' is empty", param_hint="--ip")
    if mac is not None:
        body["MacAddress"] = mac
    if ifname is not None:
        body["IfName"] = ifname
    if vlan is not None:
        body["Vlan"] = vlan
    out = client(ctx).post(f"/containers/{segment(container)}/interfaces", body) or {}
    click.echo(out.get("IfName", ""))


@click.command("detach")
@click.option("--ifname", "-i", required=True, metavar="NAME", help="The interface `cove attach` made.")
@click.argument("container")
@click.pass_context
def detach(ctx: click.Context, ifname: str, container: str) -> None:
    """Remove an interface that `cove attach` added to CONTAINER."""
    from urllib.parse import quote

    from cove.cli.client import segment

    client(ctx).delete(f"/containers/{segment(container)}/interfaces/{quote(ifname, safe='')}")
