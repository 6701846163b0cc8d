"""The socket loop's path (``Resolver.answer_local``): the same replies as ``answer``,
repeated queries served from stored replies, never stale, forwarding left to a worker."""

from __future__ import annotations

from dnslib import QTYPE, DNSRecord

from cove.dns import Records, Resolver
from cove.dns.server import FORWARD

NET = "net-a"


def query(name: str, qid: int, qtype: str = "A") -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    return bytes(q.pack())


def addresses(raw: bytes | None) -> list[str]:
    assert raw is not None
    return sorted(str(rr.rdata) for rr in DNSRecord.parse(raw).rr if rr.rtype == QTYPE.A)


def test_repeated_queries_keep_their_id_and_follow_changes() -> None:
    records = Records()
    records.set_endpoint(NET, "c1", ["web"], "172.18.0.2")
    resolver = Resolver(records, forwarder=lambda *a: None)
    for qid in (1, 2, 3, 0xBEEF):
        raw = resolver.answer_local(query("web", qid), (NET,))
        assert raw is not None and DNSRecord.parse(raw).header.id == qid
        assert addresses(raw) == ["172.18.0.2"]
    assert DNSRecord.parse(resolver.answer_local(query("WeB", 9), (NET,)) or b"").q.qname.label == (b"WeB",)
    records.set_endpoint(NET, "c2", ["web-2", "web"], "172.18.0.3")
    assert addresses(resolver.answer_local(query("web", 4), (NET,))) == ["172.18.0.2", "172.18.0.3"]
    records.remove_endpoint(NET, "c1")
    records.remove_endpoint(NET, "c2")
    reply = DNSRecord.parse(resolver.answer_local(query("web", 5), (NET,)) or b"")
    assert reply.header.rcode == 3 and not reply.rr   # NXDOMAIN once gone


def test_other_networks_and_forwarded_names() -> None:
    records = Records()
    records.set_endpoint(NET, "c1", ["web"], "172.18.0.2")
    resolver = Resolver(records, forwarder=lambda *a: None)
    assert addresses(resolver.answer_local(query("web", 7), (NET,))) == ["172.18.0.2"]
    assert addresses(resolver.answer_local(query("web", 7), ("net-b",))) == []
    assert resolver.answer_local(query("example.org", 8), (NET,)) is FORWARD
    assert resolver.answer_local(b"\x00" * 5, (NET,)) is None
