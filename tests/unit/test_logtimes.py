"""logs --timestamps: each line carries the time it was written, across streams and rotation."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cove.runtime import logs
from cove.runtime.logtimes import stamp, times_path

T0 = 1_764_900_000_123_456_789          # 2025-12-05T02:00:00.123456789Z


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [T0]
    monkeypatch.setattr(logs.time, "time_ns", lambda: now[0])
    return now


def read(d: Path, tail: int | None = None, tty: bool = False) -> list[tuple[str, str]]:
    return [(s, b.decode()) for s, b in logs.follow_logs(str(d), tty, False, lambda: False, tail, timestamps=True)]


def test_stamp_is_dockers_format() -> None:
    assert stamp(T0) == b"2025-12-05T02:00:00.123456789Z"
    assert stamp(1_000_000_000) == b"1970-01-01T00:00:01.000000000Z"


def test_lines_carry_their_write_time_in_written_order(tmp_path: Path, clock: list[int]) -> None:
    out = logs.LogWriter(str(tmp_path / "stdout.log"), 0, 1)
    err = logs.LogWriter(str(tmp_path / "stderr.log"), 0, 1)
    out.write(b"one\ntw")
    clock[0] += 5
    err.write(b"oops\n")
    clock[0] += 5
    out.write(b"o\nthree")                    # "two" began in the first write: its time
    out.close()
    err.close()
    assert read(tmp_path) == [
        ("stdout", f"{stamp(T0).decode()} one\n"),
        ("stdout", f"{stamp(T0).decode()} two\n"),
        ("stderr", f"{stamp(T0 + 5).decode()} oops\n"),
        ("stdout", f"{stamp(T0 + 10).decode()} three"),      # the unfinished last line too
    ]
    assert read(tmp_path, tail=1) == [("stdout", f"{stamp(T0 + 10).decode()} three")]
    assert read(tmp_path, tail=0) == []
    # without timestamps the bytes are as written
    plain = b"".join(b for s, b in logs.follow_logs(str(tmp_path), False, False, lambda: False) if s == "stdout")
    assert plain == b"one\ntwo\nthree"


def test_times_rotate_with_their_log(tmp_path: Path, clock: list[int]) -> None:
    w = logs.LogWriter(str(tmp_path / "stdout.log"), 10, 3)
    for i in range(4):                       # 8 bytes each: every write after the first rotates
        w.write(b"line-%d\n" % i)
        clock[0] += 1_000_000_000
    w.close()
    assert sorted(os.listdir(tmp_path)) == ["stdout.log", "stdout.log.1", "stdout.log.2", "times-stdout.log",
                                            "times-stdout.log.1", "times-stdout.log.2"]
    got = read(tmp_path)
    assert [line.split(" ", 1)[1] for _, line in got] == ["line-1\n", "line-2\n", "line-3\n"]
    assert [line.split(" ", 1)[0] for _, line in got] == [stamp(T0 + i * 1_000_000_000).decode() for i in (1, 2, 3)]


def test_a_log_without_times_uses_the_files_time(tmp_path: Path) -> None:
    path = tmp_path / "tty.log"
    path.write_bytes(b"old\n")
    os.utime(path, ns=(T0, T0))
    assert not os.path.exists(times_path(str(path)))
    assert read(tmp_path, tty=True) == [("stdout", f"{stamp(T0).decode()} old\n")]


def test_log_files_are_made_by_the_first_write(tmp_path: Path, clock: list[int]) -> None:
    """A container that writes nothing has no log files; readers take them as empty, and a follower
    (plain, attach's tail=0, or --timestamps) started before the first write reads it from its start."""
    out = logs.LogWriter(str(tmp_path / "stdout.log"), 0, 1)
    err = logs.LogWriter(str(tmp_path / "stderr.log"), 0, 1)
    out.write(b"")
    assert os.listdir(tmp_path) == []
    assert read(tmp_path) == [] and read(tmp_path, tail=5) == []
    assert list(logs.follow_logs(str(tmp_path), False, False, lambda: False, 3)) == []
    running = [True]
    followers = {"plain": logs.follow_logs(str(tmp_path), False, True, lambda: running[0]),
                 "attach": logs.follow_logs(str(tmp_path), False, True, lambda: running[0], tail=0),
                 "stamped": logs.follow_logs(str(tmp_path), False, True, lambda: running[0], timestamps=True)}
    got: dict[str, list[tuple[str, bytes]]] = {k: [] for k in followers}
    threads = [threading.Thread(target=lambda k=k, it=it: got[k].extend(it)) for k, it in followers.items()]
    for t in threads:
        t.start()
    time.sleep(0.2)                           # each is reading, and finds no file
    err.write(b"first\n")
    clock[0] += 5
    out.write(b"second\n")
    time.sleep(0.2)
    running[0] = False
    for t in threads:
        t.join(5)
    out.close()
    err.close()
    assert sorted(os.listdir(tmp_path)) == ["stderr.log", "stdout.log", "times-stderr.log", "times-stdout.log"]
    assert sorted(got["plain"]) == [("stderr", b"first\n"), ("stdout", b"second\n")]
    assert sorted(got["attach"]) == [("stderr", b"first\n"), ("stdout", b"second\n")]
    assert got["stamped"] == [("stderr", stamp(T0) + b" first\n"), ("stdout", stamp(T0 + 5) + b" second\n")]


def test_a_reopened_log_appends_and_rotates_by_its_size(tmp_path: Path, clock: list[int]) -> None:
    """A restarted container's writer (made before any write) goes on from the file's size."""
    w = logs.LogWriter(str(tmp_path / "stdout.log"), 12, 2)
    w.write(b"aaaa\nbbbb\n")
    w.close()
    w = logs.LogWriter(str(tmp_path / "stdout.log"), 12, 2)
    assert (tmp_path / "stdout.log").read_bytes() == b"aaaa\nbbbb\n"
    w.write(b"cccc\n")                        # 15 bytes would be past 12: a new file
    w.close()
    assert (tmp_path / "stdout.log.1").read_bytes() == b"aaaa\nbbbb\n"
    assert (tmp_path / "stdout.log").read_bytes() == b"cccc\n"


def test_a_log_that_cannot_be_made_drops_the_output_and_tries_again(tmp_path: Path, clock: list[int],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The container runs by the first write: no file is no crash of the shim (Docker's json-file drops too)."""
    gone = tmp_path / "gone"
    w = logs.LogWriter(str(gone / "stdout.log"), 0, 1)
    w.write(b"lost\n")
    assert "cannot make" in capsys.readouterr().err and not gone.exists()
    gone.mkdir()
    w.write(b"kept\n")
    w.close()
    assert (gone / "stdout.log").read_bytes() == b"kept\n"
