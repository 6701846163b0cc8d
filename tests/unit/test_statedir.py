"""StateDir: what a container's state dir says, and signals only to the process it recorded.

Plain child processes stand in for a container's init and shim (no namespaces, no kernel state).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime import process
from cove.runtime.shim import proc_start_time
from cove.runtime.statedir import StateDir


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def _record(d: Path, name: str, pid: int, started: str) -> StateDir:
    (d / name).write_text(f"{pid} {started}\n")
    return StateDir(str(d))


def test_recorded_init_is_alive_and_killed_by_kill(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    sd = _record(tmp_path, "pid", child.pid, proc_start_time(child.pid))
    assert sd.pid() == child.pid and sd.is_alive()
    assert sd.kill(signal.SIGKILL)
    assert child.wait(5) == -signal.SIGKILL


def test_a_recycled_pid_is_not_the_container(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    """Same PID, another start time: not alive, and a signal never reaches that process."""
    sd = _record(tmp_path, "pid", child.pid, str(int(proc_start_time(child.pid)) + 1))
    assert not sd.is_alive()
    assert not sd.kill(signal.SIGKILL)
    assert child.poll() is None


def test_stop_kills_what_ignores_sigterm_and_reports_137(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                          "print('ready', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        sd = _record(tmp_path, "pid", p.pid, proc_start_time(p.pid))
        killed: list[bool] = []
        assert sd.stop(timeout=0.2, on_kill=lambda: killed.append(True)) == 137
        assert killed == [True]
        assert p.wait(5) == -signal.SIGKILL
    finally:
        p.kill()
        p.wait()


def test_exit_code_and_missing_files(tmp_path: Path) -> None:
    sd = StateDir(str(tmp_path))
    assert sd.pid() is None and sd.shim_pid() is None and sd.exit_code() is None and not sd.is_alive()
    assert not sd.kill(signal.SIGTERM)
    assert sd.stop(timeout=0) == 137                     # nothing ran, nothing recorded
    (tmp_path / "exit").write_text("3\n")
    assert sd.exit_code() == 3 and sd.stop(timeout=0) == 3
    (tmp_path / "exit").write_text("garbage")
    assert sd.exit_code() is None
    (tmp_path / "shim.pid").write_text("not a pid")
    assert sd.shim_pid() is None


def test_the_runtime_verbs_stay_importable_from_process() -> None:
    """The engine and the other branches use ``cove.runtime.process``; the split keeps its names."""
    for name in ("start", "stop", "kill", "exit_code", "is_alive", "read_pid", "shim_pid", "cleanup", "ExitWatcher",
                 "ZYGOTE", "exec_process", "ExecHandle", "resize_container_tty", "set_winsize", "follow_logs",
                 "StateDir"):
        assert hasattr(process, name), name


def test_wait_gone_returns_when_the_init_ends(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    try:
        _record(tmp_path, "pid", p.pid, proc_start_time(p.pid))
        assert process.wait_gone(str(tmp_path), 30)
        assert not process.is_alive(str(tmp_path))
    finally:
        p.kill()
        p.wait()


def test_cleanup_waits_for_a_shim_that_recorded_the_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rm -f cleans up as soon as the init is dead, while its shim runs `runc delete`: the cleanup
    waits for the shim instead of racing it with a second `runc delete` (issue 17)."""
    from cove.runtime import supervise

    shim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        sd = _record(tmp_path, "shim.pid", shim.pid, proc_start_time(shim.pid))
        (tmp_path / "exit").write_text("137\n")
        shim_ran: list[bool] = []
        monkeypatch.setattr(supervise, "_runc_delete", lambda state_dir, cid=None: shim_ran.append(sd.is_alive("shim.pid")))
        supervise.cleanup(str(tmp_path))
        assert shim_ran == [False]
        assert not tmp_path.exists()
    finally:
        shim.kill()
        shim.wait()
