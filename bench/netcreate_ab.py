"""``network create`` A/B: an older cove against this tree, the raw kernel work and Podman (issue #17).

Run by hand, as root, from the repository root (never from tests: no timings live there)::

    git archive OLD_COMMIT | tar -x -C /tmp/cove-old     # the older tree's files (an empty dir first)
    .venv/bin/python bench/netcreate_ab.py --old /tmp/cove-old [--rounds 5] [--reps 20] [--no-podman]

Each round runs, in a fresh ``tests/sandbox.sh``, both trees one after the other (the order
alternates from round to round), each with a private daemon of its own ``src`` (``PYTHONPATH``):

- ``api``: ``POST /networks/create`` on one kept-open connection, then ``DELETE`` (as
  ``bench/harness/scenarios.api_ops`` does: each create follows a removal);
- ``cli``: the installed ``cove`` launcher (``.venv/bin/cove``, ``-S``: ``cove.cli.fast``),
  ``cove network create NAME`` as a fresh process, the network removed over the API after;
- ``py``: ``python -S -c pass``, the interpreter's own start-up, for scale;

then ``raw``: the raw bridge + firewall work (``bench/harness/rawlimit.measure_firewalled``, the
yardstick of the targets table).  With Podman, each round also times ``podman network create``
(then ``rm``) in ``bench/refs/podman-sandbox.sh``.  Prints the medians over all samples, each
round's median, and the two issue #17 ratios; ``--out`` keeps every sample (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def inner(trees: list[str], reps: int) -> dict[str, object]:
    sys.path[:0] = [str(BENCH), str(ROOT / "src")]
    from harness import rawlimit
    from harness.covedaemon import CoveDaemon
    from harness.stats import Samples
    from harness.unixhttp import UnixAPI

    out: dict[str, object] = {}
    for tree in trees:
        class Daemon(CoveDaemon):
            @property
            def env(self) -> dict[str, str]:
                return {**super().env, "PYTHONPATH": f"{tree}/src"}

        d = Daemon()
        try:
            d.start()
            api = UnixAPI(d.sock)
            api_ms, cli_ms, py_ms = [], [], []
            for i in range(reps + 1):                  # round 0: warm-up, not recorded
                t = time.perf_counter()
                status, reply, _ = api.request("POST", "/networks/create", {"Name": f"ab-api-{i}"})
                a = time.perf_counter() - t
                if status >= 300:
                    raise SystemExit(f"{tree}: network create: {status} {reply}")
                api.request("DELETE", f"/networks/ab-api-{i}")
                t = time.perf_counter()
                subprocess.run([sys.executable, "-S", "-c", "pass"], env=d.env, check=True)
                p = time.perf_counter() - t
                t = time.perf_counter()
                subprocess.run([str(ROOT / ".venv/bin/cove"), "network", "create", f"ab-cli-{i}"], env=d.env,
                               check=True, stdout=subprocess.DEVNULL)
                c = time.perf_counter() - t
                api.request("DELETE", f"/networks/ab-cli-{i}")
                if i:
                    api_ms.append(a * 1000)
                    cli_ms.append(c * 1000)
                    py_ms.append(p * 1000)
            api.close()
            out["new" if Path(tree).resolve() == ROOT else "old"] = {"api": api_ms, "cli": cli_ms, "py": py_ms}
        finally:
            d.stop()
    s = Samples()
    rawlimit.measure_firewalled(s, reps)
    out["raw"] = {"fw": [x * 1000 for x in s.series.get("raw_bridge_fw_create", [])]}
    with open("/proc/loadavg") as f:
        out["load"] = f.read().strip()
    return out


PODMAN = """
import json, os, subprocess, sys, time
argv, out = os.environ["PODMAN_ARGV"].split(), []
for i in range(int(sys.argv[1]) + 1):
    t = time.perf_counter()
    subprocess.run(argv + ["network", "create", f"ab-pn-{i}"], check=True, stdout=subprocess.DEVNULL)
    c = time.perf_counter() - t
    subprocess.run(argv + ["network", "rm", f"ab-pn-{i}"], check=True, stdout=subprocess.DEVNULL)
    if i:
        out.append(c * 1000)
print(json.dumps({"podman": {"cli": out}}))
"""


def summary(rows: list[dict[str, dict[str, list[float]]]]) -> str:
    runs: dict[tuple[str, str], list[list[float]]] = {}
    for row in rows:
        for who, series in row.items():
            if isinstance(series, dict):
                for what, samples in series.items():
                    runs.setdefault((who, what), []).append(samples)
    med = {k: statistics.median([x for run in v for x in run]) for k, v in runs.items()}
    lines = ["| series | median ms | each round's median | samples |", "|---|---:|---|---:|"]
    for (who, what), v in sorted(runs.items()):
        each = " ".join(f"{statistics.median(r):.1f}" for r in v)
        lines.append(f"| {who} {what} | {med[(who, what)]:.2f} | {each} | {sum(len(r) for r in v)} |")
    raw, podman = med.get(("raw", "fw")), med.get(("podman", "cli"))
    for who in ("old", "new"):
        if (who, "api") in med and raw:
            lines.append(f"\n{who}: daemon {med[(who, 'api')]:.2f} ms = {med[(who, 'api')] / raw:.2f}x the raw "
                         f"{raw:.2f} ms" + (f"; CLI {med[(who, 'cli')]:.2f} ms = {med[(who, 'cli')] / podman:.2f}x "
                                            f"Podman's {podman:.2f} ms" if podman else ""))
    loads = [row["load"] for row in rows if isinstance(row.get("load"), str)]
    lines.append("\nload average at the end of each round (/proc/loadavg): " + "; ".join(map(str, loads)))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", help="the older tree (a directory with its src/)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--no-podman", action="store_true")
    p.add_argument("--out", help="append every round's samples here (JSON lines)")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        if os.environ.get("COVE_SANDBOX") != "1":
            raise SystemExit("netcreate_ab: the inner part runs only inside tests/sandbox.sh")
        print(json.dumps(inner(args.inner.split(","), args.reps)))
        return 0
    if not args.old or not (Path(args.old) / "src" / "cove").is_dir():
        raise SystemExit("netcreate_ab: --old DIR must hold an older tree's src/cove")
    rows = []
    for r in range(args.rounds):
        trees = [str(Path(args.old).resolve()), str(ROOT)]
        if r % 2:
            trees.reverse()
        done = subprocess.run([str(ROOT / "tests/sandbox.sh"), sys.executable, str(Path(__file__).resolve()),
                               "--reps", str(args.reps), "--inner", ",".join(trees)],
                              cwd=ROOT, check=True, capture_output=True, text=True, timeout=1800)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not args.no_podman:
            done = subprocess.run([str(BENCH / "refs/podman-sandbox.sh"), sys.executable, "-c", PODMAN, str(args.reps)],
                                  cwd=ROOT, check=True, capture_output=True, text=True, timeout=1800)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if args.out:
            with open(args.out, "a") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows[-(1 if args.no_podman else 2):])
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
