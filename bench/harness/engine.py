"""One system under test (cove, Docker or Podman): its CLI, its API socket, what the bench made.

Scenarios call :meth:`Engine.cli` exactly as a user types commands; every container
and network name they create is recorded first, so :meth:`Engine.cleanup` can remove
them all even when a scenario fails half-way.  Both daemons are private to the bench
(own socket, own namespace), so the sweep in ``cleanup`` may remove every container.
Podman has no daemon (``api_socket`` is None: the API series are skipped) and its
``rm -f`` sends SIGTERM and waits 10 s before SIGKILL, so it is run as ``rm -f -t 0``
(Docker's and cove's ``rm -f`` kill at once); ``rm_args`` holds that difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .proc import Result, run
from .unixhttp import UnixAPI


@dataclass
class Engine:
    name: str
    argv: list[str]
    env: dict[str, str]
    api_socket: str | None
    rm_args: tuple[str, ...] = ("rm", "-f")
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    cleanup_errors: list[str] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 60.0) -> Result:
        return run([*self.argv, *args], env=self.env, timeout=timeout)

    def ok(self, *args: str, timeout: float = 60.0) -> Result:
        return self.cli(*args, timeout=timeout).check()

    def api(self) -> UnixAPI:
        if self.api_socket is None:
            raise RuntimeError(f"{self.name} has no API socket")
        return UnixAPI(self.api_socket)

    @property
    def has_api(self) -> bool:
        return self.api_socket is not None

    def rm(self, *names: str, timeout: float = 60.0) -> Result:
        return self.cli(*self.rm_args, *names, timeout=timeout)

    def track_container(self, name: str) -> str:
        self.containers.append(name)
        return name

    def track_network(self, name: str) -> str:
        self.networks.append(name)
        return name

    def remove_containers(self, names: list[str], timeout: float = 120.0) -> None:
        """``rm -f`` in batches of 50 names; errors are recorded, not raised."""
        for i in range(0, len(names), 50):
            batch = names[i:i + 50]
            r = self.rm(*batch, timeout=timeout)
            if r.rc != 0 and not any(s in r.err.lower() for s in ("no such container", "not found", "in progress")):
                self.cleanup_errors.append(f"rm -f {' '.join(batch[:3])}...: {r.err.strip()[:200]}")
        gone = set(names)
        self.containers = [c for c in self.containers if c not in gone]

    def cleanup(self) -> None:
        """Remove every container on the daemon and every network the bench created."""
        self.remove_containers(list(self.containers))
        # then anything else on the (private) daemon; by ID, each container named once
        self.remove_containers(self.cli("ps", "-aq", timeout=60).out.split())
        for net in reversed(self.networks):
            r = self.cli("network", "rm", net, timeout=60)
            if r.rc != 0 and "not found" not in r.err.lower() and "no such" not in r.err.lower():
                self.cleanup_errors.append(f"network rm {net}: {r.err.strip()[:200]}")
        self.networks = []
        left = self.cli("ps", "-aq", timeout=60).out.split()
        if left:
            self.cleanup_errors.append(f"{self.name}: containers left after clean-up: {left}")
