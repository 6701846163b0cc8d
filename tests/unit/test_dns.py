"""The embedded DNS resolver, seen from a container: queries in, replies out.

Queries and replies are built and read with dnslib, as a client would.  The
forwarder tests at the end talk to throwaway servers on 127.0.0.1.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from dnslib import CLASS, QTYPE, RCODE, RR, A, DNSRecord, EDNS0, TXT

from cove.dns import Records, Resolver, Upstream, forward_udp_tcp, valid_name
from cove.errors import InvalidArgument

NET_A, NET_B = "net-a", "net-b"
UP = [Upstream("192.0.2.1"), Upstream("192.0.2.2"), Upstream("192.0.2.3"), Upstream("192.0.2.4")]


class FakeForwarder:
    """Records every call; answers with ``reply(query)`` (None: upstream failed)."""

    def __init__(self, reply: Callable[[DNSRecord], bytes | None] | None = None) -> None:
        self.calls: list[tuple[bytes, list[Upstream], str]] = []
        self.reply = reply

    def __call__(self, packet: bytes, upstreams: list[Upstream], transport: str) -> bytes | None:
        self.calls.append((packet, list(upstreams), transport))
        return self.reply(DNSRecord.parse(packet)) if self.reply else None


def upstream_answer(ip: str = "93.184.216.34") -> Callable[[DNSRecord], bytes]:
    def reply(query: DNSRecord) -> bytes:
        out = query.reply()
        out.add_answer(RR(query.q.qname, QTYPE.A, CLASS.IN, 300, A(ip)))
        return bytes(out.pack())
    return reply


@pytest.fixture
def records() -> Records:
    r = Records()
    r.set_endpoint(NET_A, "c1" * 32, ["web", "frontend", "c1c1c1c1c1c1"], "172.18.0.2")
    r.set_endpoint(NET_A, "c2" * 32, ["db", "store"], "172.18.0.3")
    r.set_endpoint(NET_B, "c3" * 32, ["secret", "store"], "172.19.0.5")
    return r


@pytest.fixture
def forwarder() -> FakeForwarder:
    return FakeForwarder()


@pytest.fixture
def resolver(records: Records, forwarder: FakeForwarder) -> Resolver:
    return Resolver(records, forwarder=forwarder)


def ask(resolver: Resolver, name: str, qtype: str = "A", networks: Sequence[str] = (NET_A,),
        upstreams: Sequence[Upstream] = UP, transport: str = "udp", edns: int | None = None,
        qid: int | None = None) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    if qid is not None:
        query.header.id = qid
    if edns is not None:
        query.add_ar(EDNS0(udp_len=edns))
    packet = bytes(query.pack())
    raw = resolver.answer(packet, networks, upstreams, transport)
    assert raw is not None
    reply = DNSRecord.parse(raw)
    assert reply.header.id == query.header.id
    assert reply.header.qr == 1
    return reply


def addresses(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


# -- local answers -----------------------------------------------------------------------

def test_a_for_container_name_alias_and_short_id(resolver: Resolver) -> None:
    for name in ("web", "frontend", "c1c1c1c1c1c1"):
        reply = ask(resolver, name)
        assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 0   # as Docker's: not authoritative
        assert addresses(reply) == ["172.18.0.2"]
        assert all(rr.ttl == 600 for rr in reply.rr)
        assert str(reply.rr[0].rname) == f"{name}."


def test_shared_alias_answers_every_address_in_varying_order(records: Records, resolver: Resolver) -> None:
    records.set_endpoint(NET_A, "c4" * 32, ["web-2", "frontend"], "172.18.0.4")
    records.set_endpoint(NET_A, "c5" * 32, ["web-3", "frontend"], "172.18.0.5")
    seen = set()
    for _ in range(200):
        got = addresses(ask(resolver, "frontend"))
        assert sorted(got) == ["172.18.0.2", "172.18.0.4", "172.18.0.5"]
        seen.add(tuple(got))
    assert len(seen) > 1, "the order never changed"


def test_shuffling_also_covers_large_answer_sets(records: Records, resolver: Resolver) -> None:
    ips = [f"172.18.1.{i}" for i in range(1, 9)]
    for i, ip in enumerate(ips):
        records.set_endpoint(NET_A, f"x{i}", [f"x{i}", "many"], ip)
    orders = {tuple(addresses(ask(resolver, "many"))) for _ in range(50)}
    assert all(sorted(order) == sorted(ips) for order in orders)
    assert len(orders) > 1


def test_names_are_case_insensitive_and_the_question_is_echoed_as_asked(resolver: Resolver) -> None:
    ask(resolver, "web")  # warm the cache with the lower-case spelling
    for name in ("WEB", "wEb", "Web."):
        reply = ask(resolver, name)
        assert addresses(reply) == ["172.18.0.2"]
        assert reply.q.qname.label == (name.rstrip(".").encode(),)  # 0x20 case kept


def test_trailing_dot_and_case_in_the_table(records: Records) -> None:
    assert records.lookup([NET_A], "WEB.") == ["172.18.0.2"]
    assert records.lookup([NET_A], "web") == ["172.18.0.2"]
    records.set_endpoint(NET_A, "c9", ["Dotted.Name."], "172.18.0.9")
    assert records.lookup([NET_A], "dotted.name") == ["172.18.0.9"]
    assert records.reverse([NET_A], "172.18.0.9") == "Dotted.Name"


def test_dotted_container_name_is_answered_locally(records: Records, resolver: Resolver,
                                                   forwarder: FakeForwarder) -> None:
    records.set_endpoint(NET_A, "c9", ["api.internal"], "172.18.0.9")
    assert addresses(ask(resolver, "API.internal")) == ["172.18.0.9"]
    assert forwarder.calls == []


def test_ptr_for_container_address(resolver: Resolver) -> None:
    reply = ask(resolver, "3.0.18.172.in-addr.arpa", "PTR")
    assert reply.header.rcode == RCODE.NOERROR
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [(QTYPE.PTR, "db.")]


def test_ptr_outside_the_askers_networks_is_forwarded(resolver: Resolver, forwarder: FakeForwarder) -> None:
    reply = ask(resolver, "5.0.19.172.in-addr.arpa", "PTR")
    assert reply.header.rcode == RCODE.SERVFAIL and len(forwarder.calls) == 1


def test_aaaa_and_other_types_for_a_known_name_are_nodata(resolver: Resolver, forwarder: FakeForwarder) -> None:
    for qtype in ("AAAA", "MX", "TXT"):
        reply = ask(resolver, "web", qtype)
        assert reply.header.rcode == RCODE.NOERROR
        assert reply.rr == []
    assert forwarder.calls == []


def test_aaaa_answers_the_ipv6_address_on_an_ipv6_network(records: Records, resolver: Resolver) -> None:
    records.set_endpoint(NET_A, "c6" * 32, ["six", "dual"], "172.18.0.6", "fd00:30::6")
    reply = ask(resolver, "six", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 0
    assert [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.AAAA] == ["fd00:30::6"]
    assert addresses(ask(resolver, "six")) == ["172.18.0.6"]                   # A is unchanged
    assert sorted(str(rr.rdata) for rr in ask(resolver, "dual", "ANY").rr) == ["172.18.0.6", "fd00:30::6"]
    assert ask(resolver, "six", "AAAA", networks=(NET_B,)).rr == []            # not on the asker's networks
    records.set_endpoint(NET_A, "c6" * 32, ["six"], "172.18.0.6")              # its IPv6 address is gone
    assert ask(resolver, "six", "AAAA").rr == []
    records.remove_endpoint(NET_A, "c6" * 32)
    assert records.lookup([NET_A], "six", v6=True) == []


def test_any_returns_the_ipv4_addresses(resolver: Resolver) -> None:
    assert addresses(ask(resolver, "db", "ANY")) == ["172.18.0.3"]


def test_container_on_another_network_is_invisible_and_forwarded(resolver: Resolver,
                                                                 forwarder: FakeForwarder) -> None:
    # "secret" lives on net B only: an asker on net A must not learn about it
    reply = ask(resolver, "secret", networks=[NET_A])
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.rr == []
    assert addresses(ask(resolver, "secret", networks=[NET_B])) == ["172.19.0.5"]
    # a shared alias only shows the addresses on the asker's networks
    assert addresses(ask(resolver, "store", networks=[NET_A])) == ["172.18.0.3"]
    assert sorted(addresses(ask(resolver, "store", networks=[NET_A, NET_B]))) == ["172.18.0.3", "172.19.0.5"]
    # a dotted name that exists elsewhere goes upstream like any unknown name
    resolver.records.set_endpoint(NET_B, "c8", ["hidden.svc"], "172.19.0.8")
    ask(resolver, "hidden.svc", networks=[NET_A])
    assert len(forwarder.calls) == 1


def test_container_on_two_networks(records: Records, resolver: Resolver) -> None:
    records.set_endpoint(NET_B, "c1" * 32, ["web"], "172.19.0.2")
    assert sorted(addresses(ask(resolver, "web", networks=[NET_A, NET_B]))) == ["172.18.0.2", "172.19.0.2"]
    assert addresses(ask(resolver, "web", networks=[NET_B])) == ["172.19.0.2"]


# -- unknown names -----------------------------------------------------------------------

def test_single_label_unknown_name_is_nxdomain_without_forwarding(resolver: Resolver,
                                                                  forwarder: FakeForwarder) -> None:
    for qtype in ("A", "AAAA", "MX"):
        reply = ask(resolver, "nosuchhost", qtype)
        assert reply.header.rcode == RCODE.NXDOMAIN and reply.rr == []
    assert forwarder.calls == []
    assert resolver.stats.nxdomain == 3


def test_dotted_unknown_name_is_forwarded_to_at_most_three_upstreams(records: Records) -> None:
    forwarder = FakeForwarder(upstream_answer())
    resolver = Resolver(records, forwarder=forwarder)
    reply = ask(resolver, "example.com", qid=4242)
    assert addresses(reply) == ["93.184.216.34"] and reply.header.id == 4242
    (packet, upstreams, transport), = forwarder.calls
    assert DNSRecord.parse(packet).q.qname == "example.com." and transport == "udp"
    assert upstreams == UP[:3]
    ask(resolver, "example.com", transport="tcp")
    assert forwarder.calls[1][2] == "tcp"
    assert resolver.stats.forwarded == 2


def test_forwarding_failure_is_servfail_no_larger_than_the_question(resolver: Resolver,
                                                                    forwarder: FakeForwarder) -> None:
    query = DNSRecord.question("a-rather-long-name.example.org")
    packet = bytes(query.pack())
    raw = resolver.answer(packet, [NET_A], UP)
    assert raw is not None and len(raw) <= len(packet)
    reply = DNSRecord.parse(raw)
    assert reply.header.rcode == RCODE.SERVFAIL and reply.header.id == query.header.id
    assert len(forwarder.calls) == 1


def test_no_upstreams_is_servfail_without_calling_the_forwarder(resolver: Resolver,
                                                                forwarder: FakeForwarder) -> None:
    assert ask(resolver, "example.com", upstreams=[]).header.rcode == RCODE.SERVFAIL
    assert forwarder.calls == []


@pytest.mark.parametrize("bad", ["short", "wrong-id", "not-a-response", "other-question"])
def test_a_reply_that_does_not_answer_the_query_is_servfail(records: Records, bad: str) -> None:
    def reply(query: DNSRecord) -> bytes:
        good = bytes(upstream_answer()(query))
        if bad == "short":
            return good[:7]
        if bad == "wrong-id":
            return struct.pack("!H", (query.header.id + 1) % 65536) + good[2:]
        if bad == "not-a-response":
            return bytes(query.pack())
        other = DNSRecord.question("evil.example.net")
        other.header.id = query.header.id
        return bytes(upstream_answer()(other))

    resolver = Resolver(records, forwarder=FakeForwarder(reply))
    assert ask(resolver, "example.com").header.rcode == RCODE.SERVFAIL


def test_forwarder_exception_is_servfail(records: Records) -> None:
    def boom(packet: bytes, upstreams: list[Upstream], transport: str) -> bytes | None:
        raise RuntimeError("boom")

    assert ask(Resolver(records, forwarder=boom), "example.com").header.rcode == RCODE.SERVFAIL


# -- protocol edges ----------------------------------------------------------------------

def test_reply_id_equals_query_id_everywhere(resolver: Resolver) -> None:
    for qid, name in [(0, "web"), (65535, "nosuchhost"), (1234, "example.com"), (7, "WEB")]:
        assert ask(resolver, name, qid=qid).header.id == qid


def test_query_with_rd_clear_gets_rd_clear(resolver: Resolver) -> None:
    query = DNSRecord.question("web")
    query.header.rd = 0
    reply = DNSRecord.parse(resolver.answer(bytes(query.pack()), [NET_A], UP) or b"")
    assert reply.header.rd == 0 and reply.header.ra == 1


def big_alias(records: Records, count: int = 40) -> None:
    for i in range(count):
        records.set_endpoint(NET_A, f"big{i}", [f"big{i}", "crowd"], f"172.18.2.{i + 1}")


def test_udp_answer_over_512_bytes_is_truncated_and_tcp_gets_it_all(records: Records, resolver: Resolver) -> None:
    big_alias(records)
    udp = ask(resolver, "crowd")
    assert udp.header.tc == 1 and udp.rr == [] and udp.q.qname == "crowd."
    tcp = ask(resolver, "crowd", transport="tcp")
    assert tcp.header.tc == 0 and len(tcp.rr) == 40
    edns = ask(resolver, "crowd", edns=4096)
    assert edns.header.tc == 0 and len(edns.rr) == 40
    assert any(rr.rtype == QTYPE.OPT for rr in edns.ar)
    small_edns = ask(resolver, "crowd", edns=600)  # 40 records take 12+10+640+11 bytes
    assert small_edns.header.tc == 1 and small_edns.rr == []


def test_edns_below_512_still_gets_512(records: Records, resolver: Resolver) -> None:
    big_alias(records, 25)  # 12 + 10 + 25*16 + 11 = 433 bytes
    assert len(ask(resolver, "crowd", edns=100).rr) == 25


def test_large_forwarded_reply_is_truncated_for_udp(records: Records) -> None:
    def reply(query: DNSRecord) -> bytes:
        out = query.reply()
        for i in range(10):
            out.add_answer(RR(query.q.qname, QTYPE.TXT, CLASS.IN, 60, TXT("x" * 100)))
        return bytes(out.pack())

    resolver = Resolver(records, forwarder=FakeForwarder(reply))
    query = DNSRecord.question("big.example.com", "TXT")
    packet = bytes(query.pack())
    raw = resolver.answer(packet, [NET_A], UP)
    assert raw is not None and len(raw) == len(packet)
    truncated = DNSRecord.parse(raw)
    assert truncated.header.tc == 1 and truncated.rr == [] and truncated.header.id == query.header.id
    full = DNSRecord.parse(resolver.answer(packet, [NET_A], UP, "tcp") or b"")
    assert full.header.tc == 0 and len(full.rr) == 10


def test_other_opcodes_get_notimp(resolver: Resolver) -> None:
    for opcode in (1, 2, 4, 5, 15):
        query = DNSRecord.question("web")
        query.header.opcode = opcode
        raw = resolver.answer(bytes(query.pack()), [NET_A], UP)
        assert raw is not None
        reply = DNSRecord.parse(raw)
        assert reply.header.rcode == RCODE.NOTIMP and reply.header.opcode == opcode
        assert reply.header.id == query.header.id and reply.rr == []


def test_responses_are_dropped(resolver: Resolver, forwarder: FakeForwarder) -> None:
    query = DNSRecord.question("web")
    query.header.qr = 1
    assert resolver.answer(bytes(query.pack()), [NET_A], UP) is None
    response = query.reply()
    assert resolver.answer(bytes(response.pack()), [NET_A], UP) is None
    assert resolver.stats.dropped == 2 and forwarder.calls == []


def test_malformed_input_is_dropped_or_formerr(resolver: Resolver) -> None:
    assert resolver.answer(b"", [NET_A], UP) is None
    assert resolver.answer(b"\x12\x34\x01\x00", [NET_A], UP) is None  # shorter than a header
    assert resolver.answer(b"\0" * 5000, [NET_A], UP) is None  # oversized
    header_only = struct.pack("!HHHHHH", 99, 0x0100, 1, 0, 0, 0)
    reply = DNSRecord.parse(resolver.answer(header_only, [NET_A], UP) or b"")
    assert reply.header.rcode == RCODE.FORMERR and reply.header.id == 99
    two_questions = DNSRecord.question("web")
    two_questions.add_question(two_questions.q)
    reply = DNSRecord.parse(resolver.answer(bytes(two_questions.pack()), [NET_A], UP) or b"")
    assert reply.header.rcode == RCODE.FORMERR
    # a promised additional record that is missing
    packet = bytearray(DNSRecord.question("web").pack())
    packet[11] = 1
    reply = DNSRecord.parse(resolver.answer(bytes(packet), [NET_A], UP) or b"")
    assert reply.header.rcode == RCODE.FORMERR
    assert resolver.stats.formerr == 3


def test_answers_follow_changes_to_the_table(records: Records, resolver: Resolver) -> None:
    assert addresses(ask(resolver, "web")) == ["172.18.0.2"]
    records.set_endpoint(NET_A, "c1" * 32, ["web"], "172.18.0.42")  # new address
    assert addresses(ask(resolver, "web")) == ["172.18.0.42"]
    assert ask(resolver, "newbie").header.rcode == RCODE.NXDOMAIN
    records.set_endpoint(NET_A, "c7", ["newbie"], "172.18.0.7")  # new container
    assert addresses(ask(resolver, "newbie")) == ["172.18.0.7"]
    records.remove_endpoint(NET_A, "c7")  # gone again
    assert ask(resolver, "newbie").header.rcode == RCODE.NXDOMAIN
    assert ask(resolver, "7.0.18.172.in-addr.arpa", "PTR").rr == []


def test_stats_count_what_happened(records: Records) -> None:
    resolver = Resolver(records, forwarder=FakeForwarder(upstream_answer()))
    ask(resolver, "web")
    ask(resolver, "web", "AAAA")
    ask(resolver, "nosuchhost")
    ask(resolver, "example.com")
    resolver.answer(b"junk", [NET_A], UP)
    s = resolver.stats
    assert (s.queries, s.answered_local, s.nxdomain, s.forwarded, s.dropped) == (5, 2, 1, 1, 1)


# -- the name table ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["web", "my_container", "a", "a-b", "x" * 63, "db.internal",
                                  "Web-1.Svc_2", "0abc", ".".join(["a" * 63] * 3) + ".b" * 31])
def test_valid_names(name: str) -> None:
    assert len(name) <= 253 and valid_name(name)


@pytest.mark.parametrize("name", ["", "-web", "web-", "a..b", ".web", "web.", "x" * 64, "we b",
                                  "wéb", "web/1", "a.-b", ".".join(["a" * 63] * 4), "web\n"])
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)


def test_set_endpoint_refuses_bad_names_and_addresses(records: Records) -> None:
    with pytest.raises(InvalidArgument, match="name"):
        records.set_endpoint(NET_A, "cx", ["bad name"], "172.18.0.9")
    with pytest.raises(InvalidArgument, match="ip"):
        records.set_endpoint(NET_A, "cx", ["good"], "fd00::1")
    assert records.lookup([NET_A], "good") == []


def test_version_moves_only_on_change(records: Records) -> None:
    v = records.version
    records.set_endpoint(NET_A, "c2" * 32, ["db", "store"], "172.18.0.3")  # same as before
    assert records.version == v
    records.set_endpoint(NET_A, "c2" * 32, ["db"], "172.18.0.3")
    assert records.version > v
    v = records.version
    records.remove_endpoint(NET_A, "nobody")
    assert records.version == v
    records.remove_endpoint(NET_A, "c2" * 32)
    assert records.version > v
    assert records.lookup([NET_A], "db") == [] and records.lookup([NET_A], "store") == []
    assert records.reverse([NET_A], "172.18.0.3") is None


def test_records_are_safe_across_threads(records: Records) -> None:
    def churn(n: int) -> None:
        for i in range(300):
            records.set_endpoint(NET_A, f"t{n}-{i % 5}", [f"t{n}", "shared"], f"10.{n}.0.{i % 5 + 1}")
            records.lookup([NET_A], "shared")
            records.remove_endpoint(NET_A, f"t{n}-{(i + 2) % 5}")

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        for i in range(5):
            records.remove_endpoint(NET_A, f"t{n}-{i}")
    assert records.lookup([NET_A], "shared") == []


# -- the default forwarder, against servers on 127.0.0.1 ---------------------------------

class LoopbackUpstream:
    """A DNS server on 127.0.0.1 (UDP and TCP on one port) for forwarder tests."""

    def __init__(self, mode: str = "answer", ip: str = "198.51.100.7") -> None:
        self.mode, self.ip = mode, ip
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(4)
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        self.udp_queries = 0
        self.tcp_queries = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", self.port)

    def _reply(self, data: bytes, tcp: bool) -> bytes:
        query = DNSRecord.parse(data)
        out = query.reply()
        out.add_answer(RR(query.q.qname, QTYPE.A, CLASS.IN, 60, A(self.ip)))
        if self.mode == "servfail":
            out = query.reply()
            out.header.rcode = RCODE.SERVFAIL
        if self.mode == "truncate" and not tcp:
            out = query.reply()
            out.header.tc = 1
        return bytes(out.pack())

    def _serve_udp(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.udp_queries += 1
            if self.mode == "silent":
                continue
            if self.mode == "spoof":  # a wrong id, then a wrong question, then the real reply
                self.udp.sendto(b"\xff\xff" + self._reply(data, False)[2:], peer)
                other = DNSRecord.question("evil.example.net")
                other.header.id = DNSRecord.parse(data).header.id
                self.udp.sendto(self._reply(bytes(other.pack()), False), peer)
            self.udp.sendto(self._reply(data, False), peer)

    def _serve_tcp(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    size = struct.unpack("!H", conn.recv(2))[0]
                    data = b""
                    while len(data) < size:
                        data += conn.recv(size - len(data))
                    self.tcp_queries += 1
                    if self.mode != "silent":
                        reply = self._reply(data, True)
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    pass

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def loopback() -> Iterator[Callable[..., LoopbackUpstream]]:
    made: list[LoopbackUpstream] = []

    def make(*args: str) -> LoopbackUpstream:
        made.append(LoopbackUpstream(*args))
        return made[-1]

    try:
        yield make
    finally:
        for server in made:
            server.close()


def forwarded(upstreams: list[Upstream], transport: str = "udp", timeout: float = 2.0,
              qid: int = 4321) -> DNSRecord | None:
    query = DNSRecord.question("example.com")
    query.header.id = qid
    raw = forward_udp_tcp(bytes(query.pack()), upstreams, transport, timeout)
    return None if raw is None else DNSRecord.parse(raw)


def test_forward_udp_answer_keeps_the_query_id(loopback: Callable[..., LoopbackUpstream]) -> None:
    server = loopback()
    reply = forwarded([server.upstream])
    assert reply is not None and reply.header.id == 4321 and addresses(reply) == ["198.51.100.7"]
    assert (server.udp_queries, server.tcp_queries) == (1, 0)


def test_forward_retries_over_tcp_when_truncated(loopback: Callable[..., LoopbackUpstream]) -> None:
    server = loopback("truncate")
    reply = forwarded([server.upstream])
    assert reply is not None and reply.header.tc == 0 and addresses(reply) == ["198.51.100.7"]
    assert (server.udp_queries, server.tcp_queries) == (1, 1)


def test_forward_over_tcp_when_asked_over_tcp(loopback: Callable[..., LoopbackUpstream]) -> None:
    server = loopback()
    reply = forwarded([server.upstream], "tcp")
    assert reply is not None and addresses(reply) == ["198.51.100.7"]
    assert (server.udp_queries, server.tcp_queries) == (0, 1)


def test_forward_ignores_replies_with_the_wrong_id(loopback: Callable[..., LoopbackUpstream]) -> None:
    reply = forwarded([loopback("spoof").upstream], qid=0)
    assert reply is not None and addresses(reply) == ["198.51.100.7"]
    assert reply.q.qname == "example.com." and reply.header.id == 0


def test_forward_moves_on_from_silent_and_failing_upstreams(loopback: Callable[..., LoopbackUpstream]) -> None:
    silent, failing, good = loopback("silent"), loopback("servfail"), loopback("answer", "198.51.100.9")
    started = time.monotonic()
    reply = forwarded([silent.upstream, failing.upstream, good.upstream], timeout=1.5)
    assert reply is not None and addresses(reply) == ["198.51.100.9"]
    assert time.monotonic() - started < 1.5
    reply = forwarded([failing.upstream], timeout=1.0)  # only SERVFAIL to offer: pass it on
    assert reply is not None and reply.header.rcode == RCODE.SERVFAIL


def test_forward_gives_up_within_the_timeout(loopback: Callable[..., LoopbackUpstream]) -> None:
    silent = loopback("silent")
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    refused = Upstream("127.0.0.1", closed.getsockname()[1])
    closed.close()  # nothing listens there now
    started = time.monotonic()
    assert forwarded([refused, silent.upstream, silent.upstream], timeout=0.6) is None
    assert time.monotonic() - started < 1.0
    assert forwarded([Upstream("not-an-address")], timeout=0.3) is None
    assert forwarded([silent.upstream], "tcp", timeout=0.3) is None


def test_resolver_with_default_forwarder_end_to_end(records: Records,
                                                    loopback: Callable[..., LoopbackUpstream]) -> None:
    server = loopback()
    resolver = Resolver(records, timeout=1.0)
    reply = ask(resolver, "example.com", upstreams=[server.upstream])
    assert addresses(reply) == ["198.51.100.7"]


# -- speed (reported, not asserted) --------------------------------------------------------

def test_benchmark_cached_container_name(capsys: pytest.CaptureFixture[str]) -> None:
    records = Records()
    for i in range(1000):
        records.set_endpoint(NET_A, f"{i:064x}", [f"svc-{i}", f"alias-{i}", f"{i:012x}"],
                             f"10.1.{i // 250}.{i % 250 + 1}")
    records.set_endpoint(NET_A, "pair", ["svc-7-twin", "alias-7"], "10.9.9.9")  # a two-address name
    resolver = Resolver(records, forwarder=FakeForwarder())
    results = []
    for name in ("svc-500", "alias-7", "nosuchname", "svc-500-via-edns"):
        query = DNSRecord.question(name.removesuffix("-via-edns"))
        if name.endswith("-via-edns"):
            query.add_ar(EDNS0(udp_len=1232))
        packet = bytes(query.pack())
        nets = (NET_A,)
        assert resolver.answer(packet, nets, UP) is not None
        count = 50_000
        started = time.perf_counter()
        for _ in range(count):
            resolver.answer(packet, nets, UP)
        results.append(f"{name}: {count / (time.perf_counter() - started):,.0f} answers/s")
    fresh = Resolver(records, forwarder=FakeForwarder())
    packets = [bytes(DNSRecord.question(f"svc-{i}").pack()) for i in range(1000)]
    started = time.perf_counter()
    for packet in packets:
        fresh.answer(packet, (NET_A,), UP)
    results.append(f"uncached first queries: {len(packets) / (time.perf_counter() - started):,.0f} answers/s")
    with capsys.disabled():
        print("\n[dns benchmark, 1,000 containers on one network] " + "; ".join(results))
