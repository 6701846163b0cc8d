"""Scale: many containers on one network with cove, and the daemon's memory.

Containers ``bench-s-1`` .. ``bench-s-N`` are started one after the other with
``run -d`` on one user network.  Each ``run -d`` is a sample of the phase it falls
in: for points (1, 100, 300) the phases are container 1, containers 2-100 and
101-300.  At 0 containers and at each point the daemon's VmRSS is read from
/proc/PID/status; at the largest point the shims' memory too (one supervisor
process per container, not part of the daemon's RSS).
"""

from __future__ import annotations

import time

from .covedaemon import CoveDaemon
from .engine import Engine
from .proc import CommandFailed, pss_kib, vm_rss_kib
from .scenarios import IMAGE, _wait_ping
from .stats import Samples

SCALE_NET = "bench-scale"


def phase_name(lo: int, hi: int) -> str:
    return f"scale_run_d_{hi}" if lo + 1 == hi else f"scale_run_d_{lo + 1}-{hi}"


def measure(daemon: CoveDaemon, eng: Engine, s: Samples, points: list[int]) -> None:
    eng.track_network(SCALE_NET)
    eng.ok("network", "create", "--subnet", "10.240.0.0/16", SCALE_NET)
    time.sleep(0.5)
    s.facts["daemon_rss_kib_at_0"] = daemon.rss_kib()
    s.facts["daemon_fds_at_0"] = daemon.fd_count()
    rss_points: dict[str, int | None] = {}
    fd_points: dict[str, int | None] = {}
    started = 0
    lo = 0
    t_all = time.perf_counter()
    try:
        for hi in points:
            for idx in range(lo + 1, hi + 1):
                name = eng.track_container(f"bench-s-{idx}")
                r = eng.ok("run", "-d", "--name", name, "--network", SCALE_NET, IMAGE, "sleep", "3600", timeout=120)
                s.add(phase_name(lo, hi), r.seconds)
                s.add("scale_run_d_all", r.seconds)
                started = idx
            rss_points[str(hi)] = daemon.rss_kib()
            fd_points[str(hi)] = daemon.fd_count()
            lo = hi
    except CommandFailed as exc:
        # keep what was reached: the partial phase is renamed to the range it covers
        s.errors.append(f"scale: container {started + 1} failed (the run stops there): {exc}")
        s.facts["scale_failed_at"] = started + 1
        partial = s.series.pop(phase_name(lo, hi), [])
        if partial:
            s.series[phase_name(lo, started)] = partial
        if started > lo:
            rss_points[str(started)] = daemon.rss_kib()
            fd_points[str(started)] = daemon.fd_count()
    s.facts["scale_total_seconds"] = time.perf_counter() - t_all
    s.facts["scale_containers"] = started
    s.facts["daemon_rss_kib_at"] = rss_points
    s.facts["daemon_fds_at"] = fd_points
    shims = daemon.shim_pids()
    s.facts["shims_at_max"] = len(shims)
    s.facts["shims_rss_kib_sum"] = sum(vm_rss_kib(p) or 0 for p in shims)
    s.facts["shims_pss_kib_sum"] = sum(pss_kib(p) or 0 for p in shims)
    s.facts["daemon_pss_kib_at_max"] = pss_kib(daemon.proc.pid) if daemon.proc else None
    if started >= 2:
        attempts = _wait_ping(eng, f"bench-s-{started}", "bench-s-1", deadline=10)
        s.facts["scale_ping_by_name_last_to_first"] = f"ok after {attempts} attempt(s)"
    # the last ten containers are removed one by one, timed; the rest by clean-up
    for idx in range(started, max(0, started - 10), -1):
        name = f"bench-s-{idx}"
        r = eng.ok("rm", "-f", name)
        eng.containers.remove(name)
        s.add("scale_rm_f", r.seconds)
    t0 = time.perf_counter()
    rest = [f"bench-s-{i}" for i in range(1, max(0, started - 10) + 1)]
    eng.remove_containers(rest)
    s.facts["scale_rm_rest_seconds"] = time.perf_counter() - t0
    s.facts["scale_rm_rest_count"] = len(rest)
    time.sleep(0.5)
    s.facts["daemon_rss_kib_after_removal"] = daemon.rss_kib()
