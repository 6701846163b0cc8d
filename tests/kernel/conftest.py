"""Fixtures for the guest kernels of run.sh.

- ``cove``: a daemon on each firewall backend the guest has (iptables-legacy everywhere;
  nftables too, except under User-Mode Linux, whose kernel has no nftables for ``ip``/``inet``),
  for the tests whose outcome depends on the firewall's rules.
- ``cove_lan``: one daemon on the guest's default backend (nftables, iptables-legacy under UML),
  for the macvlan/ipvlan/OVS tests: those drivers add no firewall rule, so a second pass on the
  other backend would test nothing new and cost minutes of emulated CPU under QEMU/TCG.
- LAN segments with a router namespace: the shared ``lan`` (parent ``lan0``) and ``eth0_lan``
  (parent ``eth0``, the usual name on real hosts)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cove.runtime.busybox import make_busybox_tar
from tests.integration.conftest import Daemon, lan  # noqa: F401 - the shared LAN fixture


def guest_backend() -> str:
    """``uml`` or ``qemu`` from the guest's kernel command line ("" outside a guest)."""
    try:
        with open("/proc/cmdline") as f:
            words = f.read().split()
    except OSError:
        return ""
    return next((w.split("=", 1)[1] for w in words if w.startswith("cove_guest=")), "")


FIREWALLS = ["iptables"] if guest_backend() == "uml" else ["iptables", "nftables"]


@contextmanager
def daemon(firewall: str) -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-guest-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/u-{uuid.uuid4().hex[:6]}",
               log=f"{tmp}/daemon.log", firewall=firewall)
    d.start("--firewall-backend", firewall)
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/bb.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module", params=FIREWALLS)
def cove(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    with daemon(request.param) as d:
        yield d


@pytest.fixture(scope="module")
def cove_lan() -> Iterator[Daemon]:
    with daemon(FIREWALLS[-1]) as d:
        yield d


def firewall_rules(cove: Daemon) -> str:
    """The guest's rules of the daemon's backend, as text."""
    cmd = ["iptables-legacy-save"] if cove.firewall == "iptables" else ["nft", "list", "ruleset"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def eth0_lan() -> Iterator[str]:
    """``eth0`` (the parent NIC, with the host's 192.168.241.1/24) wired to a ``router``
    namespace at 192.168.241.2/24 (its end is ``wire``). The guest has no eth0 of its own
    (run.sh gives it no network device), so the name is free for this one."""
    router = f"router-{uuid.uuid4().hex[:6]}"
    sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", router)
    try:
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "wire", "netns", router)
        sh("ip", "addr", "add", "192.168.241.1/24", "dev", "eth0")
        sh("ip", "link", "set", "eth0", "up")
        sh("ip", "-n", router, "addr", "add", "192.168.241.2/24", "dev", "wire")
        sh("ip", "-n", router, "link", "set", "wire", "up")
        sh("ip", "-n", router, "link", "set", "lo", "up")
        yield router
    finally:
        subprocess.run(["ip", "link", "del", "eth0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", router], capture_output=True)
