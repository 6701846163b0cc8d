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


def in_guest() -> bool:
    """True inside a guest kernel of tests/kernel/run.sh (a whole throwaway kernel): its command
    line carries ``cove_guest=uml`` or ``cove_guest=qemu``."""
    try:
        with open("/proc/cmdline") as f:
            words = f.read().split()
    except OSError:
        return False
    return "cove_guest=uml" in words or "cove_guest=qemu" in words


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel: needs a guest kernel of tests/kernel/run.sh")
    config.addinivalue_line("markers", "uml: alias of the kernel marker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    guard = None
    if os.geteuid() != 0:
        guard = "integration tests need root"
    elif not (in_guest() or (in_sandbox_netns() and os.environ.get("COVE_SANDBOX") == "1")):
        guard = "integration tests run only inside tests/sandbox.sh or a guest kernel (never in the host's namespace)"
    skip = pytest.mark.skip(reason=guard or "")
    skip_uml = pytest.mark.skip(reason="needs a guest kernel (make test-kernel)")
    for item in items:
        # markers, not keywords: a keyword "kernel" also matches a checkout in a directory named kernel
        is_uml = ("/tests/kernel/" in str(item.fspath) or item.get_closest_marker("kernel") is not None
                  or item.get_closest_marker("uml") is not None)
        if is_uml and not in_guest():
            item.add_marker(skip_uml)
        elif guard is not None and (is_uml or "integration" in item.keywords or "/integration/" in str(item.fspath)):
            item.add_marker(skip)
