"""Three cove hosts on a three-member etcd cluster (tests/integration/clusterlab.py).

What is observed: each host registers itself in the cluster store with its underlay
address as VTEP; a host whose daemon is killed (no clean-up) disappears from the store
within TTL + 2 s while the others stay; a daemon restarted within the TTL keeps its lease
(the others never see it leave); one etcd member stopped changes nothing.  Overlay networks
on this lab: test_overlay_cluster.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .clusterlab import Lab, make_lab, until

TTL = 3


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = make_lab(3, TTL)
    try:
        yield lab
    finally:
        lab.close()


def hosts_in_store(lab: Lab) -> dict[str, dict[str, object]]:
    """vtep -> host record, as the cluster store has them now."""
    return {str(e.value["vtep"]): e.value for e in lab.store().list("hosts/")}



def test_every_host_registers_with_its_underlay_address(lab: Lab) -> None:
    until(lambda: set(hosts_in_store(lab)) == {"10.99.0.21", "10.99.0.22", "10.99.0.23"}, 10)
    rec = hosts_in_store(lab)["10.99.0.21"]
    assert rec["vxlan_port"] == 4789


def test_a_killed_host_is_forgotten_within_ttl_and_restart_rejoins(lab: Lab) -> None:
    until(lambda: len(hosts_in_store(lab)) == 3, 10)
    h3 = lab.hosts[2]
    h3.kill()
    gone = until(lambda: "10.99.0.23" not in hosts_in_store(lab), TTL + 2)
    assert set(hosts_in_store(lab)) == {"10.99.0.21", "10.99.0.22"}  # the others stay
    assert gone > 0.5  # it went by lease expiry, not at once
    h3.start()
    until(lambda: "10.99.0.23" in hosts_in_store(lab), 10)


def test_a_restart_within_ttl_keeps_the_lease(lab: Lab) -> None:
    until(lambda: len(hosts_in_store(lab)) == 3, 10)
    h2 = lab.hosts[1]
    before = lab.store().get(next(e.key for e in lab.store().list("hosts/") if e.value["vtep"] == "10.99.0.22"))
    assert before is not None
    seen_absent = []
    h2.kill()
    h2.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < TTL + 1:  # past the TTL: it never went away
        if "10.99.0.22" not in hosts_in_store(lab):
            seen_absent.append(time.monotonic() - t0)
        time.sleep(0.1)
    assert not seen_absent


def test_one_etcd_member_stopped_changes_nothing(lab: Lab) -> None:
    until(lambda: len(hosts_in_store(lab)) == 3, 10)
    lab.stop_member("e1")
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < TTL + 2:  # leases keep being renewed through e2/e3
            assert len(hosts_in_store(lab)) == 3
            time.sleep(0.2)
        assert lab.hosts[0].cli("network", "ls").returncode == 0
    finally:
        lab.start_member("e1")

