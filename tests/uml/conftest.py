"""Fixtures for the UML guest: a daemon on the iptables-legacy backend (the UML kernel has no
nftables for ``ip``), and a LAN segment with a router namespace."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from cove.runtime.busybox import make_busybox_tar
from tests.integration.conftest import Daemon


@pytest.fixture(scope="module")
def cove() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-uml-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/u-{uuid.uuid4().hex[:6]}",
               log=f"{tmp}/daemon.log", firewall="iptables")
    d.start("--firewall-backend", "iptables")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/bb.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def lan() -> Iterator[str]:
    """``lan0`` (the parent NIC) wired to a ``router`` namespace at 192.168.241.2/24."""
    router = f"router-{uuid.uuid4().hex[:6]}"
    sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", router)
    try:
        sh("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "wire", "netns", router)
        sh("ip", "link", "set", "lan0", "up")
        sh("ip", "-n", router, "link", "set", "wire", "up")
        sh("ip", "-n", router, "link", "set", "lo", "up")
        yield router
    finally:
        subprocess.run(["ip", "link", "del", "lan0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", router], capture_output=True)
