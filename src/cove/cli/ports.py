"""Parsing of ``-p/--publish`` and ``--expose`` into the Docker API's port maps.

``-p`` takes ``[ip:][hostport:]containerport[/proto]``: ports may be ranges
(``8000-8010:80-90``), the ip may be an IPv6 address in brackets
(``[::1]:8080:80``), proto is tcp (default), udp or sctp.  The result is what the
docker CLI sends: ``ExposedPorts`` ``{"80/tcp": {}}`` and ``HostConfig.PortBindings``
``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``.  A single container port with a
host range (``8000-8010:80``) keeps the range as its HostPort: the daemon picks one
free port in it.  Every error is one line naming the spec.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from collections.abc import Iterable

from cove.errors import InvalidArgument, field_error

PROTOCOLS = ("tcp", "udp", "sctp")
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class PortMapping:
    """One container port (``"80/tcp"``) and the host side it is published on."""

    port: str
    host_ip: str
    host_port: str

    def binding(self) -> dict[str, str]:
        return {"HostIp": self.host_ip, "HostPort": self.host_port}


def split_proto_port(raw: str) -> tuple[str, str]:
    """``"53/udp"`` -> ``("udp", "53")``; the proto defaults to tcp."""
    port, _, proto = raw.partition("/")
    if not port:
        return "", ""
    return (proto or "tcp"), port


def parse_port_range(raw: str) -> tuple[int, int]:
    """``"80"`` -> (80, 80); ``"80-90"`` -> (80, 90).  Raises ValueError with a reason."""
    if not raw:
        raise ValueError("empty port")
    first, sep, last = raw.partition("-")
    if not _NUMBER.fullmatch(first) or (sep and not _NUMBER.fullmatch(last)):
        raise ValueError(f"{raw!r} is not a port number or range")
    start = int(first)
    end = int(last) if sep else start
    if start > 65535 or end > 65535:
        raise ValueError(f"{raw!r} is out of range (0-65535)")
    if end < start:
        raise ValueError(f"range {raw!r} ends before it starts")
    return start, end


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_publish(spec: str) -> list[PortMapping]:
    """Parse one ``-p`` value into its mappings (several for a range)."""

    def bad(reason: str) -> InvalidArgument:
        return field_error("publish", spec, reason)

    ip, host_port, container = _split_parts(spec)
    proto, container = split_proto_port(container)
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise bad(f"unclosed bracket in IP address {ip!r}")
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise bad(f"invalid IP address {ip!r}") from None
    if not container:
        raise bad("no container port given")
    try:
        start, end = parse_port_range(container)
    except ValueError as exc:
        raise bad(f"invalid container port: {exc}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except ValueError as exc:
            raise bad(f"invalid host port: {exc}") from None
        if end != start and (end - start) != (host_end - host_start):
            raise bad(
                f"host port range {host_port} and container port range {container}"
                " have different sizes"
            )
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise bad(f"invalid protocol {proto!r} (expected tcp, udp or sctp)")
    mappings = []
    for offset in range(end - start + 1):
        hport = ""
        if host_port:
            hport = str(host_start + offset)
            if start == end and host_start != host_end:
                hport = f"{host_start}-{host_end}"
        mappings.append(PortMapping(f"{start + offset}/{proto}", ip, hport))
    return mappings


def parse_expose(spec: str) -> list[str]:
    """Parse one ``--expose`` value (``80``, ``80-90/udp``) into port keys."""
    proto, port = split_proto_port(spec)
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise field_error("expose", spec, f"invalid protocol {proto!r} (expected tcp, udp or sctp)")
    try:
        start, end = parse_port_range(port)
    except ValueError as exc:
        raise field_error("expose", spec, str(exc)) from None
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def port_maps(
    publish: Iterable[str], expose: Iterable[str] = ()
) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, str]]]]:
    """``(ExposedPorts, PortBindings)`` for the ``-p`` and ``--expose`` values given."""
    exposed: dict[str, dict[str, object]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        for mapping in parse_publish(spec):
            exposed.setdefault(mapping.port, {})
            bindings.setdefault(mapping.port, []).append(mapping.binding())
    for spec in expose:
        for port in parse_expose(spec):
            exposed.setdefault(port, {})
    return exposed, bindings
