"""The embedded DNS server's name table: which names resolve to which IPv4
(and, on ``--ipv6`` networks, IPv6) addresses, per network.

Docker's embedded resolver answers a container only with the names of
containers that share a network with it, so the table is kept per network.
An endpoint (one container on one network) contributes several names: the
container name, its network aliases and its short id.  Several containers may
share a name (a shared alias); a lookup then returns all their addresses.

:class:`Records` is safe to use from several threads.  :attr:`Records.version`
changes whenever the table does, so a resolver can cache answers and throw
them away cheaply when the version moves on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv6Address

from cove.errors import field_error

#: one DNS label: 1-63 of [A-Za-z0-9_-], not starting or ending with '-'
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_NAME = 253


def valid_name(name: str) -> bool:
    """True when ``name`` can be a container name or alias that DNS can answer:
    one or more dot-separated labels of 1-63 characters from ``[A-Za-z0-9_-]``,
    none starting or ending with ``-``, at most 253 characters in all."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME
            and _NAME_RE.fullmatch(name) is not None)


def normalize(name: str) -> str:
    """The lookup key of a name: lower case, one trailing dot removed."""
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


@dataclass(frozen=True)
class _Endpoint:
    keys: tuple[str, ...]  # normalized names, no duplicates
    ip: str
    ptr: str  # the container name as given, for reverse lookups ("" for none)
    ip6: str = ""  # its IPv6 address on an IPv6 network, else ""


class Records:
    """Thread-safe name table. Networks are ids; a container may be on several networks.

    ``names`` given to :meth:`set_endpoint` start with the container name (the
    answer to a reverse lookup), then its aliases and short id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        # network -> name -> container -> ip
        self._names: dict[str, dict[str, dict[str, str]]] = {}
        # network -> name -> container -> IPv6 address (endpoints that have one)
        self._names6: dict[str, dict[str, dict[str, str]]] = {}
        # network -> ip -> container -> container name
        self._ips: dict[str, dict[str, dict[str, str]]] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """A number that changes on every change of the table."""
        return self._version

    def set_endpoint(self, network_id: str, container_id: str, names: Sequence[str], ip: str,
                     ip6: str = "") -> None:
        """Add or replace the names and IPv4 (and IPv6) address ``container_id`` has on ``network_id``."""
        try:
            address = str(IPv4Address(ip))
        except (AddressValueError, ValueError):
            raise field_error("ip", ip, "not an IPv4 address") from None
        try:
            address6 = str(IPv6Address(ip6)) if ip6 else ""
        except (AddressValueError, ValueError):
            raise field_error("ip6", ip6, "not an IPv6 address") from None
        given: list[str] = []
        for name in names:
            trimmed = name[:-1] if name.endswith(".") else name
            if not valid_name(trimmed):
                raise field_error("name", name, "not a valid DNS name (labels of 1-63 letters, digits, '_' or '-')")
            given.append(trimmed)
        keys = list(dict.fromkeys(name.lower() for name in given))
        ptr = given[0] if given else ""
        new = _Endpoint(tuple(keys), address, ptr, address6)
        with self._lock:
            old = self._endpoints.get((network_id, container_id))
            if old == new:
                return
            if old is not None:
                self._unindex(network_id, container_id, old)
            self._endpoints[(network_id, container_id)] = new
            by_name = self._names.setdefault(network_id, {})
            for key in new.keys:
                by_name.setdefault(key, {})[container_id] = address
            if address6:
                by_name6 = self._names6.setdefault(network_id, {})
                for key in new.keys:
                    by_name6.setdefault(key, {})[container_id] = address6
            if ptr:
                self._ips.setdefault(network_id, {}).setdefault(address, {})[container_id] = ptr
            self._version += 1

    def remove_endpoint(self, network_id: str, container_id: str) -> None:
        """Forget ``container_id``'s names on ``network_id``; unknown endpoints are ignored."""
        with self._lock:
            old = self._endpoints.pop((network_id, container_id), None)
            if old is None:
                return
            self._unindex(network_id, container_id, old)
            self._version += 1

    def _unindex(self, network_id: str, container_id: str, old: _Endpoint) -> None:
        by_name = self._names.get(network_id, {})
        for key in old.keys:
            holders = by_name.get(key)
            if holders is not None:
                holders.pop(container_id, None)
                if not holders:
                    del by_name[key]
        if not by_name:
            self._names.pop(network_id, None)
        by_name6 = self._names6.get(network_id, {})
        for key in old.keys if old.ip6 else ():
            holders = by_name6.get(key)
            if holders is not None:
                holders.pop(container_id, None)
                if not holders:
                    del by_name6[key]
        if not by_name6:
            self._names6.pop(network_id, None)
        by_ip = self._ips.get(network_id, {})
        holders = by_ip.get(old.ip)
        if holders is not None:
            holders.pop(container_id, None)
            if not holders:
                del by_ip[old.ip]
        if not by_ip:
            self._ips.pop(network_id, None)

    def lookup(self, networks: Iterable[str], name: str, v6: bool = False) -> list[str]:
        """IPv4 addresses (``v6``: IPv6 addresses) for ``name`` on any of ``networks`` (exact,
        case-insensitive; a trailing dot is ignored), each address once."""
        key = normalize(name)
        found: dict[str, None] = {}
        table = self._names6 if v6 else self._names
        with self._lock:
            for network in networks:
                holders = table.get(network, {}).get(key)
                if holders:
                    found.update(dict.fromkeys(holders.values()))
        return list(found)

    def reverse(self, networks: Iterable[str], ip: str) -> str | None:
        """The container name that has ``ip`` on one of ``networks`` (first network first), or None."""
        with self._lock:
            for network in networks:
                holders = self._ips.get(network, {}).get(ip)
                if holders:
                    return next(iter(holders.values()))
        return None
