"""Issue 13 (seal), with daemons of their own settings: the host's forwarding and loopback.

- Two LAN namespaces behind the sandbox host, unrelated to cove: once the daemon turns on
  ``ip_forward`` they must still not reach each other (cove's forward drop policy), unless
  the admin opts out with ``--ip-forward-no-drop`` (today's behaviour, shown working).
- ``--firewall-backend none``: a "container" (a namespace on the cove bridge, as root in a
  container with NET_ADMIN could make its own) must not reach the host's 127.0.0.1 services.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Network

import pytest

from ..conftest import passed
from .conftest import Daemon

pytestmark = pytest.mark.integration


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def flush_conntrack() -> None:
    if shutil.which("conntrack"):
        sh("conntrack", "-F", check=False)


def sysctl(key: str, value: str | None = None) -> str:
    path = "/proc/sys/" + key.replace(".", "/")
    if value is not None:
        with open(path, "w") as f:
            f.write(value)
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def daemons(request: pytest.FixtureRequest) -> Iterator[list[Daemon]]:
    """Daemons a test starts (``new(...)``); each stopped, its networks and data removed, at the end
    (its temp dir with the daemon log too, unless the test failed)."""
    made: list[Daemon] = []
    try:
        yield made
    finally:
        for d in made:
            if d.proc is not None and d.proc.poll() is None:
                for name in d.cli("network", "ls", "--format", "{{.Name}}").stdout.split():
                    if name not in ("bridge", "host", "none"):
                        d.cli("network", "rm", name)
            d.stop()
            shutil.rmtree(d.data_root, ignore_errors=True)
            shutil.rmtree(d.exec_root, ignore_errors=True)
            if passed(request):
                shutil.rmtree(os.path.dirname(d.log), ignore_errors=True)


def new(made: list[Daemon], *args: str) -> Daemon:
    tmp = tempfile.mkdtemp(prefix="cove-seal-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/seal-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log", firewall=args[1] if args[:1] == ("--firewall-backend",) else "nftables")
    made.append(d)
    d.start(*args)
    return d


# --- the forward drop policy ---------------------------------------------------------------

@pytest.fixture
def lans() -> Iterator[dict[str, str]]:
    """Two LAN namespaces, 198.51.100.2 and 192.0.2.2, each routed through the sandbox host,
    with the host's ip_forward off as on a fresh machine (restored afterwards)."""
    uid = uuid.uuid4().hex[:5]
    ns = {"a": f"lana-{uid}", "b": f"lanb-{uid}"}
    nets = {"a": "198.51.100", "b": "192.0.2"}
    links: list[str] = []
    forward = sysctl("net.ipv4.ip_forward")
    try:
        for k in ("a", "b"):
            sh("ip", "netns", "add", ns[k])
            host = f"h{k}-{uid}"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns[k])
            links.append(host)
            sh("ip", "addr", "add", f"{nets[k]}.1/24", "dev", host)
            sh("ip", "link", "set", host, "up")
            sh("ip", "-n", ns[k], "addr", "add", f"{nets[k]}.2/24", "dev", "eth0")
            sh("ip", "-n", ns[k], "link", "set", "eth0", "up")
            sh("ip", "-n", ns[k], "route", "add", "default", "via", f"{nets[k]}.1")
        sysctl("net.ipv4.ip_forward", "0")
        yield {**ns, "a_ip": "198.51.100.2", "b_ip": "192.0.2.2", "a_if": f"ha-{uid}", "b_if": f"hb-{uid}"}
    finally:
        for name in ns.values():
            sh("ip", "netns", "del", name, check=False)
        for link in links:
            sh("ip", "link", "del", link, check=False)
        sysctl("net.ipv4.ip_forward", forward)
        flush_conntrack()


def pings(ns: str, addr: str) -> bool:
    flush_conntrack()
    return any(sh("ip", "netns", "exec", ns, "busybox", "ping", "-c1", "-W1", addr, check=False).returncode == 0
               for _ in range(2))


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_lan_to_lan_forwarding_stays_off_when_cove_turns_on_ip_forward(daemons: list[Daemon],
                                                                     lans: dict[str, str], backend: str) -> None:
    """Seen failing (the LANs pinged each other once the daemon ran) with ``forward_policy`` returning
    ``frozenset()``: exactly what the opt-out below shows."""
    assert not pings(lans["a"], lans["b_ip"])                  # the host does not route yet
    d = new(daemons, "--firewall-backend", backend)
    assert sysctl("net.ipv4.ip_forward") == "1"
    assert not pings(lans["a"], lans["b_ip"]) and not pings(lans["b"], lans["a_ip"])
    if backend == "iptables":                                   # the admin's ACCEPT still wins
        rules = [["-i", lans["a_if"], "-o", lans["b_if"]], ["-i", lans["b_if"], "-o", lans["a_if"]]]
        for r in rules:
            sh("iptables-legacy", "-A", "COVE-USER", *r, "-j", "ACCEPT")
        try:
            assert pings(lans["a"], lans["b_ip"])
        finally:
            for r in rules:
                sh("iptables-legacy", "-D", "COVE-USER", *r, "-j", "ACCEPT", check=False)
    d.stop()
    d.start("--firewall-backend", backend, "--ip-forward-no-drop", "true")     # the admin's opt-out
    assert pings(lans["a"], lans["b_ip"])                       # today's behaviour, kept on request
    if backend == "iptables":
        assert "-P FORWARD ACCEPT" in sh("iptables-legacy", "-S", "FORWARD").stdout
    d.stop()
    d.start("--firewall-backend", backend)
    assert not pings(lans["a"], lans["b_ip"])
    d.stop()
    d.start("--firewall-backend", backend, "--ip-forward-no-drop", "true")      # leave the policy as found


