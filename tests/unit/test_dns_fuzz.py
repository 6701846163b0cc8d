"""Property tests: whatever arrives on port 53, the resolver neither raises nor
hangs, replies only with well-formed DNS, and never replies with more than it
was sent for a name it cannot answer (no amplification)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator

import pytest
from dnslib import CLASS, QTYPE, RCODE, RR, A, DNSRecord, EDNS0
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cove.dns import Records, Resolver, Upstream

NETS = ("net-a",)
UPSTREAMS = [Upstream("192.0.2.1"), Upstream("192.0.2.2")]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class ErrorLog(logging.Handler):
    """Collects errors logged by the resolver: answer() hides exceptions from its
    caller, so a test must look here to see them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logger = logging.getLogger("cove.dns.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def table() -> Records:
    records = Records()
    records.set_endpoint("net-a", "c1", ["web", "alias"], "172.18.0.2")
    records.set_endpoint("net-a", "c2", ["db", "alias"], "172.18.0.3")
    records.set_endpoint("net-a", "c3", ["api.svc"], "172.18.0.4")
    records.set_endpoint("net-b", "c4", ["hidden"], "172.19.0.2")
    return records


def upstream(mode: str) -> Callable[[bytes, list[Upstream], str], bytes | None]:
    """A fake forwarder: "none" fails, "servfail" relays a SERVFAIL, "answer" an A record."""
    def forward(packet: bytes, upstreams: list[Upstream], transport: str) -> bytes | None:
        assert 1 <= len(upstreams) <= 3 and transport in ("udp", "tcp")
        if mode == "none":
            return None
        query = DNSRecord.parse(packet)
        reply = query.reply()
        if mode == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
        else:
            reply.add_answer(RR(query.q.qname, QTYPE.A, CLASS.IN, 60, A("198.51.100.1")))
        return bytes(reply.pack())
    return forward


def check(resolver: Resolver, packet: bytes, errors: ErrorLog, transport: str = "udp") -> bytes | None:
    """Ask, and check what every reply must satisfy."""
    reply = resolver.answer(packet, NETS, UPSTREAMS, transport)
    assert errors.seen == [], errors.seen[0].getMessage()
    if reply is None:
        return None
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)  # raises if malformed
    assert parsed.header.qr == 1
    assert reply[:2] == packet[:2]
    if transport == "udp":  # never more than the client said it takes
        try:
            sizes = [rr.rclass for rr in DNSRecord.parse(packet).ar if rr.rtype == QTYPE.OPT]
        except Exception:
            sizes = []
        assert len(reply) <= max([512, *sizes[:1]])
    return reply


def encode_query(qid: int, flags: int, labels: list[bytes], qtype: int, qclass: int,
                 edns: int | None = None, tail: bytes = b"") -> bytes:
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    header = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0 if edns is None else 1)
    opt = b"" if edns is None else b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return header + name + struct.pack("!HH", qtype, qclass) + opt + tail


names = st.sampled_from(["web", "WEB", "Alias", "db", "api.svc", "API.Svc", "hidden", "nosuch",
                         "example.com", "2.0.18.172.in-addr.arpa", "9.9.9.9.in-addr.arpa", ""])
random_label = st.binary(min_size=1, max_size=63)
text_label = st.text(alphabet="abcdefghijXYZ0123456789-_.", min_size=1, max_size=20).map(str.encode)
labels = st.one_of(
    names.map(lambda n: [part.encode() for part in n.split(".") if part]),
    st.lists(st.one_of(text_label, random_label), max_size=6),
)
qtypes = st.one_of(st.sampled_from([1, 28, 12, 255, 15, 16, 41, 0, 65535]), st.integers(0, 65535))
qclasses = st.one_of(st.sampled_from([1, 255, 3, 254]), st.integers(0, 65535))
edns_sizes = st.one_of(st.none(), st.integers(0, 65535))
modes = st.sampled_from(["none", "answer", "servfail"])


@FUZZ
@given(data=st.binary(max_size=700))
@example(data=b"")
@example(data=b"\0" * 12)
@example(data=b"\xc0" * 40)
def test_random_bytes(data: bytes, errors: ErrorLog) -> None:
    resolver = Resolver(Records(), forwarder=upstream("none"))
    reply = check(resolver, data, errors)
    if reply is not None:
        assert len(reply) <= len(data)  # nothing is known: no reply outgrows its query


@FUZZ
@given(header=st.binary(min_size=12, max_size=12), body=st.binary(max_size=300), mode=modes)
def test_random_body_behind_a_query_header(header: bytes, body: bytes, mode: str, errors: ErrorLog) -> None:
    # qdcount 1 and no QR bit, so the packet gets past the cheap checks
    packet = header[:2] + bytes([header[2] & 0x7F]) + header[3:4] + b"\0\1" + header[6:] + body
    for transport in ("udp", "tcp"):
        check(Resolver(table(), forwarder=upstream(mode)), packet, errors, transport)


