"""Published ports: from Docker's ``PortBindings`` to concrete mappings.  Pure logic.

``requests`` reads what the user asked (``-p``/``-P``, Docker's JSON shape
``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``) into validated
:class:`PortRequest` values; :func:`allocate` turns them into
:class:`PortMapping` values, choosing free host ports where none was given and
refusing conflicts with ports already published (by host address, port and
protocol; ``0.0.0.0`` overlaps every IPv4 address, ``::`` every IPv6 one) or held
by a host process (the ``is_free`` probe the caller passes in).  The kernel side
(DNAT) lives in the firewall backends.

IPv6: a host address in brackets (``-p [2001:db8::1]:8080:80``, ``-p [::]:8080:80``)
is DNAT'ed to the container's IPv6 address, so the container needs one (an
``--ipv6`` network).  A port published without a host address on such a
container is published on ``::`` too, with the same host port, as Docker does.
``[::1]`` is refused: see :data:`LOOPBACK6`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from ipaddress import ip_address
from typing import Any

from .errors import Conflict, InvalidArgument, Unavailable

PROTOCOLS = ("tcp", "udp", "sctp")
ANY = "0.0.0.0"
ANY6 = "::"
#: why ``[::1]`` cannot be published
LOOPBACK6 = ("IPv6 loopback cannot be published: Linux has no route_localnet for IPv6 (it drops ::1 traffic "
             "DNAT'ed to another namespace) and cove has no userland proxy; use 127.0.0.1 or a host address")


def host_spec(ip: str, port: int | str) -> str:
    """``ip:port``, with brackets around an IPv6 address."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def overlap(a: str, b: str) -> bool:
    """Do two host addresses of published ports overlap (same family, equal or a wildcard)?"""
    if (":" in a) != (":" in b):
        return False
    return a == b or a in (ANY, ANY6) or b in (ANY, ANY6)


@dataclass(frozen=True)
class PortRequest:
    proto: str
    container_port: int
    host_ip: str                      # "0.0.0.0" for every address
    host_range: tuple[int, int] | None   # None: any free port
    dual: bool = False                # no host address given: also on "::" if the container has IPv6


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
            given = (h.get("HostIp") or "").strip("[]")
            host_ip = given or default_ip
            try:
                addr = ip_address(host_ip)
            except ValueError:
                raise InvalidArgument(f"invalid port spec {key!r}: host address {host_ip!r} is not an IP") from None
            if addr.version == 6 and addr.is_loopback:
                raise InvalidArgument(f"invalid port spec [{addr}]:{h.get('HostPort') or ''}:{key}: {LOOPBACK6}")
            raw = (h.get("HostPort") or "").strip()
            rng: tuple[int, int] | None = None
            if raw:
                lo, _, hi = raw.partition("-")
                rng = (_port(lo, raw), _port(hi or lo, raw))
                if rng[0] > rng[1]:
                    raise InvalidArgument(f"invalid port spec {raw!r}: range end before start")
            out.append(PortRequest(proto, cport, str(addr), rng, dual=not given and str(addr) == ANY))
    return out


def need_ipv6(reqs: Iterable[PortRequest]) -> PortRequest | None:
    """The first request bound to an IPv6 host address (it needs a container with IPv6), if any."""
    return next((r for r in reqs if ":" in r.host_ip), None)


def ipv6_refusal(r: PortRequest) -> InvalidArgument:
    lo, hi = r.host_range or (0, 0)
    hport = "" if not lo else str(lo) if lo == hi else f"{lo}-{hi}"
    return InvalidArgument(f"invalid port spec [{r.host_ip}]:{hport}:{r.container_port}/{r.proto}: the container has no "
                           "IPv6 address (publishing on an IPv6 host address needs a network created with --ipv6)")


def allocate(reqs: Iterable[PortRequest], container_ip: str, taken: Iterable[PortMapping],
             is_free: Callable[[str, str, int], bool], ephemeral: tuple[int, int],
             host_addresses: Iterable[str], container_ip6: str = "") -> list[PortMapping]:
    """Concrete mappings for ``reqs``; raises before anything is chosen if one cannot be met.

    ``container_ip6``: the container's IPv6 address, if it has one; requests on an
    IPv6 host address need it, and requests without a host address then get a
    second mapping on ``::`` with the same host port.
    """
    # host addresses in use per (proto, port): a clash check costs the same with 10 or 10,000 published
    used: dict[tuple[str, int], set[str]] = {}
    for m in taken:
        used.setdefault((m.proto, m.host_port), set()).add(m.host_ip)
    local = {str(ip_address(a)) for a in host_addresses} | {ANY, ANY6}
    out: list[PortMapping] = []

    def clash(proto: str, ip: str, port: int) -> bool:
        return any(overlap(other, ip) for other in used.get((proto, port), ()))

    for r in reqs:
        if r.host_ip not in local:
            raise InvalidArgument(f"invalid port spec {host_spec(r.host_ip, r.container_port)}/{r.proto}: "
                                  f"{r.host_ip} is not an address of this host")
        v6 = ":" in r.host_ip
        if v6 and not container_ip6:
            raise ipv6_refusal(r)
        ips = [r.host_ip] + ([ANY6] if r.dual and container_ip6 else [])
        lo, hi = r.host_range or ephemeral
        chosen = None
        for port in range(lo, hi + 1):
            if any(clash(r.proto, ip, port) for ip in ips):
                continue
            busy = next((ip for ip in ips if not is_free(r.proto, ip, port)), None)
            if busy is not None:
                if r.host_range is not None and lo == hi:
                    raise Conflict(f"Bind for {host_spec(busy, port)} failed: port is already in use by a host process")
                continue
            chosen = port
            break
        if chosen is None:
            if r.host_range is not None and lo == hi:
                raise Conflict(f"Bind for {host_spec(r.host_ip, lo)} failed: port is already allocated")
            raise Unavailable(f"no free host port in {lo}-{hi} for {r.container_port}/{r.proto}")
        for ip in ips:
            m = PortMapping(r.proto, ip, chosen, container_ip6 if ":" in ip else container_ip, r.container_port)
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
