"""The raw link and address messages of ``Netlink.add_veth_pair``, ``add_bridge`` and ``add_address``, read back
as data (no root, no kernel)."""

from __future__ import annotations

import struct
from ipaddress import ip_address

from cove.kernel import rtlink

HDR = struct.Struct("=IHHII")
IFINFO = struct.Struct("=BxHiII")


def _attrs(data: bytes, start: int, end: int) -> list[tuple[int, bytes]]:
    out = []
    while start + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, start)
        assert alen >= 4, f"a malformed attribute at {start}"
        out.append((atype, data[start + 4:start + alen]))
        start += (alen + 3) & ~3
    return out


def _nested(attrs: list[tuple[int, bytes]], kind: int) -> list[tuple[int, bytes]]:
    payload = next(p for t, p in attrs if t & 0x3FFF == kind)
    return _attrs(payload, 0, len(payload))


def test_the_create_carries_master_up_and_the_peer_with_its_mac_and_namespace() -> None:
    msg = rtlink.veth_request(7, "vethab", "eth1", 42, mtu=1400, master=5, peer_mac="02:42:0a:00:00:02", up=True)
    length, mtype, flags, seq, _ = HDR.unpack_from(msg)
    assert (length, mtype, seq) == (len(msg), rtlink.RTM_NEWLINK, 7)
    assert flags & rtlink.NLM_F_CREATE and flags & rtlink.NLM_F_EXCL and flags & rtlink.NLM_F_ECHO
    _, _, index, ifi_flags, change = IFINFO.unpack_from(msg, HDR.size)
    assert (index, ifi_flags, change) == (0, rtlink.IFF_UP, rtlink.IFF_UP)
    attrs = _attrs(msg, HDR.size + IFINFO.size, len(msg))
    plain = dict(attrs)
    assert plain[rtlink.IFLA_IFNAME] == b"vethab\0" and struct.unpack("=I", plain[rtlink.IFLA_MASTER]) == (5,)
    assert struct.unpack("=I", plain[rtlink.IFLA_MTU]) == (1400,)
    info = _nested(attrs, rtlink.IFLA_LINKINFO)
    assert dict(info)[rtlink.IFLA_INFO_KIND] == b"veth\0"
    raw_peer = next(p for t, p in _nested(info, rtlink.IFLA_INFO_DATA))
    assert IFINFO.unpack_from(raw_peer)[3] == 0           # the peer is not up: the kernel would say ENOTCONN
    peer = dict(_attrs(raw_peer, IFINFO.size, len(raw_peer)))
    assert peer[rtlink.IFLA_IFNAME] == b"eth1\0" and struct.unpack("=I", peer[rtlink.IFLA_NET_NS_FD]) == (42,)
    assert peer[rtlink.IFLA_ADDRESS] == bytes.fromhex("02420a000002")
    # one queue each way on both ends, asked for at the create (no queue taken away after it)
    for end in (plain, peer):
        assert struct.unpack("=I", end[rtlink.IFLA_NUM_TX_QUEUES]) == (1,)
        assert struct.unpack("=I", end[rtlink.IFLA_NUM_RX_QUEUES]) == (1,)


def test_the_tag_is_a_change_of_the_new_index_with_alias_and_port_flags() -> None:
    msg = rtlink.tag_request(8, 17, "cove:ep:abc", (True, False))
    _, mtype, flags, _, _ = HDR.unpack_from(msg)
    assert mtype == rtlink.RTM_NEWLINK and not flags & rtlink.NLM_F_CREATE
    assert IFINFO.unpack_from(msg, HDR.size)[2] == 17
    attrs = _attrs(msg, HDR.size + IFINFO.size, len(msg))
    assert dict(attrs)[rtlink.IFLA_IFALIAS] == b"cove:ep:abc\0"
    info = _nested(attrs, rtlink.IFLA_LINKINFO)
    port = dict(_nested(info, rtlink.IFLA_INFO_SLAVE_DATA))
    assert port == {rtlink.IFLA_BRPORT_MODE: b"\x01", rtlink.IFLA_BRPORT_ISOLATED: b"\x00"}


def _link_msg(seq: int, index: int, name: str, iflink: int) -> bytes:
    body = IFINFO.pack(0, 1, index, 0, 0)
    for kind, payload in ((rtlink.IFLA_IFNAME, name.encode() + b"\0"), (rtlink.IFLA_LINK, struct.pack("=I", iflink))):
        a = struct.pack("=HH", 4 + len(payload), kind) + payload
        body += a + b"\0" * (-len(a) % 4)
    return HDR.pack(HDR.size + len(body), rtlink.RTM_NEWLINK, 0, seq, 0) + body


