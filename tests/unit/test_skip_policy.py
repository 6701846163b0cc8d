"""The test suite's own policy (tests/conftest.py): in strict mode a skip fails unless allow-listed,
kernel tests never run outside their sandbox, and a stage that ran too few tests fails.

Each case runs a real pytest in a scratch tree that uses a copy of tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import guest_backend

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = {
    "unit/test_a.py": """
import pytest
def test_runs(): pass
@pytest.mark.skipif(True, reason="no frobnicator here")
def test_skipped(): pass
""",
    "integration/test_b.py": """
import os
import pytest
pytestmark = pytest.mark.integration
def test_touches_kernel():
    open(os.environ["MARK"], "w").write("ran on the host")
""",
    "kernel/test_c.py": """
def test_in_guest(): pass
""",
}


def run(tmp_path: Path, *paths: str, **env: str) -> tuple[int, str]:
    root = tmp_path / "tree"
    if not root.exists():
        (root / "tests").mkdir(parents=True)
        shutil.copy(CONFTEST, root / "tests" / "conftest.py")
        for name, text in TESTS.items():
            (root / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "tests" / name).write_text(text)
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CI", "COVE_STRICT", "COVE_STAGE", "COVE_MIN_TESTS", "COVE_SANDBOX", "COVE_OUTER_NETNS")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                        *(f"tests/{p}" for p in paths)],
                       cwd=root, capture_output=True, text=True,
                       env={**clean, "MARK": str(tmp_path / "ran"), **env}, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_skips_pass_outside_strict_mode(tmp_path: Path) -> None:
    rc, out = run(tmp_path, "unit")
    assert rc == 0 and "cove tests: 1 ran (1 passed, 1 skipped)" in out, out


@pytest.mark.parametrize("env", [{"COVE_STRICT": "1"}, {"CI": "true"}])
def test_a_skip_fails_in_strict_mode(tmp_path: Path, env: dict[str, str]) -> None:
    rc, out = run(tmp_path, "unit", **env)
    assert rc == 1 and "would have been skipped: no frobnicator here" in out, out


def test_kernel_tests_outside_the_sandbox_fail_in_strict_mode_and_never_run(tmp_path: Path) -> None:
    # this process is not in tests/sandbox.sh's namespace (the unit stage runs on the host)
    rc, out = run(tmp_path, "integration", COVE_STRICT="1")
    assert rc == 1 and "would have been skipped: integration tests" in out, out
    assert not (tmp_path / "ran").exists(), "a kernel test ran in the host's namespace"
    # a forged COVE_SANDBOX=1 does not fool the guard: the namespace is checked
    rc, out = run(tmp_path, "integration", COVE_STRICT="1", COVE_SANDBOX="1",
                  COVE_OUTER_NETNS=str(os.stat("/proc/self/ns/net").st_ino))
    assert rc == 1 and not (tmp_path / "ran").exists(), out


def test_guest_tests_on_a_host_are_allow_listed_but_count_nothing(tmp_path: Path) -> None:
    rc, out = run(tmp_path, "kernel", COVE_STRICT="1")
    assert rc == 0 and "0 ran (1 skipped)" in out, out
    # ... so the guest stage, which must run some, fails
    rc, out = run(tmp_path, "kernel", COVE_STRICT="1", COVE_STAGE="kernel", COVE_MIN_TESTS="1")
    assert rc == 1 and "at least 1 must run in this stage" in out, out


def test_a_stage_with_too_few_tests_fails(tmp_path: Path) -> None:
    rc, out = run(tmp_path, "unit", COVE_STAGE="unit", COVE_MIN_TESTS="2")
    assert rc == 1 and "cove tests [unit]: 1 ran" in out, out
    rc, out = run(tmp_path, "unit", COVE_STAGE="unit", COVE_MIN_TESTS="1")
    assert rc == 0, out


def test_the_guest_is_recognised_by_its_kernel_command_line() -> None:
    assert guest_backend("console=ttyS0 cove_guest=qemu root=/dev/root") == "qemu"
    assert guest_backend("ubd0=x cove_guest=uml") == "uml"
    assert guest_backend("BOOT_IMAGE=/vmlinuz root=UUID=1 ro quiet") is None
    assert guest_backend("xcove_guest=qemu") is None
