"""``make soak`` (issue 14): the crash lab's long run, by hand, inside the sandbox.

Phase 1 kills the daemon ``--kills`` times (default 200) at random moments and
at chosen durable steps of a churn loop, restarting it and checking after each
kill that the kernel equals the store and that no acknowledged operation was
lost (:mod:`tests.integration.crashlab`).  Phase 2 churns for
``--churn-minutes`` without kills, so the daemon's RSS and descriptors can be
seen to stay flat over one long life.  Writes, in ``bench/results/``:

- ``soak-<stamp>.csv``: phase, cycle, operations so far, daemon RSS (kB), open fds;
- ``soak-<stamp>.svg``: both curves (a plain SVG written here: matplotlib is only in
  the ``bench`` extra, and two polylines need no library);
- ``soak-<stamp>.md``: the counts (kills by kind, interrupted operations, leaks,
  lost acknowledged objects, users' checks failed) and every problem seen.

Exit status 1 when any leak, loss or failed check was seen.

    make soak                       # 200 kills + 10 minutes of churn
    make soak SOAK_ARGS="--kills 30 --churn-minutes 1"

To see *what* grows, give the daemon the memory probe (:mod:`cove.daemon.memprobe`, passed on
through the environment): ``COVE_TEST_MEMORY_FILE=/tmp/mem.txt COVE_TEST_MEMORY_EVERY=15`` adds a
report every 15 s (tracemalloc's top lines and growth, objects, threads, malloc and obmalloc
counts); ``COVE_TEST_MEMORY_FRAMES=0`` leaves tracemalloc off (its overhead doubles RSS).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.crashlab import CrashLab, Stats  # noqa: E402


def take(st: Stats, seen: dict[str, list[str]]) -> list[str]:
    """Move this cycle's problems into ``seen`` (by kind); return them."""
    new = st.leaks + st.lost + st.user
    seen["leaks"] += st.leaks
    seen["lost"] += st.lost
    seen["user"] += st.user
    st.leaks.clear()
    st.lost.clear()
    st.user.clear()
    return new


def svg(rows: list[tuple[str, int, int, int, int]], title: str) -> str:
    """RSS (MB, left axis) and fds (right axis) against the sample number."""
    w, h, pad = 900, 360, 60
    n = max(len(rows) - 1, 1)
    rss = [r[3] / 1024 for r in rows]
    fds = [r[4] for r in rows]
    top_rss, top_fds = max(rss + [1]) * 1.2, max(fds + [1]) * 1.2

    def pts(values: Sequence[float], top: float) -> str:
        return " ".join(f"{pad + i * (w - 2 * pad) / n:.1f},{h - pad - v * (h - 2 * pad) / top:.1f}"
                        for i, v in enumerate(values))

    split = next((i for i, r in enumerate(rows) if r[0] == "churn"), None)
    marks = ""
    if split is not None:
        x = pad + split * (w - 2 * pad) / n
        marks = (f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{h - pad}" stroke="#999" stroke-dasharray="4"/>'
                 f'<text x="{x + 4:.1f}" y="{pad + 12}" font-size="11" fill="#666">no kills from here</text>')
    return f'''<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{pad}" y="24" font-size="14">{title}</text>
<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>
<line x1="{w - pad}" y1="{pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>
<text x="4" y="{pad - 8}" font-size="11" fill="#c33">RSS MB (0-{top_rss:.0f})</text>
<text x="{w - pad - 40}" y="{pad - 8}" font-size="11" fill="#36c">fds (0-{top_fds:.0f})</text>
<text x="{w / 2 - 40:.0f}" y="{h - 20}" font-size="11">sample (one per cycle)</text>
<polyline fill="none" stroke="#c33" stroke-width="1.5" points="{pts(rss, top_rss)}"/>
<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{pts(fds, top_fds)}"/>
{marks}
</svg>
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--churn-minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--firewall", default="nftables", choices=["nftables", "iptables"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if not os.environ.get("COVE_SANDBOX"):
        print("soak: run it inside the sandbox (make soak)", file=sys.stderr)
        return 2
    lab = CrashLab(seed=args.seed, firewall=args.firewall, log=print)
    rows: list[tuple[str, int, int, int, int]] = []
    t0 = time.monotonic()
    seen: dict[str, list[str]] = {"leaks": [], "lost": [], "user": []}
    lab.start()
    try:
        while lab.stats.cycles < args.kills:
            lab.cycle()
            st = lab.stats
            rows.append(("kills", *st.samples[-1]))
            new = take(st, seen)
            problems = sum(len(v) for v in seen.values())
            print(f"kill {st.cycles}/{args.kills}: ops {st.ops}, point {st.kills_point} timer {st.kills_timer} "
                  f"idle {st.kills_idle}, problems {problems}, rss {rows[-1][3]} kB, fds {rows[-1][4]}, "
                  f"{time.monotonic() - t0:.0f}s", flush=True)
            for p in new:
                print("  !", p, flush=True)
        end = time.monotonic() + args.churn_minutes * 60
        while time.monotonic() < end:
            lab.calm_cycle()
            st = lab.stats
            rows.append(("churn", *st.samples[-1]))
            for p in take(st, seen):
                print("  !", p, flush=True)
            print(f"churn: ops {st.ops}, rss {rows[-1][3]} kB, fds {rows[-1][4]}", flush=True)
        lab.finish()
        take(lab.stats, seen)
    finally:
        lab.close()
    st = lab.stats
    stamp = time.strftime("%Y-%m-%d-%H%M")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"soak-{stamp}.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["phase", "cycle", "ops", "rss_kb", "fds"])
        wr.writerows(rows)
    churn = [r for r in rows if r[0] == "churn"]
    title = (f"cove daemon under churn: {st.cycles} kill -9 cycles, then {args.churn_minutes:g} min without kills "
             f"(seed {args.seed})")
    (out / f"soak-{stamp}.svg").write_text(svg(rows, title))
    leaks, lost, user = len(seen["leaks"]), len(seen["lost"]), len(seen["user"])
    summary = [
        f"# Soak {stamp} (seed {args.seed}, {args.firewall})", "",
        f"- kills: {st.kills_point + st.kills_timer + st.kills_idle} ({st.kills_point} at a chosen durable step, "
        f"{st.kills_timer} by a timer, {st.kills_idle} at rest); operations {st.ops}; "
        f"interrupted operations {st.interrupted}",
        f"- leaks: {leaks}; lost acknowledged objects: {lost}; names/ports not answering: {user}",
        f"- daemon RSS: first {rows[0][3] if rows else 0} kB, last {rows[-1][3] if rows else 0} kB; "
        f"churn phase {churn[0][3] if churn else 0} -> {churn[-1][3] if churn else 0} kB, "
        f"fds {churn[0][4] if churn else 0} -> {churn[-1][4] if churn else 0}",
        f"- time: {time.monotonic() - t0:.0f} s", "",
        *[f"- {p}" for kind in seen.values() for p in kind],
    ]
    (out / f"soak-{stamp}.md").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))
    return 1 if leaks or lost or user else 0


if __name__ == "__main__":
    sys.exit(main())
