"""The daemon tunes the interpreter for the embedded resolver once it serves (issue #17).

``bench/dnslat.py`` measures what it buys (no timings here): the resolver's thread gets
the GIL back within the switch interval, and start-up's objects are left out of collections.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def test_tune_runtime_sets_a_short_switch_interval_and_freezes_the_heap() -> None:
    """Seen failing (5 ms, 0 frozen) with tune_runtime's body removed."""
    code = ("import gc, sys; from cove.daemon.main import SWITCH_INTERVAL, tune_runtime; tune_runtime();"
            "print(sys.getswitchinterval() == SWITCH_INTERVAL, SWITCH_INTERVAL <= 0.001, gc.get_freeze_count() > 1000)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "True", "True"]


def test_daemon_tunes_once_it_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cove daemon`` calls tune_runtime after its socket is bound and the engine open (what
    start-up made is then frozen).  Seen failing with the call removed from main()."""
    import cove.daemon.http
    import cove.daemon.routes
    import cove.engine
    from cove.daemon import main as daemon_main

    events: list[str] = []

    class FakeEngine:
        firewall_name = "none"

        def __init__(self, cfg: Any) -> None:
            events.append("engine")

        def open(self) -> None:
            events.append("open")

        def close(self) -> None:
            events.append("close")

    class FakeServer:
        def __init__(self, path: str, router: Any) -> None:
            pass

        def bind(self) -> None:
            events.append("bind")

        def serve_forever(self) -> None:       # on the daemon's accept thread
            events.append("serve")
            os.kill(os.getpid(), signal.SIGTERM)  # the daemon's handler stops it

        def shutdown(self) -> None:
            pass

    def tuned() -> None:
        events.append("tune")

    monkeypatch.setattr(cove.engine, "Engine", FakeEngine)
    monkeypatch.setattr(cove.daemon.http, "Server", FakeServer)
    monkeypatch.setattr(cove.daemon.routes, "build_router", lambda engine, st: None)
    monkeypatch.setattr(daemon_main, "tune_runtime", tuned)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        rc = daemon_main.main(["--host", f"unix://{tmp_path}/cove.sock", "--data-root", f"{tmp_path}/data",
                               "--exec-root", f"{tmp_path}/exec"])
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    assert rc == 0
    assert [e for e in events if e != "serve"] == ["engine", "open", "bind", "tune", "close"]
    assert gc.isenabled()