@FUZZ
@given(qid=st.integers(0, 65535), flags=st.integers(0, 65535), labels=labels, qtype=qtypes,
       qclass=qclasses, edns=edns_sizes, mode=modes, transport=st.sampled_from(["udp", "tcp"]))
def test_random_questions(qid: int, flags: int, labels: list[bytes], qtype: int, qclass: int,
                          edns: int | None, mode: str, transport: str, errors: ErrorLog) -> None:
    packet = encode_query(qid, flags, labels, qtype, qclass, edns)
    reply = check(Resolver(table(), forwarder=upstream(mode)), packet, errors, transport)
    if flags & 0x8000:
        assert reply is None
    elif reply is not None and mode == "none" and transport == "udp":
        parsed = DNSRecord.parse(reply)
        if parsed.header.rcode != RCODE.NOERROR:  # a failure is never bigger than the question
            assert len(reply) <= len(packet)
        assert len(reply) <= max(512, edns or 0)


@FUZZ
@given(labels=labels, qtype=qtypes, qclass=qclasses, edns=edns_sizes, cut=st.integers(0, 400),
       mode=modes)
def test_truncated_queries(labels: list[bytes], qtype: int, qclass: int, edns: int | None, cut: int,
                           mode: str, errors: ErrorLog) -> None:
    packet = encode_query(0x1234, 0x0100, labels, qtype, qclass, edns)
    cut = min(cut, len(packet))
    reply = check(Resolver(table(), forwarder=upstream(mode)), packet[:cut], errors)
    if reply is not None and cut < len(packet):
        assert len(reply) <= max(cut, 12 + 11)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(4097, 70_000), fill=st.binary(min_size=1, max_size=16))
def test_oversized_packets_are_dropped(size: int, fill: bytes, errors: ErrorLog) -> None:
    packet = (encode_query(1, 0x0100, [b"web"], 1, 1) + fill * size)[:size]
    assert Resolver(table(), forwarder=upstream("answer")).answer(packet, NETS, UPSTREAMS) is None
    assert errors.seen == []


def summary(reply: bytes) -> tuple[object, ...]:
    parsed = DNSRecord.parse(reply)
    h = parsed.header
    return (h.id, h.bitmap, [str(q) for q in parsed.questions], sorted(str(rr) for rr in parsed.rr),
            len(parsed.ar))


@FUZZ
@given(name=names, qtype=st.sampled_from([1, 28, 12, 255, 15]), edns=edns_sizes,
       swaps=st.lists(st.booleans(), min_size=40, max_size=40), qid=st.integers(0, 65535),
       mode=modes, transport=st.sampled_from(["udp", "tcp"]))
def test_cached_answers_equal_fresh_answers(name: str, qtype: int, edns: int | None, swaps: list[bool],
                                           qid: int, mode: str, transport: str, errors: ErrorLog) -> None:
    """Asking once with one spelling must not change the answer to another spelling."""
    records = table()
    warm = Resolver(records, forwarder=upstream(mode))
    first = encode_query(7, 0x0100, [p.encode() for p in name.split(".") if p], qtype, 1, edns)
    check(warm, first, errors, transport)
    spelled = "".join(c.swapcase() if s else c for c, s in zip(name, swaps + [False] * len(name)))
    again = encode_query(qid, 0x0100, [p.encode() for p in spelled.split(".") if p], qtype, 1, edns)
    cached = check(warm, again, errors, transport)
    fresh = check(Resolver(records, forwarder=upstream(mode)), again, errors, transport)
    assert cached is not None and fresh is not None
    assert summary(cached) == summary(fresh)
    assert DNSRecord.parse(cached).q.qname.label == DNSRecord.parse(again).q.qname.label


@settings(max_examples=100, deadline=None)
@given(count=st.integers(1, 80), edns=edns_sizes, transport=st.sampled_from(["udp", "tcp"]))
def test_big_local_answers_respect_the_size_limit(count: int, edns: int | None, transport: str,
                                                  errors: ErrorLog) -> None:
    records = Records()
    for i in range(count):
        records.set_endpoint("net-a", f"c{i}", [f"c{i}", "crowd"], f"10.0.{i // 200}.{i % 200 + 1}")
    query = DNSRecord.question("crowd")
    if edns is not None:
        query.add_ar(EDNS0(udp_len=edns))
    reply = check(Resolver(records, forwarder=upstream("none")), bytes(query.pack()), errors, transport)
    assert reply is not None
    parsed = DNSRecord.parse(reply)
    limit = 65535 if transport == "tcp" else max(512, edns or 0)
    assert len(reply) <= limit
    assert len(parsed.rr) in (0, count)
    assert (len(parsed.rr) == 0) == bool(parsed.header.tc)
