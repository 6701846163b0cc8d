"""A host NIC inside a cove bridge (``-o cove.bridge.uplink=NIC``): containers on the LAN.

This is what the seed article does by hand (``brctl addif br0 ens33``, the
host's address and default route moved from ens33 to br0), made reversible:

- :func:`inspect` checks that the move cannot cut the host off and records
  the NIC's IPv4 addresses and its routes (every table but ``local``; the
  kernel's own connected routes are left out, the kernel re-makes them);
- :func:`move` enslaves the NIC to the bridge and moves the addresses, then
  the routes (scope-link routes first, so gateways stay reachable);
- :func:`snapshot` reads the same record back from the bridge, and
  :func:`give_back` puts a record onto the NIC (at ``network rm``, on a failed
  create, or when reconcile finds an orphan bridge holding a NIC).

Deleting the last IPv4 address of an interface makes the kernel flush every
route through it, which is why routes are recorded before anything changes.
Routes that cannot be recorded faithfully (multipath routes and routes using
nexthop objects through the NIC) make :func:`inspect` refuse.  Addresses move
as permanent ones (a DHCP lease's lifetime is not carried over) and without
their label; IPv6 addresses stay on the NIC.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..errors import Conflict, CoveError, InvalidArgument, field_error
from ..kernel.api import RT_TABLE_LOCAL, RTPROT_KERNEL, Link, Netlink

OPT_UPLINK = "cove.bridge.uplink"
#: the IPAM auxiliary-address name that reserves the host's own address(es) on the LAN
HOST_AUX = "cove-uplink-host"

log = logging.getLogger("cove.drivers")

Record = dict[str, Any]


def _routes_via(nl: Netlink, index: int, what: str) -> list[dict[str, Any]]:
    out = []
    for r in nl.route_records():
        if r["table"] == RT_TABLE_LOCAL:
            continue
        via = r["oif"] == index or index in (r["multipath"] or [])
        if not via:
            continue
        if r["multipath"]:
            raise Conflict(f"{what}: route {r['dst']} is a multipath route through it; cove cannot record "
                           "it to move it (remove it or make it single-path first)")
        if r["nh_id"]:
            raise Conflict(f"{what}: route {r['dst']} uses nexthop object {r['nh_id']}; cove cannot record "
                           "it to move it")
        if r["proto"] == RTPROT_KERNEL:
            continue
        out.append({k: v for k, v in r.items() if k not in ("oif", "multipath", "nh_id")})
    # scope link (no gateway) first: a gateway must be reachable when its route is added
    out.sort(key=lambda r: (r["gateway"] is not None, r["dst"]))
    return out


def inspect(nl: Netlink, nic_name: str, subnets: list[IPv4Network], bridge: str) -> tuple[Link, Record]:
    """Refuse a move that would cut the host off; else the NIC and the record of what will move."""
    field = f"option {OPT_UPLINK}"
    nic = nl.find(nic_name)
    if nic is None:
        raise field_error(field, nic_name, "no such interface on this host")
    if nic_name == bridge:
        raise field_error(field, nic_name, "is the network's own bridge")
    if nic_name == "lo" or (nic.alias or "").startswith("cove:"):
        raise field_error(field, nic_name, "is loopback or one of cove's own interfaces, not a NIC")
    if nic.kind == "bridge":
        raise field_error(field, nic_name, "is a bridge itself; a bridge cannot be a port of another")
    if nic.master:
        master = next((link.name for link in nl.links() if link.index == nic.master), str(nic.master))
        raise field_error(field, nic_name, f"is already enslaved to {master}")
    addresses = nl.address_records(nic.index)
    if not addresses:
        raise field_error(field, nic_name, "has no IPv4 address to move to the bridge")
    inside = [a for a in addresses if any(IPv4Address(a["address"]) in s for s in subnets)]
    if not inside:
        have = ", ".join(f"{a['address']}/{a['prefixlen']}" for a in addresses)
        want = ", ".join(str(s) for s in subnets)
        raise field_error(field, nic_name, f"its address ({have}) is not in the network's subnet ({want}); "
                          "the subnet must be the NIC's LAN")
    routes = _routes_via(nl, nic.index, f"invalid {field} {nic_name}")
    return nic, {"nic": nic_name, "mac": nic.mac, "addresses": addresses, "routes": routes}


def snapshot(nl: Netlink, bridge: Link, nic_name: str) -> Record:
    """What the bridge holds now, as a record to give back to ``nic_name``."""
    return {"nic": nic_name, "mac": bridge.mac, "addresses": nl.address_records(bridge.index),
            "routes": _routes_via(nl, bridge.index, f"bridge {bridge.name}")}


def _put(nl: Netlink, index: int, rec: Record, strict: bool) -> list[Exception]:
    """Addresses then routes of ``rec`` onto link ``index``; existing ones count as done."""
    errors: list[Exception] = []
    for a in rec["addresses"]:
        try:
            nl.add_address(index, IPv4Address(a["address"]), a["prefixlen"], flags=a.get("flags", 0))
        except Conflict:
            pass
        except CoveError as exc:
            if strict:
                raise
            errors.append(exc)
    for r in rec["routes"]:
        try:
            nl.add_route(r, index)
        except Conflict:
            pass
        except CoveError as exc:
            if strict:
                raise
            errors.append(exc)
    return errors


def move(nl: Netlink, nic: Link, bridge_index: int, rec: Record) -> None:
    """Enslave the NIC to the bridge and move its addresses and routes there (raises on any failure)."""
    try:
        nl.set_link(nic.index, master=bridge_index)
    except CoveError as exc:
        reason = str(exc).partition(": ")[2] or str(exc)
        raise Conflict(f"invalid option {OPT_UPLINK} {nic.name}: the kernel refuses to put it into a bridge: "
                       f"{reason} (macvlan, ipvlan or VLAN links on it hold it)") from exc
    for a in rec["addresses"]:
        nl.delete_address(nic.index, IPv4Address(a["address"]), a["prefixlen"])
    for r in rec["routes"]:                 # the kernel flushed them with the last address; be sure
        nl.delete_route(r, nic.index)
    _put(nl, bridge_index, rec, strict=True)


def give_back(nl: Netlink, rec: Record) -> list[Exception]:
    """Release the NIC (if still enslaved) and put the record's addresses and routes back on it.

    Best effort: every step is tried, the errors are returned (and logged).
    """
    nic = nl.find(rec["nic"])
    if nic is None:
        exc = CoveError(f"cannot give the addresses back to {rec['nic']}: the interface is gone")
        log.warning("%s", exc)
        return [exc]
    errors: list[Exception] = []
    try:
        if nic.master:
            nl.set_link(nic.index, master=0)
        if not nic.up:
            nl.set_link(nic.index, state="up")
    except CoveError as exc:
        errors.append(exc)
    errors += _put(nl, nic.index, rec, strict=False)
    for failure in errors:
        log.warning("giving %s back its addresses and routes: %s", rec["nic"], failure)
    return errors


def check_options(options: dict[str, str], internal: bool, external: bool) -> None:
    if internal:
        raise InvalidArgument(f"invalid internal: a network with {OPT_UPLINK} is on the LAN and cannot be internal")
    if external:
        raise InvalidArgument(f"invalid option {OPT_UPLINK}: not with an existing (-b) bridge")