def _ack(seq: int, err: int) -> bytes:
    return HDR.pack(HDR.size + 20, rtlink.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", -err) + HDR.pack(16, 0, 0, seq, 0)


def test_replies_take_the_echo_of_this_request_only_and_read_the_acks() -> None:
    data = _link_msg(3, 9, "vethold", 4) + _link_msg(5, 11, "vethab", 2) + _ack(5, 0) + _ack(6, 17)
    links, acks = rtlink.replies(data, 5)
    assert links == [rtlink.LinkInfo(11, "vethab", 2)]
    assert acks == {5: 0, 6: 17}


def test_the_bridge_create_is_exclusive_echoed_up_with_its_mtu() -> None:
    msg = rtlink.bridge_request(9, "br-0123456789ab", mtu=1450, up=True)
    length, mtype, flags, seq, _ = HDR.unpack_from(msg)
    assert (length, mtype, seq) == (len(msg), rtlink.RTM_NEWLINK, 9)
    assert flags & rtlink.NLM_F_CREATE and flags & rtlink.NLM_F_EXCL and flags & rtlink.NLM_F_ECHO
    assert IFINFO.unpack_from(msg, HDR.size)[2:] == (0, rtlink.IFF_UP, rtlink.IFF_UP)
    attrs = _attrs(msg, HDR.size + IFINFO.size, len(msg))
    plain = dict(attrs)
    assert plain[rtlink.IFLA_IFNAME] == b"br-0123456789ab\0" and struct.unpack("=I", plain[rtlink.IFLA_MTU]) == (1450,)
    assert dict(_nested(attrs, rtlink.IFLA_LINKINFO)) == {rtlink.IFLA_INFO_KIND: b"bridge\0"}
    down = rtlink.bridge_request(9, "br0")
    assert IFINFO.unpack_from(down, HDR.size)[3:] == (0, 0)
    assert rtlink.IFLA_MTU not in dict(_attrs(down, HDR.size + IFINFO.size, len(down)))


IFADDR = struct.Struct("=BBBBI")


def _address(msg: bytes) -> tuple[tuple[int, int, int, int, int], dict[int, bytes]]:
    length, mtype, flags, _, _ = HDR.unpack_from(msg)
    assert (length, mtype) == (len(msg), rtlink.RTM_NEWADDR)
    assert flags & rtlink.NLM_F_CREATE and flags & rtlink.NLM_F_EXCL and flags & rtlink.NLM_F_ACK
    return IFADDR.unpack_from(msg, HDR.size), dict(_attrs(msg, HDR.size + IFADDR.size, len(msg)))


def test_an_ipv4_address_carries_local_address_and_its_subnet_s_broadcast() -> None:
    head, attrs = _address(rtlink.address_request(4, 12, ip_address("10.18.3.1"), 22))
    assert head == (2, 22, 0, 0, 12)
    ip = bytes([10, 18, 3, 1])
    assert attrs == {rtlink.IFA_LOCAL: ip, rtlink.IFA_ADDRESS: ip, rtlink.IFA_BROADCAST: bytes([10, 18, 3, 255])}
    for plen in (31, 32):                                   # no broadcast address, as ``ip addr add``
        assert rtlink.IFA_BROADCAST not in _address(rtlink.address_request(4, 12, ip_address("10.18.3.1"), plen))[1]


def test_address_flags_past_eight_bits_go_in_ifa_flags_and_ipv6_has_no_broadcast() -> None:
    head, attrs = _address(rtlink.address_request(5, 3, ip_address("10.0.0.2"), 24, flags=0x200))
    assert head[2] == 0 and struct.unpack("=I", attrs[rtlink.IFA_FLAGS]) == (0x200,)
    head, attrs = _address(rtlink.address_request(6, 3, ip_address("fd00::1"), 64, flags=0x02))
    assert head == (10, 64, 0x02, 0, 3)
    assert set(attrs) == {rtlink.IFA_LOCAL, rtlink.IFA_ADDRESS} and attrs[rtlink.IFA_LOCAL] == ip_address("fd00::1").packed


def test_up_is_a_change_of_the_up_flag_alone() -> None:
    msg = rtlink.up_request(9, 23)
    length, mtype, flags, seq, _ = HDR.unpack_from(msg)
    assert (length, mtype, seq) == (len(msg), rtlink.RTM_NEWLINK, 9) and length == HDR.size + IFINFO.size
    assert flags == rtlink.NLM_F_REQUEST | rtlink.NLM_F_ACK              # a change: never a create
    _, _, index, ifi_flags, change = IFINFO.unpack_from(msg, HDR.size)
    assert (index, ifi_flags, change) == (23, rtlink.IFF_UP, rtlink.IFF_UP)   # only IFF_UP is touched


RTMSG = struct.Struct("=BBBBBBBBI")


def test_the_default_route_is_a_static_unicast_route_of_the_main_table_via_the_gateway() -> None:
    for gw, family in ((ip_address("172.18.0.1"), 2), (ip_address("fd00:77::1"), 10)):
        msg = rtlink.default_route_request(11, gw)
        length, mtype, flags, seq, _ = HDR.unpack_from(msg)
        assert (length, mtype, seq) == (len(msg), rtlink.RTM_NEWROUTE, 11)
        assert flags & rtlink.NLM_F_CREATE and flags & rtlink.NLM_F_EXCL and flags & rtlink.NLM_F_ACK
        # family, dst_len 0 (default), src_len, tos, table main, proto static (as pyroute2 made it:
        # `ip route` unchanged), scope universe, unicast, no flags
        assert RTMSG.unpack_from(msg, HDR.size) == (family, 0, 0, 0, 254, 4, 0, 1, 0)
        attrs = dict(_attrs(msg, HDR.size + RTMSG.size, len(msg)))
        assert attrs == {rtlink.RTA_TABLE: struct.pack("=I", 254), rtlink.RTA_GATEWAY: gw.packed}


def test_a_bridge_is_made_with_its_own_random_locally_administered_unicast_mac() -> None:
    macs = {rtlink.random_mac() for _ in range(50)}
    assert len(macs) == 50
    for mac in macs:
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01                     # locally administered, unicast
    msg = rtlink.bridge_request(3, "br-x", up=True, mac="02:42:ac:11:00:01")
    attrs = dict(_attrs(msg, HDR.size + IFINFO.size, len(msg)))
    assert attrs[rtlink.IFLA_ADDRESS] == bytes.fromhex("0242ac110001")
    assert rtlink.IFLA_ADDRESS not in dict(_attrs(rtlink.bridge_request(3, "br-x"), HDR.size + IFINFO.size,
                                                   len(rtlink.bridge_request(3, "br-x"))))
