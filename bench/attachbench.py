"""Endpoint attach/detach of a running container over the API vs the raw kernel work, A/B (by hand, root).

    .venv/bin/python bench/attachbench.py [--base REV|DIR] [--branch REV|DIR] [--rounds 3] [--reps 30] [--count 10]

Issue #17's "endpoint attach ≤ 1.5× raw".  Each run is one fresh ``tests/sandbox.sh`` with a private
cove daemon whose ``PYTHONPATH`` is the tree under test (``--base``: by default main, a revision
exported with ``git archive`` to a temp dir, or a directory; ``--branch``: by default this tree); the trees alternate, round by round
(base, branch, branch, base, ...).  In a run, a container ``ab-c`` on the user network ``ab-ping``
is connected to ``ab-conn`` and disconnected again ``--reps`` times over one kept-open API
connection (``POST /networks/ab-conn/connect`` / ``disconnect``), and each rep is followed by the
raw yardstick in the same sandbox: :func:`harness.rawlimit.endpoint_up` (the veth into an existing
namespace, enslaved, up, address, ``lo``/``eth0`` up, default route: ``raw_endpoint`` of
``bench/run.py``) and the deletion of its host end (``raw_veth_del``, the yardstick of a detach).
One warm-up rep is not recorded.

Then ``--count`` more connect/disconnect pairs run under ``strace -f -yy -ttt`` of every daemon
thread: each ``sendto``/``sendmsg`` on a netlink socket is a request; it is given to the connect or
the disconnect whose wall-clock window holds its timestamp (timed apart from the reps: strace
slows everything down).  Output: a Markdown table on stdout, every sample in ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "src")]

SERIES = ("connect_api", "disconnect_api", "raw_endpoint", "raw_veth_del")


# -- inside the sandbox ------------------------------------------------------------------------

def inner(tree: str, reps: int, count: int, out: str) -> None:
    from pyroute2 import IPRoute

    from harness import rawlimit
    from harness.covedaemon import CoveDaemon
    from harness.nskit import assert_sandboxed, log
    from harness.unixhttp import UnixAPI

    assert_sandboxed()

    d = CoveDaemon(src=f"{tree}/src")
    result: dict[str, object] = {"tree": tree, "series": {k: [] for k in SERIES}}
    ipr = IPRoute()
    raw_ns = f"{rawlimit.NETNS_DIR}/abraw"
    api: UnixAPI | None = None
    try:
        eng = d.start()
        d.import_busybox(eng)
        imported = subprocess.run([sys.executable, "-c", "import cove; print(cove.__file__)"], env=d.env,
                                  capture_output=True, text=True, check=True).stdout.strip()
        result["cove"] = imported
        log(f"daemon {d.proc.pid if d.proc else '?'} runs {imported}")
        api = UnixAPI(d.sock)

        ok = api.call                                # request() that must succeed (harness/unixhttp.py)

        for net in ("ab-ping", "ab-conn"):
            ok("POST", "/networks/create", {"Name": net})
        ok("POST", "/containers/create?name=ab-c", {"Image": "bb", "Cmd": ["sleep", "3600"],
                                                     "HostConfig": {"NetworkMode": "ab-ping"}})
        ok("POST", "/containers/ab-c/start")

        os.makedirs(rawlimit.NETNS_DIR, exist_ok=True)
        ipr.link("add", ifname=rawlimit.BRIDGE, kind="bridge")
        bridge = ipr.link_lookup(ifname=rawlimit.BRIDGE)[0]
        ipr.addr("add", index=bridge, address=f"{rawlimit.SUBNET}.0.1", prefixlen=16)
        ipr.link("set", index=bridge, state="up")
        rawlimit.netns_create(raw_ns)

        series: dict[str, list[float]] = result["series"]  # type: ignore[assignment]
        for i in range(reps + 1):
            con = ok("POST", "/networks/ab-conn/connect", {"Container": "ab-c"})
            dis = ok("POST", "/networks/ab-conn/disconnect", {"Container": "ab-c"})
            t0 = time.perf_counter()
            rawlimit.endpoint_up(ipr, bridge, raw_ns, "abv0", f"{rawlimit.SUBNET}.0.2", f"{rawlimit.SUBNET}.0.1")
            t1 = time.perf_counter()
            ipr.link("del", ifname="abv0")
            t2 = time.perf_counter()
            if i:
                for name, v in zip(SERIES, (con, dis, t1 - t0, t2 - t1), strict=True):
                    series[name].append(v)
        if count:
            result["requests"] = count_requests(d.proc.pid if d.proc else 0, count, ok)
    finally:
        if api is not None:     # the container's init outlives a stopped daemon (and its killed shim)
            for method, url in (("DELETE", "/containers/ab-c?force=1"), ("DELETE", "/networks/ab-conn"),
                                ("DELETE", "/networks/ab-ping")):
                try:
                    api.request(method, url)
                except Exception as exc:  # noqa: BLE001 - clean-up goes on
                    log(f"clean-up {method} {url}: {exc}")
            api.close()
        try:
            ipr.link("del", ifname=rawlimit.BRIDGE)
        except Exception:  # noqa: BLE001 - gone with the sandbox anyway
            pass
        ipr.close()
        if os.path.exists(raw_ns):
            rawlimit.netns_delete(raw_ns)
        result["stop_notes"] = d.stop()
        Path(out).write_text(json.dumps(result))


SEND = re.compile(r"^(?:\d+\s+)?(\d+\.\d+) (?:sendto|sendmsg)\(\d+<NETLINK:\[(?:(\w+):)?\d+\]>")
NLTYPE = re.compile(r"nlmsg_type=(?:NFNL_SUBSYS_\w+<<8\|)?(\w+)")
#: rtnetlink message types strace cannot name on a socket of another namespace (it shows the number)
RTM = {0x10: "RTM_NEWLINK", 0x11: "RTM_DELLINK", 0x12: "RTM_GETLINK", 0x13: "RTM_SETLINK", 0x14: "RTM_NEWADDR",
       0x15: "RTM_DELADDR", 0x16: "RTM_GETADDR", 0x18: "RTM_NEWROUTE", 0x19: "RTM_DELROUTE", 0x1a: "RTM_GETROUTE"}


def count_requests(pid: int, count: int, ok) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Netlink requests (sends) per connect and per disconnect, by protocol and message type."""
    ok("GET", "/version")                       # the kept-open connection (and its thread) exists
    tids = sorted(os.listdir(f"/proc/{pid}/task"))
    log_path = tempfile.mktemp(prefix="ab-strace-")
    argv = ["strace", "-qq", "-f", "-yy", "-ttt", "-s", "64", "-xx", "-e", "trace=sendto,sendmsg", "-o", log_path]
    for tid in tids:
        argv += ["-p", tid]
    tracer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)                             # attached to every thread
    windows: list[tuple[str, float, float]] = []
    try:
        for _ in range(count):
            for op, url in (("connect", "/networks/ab-conn/connect"), ("disconnect", "/networks/ab-conn/disconnect")):
                t0 = time.time()
                ok("POST", url, {"Container": "ab-c"})
                windows.append((op, t0, time.time()))
                time.sleep(0.05)                # a gap: nothing of one request leaks into the next window
    finally:
        time.sleep(0.3)
        tracer.terminate()
        tracer.wait(10)
    per: dict[str, Counter[str]] = {"connect": Counter(), "disconnect": Counter()}
    outside = 0
    for line in Path(log_path).read_text().splitlines():
        m = SEND.match(line)
        if not m:
            continue
        ts = float(m.group(1))
        op = next((o for o, a, b in windows if a <= ts <= b), None)
        kinds = [RTM.get(int(k, 16), k) if k.startswith("0x") else k for k in NLTYPE.findall(line)] or ["?"]
        if kinds == ["NFT_MSG_GETGEN"]:
            continue                            # the firewall guard's poll (twice a second), not the operation
        if op is None:
            outside += ts > windows[0][1]        # between the operations (a leak of one past its answer)
            continue
        where = m.group(2) or "ROUTE, container netns"   # strace resolves the protocol in its own netns only
        per[op][f"{where}: {'+'.join(kinds)}"] += 1
    if not os.environ.get("AB_KEEP_STRACE"):
        os.unlink(log_path)
    else:
        print(f"strace log: {log_path} windows {windows}", file=sys.stderr)
    return {"count": count, "outside": outside,
            "per_op": {op: {k: v / count for k, v in sorted(c.items())} for op, c in per.items()},
            "total": {op: sum(c.values()) / count for op, c in per.items()}}


