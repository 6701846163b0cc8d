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


def test_memory_probe_is_off_unless_asked_and_reports_on_sigusr2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # in a child: the probe starts tracemalloc and takes SIGUSR2 for the whole process
    out = tmp_path / "mem.txt"
    code = (
        "import os, signal, time, tracemalloc\n"
        "from cove.daemon import memprobe\n"
        "assert memprobe.from_env({}) is None and not tracemalloc.is_tracing()\n"
        f"p = memprobe.from_env({{'COVE_TEST_MEMORY_FILE': {str(out)!r}}})\n"
        "assert p is not None and tracemalloc.is_tracing()\n"
        "keep = [bytearray(1000) for _ in range(100)]\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "for _ in range(100):\n"
        "    time.sleep(0.05)\n"
        "    if p.n: break\n"
        "p.report()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    text = out.read_text()
    assert text.count("== report") == 2
    assert "threads" in text and "objects:" in text and "grown since report 1" in text
    assert (tmp_path / "mem.txt.1.snap").exists()
