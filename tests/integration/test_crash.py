"""Crashes, as a user lives them: ``kill -9`` of the daemon, and of a container's shim.

A clean SIGTERM restart is tested in test_core.py; here nothing gets the chance to tidy up.
Afterwards the user's view must hold: names still resolve, published ports still answer,
isolation still holds, and once everything is removed nothing is left behind (links,
container namespaces, firewall rules and set/map elements).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import COVE, Daemon, firewall_text, sandbox_links

pytestmark = pytest.mark.integration

WEB = ["host", "python3", "-m", "http.server", "80"]


def fetch(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
        return True
    except OSError:
        return False


def wait_until(what: str, predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def ip_of(cove: Daemon, name: str, net: str) -> str:
    return json.loads(cove.ok("inspect", name))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def resolve(cove: Daemon, container: str, name: str) -> list[str]:
    r = cove.cli("exec", container, "getent", "ahostsv4", name)
    return sorted({line.split()[0] for line in r.stdout.splitlines()}) if r.returncode == 0 else []


def can_ping(cove: Daemon, src: str, dst: str) -> bool:
    return cove.cli("exec", src, "ping", "-c1", "-W1", dst).returncode == 0


def rules() -> str:
    """The sandbox's firewall, comparable before/after (no iptables-save dates or counters)."""
    text = firewall_text()
    return "\n".join(re.sub(r"\[\d+:\d+\]", "", line) for line in text.splitlines() if not line.startswith("#"))


def leftovers(cove: Daemon) -> list[str]:
    netns = Path(cove.exec_root) / "netns"
    return sorted(p.name for p in netns.iterdir()) if netns.exists() else []


