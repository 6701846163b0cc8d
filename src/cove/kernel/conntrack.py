"""Forgetting conntrack entries, as Docker does when an address or a UDP port is released.

Over ctnetlink, in-process, with pyroute2's :class:`~pyroute2.conntrack.Conntrack`:
one socket per address family, opened on first use and kept, used only on the
kernel thread (:data:`cove.kernel.netlink.KERNEL_THREAD`).  Each release is one
dump (see :meth:`ConntrackFlows.forget_flows` for why it is unfiltered) then one
delete per matching entry.

Why not the ``conntrack`` tool any more: two ``conntrack -D`` processes per released
address made a detach cost ~58 ms (bench/README.md, run 2026-11-23-4); the fork and
exec were most of it.

pyroute2 (0.9.7) opens a new asyncio event loop and transport for *each* call of a
:class:`~pyroute2.conntrack.Conntrack` unless the socket's thread-local ``keep_event_loop``
is set (its IPRoute sets it; Conntrack does not), and a socket kept for the daemon's life
then grows by every call: the loop's id in ``status['eids']`` and one ECONNRESET message
queued by the closed transport, never read (issue 14: found with the daemon's memory probe,
:mod:`cove.daemon.memprobe`, ~600 of each in a 3-minute soak).  So :meth:`ConntrackFlows._sock`
sets it, and the socket keeps one loop.  Deletion failures are logged, never raised: teardown goes on.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Any

from .netlink import KERNEL_THREAD

log = logging.getLogger("cove.kernel")

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def _packed(ip: str | None) -> bytes:
    """An address in its binary form (two spellings of one IPv6 address compare equal)."""
    if not ip:
        return b""
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class ConntrackFlows:
    """The two verbs of :class:`cove.kernel.api.Kernel` over ctnetlink (one socket per family)."""

    def __init__(self) -> None:
        self._socks: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _sock(self, family: int) -> Any:       # on the kernel thread only
        sock = self._socks.get(family)
        if sock is None:
            from pyroute2 import Conntrack

            sock = self._socks[family] = Conntrack(nfgen_family=family)
            # keep one event loop and transport for the socket's life, as pyroute2's IPRoute does
            # in its constructor (the flag is per thread: this is the kernel thread, the only user)
            sock.asyncore.local.keep_event_loop = True
        return sock

    def _forget(self, family: int, **filt: Any) -> int:
        from pyroute2 import NetlinkError

        sock = self._sock(family)
        deleted = 0
        for entry in list(sock.dump_entries(**filt)):
            try:
                sock.delete(entry)
                deleted += 1
            except NetlinkError as exc:
                if exc.code != errno.ENOENT:       # gone meanwhile: what we wanted
                    raise
        return deleted

    def _run(self, what: str, work: Any) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - teardown goes on; the flows time out
                log.warning("conntrack: cannot forget %s: %s", what, exc)
                self._close_locked()
        with self._lock:
            KERNEL_THREAD.call(guarded)

    def forget_flows(self, *ips: str) -> None:
        """Delete the entries from (original source) and to (reply source) each address:
        a later container given the same address must not inherit their flows (and their
        NAT decision, made at a flow's first packet).

        One dump of every family (``AF_UNSPEC``) for all the addresses, filtered here:
        the kernel walks its whole hash table (262,144 buckets here, shared by every
        namespace) for each dump, filtered or not: 8.9 ms unfiltered, 11.5 ms with a
        ``CTA_FILTER``, measured in tests/sandbox.sh; so one walk instead of one per
        address and direction.  No walk at all when the namespace tracks nothing
        (``count``, 0.2 ms).
        """
        wanted = {_packed(ip) for ip in ips if ip}
        if wanted:
            self._run(", ".join(ip for ip in ips if ip), lambda: self._forget_addresses(wanted))

    def _forget_addresses(self, wanted: set[bytes]) -> None:
        from pyroute2 import NetlinkError

        every = self._sock(socket.AF_UNSPEC)
        if not every.count():
            return
        doomed = [entry for entry in list(every.dump_entries())
                  if _packed(entry.tuple_orig.saddr) in wanted
                  or _packed(entry.tuple_reply.saddr) in wanted]
        for entry in doomed:
            try:
                self._sock(entry.tuple_orig.family).delete(entry)
            except NetlinkError as exc:
                if exc.code != errno.ENOENT:       # gone meanwhile: what we wanted
                    raise

    def forget_udp_port(self, port: int, family: str) -> None:
        """Delete the UDP entries to host port ``port`` (``family``: ipv4 or ipv6)."""
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

        fam = FAMILIES[family]
        self._run(f"udp/{port}", lambda: self._forget(
            fam, tuple_orig=NFCTAttrTuple(family=fam, proto=socket.IPPROTO_UDP, dport=port)))

    def _close_locked(self) -> None:
        socks, self._socks = list(self._socks.values()), {}
        for sock in socks:
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - a broken socket is dropped either way
                pass

    def close(self) -> None:
        with self._lock:
            KERNEL_THREAD.call(self._close_locked)
