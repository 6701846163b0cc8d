"""``cove stats`` and ``GET /containers/{id}/stats`` on the real kernel: known traffic shows up.

``ping -s 1000 -c 20`` from one container to another puts 20 frames of 1042 bytes (1000 +
ICMP 8 + IPv4 20 + Ethernet 14) each way; both containers' ``eth0`` counters must move by
that much (plus a little ARP), the sender's tx matching the receiver's rx.  The same on a
macvlan network, which has no host-side peer to read.  The docker CLI's ``docker stats
--no-stream`` prints the table with NET I/O against cove; a stopped container gets
Docker's empty stats.  The stats do not depend on the firewall, so one backend is enough.
"""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cove.stats import decimal_size

from .conftest import COVE, Daemon, docker_cli

pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("daemon", ["nftables"], indirect=True, scope="module")]

FRAME = 1042
COUNT = 20
SLACK = 4000            # ARP and IPv6 router/neighbour/MLD messages of links just up (< 4 pings)


def api(d: Daemon, path: str) -> tuple[int, Any]:
    """GET on the daemon's socket: (status, decoded JSON body)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: cove\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def eth0(d: Daemon, name: str) -> dict[str, int]:
    status, body = api(d, f"/containers/{name}/stats?stream=false&one-shot=true")
    assert status == 200, body
    counters: dict[str, int] = body["networks"]["eth0"]
    return counters


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def test_ping_between_two_containers_shows_in_both_stats(cove: Daemon) -> None:
    cove.ok("network", "create", "statsnet")
    cove.ok("run", "-d", "--name", "sa", "--network", "statsnet", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "sb", "--network", "statsnet", "bb", "sleep", "300")
    ip_b = cove.ok("inspect", "-f", "{{.NetworkSettings.Networks.statsnet.IPAddress}}", "sb").strip()
    a0, b0 = eth0(cove, "sa"), eth0(cove, "sb")
    cove.ok("exec", "sa", "ping", "-c", str(COUNT), "-i", "0.05", "-s", "1000", "-W", "1", ip_b)
    da, db = delta(eth0(cove, "sa"), a0), delta(eth0(cove, "sb"), b0)
    payload = COUNT * FRAME
    for d, what in ((da, "sa"), (db, "sb")):
        assert payload <= d["tx_bytes"] <= payload + SLACK, (what, d)
        assert payload <= d["rx_bytes"] <= payload + SLACK, (what, d)
        assert COUNT <= d["tx_packets"] <= COUNT + 40 and COUNT <= d["rx_packets"] <= COUNT + 40, (what, d)
        assert d["rx_errors"] == d["tx_errors"] == 0, (what, d)
    # not swapped: what sa sent is what sb received, and the other way round
    assert abs(da["tx_bytes"] - db["rx_bytes"]) <= SLACK and abs(db["tx_bytes"] - da["rx_bytes"]) <= SLACK

    # the CLI: docker's table, and every interface's counters
    # (a late IPv6 neighbour or MLD message can move a counter while the table is printed, so the
    # comparison is made on a try where the counters read before and after the table agree)
    for _ in range(10):
        before = eth0(cove, "sa")
        table = cove.ok("stats", "--no-stream", "sa", "sb").splitlines()
        if eth0(cove, "sa") == before:
            break
        time.sleep(0.2)
    assert re.split(r"\s{2,}", table[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                             "NET I/O", "BLOCK I/O", "PIDS"]
    rows = {re.split(r"\s{2,}", line)[1]: re.split(r"\s{2,}", line) for line in table[1:]}
    assert rows["sa"][5] == f"{decimal_size(before['rx_bytes'])} / {decimal_size(before['tx_bytes'])}"
    per_if = cove.ok("stats", "--no-stream", "--interfaces", "sa").splitlines()
    fields = per_if[1].split()
    assert fields[:2] == ["sa", "eth0"] and int(fields[2]) >= payload and int(fields[6]) >= payload
    # cove graph --stats labels the interface with the same numbers
    dot = cove.ok("graph", "--stats", "--network", "statsnet")
    assert re.search(r"rx \d+(\.\d+)?kB / tx \d+(\.\d+)?kB", dot), dot
    # and what the container itself sees: its own eth0 counters
    inside = cove.ok("exec", "sa", "cat", "/sys/class/net/eth0/statistics/tx_bytes").strip()
    assert abs(int(inside) - eth0(cove, "sa")["tx_bytes"]) <= SLACK


def test_http_download_counts_on_the_right_side(cove: Daemon, tmp_path: Path) -> None:
    """One-way traffic tells rx from tx: the client receives the file, the server sends it."""
    size = 300_000
    (tmp_path / "blob").write_bytes(b"x" * size)
    cove.ok("network", "create", "dlnet")
    cove.ok("run", "-d", "--name", "web", "--network", "dlnet", "host", "python3", "-m", "http.server", "80",
            "--directory", str(tmp_path))
    cove.ok("run", "-d", "--name", "client", "--network", "dlnet", "bb", "sleep", "300")
    ip = cove.ok("inspect", "-f", "{{.NetworkSettings.Networks.dlnet.IPAddress}}", "web").strip()
    for _ in range(50):                                       # until the server listens
        if cove.cli("exec", "client", "wget", "-q", "-O", "/dev/null", f"http://{ip}/").returncode == 0:
            break
        time.sleep(0.1)
    c0, w0 = eth0(cove, "client"), eth0(cove, "web")
    cove.ok("exec", "client", "wget", "-q", "-O", "/dev/null", f"http://{ip}/blob")
    dc, dw = delta(eth0(cove, "client"), c0), delta(eth0(cove, "web"), w0)
    overhead = size // 10                                     # TCP/IP/Ethernet headers, the HTTP head
    assert size <= dc["rx_bytes"] <= size + overhead and dc["tx_bytes"] < overhead, dc
    assert size <= dw["tx_bytes"] <= size + overhead and dw["rx_bytes"] < overhead, dw


def test_macvlan_container_has_counters_without_a_host_peer(cove: Daemon, lan: str) -> None:
    cove.ok("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
            "-o", "parent=lan0", "statslan")
    cove.ok("run", "-d", "--name", "sm", "--network", "statslan", "bb", "sleep", "300")
    before = eth0(cove, "sm")
    cove.ok("exec", "sm", "ping", "-c", "10", "-i", "0.05", "-s", "1000", "-W", "1", "192.168.241.2")
    d = delta(eth0(cove, "sm"), before)
    assert 10 * FRAME <= d["tx_bytes"] <= 10 * FRAME + SLACK and 10 * FRAME <= d["rx_bytes"] <= 10 * FRAME + SLACK, d


def stream_cli(d: Daemon, tty: bool, *args: str, seconds: float = 2.6) -> str:
    """What ``cove ARGS`` writes in ``seconds`` to a pipe, or to a terminal (a pty) if ``tty``."""
    import os
    import pty

    master, slave = pty.openpty() if tty else os.pipe()
    p = subprocess.Popen([*COVE, *args], stdout=slave, stderr=subprocess.DEVNULL, env=d.env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        p.kill()
        p.wait()
        os.close(master)
    return out.decode(errors="replace")


def test_stream_and_stopped_container(cove: Daemon) -> None:
    cove.ok("run", "-d", "--name", "ss", "bb", "sleep", "300")
    # the stream: one line a second, each with the previous one's time as preread
    s = socket.socket(socket.AF_UNIX)
    s.connect(cove.sock)
    s.sendall(b"GET /containers/ss/stats HTTP/1.0\r\nHost: cove\r\n\r\n")
    reader = s.makefile("rb")
    lines: list[dict[str, Any]] = []
    while len(lines) < 2:
        line = reader.readline()
        assert line, "the stream ended early"
        if line.startswith(b"{"):
            lines.append(json.loads(line))
    s.close()
    assert lines[1]["preread"] == lines[0]["read"] and "eth0" in lines[1]["networks"]
    assert lines[1]["pids_stats"]["current"] >= 1 and lines[1]["memory_stats"]["usage"] > 0   # from the cgroups

    # the CLI without --no-stream: one table a tick into a pipe, redrawn in place on a terminal
    for tty in (False, True):
        out = stream_cli(cove, tty, "stats", "ss")
        assert out.count("NET I/O") >= 2, out
        assert ("\x1b[2J" in out) == tty, out

    cove.ok("stop", "-t", "0", "ss")
    status, body = api(cove, "/containers/ss/stats?stream=false")
    assert status == 200 and body["read"] == "0001-01-01T00:00:00Z" and "networks" not in body
    assert body["name"] == "/ss"
    table = cove.ok("stats", "--no-stream", "ss").splitlines()
    assert re.split(r"\s{2,}", table[1])[1:] == ["ss", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
    status, body = api(cove, "/containers/nope/stats?stream=false")
    assert status == 404 and body["message"] == "No such container: nope"
    r = cove.cli("stats", "--no-stream", "nope")
    assert r.returncode != 0 and "No such container: nope" in r.stderr


def test_docker_cli_stats_no_stream(cove: Daemon, docker_bin: str) -> None:
    cove.ok("network", "create", "dstats")
    cove.ok("run", "-d", "--name", "da", "--network", "dstats", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "db", "--network", "dstats", "bb", "sleep", "300")
    cove.ok("exec", "da", "ping", "-c", "5", "-i", "0.05", "-s", "1000", "-W", "1", "db")
    cove.ok("stop", "-t", "0", "db")
    env = {**cove.env, "DOCKER_HOST": f"unix://{cove.sock}"}
    r = subprocess.run([docker_cli() or docker_bin, "stats", "--no-stream", "da", "db"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                             "NET I/O", "BLOCK I/O", "PIDS"], r.stdout
    rows = {re.split(r"\s{2,}", line)[1]: re.split(r"\s{2,}", line) for line in lines[1:]}
    rx, tx = rows["da"][5].split(" / ")
    assert rx.endswith("kB") and tx.endswith("kB") and float(tx[:-2]) >= 5 * FRAME / 1000, rows["da"]
    assert rows["db"][5] == "0B / 0B" and rows["db"][7] == "0"          # stopped: Docker's zeros
    # without names: the running containers only
    r = subprocess.run([docker_cli() or docker_bin, "stats", "--no-stream", "--format", "{{.Name}} {{.NetIO}}"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["da"], r.stdout
