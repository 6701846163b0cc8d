"""The raw rtnetlink messages of batched VXLAN peers (cove.kernel.peerbatch), without a kernel:
the layout of a request (nlmsghdr + ndmsg + NDA_DST + NDA_LLADDR, 4-byte aligned), the order of the
FDB and neighbour entries, acks and dumps parsed back (a request is itself an RTM_NEWNEIGH, so a dump
parser must read it back as the entry it describes)."""

from __future__ import annotations

import socket
import struct

from cove.kernel import peerbatch as pb


def test_an_add_is_a_permanent_create_or_replace_with_an_ack() -> None:
    msg = pb.neigh_message(7, True, socket.AF_INET, 12, "10.10.0.2", "02:42:0a:0a:00:02", 0)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind, seq, pid) == (len(msg), pb.RTM_NEWNEIGH, 7, 0) and len(msg) % 4 == 0
    assert flags == pb.NLM_F_REQUEST | pb.NLM_F_ACK | pb.NLM_F_CREATE | pb.NLM_F_REPLACE
    family, _, _, index, state, nflags, _ = struct.unpack_from("=BBHiHBB", msg, 16)
    assert (family, index, state, nflags) == (socket.AF_INET, 12, pb.NUD_PERMANENT, 0)
    assert msg[28:] == (struct.pack("=HH", 8, pb.NDA_DST) + socket.inet_aton("10.10.0.2")
                        + struct.pack("=HH", 10, pb.NDA_LLADDR) + bytes.fromhex("02420a0a0002") + b"\0\0")


def test_a_dump_parser_reads_a_request_back_as_its_entry() -> None:
    fdb = pb.neigh_message(3, True, pb.AF_BRIDGE, 5, "10.99.0.21", "02:42:0a:0a:00:09", pb.NTF_SELF)
    entries, done, err = pb.dump_entries(fdb + fdb.replace(b"\x03\0\0\0", b"\x04\0\0\0", 1), 3)
    assert entries == [(pb.AF_BRIDGE, 5, pb.NUD_PERMANENT, "10.99.0.21", "02:42:0a:0a:00:09")]   # seq 4 skipped
    assert (done, err) == (False, 0)
    end = struct.pack("=IHHII", 20, pb.NLMSG_DONE, 2, 3, 0) + b"\0" * 4
    assert pb.dump_entries(end, 3) == ([], True, 0)
    fail = struct.pack("=IHHIIi", 36, pb.NLMSG_ERROR, 0, 3, 0, -1) + b"\0" * 16
    assert pb.dump_entries(fail, 3) == ([], True, 1)


def test_adds_put_the_fdb_entry_first_and_removals_take_it_last() -> None:
    peers = [("10.10.0.2", "02:42:0a:0a:00:02", "10.99.0.21"), ("10.10.0.3", "02:42:0a:0a:00:03", "10.99.0.22")]
    add = list(pb.peer_messages(9, peers, True, 100))
    assert [seq for seq, _, _ in add] == [100, 101, 102, 103]
    assert [what for _, _, what in add] == ["add fdb 02:42:0a:0a:00:02 dst 10.99.0.21", "add neighbour 10.10.0.2",
                                            "add fdb 02:42:0a:0a:00:03 dst 10.99.0.22", "add neighbour 10.10.0.3"]
    assert pb.dump_entries(add[0][1], 100)[0] == [(pb.AF_BRIDGE, 9, pb.NUD_PERMANENT, "10.99.0.21",
                                                   "02:42:0a:0a:00:02")]
    rm = list(pb.peer_messages(9, peers[:1], False, 1))
    assert [what for _, _, what in rm] == ["delete neighbour 10.10.0.2", "delete fdb 02:42:0a:0a:00:02 dst 10.99.0.21"]
    assert struct.unpack_from("=H", rm[0][1], 4)[0] == pb.RTM_DELNEIGH
    assert struct.unpack_from("=H", rm[0][1], 6)[0] == pb.NLM_F_REQUEST | pb.NLM_F_ACK


def test_acks_give_each_sequence_number_its_errno() -> None:
    ok = struct.pack("=IHHIIi", 36, pb.NLMSG_ERROR, 0x100, 5, 0, 0) + b"\0" * 16
    bad = struct.pack("=IHHIIi", 36, pb.NLMSG_ERROR, 0x100, 6, 0, -19) + b"\0" * 16
    assert list(pb.acks(ok + bad)) == [(5, 0), (6, 19)]
    assert list(pb.acks(b"")) == []
