"""A stand-in for the kernel at the far end of a pyroute2 socket (no kernel needed).

``monkeypatch.setattr(nlsocket.AsyncNetlinkSocket, "setup_socket", fake_kernel_socket)`` gives
pyroute2 one end of a Unix datagram pair; a thread at the other end acks every request
(``NLMSG_ERROR`` 0) and answers ``RTM_GETLINK`` with link 1 (an ``ifinfomsg``, no attributes)
before its ack, as the kernel does for a ``get`` with ``NLM_F_ACK``.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

RTM_NEWLINK, RTM_GETLINK, NLMSG_ERROR = 16, 18, 2


def fake_kernel_socket(self: Any) -> socket.socket:
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
            if kind == RTM_GETLINK:
                theirs.send(struct.pack("IHHII", 32, RTM_NEWLINK, 0, seq, pid) + struct.pack("BxHiII", 0, 1, 1, 0, 0))
            theirs.send(struct.pack("IHHIIi", 36, NLMSG_ERROR, 0, seq, pid, 0) + req[:16])

    threading.Thread(target=answer, daemon=True).start()
    return ours
