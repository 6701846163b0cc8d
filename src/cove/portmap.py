"""Published ports: from Docker's ``PortBindings`` to concrete mappings.  Pure logic.

``requests`` reads what the user asked (``-p``/``-P``, Docker's JSON shape
``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``) into validated
:class:`PortRequest` values; :func:`allocate` turns them into
:class:`PortMapping` values, choosing free host ports where none was given and
refusing conflicts with ports already published (by host address, port and
protocol; ``0.0.0.0`` overlaps every address) or held by a host process (the
``is_free`` probe the caller passes in).  The kernel side (DNAT) lives in the
firewall backends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any

from .errors import Conflict, InvalidArgument, NotImplementedByCove, Unavailable

PROTOCOLS = ("tcp", "udp", "sctp")
ANY = "0.0.0.0"


@dataclass(frozen=True)
class PortRequest:
    proto: str
    container_port: int
    host_ip: str                      # "0.0.0.0" for every address
    host_range: tuple[int, int] | None   # None: any free port


@dataclass(frozen=True)
class PortMapping:
    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PortMapping:
        return cls(**d)


def _port(value: str, spec: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid port spec {spec!r}: {value!r} is not a port number") from None
    if not 1 <= n <= 65535:
        raise InvalidArgument(f"invalid port spec {spec!r}: port {n} is outside 1-65535")
    return n


def parse_key(key: str) -> tuple[int, str]:
    """``"80/tcp"`` -> (80, "tcp")."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid port spec {key!r}: unknown protocol {proto!r} (tcp, udp or sctp)")
    return _port(port, key), proto


def requests(bindings: Mapping[str, Any], exposed: Iterable[str], publish_all: bool,
             default_ip: str = ANY) -> list[PortRequest]:
    out: list[PortRequest] = []
    items: list[tuple[str, list[dict[str, str]]]] = [(k, list(v or [{}])) for k, v in bindings.items()]
    if publish_all:
        items += [(k, [{}]) for k in exposed if k not in bindings]
    for key, hosts in items:
        cport, proto = parse_key(key)
        for h in hosts:
            host_ip = (h.get("HostIp") or "").strip("[]") or default_ip
            try:
                addr = ip_address(host_ip)
            except ValueError:
                raise InvalidArgument(f"invalid port spec {key!r}: host address {host_ip!r} is not an IP") from None
            if not isinstance(addr, IPv4Address):
                raise NotImplementedByCove(f"invalid port spec {key!r}: IPv6 host address {host_ip} "
                                           "is not supported by cove yet")
            raw = (h.get("HostPort") or "").strip()
            rng: tuple[int, int] | None = None
            if raw:
                lo, _, hi = raw.partition("-")
                rng = (_port(lo, raw), _port(hi or lo, raw))
                if rng[0] > rng[1]:
                    raise InvalidArgument(f"invalid port spec {raw!r}: range end before start")
            out.append(PortRequest(proto, cport, str(addr), rng))
    return out


def allocate(reqs: Iterable[PortRequest], container_ip: str, taken: Iterable[PortMapping],
             is_free: Callable[[str, str, int], bool], ephemeral: tuple[int, int],
             host_addresses: Iterable[str]) -> list[PortMapping]:
    """Concrete mappings for ``reqs``; raises before anything is chosen if one cannot be met."""
    # host addresses in use per (proto, port): a clash check costs the same with 10 or 10,000 published
    used: dict[tuple[str, int], set[str]] = {}
    for m in taken:
        used.setdefault((m.proto, m.host_port), set()).add(m.host_ip)
    local = set(host_addresses) | {ANY}
    out: list[PortMapping] = []

    def clash(proto: str, ip: str, port: int) -> bool:
        ips = used.get((proto, port))
        return bool(ips) and (ip == ANY or ANY in ips or ip in ips)

    for r in reqs:
        if r.host_ip not in local:
            raise InvalidArgument(f"invalid port spec {r.host_ip}:{r.container_port}/{r.proto}: "
                                  f"{r.host_ip} is not an address of this host")
        lo, hi = r.host_range or ephemeral
        chosen = None
        for port in range(lo, hi + 1):
            if clash(r.proto, r.host_ip, port):
                continue
            if not is_free(r.proto, r.host_ip, port):
                if r.host_range is not None and lo == hi:
                    raise Conflict(f"Bind for {r.host_ip}:{port} failed: port is already in use by a host process")
                continue
            chosen = port
            break
        if chosen is None:
            if r.host_range is not None and lo == hi:
                raise Conflict(f"Bind for {r.host_ip}:{lo} failed: port is already allocated")
            raise Unavailable(f"no free host port in {lo}-{hi} for {r.container_port}/{r.proto}")
        m = PortMapping(r.proto, r.host_ip, chosen, container_ip, r.container_port)
        used.setdefault((m.proto, m.host_port), set()).add(m.host_ip)
        out.append(m)
    return out


def docker_ports(mappings: Iterable[PortMapping], exposed: Iterable[str]) -> dict[str, Any]:
    """``NetworkSettings.Ports``: every exposed port, with its bindings or null."""
    out: dict[str, Any] = {k: None for k in exposed}
    for m in mappings:
        out.setdefault(f"{m.container_port}/{m.proto}", None)
        lst = out[f"{m.container_port}/{m.proto}"] or []
        lst.append({"HostIp": m.host_ip, "HostPort": str(m.host_port)})
        out[f"{m.container_port}/{m.proto}"] = lst
    return out


def ps_ports(mappings: Iterable[PortMapping], exposed: Iterable[str]) -> list[dict[str, Any]]:
    """The ``Ports`` list of ``GET /containers/json``."""
    out: list[dict[str, Any]] = []
    bound = set()
    for m in mappings:
        out.append({"IP": m.host_ip, "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto})
        bound.add(f"{m.container_port}/{m.proto}")
    for k in exposed:
        if k not in bound:
            port, proto = parse_key(k)
            out.append({"PrivatePort": port, "Type": proto})
    return out
