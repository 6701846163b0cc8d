"""Shared test configuration.

Integration tests touch the kernel.  They only ever run inside the throwaway
namespace made by ``tests/sandbox.sh``; the guard below refuses to run them in the
machine's own network namespace, whatever the command line says.
"""

from __future__ import annotations

import os

import pytest


def in_sandbox_netns() -> bool:
    """True when this process is not in the network namespace that ran tests/sandbox.sh
    (nor in PID 1's, where that can be read)."""
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False
    outer = os.environ.get("COVE_OUTER_NETNS", "")
    if not outer.isdigit() or int(outer) == mine:
        return False
    try:
        return os.stat("/proc/1/ns/net").st_ino != mine
    except OSError:
        return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    guard = None
    if os.geteuid() != 0:
        guard = "integration tests need root"
    elif not (in_sandbox_netns() and os.environ.get("COVE_SANDBOX") == "1"):
        guard = "integration tests run only inside tests/sandbox.sh (never in the host's namespace)"
    if guard is None:
        return
    skip = pytest.mark.skip(reason=guard)
    for item in items:
        if "integration" in item.keywords or "/integration/" in str(item.fspath):
            item.add_marker(skip)
