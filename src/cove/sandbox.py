"""External sandboxes: network namespaces made by another runtime (podman, a CNI runtime), joined to cove networks.

Docker has no API for this; cove's own lives under ``/cove/sandboxes`` (a cove extension, like
``/containers/{id}/interfaces``).  A *sandbox* is a caller-chosen id (podman's container id, a CNI
runtime's ``containerID/ifname``), a name (what cove's DNS answers for, with the short id and the
aliases), a namespace path (``/run/netns/X`` or ``/proc/PID/ns/net``) and, per cove network, one
interface.  The daemon does the kernel work with the network's driver, firewall and DNS, as for its
own containers, and records the sandbox so a daemon restart keeps it:

``POST /cove/sandboxes``
    body ``{"id", "name", "netns", "networks": {NET: {"ifname", "ips", "mac", "aliases"}},
    "ports": [{"proto", "host_ip", "host_port", "container_port"}], "hold_ports": false}``;
    attaches every network the sandbox is not on yet (one already attached with the same ifname is
    kept as is, so a retried setup is harmless), all or nothing; answers 201 with the sandbox's
    status (below).  ``ips`` are wanted addresses (``"10.1.0.5"`` or ``"10.1.0.5/24"``, at most one
    IPv4 and one IPv6); port mappings DNAT to the sandbox's first IPv4 address.  Host ports are not
    probed for listeners: the runtime holds them itself (podman's conmon does).
``GET /cove/sandboxes/{id}``
    the status: ``{"id", "name", "netns", "networks": {NET: {"ifname", "mac", "addresses":
    [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"}], "dns": ["127.0.0.11"]}}, "ports": [...],
    "problems": [...]}``; ``problems`` lists what the kernel lacks compared with the record (a missing
    interface, address or MAC, a missing namespace): empty when all is as recorded.
``DELETE /cove/sandboxes/{id}`` (``?network=NET`` for one network)
    detaches and forgets; 204, also when there is nothing to remove (idempotent).
``GET /cove/sandboxes``
    every sandbox's status (a runtime's GC compares it with what it knows).

At start-up the daemon keeps a sandbox whose namespace still exists (names, resolver, ports come
back) and drops one whose namespace is gone (its host-side links and leases are released).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from ipaddress import ip_interface
from typing import Any

from .errors import InvalidArgument, field_error
from .portmap import PROTOCOLS, PortMapping

DNS_SERVER = "127.0.0.11"
MAX_IFNAME = 15


@dataclass
class SandboxNetwork:
    """What the runtime asked of one network."""

    network_id: str
    ifname: str
    aliases: list[str] = field(default_factory=list)
    ip: str | None = None
    ip6: str | None = None
    mac: str | None = None


@dataclass
class Sandbox:
    id: str
    name: str
    netns: str
    networks: dict[str, SandboxNetwork] = field(default_factory=dict)     # network id -> request
    ports: list[dict[str, Any]] = field(default_factory=list)            # PortMapping dicts, published

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sandbox:
        return cls(id=d["id"], name=d["name"], netns=d["netns"],
                   networks={k: SandboxNetwork(**v) for k, v in d.get("networks", {}).items()},
                   ports=list(d.get("ports", [])))


@dataclass
class NetworkRequest:
    """One entry of a request's ``networks`` (by the network's name or id)."""

    network: str
    ifname: str
    aliases: list[str]
    ip: str | None
    ip6: str | None
    mac: str | None


@dataclass
class AttachRequest:
    id: str
    name: str
    netns: str
    networks: list[NetworkRequest]
    ports: list[dict[str, Any]]      # {"proto", "host_ip", "host_port", "container_port"}


def _str(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or not v:
        raise InvalidArgument(f"invalid {where}{key}: {'missing' if v is None else 'not a non-empty string'}")
    return v


def _strs(d: dict[str, Any], key: str, where: str) -> list[str]:
    v = d.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"invalid {where}{key}: not a list of strings")
    return list(v)


def check_ifname(name: str, where: str) -> None:
    if not 0 < len(name) <= MAX_IFNAME or "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise field_error(f"{where}ifname", name, f"not an interface name (1-{MAX_IFNAME} characters, no '/' or space)")


def parse_attach(body: Any) -> AttachRequest:
    """The body of ``POST /cove/sandboxes``, checked field by field (nothing changes on a bad one)."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid body: a JSON object is expected")
    sid = _str(body, "id", "")
    if "/" in sid or len(sid) > 256:
        raise field_error("id", sid, "has a '/' or is longer than 256 characters")
    netns = _str(body, "netns", "")
    if not netns.startswith("/"):
        raise field_error("netns", netns, "not an absolute path to a network namespace")
    name = body.get("name") or sid
    if not isinstance(name, str):
        raise field_error("name", repr(name), "not a string")
    nets = body.get("networks")
    if not isinstance(nets, dict) or not nets:
        raise InvalidArgument("invalid networks: an object naming at least one network is expected")
    reqs: list[NetworkRequest] = []
    used: set[str] = set()
    for i, (net, spec) in enumerate(nets.items()):
        where = f"networks.{net}."
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise InvalidArgument(f"invalid {where[:-1]}: an object is expected")
        ifname = spec.get("ifname") or f"eth{i}"
        if not isinstance(ifname, str):
            raise field_error(f"{where}ifname", repr(ifname), "not a string")
        check_ifname(ifname, where)
        if ifname in used:
            raise field_error(f"{where}ifname", ifname, "given to two networks")
        used.add(ifname)
        ip4 = ip6 = None
        for text in _strs(spec, "ips", where):
            try:
                addr = ip_interface(text).ip
            except ValueError:
                raise field_error(f"{where}ips", text, "not an IP address") from None
            if addr.version == 4:
                if ip4 is not None:
                    raise field_error(f"{where}ips", text, "a second IPv4 address (one per network)")
                ip4 = str(addr)
            else:
                if ip6 is not None:
                    raise field_error(f"{where}ips", text, "a second IPv6 address (one per network)")
                ip6 = str(addr)
        mac = spec.get("mac") or None
        if mac is not None and not isinstance(mac, str):
            raise field_error(f"{where}mac", repr(mac), "not a string")
        reqs.append(NetworkRequest(net, ifname, _strs(spec, "aliases", where), ip4, ip6, mac))
    ports = body.get("ports") or []
    if not isinstance(ports, list):
        raise InvalidArgument("invalid ports: a list is expected")
    out: list[dict[str, Any]] = []
    for j, p in enumerate(ports):
        where = f"ports[{j}]."
        if not isinstance(p, dict):
            raise InvalidArgument(f"invalid ports[{j}]: an object is expected")
        proto = str(p.get("proto") or "tcp").lower()
        if proto not in PROTOCOLS:
            raise field_error(f"{where}proto", proto, "not tcp, udp or sctp")
        host_ip = p.get("host_ip") or "0.0.0.0"
        try:
            ip_interface(host_ip)
        except ValueError:
            raise field_error(f"{where}host_ip", str(host_ip), "not an IP address") from None
        for key in ("host_port", "container_port"):
            v = p.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
                raise field_error(f"{where}{key}", repr(v), "not a port number (1-65535)")
        out.append({"proto": proto, "host_ip": host_ip, "host_port": p["host_port"],
                    "container_port": p["container_port"]})
    return AttachRequest(sid, name, netns, reqs, out)


def mappings(ports: list[dict[str, Any]], ip4: str, ip6: str) -> list[PortMapping]:
    """The DNAT mappings of a request's ports to the sandbox's addresses (IPv6 host addresses to ip6)."""
    out = []
    for p in ports:
        v6 = ":" in p["host_ip"]
        target = ip6 if v6 else ip4
        if not target:
            continue
        host_ip = "::" if p["host_ip"] == "0.0.0.0" and v6 else p["host_ip"]
        out.append(PortMapping(p["proto"], host_ip, p["host_port"], target, p["container_port"]))
    return out
