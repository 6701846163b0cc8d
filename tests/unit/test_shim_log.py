"""The shim's stdout/stderr: a memfd, kept in the data dir's ``shim.log`` only when the shim says something."""

from __future__ import annotations

import os
from pathlib import Path

from cove.runtime.shim import ShimLog


def test_shim_log_is_made_only_when_something_was_said(tmp_path: Path) -> None:
    fd = os.memfd_create("cove-shim-log", os.MFD_CLOEXEC)
    try:
        said = ShimLog(fd)
        said.keep(str(tmp_path))
        assert not (tmp_path / "shim.log").exists()
        os.write(fd, b"cove shim: one\n")
        assert said.said() == b"cove shim: one\n"
        said.keep(str(tmp_path))
        said.keep(str(tmp_path))                 # nothing new: nothing appended
        os.write(fd, b"two\n")
        said.keep(str(tmp_path))
        assert (tmp_path / "shim.log").read_bytes() == b"cove shim: one\ntwo\n"
        assert (tmp_path / "shim.log").stat().st_mode & 0o777 == 0o600
    finally:
        os.close(fd)


def test_a_stderr_that_is_no_memfd_is_left_alone(tmp_path: Path) -> None:
    """A shim run by hand writes to its own stderr; nothing is copied anywhere."""
    with open(tmp_path / "own.txt", "wb") as f:
        f.write(b"said\n")
        f.flush()
        ShimLog(f.fileno()).keep(str(tmp_path))
    assert not (tmp_path / "shim.log").exists()


def test_what_a_shim_that_never_answered_said_is_kept_and_shown(tmp_path: Path) -> None:
    """The daemon's side (supervise.start): no answer on the status pipe, the shim's words in the error and in shim.log."""
    from cove.runtime import supervise

    said = ShimLog(os.memfd_create("cove-shim-log", os.MFD_CLOEXEC))
    r, w = os.pipe()
    try:
        supervise._spawn_interpreter(str(tmp_path / "no-spec.json"), w, said.fd, [])
        os.close(w)
        w = -1
        assert supervise._read_status(r, 30) == ""          # EOF: the shim ended without a word
        text = said.said().decode()
        said.keep(str(tmp_path))
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        os.close(said.fd)
    assert "FileNotFoundError" in supervise._tail(text)
    assert "no-spec.json" in (tmp_path / "shim.log").read_text()
