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
from collections.abc import Callable
from typing import Any

from ..errors import CoveError, InvalidArgument
from ..store.etcd import KV_OPTS  # the cluster-store options cove knows (dockerd's kv.* names)
from ..model import parse_bool

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
    cluster_store: str = ""                 # etcd://h1:2379,h2:2379 (overlay networks need it)
    cluster_advertise: str = ""             # this host's VTEP: an IPv4 address or an interface name
    cluster_store_opts: dict[str, str] = field(default_factory=dict)   # kv.cacertfile, kv.certfile, kv.keyfile
    cluster_lease_ttl: int = 30             # seconds before the others forget a silent host
    log_level: str = ""                    # debug | info | warn | error | fatal (dockerd's); "" with --debug: debug
    userns_remap: str = ""                 # default | USER[:GROUP]: containers' root is a subordinate id range
    cgroup_parent: str = "/cove"           # containers' cgroups are CGROUP-PARENT/<id> (dockerd's: /docker)


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
    "cluster-store": ("cluster_store", "cluster-store"), "cluster-advertise": ("cluster_advertise", "advertise"),
    "cluster-store-opts": ("cluster_store_opts", "kvopts"), "cluster-lease-ttl": ("cluster_lease_ttl", "ttl"),
    "log-level": ("log_level", "loglevel"), "userns-remap": ("userns_remap", "userns"),
    "cgroup-parent": ("cgroup_parent", "cgroup-parent"),
}



def _bool(key: str, v: object) -> bool:
    try:
        return parse_bool(key, v)
    except InvalidArgument:
        raise bad(key, v, "must be true or false") from None


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


def _no_proxy(key: str, v: object) -> None:
    if _bool(key, v):
        raise bad(key, v, "cove has no userland proxy: published ports are DNAT'ed by the kernel "
                  "(127.0.0.1 included); only userland-proxy=false is supported")
    return None


def _path(key: str, v: object) -> str:
    if not isinstance(v, str) or not v.startswith("/"):
        raise bad(key, v, "must be an absolute path")
    return v


def _host(key: str, v: object) -> str:
    v = v[0] if isinstance(v, list) and len(v) == 1 else v
    if not isinstance(v, str) or not v.startswith("unix:///"):
        raise bad(key, v, "cove listens on one unix socket: unix:///path")
    return v


def _firewall(key: str, v: object) -> str:
    if not isinstance(v, str) or v not in ("nftables", "iptables", "none", "auto"):
        raise bad(key, v, "must be nftables, iptables, none or auto")
    return v


def _ifname(key: str, v: object) -> str:
    if not isinstance(v, str) or not v or len(v) > 15 or "/" in v or " " in v:
        raise bad(key, v, "not an interface name")
    return v


def _bip(key: str, v: Any) -> str:
    try:
        iface = IPv4Interface(v)
    except ValueError:
        raise bad(key, v, "must be an address with a prefix, e.g. 172.17.0.1/16") from None
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address) or iface.network.prefixlen > 30:
        raise bad(key, v, "the address must be a usable host address of a subnet of /30 or larger")
    return str(iface)


def _cidr(key: str, v: Any) -> str:
    try:
        return str(IPv4Network(v))
    except ValueError as exc:
        raise bad(key, v, str(exc)) from None


def _pools(key: str, v: Any) -> list[str]:
    from ..ipam import parse_pool

    out = []
    for p in v if isinstance(v, list) else [v]:
        spec = p if isinstance(p, str) else ",".join(f"{k}={val}" for k, val in dict(p).items())
        try:
            parse_pool(spec)
        except CoveError as exc:
            raise bad(key, p, str(exc)) from None
        out.append(spec)
    return out


def _ipv4(key: str, v: Any) -> str:
    try:
        return str(IPv4Address(v))
    except ValueError:
        raise bad(key, v, "not an IPv4 address") from None


def _ips(key: str, v: Any) -> list[str]:
    vals = v if isinstance(v, list) else [v]
    for x in vals:
        _ipv4(key, x)
    return list(vals)


def _strs(key: str, v: Any) -> list[str]:
    vals = v if isinstance(v, list) else [v]
    if not all(isinstance(x, str) and x for x in vals):
        raise bad(key, v, "must be a list of strings")
    return list(vals)


def _mtu(key: str, v: Any) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise bad(key, v, "must be an integer") from None
    if n and not 68 <= n <= 65535:
        raise bad(key, v, "must be between 68 and 65535")
    return n


def _cluster_store(key: str, v: Any) -> str:
    from ..store.etcd import parse_endpoints

    if not isinstance(v, str):
        raise bad(key, v, "use etcd://HOST:PORT[,HOST:PORT...]")
    try:
        parse_endpoints(v, key)
    except CoveError as exc:
        raise bad(key, v, str(exc)) from None
    return v


