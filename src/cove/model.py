"""The domain model: networks, endpoints, containers.  Pure data, no I/O.

Following libnetwork's container network model:

- a :class:`Network` is a group of endpoints that reach each other directly
  (a Linux bridge for the ``bridge`` driver);
- an :class:`Endpoint` joins one container's network namespace (its *sandbox*)
  to one network: an interface inside, an address leased from the network;
- a :class:`Container` holds what the user asked for (:class:`ContainerConfig`,
  the networks it should join with their :class:`EndpointRequest`) and what is
  true now (:class:`ContainerState`).

Endpoints exist only while their container runs, as in Docker: an address is
leased at start and released at stop, so a network's leases are exactly the
addresses of its endpoints (nothing separate to leak).

Every record converts to and from a plain dict for the store (``to_dict`` /
``from_dict``); Docker's wire JSON is built elsewhere (:mod:`cove.daemon.schema`).
A stored record carries ``version`` (:data:`RECORD_VERSION`); ``from_dict``
upgrades an older one step by step (:data:`UPGRADES`) before building the
record, so a store written by an older cove still loads.  Records from before
versioning have no ``version`` and count as version 0.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field, fields
from collections.abc import Callable
from datetime import datetime, timezone
from ipaddress import IPv4Network
from typing import Any

from .errors import CoveError, field_error
from .ipam import IpamConfig

#: Docker's rule for container and network names
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(field: str, value: object) -> bool:
    """The one true/false parser: a bool, or ``true/1/yes/on`` / ``false/0/no/off`` in any case
    (network options, daemon settings, list filters); else ``InvalidArgument`` naming ``field``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise field_error(field, value, "must be true or false")


#: networks every daemon has; they cannot be removed
PREDEFINED = ("bridge", "host", "none")

#: the version of the stored records this cove writes
RECORD_VERSION = 2

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
#: (record kind, from version) -> the step to the next version.  Version 0 -> 1 only adds the
#: stamp: fields added before versioning have defaults (``last_ip6``, ``host_changes``, ...).
#: Version 1 -> 2: a network's ``ipam`` entries were Docker's wire dicts (``{"Subnet": ..., "Gateway": ...,
#: "IPRange": ..., "AuxiliaryAddresses": {...}}``); they are :meth:`IpamConfig.to_record` dicts now.
UPGRADES: dict[tuple[str, int], Upgrade] = {}


def _ipam_wire_to_record(d: dict[str, Any]) -> dict[str, Any]:
    def one(c: dict[str, Any]) -> dict[str, Any]:
        return {"subnet": c["Subnet"], "gateway": c.get("Gateway") or None, "ip_range": c.get("IPRange") or None,
                "aux": dict(c.get("AuxiliaryAddresses") or {})}
    return {**d, "ipam": [one(c) for c in d.get("ipam") or []]}


UPGRADES[("network", 1)] = _ipam_wire_to_record


def epoch_of(rfc3339: str) -> int:
    """Seconds since the epoch of a stored RFC 3339 time (0 if it is not one)."""
    try:
        return int(datetime.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return 0


def stamped(d: dict[str, Any]) -> dict[str, Any]:
    """A record's dict as stored: with the version it was written in."""
    return {**d, "version": RECORD_VERSION}


def upgraded(kind: str, d: dict[str, Any]) -> dict[str, Any]:
    """A stored dict of any known version, as the current version (without the stamp)."""
    d = dict(d)
    version = d.pop("version", 0)
    if not isinstance(version, int) or version > RECORD_VERSION:
        raise CoveError(f"{kind} record of version {version!r}: written by a newer cove "
                         f"(this one reads up to {RECORD_VERSION})")
    while version < RECORD_VERSION:
        step = UPGRADES.get((kind, version))
        if step is not None:
            d = step(d)
        version += 1
    return d


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name) or len(name) > 128:
        raise field_error(kind, name, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


@dataclass
class Network:
    id: str
    name: str
    driver: str                       # bridge | host | null
    created: str                      # RFC 3339
    ipam: list[IpamConfig] = field(default_factory=list)       # IPv4 configs first, then IPv6
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    bridge: str = ""                  # Linux bridge name (bridge driver)
    icc: bool = True
    masquerade: bool = True
    mtu: int = 0
    last_ip: str | None = None        # allocation cursor (CNI host-local's "last reserved")
    #: what the driver changed on the host outside its own objects, to undo at removal
    #: (the uplink NIC's addresses and routes: ``{"uplink": {...}}``)
    host_changes: dict[str, Any] = field(default_factory=dict)
    last_ip6: str | None = None       # the same for the IPv6 subnet

    def ipam_v4(self) -> list[IpamConfig]:
        """The IPv4 entries of ``ipam`` (IPv4 first, then IPv6, as Docker lists them)."""
        return [c for c in self.ipam if c.version == 4]

    def ipam_v6(self) -> list[IpamConfig]:
        """The IPv6 entries of ``ipam``: present only on ``--ipv6`` networks."""
        return [c for c in self.ipam if c.version == 6]

    def subnets_v4(self) -> list[IPv4Network]:
        """The subnets of :meth:`ipam_v4`."""
        return [c.subnet for c in self.ipam if isinstance(c.subnet, IPv4Network)]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "ipam"}
        return stamped({**d, "ipam": [c.to_record() for c in self.ipam]})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Network:
        d = upgraded("network", d)
        return cls(**{**d, "ipam": [IpamConfig.from_record(c) for c in d.get("ipam") or []]})


