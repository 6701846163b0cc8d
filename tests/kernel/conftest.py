"""Fixtures for the UML guest: a daemon on the iptables-legacy backend (the UML kernel has no
nftables for ``ip``), and a LAN segment with a router namespace."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from cove.runtime.busybox import make_busybox_tar
from tests.integration.conftest import Daemon, lan  # noqa: F401 - the shared LAN fixture


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
