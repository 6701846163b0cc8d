"""The process's environment without ``import os`` (for the CLI's fast path and its client).

``os`` (with ``posixpath``, ``stat``, ``_collections_abc``: ~1.5 ms under ``-S``, the
launcher's flag) is not imported on the fast path.  ``posix.environ`` is the environment as
the process started: once ``os`` is loaded (``site`` loads it; a caller may have changed
``os.environ``), ``os.environ`` is asked.
"""

from __future__ import annotations

import posix
import sys


def env(name: str) -> str | None:
    """``os.environ.get(name)``."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)      # type: ignore[no-any-return]
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
