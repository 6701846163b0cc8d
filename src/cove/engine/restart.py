"""Restart policies: ``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``, as dockerd's.

:meth:`ContainerService.on_exit` hands every exit here; a container whose policy
wants it back is started again after a back-off (moby's restartmanager: 100 ms,
doubled after each restart, at most one minute, back to 100 ms once a run lasted
10 s). A stop or kill by the user (``ContainerState.stopped_by_user``) is never
undone, and ``on-failure:N`` gives up after N restarts since the user's last
start. Each restart adds one to ``RestartCount``. At daemon start
(:meth:`on_daemon_start`) the exited ``always`` containers run again, and the
``unless-stopped`` ones the user did not stop (the store remembers who stopped it).
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import CoveError
from ..model import Container, epoch_of
from .core import log

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def wants_restart(c: Container, code: int, attempts: int) -> bool:
    """Docker's ShouldRestart for an exit with ``code`` after ``attempts`` policy restarts."""
    rp = c.host_config.restart_policy or {}
    name = rp.get("Name") or "no"
    if c.state.stopped_by_user or c.host_config.auto_remove:
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(rp.get("MaximumRetryCount") or 0)
        return code != 0 and (limit == 0 or attempts < limit)
    return False


class Restarter:
    """The timers of pending restarts; ``start`` is the container service's start."""

    def __init__(self, containers: dict[str, Container], lock: Any, start: Any) -> None:
        self.containers, self.lock, self.start = containers, lock, start
        self.delay: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.timers: dict[str, threading.Timer] = {}
        self.closed = False

    def user_started(self, cid: str) -> None:
        """A start by the user: the on-failure count and the back-off begin again."""
        self.cancel(cid)
        self.attempts.pop(cid, None)
        self.delay.pop(cid, None)

    def cancel(self, cid: str) -> None:
        t = self.timers.pop(cid, None)
        if t is not None:
            t.cancel()

    def after_exit(self, c: Container, code: int) -> None:
        if self.closed or not wants_restart(c, code, self.attempts.get(c.id, 0)):
            return
        ran = epoch_of(c.state.finished_at) - epoch_of(c.state.started_at)
        delay = INITIAL_DELAY if ran >= RESET_AFTER else min(self.delay.get(c.id, INITIAL_DELAY / 2) * 2, MAX_DELAY)
        self.delay[c.id] = delay
        self.cancel(c.id)
        t = threading.Timer(delay, self._restart, (c.id,))
        t.daemon = True
        self.timers[c.id] = t
        t.start()

    def _restart(self, cid: str) -> None:
        with self.lock:
            self.timers.pop(cid, None)
            c = self.containers.get(cid)
            if self.closed or c is None or c.running or c.state.stopped_by_user:
                return
            self.attempts[cid] = self.attempts.get(cid, 0) + 1
            c.restart_count += 1
        try:
            self.start(cid)              # not under the lock: the runtime's start runs without it
        except CoveError as exc:
            log.warning("container %s: restart by policy failed: %s", c.name, exc)
        except Exception:  # noqa: BLE001 - a timer thread must not die silently
            log.exception("container %s: restart by policy failed", c.name)

    def on_daemon_start(self) -> None:
        """Exited containers under ``always`` (even one the user stopped, as dockerd) and
        ``unless-stopped`` (unless the user stopped it) that ran before start again."""
        for c in list(self.containers.values()):
            name = (c.host_config.restart_policy or {}).get("Name")
            wanted = name == "always" or (name == "unless-stopped" and not c.state.stopped_by_user)
            if c.state.status == "exited" and wanted and epoch_of(c.state.started_at) > 0:
                try:
                    self.start(c.id)
                    log.info("container %s (%s) started again by its restart policy", c.name, c.id[:12])
                except CoveError as exc:
                    log.warning("container %s: start by restart policy failed: %s", c.name, exc)

    def close(self) -> None:
        self.closed = True
        for cid in list(self.timers):
            self.cancel(cid)
