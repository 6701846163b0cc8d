"""``python -m cove``: the same command line as the ``cove`` script.

The CLI uses it to start the daemon in the background (``python -m cove daemon``).
"""

from __future__ import annotations

from cove.cli.fast import main

raise SystemExit(main())
