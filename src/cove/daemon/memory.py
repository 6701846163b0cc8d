"""Keep the daemon's resident memory close to what it uses (issue 14: memory flat under churn).

A 10-minute churn soak (``bench/soak.py --kills 0``) showed RSS rising for as long as the churn
ran while Python's own objects stayed the same size: glibc's malloc kept the memory that the
many short-lived threads (one per HTTP connection, the DNS workers, pyroute2's per-namespace
sockets) had freed, spread over one arena per thread (up to 8 per core), and returns a freed
page to the kernel only from the top of a heap.  Four calls to glibc, through ctypes because
nothing in the standard library reaches them:

- ``mallopt(M_ARENA_MAX, 2)`` at start: two arenas, so freed memory is reused by the next
  thread instead of sitting in an arena no running thread uses;
- ``mallopt(M_MMAP_THRESHOLD, 136 KiB)`` at start: a little above glibc's first threshold
  (128 KiB), held.  Left alone, glibc raises it to the size of the largest mmap'd block freed,
  and asyncio reads every netlink datagram into a 256 KiB buffer that is then shrunk to the
  message: those buffers came from the heap, and a small message kept (pyroute2 queued the
  kernel's ACKs, see :func:`cove.kernel.netlink.drop_strays`) left a hole of nearly 256 KiB that
  the next buffer did not fit.  Held, such buffers are mapped and unmapped on their own; in a
  3-minute soak the memory malloc held free went from 7 -> 16 MB to under 1 MB, flat.  Not 128
  KiB itself: libnftables builds every transaction in batch pages of exactly 128 KiB (32 pages),
  which at that threshold were mapped, faulted in and unmapped once per firewall change;
- ``mallopt(M_TRIM_THRESHOLD, 1 MiB)``: setting the threshold above also fixes glibc's trim
  threshold at 128 KiB, so freeing such a page at the top of the heap gave it back to the kernel
  (``brk``) for the next transaction to take again.  The periodic ``malloc_trim`` below still
  returns what stays free.  Both together: an nftables network add (libnftables, ``json_cmd``,
  ``tests/sandbox.sh``, 300 reps, medians, 2026-12-07) 0.75 ms with glibc's defaults, 1.18 ms with
  the 128 KiB threshold held, 0.78 ms with these two;
- ``malloc_trim(0)`` every :data:`TRIM_EVERY` seconds: freed pages in the middle of a heap go
  back to the kernel (``madvise(MADV_DONTNEED)``); it costs about a millisecond here.

All are no-ops where the C library is not glibc.  The numbers are in the closing note and in
``bench/results/soak-*.md``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("cove.memory")

M_ARENA_MAX = -8          # glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1
ARENAS = 2
MMAP_THRESHOLD = 136 * 1024   # held, not raised to the largest block freed; above libnftables' 128 KiB pages
TRIM_THRESHOLD = 1024 * 1024
TRIM_EVERY = 30.0         # seconds


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap malloc's arenas and hold its mmap and trim thresholds (call before the daemon starts its
    threads); False where not glibc."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas)))
    ok = bool(_LIBC.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(TRIM_THRESHOLD))) and ok
    return bool(_LIBC.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(MMAP_THRESHOLD))) and ok


def trim() -> bool:
    """Give malloc's free pages back to the kernel; True when some were released."""
    if _LIBC is None:
        return False
    try:
        return bool(_LIBC.malloc_trim(ctypes.c_size_t(0)))
    except OSError:  # pragma: no cover - a C library without it was refused above
        return False