@dataclass
class EndpointRequest:
    """What a container asked of one network (``--ip``, ``--ip6``, ``--alias``, ``--mac-address``)."""

    ip: str | None = None
    aliases: list[str] = field(default_factory=list)
    mac: str | None = None
    links: list[str] = field(default_factory=list)
    ip6: str | None = None            # --ip6 (IPv6 networks only)


@dataclass
class Endpoint:
    """A live attachment: the kernel objects behind one container on one network."""

    id: str
    network_id: str
    container_id: str
    ifname: str                       # inside the container: eth0, eth1...
    host_ifname: str                  # veth end on the bridge
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    ifindex: int = 0                  # the interface's index inside the container
    host_ifindex: int = 0             # the host end's index (the veth on the bridge; a macvlan's parent)
    ip6: str = ""                     # on an IPv6 network: the container's IPv6 address ...
    prefixlen6: int = 0
    gateway6: str = ""                # ... and the bridge's IPv6 address (its default route)

    def to_dict(self) -> dict[str, Any]:
        return stamped(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Endpoint:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in upgraded("endpoint", d).items() if k in known})


@dataclass
class ContainerConfig:
    image: str
    image_id: str
    cmd: list[str]
    entrypoint: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    hostname: str = ""
    domainname: str = ""
    workdir: str = ""
    tty: bool = False
    open_stdin: bool = False
    exposed_ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: Docker's Healthcheck (Test, Interval, Timeout, Retries, StartPeriod; ns), the image's when not given
    healthcheck: dict[str, Any] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)      # the request's Volumes (anonymous volumes)
    # the streams the creating client meant to attach, as it said (inspect reports them; dockerpty
    # attaches only these); stdin_once: the stdin is closed when the first attached client leaves
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    stdin_once: bool = False
    stop_timeout: int | None = None          # seconds a stop waits before SIGKILL (None: 10)


@dataclass
class HostConfig:
    network_mode: str = "default"
    auto_remove: bool = False
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    port_bindings: dict[str, Any] = field(default_factory=dict)
    publish_all: bool = False
    # the security profile (cove.runtime.profile) and limits: Docker's defaults unless set
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    security_opt: list[str] = field(default_factory=list)
    pids_limit: int = 0
    memory: int = 0
    log_config: dict[str, Any] = field(default_factory=dict)   # {"Type": ..., "Config": {"max-size": ...}}
    binds: list[str] = field(default_factory=list)              # as given (HostConfig.Binds), for inspect
    #: every mount, normalised (cove.engine.volumes): {"Type": bind|volume|tmpfs, "Source", "Target",
    #: "ReadOnly", "Propagation"}; a volume's Source is its name
    mounts: list[dict[str, Any]] = field(default_factory=list)
    restart_policy: dict[str, Any] = field(default_factory=dict)  # {"Name": ..., "MaximumRetryCount": N}
    sysctls: dict[str, str] = field(default_factory=dict)      # namespaced net.* keys, set in the container's netns
    userns_mode: str = ""                    # "host": no user namespace under --userns-remap ("": the daemon's)


@dataclass
class ContainerState:
    status: str = "created"          # created | running | exited | removing
    pid: int = 0
    exit_code: int = 0
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    error: str = ""
    netns: str = ""                  # path of the namespace the container runs in ("" for host)
    ports: list[dict[str, Any]] = field(default_factory=list)   # published PortMapping dicts
    health: dict[str, Any] = field(default_factory=dict)  # State.Health (cove.engine.health); {}: no check
    stopped_by_user: bool = False    # stop/kill by the user: no restart by policy (unless-stopped stays down)


@dataclass
class Container:
    id: str
    name: str
    created: str
    config: ContainerConfig
    host_config: HostConfig
    networks: dict[str, EndpointRequest] = field(default_factory=dict)   # network id -> request
    state: ContainerState = field(default_factory=ContainerState)
    restart_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return stamped(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Container:
        d = upgraded("container", d)
        return cls(
            id=d["id"],
            name=d["name"],
            created=d["created"],
            config=ContainerConfig(**d["config"]),
            host_config=HostConfig(**d["host_config"]),
            networks={k: EndpointRequest(**v) for k, v in d["networks"].items()},
            state=ContainerState(**d["state"]),
            restart_count=d.get("restart_count", 0),
        )

    @property
    def running(self) -> bool:
        return self.state.status == "running"

    @property
    def mode(self) -> str:
        """The network mode kind: bridge (any attached networks), host, none, container."""
        m = self.host_config.network_mode
        if m == "host":
            return "host"
        if m == "none":
            return "none"
        if m.startswith("container:"):
            return "container"
        return "bridge"
