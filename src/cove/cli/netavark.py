"""``cove-netavark``: cove in Podman's network backend slot (netavark's command-line contract).

Podman 4.3 with ``network_backend = "netavark"`` runs ``netavark`` from its ``helper_binaries_dir``
(``cove setup podman`` puts a link to this program there) as::

    netavark [--config DIR] [--rootless BOOL] [--aardvark-binary PATH] setup <netns>    < NetworkOptions JSON
    netavark [...] teardown <netns>                                                     < NetworkOptions JSON

and reads stdout: for ``setup`` one JSON object, network name -> StatusBlock (``interfaces`` ->
ifname -> ``mac_address`` and ``subnets`` [{``ipnet``, ``gateway``}], ``dns_server_ips``,
``dns_search_domains``); for ``teardown`` nothing.  A failure is ``{"error": "..."}`` on stdout and
a non-zero exit; nothing else may reach stdout (messages go to stderr).  The field names are
netavark's ``src/network/types.rs``.

This program is a thin client of the cove daemon (see :func:`_host` for which one; it never starts
one): the container becomes an external sandbox (:mod:`cove.sandbox`) whose id is
podman's container id and whose name is the container's name.  Each podman network maps to the cove
network of the same name (or the one its ``cove.network`` option names); podman's IPAM chose the
addresses (``static_ips``), so the two networks must have the same subnet, which cove checks.
Port mappings are DNATed by cove's firewall; podman's conmon holds the host ports itself.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

NETAVARK_VERSION = "1.4.0"       # what `netavark version` answers (podman only shows it)


class Failure(Exception):
    pass


HOST_FILE = "cove-host"


def _host() -> str:
    """The daemon's socket: the ``cove-host`` file next to the invoked program (``cove setup podman``
    writes it in the helper directory: podman's cleanup process, which tears networks down, runs
    without the user's environment), else ``$COVE_HOST``, else cove's default."""
    from cove.cli.client import DEFAULT_HOST

    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), HOST_FILE)) as f:
            host = f.read().strip()
        if host:
            return host
    except OSError:
        pass
    return os.environ.get("COVE_HOST") or DEFAULT_HOST


def _client() -> Any:
    from cove.cli.client import Client

    return Client(_host())


def sandbox_request(opts: dict[str, Any], netns: str) -> dict[str, Any]:
    """netavark's NetworkOptions -> the body of ``POST /cove/sandboxes``."""
    if not isinstance(opts, dict) or not isinstance(opts.get("container_id"), str):
        raise Failure("invalid network options: no container_id")
    info = opts.get("network_info") or {}
    nets: dict[str, Any] = {}
    for name, per in (opts.get("networks") or {}).items():
        net_opts = (info.get(name) or {}).get("options") or {}
        target = net_opts.get("cove.network") or name
        if not isinstance(per, dict) or not per.get("interface_name"):
            raise Failure(f"invalid network options for {name}: no interface_name")
        nets[target] = {"ifname": per["interface_name"], "ips": [str(ip) for ip in per.get("static_ips") or []],
                        "mac": per.get("static_mac") or None, "aliases": list(per.get("aliases") or [])}
    if not nets:
        raise Failure("invalid network options: no networks")
    ports = []
    for pm in opts.get("port_mappings") or []:
        count = int(pm.get("range") or 1)
        for proto in str(pm.get("protocol") or "tcp").split(","):
            for i in range(count):
                ports.append({"proto": proto.strip(), "host_ip": pm.get("host_ip") or "0.0.0.0",
                              "host_port": int(pm["host_port"]) + i, "container_port": int(pm["container_port"]) + i})
    return {"id": opts["container_id"], "name": opts.get("container_name") or opts["container_id"],
            "netns": netns, "networks": nets, "ports": ports}


def status_blocks(status: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The daemon's sandbox status -> netavark's answer (keyed by podman's network names)."""
    back = {}
    for name in opts.get("networks") or {}:
        net_opts = ((opts.get("network_info") or {}).get(name) or {}).get("options") or {}
        back[net_opts.get("cove.network") or name] = name
    out: dict[str, Any] = {}
    for cove_name, st in status["networks"].items():
        if cove_name not in back:
            continue          # podman asked for these only (`network connect` adds one to several)
        subnets = [{"ipnet": a["address"], **({"gateway": a["gateway"]} if a.get("gateway") else {})}
                   for a in st["addresses"]]
        out[back.get(cove_name, cove_name)] = {
            "interfaces": {st["ifname"]: {"mac_address": st["mac"], "subnets": subnets}},
            "dns_server_ips": st["dns"], "dns_search_domains": []}
    return out


def _parse_args(argv: list[str]) -> tuple[str, str | None]:
    """Global options are accepted and ignored (cove's daemon has its own settings)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            return "help", None
        if a in ("-V", "--version", "version"):
            return "version", None
        if a.startswith("-"):
            i += 1 if "=" in a else 2
            continue
        if a in ("setup", "teardown"):
            if i + 1 >= len(argv):
                raise Failure(f"{a}: the network namespace path is missing")
            return a, argv[i + 1]
        raise Failure(f"unknown command {a!r} (cove-netavark does setup, teardown, version)")
    raise Failure("no command (cove-netavark does setup, teardown, version)")


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    from cove.cli.client import APIError, DaemonUnreachable

    try:
        cmd, netns = _parse_args(argv)
        if cmd == "help":
            stdout.write(json.dumps({"usage": "cove-netavark [--config DIR] [--rootless B] [--aardvark-binary P] "
                                              "setup|teardown NETNS < network-options.json"}) + "\n")
            return 0
        if cmd == "version":
            stdout.write(json.dumps({"version": NETAVARK_VERSION, "commit": "cove", "build_time": "", "target": ""})
                         + "\n")
            return 0
        try:
            opts = json.loads(stdin.read() or "{}")
        except ValueError as exc:
            raise Failure(f"invalid network options on stdin: {exc}") from None
        assert netns is not None
        if cmd == "setup":
            req = sandbox_request(opts, netns)
            status = _client().post("/cove/sandboxes", req)
            stdout.write(json.dumps(status_blocks(status, opts)) + "\n")
        else:
            cid = opts.get("container_id") if isinstance(opts, dict) else None
            if not isinstance(cid, str) or not cid:
                raise Failure("invalid network options: no container_id")
            # only the networks listed: `podman network disconnect` tears down one of several
            client = _client()
            names = list(sandbox_request(opts, netns)["networks"]) if opts.get("networks") else []
            if not names:
                client.delete(f"/cove/sandboxes/{cid}")
            for name in names:
                client.delete(f"/cove/sandboxes/{cid}", {"network": name})
        return 0
    except (Failure, APIError, DaemonUnreachable, OSError) as exc:
        stdout.write(json.dumps({"error": f"cove: {exc}"}) + "\n")
        print(f"cove-netavark: {exc}", file=sys.stderr)
        return 1


def main() -> int:
    return run(sys.argv[1:], sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
