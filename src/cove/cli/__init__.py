"""cove's command-line client: a thin client of the daemon's Docker Engine API.

:mod:`cove.cli.main` holds the click group and entry point; each command family lives
in its own small module, imported only when one of its commands runs.

:func:`env` is here, in the package every CLI module is loaded with, so that the installed
``cove`` launcher's fast path (:mod:`cove.cli.fast`) reads ``COVE_HOST`` and
``_COVE_COMPLETE`` without one more module import (~0.1 ms each on this machine,
``bench/cli_micro.py``).  It reads the environment without ``import os`` (with
``posixpath``, ``stat``, ``_collections_abc``: ~1.5 ms under ``-S``, the launcher's flag):
``posix.environ`` is the environment as the process started; once ``os`` is loaded
(``site`` loads it; a caller may have changed ``os.environ``), ``os.environ`` is asked.
"""

import posix
import sys


def env(name: str) -> "str | None":
    """``os.environ.get(name)``."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)      # type: ignore[no-any-return]
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
