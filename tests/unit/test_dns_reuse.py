"""A network connect keeps the container's resolver sockets; a new namespace gets new ones.

``DnsService.serve`` is called at every connect of a running container (the resolver starts on a
first user network).  Opening the two sockets in the container's namespace takes a thread that
enters it, ~12% of a connect (bench/results/2026-12-06-attach.md), so a second ``serve`` for the
same container in the same namespace keeps them and only takes the new callbacks.  The namespace is
told by its identity (device and inode of the bound file), never by its path: a container started
again has a new namespace at the same path, and its old sockets (in the old namespace) are closed.
Seen failing with ``serve`` always closing and reopening (the first test: the sockets changed).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from cove.dns import service as svc
from cove.dns.records import Records
from cove.dns.server import Resolver
from cove.dns.service import DnsService

from .test_dns_budget import NET, _ask, _sockets

OTHER = "o" * 64


class FakeNamespaces:
    """Stands in for the bound namespaces: ``serve`` sees the identity set here for a path, and
    ``_open_in`` hands out loopback sockets (no root, no namespace) and counts the opens."""

    def __init__(self) -> None:
        self.ids: dict[str, tuple[int, int]] = {}
        self.opened: list[tuple[socket.socket, socket.socket]] = []

    def identity(self, path: str) -> tuple[int, int] | None:
        return self.ids.get(path)

    def open_in(self, path: str) -> tuple[socket.socket, socket.socket, tuple[int, int]]:
        u, t = _sockets()
        self.opened.append((u, t))
        return u, t, self.ids[path]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DnsService, FakeNamespaces]]:
    fake = FakeNamespaces()
    monkeypatch.setattr(svc, "netns_identity", fake.identity)
    monkeypatch.setattr(svc, "_open_in", fake.open_in)
    records = Records()
    records.set_endpoint(NET, "c1", ["web"], "172.18.0.3")
    records.set_endpoint(OTHER, "c2", ["db"], "172.19.0.4")
    service = DnsService(Resolver(records, timeout=1.0))
    try:
        yield service, fake
    finally:
        service.close()


def test_serving_the_same_container_in_the_same_namespace_keeps_its_sockets(
        dns: tuple[DnsService, FakeNamespaces]) -> None:
    service, fake = dns
    fake.ids["/run/cove/netns/c1"] = (4, 4026532100)
    service.serve("c1", "/run/cove/netns/c1", networks=lambda: [NET], upstreams=lambda: [])
    u, _ = fake.opened[0]
    addr = u.getsockname()
    assert _ask(addr, "web")[0] == ["172.18.0.3"] and _ask(addr, "db", timeout=1.0)[0] == []
    # a connect to OTHER: serve again, with the container's new networks
    service.serve("c1", "/run/cove/netns/c1", networks=lambda: [NET, OTHER], upstreams=lambda: [])
    assert len(fake.opened) == 1 and u.fileno() != -1, "the sockets were closed and opened again"
    assert _ask(addr, "db")[0] == ["172.19.0.4"]            # the new networks answer on the kept socket


def test_a_new_namespace_at_the_same_path_gets_new_sockets_and_the_old_ones_are_closed(
        dns: tuple[DnsService, FakeNamespaces]) -> None:
    service, fake = dns
    path = "/run/cove/netns/c1"
    fake.ids[path] = (4, 4026532100)
    service.serve("c1", path, networks=lambda: [NET], upstreams=lambda: [])
    fake.ids[path] = (4, 4026532177)                        # the container was started again
    service.serve("c1", path, networks=lambda: [NET], upstreams=lambda: [])
    (old_u, old_t), (new_u, _) = fake.opened
    assert old_u.fileno() == -1 and old_t.fileno() == -1
    assert _ask(new_u.getsockname(), "web")[0] == ["172.18.0.3"]


def test_a_path_with_nothing_bound_is_never_taken_for_the_same_namespace(
        dns: tuple[DnsService, FakeNamespaces], monkeypatch: pytest.MonkeyPatch) -> None:
    service, fake = dns
    path = "/run/cove/netns/c1"
    fake.ids[path] = (4, 4026532100)
    service.serve("c1", path, networks=lambda: [NET], upstreams=lambda: [])
    monkeypatch.setattr(svc, "netns_identity", lambda p: None)
    service.serve("c1", path, networks=lambda: [NET], upstreams=lambda: [])
    assert len(fake.opened) == 2 and fake.opened[0][0].fileno() == -1
