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


def in_uml() -> bool:
    """True inside the User-Mode Linux guest of tests/uml/run.sh: a whole throwaway kernel."""
    try:
        with open("/proc/cpuinfo") as f:
            return os.environ.get("COVE_UML") == "1" and "User Mode Linux" in f.read()
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "uml: needs the User-Mode Linux kernel of tests/uml/run.sh")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    guard = None
    if os.geteuid() != 0:
        guard = "integration tests need root"
    elif not (in_uml() or (in_sandbox_netns() and os.environ.get("COVE_SANDBOX") == "1")):
        guard = "integration tests run only inside tests/sandbox.sh or UML (never in the host's namespace)"
    skip = pytest.mark.skip(reason=guard or "")
    skip_uml = pytest.mark.skip(reason="needs the User-Mode Linux kernel (make test-uml)")
    for item in items:
        is_uml = "/uml/" in str(item.fspath) or "uml" in item.keywords
        if is_uml and not in_uml():
            item.add_marker(skip_uml)
        elif guard is not None and (is_uml or "integration" in item.keywords or "/integration/" in str(item.fspath)):
            item.add_marker(skip)
