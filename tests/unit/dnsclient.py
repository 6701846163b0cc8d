"""A DNS question over TCP to a resolver under test (RFC 1035 4.2.2: a 2-byte length, then the
message), shared by the resolver's unit tests."""

from __future__ import annotations

import socket
import struct

from dnslib import DNSRecord


def ask_over_tcp(addr: tuple[str, int], name: str, timeout: float) -> DNSRecord:
    """The answer to an A question for ``name``, read whole from one TCP connection."""
    q = DNSRecord.question(name).pack()
    with socket.create_connection(addr, timeout=timeout) as c:
        c.sendall(struct.pack("!H", len(q)) + q)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    return DNSRecord.parse(data[2:])
