"""Test-only fault hook: die like ``kill -9`` at the Nth durable step (issue 14's crash harness).

With ``COVE_TEST_CRASH_AT=N`` in the daemon's environment, the Nth call of
:func:`reached` (counted over the whole process: every completed store write,
every completed netlink request, and the moment a container's shim has been
handed its spec) ends the process with ``os._exit(137)``: no ``finally``, no
``atexit``, no flush, exactly what a ``SIGKILL`` at that instant leaves behind.
Unset (the default) it is one integer comparison.  ``COVE_TEST_CRASH_LOG=PATH``
appends each counted step's label to PATH, so a harness can see how many steps
one operation takes and aim at every one of them.
"""

from __future__ import annotations

import os
import threading

_AT = int(os.environ.get("COVE_TEST_CRASH_AT", "0") or 0)
_LOG = os.environ.get("COVE_TEST_CRASH_LOG", "")
_lock = threading.Lock()
_count = 0


def enabled() -> bool:
    return bool(_AT or _LOG)


def reached(label: str) -> None:
    """One durable step is done; the process dies here when it is the chosen one."""
    if not (_AT or _LOG):
        return
    global _count
    with _lock:
        _count += 1
        if _LOG:
            with open(_LOG, "a") as f:
                f.write(f"{_count} {label}\n")
        if _count == _AT:
            os._exit(137)
