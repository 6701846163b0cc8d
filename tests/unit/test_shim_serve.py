"""The shim's supervision loop (cove.runtime.shim._serve) when the container's log cannot be written.

A disk that fills up (ENOSPC; EDQUOT, EIO alike) under a container's log is no reason to stop
supervising it: Docker's json-file driver logs the error, drops the output and the container
runs on, and its real exit status is recorded when it really exits.  Here the container is a
real child process writing to real pipes, and its ``stdout.log`` is a symlink to ``/dev/full``,
whose every write fails with ENOSPC as a full disk's does.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cove.runtime import logs, shim

#: 1,000,000 bytes, far more than a pipe holds (64 KiB): the container blocks for good unless
#: the shim keeps draining its stdout; then a line on stderr, and a status of its own
CONTAINER = "yes | head -c 1000000; echo still logging >&2; exit 3"


def test_a_full_disk_under_the_log_neither_ends_supervision_nor_changes_the_exit_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "stdout.log").symlink_to("/dev/full")
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    proc = subprocess.Popen(["sh", "-c", CONTAINER], stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    out = logs.LogWriter(str(tmp_path / "stdout.log"), logs.DEFAULT_MAX_SIZE, logs.DEFAULT_MAX_FILE)
    err = logs.LogWriter(str(tmp_path / "stderr.log"), logs.DEFAULT_MAX_SIZE, logs.DEFAULT_MAX_FILE)
    try:
        code = shim._serve(proc.pid, {out_r: out, err_r: err}, None, None)
    finally:
        if proc.poll() is None:                  # the loop gave up: the container blocks on its full pipe
            proc.kill()
            proc.wait()
        os.close(out_r)
        os.close(err_r)
    assert code == 3                             # the container's own status, not the shim's 127
    assert (tmp_path / "stderr.log").read_bytes() == b"still logging\n"     # the other log kept going
    assert out.dropped_total == 1_000_000
    said = capsys.readouterr().err.splitlines()
    path = tmp_path / "stdout.log"
    assert said == [
        f"cove shim: cannot write {path}: No space left on device; its output is dropped until it can be written",
        f"cove shim: 1000000 bytes of output dropped from {path} (No space left on device)",
    ]                                            # twice in all, not once per write


def test_a_log_that_fails_then_recovers_says_how_much_was_dropped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The failures end when a write succeeds again (space was freed): the count is said then."""
    w = logs.LogWriter(str(tmp_path / "stdout.log"), 0, 1)
    w.write(b"one\n")
    good = w.fd
    w.fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)     # the disk fills up
    w.write(b"lost\n")
    w.write(b"lost too\n")
    os.close(w.fd)
    w.fd = good                                  # space again
    w.write(b"two\n")
    w.close()
    assert (tmp_path / "stdout.log").read_bytes() == b"one\ntwo\n"
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 2 and "cannot write" in said[0] and said[1].startswith("cove shim: 14 bytes of output dropped")
    assert (w.dropped, w.dropped_total, w.failing) == (0, 14, None)
