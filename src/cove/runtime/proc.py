"""Walking a process tree through ``/proc`` (``docker top``)."""

from __future__ import annotations


def descendants(pid: int) -> list[int]:
    out = [pid]
    i = 0
    while i < len(out):
        try:
            with open(f"/proc/{out[i]}/task/{out[i]}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        i += 1
    return out
