"""Address and route dumps read from raw rtnetlink bytes (cove.kernel.rtdump), without a kernel:
the datagrams here are laid out as the kernel sends them (nlmsghdr + ifaddrmsg / rtmsg + attributes,
4-byte aligned), with another dump's messages mixed in, the end marker and an error."""

from __future__ import annotations

import socket
import struct

from cove.kernel import rtdump as rd


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


def _msg(kind: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 2, seq, 0) + body


def _addr(seq: int, family: int, plen: int, index: int, *attrs: bytes) -> bytes:
    return _msg(rd.RTM_NEWADDR, seq, struct.pack("=BBBBI", family, plen, 0, 0, index) + b"".join(attrs))


def _route(seq: int, dst: str | None, plen: int, table: int, rta_table: int | None = None) -> bytes:
    attrs = _attr(rd.RTA_DST, socket.inet_aton(dst)) if dst else b""
    if rta_table is not None:
        attrs += _attr(rd.RTA_TABLE, struct.pack("=I", rta_table))
    return _msg(rd.RTM_NEWROUTE, seq, struct.pack("=BBBBBBBBI", socket.AF_INET, plen, 0, 0, table, 2, 0, 1, 0) + attrs)


DONE = struct.pack("=IHHII", 20, rd.NLMSG_DONE, 2, 5, 0) + b"\0" * 4


def test_requests_are_dumps_of_one_family() -> None:
    for req, kind, size in ((rd.addr_request(5, socket.AF_INET), rd.RTM_GETADDR, 24),
                            (rd.route_request(5, socket.AF_INET6), rd.RTM_GETROUTE, 28)):
        length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", req)
        assert (length, mtype, flags, seq, pid) == (size, kind, rd.NLM_F_REQUEST | rd.NLM_F_DUMP, 5, 0)
        assert len(req) == size
    assert req[16] == socket.AF_INET6


def test_addresses_prefer_the_local_address_and_skip_other_dumps() -> None:
    ptp = _addr(5, socket.AF_INET, 32, 3, _attr(rd.IFA_ADDRESS, socket.inet_aton("10.0.0.9")),
                _attr(rd.IFA_LOCAL, socket.inet_aton("10.0.0.1")))          # point-to-point: the peer, then ours
    six = _addr(5, socket.AF_INET6, 64, 4, _attr(rd.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "fd00:7::1")))
    stale = _addr(4, socket.AF_INET, 24, 9, _attr(rd.IFA_ADDRESS, socket.inet_aton("10.9.9.1")))
    assert rd.addr_entries(stale + ptp + six, 5) == ([(3, "10.0.0.1", 32), (4, "fd00:7::1", 64)], False, 0)
    assert rd.addr_entries(ptp + DONE, 5) == ([(3, "10.0.0.1", 32)], True, 0)


def test_routes_take_their_table_from_the_attribute_when_there_is_one() -> None:
    data = (_route(5, "10.7.0.0", 24, 254) + _route(5, None, 0, 254)
            + _route(5, "10.8.0.0", 16, 252, rta_table=1000) + _route(5, "10.9.0.1", 32, 255))
    routes, done, err = rd.route_entries(data + DONE, 5)
    assert routes == [(254, "10.7.0.0", 24), (254, "", 0), (1000, "10.8.0.0", 16), (255, "10.9.0.1", 32)]
    assert (done, err) == (True, 0)


def test_an_error_ends_the_dump_with_its_errno() -> None:
    fail = struct.pack("=IHHIIi", 36, rd.NLMSG_ERROR, 0, 5, 0, -16) + b"\0" * 16
    assert rd.route_entries(_route(5, "10.7.0.0", 24, 254) + fail, 5) == ([(254, "10.7.0.0", 24)], True, 16)
