"""One container cannot starve the embedded resolver for the others (the budget per container).

Two "containers" share one :class:`DnsService`, each with its resolver sockets on loopback
(the daemon binds them to 127.0.0.11 inside each container; the service does not care
where).  The noisy one holds slow TCP connections and floods queries towards a dead
upstream; the quiet one's local and forwarded lookups must still answer.

Protection check: with the budget switched off (``FORWARD_OUTSTANDING = FORWARD_TOTAL``: one
container may hold every slot for forwarded queries; and for TCP ``FORWARD_INFLIGHT = WORKERS``,
queues unbounded and no MAX_WAIT), ``test_a_noisy_container_cannot_starve_another`` fails: the
noisy container's queries to the dead upstream fill every slot and the quiet container's
forwarded lookups are dropped.  Run it with ``COVE_DNS_NO_BUDGET=1`` to see that.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from .dnsclient import ask_over_tcp

from cove.dns import service as svc
from cove.dns.records import Records
from cove.dns.server import Resolver, Upstream
from cove.dns.service import DnsService, Listener

NET = "n" * 64
LIVE_ANSWER = "198.51.100.7"


def _sockets() -> tuple[socket.socket, socket.socket]:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    u.bind(("127.0.0.1", 0))
    t.bind(("127.0.0.1", 0))
    t.listen(64)
    u.setblocking(False)
    t.setblocking(False)
    return u, t


def _reply(data: bytes) -> bytes:
    q = DNSRecord.parse(data)
    r = q.reply()
    r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(LIVE_ANSWER), ttl=60))
    return r.pack()


class _LiveUpstream:
    """A DNS server on loopback (UDP and TCP) that answers every A query with LIVE_ANSWER."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        threading.Thread(target=self._run, daemon=True).start()
        threading.Thread(target=self._run_tcp, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            self.sock.sendto(_reply(data), peer)

    def _run_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    n = struct.unpack("!H", conn.recv(2))[0]
                    data = b""
                    while len(data) < n:
                        data += conn.recv(n - len(data))
                    r = _reply(data)
                    conn.sendall(struct.pack("!H", len(r)) + r)
                except (OSError, struct.error):
                    pass

    def close(self) -> None:
        self.sock.close()
        self.tcp.close()


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    if os.environ.get("COVE_DNS_NO_BUDGET"):
        monkeypatch.setattr(svc, "FORWARD_OUTSTANDING", svc.FORWARD_TOTAL)
        monkeypatch.setattr(svc, "FORWARD_INFLIGHT", svc.WORKERS)
        monkeypatch.setattr(svc, "FORWARD_QUEUE", 10**9)
        monkeypatch.setattr(svc, "MAX_WAIT", 1e9)
    records = Records()
    records.set_endpoint(NET, "quiet", ["quiet"], "172.18.0.2")
    records.set_endpoint(NET, "web", ["web"], "172.18.0.3")
    live = _LiveUpstream()
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)       # takes queries, answers none
    dead.bind(("127.0.0.1", 0))
    service = DnsService(Resolver(records, timeout=1.0))
    socks = {}
    for cid, upstream in (("noisy", dead.getsockname()[1]), ("quiet", live.port)):
        u, t = _sockets()
        service.attach(Listener(cid, u, t, networks=lambda: [NET],
                                upstreams=lambda port=upstream: [Upstream("127.0.0.1", port)]))
        socks[cid] = (u.getsockname(), t.getsockname())
    try:
        yield {"service": service, "socks": socks}
    finally:
        service.close()
        dead.close()
        live.close()


def _ask(addr: tuple[str, int], name: str, timeout: float = 2.0) -> tuple[list[str], float]:
    """(A records, seconds) for one UDP query; ([], timeout) when nothing came."""
    q = DNSRecord.question(name)
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(timeout)
        c.sendto(q.pack(), addr)
        try:
            data = c.recv(4096)
        except TimeoutError:
            return [], timeout
    return [str(rr.rdata) for rr in DNSRecord.parse(data).rr], time.monotonic() - start


def _ask_tcp(addr: tuple[str, int], name: str) -> list[str]:
    return [str(rr.rdata) for rr in ask_over_tcp(addr, name, 2).rr]


def test_local_and_forwarded_names_answer(setup: dict[str, object]) -> None:
    udp, tcp = setup["socks"]["quiet"]  # type: ignore[index]
    assert _ask(udp, "web")[0] == ["172.18.0.3"]
    assert _ask(udp, "example.com")[0] == [LIVE_ANSWER]
    assert _ask_tcp(tcp, "web") == ["172.18.0.3"]
    assert _ask_tcp(tcp, "example.com") == [LIVE_ANSWER]


def test_a_noisy_container_cannot_starve_another(setup: dict[str, object]) -> None:
    socks = setup["socks"]
    noisy_udp, noisy_tcp = socks["noisy"]  # type: ignore[index]
    quiet_udp, quiet_tcp = socks["quiet"]  # type: ignore[index]
    # slow TCP connections: one byte of the length, then nothing
    slow = []
    for _ in range(12):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(noisy_tcp)
        c.send(b"\x00")
        slow.append(c)
    stop = threading.Event()

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as f:
            i = 0
            while not stop.is_set():
                f.sendto(DNSRecord.question(f"q{i}.dead.example").pack(), noisy_udp)
                i += 1
                if i % 200 == 0:
                    time.sleep(0.01)

    floods = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
    for t in floods:
        t.start()
    try:
        time.sleep(1.5)       # the flood is on, the slow connections held
        local, forwarded = [], []
        for i in range(10):
            answer, took = _ask(quiet_udp, "web")
            assert answer == ["172.18.0.3"]
            local.append(took)
            answer, took = _ask(quiet_udp, f"n{i}.example.com")
            assert answer == [LIVE_ANSWER], "a forwarded lookup of the quiet container went unanswered"
            forwarded.append(took)
        assert _ask_tcp(quiet_tcp, "web") == ["172.18.0.3"]
        assert _ask_tcp(quiet_tcp, "tcp.example.com") == [LIVE_ANSWER]
        print(f"quiet container under attack: local max {max(local) * 1000:.1f} ms, "
              f"forwarded max {max(forwarded) * 1000:.1f} ms")
    finally:
        stop.set()
        for t in floods:
            t.join()
        for c in slow:
            c.close()
    service = setup["service"]
    noisy = service._listeners["noisy"]  # type: ignore[attr-defined]
    assert noisy.dropped > 0              # the flood cost the flooder its own queries


def test_slow_tcp_connections_are_closed_at_their_deadline(setup: dict[str, object]) -> None:
    _, noisy_tcp = setup["socks"]["noisy"]  # type: ignore[index]
    c = socket.create_connection(noisy_tcp, timeout=10)
    try:
        c.send(b"\x00")
        start = time.monotonic()
        assert c.recv(10) == b""            # closed by the resolver, not by us
        assert time.monotonic() - start < 8  # TCP_DEADLINE is 2 s; generous bound
    finally:
        c.close()
