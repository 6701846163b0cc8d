"""``cove attach`` / ``cove detach``: pipework-style extra interfaces on running containers.

An extra interface is a veth pair made by cove for one running container, outside
cove's networks: the host end joins an existing bridge that cove does not own (a
Linux bridge, or an Open vSwitch bridge, with an optional VLAN tag), the other end
is created directly inside the container's namespace with the requested name, MAC
and address; with a gateway, the container's default route is replaced by one via
it (as pipework does), and the route it replaced is put back at detach.

Like a pipework interface, it lives as long as the container's namespace: when the
container stops, its extra interfaces are deleted with their records and Open vSwitch
ports (a restart does not bring them back).  Kernel objects are tagged (link alias
``cove:pw:<id>``, OVS ``external_ids:cove-pw=<id>``) so reconcile removes orphans.
"""

from __future__ import annotations

from contextlib import ExitStack
from ipaddress import IPv4Address

from .. import ipam
from ..errors import Conflict, CoveError, Forbidden, NotFound, Unavailable, field_error
from ..kernel import ovs
from ..kernel.api import Kernel, Link, Netlink
from ..model import Container
from ..pipework import LINUX, OVS, ExtraInterface, InterfaceRequest, alias_for, check_ifname, first_free_ifname
from .core import log, new_id
from .state import State


