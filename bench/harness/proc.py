"""Bounded subprocesses, and killing the process trees the harness itself started.

Every command the harness runs has a timeout; :func:`kill_tree` ends a process and
all its descendants by PID (found through ``/proc/*/stat``), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class CommandFailed(RuntimeError):
    """A command the benchmark needs exited non-zero or timed out."""


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str
    seconds: float

    def check(self) -> Result:
        if self.rc != 0:
            raise CommandFailed(f"{' '.join(self.argv)} exited {self.rc}: {self.err.strip()[:400]}")
        return self


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60.0,
        input: str | None = None) -> Result:
    """Run ``argv``; wall time from just before the spawn to just after the exit."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(list(argv), check=False, env=dict(env) if env is not None else None, capture_output=True,
                           text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return Result(list(argv), 124, "", f"timed out after {timeout:.0f}s: {exc}", time.perf_counter() - t0)
    return Result(list(argv), p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """PIDs of every descendant of ``pid`` (children first in breadth order)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _ppid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its descendants (leaves first); gone already is fine."""
    for target in [*reversed(descendants(pid)), pid]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pids_with_arg(fragment: str) -> list[int]:
    """PIDs whose command line contains ``fragment`` (a path unique to this harness run)."""
    found: list[int] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline:
            found.append(int(entry))
    return found


def vm_rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, from /proc/PID/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kib(pid: int) -> int | None:
    """Proportional set size of ``pid`` in KiB (shared pages divided among sharers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
