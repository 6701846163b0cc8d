"""Docker Engine API routes: ping, version, info.

Module-level handlers, each ``handler(engine, req, *path_params)``; :data:`ROUTES` is the table
:func:`cove.daemon.routes.build_router` binds to one engine.
"""

from __future__ import annotations

import os
import platform
import socket

from ... import __version__
from ..backend import Backend
from ..info import kernel_features
from ..settings import Settings, effective
from ..http import Handler, Request, Response
from ._common import API_VERSION, MIN_API_VERSION


def ping(engine: Backend, req: Request) -> Response:
    return Response(body=b"OK", content_type="text/plain; charset=utf-8",
                    headers=[("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")])


def version(engine: Backend, req: Request) -> Response:
    u = platform.uname()
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
               "GoVersion": "python" + platform.python_version(), "Os": "linux",
               "Arch": "amd64" if u.machine == "x86_64" else u.machine, "KernelVersion": u.release,
               "Experimental": "false", "BuildTime": ""}
    return Response.json({
        "Platform": {"Name": "cove"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__, **{k: v for k, v in details.items() if k != "Experimental"},
        "Experimental": False,
    })


def info(engine: Backend, req: Request, settings: Settings | None = None) -> Response:
    with engine.lock:
        cs = list(engine.containers.values())
        running = sum(1 for c in cs if c.running)
        return Response.json({
            "ID": "cove", "Name": socket.gethostname(), "ServerVersion": __version__,
            "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": 0,
            "ContainersStopped": len(cs) - running, "Images": len(engine.images.list()),
            "Driver": "overlay", "DockerRootDir": engine.cfg.data_root, "OperatingSystem": platform.platform(),
            "KernelVersion": platform.release(), "OSType": "linux", "Architecture": platform.machine(),
            "NCPU": os.cpu_count(), "IPv4Forwarding": engine.cfg.ip_forward,
            "NEventsListener": engine.events.subscribers,
            "Plugins": {"Network": ["bridge", "host", "null"], "Volume": [], "Log": ["file"]},
            "FirewallBackend": {"Driver": engine.firewall_name},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns",
                                *(["name=userns"] if engine.cfg.userns_remap is not None else [])],
            "CoveExecRoot": engine.cfg.exec_root,
            "CoveSettings": effective(settings) if settings is not None else {},
            "CoveKernelFeatures": kernel_features(),
        })


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
]
