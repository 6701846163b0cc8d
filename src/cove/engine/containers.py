"""Containers: create, start, stop, kill, remove, wait, rename, exec, logs.

Start is the one long operation: make the namespace (``bridge`` and ``none``
modes), attach every network, write the private /etc files, start the process.
Each step registers its undo; a failure anywhere leaves nothing behind.

Exit is handled in one place, :meth:`ContainerService.on_exit`, whoever notices it
first (the exit watcher, ``stop``, ``kill``, reconcile after a restart): it
detaches the endpoints (releasing their addresses), deletes the namespace,
records the exit code and, for ``--rm`` containers, removes the container.
Its kernel work (about 70 ms a container) runs without the engine lock, the
container marked busy, so 32 clients' ``rm -f`` do not queue behind each
other's veth deletions; the addresses and host ports stay taken until it is
done, and a ``kill -9`` in the middle leaves a container the store still
calls running, whose exit the restarted daemon processes again.
"""

from __future__ import annotations

import os
import random
import shutil
import signal as _signal
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from .. import crashpoint, etcfiles
from ..errors import Conflict, InvalidArgument, NotFound, field_error
from ..ipam import is_ip
from ..kernel.api import Kernel
from ..model import (Container, ContainerConfig, ContainerState, Endpoint, EndpointRequest, HostConfig, Network,
                     check_name)
from ..pipework import ExtraInterface
from ..portmap import PortMapping
from ..runtime import images as _images
from ..runtime import process as rt
from ..runtime.spec import ContainerSpec, security_spec
from .core import log, new_id, now_rfc3339
from .names import NameService
from .networks import NetworkService, check_dns_name
from .pipework import PipeworkService
from .ports import PortPublisher
from .state import State
from .health import HealthMonitor
from .restart import Restarter
from .volumes import VolumeService
from . import remap

_ADJ = ("admiring", "brave", "calm", "dazzling", "eager", "festive", "gifted", "happy", "jolly", "keen",
        "lucid", "modest", "nifty", "optimistic", "peaceful", "quirky", "relaxed", "serene", "tender", "vibrant")
_NOUN = ("albattani", "babbage", "curie", "darwin", "euler", "fermat", "galileo", "hopper", "jennings",
         "kepler", "lovelace", "meitner", "noether", "pasteur", "ritchie", "shannon", "turing", "wozniak")

#: exit codes remembered for containers already removed, for a ``wait`` that was blocked when its
#: container went (``--condition removed``, an ``--rm`` container): the most recent this many, so a
#: long churn does not keep one per container ever run (issue 14)
LAST_EXITS = 64


@dataclass
class ExecRecord:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    master_fd: int | None = None      # while it runs with a terminal: the pty's master (for resize)


