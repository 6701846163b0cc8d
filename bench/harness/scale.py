"""Scale: many containers on one network with cove, the attach cost there, and the daemon's memory.

Containers ``bench-s-1`` .. ``bench-s-N`` are created and started one after the other
over the API (``POST /containers/create`` + ``/start``, what ``run -d`` sends: the
daemon's own time, without a CLI process per container) on one user network.  Each
start is a sample of ``scale_start_api`` (sample i is container i+1) and of the phase it
falls in (for points 1, 10, 100, 1000: container 1, 2-10, 11-100, 101-1000).

At each point the daemon's VmRSS and descriptors are read, and a probe container that
lives on another network is attached to the scale network and detached again
(``POST /networks/N/connect`` / ``disconnect``, ``probe_reps`` times after a warm-up):
``scale_attach_at_<N>`` is the endpoint attach with N containers on that network, the
figure of the "flat with scale" target.  At the largest point the shims' memory too (one
supervisor process per container, not part of the daemon's RSS).  Removal: every
container, newest first, ``DELETE /containers/X?force=1``, timed (``scale_rm_api``).

Then the burst (``clients`` > 0): the same number of containers started again by ``clients``
API connections at once (threads, each taking the next container; what ``compose up --scale``
or ``xargs -P`` does), timed from the first request to the last start's answer
(``scale_burst_start_seconds``), then removed the same way (``scale_burst_rm_seconds``).  On
this 2-core machine one client after the other leaves a core idle while runc and the shim
wait on each other; the burst is the machine's throughput.  Both totals are reported.
"""

from __future__ import annotations

import threading
import time

from .covedaemon import CoveDaemon
from .engine import Engine
from .proc import CommandFailed, pss_kib, vm_rss_kib
from .scenarios import IMAGE, _wait_ping
from .stats import Samples

SCALE_NET = "bench-scale"
PROBE_NET = "bench-probe-net"
PROBE = "bench-probe"


def phase_name(lo: int, hi: int) -> str:
    return f"scale_start_api_{hi}" if lo + 1 == hi else f"scale_start_api_{lo + 1}-{hi}"


def _probe(api, s: Samples, at: int, reps: int) -> None:  # type: ignore[no-untyped-def]
    for j in range(reps + 1):
        t_con = api.call("POST", f"/networks/{SCALE_NET}/connect", {"Container": PROBE})
        t_dis = api.call("POST", f"/networks/{SCALE_NET}/disconnect", {"Container": PROBE})
        if j:
            s.add(f"scale_attach_at_{at}", t_con)
            s.add(f"scale_detach_at_{at}", t_dis)


def each_at_once(connect, clients: int, names: list[str], one) -> list[str]:  # type: ignore[no-untyped-def]
    """``one(api, name)`` for every name, by ``clients`` threads each with its own API connection
    (``connect()``: an :class:`~harness.unixhttp.UnixAPI`); the errors (at most one per thread: a
    thread stops at its first)."""
    queue = list(reversed(names))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        api = connect()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    name = queue.pop()
                one(api, name)
        except (CommandFailed, OSError) as exc:
            with lock:
                errors.append(str(exc))
        finally:
            api.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def burst(eng: Engine, s: Samples, count: int, clients: int) -> None:
    """Start ``count`` containers on the scale network with ``clients`` connections at once, then remove them."""
    body = {"Image": IMAGE, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": SCALE_NET},
            "NetworkingConfig": {"EndpointsConfig": {SCALE_NET: {}}}}
    names = [eng.track_container(f"bench-b-{i}") for i in range(1, count + 1)]

    def start(api, name: str) -> None:  # type: ignore[no-untyped-def]
        api.call("POST", f"/containers/create?name={name}", body)
        api.call("POST", f"/containers/{name}/start")

    def remove(api, name: str) -> None:  # type: ignore[no-untyped-def]
        api.call("DELETE", f"/containers/{name}?force=1")

    s.facts["scale_burst_clients"] = clients
    t0 = time.perf_counter()
    errors = each_at_once(eng.api, clients, names, start)
    s.facts["scale_burst_start_seconds"] = time.perf_counter() - t0
    s.facts["scale_burst_containers"] = count
    s.errors.extend(f"scale burst start: {e}" for e in errors)
    if errors:
        s.facts["scale_burst_failed"] = len(errors)
    t0 = time.perf_counter()
    errors = each_at_once(eng.api, clients, names, remove)
    s.facts["scale_burst_rm_seconds"] = time.perf_counter() - t0
    s.errors.extend(f"scale burst rm: {e}" for e in errors)
    if not errors:
        for name in names:
            eng.containers.remove(name)