# --- route_localnet without a firewall ---------------------------------------------------------

class LoopbackService:
    """A TCP service on the sandbox host's 127.0.0.1 that tells each client a secret."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"host-secret\n")

    def close(self) -> None:
        self.sock.close()


def test_firewall_none_leaves_route_localnet_off(daemons: list[Daemon]) -> None:
    """Seen failing (the namespace on the bridge read ``host-secret`` from 127.0.0.1, and the
    bridge's route_localnet was 1) with ``route_localnet`` writing "1" whatever the backend."""
    d = new(daemons, "--firewall-backend", "none")
    d.ok("network", "create", "--subnet", "10.231.0.0/24", "flat")
    bridge = "br-" + d.ok("network", "inspect", "-f", "{{.Id}}", "flat").strip()[:12]
    assert sysctl(f"net.ipv4.conf.{bridge}.route_localnet") == "0"
    assert sysctl("net.ipv4.conf.cove0.route_localnet") == "0"
    service = LoopbackService()
    uid = uuid.uuid4().hex[:5]
    ns, host = f"rl-{uid}", f"vrl-{uid}"
    net = IPv4Network("10.231.0.0/24")
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", host, "master", bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"{net[250]}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        # what root with NET_ADMIN in a container can do: send 127.0.0.1 out of eth0 to the gateway
        for key in ("net.ipv4.conf.all.route_localnet", "net.ipv4.conf.eth0.route_localnet"):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}=1")
        sh("ip", "-n", ns, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local", check=False)
        sh("ip", "-n", ns, "route", "add", "127.0.0.1/32", "via", str(net[1]), "dev", "eth0")
        code = ("import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3); "
                "print(s.recv(100).decode().strip())")
        r = sh("ip", "netns", "exec", ns, "python3", "-c", code, str(service.port), check=False)
        assert "host-secret" not in r.stdout
    finally:
        service.close()
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", host, check=False)


# --- the CLI's daemon autostart ------------------------------------------------------------------

AUTOSTART = r"""
set -e
for d in /run/cove /run/netns /var/lib/cove /etc/cove /var/log; do mount -t tmpfs seal "$d"; done
ip link set lo up
cd "$PLANTED"
out=$(COVE_HOST=unix:///run/cove/cove.sock "$COVE_CLI" version 2>&1) || true
echo "$out"
pid=$(echo "$out" | sed -n 's/.*(pid \([0-9]*\),.*/\1/p')
if [ -n "$pid" ]; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
fi
"""


def test_autostart_does_not_run_a_cove_package_planted_in_the_current_directory(tmp_path) -> None:
    """A user (or an attacker's checkout) has a ``cove/`` directory where root runs ``cove``: the daemon
    the CLI starts must be cove's own.  Runs in a namespace of its own (the autostarted daemon uses the
    default paths), with ``/var/log`` private.  Seen failing (the marker written) with ``daemon_command``
    back to ``[sys.executable, "-m", "cove", *args]`` *and* ``cwd="/"`` removed from ``spawn_daemon``'s
    Popen (each alone protects; the unit test in tests/unit/test_seal.py checks the command line alone)."""
    import sys
    from pathlib import Path

    planted = tmp_path / "work"
    (planted / "cove").mkdir(parents=True)
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('planted code ran as root')\nraise SystemExit(0)\n"
    (planted / "cove" / "__init__.py").write_text(payload)
    (planted / "cove" / "__main__.py").write_text(payload)
    cli = Path(sys.executable).parent / "cove"
    env = {k: v for k, v in __import__("os").environ.items() if k != "COVE_NO_AUTOSTART"}
    env["COVE_AUTOSTART"] = "1"       # no terminal here: autostart only when asked (tests/unit/test_autostart.py)
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", AUTOSTART],
                       env={**env, "PLANTED": str(planted), "COVE_CLI": str(cli)},
                       capture_output=True, text=True, timeout=120)
    assert not marker.exists(), "the planted cove/ package ran as root"
    assert "started one in the background" in r.stdout, r.stdout + r.stderr
    assert "Server" in r.stdout or "Version" in r.stdout, r.stdout + r.stderr   # the real daemon answered
