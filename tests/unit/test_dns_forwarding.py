"""Forwarded names through the resolver's socket loop (no thread per query), as a client sees them.

A :class:`DnsService` serves one "container" on loopback sockets; its upstreams are throwaway
servers on 127.0.0.1 (``LoopbackUpstream`` of test_dns.py).  Each test asks over UDP (and TCP)
like a container's resolver library would, and checks the answer it gets.

``test_a_burst_to_a_slow_upstream_is_answered_in_parallel`` was seen failing with the service of
before (a worker thread per forwarded query, at most 2 of one container at once: 60 queries at
0.4 s each took 12 s, far past the clients' wait).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from .dnsclient import ask_over_tcp

from cove.dns import forwarding
from cove.dns.records import Records
from cove.dns.server import Resolver, Upstream
from cove.dns.service import DnsService, Listener

from .test_dns import LoopbackUpstream, loopback
from .test_dns_budget import NET, _sockets

__all__ = ["loopback"]

Serve = Callable[..., tuple[tuple[str, int], tuple[str, int]]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(upstreams, timeout=1.5)``: the UDP and TCP addresses of a fresh resolver."""
    made: list[DnsService] = []

    def start(upstreams: list[Upstream], timeout: float = 1.5) -> tuple[tuple[str, int], tuple[str, int]]:
        records = Records()
        records.set_endpoint(NET, "c1", ["web"], "172.18.0.3")
        service = DnsService(Resolver(records, timeout=timeout))
        made.append(service)
        u, t = _sockets()
        service.attach(Listener("c1", u, t, networks=lambda: [NET], upstreams=lambda: list(upstreams)))
        return u.getsockname(), t.getsockname()

    try:
        yield start
    finally:
        for service in made:
            service.close()


def ask(addr: tuple[str, int], name: str = "example.com", qid: int = 4321, wait: float = 5.0) -> DNSRecord | None:
    query = DNSRecord.question(name)
    query.header.id = qid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(wait)
        c.sendto(query.pack(), addr)
        try:
            return DNSRecord.parse(c.recv(65535))
        except TimeoutError:
            return None


def ask_tcp(addr: tuple[str, int], name: str = "example.com") -> DNSRecord:
    return ask_over_tcp(addr, name, 5)


def addresses(reply: DNSRecord | None) -> list[str]:
    assert reply is not None, "no answer"
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def test_a_forwarded_answer_comes_back_with_the_clients_id(loopback: Callable[..., LoopbackUpstream],
                                                           serve: Serve) -> None:
    server = loopback()
    udp, _ = serve([server.upstream])
    reply = ask(udp, qid=4321)
    assert reply is not None and reply.header.id == 4321 and addresses(reply) == ["198.51.100.7"]
    assert reply.q.qname == "example.com."
    assert ask(udp, "web") is not None and addresses(ask(udp, "web")) == ["172.18.0.3"]


def test_the_same_query_twice_goes_upstream_twice(loopback: Callable[..., LoopbackUpstream], serve: Serve) -> None:
    # the resolver remembers that a query is forwarded, never the upstream's answer
    server = loopback()
    udp, _ = serve([server.upstream])
    assert addresses(ask(udp, qid=1)) == ["198.51.100.7"]
    assert addresses(ask(udp, qid=1)) == ["198.51.100.7"]
    assert server.udp_queries == 2


def test_the_upstream_sees_random_ids_and_changing_source_ports(serve: Serve) -> None:
    seen: list[tuple[int, int]] = []                       # (id, source port) of every query
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    up.settimeout(0.1)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                data, peer = up.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            q = DNSRecord.parse(data)
            seen.append((q.header.id, peer[1]))
            r = q.reply()
            r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("198.51.100.7"), ttl=60))
            up.sendto(r.pack(), peer)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        udp, _ = serve([Upstream("127.0.0.1", up.getsockname()[1])])
        total = 3 * forwarding.SOCKET_QUERIES
        for i in range(total):
            assert addresses(ask(udp, f"n{i}.example.com", qid=7)) == ["198.51.100.7"]
    finally:
        stop.set()
        th.join()
        up.close()
    ids = {i for i, _ in seen}
    ports = {p for _, p in seen}
    assert len(seen) == total
    assert len(ids) > total * 3 // 4, "the upstream saw the client's id, or few ids"   # random 16 bits: ~all differ
    assert len(ports) >= 3, "every query went out from the same source port"