class ContainerService:
    """Containers' lifecycle, built from the engine's state and the services and parts it uses."""

    def __init__(self, state: State, kernel: Kernel, nets: NetworkService, ports: PortPublisher,
                 names: NameService, pipework: PipeworkService, images: _images.ImageStore, runtime: Any) -> None:
        self.state, self.kernel, self.nets, self.ports, self.names, self.pipework = (state, kernel, nets, ports,
                                                                                     names, pipework)
        self.images = images
        #: the container runtime's verbs (start, stop, kill, exit_code, cleanup...): :mod:`cove.runtime.process`
        self.runtime = runtime
        self.watcher: rt.ExitWatcher = runtime.ExitWatcher(self.on_exit)
        # the shared records and helpers, by the names the methods below use
        self.cfg, self.store, self.lock, self.changed = state.cfg, state.store, state.lock, state.changed
        self.containers, self.networks, self.endpoints = state.containers, state.networks, state.endpoints
        self.find_container, self.find_network = state.find_container, state.find_network
        self.save_container, self.container_event = state.save_container, state.container_event
        self.check_unique_container_name = state.check_unique_container_name
        self.execs: dict[str, ExecRecord] = {}
        self.last_exit: dict[str, int] = {}
        self.attached: dict[str, int] = {}
        self.remove_after_attach: set[str] = set()
        self.volumes = VolumeService(state)
        self.health = HealthMonitor(self)
        self.restarter = Restarter(self.containers, self.lock, lambda cid: self.start_container(cid, by_user=False))

    # create -------------------------------------------------------------------------
    def _generate_name(self) -> str:
        taken = {c.name for c in self.containers.values()}
        for _ in range(100):
            name = f"{random.choice(_ADJ)}_{random.choice(_NOUN)}"
            if name not in taken:
                return name
        return f"cove_{new_id()[:8]}"

    def create_container(self, name: str | None, config: ContainerConfig, host: HostConfig,
                         endpoints: dict[str, EndpointRequest]) -> Container:
        with self.lock:
            if name:
                check_name("container name", name.lstrip("/"))
                name = name.lstrip("/")
                check_dns_name("container name", name)
                self.check_unique_container_name(name)
            image = self.images.get(config.image)
            config.image_id = image.id
            icfg = image.config
            if not config.entrypoint:
                config.entrypoint = list(icfg.get("Entrypoint") or [])
                if not config.cmd:
                    config.cmd = list(icfg.get("Cmd") or [])
            config.env = list(icfg.get("Env") or []) + config.env
            config.workdir = config.workdir or icfg.get("WorkingDir", "")
            if not config.healthcheck.get("Test") and icfg.get("Healthcheck"):
                config.healthcheck = {**dict(icfg["Healthcheck"]), **{k: v for k, v in config.healthcheck.items() if v}}
            for port in icfg.get("ExposedPorts") or {}:
                config.exposed_ports.setdefault(port, {})
            if not (config.entrypoint or config.cmd):
                raise InvalidArgument("No command specified")
            if config.hostname:
                check_name("hostname", config.hostname)
            mode = host.network_mode or "default"
            if mode == "default":
                mode = "bridge"
                if "default" in endpoints:
                    endpoints[mode] = endpoints.pop("default")
            host.network_mode = mode
            networks: dict[str, EndpointRequest] = {}
            if mode in ("host", "none"):
                if any(r.ip or r.ip6 or r.aliases or r.mac for r in endpoints.values()):
                    raise InvalidArgument("invalid network settings: --ip, --ip6, --alias and --mac-address need a "
                                          f"network, not --network {mode}")
            elif mode.startswith("container:"):
                self.find_container(mode.split(":", 1)[1])
                if config.hostname:
                    raise InvalidArgument("conflicting options: hostname and the network mode container:")
            else:
                primary = self.find_network(mode)
                if primary.name in ("host", "none"):
                    host.network_mode = primary.name
                else:
                    req = endpoints.pop(mode, None) or endpoints.pop(primary.id, None) or EndpointRequest()
                    self.nets.check_request(primary, req)
                    networks[primary.id] = req
                    for ref, req in endpoints.items():
                        net = self.find_network(ref)
                        self.nets.check_request(net, req)
                        networks[net.id] = req
            for spec in host.extra_hosts:
                hname, sep, hip = spec.partition(":")
                if not sep or not hname or not (hip == "host-gateway" or is_ip(hip)):
                    raise field_error("add-host", spec, "expected NAME:IP (or NAME:host-gateway)")
            for link in host.links:
                target = link.split(":", 1)[0]
                self.find_container(target)
            c = Container(id=new_id(), name=name or self._generate_name(), created=now_rfc3339(),
                          config=config, host_config=host, networks=networks)
            if not c.config.hostname and c.mode not in ("host", "container"):
                c.config.hostname = c.id[:12]
            if c.mode == "bridge":
                self.ports.check_ports(c)
            remap.check_create(self.cfg.userns_remap, host, image.rootfs)
            made = self.volumes.prepare(c, icfg.get("Volumes"))
            try:
                os.makedirs(self.cfg.container_data_dir(c.id), exist_ok=True)
                self.save_container(c)
            except Exception:
                self.volumes.drop(made)
                raise
            self.containers[c.id] = c
            self.container_event(c, "create")
            log.info("container %s (%s) created", c.name, c.id[:12])
            return c

    # start --------------------------------------------------------------------------
    def _sandbox_for(self, c: Container, undo: ExitStack) -> str:
        """The namespace path the container will run in ("" for the host's)."""
        mode = c.mode
        if mode == "host":
            return ""
        if mode == "container":
            other = self.find_container(c.host_config.network_mode.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            # as Docker: the joiner takes the other's names along with its network and /etc files
            c.config.hostname = other.config.hostname or socket.gethostname()
            c.config.domainname = other.config.domainname
            return other.state.netns
        path = os.path.join(self.cfg.netns_dir, c.id)
        if remap.applies(self.cfg.userns_remap, c.host_config) and self.cfg.userns_remap is not None:
            uid_map, gid_map = self.cfg.userns_remap.oci()
            self.kernel.create_userns_netns(path, remap.userns_file(self.cfg, c.id), uid_map, gid_map)
        else:
            self.kernel.create_netns(path)
        undo.callback(self._drop_netns, path)
        inside = self.kernel.get(path)
        inside.set_link(inside.index("lo"), state="up")
        return path

    def _joined(self, c: Container) -> Container | None:
        """The container whose network namespace ``--network container:NAME`` joins."""
        if c.mode != "container":
            return None
        return self.find_container(c.host_config.network_mode.split(":", 1)[1])

    def _drop_netns(self, path: str) -> None:
        self.kernel.drop(path)
        self.kernel.delete_netns(path)
        if self.cfg.userns_remap is not None:           # the user namespace that owned it, if any
            self.kernel.delete_netns(remap.userns_file(self.cfg, os.path.basename(path)))

    def _etc_target(self, c: Container) -> dict[str, str]:
        """The files the container's ``/etc/hosts``, ``resolv.conf`` and ``hostname`` are (its
        own, or those of the container whose network it joins)."""
        if c.mode == "container":
            return self._etc_paths(self.find_container(c.host_config.network_mode.split(":", 1)[1]))
        return self._etc_paths(c)

    def _etc_files(self, c: Container) -> None:
        """Write hosts, resolv.conf and hostname for the container (one joining another's network
        uses the other's: :meth:`_etc_target`)."""
        if c.mode == "container":
            return
        paths = self._etc_paths(c)
        hostname = c.config.hostname or socket.gethostname()
        host_resolv = self._host_resolv()
        etcfiles.write_in_place(paths["/etc/hostname"], hostname + "\n")
        etcfiles.write_in_place(paths["/etc/resolv.conf"], self._resolv_text(c, host_resolv))
        etcfiles.write_in_place(paths["/etc/hosts"], self._hosts_text(c, hostname))

    def _host_resolv(self) -> str:
        try:
            with open(self.cfg.host_resolv_conf) as f:
                return f.read()
        except OSError:
            return ""

    def _resolv_text(self, c: Container, host_resolv: str) -> str:
        hc, cfg = c.host_config, self.cfg
        search, options = hc.dns_search or cfg.dns_search, hc.dns_options or cfg.dns_options
        if self.names.dns_networks(c):
            return etcfiles.resolv_conf_embedded(host_resolv, search, options)
        return etcfiles.resolv_conf(host_resolv, hc.dns or cfg.dns, search, options)

    def _etc_paths(self, c: Container) -> dict[str, str]:
        d = self.cfg.container_data_dir(c.id)
        return {"/etc/hosts": os.path.join(d, "hosts"), "/etc/resolv.conf": os.path.join(d, "resolv.conf"),
                "/etc/hostname": os.path.join(d, "hostname")}

    def _hosts_text(self, c: Container, hostname: str) -> str:
        if c.mode == "host":
            try:
                with open("/etc/hosts") as f:
                    return f.read()
            except OSError:
                pass
        extra: list[tuple[str, str]] = []
        for spec in c.host_config.extra_hosts:
            name, _, ip = spec.partition(":")
            if ip == "host-gateway":      # Docker's name for the host as seen from the default bridge
                bridge = next((n for n in self.networks.values() if n.name == "bridge"), None)
                ip = str(bridge.ipam[0].gateway) if bridge and bridge.ipam and bridge.ipam[0].gateway else ip
            extra.append((name, ip))
        for link in c.host_config.links:
            target, _, alias = link.partition(":")
            try:
                other = self.find_container(target)
            except NotFound:
                continue
            eps = self.endpoints.get(other.id, {})
            if eps:
                ep = next(iter(eps.values()))
                names = " ".join(dict.fromkeys(n for n in (alias, other.name, other.config.hostname) if n))
                extra.append((names, ep.ip))
        addrs = [a for ep in self.endpoints.get(c.id, {}).values() for a in (ep.ip, ep.ip6) if a]
        return etcfiles.hosts(hostname, addrs, extra, c.config.domainname)

    def on_endpoints_changed(self, c: Container) -> None:
        self.names.networks_changed(c.id)
        if c.running and c.mode == "bridge":
            paths = self._etc_paths(c)
            etcfiles.write_in_place(paths["/etc/hosts"], self._hosts_text(c, c.config.hostname))
            if self.names.dns_networks(c):
                # as Docker: joining a first user network switches resolv.conf to the embedded
                # resolver (now listening in the namespace); leaving it does not switch back
                resolv = self._resolv_text(c, self._host_resolv())
                with open(paths["/etc/resolv.conf"]) as f:
                    if f.read() != resolv:
                        etcfiles.write_in_place(paths["/etc/resolv.conf"], resolv)

    def start_container(self, ref: str, by_user: bool = True) -> bool:
        """Start; False if it was already running (HTTP 304). ``by_user`` False: a restart by policy.

        The kernel work (namespace, endpoints, ports, /etc files) is done under the engine lock;
        the runtime's start (the shim and ``runc``) runs without it, the container marked busy
        meanwhile, so other containers' requests go on.  A ``kill -9`` during it leaves the
        container not running in the store: reconcile stops what was started and releases the rest.
        """
        with self.state.occupy(ref, "start") as c:
            return self._start(c, by_user)

    def _start(self, c: Container, by_user: bool) -> bool:
        undo = ExitStack()
        with self.lock:
            if c.running:
                return False
            if by_user:
                self.restarter.user_started(c.id)
            try:
                spec, launch = self._prepare_start(c, undo)
            except BaseException:
                undo.close()
                raise
        try:
            pid = launch.release()                  # the slow part (runc): without the lock
        except BaseException as exc:
            with self.lock:
                c.state.error = str(exc)
                c.state.exit_code = 127
                undo.close()
            raise
        with self.lock:
            try:
                undo.callback(self.runtime.stop, spec.state_dir, 0)      # a later failure must not leave it running
                ports = self.state.starting_ports.pop(c.id, [])
                c.state = ContainerState(status="running", pid=pid, started_at=now_rfc3339(), netns=spec.netns or "",
                                         ports=[m.to_dict() for m in ports])
                self.health.begin(c)
                self.save_container(c)
            except BaseException:
                undo.close()
                raise
            undo.pop_all()
            self.watcher.watch(c.id, spec.state_dir)
            if spec.netns:
                # the namespace's netlink socket (with pyroute2's event-loop descriptors) is not kept
                # open for the container's life: reopened on demand (connect, exit), it would cost
                # four descriptors per running container
                self.kernel.drop(spec.netns)
            self.container_event(c, "start")
            log.info("container %s (%s) started, pid %d", c.name, c.id[:12], pid)
            self.changed.notify_all()
            return True

    def _prepare_start(self, c: Container, undo: ExitStack) -> tuple[ContainerSpec, Any]:
        """Everything before the runtime's start (under the lock), each step's undo on ``undo``.

        The runtime's launch (the shim forked, preparing the container's root and runc's
        config) goes first, once the network namespace exists, and works beside the
        endpoints, ports, ``/etc`` files and resolver made here: its ``release`` (the caller's)
        runs runc.  (The spec names the ``/etc`` files, written later: runc opens them at the
        release.)"""
        image = self.images.get(c.config.image_id)
        sandbox = self._sandbox_for(c, undo)
        remapped = remap.spec_fields(self.cfg.userns_remap, c.host_config, image.rootfs,
                                     remap.userns_for(self.cfg, c, self._joined(c)))
        mounts = self.volumes.spec_mounts(c, image.rootfs)
        remap.claim_volumes(self.cfg.userns_remap, c.host_config, mounts)
        spec = ContainerSpec(
            id=c.id, state_dir=self.cfg.container_state_dir(c.id),
            data_dir=self.cfg.container_data_dir(c.id), netns=sandbox or None,
            hidden=[self.cfg.netns_dir, self.cfg.userns_dir],
            hostname=c.config.hostname or socket.gethostname(), etc_files=self._etc_target(c),
            cmd=list(c.config.entrypoint) + list(c.config.cmd), env=list(c.config.env),
            workdir=c.config.workdir or "/", tty=c.config.tty, open_stdin=c.config.open_stdin,
            stdin_once=c.config.stdin_once, cgroup_parent=self.cfg.cgroup_parent,
            mounts=mounts, **{**security_spec(c.host_config), **remapped})
        launch = self.runtime.launch(spec)
        undo.callback(launch.cancel)
        if c.mode == "bridge":
            for net_id, req in c.networks.items():
                net = self.networks.get(net_id)
                if net is None:
                    raise NotFound(f"network {net_id} not found (removed while the container was stopped)")
                self.nets.attach(c, net, req, sandbox)
                undo.callback(self.nets.detach, c, net_id, sandbox)
        if self.endpoints.get(c.id):
            ports = self.ports.publish_on_gateway(c)
            undo.callback(self.ports.unpublish, ports)
            # held while the runtime starts without the lock: no other start may take these host ports
            self.state.starting_ports[c.id] = ports
            undo.callback(self.state.starting_ports.pop, c.id, None)
        self._etc_files(c)
        if self.names.start_resolver(c, sandbox):
            undo.callback(self.names.stop_resolver, c.id)
        return spec, launch

    # exit ---------------------------------------------------------------------------
    def on_exit(self, cid: str, code: int | None) -> None:
        """The container's process tree is gone: release everything it held (its overlay endpoints'
        cluster-store keys once the lock is let go, :attr:`State.settle`)."""
        try:
            self._on_exit(cid, code)
        finally:
            self.state.settle_unlocked()

    def _on_exit(self, cid: str, code: int | None) -> None:
        """Three steps, the slow one without the engine lock, the container marked busy throughout
        (a start, rm, connect... of it waits; other containers' requests go on): under the lock,
        "die" and what the teardown needs; without it, the kernel work; under it again, the records.
        The lock is taken twice only: under contention each taking is a wait in the queue."""
        with self.lock:
            c = self.containers.get(cid)
            if c is None or c.state.status != "running":
                return
            run = c.state.pid         # this run's: a report that waited past a restart is not for the next one
            claimed = self._claim_exit(cid)          # may wait (the lock let go meanwhile)
            if claimed is None:
                return
            c = claimed
            plan: _Teardown | None = None
            try:
                plan = self._begin_exit(c, run, code)
            finally:
                if plan is None:
                    self._let_go(c)
            if plan is None:
                return
        try:
            errors, failed = self._unplug(c, plan)
        except BaseException:
            self._let_go(c)
            raise
        with self.lock:
            try:
                self._end_exit(c, plan, errors, failed)
                if c.host_config.auto_remove and self.containers.get(cid) is c and not c.running:
                    if self.attached.get(cid):
                        self.remove_after_attach.add(cid)    # an attached client still reads its output
                    else:
                        self._remove(c)
            finally:
                self._let_go(c)

    def _let_go(self, c: Container) -> None:
        with self.lock:
            self.state.exiting.pop(c.id, None)     # a failed commit: a firewall restore programs them again
            self.state.release(c)

    def _claim_exit(self, cid: str) -> Container | None:
        """Mark the container busy for its exit (this thread may hold it already: stop, rm -f); None
        if it was removed meanwhile.  The exit must be processed: it waits as long as it takes."""
        while True:
            try:
                return self.state.claim(cid, "clean-up")
            except NotFound:
                return None
            except Conflict as exc:
                log.warning("the exit of %s waits: %s", cid[:12], exc)

    def _begin_exit(self, c: Container, run: int, code: int | None) -> _Teardown | None:
        """Under the lock: "die" (as dockerd, before the disconnects), the names gone, what to tear down.
        Nothing is released yet: its addresses and host ports stay taken until the kernel's are gone."""
        with self.lock:
            if self.containers.get(c.id) is not c or c.state.status != "running" or c.state.pid != run:
                return None               # processed meanwhile (stop and the exit watcher both report it)
            state_dir = self.cfg.container_state_dir(c.id)
            if code is None:
                code = self.runtime.exit_code(state_dir)
            code = 255 if code is None else code
            self.container_event(c, "die", exitCode=code)
            ports = [PortMapping.from_dict(d) for d in c.state.ports]
            self.state.exiting[c.id] = ports
            self.names.stop_resolver(c.id)
            eps = [(net_id, self.networks.get(net_id), ep) for net_id, ep in self.endpoints.get(c.id, {}).items()]
            for net_id, _, _ in eps:
                self.names.unregister(c.id, net_id)     # its names stop resolving now
            self.watcher.unwatch(c.id)
            self.health.end(c.id)
            netns = c.state.netns if c.mode in ("bridge", "none") else ""
            return _Teardown(code, state_dir, ports, eps, list(self.pipework.extra_ifaces.get(c.id, {}).values()),
                             c.state.netns, netns)

    def _unplug(self, c: Container, plan: _Teardown) -> tuple[list[BaseException], set[str]]:
        """Without the lock: every kernel object of the run goes (ports' map elements, veths, conntrack
        entries, `cove attach` interfaces, the namespace), then the runtime's files.  Each step is idempotent: a ``kill -9`` here
        leaves the container running in the store, and the restarted daemon's reconcile does it all again."""
        errors: list[BaseException] = []
        failed: set[str] = set()
        try:
            self.ports.unpublish(plan.ports)
        except Exception as exc:  # noqa: BLE001 - teardown goes on
            errors.append(exc)
        crashpoint.reached(f"exit of {c.id[:12]}: ports withdrawn")
        for net_id, net, ep in plan.endpoints:
            try:
                self.nets.unplug(net, ep, plan.sandbox)
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                errors.append(exc)
                failed.add(net_id)
        for x in plan.extras:                     # `cove attach` interfaces die with the namespace
            errors += self.pipework.unplug(x)
        if plan.netns:
            try:
                self._drop_netns(plan.netns)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        self.runtime.cleanup(plan.state_dir)
        return errors, failed

    def _end_exit(self, c: Container, plan: _Teardown, errors: list[BaseException], failed: set[str]) -> None:
        """Under the lock again: the records, in one store transaction; only now are the addresses and
        host ports free for others; "disconnect" for each endpoint, the exit for waiters, the restart policy."""
        cid = c.id
        with self.lock:
            with self.store.txn():
                for net_id, _, _ in plan.endpoints:
                    self.store.delete(f"endpoints/{cid}/{net_id}")
                c.state.status = "exited"
                c.state.exit_code = plan.code
                c.state.pid = 0
                c.state.netns = ""
                c.state.ports = []
                c.state.finished_at = now_rfc3339()
                self.save_container(c)
            self.state.exiting.pop(cid, None)
            for net_id, net, ep in plan.endpoints:
                self.nets.forget(c, net_id, ep)
                if net is not None and net_id not in failed:
                    self.state.network_event(net, "disconnect", container=cid)
            for x in plan.extras:
                self.pipework.forget(x)          # a kill -9 before: reconcile drops a stopped one's records
            errors += self.pipework.drop_interfaces(cid)     # one `cove attach` added meanwhile
            self.last_exit.pop(cid, None)          # the newest last: the oldest go first
            self.last_exit[cid] = plan.code
            while len(self.last_exit) > LAST_EXITS:
                del self.last_exit[next(iter(self.last_exit))]
            for failure in errors:
                log.warning("container %s: teardown: %s", c.name, failure)
            log.info("container %s (%s) exited with %d", c.name, cid[:12], plan.code)
            self.changed.notify_all()
            self.restarter.after_exit(c, plan.code)

    def attach_begin(self, cid: str) -> None:
        """A client streams this container's output: an --rm removal waits for it."""
        with self.lock:
            self.attached[cid] = self.attached.get(cid, 0) + 1
            c = self.containers.get(cid)
            if c is not None:
                self.container_event(c, "attach")

    def attach_end(self, cid: str) -> None:
        with self.lock:
            n = self.attached.get(cid, 0) - 1
            if n > 0:
                self.attached[cid] = n
                return
            self.attached.pop(cid, None)
            if cid in self.remove_after_attach:
                self.remove_after_attach.discard(cid)
                c = self.containers.get(cid)
                if c is not None and not c.running:
                    self._remove(c)

    # stop / kill / wait -------------------------------------------------------------
    def stop_container(self, ref: str, timeout: float | None = None) -> bool:
        with self.state.occupy(ref, "stop") as c:
            with self.lock:
                self._stopped_by_user(c)
                if not c.running:
                    return False
                state_dir = self.cfg.container_state_dir(c.id)
                if timeout is None:        # the container's StopTimeout, else Docker's 10 s
                    timeout = 10 if c.config.stop_timeout is None else c.config.stop_timeout
                self.container_event(c, "kill", signal=int(_signal.SIGTERM))

            def killed() -> None:
                with self.lock:
                    self.container_event(c, "kill", signal=int(_signal.SIGKILL))

            code = self.runtime.stop(state_dir, timeout, on_kill=killed)      # without the lock
            self.on_exit(c.id, code)
            with self.lock:
                self.container_event(c, "stop")
            return True

    def kill_container(self, ref: str, sig: str | int | None = None) -> None:
        with self.state.occupy(ref, "kill") as c:
            with self.lock:
                if not c.running:
                    raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
                signum = _parse_signal(sig)
                self._stopped_by_user(c)
                # published before the signal: the exit watcher's "die" must come after it
                self.container_event(c, "kill", signal=signum)
            self.runtime.kill(self.cfg.container_state_dir(c.id), signum)       # without the lock
        if signum == _signal.SIGKILL:
            # as dockerd: a SIGKILL returns once the exit is processed, so the next request (network
            # disconnect, rm) sees a stopped container; waited for with the container let go, as its
            # exit teardown marks it busy in the exit watcher's thread
            with self.lock:
                self.changed.wait_for(lambda: not c.running or c.id not in self.containers, 10)

    def _stopped_by_user(self, c: Container) -> None:
        """No restart by policy after this (as dockerd's HasBeenManuallyStopped); a pending one is cancelled."""
        self.restarter.cancel(c.id)
        if not c.state.stopped_by_user:
            c.state.stopped_by_user = True
            self.save_container(c)

    def wait_container(self, ref: str, condition: str = "not-running") -> Callable[[float | None], int]:
        """Register a wait now; the returned function blocks until it is met and gives the exit code.

        Conditions as Docker's: ``not-running`` (met at once if not running),
        ``next-exit`` (the next exit from now), ``removed`` (the container is gone).
        Registering before blocking lets the API answer with headers at once, so a
        client can start the container after its wait is in place.
        """
        if condition not in ("not-running", "next-exit", "removed"):
            raise field_error("condition", condition, "must be not-running, next-exit or removed")
        with self.lock:
            c = self.find_container(ref)
            cid, finished = c.id, c.state.finished_at

        def done() -> bool:
            cur = self.containers.get(cid)
            if cur is None:
                return True
            if condition == "removed":
                return False
            if condition == "next-exit":
                return cur.state.finished_at != finished
            return not cur.running

        def block(timeout: float | None = None) -> int:
            with self.lock:
                self.changed.wait_for(done, timeout)
                cur = self.containers.get(cid)
                return cur.state.exit_code if cur is not None else self.last_exit.get(cid, 0)

        return block

    def restart_container(self, ref: str, timeout: float | None = None) -> None:
        with self.state.occupy(ref, "restart") as c:
            self.stop_container(c.id, timeout)
            self.start_container(c.id)
            with self.lock:
                self.container_event(c, "restart")

    # remove / rename ----------------------------------------------------------------
    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        with self.state.occupy(ref, "removal") as c:
            with self.lock:
                if c.running and not force:
                    raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
                self.restarter.cancel(c.id)
                c.state.stopped_by_user = True
                running = c.running
                if running:            # before the signal: the exit watcher's "die" comes after it
                    self.container_event(c, "kill", signal=int(_signal.SIGKILL))
            if running:
                state_dir = self.cfg.container_state_dir(c.id)
                self.runtime.kill(state_dir, _signal.SIGKILL)                 # without the lock
                self.runtime.wait_gone(state_dir, 10)      # on its pidfd: no 10 ms polling steps
                self.on_exit(c.id, 137)
            with self.lock:
                if c.id in self.containers:
                    self._remove(c, volumes)

    def _remove(self, c: Container, volumes: bool = True) -> None:
        """Forget ``c``; ``volumes``: its anonymous volumes go too (rm -v, and always for --rm)."""
        # nothing of it may outlive its record (a start a killed daemon left half-done, issue 14)
        self.runtime.abandon(self.cfg.container_state_dir(c.id))
        self.store.delete(f"containers/{c.id}")
        self.containers.pop(c.id, None)
        for exec_id in [k for k, rec in self.execs.items() if rec.container_id == c.id]:
            del self.execs[exec_id]           # its execs go with it, as in dockerd (issue 14: they piled up)
        self.volumes.on_remove(c, volumes)
        self.runtime.cleanup(self.cfg.container_state_dir(c.id))
        shutil.rmtree(self.cfg.container_data_dir(c.id), ignore_errors=True)
        self.container_event(c, "destroy")
        log.info("container %s (%s) removed", c.name, c.id[:12])
        self.changed.notify_all()

    def rename_container(self, ref: str, new_name: str) -> None:
        with self.lock:
            c = self.find_container(ref)
            new_name = check_name("container name", new_name.lstrip("/"))
            self.check_unique_container_name(new_name, exclude=c.id)
            old = c.name
            c.name = new_name
            self.save_container(c)
            self.container_event(c, "rename", oldName="/" + old)

    # terminal size ------------------------------------------------------------------
    def resize_container(self, ref: str, height: int, width: int) -> None:
        """As dockerd: 409 unless running; a container without a TTY accepts it with no effect."""
        with self.lock:
            c = self.find_container(ref)
            if not c.running:
                raise Conflict(f"Container {c.id} is not running")
            if c.config.tty:
                self.runtime.resize_container_tty(self.cfg.container_state_dir(c.id), height, width)
            self.container_event(c, "resize", height=height, width=width)

    def resize_exec(self, exec_id: str, height: int, width: int) -> None:
        with self.lock:
            rec = self.find_exec(exec_id)
            if not rec.running:
                raise Conflict(f"exec {exec_id} is not running")
            if rec.tty and rec.master_fd is not None:
                try:
                    self.runtime.set_winsize(rec.master_fd, height, width)
                except OSError:
                    pass           # it is ending: the pty is going away

    # exec ---------------------------------------------------------------------------
    def exec_create(self, ref: str, cmd: list[str], env: list[str] | None = None, workdir: str = "",
                    tty: bool = False, stdin: bool = False, stdout: bool = True, stderr: bool = True) -> ExecRecord:
        with self.lock:
            c = self.find_container(ref)
            if not c.running:
                raise Conflict(f"Container {c.id} is not running")
            if not cmd:
                raise InvalidArgument("No exec command specified")
            rec = ExecRecord(id=new_id(), container_id=c.id, cmd=cmd, env=list(env or []), workdir=workdir,
                             tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)
            self.execs[rec.id] = rec
            self.container_event(c, _exec_action("exec_create", cmd), execID=rec.id)
            return rec

    def find_exec(self, exec_id: str) -> ExecRecord:
        rec = self.execs.get(exec_id)
        if rec is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return rec

    def exec_start(self, exec_id: str) -> rt.ExecHandle:
        with self.lock:
            rec = self.find_exec(exec_id)
            if rec.running or rec.exit_code is not None:
                raise Conflict(f"exec {exec_id} has already run")
            c = self.find_container(rec.container_id)
            if not c.running:
                raise Conflict(f"Container {c.id} is not running")
            env = _default_env(c.config.env, rec.env)
            handle: rt.ExecHandle = self.runtime.exec_process(
                c.state.pid, rec.cmd, env, rec.workdir or c.config.workdir or "/", tty=rec.tty, stdin=rec.stdin,
                state_dir=self.cfg.container_state_dir(c.id))
            rec.running = True
            rec.pid = handle.popen.pid
            rec.master_fd = handle.master_fd
            self.container_event(c, _exec_action("exec_start", rec.cmd), execID=rec.id)
            return handle

    def exec_finished(self, exec_id: str, code: int) -> None:
        with self.lock:
            rec = self.execs.get(exec_id)
            if rec is not None:
                rec.running = False
                rec.exit_code = code
                if rec.master_fd is not None:      # the stream is done with it (it used to leak)
                    try:
                        os.close(rec.master_fd)
                    except OSError:
                        pass
                rec.master_fd = None
                c = self.containers.get(rec.container_id)
                if c is not None:
                    self.container_event(c, "exec_die", execID=rec.id, exitCode=code)

    # logs ---------------------------------------------------------------------------
    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             timestamps: bool = False) -> Iterator[tuple[str, bytes]]:
        with self.lock:
            c = self.find_container(ref)
            cid, tty = c.id, c.config.tty

        def running() -> bool:
            cur = self.containers.get(cid)
            return cur is not None and cur.running

        lines: Iterator[tuple[str, bytes]] = self.runtime.follow_logs(self.cfg.container_data_dir(cid), tty, follow,
                                                                      running, tail, timestamps)
        return lines


