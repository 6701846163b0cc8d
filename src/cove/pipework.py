"""pipework-style extra interfaces: the request, its checks and the record.  Pure, no I/O.

``cove attach CONTAINER --bridge br0 --ip 192.168.1.150/24@192.168.1.1`` does what
``pipework br0 test1 192.168.1.150/24@192.168.1.1`` does: a veth pair whose host end
joins an *existing* bridge (a Linux bridge, or an Open vSwitch bridge with an optional
VLAN tag), whose other end goes into the running container's namespace with an
address, a MAC and, with ``@GW``, the container's default route.

This module parses and checks what the user asked (:func:`parse_request`), before the
kernel is touched; the engine (:mod:`cove.engine.pipework`) does the kernel work and
keeps an :class:`ExtraInterface` record per interface in the store.  Errors name the
field by the CLI flag it comes from (``ip``, ``gateway``, ``mac``, ``ifname``,
``vlan``, ``bridge``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from .errors import InvalidArgument, field_error
from .model import stamped, upgraded

#: the longest interface name Linux accepts (IFNAMSIZ - 1)
IFNAMSIZ = 15

LINUX = "linux"
OVS = "openvswitch"


@dataclass(frozen=True)
class InterfaceRequest:
    """A checked request: what ``POST /containers/{id}/interfaces`` asked for."""

    bridge: str
    address: IPv4Interface
    gateway: IPv4Address | None = None
    mac: str | None = None
    ifname: str | None = None
    vlan: int | None = None


@dataclass
class ExtraInterface:
    """One live pipework-style interface of a running container (store: ``pipework/<cid>/<ifname>``)."""

    id: str
    container_id: str
    ifname: str                       # inside the container
    host_ifname: str                  # the veth's host end, on the bridge
    bridge: str
    bridge_type: str                  # "linux" | "openvswitch"
    ip: str
    prefixlen: int
    mac: str
    gateway: str = ""                 # set: the container's default route was replaced by one via it
    vlan: int = 0                     # Open vSwitch access tag (0: none)
    previous_gateway: str = ""        # the default route it replaced, put back at detach
    previous_dev: str = ""            # ... when that route had no gateway (straight out of a device)

    def to_dict(self) -> dict[str, Any]:
        return stamped(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExtraInterface:
        return cls(**upgraded("pipework", d))

    @property
    def alias(self) -> str:
        """The link alias on the host end: how reconcile tells cove's orphans apart."""
        return alias_for(self.id)


def alias_for(iface_id: str) -> str:
    return f"cove:pw:{iface_id}"


def split_ip_spec(spec: str) -> tuple[str, str]:
    """``"IP/PREFIX@GW"`` -> ``("IP/PREFIX", "GW")``; no ``@``: ``(spec, "")``.  No checks."""
    address, _, gateway = spec.partition("@")
    return address, gateway


def parse_address(text: str) -> IPv4Interface:
    """``192.168.1.150/24``: an IPv4 host address with its prefix length (required, as pipework)."""
    raw = str(text).strip()
    if not raw:
        raise field_error("ip", text, "an address is required, e.g. 192.168.1.150/24")
    addr, slash, plen = raw.partition("/")
    if addr.lower() == "dhcp":
        raise field_error("ip", text, "cove attach sets a static address (IP/PREFIX); it does not run DHCP")
    try:
        ip = IPv4Address(addr)
    except ValueError:
        raise field_error("ip", text, "not an IPv4 address") from None
    if not slash:
        raise field_error("ip", text, f"the address needs a prefix length, e.g. {addr}/24")
    if not (plen.isascii() and plen.isdigit()) or not 0 < int(plen) <= 32:
        raise field_error("ip", text, "the prefix length must be a number from 1 to 32")
    iface = IPv4Interface(f"{ip}/{int(plen)}")
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip == IPv4Address("255.255.255.255"):
        raise field_error("ip", text, "not a unicast host address")
    net = iface.network
    if net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
        what = "network" if ip == net.network_address else "broadcast"
        raise field_error("ip", text, f"that is the {what} address of {net}")
    return iface


