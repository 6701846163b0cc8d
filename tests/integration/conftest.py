"""Fixtures that run the real daemon and the real CLI inside the sandbox namespace.

``daemon`` (one per test module) starts ``cove daemon`` on a socket in a temp
dir, with its own data and exec roots, and imports a busybox image as ``bb``.
``cove(...)`` runs the CLI as a user would and returns the completed process.
After every test, ``clean`` removes the containers and networks the test made;
when the module ends, the daemon stops and the fixture checks that nothing cove
made is left in the sandbox: no veth, no container namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cove.runtime.busybox import make_busybox_tar

ROOT = Path(__file__).resolve().parents[2]
COVE = [sys.executable, "-m", "cove"]


@dataclass
class Daemon:
    sock: str
    data_root: str
    exec_root: str
    log: str
    firewall: str = "nftables"
    proc: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "COVE_HOST": f"unix://{self.sock}", "COVE_NO_AUTOSTART": "1",
                "PYTHONPATH": str(ROOT / "src")}

    def start(self, *extra: str) -> None:
        self.args = extra or self.args
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*COVE, "daemon", "--host", f"unix://{self.sock}", "--data-root", self.data_root,
             "--exec-root", self.exec_root, *self.args],
            stdout=logf, stderr=logf, env=self.env)
        deadline = time.monotonic() + 90          # generous: a User-Mode Linux guest is slow to start one
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited early:\n{Path(self.log).read_text()}")
            if os.path.exists(self.sock) and self.cli("version").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer:\n{Path(self.log).read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*COVE, *args], capture_output=True, text=True, env=self.env,
                              input=input.decode() if input else None, timeout=timeout)

    def ok(self, *args: str, timeout: float = 60) -> str:
        """Run a CLI command that must succeed; return its stdout."""
        r = self.cli(*args, timeout=timeout)
        assert r.returncode == 0, f"cove {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}\n{r.stdout}"
        return r.stdout


def docker_cli() -> str | None:
    """The docker client the compatibility tests drive: ``$COVE_DOCKER_CLI`` if set, else the one
    ``scripts/install.sh`` links into the venv (Debian's docker.io client, 20.10, API 1.41).
    Never whatever ``docker`` happens to be on PATH (a developer's newer /usr/local/bin/docker)."""
    path = os.environ.get("COVE_DOCKER_CLI") or str(Path(sys.executable).parent / "docker")
    return path if os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def docker_bin() -> str:
    """The docker CLI's path; skips (so fails in strict mode) when it is not installed."""
    path = docker_cli()
    if path is None:
        pytest.skip("the docker CLI is not installed (scripts/install.sh links it as .venv/bin/docker; "
                    "or set COVE_DOCKER_CLI)")
    return path


def sandbox_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def daemon(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-it-")
    exec_root = f"/run/cove/it-{uuid.uuid4().hex[:8]}"
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=exec_root, log=f"{tmp}/daemon.log",
               firewall=request.param)
    links_before = sandbox_links()
    d.start("--firewall-backend", request.param)
    try:
        tar = make_busybox_tar(f"{tmp}/busybox.tar")
        d.ok("import", "-c", 'CMD ["sh"]', tar, "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        leftover = {n for n in sandbox_links() - links_before if n.startswith(("veth", "br-"))}
        netns_dir = Path(exec_root) / "netns"
        left_ns = list(netns_dir.iterdir()) if netns_dir.exists() else []
        log_text = Path(d.log).read_text() if os.path.exists(d.log) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        assert not leftover, f"veths left behind: {leftover}\n{log_text[-3000:]}"
        assert not left_ns, f"namespaces left behind: {left_ns}"


@pytest.fixture
def cove(daemon: Daemon) -> Iterator[Daemon]:
    """The module's daemon; containers and networks a test creates are removed after it."""
    nets_before = set(daemon.ok("network", "ls", "-q").split())
    yield daemon
    for cid in daemon.cli("ps", "-aq").stdout.split():
        daemon.cli("rm", "-f", cid)
    for nid in set(daemon.ok("network", "ls", "-q").split()) - nets_before:
        daemon.cli("network", "rm", nid)


@pytest.fixture
def outside() -> Iterator[str]:
    """A namespace that plays the internet: 203.0.113.2, linked to the sandbox host's 203.0.113.1.

    It has no route to any container subnet, so a container reaches it only
    through masquerade, as a real upstream would.
    """
    name = f"out-{uuid.uuid4().hex[:6]}"
    hv, ov = f"h{name}"[:15], f"o{name}"[:15]
    sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", hv, "type", "veth", "peer", "name", ov, "netns", name)
        sh("ip", "addr", "add", "203.0.113.1/24", "dev", hv)
        sh("ip", "link", "set", hv, "up")
        sh("ip", "-n", name, "addr", "add", "203.0.113.2/24", "dev", ov)
        sh("ip", "-n", name, "link", "set", ov, "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", hv], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def firewall_text() -> str:
    """Every rule in the sandbox, nftables and iptables-legacy alike."""
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    ipt = "".join(subprocess.run(["iptables-legacy-save", "-t", t], capture_output=True, text=True).stdout
                  for t in ("filter", "nat"))
    return nft + ipt


@pytest.fixture
def lan() -> Iterator[str]:
    """``lan0`` (the parent NIC, the seed's ens33) wired to a ``router`` namespace at 192.168.241.2/24."""
    router = f"router-{uuid.uuid4().hex[:6]}"
    sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", router)
    try:
        sh("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "wire", "netns", router)
        sh("ip", "link", "set", "lan0", "up")
        sh("ip", "-n", router, "addr", "add", "192.168.241.2/24", "dev", "wire")
        sh("ip", "-n", router, "link", "set", "wire", "up")
        yield router
    finally:
        subprocess.run(["ip", "link", "del", "lan0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", router], capture_output=True)