# -- outside: the A/B --------------------------------------------------------------------------

def tree_of(ref: str) -> tuple[str, str]:
    """(directory, label) of ``ref``: a directory as it is, else a git revision exported (its src/)
    with ``git archive`` to a temp dir, so the tree under test is exactly that commit."""
    if os.path.isdir(ref):
        rev = subprocess.run(["git", "-C", ref, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=False).stdout.strip()
        return ref, f"{ref} ({rev or 'no git'}{', with uncommitted changes' if _dirty(ref) else ''})"
    dest = tempfile.mkdtemp(prefix="attach-tree-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    return dest, f"{ref} = {rev}"


def _dirty(path: str) -> bool:
    return bool(subprocess.run(["git", "-C", path, "status", "--porcelain", "src"], capture_output=True,
                               text=True, check=False).stdout.strip())


def outer(args: argparse.Namespace) -> None:
    base_dir, base_label = tree_of(args.base)
    branch_dir, branch_label = tree_of(args.branch)
    trees = {"base": base_dir, "branch": branch_dir}
    runs: list[dict[str, object]] = []
    for r in range(args.rounds):
        order = ("base", "branch") if r % 2 == 0 else ("branch", "base")
        for label in order:
            out = tempfile.mktemp(prefix=f"ab-{label}-", suffix=".json")
            cmd = [str(ROOT / "tests/sandbox.sh"), sys.executable, str(Path(__file__).resolve()), "--inner",
                   "--tree", trees[label], "--reps", str(args.reps), "--count", str(args.count if r == 0 else 0),
                   "--out", out]
            print(f"# round {r + 1} {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True)
            res = json.loads(Path(out).read_text())
            os.unlink(out)
            res["label"], res["round"] = label, r + 1
            runs.append(res)
    for d in (base_dir, branch_dir):
        if d.startswith(tempfile.gettempdir() + "/attach-tree-"):
            shutil.rmtree(d, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"base": base_label, "branch": branch_label, "rounds": args.rounds,
                                               "reps": args.reps, "runs": runs}, indent=1))
    print(report(runs, base_label, branch_label))


def report(runs: list[dict[str, object]], base_rev: str, branch_rev: str) -> str:
    def med(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    lines = [f"base = {base_rev}, branch = {branch_rev}; medians in ms over all reps of all rounds "
             "(each round's median in brackets)", "",
             "| tree | n | connect | disconnect | raw endpoint | raw veth del | connect / raw | disconnect / raw del |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label in ("base", "branch"):
        mine = [r for r in runs if r["label"] == label]
        if not mine:
            continue
        pooled = {k: [v for r in mine for v in r["series"][k]] for k in SERIES}  # type: ignore[index]
        per_round = {k: " ".join(f"{med(r['series'][k]):.2f}" for r in mine) for k in SERIES}  # type: ignore[index]
        cells = [f"{med(pooled[k]):.2f} [{per_round[k]}]" for k in SERIES]
        lines.append(f"| {label} | {len(pooled['connect_api'])} | {' | '.join(cells)} | "
                     f"{med(pooled['connect_api']) / med(pooled['raw_endpoint']):.2f}× | "
                     f"{med(pooled['disconnect_api']) / med(pooled['raw_veth_del']):.2f}× |")
    lines += ["", "Netlink requests (sendto/sendmsg on a netlink socket, any daemon thread) per operation:", ""]
    for r in runs:
        req = r.get("requests")
        if not req:
            continue
        lines.append(f"* {r['label']} ({r['cove']}): connect {req['total']['connect']:.1f}, "  # type: ignore[index]
                     f"disconnect {req['total']['disconnect']:.1f} (sends outside any window: {req['outside']})")
        for op in ("connect", "disconnect"):
            kinds = ", ".join(f"{k} {v:g}" for k, v in req["per_op"][op].items())  # type: ignore[index]
            lines.append(f"  * {op}: {kinds}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--base", default="main", help="the A side: a directory, or a git revision to export (default: main)")
    p.add_argument("--branch", default=str(ROOT), help="the B side: a directory or a git revision (default: this tree)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--count", type=int, default=10, help="strace'd connect/disconnect pairs (first round only)")
    p.add_argument("--json", help="write every sample here")
    args = p.parse_args()
    if args.inner:
        inner(args.tree, args.reps, args.count, args.out)
    else:
        outer(args)


if __name__ == "__main__":
    main()
