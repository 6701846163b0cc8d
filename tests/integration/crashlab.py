"""Crash lab (issue 14): a churn loop against a real daemon, killed with SIGKILL again and again.

Each cycle the lab lets the daemon (re)start, checks the invariant, then runs
random operations (network create, run -d with ``-p`` and a name, connect,
disconnect, rm -f, network rm) through the Engine API until the daemon dies:

- *point* kills: the daemon runs with ``COVE_TEST_CRASH_FILE`` (:mod:`cove.crashpoint`);
  the lab writes N there and the daemon ``os._exit``\\ s at the Nth durable step
  (store commit, netlink change, namespace, shim spawn) of the operations that follow;
- *timer* kills: a ``SIGKILL`` from a timer at a random moment of an operation.

The invariant, after every restart (:meth:`CrashLab.check`):

- acknowledged operations hold: every network and container the lab was answered
  for is there as answered (running or not, on exactly its networks), nothing
  acknowledged as removed is back; only the operation the kill interrupted may
  have gone either way (the lab adopts what the daemon says of that one object);
- the kernel equals the store: every link tagged ``cove:net:``/``cove:ep:``
  belongs to a stored network / an endpoint of a running container and each of
  those has its link (on its bridge, inside the namespace with its address); no
  new untagged link; namespace files are exactly the running containers'; the
  firewall names only stored subnets, running containers' addresses and their
  published ports, and every published port is there; no conntrack entry for
  an address no endpoint holds; no process (init, shim) runs for a container
  the store does not call running, and every running one runs;
- users see it: every running container's published port answers HTTP and its
  name (and a peer's) resolves at 127.0.0.11 to its address;
- at the end, after removing everything: nothing is left (links, namespaces,
  firewall rules, processes, intents in the store).

The daemon's RSS and open descriptors are sampled after every check.
``tests/integration/test_crashlab.py`` runs a short version in CI; ``make soak``
(``bench/soak.py``) the long one.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon, firewall_text, sandbox_links

PORT_BASE = 18100          # published ports: PORT_BASE + container number (mod 400)
SUBNET_PREFIX = "10.97"    # user networks: 10.97.N.0/24
WEB = ["httpd", "-f", "-p", "80"]


class DaemonDown(Exception):
    """The daemon stopped answering (it was killed)."""


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


@dataclass
class LabDaemon(Daemon):
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra_env}

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        conn = _UnixHTTP(self.sock, timeout)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonDown(f"{method} {path}: {exc}") from exc
        finally:
            conn.close()
        text = data.decode(errors="replace")
        try:
            return r.status, json.loads(text) if text else None
        except ValueError:
            return r.status, text


@dataclass
class CModel:
    running: bool
    nets: set[str]
    port: int
    primary: str            # the network it was made on: its published port goes to that address


@dataclass
class Stats:
    cycles: int = 0
    kills_point: int = 0
    kills_timer: int = 0
    kills_idle: int = 0
    ops: int = 0
    interrupted: int = 0
    leaks: list[str] = field(default_factory=list)       # kernel/process objects no record owns, and the reverse
    lost: list[str] = field(default_factory=list)        # acknowledged operations not holding after a restart
    user: list[str] = field(default_factory=list)        # a name or port not answering
    samples: list[tuple[int, int, int, int]] = field(default_factory=list)   # (cycle, ops, rss kB, fds)

    def problems(self) -> list[str]:
        return self.leaks + self.lost + self.user


def _proc_links() -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


def _nft_and_ipt() -> str:
    return "\n".join(re.sub(r"\[\d+:\d+\]", "", line) for line in firewall_text().splitlines()
                     if not line.startswith("#"))


class CrashLab:
    def __init__(self, *, seed: int, firewall: str = "nftables", point_share: float = 0.6,
                 max_ops_per_cycle: int = 12, log: Any = None) -> None:
        self.rng = random.Random(seed)
        self.tmp = tempfile.mkdtemp(prefix="cove-crashlab-")
        self.crash_file, self.steps_log = f"{self.tmp}/crash-at", f"{self.tmp}/steps.log"
        self.d = LabDaemon(sock=f"{self.tmp}/cove.sock", data_root=f"{self.tmp}/lib",
                           exec_root=f"/run/cove/crash-{uuid.uuid4().hex[:8]}", log=f"{self.tmp}/daemon.log",
                           firewall=firewall, extra_env={"COVE_TEST_CRASH_FILE": self.crash_file,
                                                                     "COVE_TEST_CRASH_LOG": self.steps_log})
        self.firewall = firewall
        self.point_share, self.max_ops = point_share, max_ops_per_cycle
        self.say = log or (lambda *a: None)
        self.nets: dict[str, str] = {}          # name -> subnet, as acknowledged
        self.conts: dict[str, CModel] = {}      # name -> as acknowledged
        self.uncertain_nets: set[str] = set()
        self.uncertain_conts: set[str] = set()
        self.serial = 0
        self.stats = Stats()

    # -- set-up / tear-down ---------------------------------------------------------------
    def start(self) -> None:
        self.d.start("--firewall-backend", self.firewall)
        self.links0 = sandbox_links()          # with the default bridge
        self.d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{self.tmp}/busybox.tar"), "bb")
        self.fw0 = _nft_and_ipt()              # with the daemon's own base ruleset (no network yet)

    def close(self, keep: bool = False) -> None:
        """Stop the daemon; remove the lab's temp dir (busybox tar, logs) unless ``keep``."""
        if self.d.proc is not None:
            self.d.stop()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- one cycle ------------------------------------------------------------------------
    def cycle(self) -> None:
        self.stats.cycles += 1
        mode = "point" if self.rng.random() < self.point_share else "timer"
        timer: threading.Timer | None = None
        if mode == "point":
            Path(self.crash_file).write_text(str(self.rng.randint(1, 40)))
        else:
            proc = self.d.proc
            assert proc is not None
            timer = threading.Timer(self.rng.uniform(0.05, 4.0), proc.send_signal, (signal.SIGKILL,))
            timer.start()
        died = False
        for _ in range(self.max_ops):
            try:
                self.op()
            except DaemonDown:
                died = True
                break
            if self.d.proc is not None and self.d.proc.poll() is not None:
                died = True
                break
        if timer is not None:
            timer.cancel()
        if not died:                             # the chosen step was not reached: kill it at rest
            assert self.d.proc is not None
            self.d.proc.send_signal(signal.SIGKILL)
            self.stats.kills_idle += 1
        elif mode == "point":
            self.stats.kills_point += 1
        else:
            self.stats.kills_timer += 1
        assert self.d.proc is not None
        self.d.proc.wait()
        self.d.proc = None
        try:
            os.unlink(self.crash_file)
        except FileNotFoundError:
            pass
        self.d.start()
        self.check()

    def calm_cycle(self) -> None:
        """The same churn without a kill (the soak's memory and descriptor phase)."""
        for _ in range(self.max_ops):
            self.op()
        self.check()

    # -- operations -------------------------------------------------------------------------
    def _call(self, what: str, method: str, path: str, body: Any, ok: tuple[int, ...]) -> Any:
        status, data = self.d.api(method, path, body)
        if status not in ok:
            if self.d.proc is not None and self.d.proc.poll() is not None:
                raise DaemonDown(what)
            raise AssertionError(f"{what}: {status} {data}")
        return data

    def op(self) -> None:
        rng = self.rng
        running = [n for n, c in self.conts.items() if c.running]
        choices = ["net-create"] * (3 if len(self.nets) < 3 else 1)
        if self.nets and len(self.conts) < 8:
            choices += ["run"] * 4
        if self.conts:
            choices += ["rm"] * 2
        if running and len(self.nets) > 1:
            choices += ["connect", "disconnect"] * 3
        if any(not any(n in c.nets for c in self.conts.values()) for n in self.nets):
            choices += ["net-rm"] * 2
        kind = rng.choice(choices)
        self.stats.ops += 1
        if kind == "net-create":
            self.serial += 1
            subnet = f"{SUBNET_PREFIX}.{self.serial % 250}.0/24"
            if subnet not in self.nets.values():
                self.net_create(f"cn{self.serial}", subnet)
        elif kind == "run":
            self.serial += 1
            self.run(f"c{self.serial}", rng.choice(sorted(self.nets)))
        elif kind == "rm":
            self.rm(rng.choice(sorted(self.conts)))
        elif kind == "connect":
            name = rng.choice(running)
            free = sorted(set(self.nets) - self.conts[name].nets)
            if free:
                self.connect(rng.choice(free), name)
        elif kind == "disconnect":
            name = rng.choice(running)
            others = sorted(self.conts[name].nets - {self.conts[name].primary})
            if others:
                self.disconnect(rng.choice(others), name)
        elif kind == "net-rm":
            self.net_rm(rng.choice(sorted(n for n in self.nets if not any(n in c.nets for c in self.conts.values()))))

    # each verb: the object is uncertain from the request until the answer, then as answered
    def net_create(self, name: str, subnet: str) -> None:
        self.uncertain_nets.add(name)
        self._call("network create", "POST", "/networks/create",
                   {"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}}, (201,))
        self.nets[name] = subnet
        self.uncertain_nets.discard(name)

    def run(self, name: str, net: str) -> None:
        port = PORT_BASE + int(name[1:]) % 400
        self.uncertain_conts.add(name)
        self._call("create", "POST", f"/containers/create?name={name}",
                   {"Image": "bb", "Cmd": WEB, "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"NetworkMode": net, "PortBindings": {"80/tcp": [{"HostPort": str(port)}]}}},
                   (201,))
        self.conts[name] = CModel(False, {net}, port, net)
        self._call("start", "POST", f"/containers/{name}/start", None, (204,))
        self.conts[name].running = True
        self.uncertain_conts.discard(name)

    def rm(self, name: str) -> None:
        self.uncertain_conts.add(name)
        self._call("rm -f", "DELETE", f"/containers/{name}?force=1", None, (204,))
        self.conts.pop(name, None)
        self.uncertain_conts.discard(name)

    def connect(self, net: str, name: str) -> None:
        self.uncertain_conts.add(name)
        self._call("network connect", "POST", f"/networks/{net}/connect", {"Container": name}, (200,))
        self.conts[name].nets.add(net)
        self.uncertain_conts.discard(name)

    def disconnect(self, net: str, name: str) -> None:
        self.uncertain_conts.add(name)
        self._call("network disconnect", "POST", f"/networks/{net}/disconnect", {"Container": name}, (200,))
        self.conts[name].nets.discard(net)
        self.uncertain_conts.discard(name)

    def net_rm(self, name: str) -> None:
        self.uncertain_nets.add(name)
        self._call("network rm", "DELETE", f"/networks/{name}", None, (204,))
        self.nets.pop(name, None)
        self.uncertain_nets.discard(name)

    # -- every instant of one operation ------------------------------------------------------
    def steps(self) -> int:
        try:
            with open(self.steps_log) as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def sweep(self, prepare: Callable[[], None], op: Callable[[], None], tidy: Callable[[], None]) -> int:
        """Kill the daemon at the 1st, 2nd, ... durable step of ``op`` in turn (each time after
        ``prepare``), restart, check; ``tidy`` removes what is left.  Returns the number of steps."""
        prepare()
        before = self.steps()
        op()
        n = self.steps() - before
        tidy()
        self.check()
        for k in range(1, n + 1):
            prepare()
            Path(self.crash_file).write_text(str(k))
            try:
                op()
            except DaemonDown:
                self.stats.kills_point += 1
            else:                      # a step fewer this time (a background write came first)
                assert self.d.proc is not None
                self.d.proc.send_signal(signal.SIGKILL)
                self.stats.kills_idle += 1
            self.stats.cycles += 1
            assert self.d.proc is not None
            self.d.proc.wait()
            self.d.proc = None
            Path(self.crash_file).unlink(missing_ok=True)
            self.d.start()
            self.check()
            tidy()
        return n

    # -- the invariant ----------------------------------------------------------------------
    def observe(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(networks by name, containers by name) as the daemon reports them."""
        status, nets = self.d.api("GET", "/networks")
        assert status == 200, nets
        status, listed = self.d.api("GET", "/containers/json?all=1")
        assert status == 200, listed
        conts = {}
        for c in listed:
            status, data = self.d.api("GET", f"/containers/{c['Id']}/json")
            assert status == 200, data
            conts[data["Name"].lstrip("/")] = data
        return {n["Name"]: n for n in nets}, conts

    def check(self, final: bool = False) -> None:
        nets, conts = self.observe()
        st = self.stats
        # acknowledged operations -------------------------------------------------------
        for name in self.uncertain_nets:
            if name in nets:
                self.nets[name] = nets[name]["IPAM"]["Config"][0]["Subnet"]
            else:
                self.nets.pop(name, None)
        for name in self.uncertain_conts:
            if name in conts:
                c = conts[name]
                self.conts[name] = CModel(bool(c["State"]["Running"]), set(self._configured_nets(c)),
                                          PORT_BASE + int(name[1:]) % 400, c["HostConfig"]["NetworkMode"])
            else:
                self.conts.pop(name, None)
        st.interrupted += len(self.uncertain_nets) + len(self.uncertain_conts)
        self.uncertain_nets.clear()
        self.uncertain_conts.clear()
        user_nets = {n: v for n, v in nets.items() if n.startswith("cn")}
        for name, subnet in self.nets.items():
            if name not in user_nets:
                st.lost.append(f"cycle {st.cycles}: network {name} acknowledged but gone")
            elif user_nets[name]["IPAM"]["Config"][0]["Subnet"] != subnet:
                st.lost.append(f"cycle {st.cycles}: network {name} has another subnet")
        for name in set(user_nets) - set(self.nets):
            st.lost.append(f"cycle {st.cycles}: network {name} acknowledged as removed (or never made) but there")
        for name, m in self.conts.items():
            c = conts.get(name)
            if c is None:
                st.lost.append(f"cycle {st.cycles}: container {name} acknowledged but gone")
                continue
            if bool(c["State"]["Running"]) != m.running:
                st.lost.append(f"cycle {st.cycles}: container {name} running={c['State']['Running']}, "
                               f"acknowledged {m.running}")
            have = set(self._configured_nets(c))
            if have != m.nets:
                st.lost.append(f"cycle {st.cycles}: container {name} on {sorted(have)}, acknowledged {sorted(m.nets)}")
        for name in set(conts) - set(self.conts):
            st.lost.append(f"cycle {st.cycles}: container {name} acknowledged as removed (or never made) but there")
        self._check_kernel(nets, conts)
        if not final:
            self._check_user_view(conts)
        self._sample()

    @staticmethod
    def _configured_nets(c: dict[str, Any]) -> list[str]:
        """The networks a container is on (running) or will join (stopped), by name."""
        return sorted(c["NetworkSettings"]["Networks"])

    def _check_kernel(self, nets: dict[str, dict[str, Any]], conts: dict[str, dict[str, Any]]) -> None:
        st, cyc = self.stats, self.stats.cycles
        net_ids = {n["Id"] for n in nets.values()}
        running = {name: c for name, c in conts.items() if c["State"]["Running"]}
        eps: dict[str, tuple[str, str, str]] = {}       # endpoint id -> (container, network, ip)
        for name, c in running.items():
            for net, ep in c["NetworkSettings"]["Networks"].items():
                if ep.get("EndpointID"):
                    eps[ep["EndpointID"]] = (name, net, ep["IPAddress"])
        links = _proc_links()
        tagged_nets, tagged_eps = {}, {}
        for link in links:
            alias = link.get("ifalias") or ""
            if alias.startswith("cove:net:"):
                tagged_nets[alias[9:]] = link
            elif alias.startswith("cove:ep:"):
                tagged_eps[alias[8:]] = link
            elif link["ifname"] not in self.links0:
                st.leaks.append(f"cycle {cyc}: untagged link {link['ifname']} ({link.get('linkinfo', {}).get('info_kind')})")
        for nid in set(tagged_nets) - net_ids:
            st.leaks.append(f"cycle {cyc}: bridge {tagged_nets[nid]['ifname']} of no stored network")
        for n in nets.values():
            if n["Driver"] == "bridge" and n["Id"] not in tagged_nets:
                st.leaks.append(f"cycle {cyc}: network {n['Name']} has no bridge")
        for eid in set(tagged_eps) - set(eps):
            st.leaks.append(f"cycle {cyc}: veth {tagged_eps[eid]['ifname']} of no running endpoint")
        for eid, (cname, net, _) in eps.items():
            if eid not in tagged_eps:
                st.leaks.append(f"cycle {cyc}: endpoint of {cname} on {net} has no veth")
        # namespaces and what is inside them
        netns_dir = Path(self.d.exec_root) / "netns"
        files = {p.name for p in netns_dir.iterdir()} if netns_dir.exists() else set()
        want = {c["Id"] for c in running.values() if c["HostConfig"]["NetworkMode"] not in ("host", "none")}
        for f in files - want:
            st.leaks.append(f"cycle {cyc}: namespace file {f[:12]} of no running container")
        for f in want - files:
            st.leaks.append(f"cycle {cyc}: running container {f[:12]} has no namespace file")
        for name, c in running.items():
            path = netns_dir / c["Id"]
            if not path.exists():
                continue
            out = subprocess.run(["nsenter", f"--net={path}", "ip", "-j", "addr"], capture_output=True, text=True)
            have = {a["local"] for link in json.loads(out.stdout or "[]") for a in link.get("addr_info", [])
                    if a.get("family") == "inet" and a["local"] != "127.0.0.1"}
            want_ips = {ep["IPAddress"] for ep in c["NetworkSettings"]["Networks"].values()}
            if have != want_ips:
                st.leaks.append(f"cycle {cyc}: {name} has addresses {sorted(have)}, its endpoints {sorted(want_ips)}")
        # firewall: subnets, addresses and ports of what is stored and running only
        fw = _nft_and_ipt()
        subnets = {n["IPAM"]["Config"][0]["Subnet"] for n in nets.values() if n["IPAM"]["Config"]}
        for s in set(re.findall(rf"{SUBNET_PREFIX}\.\d+\.0/24", fw)) - subnets:
            st.leaks.append(f"cycle {cyc}: firewall names subnet {s} of no network")
        ips = {ip for _, _, ip in eps.values()}
        gateways = {n["IPAM"]["Config"][0].get("Gateway") for n in nets.values() if n["IPAM"]["Config"]}
        for ip in set(re.findall(rf"\b{SUBNET_PREFIX}\.\d+\.(?!0/)\d+\b", fw)) - ips - gateways:
            st.leaks.append(f"cycle {cyc}: firewall names address {ip} of no running endpoint")
        published = {self.conts[n].port for n in running if n in self.conts}
        fw_ports = {int(p) for p in re.findall(r"\b(18[1-4]\d\d)\b", fw) if PORT_BASE <= int(p) < PORT_BASE + 400}
        for p in fw_ports - published:
            st.leaks.append(f"cycle {cyc}: firewall publishes port {p} of no running container")
        for p in published - fw_ports:
            st.leaks.append(f"cycle {cyc}: port {p} of a running container is not in the firewall")
        # conntrack: no flow of an address no endpoint holds
        ct = "\n".join(line for line in subprocess.run(["conntrack", "-L"], capture_output=True, text=True).stdout
                       .splitlines() if "dst=224." not in line)     # the bridges' own IGMP reports
        for ip in set(re.findall(rf"\b{SUBNET_PREFIX}\.\d+\.\d+\b", ct)) - ips - gateways:
            st.leaks.append(f"cycle {cyc}: conntrack holds flows of {ip}, which no endpoint holds")
        # processes: every init and shim of ours belongs to a running container, and those run
        ids = {c["Id"] for c in running.values()}
        seen: set[str] = set()
        for pid, cid, what in self._our_processes():
            if cid not in ids:
                st.leaks.append(f"cycle {cyc}: {what} {pid} of container {cid[:12]}, which is not running")
            seen.add(cid)
        for name, c in running.items():
            if c["Id"] not in seen:
                st.leaks.append(f"cycle {cyc}: {name} is called running but none of its processes runs")

    def _our_processes(self) -> list[tuple[int, str, str]]:
        """(pid, container id, "init"/"shim") of each process whose root or working directory is one of
        this daemon's containers (a shim works in its state dir; a container's root is under the data root)."""
        roots = (os.path.realpath(self.d.data_root), os.path.realpath(self.d.exec_root))
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            for what, link in (("init", "root"), ("shim", "cwd")):
                try:
                    target = os.readlink(f"/proc/{entry}/{link}")
                except OSError:
                    continue
                m = re.search(r"/containers/([0-9a-f]{64})", target)
                if m and target.startswith(roots):
                    try:
                        state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    except OSError:
                        continue
                    if state not in ("Z", "X"):
                        found.append((int(entry), m.group(1), what))
                    break
        return found

    def _check_user_view(self, conts: dict[str, dict[str, Any]]) -> None:
        st, cyc = self.stats, self.stats.cycles
        running = {n: c for n, c in conts.items() if c["State"]["Running"] and n in self.conts}
        for name, c in running.items():
            port = self.conts[name].port
            if not _http_answers(port, 8.0):
                st.user.append(f"cycle {cyc}: port {port} of {name} does not answer")
            path = Path(self.d.exec_root) / "netns" / c["Id"]
            for peer, pc in running.items():
                shared = set(c["NetworkSettings"]["Networks"]) & set(pc["NetworkSettings"]["Networks"])
                if peer != name and not shared:
                    continue
                net = sorted(shared)[0]
                want = pc["NetworkSettings"]["Networks"][net]["IPAddress"]
                got = _resolve(path, peer)
                if want not in got:
                    st.user.append(f"cycle {cyc}: {peer} resolves to {got} in {name}, want {want}")
                if peer != name:
                    break

    def _sample(self) -> None:
        assert self.d.proc is not None
        pid = self.d.proc.pid
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        self.stats.samples.append((self.stats.cycles, self.stats.ops, rss, fds))

    # -- the end ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Remove everything (the restarted daemon does it as a user would), then nothing may be left."""
        st = self.stats
        for name in list(self.conts):
            self._call("rm", "DELETE", f"/containers/{name}?force=1", None, (204,))
            del self.conts[name]
        for name in list(self.nets):
            self._call("net-rm", "DELETE", f"/networks/{name}", None, (204,))
            del self.nets[name]
        self.check(final=True)
        left = {n for n in sandbox_links() - self.links0}
        if left:
            st.leaks.append(f"end: links left {sorted(left)}")
        fw = _nft_and_ipt()
        if fw != self.fw0:
            st.leaks.append("end: firewall differs from before:\n" + "\n".join(
                line for line in fw.splitlines() if line not in self.fw0.splitlines()))
        db = sqlite3.connect(f"{self.d.data_root}/cove.db")
        try:
            intents = [k for (k,) in db.execute("SELECT key FROM kv WHERE key LIKE 'intents/%'")]
        finally:
            db.close()
        if intents:
            st.leaks.append(f"end: intents left in the store: {intents}")
        self.d.stop()
        for pid, cid, what in self._our_processes():
            st.leaks.append(f"end: {what} {pid} of container {cid[:12]} still runs")


def _http_answers(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/"):
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _resolve(netns: Path, name: str) -> list[str]:
    """What cove's resolver (127.0.0.11 in the container's namespace) answers for ``name``."""
    for _ in range(3):
        r = subprocess.run(["nsenter", f"--net={netns}", "busybox", "nslookup", "-type=a", name, "127.0.0.11"],
                           capture_output=True, text=True, timeout=10)
        got = re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)(?!#|:53)", r.stdout.split("Name:", 1)[-1])
        if got:
            return got
        time.sleep(0.3)
    return []
