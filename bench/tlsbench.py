"""Cluster-store latency over TLS vs plain HTTP (issue 15), by hand only:
``tests/sandbox.sh .venv/bin/python bench/tlsbench.py [--n 300]``.

On the cluster lab's three etcd members (tests/integration/clusterlab.py, no cove daemon), once
plain and once in TLS mode (HTTPS with client certificates, ``--client-cert-auth``), it times
:class:`~cove.store.etcd.EtcdStore` from the sandbox (10.99.0.254): ``put`` of a small record
(an etcd Txn, the write path of every overlay change), ``get`` of it (a linearizable range read),
and a ``watch`` round (a put seen by an open :class:`~cove.store.etcd.Watcher`: TLS only at the
stream's start).  Each series has 20 unrecorded warm-up rounds.  Every series runs twice: with
the store's kept-alive connections and with them off (``IDLE_PER_MEMBER = 0``: a new connection,
so a new TLS handshake, per request, as before they existed).  Results go to
bench/results/<date>-cluster-tls.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cove.store.etcd as etcd  # noqa: E402
from cove.store.base import Entry, Event  # noqa: E402
from cove.store.etcd import Watcher  # noqa: E402
from tests.integration.clusterlab import make_lab  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(tls: bool, n: int) -> dict[str, dict[str, list[float]]]:
    lab = make_lab(0, 5, tls=tls)
    try:
        keep = etcd.IDLE_PER_MEMBER
        res = {}
        for mode, idle in (("kept-alive", keep), ("new connection per request", 0)):
            etcd.IDLE_PER_MEMBER = idle
            try:
                res[mode] = _series(lab.store(), n)
            finally:
                etcd.IDLE_PER_MEMBER = keep
        return res
    finally:
        lab.close()


def _series(st: etcd.EtcdStore, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"put": [], "get": [], "watch": []}
    for i in range(n + 20):
        t0 = time.perf_counter()
        st.put(f"bench/k{i % 50}", {"i": i, "pad": "x" * 100})
        t1 = time.perf_counter()
        st.get(f"bench/k{i % 50}")
        t2 = time.perf_counter()
        if i >= 20:
            out["put"].append((t1 - t0) * 1000)
            out["get"].append((t2 - t1) * 1000)
    seen: dict[int, float] = {}
    cv = threading.Condition()

    def on_event(ev: Event) -> None:
        if ev.value is not None:
            with cv:
                seen[int(ev.value["i"])] = time.perf_counter()
                cv.notify_all()

    def on_reset(entries: list[Entry]) -> None:
        pass

    w = Watcher(st, "watchbench/", on_reset, on_event).start()
    time.sleep(1)
    for i in range(n + 20):
        t0 = time.perf_counter()
        st.put("watchbench/k", {"i": i})
        with cv:
            cv.wait_for(lambda: i in seen, 10)
        if i >= 20 and i in seen:
            out["watch"].append((seen[i] - t0) * 1000)
    w.stop()
    st.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        print("run it inside tests/sandbox.sh", file=sys.stderr)
        return 2
    plain = measure(False, args.n)
    tls = measure(True, args.n)
    lines = [f"# cluster store over TLS vs plain HTTP, {datetime.date.today()} "
             f"(3 etcd 3.4 members in namespaces, {args.n} rounds each)", "",
             "| op (ms) | connections | plain p50 | plain p99 | TLS p50 | TLS p99 |", "|---|---|---|---|---|---|"]
    for mode in plain:
        for op in ("put", "get", "watch"):
            a, b = plain[mode][op], tls[mode][op]
            lines.append(f"| {op} | {mode} | {statistics.median(a):.2f} | {pct(a, 99):.2f} | "
                         f"{statistics.median(b):.2f} | {pct(b, 99):.2f} |")
    lines += ["", "put: EtcdStore.put (one etcd Txn); get: EtcdStore.get (linearizable range); watch: a put",
              "until an open Watcher's callback ran (one stream, TLS only at its start)."]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / f"{datetime.date.today()}-cluster-tls.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
