"""Test-only fault hook: die like ``kill -9`` at a chosen durable step (issue 14's crash harness).

A daemon started with ``COVE_TEST_CRASH_FILE=PATH`` in its environment checks
for PATH at each durable step (a committed store write, a netlink request that
changes something, a namespace made or removed, a container's shim handed its
spec).  When a harness writes ``N`` there, the file is taken and the Nth step
after that ends the process with ``os._exit(137)``: no ``finally``, no
``atexit``, no flush, exactly what a ``SIGKILL`` at that instant leaves behind.
So a harness can let the daemon start and settle, check it, and then aim at
the 1st, 2nd, ... step of the next operations.  ``COVE_TEST_CRASH_LOG=PATH``
appends each step's label there (to see how many steps an operation takes).
Unset (the default), :func:`reached` returns after one test of a constant.
"""

from __future__ import annotations

import os
import threading

_FILE = os.environ.get("COVE_TEST_CRASH_FILE", "")
_LOG = os.environ.get("COVE_TEST_CRASH_LOG", "")
_ON = bool(_FILE or _LOG)
_lock = threading.Lock()
_count = 0
_at = 0


def reached(label: str) -> None:
    """One durable step is done; the process dies here when it is the chosen one."""
    if not _ON:
        return
    global _count, _at
    with _lock:
        _count += 1
        if _LOG:
            with open(_LOG, "a") as f:
                f.write(f"{_count} {label}\n")
        if _FILE and not _at:
            try:
                with open(_FILE) as f:
                    text = f.read().strip()
                os.unlink(_FILE)
                _at = _count + max(0, int(text or "1") - 1)
            except (OSError, ValueError):
                pass
        if _at and _count >= _at:
            os._exit(137)
