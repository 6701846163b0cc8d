"""Daemon settings: ``/etc/cove/daemon.json`` and flags, with dockerd's names.

Every setting can come from the file (dockerd's ``daemon.json`` keys) or from a
flag of the same name; giving one in both places is an error, as with dockerd.
Values are validated before anything starts: a bad file or value stops the
daemon with one line naming the key, the value and the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from ..errors import CoveError

DEFAULT_HOST = "unix:///run/cove/cove.sock"
DEFAULT_CONFIG = "/etc/cove/daemon.json"


class SettingsError(CoveError):
    pass


def bad(key: str, value: object, reason: str) -> SettingsError:
    return SettingsError(f"invalid daemon setting {key}={value!r}: {reason}")


@dataclass
class Settings:
    host: str = DEFAULT_HOST
    data_root: str = "/var/lib/cove"
    exec_root: str = "/run/cove"
    firewall: str | None = None
    bridge: str | None = None
    bip: str | None = None
    fixed_cidr: str | None = None
    default_address_pools: list[str] = field(default_factory=list)
    icc: bool = True
    ip: str = "0.0.0.0"
    ip_forward: bool = True
    ip_masq: bool = True
    ip_forward_no_drop: bool = False      # keep forwarding what touches no cove bridge (no drop policy)
    image_import_max_size: int = 16 << 30   # bytes one image import may unpack (0: no cap)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    mtu: int = 0
    debug: bool = False
    log_level: str = ""                    # debug | info | warn | error | fatal (dockerd's); "" with --debug: debug


# key in daemon.json -> (attribute, kind)
KEYS: dict[str, tuple[str, str]] = {
    "hosts": ("host", "host"), "data-root": ("data_root", "path"), "exec-root": ("exec_root", "path"),
    "firewall-backend": ("firewall", "firewall"), "iptables": ("firewall", "iptables"),
    "bridge": ("bridge", "ifname"), "bip": ("bip", "bip"), "fixed-cidr": ("fixed_cidr", "cidr"),
    "default-address-pools": ("default_address_pools", "pools"), "icc": ("icc", "bool"),
    "ip": ("ip", "ipv4"), "ip-forward": ("ip_forward", "bool"), "ip-masq": ("ip_masq", "bool"),
    "ip-forward-no-drop": ("ip_forward_no_drop", "bool"), "image-import-max-size": ("image_import_max_size", "bytes"),
    "dns": ("dns", "ips"), "dns-search": ("dns_search", "strs"), "dns-opts": ("dns_opts", "strs"),
    "mtu": ("mtu", "mtu"), "userland-proxy": ("", "proxy"), "debug": ("debug", "bool"),
    "log-level": ("log_level", "loglevel"),
}


def _bool(key: str, v: object) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    raise bad(key, v, "must be true or false")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_bytes(key: str, v: object) -> int:
    """A size as dockerd reads one (``512m``, ``16GB``, ``1073741824``; units of 1024); 0 means no cap."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", v) if isinstance(v, str) else None
    if m is None or m.group(2).lower() not in _UNITS:
        raise bad(key, v, "must be a size in bytes, e.g. 16GB, 512m or 1073741824 (0: no cap)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def convert(key: str, kind: str, v: Any) -> Any:
    """Validate one setting; return the value to store."""
    if kind == "bool":
        return _bool(key, v)
    if kind == "loglevel":
        if v not in ("debug", "info", "warn", "error", "fatal"):
            raise bad(key, v, "must be debug, info, warn, error or fatal")
        return v
    if kind == "proxy":
        if _bool(key, v):
            raise bad(key, v, "cove has no userland proxy: published ports are DNAT'ed by the kernel "
                      "(127.0.0.1 included); only userland-proxy=false is supported")
        return None
    if kind in ("path",):
        if not isinstance(v, str) or not v.startswith("/"):
            raise bad(key, v, "must be an absolute path")
        return v
    if kind == "host":
        v = v[0] if isinstance(v, list) and len(v) == 1 else v
        if not isinstance(v, str) or not v.startswith("unix:///"):
            raise bad(key, v, "cove listens on one unix socket: unix:///path")
        return v
    if kind == "firewall":
        if v not in ("nftables", "iptables", "none", "auto"):
            raise bad(key, v, "must be nftables, iptables, none or auto")
        return v
    if kind == "iptables":
        return None if _bool(key, v) else "none"
    if kind == "ifname":
        if not isinstance(v, str) or not v or len(v) > 15 or "/" in v or " " in v:
            raise bad(key, v, "not an interface name")
        return v
    if kind == "bip":
        try:
            iface = IPv4Interface(v)
        except ValueError:
            raise bad(key, v, "must be an address with a prefix, e.g. 172.17.0.1/16") from None
        if iface.ip in (iface.network.network_address, iface.network.broadcast_address) or iface.network.prefixlen > 30:
            raise bad(key, v, "the address must be a usable host address of a subnet of /30 or larger")
        return str(iface)
    if kind == "cidr":
        try:
            return str(IPv4Network(v))
        except ValueError as exc:
            raise bad(key, v, str(exc)) from None
    if kind == "pools":
        out = []
        for p in v if isinstance(v, list) else [v]:
            spec = p if isinstance(p, str) else ",".join(f"{k}={val}" for k, val in dict(p).items())
            from ..ipam import parse_pool

            try:
                parse_pool(spec)
            except CoveError as exc:
                raise bad(key, p, str(exc)) from None
            out.append(spec)
        return out
    if kind == "ipv4":
        try:
            return str(IPv4Address(v))
        except ValueError:
            raise bad(key, v, "not an IPv4 address") from None
    if kind == "ips":
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            try:
                IPv4Address(x)
            except ValueError:
                raise bad(key, x, "not an IPv4 address") from None
        return list(vals)
    if kind == "strs":
        vals = v if isinstance(v, list) else [v]
        if not all(isinstance(x, str) and x for x in vals):
            raise bad(key, v, "must be a list of strings")
        return list(vals)
    if kind == "bytes":
        return parse_bytes(key, v)
    if kind == "mtu":
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise bad(key, v, "must be an integer") from None
        if n and not 68 <= n <= 65535:
            raise bad(key, v, "must be between 68 and 65535")
        return n
    raise bad(key, v, "unknown kind")  # pragma: no cover


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cove daemon", description="Run the cove daemon in the foreground.")
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("-H", "--host", dest="hosts")
    p.add_argument("--data-root")
    p.add_argument("--exec-root")
    p.add_argument("--firewall-backend")
    p.add_argument("--iptables", help="false: write no firewall rules (as --firewall-backend=none)")
    p.add_argument("-b", "--bridge", help="use this existing Linux bridge for the default network")
    p.add_argument("--bip", help="the default bridge's address and prefix, e.g. 172.17.0.1/16")
    p.add_argument("--fixed-cidr", help="allocate default-bridge addresses from this range only")
    p.add_argument("--default-address-pool", dest="default-address-pools", action="append",
                   help="base=CIDR,size=N (repeatable)")
    p.add_argument("--icc")
    p.add_argument("--ip", help="default host address of published ports")
    p.add_argument("--ip-forward")
    p.add_argument("--ip-masq")
    p.add_argument("--ip-forward-no-drop", help="true: do not drop forwarded traffic that touches no cove bridge "
                   "(the drop policy cove sets when it turns on ip_forward)")
    p.add_argument("--image-import-max-size", help="the most one image import may unpack, e.g. 16GB (0: no cap)")
    p.add_argument("--dns", action="append")
    p.add_argument("--dns-search", action="append")
    p.add_argument("--dns-opt", dest="dns-opts", action="append")
    p.add_argument("--mtu")
    p.add_argument("--userland-proxy")
    p.add_argument("-D", "--debug", action="store_const", const="true")
    p.add_argument("-l", "--log-level", help="debug, info, warn, error or fatal (debug logs every request)")
    return p


def load(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    """Settings from the config file (if present) and the flags; raises SettingsError."""
    environ = dict(os.environ if environ is None else environ)
    ns = vars(parser().parse_args(argv))
    path = ns.pop("config_file")
    flags = {k.replace("_", "-"): v for k, v in ns.items() if v is not None}
    if "dns-opts" in ns and ns["dns-opts"] is not None:
        flags["dns-opts"] = ns["dns-opts"]
    file_values: dict[str, Any] = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                file_values = json.load(f)
        except (OSError, ValueError) as exc:
            raise SettingsError(f"invalid daemon config file {path}: {exc}") from None
        if not isinstance(file_values, dict):
            raise SettingsError(f"invalid daemon config file {path}: expected a JSON object")
        for key in file_values:
            if key not in KEYS:
                raise bad(key, file_values[key], f"unknown key in {path}")
        both = sorted(set(file_values) & set(flags))
        if both:
            raise SettingsError(f"the following directives are specified both as a flag and in the "
                                f"configuration file {path}: {', '.join(both)}")
    s = Settings()
    if "COVE_HOST" in environ and "hosts" not in flags and "hosts" not in file_values:
        flags["hosts"] = environ["COVE_HOST"]
    for key, value in [*file_values.items(), *flags.items()]:
        attr, kind = KEYS[key]
        converted = convert(key, kind, value)
        if attr:
            setattr(s, attr, converted)
    if s.fixed_cidr and s.bip:
        if not IPv4Network(s.fixed_cidr).subnet_of(IPv4Interface(s.bip).network):
            raise bad("fixed-cidr", s.fixed_cidr, f"not inside the bridge subnet {IPv4Interface(s.bip).network}")
    if s.bridge and s.bip:
        raise bad("bip", s.bip, "--bip and --bridge cannot be used together (the bridge's own address is used)")
    return s


def effective(s: Settings) -> dict[str, Any]:
    """The settings as ``cove info`` shows them (dockerd's names)."""
    return {
        "hosts": [s.host], "data-root": s.data_root, "exec-root": s.exec_root,
        "firewall-backend": s.firewall or "auto", "bridge": s.bridge or "", "bip": s.bip or "",
        "fixed-cidr": s.fixed_cidr or "", "default-address-pools": s.default_address_pools, "icc": s.icc,
        "ip": s.ip, "ip-forward": s.ip_forward, "ip-masq": s.ip_masq,
        "ip-forward-no-drop": s.ip_forward_no_drop, "image-import-max-size": s.image_import_max_size,
        "dns": s.dns, "dns-search": s.dns_search,
        "dns-opts": s.dns_opts, "mtu": s.mtu, "userland-proxy": False,
    }