def parse_gateway(text: str, address: IPv4Interface) -> IPv4Address:
    """The default gateway: an address inside ``address``'s prefix, not the address itself."""
    raw = str(text).strip()
    try:
        gw = IPv4Address(raw)
    except ValueError:
        raise field_error("gateway", text, "not an IPv4 address") from None
    net = address.network
    if gw not in net:
        raise field_error("gateway", text, f"not in the prefix of the address ({net})")
    if gw == address.ip:
        raise field_error("gateway", text, "it is the interface's own address")
    if net.prefixlen <= 30 and gw in (net.network_address, net.broadcast_address):
        raise field_error("gateway", text, f"that is the network or broadcast address of {net}")
    return gw


def check_ifname(name: str, field: str = "ifname") -> str:
    """A Linux interface name: 1 to 15 characters, no ``/``, blank, ``:`` or ``%``, not . or .."""
    if not isinstance(name, str) or not name or len(name) > IFNAMSIZ:
        raise field_error(field, name, f"an interface name has 1 to {IFNAMSIZ} characters")
    if name in (".", "..") or any(ch in name for ch in "/:% \t\n\r\0"):
        raise field_error(field, name, "not a valid interface name (no '/', ':', '%' or blanks)")
    return name


def check_vlan(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise field_error("vlan", value, "must be a VLAN id from 1 to 4094")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 4094:
        raise field_error("vlan", value, "must be a VLAN id from 1 to 4094")
    return int(text)


def parse_mac(text: Any) -> str:
    from .ipam import parse_mac as _parse

    try:
        return _parse(str(text))
    except InvalidArgument as exc:
        reason = exc.message.split(": ", 1)[-1]
        raise field_error("mac", text, reason) from None


def parse_request(body: dict[str, Any]) -> InterfaceRequest:
    """The JSON of ``POST /containers/{id}/interfaces`` -> a checked :class:`InterfaceRequest`.

    ``Address`` may carry the gateway pipework-style (``IP/PREFIX@GW``) when ``Gateway``
    is not given.
    """
    if not isinstance(body, dict):
        raise InvalidArgument("invalid request body: expected a JSON object")
    known = {"Bridge", "Address", "Gateway", "MacAddress", "IfName", "Vlan"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise field_error("field", unknown[0], f"unknown (known: {', '.join(sorted(known))})")
    for key in ("Bridge", "Address", "Gateway", "MacAddress", "IfName"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise field_error(key, body[key], "expected a string")
    bridge = body.get("Bridge")
    if not bridge:
        raise InvalidArgument("invalid bridge '': a bridge is required (--bridge)")
    check_ifname(str(bridge), "bridge")
    raw_addr = str(body.get("Address") or "")
    raw_gw = str(body.get("Gateway") or "")
    if "@" in raw_addr:
        if raw_gw:
            raise field_error("ip", raw_addr, "give the gateway either after '@' or as Gateway, not both")
        raw_addr, raw_gw = split_ip_spec(raw_addr)
        if not raw_gw:
            raise field_error("gateway", "", "empty after '@'")
    address = parse_address(raw_addr)
    gateway = parse_gateway(raw_gw, address) if raw_gw else None
    mac = parse_mac(body["MacAddress"]) if body.get("MacAddress") else None
    ifname = check_ifname(body["IfName"]) if body.get("IfName") else None
    vlan = check_vlan(body["Vlan"]) if body.get("Vlan") not in (None, "", 0) else None
    return InterfaceRequest(bridge=str(bridge), address=address, gateway=gateway, mac=mac, ifname=ifname,
                            vlan=vlan)


def first_free_ifname(taken: set[str]) -> str:
    """``eth0``, ``eth1``...: the first one not in ``taken`` (pipework's default is eth1: eth0 is taken)."""
    n = 0
    while f"eth{n}" in taken:
        n += 1
    return f"eth{n}"


def to_json(x: ExtraInterface) -> dict[str, Any]:
    """The API's shape of one interface (``NetworkSettings.ExtraInterfaces[ifname]`` in inspect)."""
    return {
        "IfName": x.ifname,
        "Bridge": x.bridge,
        "BridgeType": x.bridge_type,
        "HostInterface": x.host_ifname,
        "IPAddress": x.ip,
        "IPPrefixLen": x.prefixlen,
        "Gateway": x.gateway,
        "MacAddress": x.mac,
        "Vlan": x.vlan,
        "ID": x.id,
    }