class PipeworkService:
    """Extra interfaces on running containers, built from the engine's state and the kernel."""

    def __init__(self, state: State, kernel: Kernel) -> None:
        self.state = state
        self.kernel = kernel
        # the shared records, by the names the methods below use
        self.store, self.lock, self.extra_ifaces = state.store, state.lock, state.extra_ifaces
        self.networks, self.containers = state.networks, state.containers
        self.find_container, self.endpoints_on = state.find_container, state.endpoints_on

    def save_extra(self, x: ExtraInterface) -> None:
        self.store.put(f"pipework/{x.container_id}/{x.ifname}", x.to_dict())

    def extra_interfaces(self, cid: str) -> list[ExtraInterface]:
        return sorted(self.extra_ifaces.get(cid, {}).values(), key=lambda x: x.ifname)

    # checks -------------------------------------------------------------------------
    def _bridge_type(self, name: str, link: Link | None) -> str:
        if link is None:
            raise NotFound(f"invalid bridge {name!r}: no such bridge on this host "
                           "(cove attach uses an existing Linux or Open vSwitch bridge; create it first)")
        if link.kind == "bridge":
            return LINUX
        if link.kind == "openvswitch":
            if not ovs.available():
                raise Unavailable(f"invalid bridge {name!r}: an Open vSwitch link, but ovs-vsctl is not "
                                  "installed on this host")
            if ovs.bridge_exists(name):
                return OVS
            raise field_error("bridge", name, "an Open vSwitch port, not an Open vSwitch bridge")
        raise field_error("bridge", name, f"a {link.kind or 'plain'} link, not a Linux or Open vSwitch bridge")

    def _check_address_free(self, req: InterfaceRequest, bridge: Link, host: Netlink) -> None:
        ip = str(req.address.ip)
        for net in self.networks.values():
            if net.bridge != req.bridge:
                continue
            for ep in self.endpoints_on(net.id):
                if ep.ip == ip:
                    owner = self.containers.get(ep.container_id)
                    raise Conflict(f"invalid ip {ip!r}: already used on bridge {req.bridge} by container "
                                   f"{owner.name if owner else ep.container_id[:12]} (network {net.name})")
        for extras in self.extra_ifaces.values():
            for x in extras.values():
                if x.bridge == req.bridge and x.ip == ip and x.vlan == (req.vlan or 0):
                    owner = self.containers.get(x.container_id)
                    raise Conflict(f"invalid ip {ip!r}: already used on bridge {req.bridge} by container "
                                   f"{owner.name if owner else x.container_id[:12]} ({x.ifname})")
        if any(str(a.ip) == ip for _, a in host.addresses(bridge.index)):
            raise Conflict(f"invalid ip {ip!r}: it is the host's own address on bridge {req.bridge}")

    def _sandbox_of(self, c: Container) -> str:
        if not c.running:
            raise Conflict(f"container {c.name} is not running: cove attach needs a running container "
                           "(its network namespace); start it first")
        if c.mode == "host":
            raise Forbidden(f"container {c.name} uses the host's network namespace (--network host): "
                            "there is no container namespace to attach an interface to")
        if c.mode == "container":
            other = c.host_config.network_mode.split(":", 1)[1]
            raise Forbidden(f"container {c.name} shares the network namespace of container {other}: "
                            "attach the interface to that container instead")
        if not c.state.netns:
            raise Conflict(f"container {c.name} has no network namespace")
        return c.state.netns

    # attach -------------------------------------------------------------------------
    def add_interface(self, ref: str, req: InterfaceRequest) -> ExtraInterface:
        """Validate everything, then make the interface step by step; undone entirely on failure."""
        with self.lock:
            c = self.find_container(ref)
            sandbox = self._sandbox_of(c)
            host, inside = self.kernel.host, self.kernel.get(sandbox)
            bridge = host.find(req.bridge)
            btype = self._bridge_type(req.bridge, bridge)
            assert bridge is not None
            if req.vlan and btype == LINUX:
                raise field_error("vlan", req.vlan, f"bridge {req.bridge} is a Linux bridge: VLAN tags need an "
                                  "Open vSwitch bridge (cove does not use Linux bridge VLAN filtering)")
            taken = {link.name for link in inside.links()}
            if req.ifname is not None and req.ifname in taken:
                raise Conflict(f"invalid ifname {req.ifname!r}: container {c.name} already has an interface "
                               "of that name")
            ifname = check_ifname(req.ifname or first_free_ifname(taken))
            self._check_address_free(req, bridge, host)
            iid = new_id()
            x = ExtraInterface(id=iid, container_id=c.id, ifname=ifname, host_ifname=f"veth{iid[:7]}",
                               bridge=req.bridge, bridge_type=btype, ip=str(req.address.ip),
                               prefixlen=req.address.network.prefixlen, mac=req.mac or ipam.random_mac(),
                               gateway=str(req.gateway) if req.gateway else "", vlan=req.vlan or 0)
            with ExitStack() as undo:
                index = host.add_veth(x.host_ifname, ifname, sandbox, alias_for(iid), mtu=bridge.mtu)
                undo.callback(host.delete_link, x.host_ifname)
                if btype == LINUX:
                    host.set_link(index, master=bridge.index)
                else:
                    ovs.add_port(req.bridge, x.host_ifname, iid, req.vlan)
                    undo.callback(ovs.del_port, x.host_ifname)
                host.set_link(index, state="up")
                peer = inside.index(ifname)
                inside.set_link(peer, address=x.mac)
                inside.add_address(peer, req.address.ip, x.prefixlen)
                inside.set_link(peer, state="up")
                if req.gateway is not None:
                    prev = inside.default_route()
                    if prev is not None:
                        x.previous_gateway = prev[0]
                        if not prev[0] and prev[1] is not None:
                            x.previous_dev = next((lk.name for lk in inside.links() if lk.index == prev[1]), "")
                    inside.replace_default_route(req.gateway)
                    undo.callback(self._restore_default_route, inside, x)
                try:
                    host.wait_running(x.host_ifname)    # its bridge port forwards only from then on
                    inside.announce(ifname, req.address.ip, x.mac)
                except CoveError as exc:                # only a cache refresh for the neighbours
                    log.warning("container %s: gratuitous ARP on %s: %s", c.name, ifname, exc)
                self.save_extra(x)
                undo.pop_all()
            self.extra_ifaces.setdefault(c.id, {})[ifname] = x
            log.info("container %s: %s (%s/%d) attached to %s bridge %s%s", c.name, ifname, x.ip, x.prefixlen,
                     btype, x.bridge, f" tag {x.vlan}" if x.vlan else "")
            return x

    @staticmethod
    def _restore_default_route(inside: Netlink, x: ExtraInterface) -> None:
        """Put back the default route that ``x``'s gateway replaced (none: delete ours)."""
        if x.previous_gateway:
            inside.replace_default_route(IPv4Address(x.previous_gateway))
        elif x.previous_dev and inside.find(x.previous_dev) is not None:
            inside.replace_default_route(index=inside.index(x.previous_dev))
        else:
            inside.delete_default_route()

    # detach -------------------------------------------------------------------------
    def remove_interface(self, ref: str, ifname: str) -> None:
        with self.lock:
            c = self.find_container(ref)
            x = self.extra_ifaces.get(c.id, {}).get(ifname)
            if x is None:
                have = ", ".join(sorted(self.extra_ifaces.get(c.id, {}))) or "none"
                raise NotFound(f"invalid ifname {ifname!r}: container {c.name} has no interface of that name "
                               f"made by cove attach (it has: {have})")
            errors = self._teardown_interface(x, c.state.netns if c.running else None)
            if errors:
                raise ExceptionGroup(f"removing interface {ifname} of {c.name}", errors)
            log.info("container %s: %s detached from bridge %s", c.name, ifname, x.bridge)

    def _teardown_interface(self, x: ExtraInterface, sandbox: str | None) -> list[Exception]:
        """Delete the veth (its peer goes with it), the OVS port and the record; best effort, errors returned."""
        errors = self.unplug(x)
        if sandbox and x.gateway:
            try:
                inside = self.kernel.get(sandbox)
                if inside.default_route() is None:      # ours went with the link; nobody set another
                    self._restore_default_route(inside, x)
            except CoveError as exc:
                log.warning("container %s: could not restore the default route: %s", x.container_id[:12], exc)
        self.forget(x)
        return errors

    def unplug(self, x: ExtraInterface) -> list[Exception]:
        """The kernel half of a teardown (the veth, the OVS port), touching no record: a container's
        exit runs it without the engine lock, then :meth:`forget` under it."""
        errors: list[Exception] = []
        try:
            self.kernel.get(None).delete_link(x.host_ifname)
        except Exception as exc:  # noqa: BLE001 - teardown goes on
            errors.append(exc)
        if x.bridge_type == OVS:
            try:
                ovs.del_port(x.host_ifname)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        return errors

    def forget(self, x: ExtraInterface) -> None:
        """The records half: the store record and the entry (under the lock)."""
        self.store.delete(f"pipework/{x.container_id}/{x.ifname}")
        mine = self.extra_ifaces.get(x.container_id, {})
        mine.pop(x.ifname, None)
        if not mine:
            self.extra_ifaces.pop(x.container_id, None)

    def drop_interfaces(self, cid: str) -> list[Exception]:
        """The container's namespace is going away: remove all its extra interfaces."""
        errors: list[Exception] = []
        for x in list(self.extra_ifaces.get(cid, {}).values()):
            errors += self._teardown_interface(x, None)
        return errors

    # reconcile ----------------------------------------------------------------------
    def drop_stale(self) -> None:
        """Records of containers that are not running any more (their namespace is gone)."""
        for cid in list(self.extra_ifaces):
            c = self.containers.get(cid)
            if c is None or not c.running:
                for exc in self.drop_interfaces(cid):
                    log.warning("releasing stale interface of %s: %s", cid[:12], exc)

    def collect_garbage(self, links: list[Link]) -> None:
        """Delete ``cove:pw:`` links and cove's OVS ports that no record owns."""
        known = {x.id for d in self.extra_ifaces.values() for x in d.values()}
        host = self.kernel.host
        prefix = alias_for("")
        for link in links:
            alias = link.alias or ""
            if alias.startswith(prefix) and alias[len(prefix):] not in known:
                log.warning("removing orphan attach veth %s (%s)", link.name, alias)
                host.delete_link(link.name)
        # Only bridges this namespace has: the OVS database is the machine's, not the namespace's.
        ovs_links = {link.name for link in links if link.kind == "openvswitch"}
        if not ovs_links or not ovs.available():
            return
        try:
            for port, owner in ovs.cove_ports().items():
                if owner not in known and ovs.port_to_bridge(port) in ovs_links:
                    log.warning("removing orphan Open vSwitch port %s (cove-pw=%s)", port, owner)
                    ovs.del_port(port)
        except CoveError as exc:
            log.warning("checking Open vSwitch for orphan ports: %s", exc)
