"""runtime.abandon: a start the daemon died in leaves nothing running (issue 14).

A ``kill -9`` of the daemon while the shim is still inside ``runc run`` leaves a
shim and a container on their way up with no init recorded yet (``pid`` not
written): ``is_alive`` says no, and the container came up a moment later with
no one watching it.  Plain processes stand in for the shim and what it starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cove.runtime import process
from cove.runtime.shim import proc_start_time

SHIM = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_a_half_started_container_is_ended_with_its_shim(tmp_path: Path) -> None:
    shim = subprocess.Popen([sys.executable, "-c", SHIM], stdout=subprocess.PIPE)
    assert shim.stdout is not None
    child = int(shim.stdout.readline())
    try:
        (tmp_path / "shim.pid").write_text(f"{shim.pid} {proc_start_time(shim.pid)}\n")
        # the daemon's old check: no init recorded, so "not alive", and nothing was stopped
        assert not process.is_alive(str(tmp_path))
        assert process.abandon(str(tmp_path))
        shim.wait(5)
        deadline = time.monotonic() + 5
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(child), "the process the shim was starting still runs"
    finally:
        for pid in (shim.pid, child):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        shim.wait()


def test_abandon_of_a_container_that_never_started_is_a_no_op(tmp_path: Path) -> None:
    assert not process.abandon(str(tmp_path))
    assert not process.abandon(str(tmp_path / "missing"))
