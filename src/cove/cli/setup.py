"""``cove setup podman [--undo]``: make Podman use cove as its network backend.

Writes two things, and ``--undo`` removes exactly those:

- a containers.conf drop-in (default ``/etc/containers/containers.conf.d/50-cove.conf``) choosing
  ``network_backend = "netavark"`` and putting the helper directory first in ``helper_binaries_dir``
  (followed by podman's own directories, so conmon's helpers are still found);
- in the helper directory (default ``/usr/local/lib/cove/podman``), the link ``netavark`` ->
  ``cove-netavark`` (the one installed next to this ``cove``) and, when the daemon is not at the
  default socket (``-H``/``$COVE_HOST``), a file ``cove-host`` naming it (podman's cleanup process,
  which tears networks down, runs without the user's environment).

A drop-in needs Podman 4.1+ (c/common's ``containers.conf.d``); with an older one, point
``CONTAINERS_CONF`` at the written file.
"""

from __future__ import annotations

import os
import shutil
import sys

import click

from cove.cli.netavark import HOST_FILE

DEFAULT_CONF_DIR = "/etc/containers/containers.conf.d"
DEFAULT_HELPER_DIR = "/usr/local/lib/cove/podman"
DROP_IN = "50-cove.conf"
PODMAN_HELPER_DIRS = ["/usr/local/libexec/podman", "/usr/local/lib/podman", "/usr/libexec/podman", "/usr/lib/podman"]
MARK = "# written by `cove setup podman`; `cove setup podman --undo` removes it\n"


def netavark_program() -> str:
    """cove-netavark next to the running interpreter's scripts (the venv's bin), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "cove-netavark")
    if os.path.exists(here):
        return here
    found = shutil.which("cove-netavark")
    if found is None:
        raise click.ClickException("cove-netavark is not installed (run `make install`)")
    return found


def drop_in_text(helper_dir: str) -> str:
    dirs = ", ".join(f'"{d}"' for d in [helper_dir, *PODMAN_HELPER_DIRS])
    return (f"{MARK}[network]\nnetwork_backend = \"netavark\"\n\n[engine]\nhelper_binaries_dir = [{dirs}]\n")


def install(conf_dir: str, helper_dir: str, host: str | None = None) -> list[str]:
    os.makedirs(conf_dir, exist_ok=True)
    os.makedirs(helper_dir, exist_ok=True)
    written = []
    host_file = os.path.join(helper_dir, HOST_FILE)
    if host:
        with open(host_file, "w") as f:
            f.write(host + "\n")
        written.append(host_file)
    elif os.path.exists(host_file):
        os.unlink(host_file)
    link = os.path.join(helper_dir, "netavark")
    if os.path.lexists(link):
        if not os.path.islink(link):
            raise click.ClickException(f"{link} exists and is not cove's link; remove it first")
        os.unlink(link)
    os.symlink(netavark_program(), link)
    conf = os.path.join(conf_dir, DROP_IN)
    tmp = conf + ".tmp"
    with open(tmp, "w") as f:
        f.write(drop_in_text(helper_dir))
    os.replace(tmp, conf)
    return [conf, link, *written]


def uninstall(conf_dir: str, helper_dir: str) -> list[str]:
    removed = []
    conf = os.path.join(conf_dir, DROP_IN)
    if os.path.exists(conf):
        with open(conf) as f:
            if f.read().startswith(MARK):
                os.unlink(conf)
                removed.append(conf)
    link = os.path.join(helper_dir, "netavark")
    if os.path.islink(link) and os.path.basename(os.readlink(link)) == "cove-netavark":
        os.unlink(link)
        removed.append(link)
        host_file = os.path.join(helper_dir, HOST_FILE)
        if os.path.exists(host_file):
            os.unlink(host_file)
            removed.append(host_file)
        try:
            os.rmdir(helper_dir)
        except OSError:
            pass
    return removed


@click.group("setup")
def setup() -> None:
    """Make other tools use cove's networks."""


@setup.command("podman")
@click.option("--undo", is_flag=True, help="Remove what `cove setup podman` wrote.")
@click.option("--conf-dir", default=DEFAULT_CONF_DIR, show_default=True, help="containers.conf drop-in directory.")
@click.option("--helper-dir", default=DEFAULT_HELPER_DIR, show_default=True,
              help="Directory for the `netavark` link (first in helper_binaries_dir).")
@click.pass_context
def podman(ctx: click.Context, undo: bool, conf_dir: str, helper_dir: str) -> None:
    """Podman runs cove-netavark as its netavark: `podman run --network NET` joins cove network NET."""
    from cove.cli.main import Settings
    from cove.cli.client import DEFAULT_HOST

    settings = ctx.find_object(Settings)
    host = settings.host if settings and settings.host and settings.host != DEFAULT_HOST else None
    if undo:
        for path in uninstall(conf_dir, helper_dir):
            click.echo(f"removed {path}")
        return
    for path in install(conf_dir, helper_dir, host):
        click.echo(f"wrote {path}")
