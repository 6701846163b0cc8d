"""32 clients at once (issue 14): operations per second and p99 latency, never a duplicate.

Each client churns through rounds of what ``run -p`` / ``network connect`` / ``rm -f`` send:

1. ``POST /containers/create`` on network ``par-a`` with ``-p 80`` (the daemon picks the host port);
2. ``POST /containers/C/start``, then ``GET /containers/C/json``: its address and host port;
3. ``POST /networks/par-b/connect``, then inspect again: its address on ``par-b``;
4. a clash: create + start a second container asking for the host port the first one holds
   (``-p PORT:80``): must be refused (cove: 409), and is removed;
5. ``DELETE /containers/C?force=1``.

Every address and host port is checked against those of the containers that are live at
that moment (started, not yet removed): a duplicate is counted and reported.  Over the API
for cove and Docker, over the CLI for Podman (no daemon).  The result: ops/s over the whole
run, p50/p99 of one operation, statuses, duplicates, refused clashes.

By hand only, never in CI: ``make bench`` runs it for every engine it has (``--parallel 0``
skips it); alone, for cove only: ``python bench/parallel.py [--clients 32] [--rounds 4]``
(as root: it re-runs itself inside ``tests/sandbox.sh`` with a private daemon).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path[:0] = [str(BENCH), str(ROOT / "src")]

from harness.engine import Engine  # noqa: E402
from harness.stats import Samples  # noqa: E402
from harness.unixhttp import UnixAPI  # noqa: E402

IMAGE = "bb"
NETS = {"par-a": "10.232.0.0/16", "par-b": "10.233.0.0/16"}
BASE_PORT = 41000


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Ledger:
    """The live containers' addresses and host ports; a second holder of one is a duplicate."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: dict[str, str] = {}
        self.duplicates: list[str] = []

    def claim(self, key: str, who: str) -> None:
        with self.lock:
            other = self.owner.get(key)
            if other is not None and other != who:
                self.duplicates.append(f"{key}: {other} and {who}")
            self.owner[key] = who

    def release(self, who: str) -> None:
        with self.lock:
            for k in [k for k, v in self.owner.items() if v == who]:
                del self.owner[k]

    def port_of_other(self, who: str) -> str | None:
        with self.lock:
            return next((k.split(":", 1)[1] for k, v in self.owner.items() if k.startswith("port:") and v != who),
                        None)


