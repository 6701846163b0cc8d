"""Cove's bridge isolation on each firewall backend the guest has: iptables-legacy everywhere,
nftables too except under User-Mode Linux (the ``cove`` fixture is parametrized)."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Daemon
from tests.kernel.conftest import firewall_rules

pytestmark = pytest.mark.kernel


def ip_in(cove: Daemon, name: str, net: str) -> str:
    return json.loads(cove.ok("inspect", name))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def ping(cove: Daemon, src: str, dst: str) -> bool:
    return cove.cli("exec", src, "ping", "-c1", "-W1", dst).returncode == 0


def test_the_bridge_basics_hold_on_each_firewall_backend(cove: Daemon) -> None:
    cove.ok("network", "create", "greatwall")
    cove.ok("run", "-d", "--name", "milk", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "bread", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "beijing", "--network", "greatwall", "bb", "sleep", "3600")
    assert ping(cove, "milk", ip_in(cove, "bread", "bridge"))
    assert not ping(cove, "milk", ip_in(cove, "beijing", "greatwall"))
    assert ("COVE-FORWARD" if cove.firewall == "iptables" else "table ip cove") in firewall_rules(cove)
    cove.ok("rm", "-f", "milk", "bread", "beijing")
    cove.ok("network", "rm", "greatwall")
