"""Container start against the number of running containers: the mount-namespace copy (issue #17).

    tests/sandbox.sh .venv/bin/python bench/mountcopy.py [--tree DIR] [--points 10,200,500]
        [--reps 10] [--out FILE.json]

Every container's network namespace is a bind mount in the daemon's mount namespace; a mount
namespace made after it (a shim's, runc's) copied every one of them, so a start cost O(containers)
in the kernel alone.  A private cove daemon runs the tree ``--tree`` (its ``src`` on ``PYTHONPATH``;
default this tree: ``git archive COMMIT src | tar -x -C DIR`` gives an older one).  Containers
``p1..pN`` (``sleep``) are started over the API on network ``sn``; at each point ``--reps`` probe
containers are created, started and removed one by one (one warm-up): ``run_ms`` is create + start
as the API answers them (what ``cove run -d`` waits for).  Also per point: the mounts the daemon's
namespace holds and those of the namespace shims are forked in (the zygote's), a shim's, and
``unshare -m true`` run in the zygote's namespace (what a shim's and runc's copy cost), with the
load averages.  Everything is removed at the end.  Output: JSON (``--out``) and a line per point.
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
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

from harness.covedaemon import CoveDaemon  # noqa: E402
from harness.nskit import assert_sandboxed, log  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402


def mounts(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return sum(1 for _ in f)
    except OSError:
        return -1


def zygote_pid(daemon: int) -> int | None:
    """The daemon's child running ``cove.runtime.shim --zygote``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != daemon:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"--zygote" in f.read():
                    return int(entry)
        except (OSError, ValueError):
            continue
    return None


def shim_pid(state_dir: str) -> int | None:
    try:
        with open(os.path.join(state_dir, "shim.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError):
        return None


def unshare_ms(pid: int, reps: int = 15) -> float:
    """Median wall time of ``unshare -m true`` in ``pid``'s mount namespace (nsenter's own cost included)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(["nsenter", "-t", str(pid), "-m", "unshare", "-m", "true"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=str(BENCH.parent))
    ap.add_argument("--points", default="10,200,500")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default="/tmp/mountcopy.json")
    a = ap.parse_args()
    assert_sandboxed()
    tree = a.tree

    d = CoveDaemon(src=f"{tree}/src")
    res: dict[str, object] = {"tree": tree, "points": {}}
    names: list[str] = []
    api: UnixAPI | None = None
    try:
        eng = d.start()
        d.import_busybox(eng)
        pid = d.proc.pid if d.proc else 0
        api = UnixAPI(d.sock)

        ok = api.call                                # request() that must succeed (harness/unixhttp.py)

        ok("POST", "/networks/create", {"Name": "sn", "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}})
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "sn"}}
        have = 0
        t_all = time.perf_counter()
        for point in [int(p) for p in a.points.split(",")]:
            t0 = time.perf_counter()
            t100 = time.perf_counter()
            for i in range(have + 1, point + 1):
                names.append(f"p{i}")
                ok("POST", f"/containers/create?name=p{i}", body)
                ok("POST", f"/containers/p{i}/start")
                if i % 100 == 0:
                    log(f"  {i} running: the last 100 took {time.perf_counter() - t100:.1f} s, load "
                        f"{os.getloadavg()[0]:.2f}")
                    t100 = time.perf_counter()
            fill = time.perf_counter() - t0
            prev, have = have, point
            load_before = os.getloadavg()
            runs: list[float] = []
            for j in range(a.reps + 1):
                st, answer, secs = api.request("POST", "/containers/create?name=probe", body)
                if st >= 300:
                    raise RuntimeError(f"create probe: {st} {answer}")
                t = float(secs) + ok("POST", "/containers/probe/start")
                if j:
                    runs.append(t * 1000)
                ok("DELETE", "/containers/probe?force=1")
            zpid = zygote_pid(pid)
            _, info, _ = api.request("GET", f"/containers/p{point}/json")
            sid = info["Id"]
            spid = shim_pid(os.path.join(d.exec_root, "containers", sid))
            row = {"run_ms": runs, "daemon_mounts": mounts(pid), "zygote_mounts": mounts(zpid) if zpid else None,
                   "shim_mounts": mounts(spid) if spid else None,
                   "unshare_ms_zygote_ns": unshare_ms(zpid) if zpid else None,
                   "unshare_ms_daemon_ns": unshare_ms(pid),
                   "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                   "fill_s": fill, "since_start_s": time.perf_counter() - t_all}
            res["points"][str(point)] = row  # type: ignore[index]
            q = statistics.quantiles(runs, n=4)
            log(f"{tree} n={point}: run p50 {statistics.median(runs):.1f} ms (p25 {q[0]:.1f}, min {min(runs):.1f}), "
                f"fill {1000 * fill / max(1, point - prev):.1f} ms/container, mounts "
                f"daemon {row['daemon_mounts']} zygote {row['zygote_mounts']} shim {row['shim_mounts']}, "
                f"unshare -m in zygote ns {row['unshare_ms_zygote_ns']:.1f} ms, in daemon ns "
                f"{row['unshare_ms_daemon_ns']:.1f} ms, fill {fill:.1f} s, load {load_before[0]:.2f}")
        t0 = time.perf_counter()
        for name in reversed(names):
            ok("DELETE", f"/containers/{name}?force=1")
        names.clear()
        res["rm_total_s"] = time.perf_counter() - t0
        log(f"rm total {res['rm_total_s']:.1f} s")
    finally:
        if api is not None:
            for name in reversed(names):
                try:
                    api.request("DELETE", f"/containers/{name}?force=1")
                except Exception as exc:  # noqa: BLE001 - clean up what can be
                    log(f"rm {name}: {exc}")
            api.close()
        notes = d.stop()
        if notes:
            log("; ".join(notes[:5]) + f" ({len(notes)} in all)")
        Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
