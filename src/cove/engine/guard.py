"""Put cove's firewall back when someone flushes it.

An admin's ``nft flush ruleset``, ``iptables -F`` or a firewall service
reloading would silently cut every container off and close every published
port.  A thread polls the backend's cheap ``intact()`` check twice a second;
on a miss it rewrites cove's rules from the engine's state (the same
``setup`` + ``sync`` as at start-up) and logs that it did.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .core import log

if TYPE_CHECKING:
    from . import Engine

INTERVAL = 0.5


class FirewallGuard:
    def __init__(self, engine: Engine, interval: float = INTERVAL) -> None:
        self.engine = engine
        self.interval = interval
        self.restored = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cove-firewall-guard", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        fw = self.engine.driver_ctx.firewall
        while not self._stop.wait(self.interval):
            try:
                if fw.intact():
                    continue
                with self.engine.lock:
                    if fw.intact():
                        continue
                    self.engine.restore_firewall()
                self.restored += 1
                log.warning("cove's %s rules were flushed by someone else: restored", fw.name)
            except Exception as exc:  # noqa: BLE001 - the guard keeps watching
                log.warning("firewall guard: %s", exc)
