"""``cove daemon``: run the engine and serve the Docker-shaped API in the foreground.

Settings come from flags named as dockerd names them.  SIGTERM/SIGINT stop
serving and close the engine; containers keep running, and the next daemon
finds them again (see :mod:`cove.engine.reconcile`).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time

from ..errors import CoveError



def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise CoveError(f"invalid --host {host!r}: cove listens on unix sockets only (unix:///path)")
    return host[len("unix://"):]


def raise_fd_limit() -> None:
    """A daemon holds a few descriptors per container (pidfd, DNS sockets, netlink): lift the soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def take_lock(directory: str) -> int:
    """Hold ``directory/daemon.lock`` for the daemon's lifetime: one daemon per root.

    Two daemons on one store, or on one exec root, would undo each other's
    kernel state (each reconciles the firewall to *its* networks).
    """
    import fcntl

    os.makedirs(directory, mode=0o711, exist_ok=True)
    path = os.path.join(directory, "daemon.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode().strip() or "?"
        os.close(fd)
        raise CoveError(f"another cove daemon (pid {other}) is running with {directory}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def socket_in_use(path: str) -> bool:
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


#: the GIL's switch interval in the daemon (CPython's default: 5 ms).  See :func:`tune_runtime`.
SWITCH_INTERVAL = 0.0005


def tune_runtime() -> None:
    """Keep the embedded resolver's loop from waiting on the rest of the daemon.

    The resolver answers in its own thread (:mod:`cove.dns.service`); an API request being
    worked on in another thread holds the GIL for up to the switch interval before the
    resolver gets it back, and a full collection of the oldest GC generation walks every
    object the daemon holds (pyroute2, the engine's state) with the GIL held.  So, once the
    daemon has started:

    - ``sys.setswitchinterval(SWITCH_INTERVAL)``: a thread waiting for the GIL gets it
      within 0.5 ms rather than 5 ms;
    - ``gc.collect()`` then ``gc.freeze()``: what start-up made (modules, classes, the
      engine) moves to the permanent generation, which collections no longer walk.

    ``bench/dnslat.py`` (``untuned``: this function a no-op), 2 000 queries/s for a container
    name, p99 in ms over 20 000 queries, three runs on this 2-core machine at load average 4–7
    (``bench/results/2026-12-06-dnslat.md``): idle 8.3 / 31.6 / 5.0 untuned, 0.76 / 3.3 / 0.83
    tuned; during API churn 23 / 181 / 12 untuned, 12 / 16 / 7.6 tuned.  Each half alone does
    about half of it (``switch-only``, ``freeze-only``).  Not the cause of what is left under
    churn: garbage collection (the same with ``gc.disable()``), the loop thread's priority
    (``nice -10`` for it, or for the whole daemon, changed nothing).
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    from .settings import SettingsError, load

    try:
        st = load(list(sys.argv[1:] if argv is None else argv))
    except SettingsError as exc:
        print(f"cove daemon: {exc}", file=sys.stderr)
        return 1
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}.get(st.log_level, logging.DEBUG if st.debug else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # pyroute2 logs every netlink message at debug level: cove's own debug lines (one per request,
    # `METHOD path -> status (ms)`) would drown in it
    logging.getLogger("pyroute2").setLevel(max(level, logging.INFO))
    log = logging.getLogger("cove.daemon")
    raise_fd_limit()
    from . import memory, memprobe

    memprobe.from_env()     # test-only: COVE_TEST_MEMORY_FILE (issue 14), off by default

    memory.limit_arenas()
    from ..engine import Engine, EngineConfig
    from ..runtime.userns import check_reachable
    from ..runtime.userns import resolve as resolve_remap
    from .http import Server
    from .routes import build_router

    try:
        path = socket_path(st.host)
        locks = [take_lock(st.data_root), take_lock(st.exec_root)]
        if socket_in_use(path):
            raise CoveError(f"another daemon answers on unix://{path}")
        remap = resolve_remap(st.userns_remap)
        if remap is not None:
            for root in (st.data_root, st.exec_root):
                check_reachable(root, remap)
        cfg = EngineConfig(data_root=st.data_root, exec_root=st.exec_root, firewall=st.firewall,
                           external_bridge=st.bridge, bip=st.bip, fixed_cidr=st.fixed_cidr, mtu=st.mtu,
                           icc=st.icc, ip_forward=st.ip_forward, ip_masq=st.ip_masq,
                           ip_forward_no_drop=st.ip_forward_no_drop, image_import_max_size=st.image_import_max_size,
                           default_pools=st.default_address_pools, default_host_ip=st.ip, dns=st.dns,
                           dns_search=st.dns_search, dns_options=st.dns_opts, cluster_store=st.cluster_store,
                           cluster_store_opts=st.cluster_store_opts, cluster_advertise=st.cluster_advertise,
                           cluster_lease_ttl=st.cluster_lease_ttl,
                           userns_remap=remap, cgroup_parent=st.cgroup_parent)
        engine = Engine(cfg)
        engine.open()
    except CoveError as exc:
        print(f"cove daemon: {exc}", file=sys.stderr)
        return 1
    server = Server(path, build_router(engine, st))
    server.bind()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down (containers keep running)", signum)
        stop.set()
        server.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("cove daemon listening on unix://%s (firewall: %s)", path, engine.firewall_name)
    t = threading.Thread(target=server.serve_forever, name="cove-accept", daemon=True)
    t.start()
    tune_runtime()
    next_trim = time.monotonic() + memory.TRIM_EVERY
    while not stop.is_set():
        stop.wait(1.0)
        if time.monotonic() >= next_trim:
            memory.trim()
            next_trim = time.monotonic() + memory.TRIM_EVERY
    engine.close()
    for fd in locks:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
