"""``cove daemon``: run the engine and serve the Docker-shaped API in the foreground.

Settings come from flags named as dockerd names them.  SIGTERM/SIGINT stop
serving and close the engine; containers keep running, and the next daemon
finds them again (see :mod:`cove.engine.reconcile`).
"""

from __future__ import annotations

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
                           cluster_advertise=st.cluster_advertise, cluster_lease_ttl=st.cluster_lease_ttl,
                           userns_remap=remap)
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
