"""Address management the way Docker's default IPAM does it (IPv4, and IPv6 for
``--ipv6`` networks).  Pure, no I/O.

What this module holds:

- the default address pools (``DEFAULT_POOLS``) and dockerd's
  ``--default-address-pool base=CIDR,size=N`` syntax (:func:`parse_pool`);
- :func:`pick_subnet`: the first pool subnet that overlaps nothing taken, found
  by jumping over taken ranges rather than trying every candidate;
- :class:`IpamConfig`: one validated ``--subnet/--gateway/--ip-range/--aux-address``
  set, convertible to and from Docker's ``IPAM.Config`` JSON;
- :func:`check_overlap`: a new subnet against the other networks' subnets;
- :class:`AddressPool`: the leases of one config, handing out the lowest free
  address (Docker's behaviour, seen side by side with dockerd 20.10: a released
  address is reused at once; cove forgets its conntrack flows when it is
  released), with static requests (``--ip``);
- MAC addresses: Docker's ``02:42`` + IPv4 scheme, random ones, validation.

IPv6 configs (``--ipv6 --subnet fd00:1::/64``) use the same classes: the
gateway defaults to ``::1`` of the subnet, only the subnet's first address
(the subnet-router anycast address) is reserved besides it (IPv6 has no
broadcast), and the lowest free address is handed out, as for IPv4.
There is no default IPv6 pool: an IPv6 network needs an explicit subnet.

The caller (the engine) owns persistence: it rebuilds an :class:`AddressPool`
from the stored leases and cursor, allocates, and stores the new cursor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from .errors import Conflict, InvalidArgument, Unavailable, field_error

__all__ = [
    "DEFAULT_POOLS", "Pool", "parse_pool", "pick_subnet", "IpamConfig", "parse_ipam_config",
    "parse_aux_address", "check_overlap", "AddressPool", "mac_for_ip", "random_mac", "parse_mac",
]


# --- pools and subnet selection ---------------------------------------------------

@dataclass(frozen=True)
class Pool:
    """A region (``base``) cut into subnets of prefix length ``size``."""

    base: IPv4Network
    size: int

    def __str__(self) -> str:
        return f"base={self.base},size={self.size}"


#: Docker's defaults: 172.17/16 .. 172.31/16 as whole /16s, then 192.168/16 cut in /20s
DEFAULT_POOLS: list[Pool] = [
    *(Pool(IPv4Network(f"172.{n}.0.0/16"), 16) for n in range(17, 32)),
    Pool(IPv4Network("192.168.0.0/16"), 20),
]


Net = IPv4Network | IPv6Network
Addr = IPv4Address | IPv6Address


def _parse_cidr(field_name: str, value: str, *, strict: bool = True, v6: bool = False) -> Any:
    """Parse ``A.B.C.D/N`` (IPv6 too if ``v6``) with errors that name ``field_name``."""
    text = str(value).strip()
    if "/" not in text:
        raise field_error(field_name, value, "not a CIDR (expected e.g. 172.28.0.0/16)")
    try:
        net = ip_network(text, strict=False)
    except ValueError:
        raise field_error(field_name, value, "not a CIDR (expected e.g. 172.28.0.0/16)") from None
    if net.version != 4 and not v6:
        raise field_error(field_name, value, "IPv6 is not supported here (IPv4 only)")
    if strict:
        try:
            ip_network(text, strict=True)
        except ValueError:
            raise field_error(field_name, value, f"host bits set, did you mean {net}?") from None
    return net


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (not a host name)."""
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _parse_ip(field_name: str, value: object, version: int = 4) -> Any:
    """An address of IP ``version``; the error names ``field_name`` and the family expected."""
    if isinstance(value, (IPv4Address, IPv6Address)) and value.version == version:
        return value
    text = str(value).strip()
    try:
        addr = ip_address(text)
    except ValueError:
        addr = None
    if addr is None or addr.version != version:
        raise field_error(field_name, value, f"not an IPv{version} address") from None
    return addr


