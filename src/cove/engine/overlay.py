"""Overlay networks across hosts: the global half of networks, IPAM, endpoints and names.

What is global lives in the cluster store (etcd), under these keys (design
shared/design/overlay-on-etcd.md §2.1); everything else stays in the local store, which also
keeps a copy of every overlay network this host has materialised (so a restart while etcd is
away still finds its bridges):

====================================  ==========================================  ===========
``networks/<net-id>``                 the network record (as ``Network.to_dict``)   –
``names/networks/<name>``             ``{id}``: one network per name, cluster-wide  –
``vni/<vni>``                         ``{network}``                                  –
``subnets/<cidr with - for />``       ``{network}``                                  –
``endpoints/<net-id>/<ep-id>``        container, names, ip, mac, host, vtep          host lease
``ipam/<net-id>/<ip>``                ``{endpoint, host}``                           host lease
``epnames/<net-id>/<name>``           ``{endpoint, host}``                           host lease
====================================  ==========================================  ===========

Every global change is one Txn with its guards: create (name, VNI and subnet keys absent),
attach (network present, IP and endpoint name absent; a lost IP race retries the next
address up to 32 times), rm (the network's endpoint prefix empty: an attach elsewhere and an
rm cannot both win).  Endpoint keys hang on this host's lease, so a host that dies is
forgotten by everyone when its lease expires (TTL), and a restart within the TTL changes
nothing.

Two watches per host (``networks/`` and ``endpoints/``; list, then stream, re-list after a
compaction) materialise every overlay network locally (bridge + VXLAN device, Scope
"global" in ``network ls``) and program each remote endpoint as an FDB + neighbour entry on
the network's VXLAN device and as names in the embedded DNS; a deleted key removes them.

Engine-lock rule: no etcd call of ``network create``, of an endpoint's attach or of its
release runs under the engine lock, so a slow or partitioned etcd (the store client waits 3 s
per member, then fails over to the next) holds only the operation that needs it, never other
containers' requests.  ``network create`` does its Txn before taking the lock.  An attach (a step
of container start or of ``network connect``, under the lock) lets go of the lock around its
reservation Txn (:meth:`cove.engine.state.State.unlocked_for`: only while the container is held
busy by this thread, so nothing else about it can run in between); the endpoint's attach intent
is written first, and the address is kept out of the local pools while the Txn is open
(:attr:`OverlayNetworks.reserving`).  A detach (container stop, exit, rm, ``network
disconnect``) queues the release of the endpoint's keys under the lock and does it once the
operation has let go of the lock (:meth:`OverlayNetworks.settle`, called by
:meth:`~cove.engine.state.State.occupy`, the exit handler and the sandbox verbs), before the
request is answered.  An external sandbox's attach (no container held busy) keeps the lock.
``network rm`` still does its guarded Txn under the lock.

Crash consistency: a ``kill -9`` can leave this host's endpoint keys in etcd with no local
endpoint (a reservation made, its endpoint record never written; a detach that removed the
endpoint but had not yet released its keys).  A restart within the TTL keeps the lease, so they
would stay; the first listing of ``endpoints/`` after joining (:meth:`_endpoints_reset`, after the
reconcile has replayed the intents) releases every key of this host with no local endpoint and
no reservation in progress, so the address is free again and the name no longer resolves on the
other hosts.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from .. import ipam
from ..drivers.overlay import OPT_VNI, VXLAN_PORT, OverlayDriver, vni_of, vxlan_name
from ..errors import Conflict, CoveError, NotFound, Unavailable, field_error
from ..model import Container, Endpoint, EndpointRequest, Network
from ..store.base import Entry, Event
from .core import new_id, now_rfc3339
from .state import State

if TYPE_CHECKING:
    from ..dns.records import Records
    from ..store.etcd import EtcdStore
    from .cluster import ClusterSession
    from .networks import NetworkService

log = logging.getLogger("cove.overlay")

#: where automatic VXLAN ids start (Docker classic started at 256; swarm at 4096)
VNI_START = 4096
#: how many times an attach retries after losing an address race to another host
IP_RETRIES = 32

#: a guard of a Txn: ("absent" | "present" | "empty", key-or-prefix)
Cond = tuple[str, str]


class GlobalKV(Protocol):
    """The few cluster-store verbs the overlay needs (etcd in the daemon, in memory in unit tests)."""

    host_id: str

    def get(self, key: str) -> dict[str, Any] | None: ...
    def scan(self, prefix: str) -> list[Entry]: ...
    def txn(self, conds: list[Cond], puts: list[tuple[str, dict[str, Any], bool]], deletes: list[str]) -> bool:
        """All ``puts`` (key, value, on this host's lease) and ``deletes`` if every guard holds; False if not."""
        ...
    def watch(self, prefix: str, on_reset: Callable[[list[Entry]], None],
              on_event: Callable[[Event], None]) -> Callable[[], None]:
        """List then follow ``prefix`` in the background; returns the function that stops it."""
        ...


class EtcdKV:
    """:class:`GlobalKV` on the cluster session's etcd client and lease."""

    def __init__(self, session: ClusterSession) -> None:
        self.session = session
        self.host_id = session.host_id

    def _etcd(self) -> EtcdStore:
        if self.session.etcd is None or self.session.lease is None:
            raise Unavailable("cluster store unavailable: this host has not joined the cluster yet"
                              + (f" ({self.session.error})" if self.session.error else ""))
        return self.session.etcd

    def get(self, key: str) -> dict[str, Any] | None:
        e = self._etcd().get(key)
        return None if e is None else e.value

    def scan(self, prefix: str) -> list[Entry]:
        return self._etcd().list(prefix)

    def txn(self, conds: list[Cond], puts: list[tuple[str, dict[str, Any], bool]], deletes: list[str]) -> bool:
        from ..store.etcd import _range_end

        etcd = self._etcd()

        def b64(key: str) -> str:
            return base64.b64encode((etcd.prefix + key).encode()).decode()

        compares: list[dict[str, Any]] = []
        for kind, key in conds:
            c: dict[str, Any] = {"key": b64(key), "target": "CREATE", "create_revision": "0",
                                 "result": "GREATER" if kind == "present" else "EQUAL"}
            if kind == "empty":     # no key under the prefix (an empty range compares as create_revision 0)
                c["range_end"] = _range_end(etcd.prefix + key)
            compares.append(c)
        lease = self.session.lease
        ops = [etcd._put_op(k, v, lease if leased else None) for k, v, leased in puts]
        ops += [etcd._delete_op(k) for k in deletes]
        ok, _, _ = etcd.commit(compares, ops)
        return ok

    def watch(self, prefix: str, on_reset: Callable[[list[Entry]], None],
              on_event: Callable[[Event], None]) -> Callable[[], None]:
        from ..store.etcd import Watcher

        w = Watcher(self._etcd(), prefix, on_reset, on_event).start()
        return w.stop


def subnet_key(subnet: object) -> str:
    return "subnets/" + str(subnet).replace("/", "-")


def network_txn(net: Network) -> tuple[list[Cond], list[tuple[str, dict[str, Any], bool]]]:
    """The guards and keys of ``network create`` for ``net`` (its record first): the name, VNI and
    subnet keys must be absent; none hangs on a lease."""
    vni = vni_of(net)
    subnets = [subnet_key(c.subnet) for c in net.ipam]
    record = replace(net, bridge="", mtu=0).to_dict()
    conds: list[Cond] = [("absent", f"names/networks/{net.name}"), ("absent", f"vni/{vni}"),
                         *(("absent", k) for k in subnets)]
    puts = [(f"networks/{net.id}", record, False), (f"names/networks/{net.name}", {"id": net.id}, False),
            (f"vni/{vni}", {"network": net.id}, False), *((k, {"network": net.id}, False) for k in subnets)]
    return conds, puts


def register_endpoint(kv: GlobalKV, vtep: str, net_id: str, ep_id: str, container_id: str, name: str,
                      names: list[str], ip: str, mac: str) -> bool:
    """The one Txn that makes an endpoint of this host (``kv.host_id``) known cluster-wide: its
    record, its address and its name, all on the host's lease; False if the network is gone or the
    address or the name is taken."""
    rec: dict[str, Any] = {"container": container_id, "name": name, "names": names, "ip": ip, "mac": mac,
                           "host": kv.host_id, "vtep": vtep}
    owner: dict[str, Any] = {"endpoint": ep_id, "host": kv.host_id}
    return kv.txn([("present", f"networks/{net_id}"), ("absent", f"ipam/{net_id}/{ip}"),
                   ("absent", f"epnames/{net_id}/{name}")],
                  [(f"endpoints/{net_id}/{ep_id}", rec, True), (f"ipam/{net_id}/{ip}", owner, True),
                   (f"epnames/{net_id}/{name}", owner, True)], [])


class OverlayNetworks:
    """The global half of overlay networks on one host (see the module docstring)."""

    def __init__(self, state: State, nets: NetworkService, records: Records, kv: GlobalKV,
                 guard: Callable[[set[str]], None] | None = None) -> None:
        self.state, self.nets, self.records, self.kv = state, nets, records, kv
        #: writes the VXLAN input filter (cove.firewall.vxlan) with the registered hosts' VTEPs
        self.guard = guard
        #: host id -> VTEP address of every host registered in the cluster
        self.vteps: dict[str, str] = {}
        #: host id -> its name (``hosts/<id>``'s hostname), for network inspect's ``Peers``
        self.host_names: dict[str, str] = {}
        self.lock = state.lock
        #: network id -> endpoint id -> record, for other hosts' endpoints (from the watch)
        self.remote: dict[str, dict[str, dict[str, Any]]] = {}
        self._stops: list[Callable[[], None]] = []
        self._started = threading.Event()
        #: endpoint id -> (network id, address): this host's reservations in progress (their Txn may
        #: be open without the engine lock); under the engine lock
        self.reserving: dict[str, tuple[str, str]] = {}
        #: endpoint id -> (network id, {ip, name}, the thread that queued it): detached endpoints whose
        #: keys are not released yet (:meth:`settle`); under ``_rel``
        self.releasing: dict[str, tuple[str, dict[str, Any], int]] = {}
        self._settling: set[str] = set()      # those of them a settle is releasing now
        self._rel = threading.Condition()
        state.settle = self.settle            # operations release queued keys once they let go of the lock

    # wiring ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the two watches (once this host has joined the cluster)."""
        if self._started.is_set():
            return
        self._started.set()
        self._stops.append(self.kv.watch("hosts/", self._logged(self._hosts_reset), self._logged(self._host_event)))
        self._stops.append(self.kv.watch("networks/", self._logged(self._networks_reset),
                                         self._logged(self._network_event)))
        self._stops.append(self.kv.watch("endpoints/", self._logged(self._endpoints_reset),
                                         self._logged(self._endpoint_event)))
        self.settle(everything=True)       # what the reconcile's detaches queued (the listing released it)

    @staticmethod
    def _logged(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        """A watch handler that logs what it cannot apply (a bad record) instead of making the watcher
        reconnect and replay the same event forever."""
        def handler(arg: Any) -> None:
            try:
                fn(arg)
            except Exception:  # noqa: BLE001 - one bad record must not stop the watch
                log.exception("overlay: cannot apply a cluster store change")

        return handler

    def close(self) -> None:
        for stop in self._stops:
            try:
                stop()
            except Exception:  # noqa: BLE001 - closing goes on
                pass
        self._stops = []

    # the VXLAN guard -----------------------------------------------------------------------
    def _hosts_reset(self, entries: list[Entry]) -> None:
        self.vteps = {e.key.split("/", 1)[1]: str(e.value.get("vtep", "")) for e in entries}
        self.host_names = {e.key.split("/", 1)[1]: str(e.value.get("name", "")) for e in entries}
        self._guard()

    def _host_event(self, ev: Event) -> None:
        hid = ev.key.split("/", 1)[1]
        if ev.kind == "put" and ev.value is not None:
            self.host_names[hid] = str(ev.value.get("name", ""))
            if self.vteps.get(hid) == ev.value.get("vtep"):
                return
            self.vteps[hid] = str(ev.value.get("vtep", ""))
        elif self.vteps.pop(hid, None) is None:
            return
        self._guard()

    def _guard(self) -> None:
        if self.guard is not None:
            self._safe(self.guard, {v for v in self.vteps.values() if v})

    def driver(self) -> OverlayDriver:
        drv = self.nets.driver_by_name("overlay")
        assert isinstance(drv, OverlayDriver)
        return drv

    def remote_leases(self, net_id: str) -> list[str]:
        """The addresses of ``net_id`` a local pool must not hand out besides the local endpoints':
        other hosts', and this host's being reserved or released."""
        with self._rel:
            leaving = [str(rec.get("ip")) for nid, rec, _ in self.releasing.values() if nid == net_id]
        return ([str(r["ip"]) for r in self.remote.get(net_id, {}).values()]
                + [ip for nid, ip in self.reserving.values() if nid == net_id] + leaving)

    def inspect(self, net: Network, local_endpoints: bool) -> dict[str, Any]:
        """What network inspect adds for an overlay network, from the watch's view of the cluster:
        Docker's ``Peers`` (``[{"Name", "IP"}]``: the hosts with endpoints on it, this one included
        when it has some, by hostname and VTEP address) and, under ``Cove``, the VXLAN device and
        ``RemoteEndpoints`` (every other host's endpoint on it: container name, address, MAC and the
        VTEP it is reached through)."""
        vtep = self.nets.drivers.ctx.vtep
        with self.lock:
            remote = sorted(self.remote.get(net.id, {}).items(), key=lambda kv: (str(kv[1].get("vtep")),
                                                                                  str(kv[1].get("ip"))))
            names = dict(self.host_names)
        prefix = next((c.subnet.prefixlen for c in net.ipam), 32)
        peers: dict[str, dict[str, str]] = {}
        if local_endpoints:
            peers[vtep] = {"Name": names.get(self.kv.host_id) or self.kv.host_id[:12], "IP": vtep}
        eps = []
        for ep_id, rec in remote:
            hid, ip = str(rec.get("host", "")), str(rec.get("vtep", ""))
            host = names.get(hid) or hid[:12]
            peers.setdefault(ip, {"Name": host, "IP": ip})
            eps.append({"Name": str(rec.get("name", "")), "EndpointID": ep_id, "ContainerID": str(rec.get("container", "")),
                        "IPv4Address": f"{rec.get('ip')}/{prefix}", "MacAddress": str(rec.get("mac", "")),
                        "Host": host, "HostID": hid, "VTEP": ip})
        return {"Peers": list(peers.values()),
                "VXLAN": {"Name": vxlan_name(net), "VNI": vni_of(net), "Local": vtep, "Port": VXLAN_PORT},
                "RemoteEndpoints": eps}

    # create / remove --------------------------------------------------------------------
    def create(self, name: str, ipam_config: list[ipam.IpamConfig], internal: bool, attachable: bool,
               options: dict[str, str], labels: dict[str, str]) -> Network:
        if any(c.version == 6 for c in ipam_config):
            raise field_error("subnet", str(next(c.subnet for c in ipam_config if c.version == 6)),
                              "overlay networks are IPv4 only in cove")
        if len(ipam_config) > 1:
            raise field_error("subnet", ", ".join(str(c.subnet) for c in ipam_config),
                              "an overlay network has exactly one subnet")
        explicit_vni = OPT_VNI in options
        for attempt in range(8):
            with self.lock:
                if any(n.name == name for n in self.state.networks.values()):
                    raise Conflict(f"network with name {name} already exists")
                configs = self.nets._ipam_configs(list(ipam_config))
                opts = dict(options)
                if not explicit_vni:
                    used = [vni_of(n) for n in self.state.networks.values() if n.driver == "overlay"]
                    opts[OPT_VNI] = str(max([VNI_START - 1, *used]) + 1 + attempt)
                net = Network(id=new_id(), name=name, driver="overlay", created=now_rfc3339(),
                              ipam=[self.nets._with_gateway(c) for c in configs], internal=internal,
                              attachable=attachable, options=opts, labels=dict(labels))
                self.driver().validate(net)
            vni = vni_of(net)
            subnets = [subnet_key(c.subnet) for c in net.ipam]
            conds, puts = network_txn(net)
            record = puts[0][1]
            if self.kv.txn(conds, puts, []):
                break
            if self.kv.get(f"names/networks/{name}") is not None:
                raise Conflict(f"network with name {name} already exists")
            for k, c in zip(subnets, net.ipam):
                owner = self.kv.get(k)
                if owner is not None:
                    raise Conflict(f"invalid pool request: subnet {c.subnet} overlaps with network "
                                   f"{owner.get('network', '?')[:12]}")
            if explicit_vni:
                raise Conflict(f"VXLAN id {vni} is already in use by another overlay network")
        else:
            raise Conflict(f"network {name}: no free VXLAN id found (retried)")
        try:
            made = self.materialize(record, event=True)
        except BaseException:
            self._delete_keys(net)
            raise
        log.info("overlay network %s (%s) created: vni %d, %s", name, net.id[:12], vni,
                 [str(c.subnet) for c in net.ipam])
        return made

    def _delete_keys(self, net: Network) -> None:
        try:
            self.kv.txn([], [], [f"networks/{net.id}", f"names/networks/{net.name}", f"vni/{vni_of(net)}",
                                 *(subnet_key(c.subnet) for c in net.ipam)])
        except CoveError as exc:
            log.warning("overlay network %s: cannot remove its global keys: %s", net.name, exc)

    def remove(self, net: Network) -> None:
        """The global part of ``network rm``: refused while any host has an endpoint (naming them)."""
        hosts: dict[str, str] = {}
        for _ in range(3):      # an endpoint released between the guarded Txn and the scan: try again
            ok = self.kv.txn([("empty", f"endpoints/{net.id}/")], [],
                             [f"networks/{net.id}", f"names/networks/{net.name}", f"vni/{vni_of(net)}",
                              *(subnet_key(c.subnet) for c in net.ipam)])
            if ok:
                return
            for e in self.kv.scan(f"endpoints/{net.id}/"):
                hid = str(e.value.get("host", ""))
                rec = self.kv.get(f"hosts/{hid}") or {}
                hosts[hid] = f"{rec.get('name') or hid[:12]} ({rec.get('vtep') or e.value.get('vtep') or '?'})"
            if hosts:
                break
        raise Conflict(f"error while removing network: network {net.name} id {net.id} has active endpoints "
                       f"on hosts {', '.join(sorted(hosts.values()))}")

    # materialising networks here ----------------------------------------------------------
    def materialize(self, record: dict[str, Any], event: bool = False) -> Network:
        """Make a global network here (bridge + VXLAN device, local copy); idempotent."""
        with self.lock:
            net = Network.from_dict(record)
            have = self.state.networks.get(net.id)
            if have is not None:
                return have
            clash = next((n for n in self.state.networks.values() if n.name == net.name), None)
            if clash is not None:
                raise Conflict(f"overlay network {net.name} ({net.id[:12]}) clashes with local network "
                               f"{clash.name} ({clash.id[:12]})")
            drv = self.driver()
            drv.validate(net)
            drv.create(net)
            try:
                self.state.save_network(net)
            except BaseException:
                drv.delete(net)
                raise
            self.state.networks[net.id] = net
            self._program(net, list(self.remote.get(net.id, {}).values()))
            if event:
                self.state.network_event(net, "create")
            return net

    def _dematerialize(self, net_id: str) -> None:
        with self.lock:
            net = self.state.networks.get(net_id)
            if net is None or net.driver != "overlay":
                return
            if self.state.endpoints_on(net_id):
                log.warning("overlay network %s was removed from the cluster while containers here use it; "
                            "kept here until they leave", net.name)
                return
            for rec in self.remote.pop(net_id, {}).values():
                self.records.remove_endpoint(net_id, str(rec["container"]))
            try:
                self.driver().delete(net)
            except (CoveError, ExceptionGroup) as exc:
                log.warning("overlay network %s: %s", net.name, exc)
            self.state.store.delete(f"networks/{net_id}")
            del self.state.networks[net_id]
            self.state.forget_pools(net_id)
            self.state.network_event(net, "destroy")

    def _networks_reset(self, entries: list[Entry]) -> None:
        seen = set()
        for e in entries:
            seen.add(e.value.get("id"))
            self._safe(self.materialize, e.value)
        for nid in [n.id for n in self.state.networks.values() if n.driver == "overlay" and n.id not in seen]:
            self._dematerialize(nid)

    def _network_event(self, ev: Event) -> None:
        if ev.kind == "put" and ev.value is not None:
            self._safe(self.materialize, ev.value)
        elif ev.kind == "delete":
            self._dematerialize(ev.key.split("/", 1)[1])

    @staticmethod
    def _safe(fn: Callable[..., object], *args: Any) -> None:
        try:
            fn(*args)
        except (CoveError, ExceptionGroup) as exc:
            log.warning("overlay: %s", exc)

    # remote endpoints --------------------------------------------------------------------
    def _program(self, net: Network, recs: list[dict[str, Any]]) -> None:
        """Program remote endpoints: their kernel entries in one batch (a cold start brings thousands;
        one netlink round trip each took 15 s for 10,000), then their names."""
        if not recs:
            return
        try:
            self.driver().add_peers(net, [(str(r["ip"]), str(r["mac"]), str(r["vtep"])) for r in recs])
        except CoveError as exc:
            log.warning("overlay network %s: peers %s: %s", net.name,
                        recs[0].get("ip") if len(recs) == 1 else f"({len(recs)})", exc)
        for rec in recs:
            try:
                self.records.set_endpoint(net.id, str(rec["container"]), list(rec.get("names") or []),
                                          str(rec["ip"]))
            except CoveError as exc:
                log.warning("overlay network %s: names of %s: %s", net.name, rec.get("ip"), exc)

    def _add_remote(self, net_id: str, ep_id: str, rec: dict[str, Any], program: bool = True) -> bool:
        """Take a remote endpoint's record; True if it is new or changed.  With ``program`` False the
        caller programs it (in a batch with others) if the network is here."""
        with self.lock:
            old = self.remote.setdefault(net_id, {}).get(ep_id)
            if old == rec:
                return False
            if old is not None:
                self._remove_remote(net_id, ep_id)
            self.remote[net_id][ep_id] = rec
            net = self.state.networks.get(net_id)
            if program and net is not None and net.driver == "overlay":
                self._program(net, [rec])
            self.state.forget_pools(net_id)
            return True

    def _remove_remote(self, net_id: str, ep_id: str) -> None:
        with self.lock:
            rec = self.remote.get(net_id, {}).pop(ep_id, None)
            if rec is None:
                return
            self.records.remove_endpoint(net_id, str(rec["container"]))
            net = self.state.networks.get(net_id)
            if net is not None and net.driver == "overlay":
                try:
                    self.driver().remove_peer(net, str(rec["ip"]), str(rec["mac"]), str(rec["vtep"]))
                except CoveError as exc:
                    log.warning("overlay network %s: peer %s: %s", net.name, rec.get("ip"), exc)
            self.state.forget_pools(net_id)

    def _endpoints_reset(self, entries: list[Entry]) -> None:
        want: dict[tuple[str, str], dict[str, Any]] = {}
        mine_stale = []
        with self.lock:      # an endpoint being attached is not stale: its reservation is in progress
            local = {ep.id for eps in self.state.endpoints.values() for ep in eps.values()} | set(self.reserving)
        for e in entries:
            _, net_id, ep_id = e.key.split("/", 2)
            if e.value.get("host") == self.kv.host_id:
                if ep_id not in local:
                    mine_stale.append((net_id, ep_id, e.value))
                continue
            want[(net_id, ep_id)] = e.value
        with self.lock:
            for net_id, eps in list(self.remote.items()):
                for ep_id in list(eps):
                    if (net_id, ep_id) not in want:
                        self._remove_remote(net_id, ep_id)
            fresh: dict[str, list[dict[str, Any]]] = {}
            for (net_id, ep_id), rec in want.items():
                if self._add_remote(net_id, ep_id, rec, program=False):
                    fresh.setdefault(net_id, []).append(rec)
            for net_id, recs in fresh.items():
                net = self.state.networks.get(net_id)
                if net is not None and net.driver == "overlay":
                    self._program(net, recs)
            # peers the kernel still has from before (a restart) that no record wants any more
            drv = self.driver()
            for net in [n for n in self.state.networks.values() if n.driver == "overlay"]:
                macs = {str(r["mac"]) for r in self.remote.get(net.id, {}).values()}
                try:
                    drv.remove_peers(net, [p for p in drv.peers(net) if p[1] not in macs])
                except CoveError as exc:
                    log.warning("overlay network %s: %s", net.name, exc)
        for net_id, ep_id, rec in mine_stale:      # released while the store was away, or left by a kill -9
            log.info("overlay: releasing endpoint %s (%s on network %s) of this host: it has no local endpoint",
                     ep_id[:12], rec.get("ip"), net_id[:12])
            self._safe(self._release_keys, net_id, ep_id, rec)
        # this host's endpoints the store no longer has (a restart after the TTL): put them back
        present = {tuple(e.key.split("/", 2)[1:]) for e in entries}
        with self.lock:
            lost = [(self.state.containers[cid], self.state.networks[nid], ep)
                    for cid, eps in self.state.endpoints.items() for nid, ep in eps.items()
                    if (nid, ep.id) not in present and cid in self.state.containers
                    and nid in self.state.networks and self.state.networks[nid].driver == "overlay"]
        for c, net, ep in lost:
            self._safe(self._register_again, c, net, ep)

    def rejoined(self) -> None:
        """This host joined the cluster again under a new lease (the old one expired, and with it
        every key of this host's endpoints): read the endpoints again, which puts this host's back."""
        self._endpoints_reset(self.kv.scan("endpoints/"))

    def _register_again(self, c: Container, net: Network, ep: Endpoint) -> None:
        req = c.networks.get(net.id) or EndpointRequest()
        if not register_endpoint(self.kv, self.nets.drivers.ctx.vtep, net.id, ep.id, c.id, c.name,
                                 [c.name, c.id[:12], *req.aliases], ep.ip, ep.mac):
            log.warning("overlay network %s: container %s could not take back %s (another host has the address "
                        "or the name now); it is unreachable from other hosts", net.name, c.name, ep.ip)
        else:
            log.info("overlay network %s: container %s registered again at %s", net.name, c.name, ep.ip)

    def _endpoint_event(self, ev: Event) -> None:
        parts = ev.key.split("/", 2)
        if len(parts) != 3:
            return
        _, net_id, ep_id = parts
        if ev.kind == "put" and ev.value is not None:
            if ev.value.get("host") != self.kv.host_id:
                self._add_remote(net_id, ep_id, ev.value)
        else:
            self._remove_remote(net_id, ep_id)

    # local endpoints ---------------------------------------------------------------------
    def reserve(self, c: Container, net: Network, req: EndpointRequest, ep: Endpoint,
                pool: ipam.AddressPool,
                unlocked: Callable[[], AbstractContextManager[object]] = nullcontext) -> None:
        """Reserve the endpoint's address and name cluster-wide (one Txn); on a lost address race
        take the next free address (``ep`` is updated) up to :data:`IP_RETRIES` times.  Called under
        the engine lock; each Txn runs inside ``unlocked()`` (which lets go of it).  Until
        :meth:`reserved` the endpoint counts as this host's (a re-list does not release it) and its
        address stays out of the local pools."""
        names = [c.name, c.id[:12], *req.aliases]
        vtep = self.nets.drivers.ctx.vtep
        for _ in range(IP_RETRIES):
            self.reserving[ep.id] = (net.id, ep.ip)
            with unlocked():
                if not self.lock._is_owned():  # type: ignore[attr-defined]  # this host's releases first:
                    self.settle(everything=True)       # a container started again takes its name back
                ip, mac = ep.ip, ep.mac
                if register_endpoint(self.kv, vtep, net.id, ep.id, c.id, c.name, names, ip, mac):
                    return
                gone = self.kv.get(f"networks/{net.id}") is None
                name_taken = not gone and self.kv.get(f"epnames/{net.id}/{c.name}") is not None
            if gone:
                raise NotFound(f"network {net.name} not found (removed from the cluster)")
            if name_taken:
                raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
            if req.ip is not None:
                raise Conflict(f"ip {ep.ip} is already in use on network {net.name}")
            new = pool.allocate(None)       # the lost address stays taken in the pool: another host has it
            ep.ip = str(new)
            if req.mac is None:
                ep.mac = ipam.mac_for_ip(IPv4Address(new))
        raise Conflict(f"no free address on network {net.name} after {IP_RETRIES} tries (other hosts took them)")

    def reserved(self, ep_id: str) -> None:
        """The attach of ``ep_id`` is over (recorded, or undone): it is no longer in progress."""
        self.reserving.pop(ep_id, None)

    def release(self, net: Network, ep: Endpoint, c: Container) -> None:
        """Queue the release of the endpoint's global keys; :meth:`settle` does it, without the engine
        lock (best effort: the next listing and the lease are the backstops)."""
        with self._rel:
            self.releasing[ep.id] = (net.id, {"ip": ep.ip, "name": c.name, "network": net.name,
                                              "container": c.id}, threading.get_ident())

    def settle(self, everything: bool = False, container: str | None = None) -> None:
        """Release the keys this thread queued (``everything``: all queued, and wait for those other
        threads are releasing: an attach taking a name back; ``container``: also that container's,
        whoever queued them, and wait for them: ``rm -f`` answers after its endpoints are released
        even when the exit watcher's thread detached them).  Called without the engine lock; a
        release that fails is logged and left to the next listing."""
        me = threading.get_ident()

        def mine(owner: int, rec: dict[str, Any]) -> bool:
            return everything or owner == me or (container is not None and rec.get("container") == container)

        while True:
            with self._rel:
                todo = next((k for k, (_, rec, owner) in self.releasing.items()
                             if k not in self._settling and mine(owner, rec)), None)
                if todo is None:
                    if everything:
                        self._rel.wait_for(lambda: not self._settling)
                    elif container is not None:
                        self._rel.wait_for(lambda: not any(
                            self.releasing[k][1].get("container") == container
                            for k in self._settling if k in self.releasing))
                    return
                self._settling.add(todo)
                net_id, rec, _ = self.releasing[todo]
            try:
                self._release_keys(net_id, todo, rec)
            except CoveError as exc:
                log.warning("overlay network %s: cannot release endpoint %s now (%s); it goes when its "
                            "keys are next listed or with this host's lease", rec.get("network"), todo[:12], exc)
            finally:
                with self._rel:
                    self._settling.discard(todo)
                    self.releasing.pop(todo, None)
                    self._rel.notify_all()

    def _release_keys(self, net_id: str, ep_id: str, rec: dict[str, Any]) -> None:
        deletes = [f"endpoints/{net_id}/{ep_id}"]
        ip_owner = self.kv.get(f"ipam/{net_id}/{rec.get('ip')}")
        if ip_owner is not None and ip_owner.get("endpoint") == ep_id:
            deletes.append(f"ipam/{net_id}/{rec.get('ip')}")
        name_owner = self.kv.get(f"epnames/{net_id}/{rec.get('name')}")
        if name_owner is not None and name_owner.get("endpoint") == ep_id:
            deletes.append(f"epnames/{net_id}/{rec.get('name')}")
        self.kv.txn([], [], deletes)