@dataclass
class _Teardown:
    """What an exit tears down, taken under the lock (:meth:`ContainerService._begin_exit`)."""

    code: int
    state_dir: str
    ports: list[PortMapping]
    endpoints: list[tuple[str, Network | None, Endpoint]]
    extras: list[ExtraInterface]
    sandbox: str              # where the endpoints' interfaces are (the namespace the run used)
    netns: str                # the namespace to delete ("" when it is not the container's own)


def _exec_action(action: str, cmd: list[str]) -> str:
    """dockerd's exec event action: ``exec_create: ENTRYPOINT ARGS`` (a trailing space without args)."""
    return f"{action}: {cmd[0]} {' '.join(cmd[1:])}"


def _default_env(base: list[str], extra: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in [*base, *extra]:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return [f"{k}={v}" for k, v in env.items()]


def _parse_signal(sig: str | int | None) -> int:
    if sig is None or sig == "":
        return int(_signal.SIGKILL)
    if isinstance(sig, int) or (str(sig).isascii() and str(sig).isdigit()):
        if not 1 <= int(sig) <= _signal.SIGRTMAX:
            raise field_error("signal", sig, f"not a signal number (1-{int(_signal.SIGRTMAX)})")
        return int(sig)
    name = str(sig).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(_signal, name))
    except AttributeError:
        raise field_error("signal", sig, "not a signal name or number") from None

