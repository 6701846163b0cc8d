"""More of issue 15's "what must hold" on two cove hosts and a three-member etcd (clusterlab):

- names: one ``--network-alias`` on a container of each host answers with both addresses
  (Docker's round robin), from either host;
- IPAM is global: ``--ip`` is honoured on any host and refused on another while taken,
  ``--ip-range`` bounds the automatic addresses of every host, an ``--aux-address`` is never
  handed out;
- ``--internal``: containers on two hosts reach each other by name but not out of the network
  (the other host's underlay address answers a container of a normal overlay, through the
  local host's NAT, and not one of an internal overlay);
- no CPU spin while etcd is away: a daemon whose cluster store is gone uses a few percent of a
  CPU at most, and registers again when etcd returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from cove.errors import Unavailable

from .clusterlab import Host, Lab, MEMBERS, ok, registered_lab, until

TTL = 10


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with registered_lab(2, TTL) as lab:
        yield lab



def run(h: Host, name: str, net: str, *extra: str) -> None:
    ok(h, "run", "-d", "--name", name, "--network", net, *extra, "host", "sleep", "600")


def ip_of(h: Host, name: str, net: str) -> str:
    return ok(h, "inspect", "-f", f"{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}", name)


def reaches(h: Host, container: str, target: str) -> bool:
    return h.cli("exec", container, "busybox", "ping", "-c1", "-W2", target).returncode == 0


def wait_global(lab: Lab, net: str) -> None:
    for h in lab.hosts:
        until(lambda h=h: net in ok(h, "network", "ls", "--format", "{{.Name}}").split(), 10)


def test_an_alias_on_both_hosts_answers_with_both_addresses(lab: Lab) -> None:
    h1, h2 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.40.0.0/24", "rr")
    wait_global(lab, "rr")
    run(h1, "rr1", "rr", "--network-alias", "svc")
    run(h2, "rr2", "rr", "--network-alias", "svc")
    want = {ip_of(h1, "rr1", "rr"), ip_of(h2, "rr2", "rr")}

    def answers(h: Host, c: str) -> set[str]:
        out = h.cli("exec", c, "busybox", "nslookup", "svc", "127.0.0.11").stdout
        return set(re.findall(r"10\.40\.0\.\d+", out))

    until(lambda: answers(h1, "rr1") == want, 10)
    until(lambda: answers(h2, "rr2") == want, 10)


def test_ip_ip_range_and_aux_addresses_hold_across_hosts(lab: Lab) -> None:
    h1, h2 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.41.0.0/24", "--ip-range", "10.41.0.128/29",
       "--aux-address", "router=10.41.0.130", "ipn")
    wait_global(lab, "ipn")
    run(h2, "fixed", "ipn", "--ip", "10.41.0.7")
    assert ip_of(h2, "fixed", "ipn") == "10.41.0.7"
    r = h1.cli("run", "-d", "--name", "clash", "--network", "ipn", "--ip", "10.41.0.7", "host", "sleep", "600")
    assert r.returncode != 0 and "10.41.0.7" in r.stderr, r.stderr
    got = []
    for i, h in enumerate([h1, h2, h1, h2, h1]):
        run(h, f"auto{i}", "ipn")
        got.append(ip_of(h, f"auto{i}", "ipn"))
    assert len(set(got)) == len(got)
    assert all(128 <= int(a.rsplit(".", 1)[1]) < 136 for a in got), got     # inside --ip-range
    assert "10.41.0.130" not in got                                           # the aux address
    assert reaches(h1, "auto0", "fixed")


def test_an_internal_overlay_reaches_no_further_than_itself(lab: Lab) -> None:
    h1, h2 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.42.0.0/24", "open-ov")
    ok(h1, "network", "create", "-d", "overlay", "--internal", "--subnet", "10.43.0.0/24", "sealed-ov")
    wait_global(lab, "sealed-ov")
    run(h1, "o1", "open-ov")
    run(h1, "s1", "sealed-ov")
    run(h2, "s2", "sealed-ov")
    until(lambda: reaches(h1, "s1", "s2"), 10)                 # inside the network: across hosts
    assert reaches(h1, "o1", h2.ip)                            # a normal overlay: out through h1's NAT
    assert not reaches(h1, "s1", h2.ip)                        # an internal one: no way out


def _cpu_seconds(h: Host) -> float:
    assert h.proc is not None
    with open(f"/proc/{h.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100      # utime + stime, in clock ticks of 1/100 s


def test_no_cpu_spin_while_etcd_is_away(lab: Lab) -> None:
    """Seen failing (the daemon used most of a CPU) with the watchers' reconnect back-off set to 0
    (``Watcher`` in cove.store.etcd)."""
    h1, _ = lab.hosts
    for m in MEMBERS:
        lab.stop_member(m)
    try:
        time.sleep(2)                                          # the first failures are behind us
        before, t0 = _cpu_seconds(h1), time.monotonic()
        time.sleep(5)
        share = (_cpu_seconds(h1) - before) / (time.monotonic() - t0)
        assert share < 0.15, f"the daemon used {share:.0%} of a CPU while etcd was away"
        assert ok(h1, "ps", "-q") is not None                  # and still answers
    finally:
        for m in MEMBERS:
            lab.start_member(m)

    def registered() -> bool:
        try:
            return len(lab.store().list("hosts/")) == 2
        except Unavailable:                                    # the members are still starting
            return False

    until(registered, 30)
