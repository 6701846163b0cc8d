"""32 clients at once on one daemon (issue 14): no duplicate address or host port, clashes 409, no 5xx.

Each client creates a container on ``cc-a`` with ``-p 80`` (a host port the daemon picks), starts
it, connects it to ``cc-b``, reads its addresses and port, then asks for a container with the
host port another live container holds (must be 409), and removes its container.  Addresses
and ports are checked against those of every container live at that moment.  Throughput and
latency are measured by ``bench/parallel.py`` (``make bench``), never asserted here.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon

pytestmark = pytest.mark.integration

CLIENTS = 32


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=300)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-cc-")
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=f"/run/cove/cc-{uuid.uuid4().hex[:8]}",
               log=f"{tmp}/daemon.log")
    d.start("--firewall-backend", "nftables")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        for net in ("cc-a", "cc-b"):
            d.cli("network", "rm", net)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class Live:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: dict[str, str] = {}
        self.duplicates: list[str] = []

    def claim(self, key: str, who: str) -> None:
        with self.lock:
            if self.owner.get(key, who) != who:
                self.duplicates.append(f"{key}: {self.owner[key]} and {who}")
            self.owner[key] = who

    def release(self, who: str) -> None:
        with self.lock:
            for k in [k for k, v in self.owner.items() if v == who]:
                del self.owner[k]

    def port_held_by_other(self, who: str) -> str | None:
        with self.lock:
            return next((k[5:] for k, v in self.owner.items() if k.startswith("port:") and v != who), None)


def test_32_clients_churning_never_share_an_address_or_port(daemon: Daemon) -> None:
    daemon.ok("network", "create", "--subnet", "10.234.0.0/24", "cc-a")
    daemon.ok("network", "create", "--subnet", "10.235.0.0/24", "cc-b")
    live = Live()
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        conn = UnixConnection(daemon.sock)

        def call(op: str, method: str, url: str, body: Any = None) -> tuple[int, Any]:
            conn.request(method, url, body=json.dumps(body).encode() if body is not None else None,
                         headers={"Content-Type": "application/json"} if body is not None else {})
            r = conn.getresponse()
            raw = r.read()
            with lock:
                statuses[f"{op} {r.status}"] += 1
                if r.status >= 500:
                    problems.append(f"{op} {url}: {r.status} {raw[:200]!r}")
            return r.status, json.loads(raw) if raw and r.headers.get("Content-Type", "").startswith(
                "application/json") else None

        def claim(name: str) -> None:
            _, info = call("inspect", "GET", f"/containers/{name}/json")
            for ep in info["NetworkSettings"]["Networks"].values():
                live.claim(f"ip:{ep['IPAddress']}", name)
            for bindings in (info["NetworkSettings"]["Ports"] or {}).values():
                for b in bindings or []:
                    if b["HostIp"] == "0.0.0.0":
                        live.claim(f"port:{b['HostPort']}", name)

        name = f"cc-{i}"
        spec = {"Image": "bb", "Cmd": ["sleep", "3600"], "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"NetworkMode": "cc-a", "PortBindings": {"80/tcp": [{"HostPort": ""}]}}}
        try:
            go.wait()
            st, reply = call("create", "POST", f"/containers/create?name={name}", spec)
            assert st == 201, reply
            st, reply = call("start", "POST", f"/containers/{name}/start")
            assert st == 204, reply
            claim(name)
            st, reply = call("connect", "POST", "/networks/cc-b/connect", {"Container": name})
            assert st == 200, reply
            claim(name)
            port = live.port_held_by_other(name)
            if port is not None:
                clash = {**spec, "HostConfig": {**spec["HostConfig"],
                                                "PortBindings": {"80/tcp": [{"HostPort": port}]}}}
                st, reply = call("clash", "POST", f"/containers/create?name={name}-clash", clash)
                if st == 201:        # its holder may have gone meanwhile: then no clash, and it is removed
                    call("clash-rm", "DELETE", f"/containers/{name}-clash?force=1")
                else:
                    assert st == 409 and port in reply["message"], (st, reply)
            live.release(name)
            st, reply = call("rm", "DELETE", f"/containers/{name}?force=1")
            assert st == 204, reply
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            with lock:
                problems.append(f"client {i}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    print(dict(sorted(statuses.items())))
    assert problems == [] and live.duplicates == [], (problems, live.duplicates)
    assert statuses["start 204"] == CLIENTS and statuses["connect 200"] == CLIENTS
    assert statuses["clash 409"] >= 1, statuses
    assert daemon.ok("ps", "-aq").split() == []
