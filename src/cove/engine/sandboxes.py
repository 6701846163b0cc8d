"""External sandboxes (:mod:`cove.sandbox`): another runtime's namespaces on cove networks.

Each network of a sandbox is an ordinary cove endpoint (``endpoints/<sandbox id>/<network id>``),
made by the network's driver exactly as for a cove container (so IPAM, isolation, masquerade and
reconcile's garbage collection treat it alike); the sandbox record (``sandboxes/<id>``) holds what
the runtime asked for and the ports it published.  The endpoints' ``Container`` is a transient view
built from the record: external sandboxes are not containers (``cove ps`` does not list them).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

from ..model import Endpoint

from ..errors import Conflict, CoveError, Forbidden, NotFound
from ..firewall import Firewall
from ..kernel.api import Kernel
from ..model import Container, ContainerConfig, EndpointRequest, HostConfig
from ..portmap import PortMapping
from ..sandbox import DNS_SERVER, AttachRequest, Sandbox, SandboxNetwork, mappings
from .core import log, now_rfc3339
from .names import NameService
from .networks import NetworkService
from .state import State


class SandboxService:
    def __init__(self, state: State, kernel: Kernel, nets: NetworkService, names: NameService,
                 firewall: Firewall) -> None:
        self.state = state
        self.kernel = kernel
        self.nets = nets
        self.names = names
        self.firewall = firewall

    def _view(self, sb: Sandbox) -> Container:
        """The endpoints' owner as the network services see it (name, short id, aliases)."""
        c = Container(id=sb.id, name=sb.name, created=now_rfc3339(),
                      config=ContainerConfig(image="", image_id="", cmd=[]), host_config=HostConfig(),
                      networks={nid: EndpointRequest(ip=n.ip, aliases=list(n.aliases), mac=n.mac, ip6=n.ip6)
                                for nid, n in sb.networks.items()})
        c.state.status = "running"
        c.state.netns = sb.netns
        return c

    def _save(self, sb: Sandbox) -> None:
        self.state.store.put(f"sandboxes/{sb.id}", sb.to_dict())

    # verbs ---------------------------------------------------------------------------
    def attach(self, req: AttachRequest) -> dict[str, Any]:
        with self.state.lock:
            old = self.state.sandboxes.get(req.id)
            if old is not None and old.netns != req.netns:
                if os.path.exists(old.netns):
                    raise Conflict(f"sandbox {req.id} is already attached in namespace {old.netns}")
                self.detach(req.id)          # the runtime's old namespace is gone: start afresh
                old = None
            if not os.path.exists(req.netns) and not self._fake_ns(req.netns):
                raise NotFound(f"invalid netns {req.netns!r}: no such network namespace")
            sb = Sandbox.from_dict(old.to_dict()) if old is not None else Sandbox(req.id, req.name, req.netns)
            sb.name = req.name
            with ExitStack() as undo:
                for r in req.networks:
                    net = self.state.find_network(r.network)
                    if not self.nets.driver_of(net).has_endpoints:
                        raise Forbidden(f"invalid network {r.network!r}: a {net.driver} network has no endpoints "
                                        "to attach a namespace to")
                    have = sb.networks.get(net.id)
                    if have is not None:
                        if have.ifname != r.ifname:
                            raise Conflict(f"sandbox {req.id} is already on network {net.name} as {have.ifname}")
                        continue
                    if any(n.ifname == r.ifname for n in sb.networks.values()):
                        raise Conflict(f"invalid ifname {r.ifname!r}: sandbox {req.id} already has it")
                    ereq = EndpointRequest(ip=r.ip, aliases=list(r.aliases), mac=r.mac, ip6=r.ip6)
                    self.nets.check_request(net, ereq, predefined_ok=True)
                    sb.networks[net.id] = SandboxNetwork(net.id, r.ifname, list(r.aliases), ereq.ip, ereq.ip6, ereq.mac)
                    view = self._view(sb)
                    self.nets.attach(view, net, ereq, sb.netns, ifname=r.ifname)
                    undo.callback(self.nets.detach, view, net.id, sb.netns)
                if req.ports and not sb.ports:
                    eps = self._endpoints(sb)
                    ip4 = next((ep.ip for ep in eps if ep.ip), "")
                    ip6 = next((ep.ip6 for ep in eps if ep.ip6), "")
                    maps = mappings(req.ports, ip4, ip6)
                    self.firewall.add_ports(maps)
                    undo.callback(self.firewall.remove_ports, maps)
                    sb.ports = [m.to_dict() for m in maps]
                self._save(sb)
                self.state.sandboxes[sb.id] = sb
                undo.pop_all()
            if old is None:           # as netavark and CNI runtimes expect: the namespace's lo is up
                inside = self.kernel.get(sb.netns)
                inside.set_link(inside.index("lo"), state="up")
            self._start_resolver(sb)
            log.info("sandbox %s (%s) attached in %s", sb.name, sb.id[:12], sb.netns)
            return self.status(sb.id)

    def detach(self, sid: str, network: str | None = None) -> None:
        """Remove one network (or all) of a sandbox; what is already gone counts as removed."""
        with self.state.lock:
            sb = self.state.sandboxes.get(sid)
            if sb is None:
                return
            netns = sb.netns if self._ns_exists(sb.netns) else None
            nids = list(sb.networks)
            if network is not None:
                try:
                    nids = [self.state.find_network(network).id]
                except NotFound:
                    nids = [nid for nid in sb.networks if nid == network]
                nids = [nid for nid in nids if nid in sb.networks]
            view = self._view(sb)
            for nid in nids:
                try:
                    self.nets.detach(view, nid, netns)
                except CoveError as exc:
                    log.warning("sandbox %s: leaving network %s: %s", sid[:12], nid[:12], exc)
                del sb.networks[nid]
            if not sb.networks:
                self.names.stop_resolver(sid)
                if sb.ports:
                    self.firewall.remove_ports([PortMapping.from_dict(d) for d in sb.ports])
                self.state.store.delete(f"sandboxes/{sid}")
                del self.state.sandboxes[sid]
                if netns is not None:
                    self.kernel.drop(netns)
            else:
                self._save(sb)
            log.info("sandbox %s (%s) detached", sb.name, sid[:12])

    def status(self, sid: str) -> dict[str, Any]:
        with self.state.lock:
            sb = self.state.sandboxes.get(sid)
            if sb is None:
                raise NotFound(f"no such sandbox: {sid}")
            eps = self.state.endpoints.get(sid, {})
            nets: dict[str, Any] = {}
            for nid in sb.networks:
                net = self.state.networks.get(nid)
                ep = eps.get(nid)
                if net is None or ep is None:
                    continue
                addrs = [{"address": f"{ep.ip}/{ep.prefixlen}", "gateway": ep.gateway}] if ep.ip else []
                if ep.ip6:
                    addrs.append({"address": f"{ep.ip6}/{ep.prefixlen6}", "gateway": ep.gateway6})
                nets[net.name] = {"id": net.id, "ifname": ep.ifname, "mac": ep.mac, "addresses": addrs,
                                  "dns": [DNS_SERVER] if self.names.resolves_names(net) else [],
                                  "aliases": sb.networks[nid].aliases}
            return {"id": sb.id, "name": sb.name, "netns": sb.netns, "networks": nets, "ports": list(sb.ports),
                    "problems": self.problems(sb)}

    def list_all(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [self.status(sid) for sid in sorted(self.state.sandboxes)]

    def problems(self, sb: Sandbox) -> list[str]:
        """What the kernel lacks compared with the record (empty: all is as recorded)."""
        if not self._ns_exists(sb.netns):
            return [f"network namespace {sb.netns} is gone"]
        try:
            inside = self.kernel.get(sb.netns)
        except CoveError as exc:
            return [f"network namespace {sb.netns}: {exc}"]
        out = []
        for ep in self._endpoints(sb):
            link = inside.find(ep.ifname)
            if link is None:
                out.append(f"no interface {ep.ifname}")
                continue
            if (link.mac or "").lower() != ep.mac.lower():
                out.append(f"{ep.ifname} has MAC {link.mac}, not {ep.mac}")
            have = {str(a.ip) for _, a in inside.addresses(link.index)}
            if ep.ip6:
                have |= {str(a.ip) for _, a in inside.addresses(link.index, family=10)}
            for want in (ep.ip, ep.ip6):
                if want and want not in have:
                    out.append(f"{ep.ifname} lacks address {want}")
        return out

    # restart ---------------------------------------------------------------------------
    def restore(self) -> None:
        """At start-up: keep the sandboxes whose namespace still exists, drop the others."""
        for sid, sb in list(self.state.sandboxes.items()):
            if not self._ns_exists(sb.netns):
                log.warning("sandbox %s (%s): namespace %s is gone; releasing it", sb.name, sid[:12], sb.netns)
                self.detach(sid)
                continue
            # a kill -9 in the middle of a detach: endpoints gone, the sandbox's record not yet
            # rewritten; finish it (an attach writes the sandbox's record after its endpoints')
            for nid in [nid for nid in sb.networks if nid not in self.state.endpoints.get(sid, {})]:
                log.warning("sandbox %s (%s): finishing its detach from network %s", sb.name, sid[:12], nid[:12])
                self.detach(sid, nid)
            if sid not in self.state.sandboxes:
                continue
            view = self._view(sb)
            for ep in self._endpoints(sb):
                self.names.register(view, ep)
            self._start_resolver(sb)

    # helpers -------------------------------------------------------------------------
    def _endpoints(self, sb: Sandbox) -> list[Endpoint]:
        eps = self.state.endpoints.get(sb.id, {})
        return [eps[nid] for nid in sb.networks if nid in eps]

    def _start_resolver(self, sb: Sandbox) -> None:
        if not self.names.dns_networks(self._view(sb)):
            return
        sid, table = sb.id, self.state.sandboxes
        try:
            self.names.dns.serve(sid, sb.netns,
                                 networks=lambda: self.names.dns_networks(self._view(table[sid])) if sid in table else [],
                                 upstreams=lambda: self.names.upstreams(self._view(table[sid])) if sid in table else [])
        except (OSError, CoveError) as exc:
            log.warning("sandbox %s: no resolver at %s: %s", sid[:12], DNS_SERVER, exc)

    def _fake_ns(self, path: str) -> bool:
        try:
            self.kernel.get(path)
            return True
        except CoveError:
            return False

    def _ns_exists(self, path: str) -> bool:
        return os.path.exists(path) or self._fake_ns(path)

