"""Test-only memory probe (issue 14): what the daemon holds, written to a file while it runs.

A daemon started with ``COVE_TEST_MEMORY_FILE=PATH`` starts :mod:`tracemalloc` (``COVE_TEST_MEMORY_FRAMES``
frames per allocation, default 8; 0: no tracing, only the counts below) and, on ``SIGUSR2`` and every ``COVE_TEST_MEMORY_EVERY`` seconds
(default 0: only on the signal), appends one report to PATH:

- RSS and open descriptors (from ``/proc/self``), tracemalloc's current and peak traced size
  (what Python's live objects hold; RSS well above it and growing while it holds still is the
  allocator keeping freed memory, not a leak of objects);
- glibc's own count (``mallinfo2``: in use, free but kept, mmap'd) and resident kB by kind of
  mapping (``/proc/self/smaps``: brk heap, anonymous, file);
- Python's small-object allocator (``sys._debugmallocstats``: arenas, used, empty pools);
- threads by name, objects by type (:func:`gc.get_objects`, the 25 most numerous);
- the top allocation sites by line, and their change since the first report.

and dumps the snapshot itself to ``PATH.<n>.snap`` (:meth:`tracemalloc.Snapshot.load` reads it back,
to compare any two by traceback).  The daemon reads the variables in :mod:`cove.daemon.main` (it
may be started with ``python -I``, which ignores ``PYTHON*`` variables such as PYTHONTRACEMALLOC).
Unset (the default), nothing here runs.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import os
import signal
import threading
import time
import tracemalloc
from typing import TextIO

FILE_VAR, EVERY_VAR, FRAMES_VAR = "COVE_TEST_MEMORY_FILE", "COVE_TEST_MEMORY_EVERY", "COVE_TEST_MEMORY_FRAMES"


def _proc_status_kb(key: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def smaps_kb() -> dict[str, int]:
    """Resident kB by kind of mapping: ``heap`` (brk), ``anon`` (malloc arenas, mmap'd blocks,
    thread stacks), ``file`` (code, libraries), ``other`` ([stack], [vdso]...)."""
    out = {"heap": 0, "anon": 0, "file": 0, "other": 0}
    kind = "other"
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split(None, 6)
                if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    name = head[5].strip() if len(head) > 5 else ""
                    kind = ("heap" if name == "[heap]" else "anon" if not name
                            else "file" if name.startswith("/") else "other")
                elif line.startswith("Rss:"):
                    out[kind] += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo_kb() -> dict[str, int]:
    """glibc's view (all arenas): ``used`` by live blocks, ``free`` held in arenas (freed, not returned),
    ``mmap`` in blocks mapped on their own; empty where there is no ``mallinfo2`` (not glibc >= 2.33)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    mi = fn()
    return {"used": mi.uordblks // 1024, "free": mi.fordblks // 1024, "mmap": mi.hblkhd // 1024,
            "arena": mi.arena // 1024}


def obmalloc_kb() -> dict[str, int]:
    """Python's small-object allocator (``sys._debugmallocstats``, which writes to the C stderr: it is
    pointed at a file for the call): ``arenas`` mapped (1 MiB each), ``used`` in blocks, ``free_pools``
    (empty pools inside arenas that a live block elsewhere keeps mapped)."""
    import sys
    import tempfile

    if not hasattr(sys, "_debugmallocstats"):
        return {}
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().replace(",", "")
        if not value.isdigit():
            continue
        if key == "# arenas allocated current":
            out["arenas"] = int(value)
        elif key == "# bytes in allocated blocks":
            out["used"] = int(value) // 1024
        elif key.endswith("unused pools * 16384 bytes"):
            out["free_pools"] = int(value) // 1024
        elif key == "# bytes in available blocks":
            out["free_blocks"] = int(value) // 1024
    return out


def object_counts(top: int = 25) -> list[tuple[str, int]]:
    """The most numerous live objects tracked by the collector, by type name (module-qualified)."""
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        t = type(obj)
        counts[f"{t.__module__}.{t.__qualname__}"] += 1
    return counts.most_common(top)


class Probe:
    """Writes reports to ``path``; :meth:`report` is safe from any thread (one at a time)."""

    def __init__(self, path: str, frames: int = 8) -> None:
        self.path = path
        self.frames = frames
        self.n = 0
        self._first: tracemalloc.Snapshot | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.frames > 0 and not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)

    def report(self) -> None:
        with self._lock:
            gc.collect()
            self.n += 1
            snap = None
            if tracemalloc.is_tracing():
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                snap.dump(f"{self.path}.{self.n}.snap")
            with open(self.path, "a") as f:
                self._write(f, snap)
            if self._first is None:
                self._first = snap

    def _write(self, f: TextIO, snap: tracemalloc.Snapshot | None) -> None:
        cur, peak = tracemalloc.get_traced_memory()
        f.write(f"== report {self.n} at {time.strftime('%H:%M:%S')}: rss {_proc_status_kb('VmRSS')} kB, "
                f"fds {_fds()}, traced {cur // 1024} kB (peak {peak // 1024} kB)\n")
        f.write(f"malloc {mallinfo_kb()}, resident by mapping {smaps_kb()}, "
                f"obmalloc {obmalloc_kb()}\n")
        names = collections.Counter(t.name.rstrip("0123456789_-") for t in threading.enumerate())
        f.write(f"threads {threading.active_count()}: {dict(names)}\n")
        f.write("objects: " + ", ".join(f"{k} {v}" for k, v in object_counts()) + "\n")
        if snap is None:
            f.write("\n")
            return
        f.write("top lines:\n")
        for st in snap.statistics("lineno")[:25]:
            f.write(f"  {st.size // 1024:7d} kB {st.count:7d}  {st.traceback[0]}\n")
        if self._first is not None:
            f.write("grown since report 1 (lines):\n")
            for d in snap.compare_to(self._first, "lineno")[:25]:
                f.write(f"  {d.size_diff // 1024:+7d} kB {d.count_diff:+7d}  {d.traceback[0]}\n")
        f.write("\n")


def from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> Probe | None:
    """Start a probe when ``COVE_TEST_MEMORY_FILE`` is set: tracing now, reports on SIGUSR2 and
    (``COVE_TEST_MEMORY_EVERY`` > 0) from a timer thread.  Call from the main thread."""
    path = environ.get(FILE_VAR, "")
    if not path:
        return None
    probe = Probe(path, int(environ.get(FRAMES_VAR, "") or 8))
    probe.start()

    def on_usr2(signum: int, frame: object) -> None:
        threading.Thread(target=probe.report, name="cove-memprobe", daemon=True).start()

    signal.signal(signal.SIGUSR2, on_usr2)
    every = float(environ.get(EVERY_VAR, "0") or 0)
    if every > 0:
        def loop() -> None:
            while True:
                time.sleep(every)
                probe.report()

        threading.Thread(target=loop, name="cove-memprobe-timer", daemon=True).start()
    return probe
