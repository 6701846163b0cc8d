"""Off-CPU time of one process's threads by the kernel site they blocked in (by hand).

    .venv/bin/python bench/offcpu.py FILE.offcpu.data PID [--tid TID] [--top 15]

Reads a ``perf record -e sched:sched_switch -a -g`` file (``bench/attachflat.py --offcpu DIR``
writes one per point) with ``perf script``: each switch *out* of a thread of ``PID`` opens a wait,
named by the first frames of its kernel stack below the scheduler (``synchronize_rcu_expedited;
netif_set_real_num_tx_queues;veth_init_queues;...``), and the next switch *in* of that thread
closes it.  Prints the total wait per site, largest first, and how many waits.  A thread waiting
for work (a futex, epoll) shows up too: read the sites on the path of the operation (the kernel
thread's netlink requests), not the total.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import Counter

SCHEDULER = {"__schedule", "schedule", "__traceiter_sched_switch", "schedule_preempt_disabled", "schedule_timeout",
             "preempt_schedule_common", "__cond_resched", "io_schedule"}
HEAD = re.compile(r"\s*(\d+)/(\d+)\s+([\d.]+):.*prev_pid=(\d+).*next_pid=(\d+)")


def waits(data: str, pid: str, tid: str | None, depth: int = 5) -> tuple[Counter[str], Counter[str]]:
    """(seconds, count) per blocking site of ``pid`` (only thread ``tid`` if given)."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,time,trace,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    pending: dict[str, tuple[str, float]] = {}
    seconds: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for block in out.split("\n\n"):
        lines = block.strip().splitlines()
        m = HEAD.match(lines[0]) if lines else None
        if not m:
            continue
        p, t, when, prev, nxt = m.group(1), m.group(2), float(m.group(3)), m.group(4), m.group(5)
        if nxt in pending:
            site, since = pending.pop(nxt)
            seconds[site] += when - since
            count[site] += 1
        if p == pid and (tid is None or t == tid):
            syms = [ln.split(None, 1)[1].split("+")[0] for ln in lines[1:] if len(ln.split(None, 1)) > 1]
            frames = [s for s in syms if s not in SCHEDULER and not s.startswith("[unknown]")]
            pending[prev] = (";".join(frames[:depth]), when)
    return seconds, count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("pid")
    ap.add_argument("--tid")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    seconds, count = waits(a.data, a.pid, a.tid)
    print(f"off-CPU in all: {sum(seconds.values()) * 1000:.0f} ms")
    for site, s in seconds.most_common(a.top):
        print(f"{s * 1000:8.1f} ms {count[site]:5d}x  {site}")


if __name__ == "__main__":
    main()