def _advertise(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise bad(key, v, "must be an IPv4 address or an interface name (optionally :PORT)")
    host = v.rsplit(":", 1)[0] if v.count(":") == 1 else v
    try:
        IPv4Address(host)
    except ValueError:
        if len(host) > 15 or "/" in host or " " in host:
            raise bad(key, v, "must be an IPv4 address or an interface name (optionally :PORT)") from None
    return v


def _kvopts(key: str, v: Any) -> dict[str, str]:
    """``kv.X=PATH`` flags (repeatable) or daemon.json's object; the files are read in :func:`load`."""
    if isinstance(v, dict):
        items = dict(v)
    else:
        items = {}
        for x in v if isinstance(v, list) else [v]:
            if not isinstance(x, str):
                raise bad(key, x, "use kv.OPTION=PATH")
            k, _, val = x.partition("=")
            items[k] = val
    for k, val in items.items():
        if k not in KV_OPTS:
            raise bad(key, k, f"unknown cluster store option; cove knows {', '.join(KV_OPTS)}")
        if not isinstance(val, str) or not val.startswith("/"):
            raise bad(key, f"{k}={val}", "must be an absolute path")
    return items


def _ttl(key: str, v: Any) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise bad(key, v, "must be an integer number of seconds") from None
    if not 2 <= n <= 3600:
        raise bad(key, v, "must be between 2 and 3600 seconds")
    return n


def _userns(key: str, v: Any) -> str:
    from ..runtime.userns import parse_setting

    try:
        return parse_setting(v, key)
    except InvalidArgument:
        raise bad(key, v, "use default or USER[:GROUP] (a user with ranges in /etc/subuid and /etc/subgid)") from None


_CGROUP_NAME = re.compile(r"[A-Za-z0-9_.@:-]+")


def _cgroup_parent(key: str, v: Any) -> str:
    """An absolute cgroup path (``/cove``, ``/ci/run-42``): runc makes ``<it>/<container id>`` in every
    hierarchy; a relative one would land under whatever cgroup the daemon happens to run in."""
    parts = v.strip("/").split("/") if isinstance(v, str) and v.startswith("/") else []
    if not parts or any(p in (".", "..") or not _CGROUP_NAME.fullmatch(p) for p in parts):
        raise bad(key, v, "must be an absolute cgroup path such as /cove (names of letters, digits and _.@:-)")
    return "/" + "/".join(parts)


def _loglevel(key: str, v: Any) -> str:
    if v not in ("debug", "info", "warn", "error", "fatal"):
        raise bad(key, v, "must be debug, info, warn, error or fatal")
    return str(v)


#: a setting's kind (KEYS) -> its converter: validate the value, return what to store
CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "bool": _bool, "proxy": _no_proxy, "path": _path, "host": _host, "firewall": _firewall,
    "iptables": lambda key, v: None if _bool(key, v) else "none", "ifname": _ifname, "bip": _bip,
    "cidr": _cidr, "pools": _pools, "ipv4": _ipv4, "ips": _ips, "strs": _strs, "bytes": parse_bytes,
    "mtu": _mtu, "cluster-store": _cluster_store, "advertise": _advertise, "kvopts": _kvopts, "ttl": _ttl,
    "loglevel": _loglevel, "userns": _userns, "cgroup-parent": _cgroup_parent,
}


def convert(key: str, kind: str, v: Any) -> Any:
    """Validate one setting; return the value to store."""
    return CONVERTERS[kind](key, v)


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
    p.add_argument("--cluster-store", help="etcd://HOST:PORT[,HOST:PORT...]: the store overlay networks live in")
    p.add_argument("--cluster-advertise", help="this host's address for other hosts (IPv4 or interface name)")
    p.add_argument("--cluster-store-opt", dest="cluster-store-opts", action="append",
                   help="TLS to etcd (repeatable): kv.cacertfile=CA.pem, kv.certfile=CERT.pem, kv.keyfile=KEY.pem")
    p.add_argument("--cluster-lease-ttl", help="seconds before other hosts forget this one if it goes silent")
    p.add_argument("--userns-remap", help="default or USER[:GROUP]: run containers' root as that user's "
                   "subordinate ids (default: the dockremap user, made if missing)")
    p.add_argument("--cgroup-parent", help="the cgroup containers' cgroups are made under (default /cove; "
                   "default from $COVE_CGROUP_PARENT when set)")
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
    if environ.get("COVE_CGROUP_PARENT") and "cgroup-parent" not in flags and "cgroup-parent" not in file_values:
        flags["cgroup-parent"] = environ["COVE_CGROUP_PARENT"]     # tests/sandbox.sh: one parent per sandbox
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
    if s.cluster_store_opts:
        _check_tls(s)
    return s


def _check_tls(s: Settings) -> None:
    """Read the kv.* files now: a missing or bad one stops the daemon before it starts, naming the option."""
    from ..store.etcd import OptionError, tls_context

    if not s.cluster_store:
        raise bad("cluster-store-opts", ",".join(s.cluster_store_opts), "TLS options need --cluster-store")
    try:
        tls_context(s.cluster_store_opts, s.cluster_store)
    except OptionError as exc:
        raise bad(exc.field, exc.value, exc.reason) from None


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
        "cluster-store": s.cluster_store, "cluster-advertise": s.cluster_advertise,
        "cluster-store-opts": dict(s.cluster_store_opts),
        "cluster-lease-ttl": s.cluster_lease_ttl, "userns-remap": s.userns_remap,
        "cgroup-parent": s.cgroup_parent,
    }
