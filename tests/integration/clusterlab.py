"""A multi-host test bed inside the sandbox: 3 etcd members and N cove hosts on one underlay.

Every member and every host is a network namespace plugged into the bridge ``ul0`` by its
own veth (``v-e1``, ``v-h2``...), so a test can cut one link.  etcd members listen on
10.99.0.11-13, hosts have 10.99.0.21.. and each runs its own ``cove daemon`` (own socket,
data root and exec root under a temp dir) with ``--cluster-store`` naming all three
members and ``--cluster-advertise eth0``.  Everything is killed by PID and removed at the
end, even on failure; the sandbox namespace itself vanishes with the test run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cove.store.etcd import EtcdStore, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
MEMBERS = {f"e{i}": f"10.99.0.1{i}" for i in (1, 2, 3)}
STORE_URL = "etcd://" + ",".join(f"{ip}:2379" for ip in MEMBERS.values())


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@dataclass
class Host:
    name: str
    ip: str
    root: str
    ttl: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def sock(self) -> str:
        return f"{self.root}/cove.sock"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "COVE_HOST": f"unix://{self.sock}", "COVE_NO_AUTOSTART": "1",
                "PYTHONPATH": str(ROOT / "src")}

    def start(self) -> None:
        log = open(f"{self.root}/daemon.log", "ab")
        self.proc = subprocess.Popen(
            # nsenter, not `ip netns exec`: that remounts /sys and the cgroup mounts runc needs go with it
            ["nsenter", f"--net=/run/netns/{self.name}", sys.executable, "-m", "cove", "daemon", "--config-file",
             "/nonexistent", "--host", f"unix://{self.sock}", "--data-root", f"{self.root}/lib",
             "--exec-root", f"{self.root}/run", "--cluster-store", STORE_URL, "--cluster-advertise", "eth0",
             "--cluster-lease-ttl", str(self.ttl)], stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon {self.name} exited early:\n{self.log()}")
            if os.path.exists(self.sock) and self.cli("version").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon {self.name} did not answer:\n{self.log()}")

    def kill(self) -> None:
        """Kill the daemon without any clean-up (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cove", *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def log(self) -> str:
        p = Path(f"{self.root}/daemon.log")
        return p.read_text()[-3000:] if p.exists() else ""


@dataclass
class Lab:
    tmp: str
    ttl: int
    hosts: list[Host] = field(default_factory=list)
    etcd: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def plug(self, ns: str, ip: str) -> None:
        # what an earlier lab in this sandbox could not take down (a process it could not reap keeps
        # a namespace and its veth) must not stop this one
        sh("ip", "link", "del", f"v-{ns}", check=False)
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"v-{ns}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"v-{ns}", "master", "ul0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def start_member(self, name: str) -> None:
        ip = MEMBERS[name]
        cluster = ",".join(f"{n}=http://{a}:2380" for n, a in MEMBERS.items())
        log = open(f"{self.tmp}/{name}.log", "ab")
        self.etcd[name] = subprocess.Popen(
            ["ip", "netns", "exec", name, ETCD, "--name", name, "--data-dir", f"{self.tmp}/{name}",
             "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
             "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", "cove-lab", "--heartbeat-interval", "100",
             "--election-timeout", "1000", "--logger", "zap", "--log-level", "error"], stdout=log, stderr=log)

    def stop_member(self, name: str) -> None:
        p = self.etcd.pop(name, None)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def store(self, timeout: float = 3.0) -> EtcdStore:
        """A client of the cluster from the sandbox (which sits on the underlay as 10.99.0.254)."""
        return EtcdStore.from_url(STORE_URL, timeout=timeout)

    def close(self) -> None:
        for h in self.hosts:
            for cid in (h.cli("ps", "-aq").stdout.split() if h.proc else []):
                h.cli("rm", "-f", cid)
            h.stop()
        for name in list(self.etcd):
            self.stop_member(name)
        for ns in [*MEMBERS, *(h.name for h in self.hosts)]:
            # what a killed daemon left running in its host's namespace (its shim zygote) keeps the
            # namespace, and the host's underlay veth, alive after `ip netns del`
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            # the underlay veth goes with its host end, whatever still holds the namespace (a process
            # not yet reaped keeps it, and the next lab's `ip link add v-NAME` found it there)
            sh("ip", "link", "del", f"v-{ns}", check=False)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", "ul0", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_lab(n_hosts: int = 3, ttl: int = 3, start: bool = True) -> Lab:
    """The etcd members (ready) and ``n_hosts`` plugged hosts, their daemons started unless ``start``
    is False (a bench that fills etcd first starts them itself with ``Host.start``)."""
    if os.environ.get("COVE_SANDBOX") != "1":
        raise RuntimeError("the cluster lab runs only inside tests/sandbox.sh")
    if not os.path.exists(ETCD):
        raise RuntimeError("etcd is not installed (scripts/install.sh installs etcd-server)")
    lab = Lab(tempfile.mkdtemp(prefix="cove-lab-"), ttl)
    try:
        sh("ip", "link", "add", "ul0", "type", "bridge")
        sh("ip", "link", "set", "ul0", "up")
        sh("ip", "addr", "add", "10.99.0.254/24", "dev", "ul0")
        for name, ip in MEMBERS.items():
            lab.plug(name, ip)
            lab.start_member(name)
        wait_ready(lab.store(), time.monotonic() + 30)
        for i in range(1, n_hosts + 1):
            name = f"h{i}"
            lab.plug(name, f"10.99.0.2{i}")
            root = f"{lab.tmp}/{name}"
            os.makedirs(root)
            lab.hosts.append(Host(name, f"10.99.0.2{i}", root, ttl))
        for h in lab.hosts if start else []:
            h.start()
    except BaseException:
        lab.close()
        raise
    return lab