def test_silent_and_failing_upstreams_are_passed_over(loopback: Callable[..., LoopbackUpstream],
                                                      serve: Serve) -> None:
    silent, failing = loopback("silent"), loopback("servfail")
    good = loopback("answer", "198.51.100.9")
    udp, _ = serve([silent.upstream, failing.upstream, good.upstream])
    assert addresses(ask(udp)) == ["198.51.100.9"]
    assert (silent.udp_queries, failing.udp_queries, good.udp_queries) == (1, 1, 1)
    udp, _ = serve([failing.upstream])                      # only SERVFAIL to offer: passed on
    reply = ask(udp)
    assert reply is not None and reply.header.rcode == RCODE.SERVFAIL


def test_a_refusing_upstream_is_passed_over_and_none_answering_is_servfail(
        loopback: Callable[..., LoopbackUpstream], serve: Serve) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    refused = Upstream("127.0.0.1", closed.getsockname()[1])
    closed.close()                                          # nothing listens there now
    good = loopback()
    udp, _ = serve([refused, good.upstream])
    for i in range(5):
        assert addresses(ask(udp, f"r{i}.example.com")) == ["198.51.100.7"]
    udp, _ = serve([Upstream("not-an-address"), loopback("silent").upstream], timeout=0.5)
    reply = ask(udp)
    assert reply is not None and reply.header.rcode == RCODE.SERVFAIL and reply.header.id == 4321


def test_spoofed_answers_with_a_wrong_id_or_question_are_ignored(loopback: Callable[..., LoopbackUpstream],
                                                                 serve: Serve) -> None:
    udp, _ = serve([loopback("spoof").upstream])
    reply = ask(udp, qid=0)
    assert reply is not None and addresses(reply) == ["198.51.100.7"] and reply.q.qname == "example.com."


def test_an_answer_from_another_address_is_ignored(serve: Serve) -> None:
    # A matching answer (right id, right question) sent from another port than the upstream's
    # arrives first; the client must get the upstream's own answer.
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    up.settimeout(3)
    evil = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    evil.bind(("127.0.0.1", 0))

    def run() -> None:
        try:
            data, peer = up.recvfrom(4096)
        except OSError:
            return
        q = DNSRecord.parse(data)
        for sock, ip in ((evil, "203.0.113.66"), (up, "198.51.100.7")):
            r = q.reply()
            r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(ip), ttl=60))
            sock.sendto(r.pack(), peer)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        udp, _ = serve([Upstream("127.0.0.1", up.getsockname()[1])])
        assert addresses(ask(udp)) == ["198.51.100.7"]
    finally:
        th.join()
        up.close()
        evil.close()


def test_a_truncated_answer_is_fetched_again_over_tcp(loopback: Callable[..., LoopbackUpstream],
                                                      serve: Serve) -> None:
    server = loopback("truncate")
    udp, tcp = serve([server.upstream])
    reply = ask(udp)                                        # fits the client's 512 bytes once whole
    assert reply is not None and reply.header.tc == 0 and addresses(reply) == ["198.51.100.7"]
    assert (server.udp_queries, server.tcp_queries) == (1, 1)
    reply = ask_tcp(tcp)                                    # and a client asking over TCP gets it too
    assert reply.header.tc == 0 and addresses(reply) == ["198.51.100.7"]


def test_a_burst_to_a_slow_upstream_is_answered_in_parallel(serve: Serve) -> None:
    # 60 lookups at once (a program starting), an upstream that takes 0.4 s for each: every
    # client gets its answer within its usual wait (glibc: 5 s).
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    up.settimeout(0.1)
    stop = threading.Event()
    timers: list[threading.Timer] = []

    def answer(data: bytes, peer: tuple[str, int]) -> None:
        q = DNSRecord.parse(data)
        r = q.reply()
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("198.51.100.7"), ttl=60))
        try:
            up.sendto(r.pack(), peer)
        except OSError:
            pass

    def run() -> None:
        while not stop.is_set():
            try:
                data, peer = up.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            t = threading.Timer(0.4, answer, (data, peer))
            timers.append(t)
            t.start()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(60)]
    try:
        udp, _ = serve([Upstream("127.0.0.1", up.getsockname()[1])], timeout=3.0)
        for i, c in enumerate(clients):
            c.sendto(DNSRecord.question(f"b{i}.example.com").pack(), udp)
        given_up = time.monotonic() + 5.0                   # every client waits 5 s from its query
        answered = 0
        for i, c in enumerate(clients):
            c.settimeout(max(0.01, given_up - time.monotonic()))
            try:
                reply = DNSRecord.parse(c.recv(4096))
            except TimeoutError:
                continue
            answered += addresses(reply) == ["198.51.100.7"] and reply.q.qname == f"b{i}.example.com."
        assert answered == len(clients)
    finally:
        stop.set()
        th.join()
        for t in timers:
            t.cancel()
        for c in clients:
            c.close()
        up.close()
