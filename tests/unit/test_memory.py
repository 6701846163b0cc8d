"""The daemon's malloc settings (daemon/memory.py) reach glibc here, and fail soft elsewhere."""

from __future__ import annotations

import subprocess
import sys

from cove.daemon import memory


def test_arenas_are_capped_and_trim_runs() -> None:
    # in a child: the cap is process-wide and must be set before threads allocate
    code = "from cove.daemon import memory; print(memory.limit_arenas(), memory.trim() in (True, False))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_without_glibc_nothing_happens(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(memory, "_LIBC", None)
    assert memory.limit_arenas() is False
    assert memory.trim() is False