def measure(daemon: CoveDaemon, eng: Engine, s: Samples, points: list[int], probe_reps: int = 10,
            clients: int = 0) -> None:
    eng.track_network(SCALE_NET)
    eng.ok("network", "create", "--subnet", "10.240.0.0/16", SCALE_NET)
    time.sleep(0.5)
    s.facts["daemon_rss_kib_at_0"] = daemon.rss_kib()
    s.facts["daemon_fds_at_0"] = daemon.fd_count()
    eng.track_network(PROBE_NET)
    eng.ok("network", "create", "--subnet", "10.241.0.0/24", PROBE_NET)
    eng.track_container(PROBE)
    eng.ok("run", "-d", "--name", PROBE, "--network", PROBE_NET, IMAGE, "sleep", "3600")
    # the base of the per-container descriptor count: the probe's own are not the scale network's
    s.facts["daemon_fd_kinds_at_0"] = daemon.fd_kinds()
    body = {"Image": IMAGE, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": SCALE_NET},
            "NetworkingConfig": {"EndpointsConfig": {SCALE_NET: {}}}}
    rss_points: dict[str, int | None] = {}
    fd_points: dict[str, int | None] = {}
    started = 0
    lo = 0
    hi = 0
    api = eng.api()
    t_all = time.perf_counter()
    try:
        try:
            for hi in points:
                for idx in range(lo + 1, hi + 1):
                    name = eng.track_container(f"bench-s-{idx}")
                    t = api.call("POST", f"/containers/create?name={name}", body)
                    t += api.call("POST", f"/containers/{name}/start")
                    s.add(phase_name(lo, hi), t)
                    s.add("scale_start_api", t)
                    started = idx
                s.facts["scale_start_seconds_to_" + str(hi)] = time.perf_counter() - t_all
                rss_points[str(hi)] = daemon.rss_kib()
                fd_points[str(hi)] = daemon.fd_count()
                s.facts["daemon_fd_kinds_at_top"] = daemon.fd_kinds()
                _probe(api, s, hi, probe_reps)
                lo = hi
        except (CommandFailed, OSError) as exc:
            # keep what was reached: the partial phase is renamed to the range it covers
            s.errors.append(f"scale: container {started + 1} failed (the run stops there): {exc}")
            s.facts["scale_failed_at"] = started + 1
            s.facts["scale_failed_log"] = daemon.log_tail(1500)
            partial = s.series.pop(phase_name(lo, hi), [])
            if partial:
                s.series[phase_name(lo, started)] = partial
            if started > lo:
                rss_points[str(started)] = daemon.rss_kib()
                fd_points[str(started)] = daemon.fd_count()
        s.facts["scale_start_total_seconds"] = sum(s.series.get("scale_start_api", []))
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
        t0 = time.perf_counter()
        for idx in range(started, 0, -1):
            name = f"bench-s-{idx}"
            s.add("scale_rm_api", api.call("DELETE", f"/containers/{name}?force=1"))
            eng.containers.remove(name)
        s.facts["scale_rm_total_seconds"] = time.perf_counter() - t0
    finally:
        api.close()
    time.sleep(0.5)
    s.facts["daemon_rss_kib_after_removal"] = daemon.rss_kib()
    s.facts["daemon_fds_after_removal"] = daemon.fd_count()
    if clients > 0 and started == points[-1]:
        burst(eng, s, started, clients)
