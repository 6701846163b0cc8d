"""Shared test configuration: where kernel tests may run, what a skip means, and per-stage counts.

Where kernel tests run
    Integration tests touch the kernel.  They only ever run inside the throwaway
    namespace made by ``tests/sandbox.sh`` or inside a guest kernel (``tests/kernel/``,
    formerly ``tests/uml/``); the guard below refuses to run them in the machine's own
    network namespace, whatever the command line says.  A guest is recognised by the
    ``cove_guest=<backend>`` marker on its kernel command line (``/proc/cmdline``), which
    only the harness's guest kernels carry.

Strict mode: no silent skips
    With ``CI`` set (any non-empty value) or ``COVE_STRICT=1`` (``make test`` sets it), a
    test that would be skipped FAILS instead, whatever made it skip (the guard above, a
    ``skipif``, a ``pytest.skip`` in a fixture, an ``importorskip``), unless the skip is on
    :data:`ALLOWED_SKIPS` below, with its reason.  So a broken sandbox detection, a missing
    tool or a kernel without a feature turns CI red instead of green-with-nothing-run.
    Outside strict mode (a developer's ``pytest`` run) skips stay skips.

Per-stage counts
    Every run ends with one line ``cove tests: N ran (...)``.  With ``COVE_STAGE=<name>`` and
    ``COVE_MIN_TESTS=<n>`` (the Makefile sets both), the run fails when fewer than ``n`` tests
    actually ran (a call phase executed: passed, failed, xfailed or xpassed; skips do not count).
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass

import pytest

GUEST_TEST_DIRS = ("/tests/kernel/", "/tests/uml/")     # tests/uml while the harness is being renamed


def strict() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("COVE_STRICT") == "1"


@dataclass(frozen=True)
class AllowedSkip:
    nodeids: str        # an fnmatch pattern on the test's node id
    reason_prefix: str  # the skip's reason must start with this
    why: str            # why skipping it in CI is acceptable


#: The only skips strict mode accepts.  Keep it short; every entry says why.
ALLOWED_SKIPS: tuple[AllowedSkip, ...] = (
    # Guest-only tests collected by a host run (e.g. a plain `pytest` over tests/): they run in
    # the kernel stage (`make test-kernel`), inside the guest, whose own run counts them and
    # fails if none ran (COVE_MIN_TESTS), so a guest whose detection broke cannot pass there.
    AllowedSkip("tests/kernel/*", "needs a guest kernel", "runs in the guest stage, which counts its own"),
    AllowedSkip("tests/uml/*", "needs a guest kernel", "runs in the guest stage, which counts its own"),
)


def allowed_skip(nodeid: str, reason: str) -> AllowedSkip | None:
    for entry in ALLOWED_SKIPS:
        if fnmatch.fnmatchcase(nodeid, entry.nodeids) and reason.startswith(entry.reason_prefix):
            return entry
    return None


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


def guest_backend(cmdline: str | None = None) -> str | None:
    """The guest backend named by ``cove_guest=<backend>`` on the kernel command line (``uml``,
    ``qemu``), or None on a real machine."""
    if cmdline is None:
        try:
            with open("/proc/cmdline") as f:
                cmdline = f.read()
        except OSError:
            return None
    for word in cmdline.split():
        if word.startswith("cove_guest="):
            return word.partition("=")[2] or None
    return None


def in_guest() -> bool:
    """True inside a throwaway guest kernel of the kernel harness (a whole kernel of its own)."""
    return guest_backend() is not None


in_uml = in_guest      # the old name


def is_guest_test(item: pytest.Item) -> bool:
    # markers, not keywords: a keyword "kernel" also matches a checkout in a directory named kernel
    path = str(item.path).replace(os.sep, "/")
    return (any(d in path for d in GUEST_TEST_DIRS) or item.get_closest_marker("kernel") is not None
            or item.get_closest_marker("uml") is not None)


def is_kernel_test(item: pytest.Item) -> bool:
    return (is_guest_test(item) or item.get_closest_marker("integration") is not None
            or "/tests/integration/" in str(item.path).replace(os.sep, "/"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel: needs the guest kernel of the kernel harness (tests/kernel)")
    config.addinivalue_line("markers", "uml: old name of the `kernel` marker")


def kernel_guard() -> str | None:
    """Why kernel tests may not run here, or None when they may."""
    if os.geteuid() != 0:
        return "integration tests need root"
    if in_guest() or (in_sandbox_netns() and os.environ.get("COVE_SANDBOX") == "1"):
        return None
    return "integration tests run only inside tests/sandbox.sh or a guest kernel (never in the host's namespace)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    guard = kernel_guard()
    skip = pytest.mark.skip(reason=guard or "")
    skip_guest = pytest.mark.skip(reason="needs a guest kernel (make test-kernel; cove_guest= not in /proc/cmdline)")
    for item in items:
        if is_guest_test(item) and not in_guest():
            item.add_marker(skip_guest)
        elif guard is not None and is_kernel_test(item):
            item.add_marker(skip)


def passed(request: pytest.FixtureRequest) -> bool:
    """In a fixture's teardown: whether the test's own call passed (keep its logs otherwise)."""
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.passed


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)      # a fixture's teardown keeps its logs when the test failed
    if not (report.skipped and strict()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report.longrepr)
    if allowed_skip(item.nodeid, reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"strict mode (CI / COVE_STRICT=1): this test would have been skipped: {reason}\n"
                       "Fix the cause, or add it to ALLOWED_SKIPS in tests/conftest.py with the reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and strict():
        reason = _skip_reason(report.longrepr)
        if not allowed_skip(report.nodeid, reason):
            report.outcome = "failed"
            report.longrepr = f"strict mode (CI / COVE_STRICT=1): this module would have been skipped: {reason}"


#: what the tests of this run did (for the count line)
_COUNTS: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # one word per test: its call phase if it had one, else how its setup ended
    counts = _COUNTS
    if report.when == "call":
        counts["ran"] += 1
        counts["xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome] += 1
    elif report.when == "setup" and not report.passed:
        counts["skipped" if report.skipped else "error"] += 1


def stage_summary(counts: Counter[str]) -> tuple[str, bool]:
    """The count line, and whether the stage ran too few tests."""
    stage = os.environ.get("COVE_STAGE", "")
    minimum = int(os.environ.get("COVE_MIN_TESTS", "1" if stage else "0") or 0)
    parts = ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "xfailed", "skipped", "error") if counts[k])
    line = f"cove tests{' [' + stage + ']' if stage else ''}: {counts['ran']} ran ({parts or 'nothing'})"
    too_few = counts["ran"] < minimum
    if too_few:
        line += f"; FAILED: at least {minimum} must run in this stage (COVE_MIN_TESTS)"
    return line, too_few


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _, too_few = stage_summary(_COUNTS)
    if too_few and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    line, too_few = stage_summary(_COUNTS)
    terminalreporter.write_line(line, red=too_few, bold=True)
