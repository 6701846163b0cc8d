"""A multi-host test bed inside the sandbox: 3 etcd members and N cove hosts on one underlay.

Every member and every host is a network namespace plugged into the bridge ``ul0`` by its
own veth (``v-e1``, ``v-h2``...), so a test can cut one link.  etcd members listen on
10.99.0.11-13, hosts have 10.99.0.21.. and each runs its own ``cove daemon`` (own socket,
data root and exec root under a temp dir) with ``--cluster-store`` naming all three
members and ``--cluster-advertise eth0``.  Everything is killed by PID and removed at the
end, even on failure; the sandbox namespace itself vanishes with the test run.

``make_lab(tls=True)``: a CA, server certificates (SANs: each member's address) and a client
certificate are made with ``openssl`` in the lab's temp dir (tests/pki.py); the members serve
clients over HTTPS only and demand a client certificate signed by that CA (``--client-cert-auth``;
peer traffic stays plain), and the daemons get ``--cluster-store-opt kv.cacertfile/certfile/keyfile``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cove.store.etcd import EtcdStore, wait_ready
from tests.pki import Pki, make_pki

ROOT = Path(__file__).resolve().parents[2]
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
MEMBERS = {f"e{i}": f"10.99.0.1{i}" for i in (1, 2, 3)}
STORE_URL = "etcd://" + ",".join(f"{ip}:2379" for ip in MEMBERS.values())


def until(cond: Callable[[], object], timeout: float) -> float:
    """Poll ``cond`` every 50 ms until it holds (return the seconds it took) or ``timeout`` passes
    (AssertionError)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def ok(h: Host, *args: str) -> str:
    """``cove ARGS`` on host ``h``: its output, or AssertionError with its stderr and the daemon's log."""
    r = h.cli(*args)
    assert r.returncode == 0, f"{h.name}: cove {' '.join(args)}: {r.stderr}\n{h.log()}"
    return r.stdout.strip()


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@dataclass
class Host:
    name: str
    ip: str
    root: str
    ttl: int
    proc: subprocess.Popen[bytes] | None = None
    store_url: str = STORE_URL
    #: the daemon's --cluster-store-opt values (kv.* -> path); empty: plain HTTP to etcd
    kv_opts: dict[str, str] = field(default_factory=dict)
    #: more environment for the daemon only (not its CLI): the crash hook, COVE_TEST_CRASH_FILE
    daemon_env: dict[str, str] = field(default_factory=dict)

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
             "--exec-root", f"{self.root}/run", "--cluster-store", self.store_url, "--cluster-advertise", "eth0",
             "--cluster-lease-ttl", str(self.ttl), *self.opt_args()], stdout=log, stderr=log,
            env={**self.env, **self.daemon_env})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon {self.name} exited early:\n{self.log()}")
            if os.path.exists(self.sock) and self.cli("version").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon {self.name} did not answer:\n{self.log()}")

    def opt_args(self) -> list[str]:
        return [a for k, v in self.kv_opts.items() for a in ("--cluster-store-opt", f"{k}={v}")]

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
    pki: Pki | None = None        # TLS mode: the members serve clients over HTTPS with client-cert auth

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
        scheme, tls = "http", []
        if self.pki is not None:
            cert, key = self.pki.servers[name]
            scheme, tls = "https", ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", self.pki.ca,
                                    "--client-cert-auth"]
        self.etcd[name] = subprocess.Popen(
            ["ip", "netns", "exec", name, ETCD, "--name", name, "--data-dir", f"{self.tmp}/{name}",
             "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
             "--listen-client-urls", f"{scheme}://{ip}:2379", "--advertise-client-urls", f"{scheme}://{ip}:2379",
             *tls,
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", "cove-lab", "--heartbeat-interval", "100",
             "--election-timeout", "1000", "--logger", "zap", "--log-level", "error"], stdout=log, stderr=log)

    def stop_member(self, name: str) -> None:
        p = self.etcd.pop(name, None)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def store(self, timeout: float = 3.0, opts: dict[str, str] | None = None) -> EtcdStore:
        """A client of the cluster from the sandbox (which sits on the underlay as 10.99.0.254);
        in TLS mode with the lab's client certificate unless ``opts`` says otherwise."""
        if opts is None:
            opts = self.pki.kv_opts() if self.pki is not None else {}
        return EtcdStore.from_url(STORE_URL, opts=opts, timeout=timeout)

    def add_host(self, i: int, *, start: bool = True, store_url: str = STORE_URL,
                 kv_opts: dict[str, str] | None = None) -> Host:
        """Plug host ``h<i>`` (10.99.0.2<i>) with its own root; in TLS mode with the lab's client
        certificate unless ``kv_opts`` says otherwise."""
        name = f"h{i}"
        self.plug(name, f"10.99.0.2{i}")
        root = f"{self.tmp}/{name}"
        os.makedirs(root, exist_ok=True)
        if kv_opts is None:
            kv_opts = self.pki.kv_opts() if self.pki is not None else {}
        h = Host(name, f"10.99.0.2{i}", root, self.ttl, store_url=store_url, kv_opts=kv_opts)
        self.hosts.append(h)
        if start:
            h.start()
        return h

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
        # a host daemon makes its run/netns and run/userns private mount points (cove.kernel.netns
        # keep_private); rmtree leaves a mount point, and the empty dirs outlived the sandbox
        from cove.kernel import syscalls
        from cove.runtime.rootfs import mount_points

        root = os.path.realpath(self.tmp)
        for point in sorted((p for p, _ in mount_points() if p.startswith(root + "/")), key=len, reverse=True):
            try:
                syscalls.umount2(point, syscalls.MNT_DETACH)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_lab(n_hosts: int = 3, ttl: int = 3, tls: bool = False, start: bool = True) -> Lab:
    """The etcd members (ready, over TLS with ``tls``) and ``n_hosts`` plugged hosts, their daemons
    started unless ``start`` is False (a bench that fills etcd first starts them with ``Host.start``)."""
    if os.environ.get("COVE_SANDBOX") != "1":
        raise RuntimeError("the cluster lab runs only inside tests/sandbox.sh")
    if not os.path.exists(ETCD):
        raise RuntimeError("etcd is not installed (scripts/install.sh installs etcd-server)")
    lab = Lab(tempfile.mkdtemp(prefix="cove-lab-"), ttl)
    try:
        if tls:
            lab.pki = make_pki(f"{lab.tmp}/pki", {name: [ip] for name, ip in MEMBERS.items()})
        sh("ip", "link", "add", "ul0", "type", "bridge")
        sh("ip", "link", "set", "ul0", "up")
        sh("ip", "addr", "add", "10.99.0.254/24", "dev", "ul0")
        for name, ip in MEMBERS.items():
            lab.plug(name, ip)
            lab.start_member(name)
        wait_ready(lab.store(), time.monotonic() + 30)
        for i in range(1, n_hosts + 1):
            lab.add_host(i, start=False)
        for h in lab.hosts if start else []:
            h.start()
    except BaseException:
        lab.close()
        raise
    return lab


@contextmanager
def registered_lab(n_hosts: int, ttl: int) -> Iterator[Lab]:
    """:func:`make_lab`, once every host has registered in the cluster store; closed at the end."""
    lab = make_lab(n_hosts, ttl)
    try:
        until(lambda: len(lab.store().list("hosts/")) == n_hosts, 20)
        yield lab
    finally:
        lab.close()
