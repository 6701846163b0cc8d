"""What runs inside each throwaway namespace; each part returns plain JSON-able data.

``sandbox_part`` runs in ``tests/sandbox.sh``: first the raw pyroute2 limit, then a
private cove daemon through every scenario and the scale run.  ``docker_part`` runs in
``bench/refs/docker-sandbox.sh`` against its private dockerd, ``podman_part`` in
``bench/refs/podman-sandbox.sh``; ``cni_part`` and ``iperf_part`` each in a
``tests/sandbox.sh`` of their own.  A failing scenario is recorded in ``errors`` and the
next one still runs; clean-up always runs.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import cni, dataplane, rawlimit, scale, scenarios
from .covedaemon import CoveDaemon
from .engine import Engine
from .stats import Samples


@dataclass
class Options:
    reps: int
    cli_reps: int
    scale_points: list[int]
    networks: int = 100
    cni_scale: int = 200
    iperf_reps: int = 5
    parallel: int = 32
    parallel_rounds: int = 4
    scale_clients: int = 4


def on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM acts as Ctrl-C (so ``finally`` clean-up runs); a second one is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _step(s: Samples, what: str, fn: Callable[[], None]) -> bool:
    log(what)
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - recorded; the next scenario still runs
        s.errors.append(f"{what}: {exc}\n{traceback.format_exc(limit=3)}")
        log(f"  FAILED: {exc}")
        return False
    log(f"  done in {time.perf_counter() - t0:.1f}s")
    return True


def _assert_sandboxed() -> None:
    outer = os.environ.get("COVE_OUTER_NETNS")
    here = str(os.stat("/proc/self/ns/net").st_ino)
    if os.environ.get("COVE_SANDBOX") != "1" or outer is None or outer == here:
        raise SystemExit("bench: the sandbox part must run inside tests/sandbox.sh (refusing to touch this netns)")


def _scenarios(eng: Engine, s: Samples, opts: Options) -> None:
    _step(s, f"{eng.name}: network create + rm x{opts.reps}",
          lambda: scenarios.network_create_rm(eng, s, opts.reps))
    if _step(s, f"{eng.name}: ping network and pinger", lambda: scenarios.setup_ping_net(eng)):
        _step(s, f"{eng.name}: run -d -> first ping (IP, name), rm -f x{opts.reps}",
              lambda: scenarios.run_to_ping(eng, s, opts.reps))
        _step(s, f"{eng.name}: network connect/disconnect (CLI, API) x{opts.reps}",
              lambda: scenarios.connect(eng, s, opts.reps))
        _step(s, f"{eng.name}: exec, ps, inspect (CLI, API) x{opts.reps}",
              lambda: scenarios.reads(eng, s, opts.reps))
        if eng.has_api:
            _step(s, f"{eng.name}: network create/rm, run -d, rm -f over the API x{opts.reps}",
                  lambda: scenarios.api_ops(eng, s, opts.reps))
    _step(s, f"{eng.name}: --version x{opts.cli_reps}", lambda: scenarios.cli_version(eng, s, opts.cli_reps))
    if opts.networks:
        _step(s, f"{eng.name}: {opts.networks} networks side by side",
              lambda: scenarios.network_scale(eng, s, opts.networks))
    if opts.parallel:
        import parallel         # bench/parallel.py (bench/ is on the path)

        _step(s, f"{eng.name}: {opts.parallel} parallel clients x{opts.parallel_rounds} rounds",
              lambda: parallel.measure(eng, s, opts.parallel, opts.parallel_rounds))


def sandbox_part(opts: Options) -> dict[str, Any]:
    _assert_sandboxed()
    raw = Samples()
    _step(raw, f"raw: pyroute2 endpoints, bridges, namespaces x{opts.reps}", lambda: rawlimit.measure(raw, opts.reps))
    _step(raw, f"raw: bridge + nftables rules of one network x{opts.reps}",
          lambda: rawlimit.measure_firewalled(raw, opts.reps))
    cove = Samples()
    daemon = CoveDaemon()
    eng = daemon.engine()
    try:
        if _step(cove, "cove: start a private daemon, import bb", lambda: _start(daemon, eng)):
            cove.facts["version"] = eng.cli("--version").out.strip()
            cove.facts["daemon_pid"] = daemon.proc.pid if daemon.proc else None
            cove.facts["bytecode_cache"] = daemon.env["PYTHONPYCACHEPREFIX"]
            cove.facts["data_root_fs"] = daemon.data_root_fs
            _scenarios(eng, cove, opts)
            _step(cove, "cove: clean up before the scale run", eng.cleanup)
            _step(cove, f"cove: scale {opts.scale_points}, burst of {opts.scale_clients} clients",
                  lambda: scale.measure(daemon, eng, cove, opts.scale_points, clients=opts.scale_clients))
    except KeyboardInterrupt as exc:
        cove.errors.append(f"interrupted: {exc}")
        raise
    finally:
        log("cove: final clean-up")
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            cove.errors.append(f"clean-up: {exc}")
        cove.errors.extend(eng.cleanup_errors)
        cove.errors.extend(daemon.stop())
    return {"raw": raw.as_dict(), "cove": cove.as_dict()}


def _start(daemon: CoveDaemon, eng: Engine) -> None:
    daemon.start()
    daemon.import_busybox(eng)


def docker_part(opts: Options) -> dict[str, Any]:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix:///run/docker/") or os.environ.get("COVE_SANDBOX") != "1":
        raise SystemExit("bench: the docker part must run inside bench/refs/docker-sandbox.sh")
    s = Samples()
    eng = Engine("docker", ["docker"], dict(os.environ), host[len("unix://"):])
    s.facts["client_version"] = eng.cli("--version").out.strip()
    s.facts["server_version"] = eng.cli("version", "--format", "{{.Server.Version}}").out.strip()
    try:
        _scenarios(eng, s, opts)
    finally:
        log("docker: final clean-up")
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            s.errors.append(f"clean-up: {exc}")
        s.errors.extend(eng.cleanup_errors)
    return {"docker": s.as_dict()}


def podman_part(opts: Options) -> dict[str, Any]:
    argv = os.environ.get("PODMAN_ARGV", "").split()
    if not argv or os.environ.get("COVE_SANDBOX") != "1" or not os.environ.get("CONTAINERS_CONF"):
        raise SystemExit("bench: the podman part must run inside bench/refs/podman-sandbox.sh")
    s = Samples()
    eng = Engine("podman", argv, dict(os.environ), None, rm_args=("rm", "-f", "-t", "0"))
    s.facts["client_version"] = eng.cli("--version").out.strip()
    s.facts["network_backend"] = eng.cli("info", "--format", "{{.Host.NetworkBackend}}").out.strip()
    s.facts["runtime"] = eng.cli("info", "--format", "{{.Host.OCIRuntime.Name}}").out.strip()
    try:
        _scenarios(eng, s, opts)
    finally:
        log("podman: final clean-up")
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            s.errors.append(f"clean-up: {exc}")
        s.errors.extend(eng.cleanup_errors)
    return {"podman": s.as_dict()}


def cni_part(opts: Options) -> dict[str, Any]:
    _assert_sandboxed()
    s = Samples()
    _step(s, f"cni: attach/detach x{opts.reps}, {opts.cni_scale} containers on one network",
          lambda: cni.measure(s, opts.reps, opts.cni_scale))
    return {"cni": s.as_dict()}


def iperf_part(opts: Options) -> dict[str, Any]:
    _assert_sandboxed()
    s = Samples()
    _step(s, f"iperf3: raw vs cove, x{opts.iperf_reps} per path", lambda: dataplane.measure(s, opts.iperf_reps))
    return {"iperf": s.as_dict()}


def machine_facts() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version(), "hostname": platform.node()}
