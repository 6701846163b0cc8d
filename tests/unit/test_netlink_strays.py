"""The daemon-long netlink socket does not keep the kernel's ACK of every lookup (issue 14).

pyroute2 reads the ACK that follows a ``get`` answer during the next request, finds its tag
gone and queues it under tag 0, which nothing reads on a socket that only asks.  No kernel
here: the socket is one end of a Unix datagram pair whose other end answers each request with
an (empty) RTM_NEWLINK and then an ACK, as the kernel does.
"""

from __future__ import annotations

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink import nlsocket

from cove.kernel.netlink import KERNEL_THREAD, Netlink

from .fakenetlink import fake_kernel_socket


def test_lookups_leave_nothing_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlsocket.AsyncNetlinkSocket, "setup_socket", fake_kernel_socket)
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