def running(pid: int, start: str) -> bool:
    """PID still runs as the process that started at ``start`` (not reused, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"


def processes(cove: Daemon) -> dict[str, list[tuple[int, str]]]:
    """Container id (12) -> the running processes its state directory records (the init's ``pid``
    and the shim's ``shim.pid``, each as PID and start time)."""
    alive: dict[str, list[tuple[int, str]]] = {}
    root = Path(cove.exec_root) / "containers"
    for state in root.iterdir() if root.exists() else []:
        for name in ("pid", "shim.pid"):
            try:
                pid, start = (state / name).read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if running(int(pid), start):
                alive.setdefault(state.name[:12], []).append((int(pid), start))
    return alive


def all_gone(procs: dict[str, list[tuple[int, str]]]) -> bool:
    """Every one of them has ended (waiting a little: an orphan is reaped by the machine's init)."""
    gone = lambda: not any(running(*p) for ps in procs.values() for p in ps)  # noqa: E731
    try:
        wait_until("the processes to end", gone, timeout=10)
    except AssertionError:
        return False
    return True


def kill9_daemon(cove: Daemon) -> None:
    assert cove.proc is not None
    cove.proc.send_signal(signal.SIGKILL)
    cove.proc.wait()
    cove.proc = None


def test_kill_9_of_the_daemon_loses_nothing_a_user_sees(cove: Daemon) -> None:
    links, fw, ns = sandbox_links(), rules(), leftovers(cove)
    cove.ok("network", "create", "--subnet", "10.81.0.0/24", "crashnet")
    cove.ok("run", "-d", "--name", "web", "--network", "crashnet", "--network-alias", "www", "-p", "8391:80", *WEB)
    cove.ok("run", "-d", "--name", "asker", "--network", "crashnet", "host", "sleep", "3600")
    cove.ok("run", "-d", "--name", "pinger", "--network", "crashnet", "bb", "sleep", "3600")
    cove.ok("run", "-d", "--name", "stranger", "bb", "sleep", "3600")            # the default bridge
    web_ip = ip_of(cove, "web", "crashnet")
    wait_until("the published port", lambda: fetch("http://127.0.0.1:8391/", 1))
    assert resolve(cove, "asker", "www") == [web_ip]
    assert can_ping(cove, "pinger", web_ip) and not can_ping(cove, "stranger", web_ip)
    pid = json.loads(cove.ok("inspect", "web"))[0]["State"]["Pid"]

    kill9_daemon(cove)
    # the containers and their published port do not depend on the daemon's process
    assert os.path.exists(f"/proc/{pid}")
    assert fetch("http://127.0.0.1:8391/")
    cove.start()

    data = json.loads(cove.ok("inspect", "web"))[0]
    assert data["State"]["Running"] and data["State"]["Pid"] == pid
    assert fetch("http://127.0.0.1:8391/")
    # Seen failing with the protection removed: without `self.start_resolver(...)` in
    # reconcile() (src/cove/engine/reconcile.py) the names gave [] on both backends (the SIGTERM
    # restart test of test_core.py does not look at names).
    assert resolve(cove, "asker", "www") == [web_ip] and resolve(cove, "asker", "web") == [web_ip]
    assert can_ping(cove, "pinger", web_ip)
    assert not can_ping(cove, "stranger", web_ip)                                  # isolation holds
    assert resolve(cove, "asker", "stranger") == []
    # the restarted daemon still manages them: a new container joins, a stop is seen by names
    cove.ok("run", "-d", "--name", "late", "--network", "crashnet", "bb", "sleep", "3600")
    assert resolve(cove, "asker", "late") == [ip_of(cove, "late", "crashnet")]
    cove.ok("stop", "-t", "0", "web")
    assert resolve(cove, "asker", "www") == []
    assert not fetch("http://127.0.0.1:8391/", 1)

    pids = processes(cove)
    cove.ok("rm", "-f", "web", "asker", "pinger", "stranger", "late")
    cove.ok("network", "rm", "crashnet")
    assert len(pids) == 4 and all_gone(pids)
    assert sandbox_links() == links
    assert leftovers(cove) == ns
    assert rules() == fw


def test_kill_9_of_the_daemon_in_the_middle_of_runs_leaves_nothing_after_cleanup(cove: Daemon) -> None:
    # the daemon dies while containers are being made; what the restarted daemon shows can be
    # removed, and then nothing of them is left
    links, fw, ns = sandbox_links(), rules(), leftovers(cove)
    cove.ok("network", "create", "--subnet", "10.82.0.0/24", "midnet")
    env = cove.env
    runs = [subprocess.Popen([*COVE, "run", "-d", "--name", f"mid{i}", "--network", "midnet", "-p", f"{8400 + i}:80",
                              "bb", "sleep", "3600"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(4)]
    # kill it as soon as the first container's namespace or veth exists: the runs are under way
    wait_until("a container being made", lambda: len(leftovers(cove)) > len(ns)
               or any(n.startswith("veth") for n in sandbox_links() - links), timeout=60)
    kill9_daemon(cove)
    codes = [p.wait(60) for p in runs]
    assert any(code != 0 for code in codes), "every run had finished: the kill came too late to test anything"
    cove.start()
    # what the restarted daemon lists is whole: each container starts and is on its network,
    # and nothing runs that it does not list as running
    listed = cove.ok("ps", "-aq").split()
    running = cove.ok("ps", "-q").split()
    # Found by this test (fixed in reconcile()): a container whose shim the dead daemon had started
    # but not recorded showed as Created while its process ran, and `start` said "already
    # running"; it failed that way in 4 of 12 runs before the fix, and the fix's path was taken in
    # 3 of 6 daemon runs after it.
    before = processes(cove)
    assert sorted(before) == sorted(running), (cove.ok("ps", "-a"), before)
    for cid in listed:
        if cid not in running:
            cove.ok("start", cid)
        assert ip_of(cove, cid, "midnet").startswith("10.82.0.")
    pids = processes(cove)
    for cid in listed:
        cove.ok("rm", "-f", cid)
    cove.ok("network", "rm", "midnet")
    assert all_gone(pids) and all_gone(before)
    assert sandbox_links() == links
    assert leftovers(cove) == ns
    assert rules() == fw


def shim_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("daemon_down", [False, True], ids=["daemon-up", "daemon-down-too"])
def test_kill_9_of_a_shim_is_seen_and_cleaned_up(cove: Daemon, daemon_down: bool) -> None:
    links, fw, ns = sandbox_links(), rules(), leftovers(cove)
    cove.ok("network", "create", "--subnet", "10.83.0.0/24", "shimnet")
    cove.ok("run", "-d", "--name", "victim", "--network", "shimnet", "-p", "8392:80", *WEB)
    cove.ok("run", "-d", "--name", "witness", "--network", "shimnet", "host", "sleep", "3600")
    wait_until("the published port", lambda: fetch("http://127.0.0.1:8392/", 1))
    pid = json.loads(cove.ok("inspect", "victim"))[0]["State"]["Pid"]
    shim = shim_of(pid)
    assert "cove.runtime.shim" in Path(f"/proc/{shim}/cmdline").read_text().replace("\0", " ")
    if daemon_down:                       # the shim dies while no daemon watches: seen at restart
        kill9_daemon(cove)
    os.kill(shim, signal.SIGKILL)
    if daemon_down:
        cove.start()

    # the user sees the container stop: not running, its name gone, its port closed
    wait_until("the container to be seen as stopped",
               lambda: not json.loads(cove.ok("inspect", "victim"))[0]["State"]["Running"])
    wait_until("the container's processes to end", lambda: not os.path.exists(f"/proc/{pid}"))
    assert resolve(cove, "witness", "victim") == []
    assert not fetch("http://127.0.0.1:8392/", 1)
    # it starts again as before, and the others were never touched
    cove.ok("start", "victim")
    wait_until("the published port again", lambda: fetch("http://127.0.0.1:8392/", 1))
    assert resolve(cove, "witness", "victim") == [ip_of(cove, "victim", "shimnet")]

    pids = processes(cove)
    cove.ok("rm", "-f", "victim", "witness")
    cove.ok("network", "rm", "shimnet")
    assert len(pids) == 2 and all_gone(pids)
    assert sandbox_links() == links
    assert leftovers(cove) == ns
    assert rules() == fw


@pytest.fixture(autouse=True)
def _daemon_back_up(cove: Daemon) -> Iterator[None]:
    """A test that failed between the kill and the restart leaves the module's daemon running."""
    yield
    if cove.proc is None:
        cove.start()
