"""Healthchecks: ``Healthcheck`` of a create (or of the image), run as dockerd runs them.

A running container with a check gets one thread that, every ``Interval``, runs the
test through the runtime's exec (``CMD`` argv or ``CMD-SHELL`` through ``/bin/sh -c``)
with ``Timeout``; exit 0 is a pass, anything else (or the timeout) a failure.
``State.Health`` is ``{"Status": starting|healthy|unhealthy, "FailingStreak", "Log"}``
(the last five results, output cut at 4 KiB): ``healthy`` after a pass, ``unhealthy``
after ``Retries`` failures in a row (failures inside ``StartPeriod`` do not count while
it is still ``starting``). Each change of status is a ``health_status: STATUS`` event.
Durations are nanoseconds, as in the API; 0 means Docker's default (30 s, 30 s, 3, 0).
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime, timezone
from typing import Any

from ..model import Container
from .core import log

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096


def check_argv(check: dict[str, Any]) -> list[str] | None:
    """The command a check runs; None when there is none (no test, or NONE)."""
    test = list(check.get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])] if len(test) > 1 else None
    return None


def _seconds(ns: Any, default: float) -> float:
    return int(ns) / 1e9 if ns else default


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HealthMonitor:
    """One probe thread per running container with a check; ``svc`` is the container service."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.stops: dict[str, threading.Event] = {}

    def begin(self, c: Container, resume: bool = False) -> None:
        """At start (under the lock): status ``starting`` and the probe thread; ``resume``: a running
        container found by a restarted daemon keeps its status."""
        check = c.config.healthcheck
        if not check or check_argv(check) is None:
            c.state.health = {}
            return
        if not (resume and c.state.health):
            c.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.end(c.id)
        stop = threading.Event()
        self.stops[c.id] = stop
        threading.Thread(target=self._run, args=(c.id, c.state.started_at, stop), daemon=True,
                         name=f"health-{c.id[:12]}").start()

    def end(self, cid: str) -> None:
        stop = self.stops.pop(cid, None)
        if stop is not None:
            stop.set()

    def close(self) -> None:
        for cid in list(self.stops):
            self.end(cid)

    def _run(self, cid: str, started_at: str, stop: threading.Event) -> None:
        begun = time.monotonic()
        while True:
            with self.svc.lock:
                c = self.svc.containers.get(cid)
                if c is None or not c.running or c.state.started_at != started_at:
                    return
                check = dict(c.config.healthcheck)
            if stop.wait(_seconds(check.get("Interval"), DEFAULT_INTERVAL)):
                return
            try:
                result = self._probe(cid, started_at, check)
            except Exception as exc:  # noqa: BLE001 - a probe that cannot run is a failed probe
                result = (-1, f"health check could not run: {exc}", _now())
            if result is None or stop.is_set():
                return
            in_start_period = time.monotonic() - begun < _seconds(check.get("StartPeriod"), 0.0)
            self._record(cid, started_at, check, result, in_start_period)

    def _probe(self, cid: str, started_at: str, check: dict[str, Any]) -> tuple[int, str, str] | None:
        """Run the test once: (exit code, output, start time); None if the container is gone."""
        argv = check_argv(check)
        if argv is None:
            return None
        start = _now()
        with self.svc.lock:
            c = self.svc.containers.get(cid)
            if c is None or not c.running or c.state.started_at != started_at:
                return None
            handle = self.svc.runtime.exec_process(
                c.state.pid, argv, _env(c.config.env), c.config.workdir or "/", tty=False, stdin=False,
                state_dir=self.svc.cfg.container_state_dir(cid))
        timeout = _seconds(check.get("Timeout"), DEFAULT_TIMEOUT)
        try:
            out, err = handle.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            handle.popen.kill()
            handle.popen.communicate()
            handle.finish(None)
            return -1, f"Health check exceeded timeout ({timeout:g}s)", start
        text = (out + err).decode(errors="replace")[:MAX_OUTPUT]
        return handle.finish(handle.popen.returncode), text, start

    def _record(self, cid: str, started_at: str, check: dict[str, Any], result: tuple[int, str, str],
                in_start_period: bool) -> None:
        code, text, start = result
        with self.svc.lock:
            c = self.svc.containers.get(cid)
            if c is None or not c.running or c.state.started_at != started_at:
                return
            h = c.state.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
            entry = {"Start": start, "End": _now(), "ExitCode": code, "Output": text}
            h["Log"] = [*h.get("Log", []), entry][-MAX_LOG_ENTRIES:]
            before = h.get("Status")
            if code == 0:
                h["FailingStreak"] = 0
                h["Status"] = "healthy"
            elif not (in_start_period and before == "starting"):
                h["FailingStreak"] = int(h.get("FailingStreak", 0)) + 1
                if h["FailingStreak"] >= int(check.get("Retries") or DEFAULT_RETRIES):
                    h["Status"] = "unhealthy"
            c.state.health = h
            if h["Status"] != before:
                self.svc.save_container(c)
                self.svc.container_event(c, f"health_status: {h['Status']}")
                log.info("container %s (%s) is %s", c.name, cid[:12], h["Status"])
                self.svc.changed.notify_all()


def _env(env: list[str]) -> list[str]:
    out: dict[str, str] = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return [f"{k}={v}" for k, v in out.items()]
