"""``cove-cni``: a CNI plugin (spec 0.3.0 to 1.1.0) that joins a runtime's namespace to a cove network.

A runtime runs it with ``CNI_COMMAND`` (ADD, DEL, CHECK, VERSION, GC, STATUS), ``CNI_CONTAINERID``,
``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_ARGS`` in the environment and the network configuration on
stdin::

    {"cniVersion": "1.0.0", "name": "mynet", "type": "cove-cni", "network": "red",
     "capabilities": {"portMappings": true, "ips": true, "mac": true, "aliases": true}}

``network`` names the cove network (else the configuration's ``name``); ``cove_host`` (else
``$COVE_HOST``, else cove's default socket) the daemon.  It is a thin client of the daemon's
external sandboxes (:mod:`cove.sandbox`): one sandbox per attachment, id ``cni-<containerID>-<ifname>``,
named ``K8S_POD_NAME`` from ``CNI_ARGS`` if given, else the container id (cove's DNS answers for it
and the ``aliases``).  Runtime configuration honoured: ``portMappings``, ``ips``, ``mac``, ``aliases``.

- ADD answers the spec's result (1.x: ``interfaces``/``ips``/``routes``/``dns``; 0.3.x/0.4.0 with
  ``version`` per address); a repeated ADD answers the existing attachment.
- DEL is idempotent: an unknown attachment (or an unknown network) is success.
- CHECK compares ``prevResult`` with the daemon's record and the kernel (the daemon's check).
- GC deletes this network's cove-cni attachments absent from ``cni.dev/valid-attachments``.
- STATUS fails (code 50) when the daemon does not answer.
Errors are the spec's ``{"cniVersion", "code", "msg", "details"}`` on stdout with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
# the spec's well-known error codes
INCOMPATIBLE, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, INVALID_ENV, IO_FAILURE, DECODE, INVALID_CONFIG = 1, 2, 3, 4, 5, 6, 7
TRY_LATER, NOT_AVAILABLE = 11, 50


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        raise CniError(INCOMPATIBLE, f"invalid cniVersion {v!r}") from None


def sandbox_id(container_id: str, ifname: str) -> str:
    return f"cni-{container_id}-{ifname}"


def _client(conf: Mapping[str, Any]) -> Any:
    from cove.cli.client import DEFAULT_HOST, Client

    return Client(str(conf.get("cove_host") or os.environ.get("COVE_HOST") or DEFAULT_HOST))


def _cni_args(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _env(name: str, env: Mapping[str, str]) -> str:
    v = env.get(name, "")
    if not v:
        raise CniError(INVALID_ENV, f"{name} is not set")
    return v


def result(status: dict[str, Any], version: str, netns: str) -> dict[str, Any]:
    """The daemon's sandbox status -> the spec's result for ``version``."""
    old = _vtuple(version) < (1, 0, 0)
    interfaces: list[dict[str, Any]] = []
    ips: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    dns: set[str] = set()
    for net in status["networks"].values():
        idx = len(interfaces)
        interfaces.append({"name": net["ifname"], "mac": net["mac"], "sandbox": netns})
        for a in net["addresses"]:
            v6 = ":" in a["address"]
            ip: dict[str, Any] = {"address": a["address"], "interface": idx}
            if a.get("gateway"):
                ip["gateway"] = a["gateway"]
                if net["ifname"] == "eth0":
                    routes.append({"dst": "::/0" if v6 else "0.0.0.0/0", "gw": a["gateway"]})
            if old:
                ip["version"] = "6" if v6 else "4"
            ips.append(ip)
        dns.update(net["dns"])
    out: dict[str, Any] = {"cniVersion": version, "interfaces": interfaces, "ips": ips}
    if routes:
        out["routes"] = routes
    if dns:
        out["dns"] = {"nameservers": sorted(dns)}
    return out


def _attach_body(conf: Mapping[str, Any], env: Mapping[str, str], network: str) -> dict[str, Any]:
    rc = conf.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        raise CniError(INVALID_CONFIG, "runtimeConfig is not an object")
    cid, ifname, netns = _env("CNI_CONTAINERID", env), _env("CNI_IFNAME", env), _env("CNI_NETNS", env)
    args = _cni_args(env.get("CNI_ARGS", ""))
    ips = rc.get("ips") or []
    ports = []
    for pm in rc.get("portMappings") or []:
        if not isinstance(pm, dict):
            raise CniError(INVALID_CONFIG, "runtimeConfig.portMappings: an entry is not an object")
        ports.append({"proto": pm.get("protocol") or "tcp", "host_ip": pm.get("hostIP") or "0.0.0.0",
                      "host_port": pm.get("hostPort"), "container_port": pm.get("containerPort")})
    return {"id": sandbox_id(cid, ifname), "name": args.get("K8S_POD_NAME") or cid, "netns": netns,
            "networks": {network: {"ifname": ifname, "ips": ips, "mac": rc.get("mac") or None,
                                   "aliases": _aliases(rc.get("aliases"), conf, network)}},
            "ports": ports}


def _aliases(value: Any, conf: Mapping[str, Any], network: str) -> list[str]:
    """The ``aliases`` capability: a list (the CNI conventions), or podman's map of network name to
    list (podman 4's CNI backend keys it by its network's name: the configuration's ``name``)."""
    if isinstance(value, dict):
        value = value.get(str(conf.get("name") or ""), value.get(network, []))
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise CniError(INVALID_CONFIG, "runtimeConfig.aliases: not a list of names")
    return list(value)


def _check(status: dict[str, Any], prev: Any) -> None:
    if status["problems"]:
        raise CniError(TRY_LATER, "the attachment differs from the kernel", "; ".join(status["problems"]))
    if not isinstance(prev, dict):
        raise CniError(INVALID_CONFIG, "CHECK needs prevResult")
    have = {a["address"] for n in status["networks"].values() for a in n["addresses"]}
    want = {ip.get("address") for ip in prev.get("ips") or []}
    if want - have:
        raise CniError(TRY_LATER, "prevResult's addresses are not on the interface", ", ".join(sorted(want - have)))
    macs = {n["ifname"]: n["mac"].lower() for n in status["networks"].values()}
    for itf in prev.get("interfaces") or []:
        if itf.get("sandbox") and itf.get("name") in macs and itf.get("mac") and \
                itf["mac"].lower() != macs[itf["name"]]:
            raise CniError(TRY_LATER, f"interface {itf['name']} has MAC {macs[itf['name']]}, not {itf['mac']}")


def run(env: Mapping[str, str], stdin: TextIO, stdout: TextIO) -> int:
    from cove.cli.client import APIError, DaemonUnreachable

    version = "1.1.0"
    try:
        cmd = env.get("CNI_COMMAND", "")
        if not cmd:
            raise CniError(INVALID_ENV, "CNI_COMMAND is not set")
        text = stdin.read()
        try:
            conf = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise CniError(DECODE, f"invalid network configuration: {exc}") from None
        if not isinstance(conf, dict):
            raise CniError(DECODE, "the network configuration is not a JSON object")
        version = str(conf.get("cniVersion") or version)
        if cmd == "VERSION":
            stdout.write(json.dumps({"cniVersion": version if version in SUPPORTED else "1.1.0",
                                     "supportedVersions": SUPPORTED}) + "\n")
            return 0
        if version not in SUPPORTED:
            raise CniError(INCOMPATIBLE, f"cniVersion {version} is not supported", ", ".join(SUPPORTED))
        network = str(conf.get("network") or conf.get("name") or "")
        client = _client(conf)
        if cmd == "STATUS":
            if _vtuple(version) < (1, 1, 0):
                raise CniError(INCOMPATIBLE, "STATUS needs cniVersion 1.1.0")
            try:
                client.get("/_ping")
            except (DaemonUnreachable, APIError, OSError) as exc:
                raise CniError(NOT_AVAILABLE, "the cove daemon does not answer", str(exc)) from None
            return 0
        if not network:
            raise CniError(INVALID_CONFIG, "no network: set \"network\" (the cove network) or \"name\"")
        if cmd == "ADD":
            status = client.post("/cove/sandboxes", _attach_body(conf, env, network))
            stdout.write(json.dumps(result(status, version, env["CNI_NETNS"])) + "\n")
            return 0
        if cmd == "DEL":
            sid = sandbox_id(_env("CNI_CONTAINERID", env), _env("CNI_IFNAME", env))
            client.delete(f"/cove/sandboxes/{sid}", {"network": network})
            return 0
        if cmd == "CHECK":
            if _vtuple(version) < (0, 4, 0):
                raise CniError(INCOMPATIBLE, "CHECK needs cniVersion 0.4.0 or later")
            sid = sandbox_id(_env("CNI_CONTAINERID", env), _env("CNI_IFNAME", env))
            try:
                status = client.get(f"/cove/sandboxes/{sid}")
            except APIError as exc:
                if exc.status == 404:
                    raise CniError(UNKNOWN_CONTAINER, f"no attachment {sid}") from None
                raise
            _check(status, conf.get("prevResult"))
            return 0
        if cmd == "GC":
            if _vtuple(version) < (1, 1, 0):
                raise CniError(INCOMPATIBLE, "GC needs cniVersion 1.1.0")
            valid = {sandbox_id(str(a.get("containerID")), str(a.get("ifname")))
                     for a in conf.get("cni.dev/valid-attachments") or [] if isinstance(a, dict)}
            for sb in client.get("/cove/sandboxes"):
                if sb["id"].startswith("cni-") and sb["id"] not in valid and network in sb["networks"]:
                    client.delete(f"/cove/sandboxes/{sb['id']}", {"network": network})
            return 0
        raise CniError(INVALID_ENV, f"unknown CNI_COMMAND {cmd!r}")
    except CniError as exc:
        err = {"cniVersion": version, "code": exc.code, "msg": exc.msg}
        if exc.details:
            err["details"] = exc.details
        stdout.write(json.dumps(err) + "\n")
        return 1
    except APIError as exc:
        code = UNKNOWN_CONTAINER if exc.status == 404 else INVALID_CONFIG if exc.status == 400 else TRY_LATER
        stdout.write(json.dumps({"cniVersion": version, "code": code, "msg": str(exc)}) + "\n")
        return 1
    except (DaemonUnreachable, OSError) as exc:
        stdout.write(json.dumps({"cniVersion": version, "code": TRY_LATER, "msg": f"cove daemon: {exc}"}) + "\n")
        return 1


def main() -> int:
    return run(os.environ, sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
