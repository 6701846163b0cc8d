"""The daemon-long netlink socket does not keep the kernel's ACK of every lookup (issue 14).

pyroute2 reads the ACK that follows a ``get`` answer during the next request, finds its tag
gone and queues it under tag 0, which nothing reads on a socket that only asks.  No kernel
here: the socket is one end of a Unix datagram pair whose other end answers each request with
an (empty) RTM_NEWLINK and then an ACK, as the kernel does.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink import nlsocket

from cove.kernel.netlink import KERNEL_THREAD, Netlink

RTM_NEWLINK, NLMSG_ERROR = 16, 2


def _fake_kernel_socket(self: Any) -> socket.socket:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    def answer() -> None:
        while True:
            try:
                req = theirs.recv(65536)
            except OSError:
                return
            if len(req) < 16:
                return
            _, kind, _, seq, pid = struct.unpack_from("IHHII", req)
            if kind == 18:      # RTM_GETLINK: the link (an ifinfomsg, no attributes), then the ACK
                theirs.send(struct.pack("IHHII", 32, RTM_NEWLINK, 0, seq, pid) + struct.pack("BxHiII", 0, 1, 1, 0, 0))
            theirs.send(struct.pack("IHHIIi", 36, NLMSG_ERROR, 0, seq, pid, 0) + req[:16])

    threading.Thread(target=answer, daemon=True).start()
    return ours


def test_lookups_leave_nothing_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlsocket.AsyncNetlinkSocket, "setup_socket", _fake_kernel_socket)
    nl = Netlink(KERNEL_THREAD.call(IPRoute), None)
    try:
        for _ in range(100):
            msgs = nl._do("look up link 1", lambda ipr: ipr.link("get", index=1))
            assert msgs and msgs[0]["index"] == 1
        queued = KERNEL_THREAD.call(
            lambda: sum(q.qsize() for q in nl._ipr.asyncore.local.msg_queue.queues.values()))
        assert queued <= 1           # without drop_strays: 99, one ACK per lookup but the last
    finally:
        nl.close()
