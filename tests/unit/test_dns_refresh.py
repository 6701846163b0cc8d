"""A container that changes networks gets the resolver's forwarding decision of its new networks at once.

The resolver caches a container's upstreams for ``UPSTREAMS_TTL`` (they may come from parsing
the host's resolv.conf).  A container that has just left its last non-internal network must not
forward a name upstream in that second (Docker's CVE-2024-29018, for a second), and one that has
just joined one must not have names refused.  Seen failing (the upstream got
``leak-after-leave.example``; the name after joining was refused) with ``DnsService.refresh`` a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.dns.records import Records
from cove.dns.server import Resolver, Upstream
from cove.dns.service import DnsService, Listener

from cove.daemon.schema import ipam_configs
from cove.model import EndpointRequest

from .enginefakes import Rig
from .test_dns_budget import LIVE_ANSWER, NET, _ask, _LiveUpstream, _sockets
from .test_engine_rollback import _no_host_probes, container

__all__ = ["_no_host_probes"]      # its autouse fixture keeps the engine test off the machine

Fixture = tuple[DnsService, tuple[str, int], list[Upstream]]

@pytest.fixture
def resolver() -> Iterator[Fixture]:
    records = Records()
    records.set_endpoint(NET, "c1", ["web"], "172.18.0.3")
    live = _LiveUpstream()
    service = DnsService(Resolver(records, timeout=1.0))
    ups: list[Upstream] = [Upstream("127.0.0.1", live.port)]
    u, t = _sockets()
    service.attach(Listener("c1", u, t, networks=lambda: [NET], upstreams=lambda: list(ups)))
    try:
        yield service, u.getsockname(), ups
    finally:
        service.close()
        live.close()


def test_leaving_the_last_open_network_stops_forwarding_at_once(
        resolver: Fixture) -> None:
    service, addr, ups = resolver
    assert _ask(addr, "before.example")[0] == [LIVE_ANSWER]
    ups.clear()                        # the container is now on internal networks only
    service.refresh("c1")
    assert _ask(addr, "leak-after-leave.example", timeout=1.5)[0] == []
    assert _ask(addr, "web")[0] == ["172.18.0.3"]        # its networks' names still answer


def test_joining_an_open_network_forwards_at_once(
        resolver: Fixture) -> None:
    service, addr, ups = resolver
    saved = list(ups)
    ups.clear()
    service.refresh("c1")
    assert _ask(addr, "refused.example", timeout=1.5)[0] == []
    ups.extend(saved)
    service.refresh("c1")
    assert _ask(addr, "after-join.example")[0] == [LIVE_ANSWER]


def test_refresh_of_an_unknown_container_is_harmless(
        resolver: Fixture) -> None:
    service, addr, _ = resolver
    service.refresh("nobody")
    assert _ask(addr, "web")[0] == ["172.18.0.3"]


def test_connect_and_disconnect_refresh_the_containers_resolver(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.create_network("vault", "bridge", ipam_configs([{"Subnet": "10.55.0.0/24"}]), internal=True)
    cid = container(rig, "keeper")
    rig.engine.start_container(cid)
    rig.dns.refreshed.clear()
    rig.engine.connect("vault", cid, EndpointRequest())
    assert rig.dns.refreshed == [cid]
    rig.engine.disconnect("vault", cid)
    assert rig.dns.refreshed == [cid, cid]