def parse_pool(spec: str) -> Pool:
    """Parse dockerd's ``--default-address-pool`` value, ``base=10.10.0.0/16,size=24``."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise field_error("default-address-pool", spec, f"{part!r} is not KEY=VALUE (expected base=CIDR,size=N)")
        if key not in ("base", "size"):
            raise field_error("default-address-pool", spec, f"unknown key {key!r} (expected base and size)")
        if key in fields:
            raise field_error("default-address-pool", spec, f"key {key!r} given twice")
        fields[key] = value.strip()
    for key in ("base", "size"):
        if key not in fields:
            raise field_error("default-address-pool", spec, f"missing key {key!r} (expected base=CIDR,size=N)")
    base = _parse_cidr("default-address-pool base", fields["base"])
    try:
        size = int(fields["size"])
    except ValueError:
        raise field_error("default-address-pool size", fields["size"], "not an integer") from None
    if not base.prefixlen <= size <= 32:
        raise field_error("default-address-pool size", fields["size"],
                          f"must be between the base's prefix length {base.prefixlen} and 32")
    return Pool(base, size)


def _merged(taken: Iterable[IPv4Network]) -> list[tuple[int, int]]:
    """Taken networks as sorted, disjoint, inclusive ``(first, last)`` integer ranges."""
    spans = sorted((int(n.network_address), int(n.broadcast_address))
                   for n in taken if getattr(n, "version", 4) == 4)
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _first_free(pool: Pool, spans: list[tuple[int, int]]) -> IPv4Network | None:
    step = 1 << (32 - pool.size)
    cur = int(pool.base.network_address)
    end = int(pool.base.broadcast_address)
    # first span that could overlap the pool
    lo_i, hi_i = 0, len(spans)
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        if spans[mid][1] < cur:
            lo_i = mid + 1
        else:
            hi_i = mid
    i = lo_i
    while cur + step - 1 <= end:
        while i < len(spans) and spans[i][1] < cur:
            i += 1
        if i == len(spans) or spans[i][0] > cur + step - 1:
            return IPv4Network((cur, pool.size))
        # jump to the first aligned candidate after the overlapping span
        cur = ((spans[i][1] + 1 + step - 1) // step) * step
    return None


def pick_subnet(taken: Iterable[IPv4Network], pools: Sequence[Pool] = DEFAULT_POOLS) -> IPv4Network:
    """The first subnet of ``pools`` (in order) that overlaps none of ``taken``.

    ``taken`` holds the other networks' subnets and the host's addresses and
    routes (as networks); the caller leaves out the default route.
    """
    spans = _merged(taken)
    for pool in pools:
        found = _first_free(pool, spans)
        if found is not None:
            return found
    listed = ", ".join(str(p) for p in pools)
    raise Unavailable(f"no free subnet in the default address pools ({listed}): every candidate overlaps "
                      "an existing network or a host route; remove unused networks or give --subnet")


# --- configs ----------------------------------------------------------------------

@dataclass(frozen=True)
class IpamConfig:
    """One validated address configuration of a network (Docker's ``IPAM.Config`` entry)."""

    subnet: IPv4Network | IPv6Network
    gateway: IPv4Address | IPv6Address | None = None       # of the subnet's family
    ip_range: IPv4Network | IPv6Network | None = None      # inside the subnet
    aux: Mapping[str, IPv4Address | IPv6Address] = field(default_factory=dict)   # name -> address of the subnet

    @property
    def version(self) -> int:
        return int(self.subnet.version)

    def to_record(self) -> dict[str, Any]:
        """The stored form (cove's own; Docker's JSON shape is :func:`cove.daemon.schema.ipam_config_json`)."""
        return {"subnet": str(self.subnet), "gateway": None if self.gateway is None else str(self.gateway),
                "ip_range": None if self.ip_range is None else str(self.ip_range),
                "aux": {name: str(ip) for name, ip in self.aux.items()}}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> IpamConfig:
        """The inverse of :meth:`to_record` (a stored config was validated when it was made)."""
        return cls(subnet=ip_network(d["subnet"]),
                   gateway=None if d.get("gateway") is None else ip_address(d["gateway"]),
                   ip_range=None if d.get("ip_range") is None else ip_network(d["ip_range"]),
                   aux={name: ip_address(ip) for name, ip in (d.get("aux") or {}).items()})


def _first_usable(subnet: Any) -> Any:
    return subnet.network_address + 1


def parse_aux_address(spec: str) -> tuple[str, str]:
    """Split the CLI's ``--aux-address NAME=IP`` into its name and address text."""
    name, sep, ip = spec.partition("=")
    if not sep or not name.strip() or not ip.strip():
        raise field_error("aux-address", spec, "expected NAME=IP, e.g. my-router=172.28.1.5")
    return name.strip(), ip.strip()


def parse_ipam_config(subnet: str, gateway: str | None = None, ip_range: str | None = None,
                      aux: Mapping[str, str] | None = None) -> IpamConfig:
    """Validate the ``--subnet/--gateway/--ip-range/--aux-address`` of one network (IPv4 or IPv6)."""
    net = _parse_cidr("subnet", subnet, v6=True)
    v = net.version
    room = 30 if v == 4 else 126
    if net.prefixlen > room:
        raise field_error("subnet", subnet, f"a /{net.prefixlen} has no room for a gateway and containers "
                                            f"(use /{room} or shorter)")
    gw: Any = None
    if gateway is not None and str(gateway).strip():
        gw = _parse_ip("gateway", gateway, v)
        if gw not in net:
            raise field_error("gateway", gateway, f"not in subnet {net}")
        if gw == net.network_address:
            raise field_error("gateway", gateway, f"is the network address of subnet {net}")
        if v == 4 and gw == net.broadcast_address:
            raise field_error("gateway", gateway, f"is the broadcast address of subnet {net}")
    rng: Any = None
    if ip_range is not None and str(ip_range).strip():
        rng = _parse_cidr("ip-range", ip_range, v6=True)
        if rng.version != v or not rng.subnet_of(net):
            raise field_error("ip-range", ip_range, f"not inside subnet {net}")
    effective_gw = gw if gw is not None else _first_usable(net)
    aux_ips: dict[str, Any] = {}
    for name, value in (aux or {}).items():
        spec = f"{name}={value}"
        if not str(name).strip():
            raise field_error("aux-address", spec, "expected NAME=IP: the name is empty")
        try:
            ip = _parse_ip("aux-address", value, v)
        except InvalidArgument:
            raise field_error("aux-address", spec, f"expected NAME=IP: not an IPv{v} address") from None
        if ip not in net:
            raise field_error("aux-address", spec, f"not in subnet {net}")
        if ip == net.network_address or (v == 4 and ip == net.broadcast_address):
            raise field_error("aux-address", spec, f"is the network or broadcast address of subnet {net}")
        if ip == effective_gw:
            raise field_error("aux-address", spec, f"is the gateway address {effective_gw}")
        aux_ips[str(name).strip()] = ip
    return IpamConfig(net, gw, rng, aux_ips)


def check_overlap(new: Any, existing: Mapping[str, Any]) -> None:
    """Refuse ``new`` if it overlaps a subnet of another network (keyed by name)."""
    for name, other in existing.items():
        if new.overlaps(other):
            raise Conflict(f'subnet {new} overlaps with network "{name}" ({other})')


# --- leases -----------------------------------------------------------------------

class AddressPool:
    """The leases of one :class:`IpamConfig`.

    Automatic allocation takes the lowest free address of the ip range (or the
    subnet), as Docker's default IPAM does; a hint (the lowest address that may be
    free) keeps that cheap in a crowded pool.  ``last`` is kept for the record.  The
    subnet's network and (IPv4) broadcast addresses, the gateway and the auxiliary
    addresses are never handed out.  Static requests may lie anywhere in the
    subnet, also outside the ip range, and do not move the cursor.
    """

    def __init__(self, cfg: IpamConfig, leased: Iterable[Any] = (), last: Any = None) -> None:
        self.cfg = cfg
        net = cfg.subnet
        self._gateway = cfg.gateway if cfg.gateway is not None else _first_usable(net)
        self._reserved: dict[int, str] = {int(ip): f"auxiliary address {name}" for name, ip in cfg.aux.items()}
        self._reserved[int(self._gateway)] = "the gateway"
        self._reserved[int(net.network_address)] = "the network address"
        if cfg.version == 4:
            self._reserved[int(net.broadcast_address)] = "the broadcast address"
        self._addr = IPv4Address if cfg.version == 4 else IPv6Address
        self._leased: set[int] = {int(self._addr(a)) for a in leased}
        self._last: int | None = int(self._addr(last)) if last is not None else None
        rng = cfg.ip_range or net
        self._lo = int(rng.network_address)
        self._hi = int(rng.broadcast_address)
        self._hint = self._lo                   # no free address below this one

    @property
    def gateway(self) -> Any:
        """The configured gateway, else the subnet's first usable address (Docker's .1)."""
        return self._gateway

    @property
    def leased(self) -> frozenset[Any]:
        return frozenset(self._addr(a) for a in self._leased)

    @property
    def last(self) -> Any:
        """The last automatically allocated address (the cursor), if any."""
        return self._addr(self._last) if self._last is not None else None

    def _take(self, ip: int) -> Any:
        self._leased.add(ip)
        return self._addr(ip)

    def allocate(self, requested: Any = None) -> Any:
        """Lease ``requested`` (``--ip``) or else the lowest free address."""
        if requested is not None:
            return self._allocate_static(requested)
        lo, hi = self._lo, self._hi
        start = self._hint if lo <= self._hint <= hi else lo
        busy_reserved = self._reserved
        busy_leased = self._leased
        where = self.cfg.subnet if self.cfg.ip_range is None else f"{self.cfg.ip_range} of {self.cfg.subnet}"
        size = hi - lo + 1
        if len(busy_leased) + len(busy_reserved) >= size:      # maybe full: count exactly before scanning
            used = sum(1 for a in busy_leased.union(busy_reserved) if lo <= a <= hi)
            if used >= size:
                raise Unavailable(f"no free address in {where}")
        ip = start
        for _ in range(hi - lo + 1):
            if ip not in busy_leased and ip not in busy_reserved:
                self._last = ip
                self._hint = ip + 1
                return self._take(ip)
            ip = ip + 1 if ip < hi else lo
        raise Unavailable(f"no free address in {where}")

    def _allocate_static(self, requested: Any) -> Any:
        addr = _parse_ip("ip" if self.cfg.version == 4 else "ip6", requested, self.cfg.version)
        if addr not in self.cfg.subnet:
            raise InvalidArgument(f"invalid ip {addr}: not in subnet {self.cfg.subnet}")
        n = int(addr)
        if n in self._reserved:
            raise Conflict(f"ip {addr} is already in use ({self._reserved[n]} of {self.cfg.subnet})")
        if n in self._leased:
            raise Conflict(f"ip {addr} is already in use")
        return self._take(n)

    def release(self, addr: Any) -> None:
        """Give ``addr`` back; releasing an address that is not leased does nothing."""
        ip = int(self._addr(addr))
        self._leased.discard(ip)
        self._hint = min(self._hint, ip)


# --- MAC addresses ----------------------------------------------------------------

def mac_for_ip(ip: IPv4Address) -> str:
    """Docker's MAC for an IPv4 address: ``02:42`` then the four address bytes."""
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *IPv4Address(ip).packed))


def random_mac() -> str:
    """A random locally administered unicast MAC address."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


_MAC_SEP_RE = re.compile(r"^[0-9a-fA-F]{1,2}([:-])(?:[0-9a-fA-F]{1,2}\1){4}[0-9a-fA-F]{1,2}$")
_MAC_DOT_RE = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")


def parse_mac(s: str) -> str:
    """Validate ``--mac-address`` and normalise it to lower-case ``aa:bb:cc:dd:ee:ff``."""
    text = str(s).strip()
    if _MAC_SEP_RE.match(text):
        octets = [int(x, 16) for x in re.split(r"[:-]", text)]
    elif _MAC_DOT_RE.match(text):
        raw = text.replace(".", "")
        octets = [int(raw[i:i + 2], 16) for i in range(0, 12, 2)]
    else:
        raise field_error("mac-address", s, "not a MAC address (expected e.g. 02:42:ac:11:00:02)")
    if octets[0] & 0x01:
        raise field_error("mac-address", s, "a multicast address cannot be an interface's address")
    if not any(octets):
        raise field_error("mac-address", s, "the all-zero address cannot be an interface's address")
    return ":".join(f"{x:02x}" for x in octets)
