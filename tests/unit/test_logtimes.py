"""logs --timestamps: each line carries the time it was written, across streams and rotation."""

from __future__ import annotations

import os
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
