"""The conntrack socket kept for the daemon's life does not grow with each call (issue 14).

pyroute2's Conntrack, unless told to keep its event loop, opens a new asyncio loop and
transport per call and leaves a trace of each on the long-lived socket.  No kernel here:
the netlink socket is one end of a Unix datagram pair whose other end acks every request.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from pyroute2.netlink import nlsocket

from cove.kernel.conntrack import ConntrackFlows
from cove.kernel.netlink import KERNEL_THREAD

from .fakenetlink import fake_kernel_socket


def test_many_calls_use_one_event_loop_and_queue_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlsocket.AsyncNetlinkSocket, "setup_socket", fake_kernel_socket)
    loops = 0
    new_event_loop = asyncio.new_event_loop

    def counting() -> asyncio.AbstractEventLoop:
        nonlocal loops
        loops += 1
        return new_event_loop()

    monkeypatch.setattr(asyncio, "new_event_loop", counting)
    flows = ConntrackFlows()
    try:
        for i in range(200):
            flows.forget_flows(f"10.0.{i // 250}.{i % 250 + 1}")     # one count() each: the table is empty
        sock = flows._socks[socket.AF_UNSPEC]
        queued = KERNEL_THREAD.call(lambda: sum(q.qsize() for q in sock.asyncore.local.msg_queue.queues.values()))
        assert loops <= 1                           # without keep_event_loop: 200
        assert len(sock.asyncore.status["eids"]) <= 1
        assert queued == 0                          # without: 200 ECONNRESET messages nobody reads
    finally:
        flows.close()