class Run:
    """``create_extra``: more fields for every ``POST /containers/create`` body (Podman's compat API
    is given ``StopTimeout: 0``: its ``DELETE ?force=1`` stops with the container's stop timeout,
    10 s by default, where Docker and cove kill at once; the API analogue of ``rm -f -t 0``)."""

    def __init__(self, eng: Engine, clients: int, rounds: int, create_extra: dict[str, Any] | None = None) -> None:
        self.eng, self.clients, self.rounds = eng, clients, rounds
        self.create_extra = dict(create_extra or {})
        self.ledger = Ledger()
        self.lat: list[float] = []
        self.by_op: dict[str, list[float]] = {}
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def record(self, op: str, status: int | str, seconds: float) -> None:
        with self.lock:
            self.lat.append(seconds)
            self.by_op.setdefault(op, []).append(seconds)
            self.statuses[f"{op} {status}"] += 1

    # -- over the API (cove, Docker) ------------------------------------------------------------
    def api_client(self, i: int) -> None:
        api = UnixAPI(self.eng.api_socket or "", timeout=300)

        def call(op: str, method: str, url: str, body: Any = None) -> tuple[int, Any]:
            t0 = time.perf_counter()
            status, reply, _ = api.request(method, url, body)
            self.record(op, status, time.perf_counter() - t0)
            return status, reply

        try:
            for r in range(self.rounds):
                name = f"par-{i}-{r}"
                body = {"Image": IMAGE, "Cmd": ["sleep", "3600"], "ExposedPorts": {"80/tcp": {}},
                        "HostConfig": {"NetworkMode": "par-a", "PortBindings": {"80/tcp": [{"HostPort": ""}]}},
                        **self.create_extra}
                st, reply = call("create", "POST", f"/containers/create?name={name}", body)
                if st != 201:
                    self.errors.append(f"{name} create: {st} {reply}")
                    continue
                st, reply = call("start", "POST", f"/containers/{name}/start")
                if st >= 300:
                    self.errors.append(f"{name} start: {st} {reply}")
                else:
                    st, info = call("inspect", "GET", f"/containers/{name}/json")
                    self._claim(name, info)
                    st, reply = call("connect", "POST", "/networks/par-b/connect", {"Container": name})
                    if st >= 300:
                        self.errors.append(f"{name} connect: {st} {reply}")
                    st, info = call("inspect", "GET", f"/containers/{name}/json")
                    self._claim(name, info)
                    self._clash(call, name)
                self.ledger.release(name)
                call("rm", "DELETE", f"/containers/{name}?force=1")
        finally:
            api.close()

    def _claim(self, name: str, info: Any) -> None:
        for net, ep in ((info or {}).get("NetworkSettings", {}).get("Networks") or {}).items():
            if ep.get("IPAddress"):
                self.ledger.claim(f"ip:{ep['IPAddress']}", name)
        for bindings in ((info or {}).get("NetworkSettings", {}).get("Ports") or {}).values():
            for b in bindings or []:
                if b.get("HostIp") in ("0.0.0.0", "") and b.get("HostPort"):
                    self.ledger.claim(f"port:{b['HostPort']}", name)

    def _clash(self, call: Any, name: str) -> None:
        port = self.ledger.port_of_other(name)
        if port is None:
            return
        clash = f"{name}-clash"
        body = {"Image": IMAGE, "Cmd": ["sleep", "3600"], "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"NetworkMode": "par-a", "PortBindings": {"80/tcp": [{"HostPort": port}]}},
                **self.create_extra}
        st, _ = call("clash-create", "POST", f"/containers/create?name={clash}", body)
        if st == 201:
            st, reply = call("clash-start", "POST", f"/containers/{clash}/start")
            if st < 300:
                # the port may have been freed meanwhile (its holder removed): then this is no clash
                self.ledger.claim(f"port:{port}", clash)
                self.ledger.release(clash)
            call("rm", "DELETE", f"/containers/{clash}?force=1")

    # -- over the CLI (Podman) ----------------------------------------------------------------------
    def cli_client(self, i: int) -> None:
        def cli(op: str, *args: str) -> Any:
            t0 = time.perf_counter()
            r = self.eng.cli(*args, timeout=300)
            self.record(op, r.rc, time.perf_counter() - t0)
            return r

        for r in range(self.rounds):
            name = f"par-{i}-{r}"
            res = cli("run", "run", "-d", "--name", name, "--network", "par-a", "-p", "80", IMAGE, "sleep", "3600")
            if res.rc != 0:
                self.errors.append(f"{name} run: {res.err.strip()[:200]}")
            else:
                out = cli("inspect", "inspect", name)
                self._claim(name, (json.loads(out.out) or [{}])[0] if out.rc == 0 else {})
                res = cli("connect", "network", "connect", "par-b", name)
                if res.rc != 0:
                    self.errors.append(f"{name} connect: {res.err.strip()[:200]}")
                out = cli("inspect", "inspect", name)
                self._claim(name, (json.loads(out.out) or [{}])[0] if out.rc == 0 else {})
            self.ledger.release(name)
            cli("rm", *self.eng.rm_args, name)

    def go(self) -> dict[str, Any]:
        target = self.api_client if self.eng.has_api else self.cli_client
        threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(self.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        fivexx = sum(n for k, n in self.statuses.items() if k.rsplit(" ", 1)[1].startswith("5"))
        # a refused clash may be a 500 (Docker answers "port is already allocated" with one)
        fivexx_other = sum(n for k, n in self.statuses.items()
                           if k.rsplit(" ", 1)[1].startswith("5") and not k.startswith("clash-"))
        # by operation and status ("clash-create 409", "clash-start 500"): a status alone would merge them
        clash = {k: n for k, n in sorted(self.statuses.items()) if k.startswith("clash-")}
        return {"mode": "api" if self.eng.has_api else "cli", "clients": self.clients, "rounds": self.rounds,
                "ops": len(self.lat), "seconds": round(wall, 2), "ops_per_s": round(len(self.lat) / wall, 1),
                "p50_ms": round(_pct(self.lat, 0.50) * 1000, 1), "p99_ms": round(_pct(self.lat, 0.99) * 1000, 1),
                "p99_ms_by_op": {op: round(_pct(v, 0.99) * 1000, 1) for op, v in sorted(self.by_op.items())},
                "statuses": dict(sorted(self.statuses.items())), "responses_5xx": fivexx,
                "responses_5xx_outside_clash": fivexx_other,
                "clash_statuses": clash, "duplicates": self.ledger.duplicates[:20],
                "duplicate_count": len(self.ledger.duplicates), "errors": self.errors[:20]}


def measure(eng: Engine, s: Samples, clients: int = 32, rounds: int = 4) -> None:
    """One run on ``eng`` (image ``bb`` imported); results in ``s.facts["parallel"]``, latencies in
    the ``parallel_op`` series."""
    for net, subnet in NETS.items():
        eng.track_network(net)
        eng.ok("network", "create", "--subnet", subnet, net)
    try:
        run = Run(eng, clients, rounds)
        out = run.go()
        s.facts["parallel"] = out
        for v in run.lat:
            s.add("parallel_op", v)
        s.errors.extend(f"parallel: {e}" for e in out["duplicates"])
    finally:
        eng.remove_containers([c for c in eng.cli("ps", "-aq").out.split()])
        for net in NETS:
            eng.cli("network", "rm", net)
            if net in eng.networks:
                eng.networks.remove(net)


def table(data: dict[str, Any]) -> str:
    """The Markdown table of ``make bench``'s report: one column per engine that ran."""
    rows = [("clients × rounds", lambda p: f"{p['clients']} × {p['rounds']} ({p['mode']})"),
            ("operations/s", lambda p: f"{p['ops_per_s']}"), ("p50 (ms)", lambda p: f"{p['p50_ms']}"),
            ("p99 (ms)", lambda p: f"{p['p99_ms']}"), ("5xx answers", lambda p: f"{p['responses_5xx']}"),
            ("duplicate address or port", lambda p: f"{p['duplicate_count']}"),
            ("clash answers", lambda p: ", ".join(f"{k}×{v}" for k, v in p["clash_statuses"].items()) or "–")]
    engines = [e for e in ("cove", "docker", "podman") if (data.get(e) or {}).get("facts", {}).get("parallel")]
    if not engines:
        return ""
    lines = ["| | " + " | ".join(engines) + " |", "|---|" + "---:|" * len(engines)]
    for label, fn in rows:
        lines.append(f"| {label} | " + " | ".join(fn(data[e]["facts"]["parallel"]) for e in engines) + " |")
    return "\n".join(lines)


def _inside(args: argparse.Namespace) -> int:
    from harness.covedaemon import CoveDaemon

    daemon = CoveDaemon()
    eng = daemon.engine()
    s = Samples()
    try:
        daemon.start()
        daemon.import_busybox(eng)
        measure(eng, s, args.clients, args.rounds)
    finally:
        eng.cleanup()
        daemon.stop()
    print(json.dumps(s.facts["parallel"], indent=1))
    return 0 if not s.facts["parallel"]["duplicate_count"] and not s.facts["parallel"]["responses_5xx"] else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inside:
        return _inside(args)
    if os.geteuid() != 0:
        print("bench/parallel.py: run as root (it makes a throwaway namespace)", file=sys.stderr)
        return 2
    return subprocess.call([str(ROOT / "tests" / "sandbox.sh"), sys.executable, __file__, "--inside",
                            "--clients", str(args.clients), "--rounds", str(args.rounds)], cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
