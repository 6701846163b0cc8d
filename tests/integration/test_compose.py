"""docker-compose 1.29.2 (Debian 12's) drives cove through a project's whole life (issue #18).

Two networks, a published port, a bind, a named volume, a healthcheck gate
(``depends_on: condition: service_healthy``) and a restart policy: ``up -d``, ``ps``,
``exec``, ``--scale``, ``logs``, recreate, ``down -v``. Plus the effects one by one
through the docker CLI: a bind's file on the host, a volume's data across a recreate,
an unhealthy container, ``on-failure:2`` restarted exactly twice, an ``always``
container back after a daemon restart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from .conftest import Daemon, docker_cli

pytestmark = pytest.mark.integration

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"

PROJECT = """\
version: "2.4"
services:
  db:
    image: bb
    command: ["sh", "-c", "sleep 2; echo ready > /data/ready; echo db up; exec sleep 3600"]
    volumes:
      - dbdata:/data
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/ready"]
      interval: 500ms
      timeout: 2s
      retries: 20
    networks: [back]
    environment:
      GEN: "1"
  web:
    image: bb
    command: ["sh", "-c", "echo hello > /srv/hello.txt; echo web up; exec httpd -f -p 8080 -h /srv"]
    ports: ["18480:8080"]
    volumes:
      - ./site:/srv
    depends_on:
      db:
        condition: service_healthy
    networks: [front, back]
    restart: always
  worker:
    image: bb
    command: ["sh", "-c", "echo worker up; exec sleep 3600"]
    networks: [back]
volumes:
  dbdata: {}
networks:
  front: {}
  back: {}
"""


def wait_for(pred: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Tools:
    def __init__(self, cove: Daemon, project_dir: str) -> None:
        self.cove, self.dir = cove, project_dir
        self.env = {**cove.env, "DOCKER_HOST": f"unix://{cove.sock}", "COMPOSE_PROJECT_NAME": "cvt",
                    "COMPOSE_INTERACTIVE_NO_CLI": "1"}

    def compose(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([COMPOSE, "--no-ansi", *args], cwd=self.dir, env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"docker-compose {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([docker_cli() or "docker-cli-missing", *args], env=self.env, capture_output=True,
                           text=True, timeout=60)
        if check:
            assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r

    def inspect(self, name: str) -> dict[str, object]:
        out: list[dict[str, object]] = json.loads(self.docker("inspect", name).stdout)
        return out[0]


@pytest.fixture
def tools(cove: Daemon, docker_bin: str) -> Iterator[Tools]:
    d = tempfile.mkdtemp(prefix="cove-compose-")
    t = Tools(cove, d)
    try:
        yield t
    finally:
        t.compose("down", "-v", "-t", "1", check=False)
        for v in t.docker("volume", "ls", "-q", check=False).stdout.split():
            t.docker("volume", "rm", "-f", v, check=False)
        shutil.rmtree(d, ignore_errors=True)


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return None


def test_compose_project_whole_life(tools: Tools) -> None:
    assert os.access(COMPOSE, os.X_OK), "docker-compose is not installed (scripts/install.sh installs it)"
    Path(tools.dir, "docker-compose.yml").write_text(PROJECT)
    t0 = time.monotonic()
    tools.compose("up", "-d")
    # the gate: web was created only once db was healthy (db sleeps 2 s before its check can pass)
    assert time.monotonic() - t0 > 2
    db = tools.inspect("cvt_db_1")
    assert db["State"]["Health"]["Status"] == "healthy"          # type: ignore[index]
    # the bind: what web wrote is on the host
    site = Path(tools.dir, "site")
    wait_for(lambda: (site / "hello.txt").exists(), "web's file through the bind")
    assert (site / "hello.txt").read_text() == "hello\n"
    # the published port, served from the bind
    wait_for(lambda: fetch("http://127.0.0.1:18480/hello.txt") == "hello\n", "the published port")
    # ps and exec; names across the two networks
    ps = tools.compose("ps").stdout
    assert "cvt_web_1" in ps and "cvt_db_1" in ps and "healthy" in ps
    assert tools.compose("exec", "-T", "db", "cat", "/data/ready").stdout == "ready\n"
    assert tools.compose("exec", "-T", "web", "ping", "-c1", "-W2", "db").returncode == 0
    assert tools.compose("exec", "-T", "worker", "ping", "-c1", "-W2", "web").returncode == 0
    # web is on front too, worker and db are not
    web = tools.inspect("cvt_web_1")
    assert set(web["NetworkSettings"]["Networks"]) == {"cvt_front", "cvt_back"}      # type: ignore[index]
    assert web["HostConfig"]["RestartPolicy"]["Name"] == "always"                   # type: ignore[index]
    # the named volume, with compose's labels
    vol = json.loads(tools.docker("volume", "inspect", "cvt_dbdata").stdout)[0]
    assert vol["Labels"]["com.docker.compose.project"] == "cvt"
    assert Path(vol["Mountpoint"], "ready").read_text() == "ready\n"
    # scale
    tools.compose("up", "-d", "--scale", "worker=3")
    names = tools.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert {"cvt_worker_1", "cvt_worker_2", "cvt_worker_3"} <= set(names)
    # logs: every container's output, under its name; -t stamps each line with when it was written
    services = {"db_1": "db up", "web_1": "web up", "worker_1": "worker up", "worker_2": "worker up",
                "worker_3": "worker up"}
    logged = [""]

    def all_logged() -> bool:
        logged[0] = tools.compose("logs", "--no-color").stdout
        return all(re.search(rf"^{n}\s+\| {m}$", logged[0], re.M) for n, m in services.items())
    try:
        wait_for(all_logged, "every container's output in compose logs")
    except AssertionError:
        raise AssertionError(f"compose logs printed:\n{logged[0]}") from None
    stamped = tools.compose("logs", "--no-color", "-t").stdout
    for n, m in services.items():
        hit = re.search(rf"^{n}\s+\| (\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}Z) {m}$", stamped, re.M)
        assert hit, f"{n}: no stamped line in\n{stamped}"
        when = datetime.strptime(hit.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
        assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 600
    # the restart policy: web's process dies, the engine brings it back
    pid = web["State"]["Pid"]                                                        # type: ignore[index]
    os.kill(int(pid), signal.SIGKILL)       # type: ignore[call-overload]
    wait_for(lambda: tools.inspect("cvt_web_1")["RestartCount"] == 1
             and tools.inspect("cvt_web_1")["State"]["Running"], "web restarted by policy")  # type: ignore[index]
    # recreate: a changed service, `up -d` again; one new db container (no orphan), and its
    # volume's data survives
    Path(tools.dir, "docker-compose.yml").write_text(PROJECT.replace('GEN: "1"', 'GEN: "2"'))
    r = tools.compose("up", "-d", "--scale", "worker=3")
    assert "Recreating cvt_db_1" in r.stderr, r.stderr
    assert tools.inspect("cvt_db_1")["Id"] != db["Id"]
    assert tools.docker("ps", "-aq", "--filter", "name=cvt_db").stdout.split() == [tools.inspect("cvt_db_1")["Id"][:12]]  # type: ignore[index]
    assert tools.compose("exec", "-T", "db", "cat", "/data/ready").stdout == "ready\n"
    assert "GEN=2" in tools.compose("exec", "-T", "db", "env").stdout
    # down -v: containers, networks and the volume go
    tools.compose("down", "-v", "-t", "1")
    assert tools.docker("ps", "-aq", "--filter", "name=cvt_").stdout.strip() == ""
    assert "cvt_dbdata" not in tools.docker("volume", "ls", "-q").stdout.split()
    assert not [n for n in tools.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
                if n.startswith("cvt_")]
    assert (site / "hello.txt").exists()          # a bind's host files are the user's: kept


def test_binds_volumes_health_and_restarts_through_the_docker_cli(tools: Tools) -> None:
    host = Path(tools.dir, "out")
    # -v creates the missing host directory; what the container writes appears on the host
    tools.docker("run", "--rm", "-v", f"{host}:/out", "bb", "sh", "-c", "echo via-bind > /out/f")
    assert (host / "f").read_text() == "via-bind\n"
    # :ro is read-only inside
    r = tools.docker("run", "--rm", "-v", f"{host}:/out:ro", "bb", "sh", "-c", "echo x > /out/g", check=False)
    assert r.returncode != 0 and not (host / "g").exists()
    # --mount type=bind refuses a missing source, as Docker
    r = tools.docker("run", "--rm", "--mount", f"type=bind,source={host}/missing,target=/m", "bb", "true",
                     check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr
    # a named volume keeps its data from one container to the next
    tools.docker("run", "--rm", "-v", "keep:/k", "bb", "sh", "-c", "echo kept > /k/f")
    assert tools.docker("run", "--rm", "-v", "keep:/k", "bb", "cat", "/k/f").stdout == "kept\n"
    assert tools.docker("volume", "ls", "-q", "--filter", "name=keep").stdout.split() == ["keep"]
    tools.docker("run", "-d", "--name", "holder", "-v", "keep:/k", "bb", "sleep", "3600")
    r = tools.docker("volume", "rm", "keep", check=False)
    assert r.returncode != 0 and "in use" in r.stderr
    assert tools.docker("ps", "-q", "--filter", "volume=keep").stdout.strip() != ""
    tools.docker("rm", "-f", "holder")
    tools.docker("volume", "rm", "keep")
    # an unhealthy container shows unhealthy
    tools.docker("run", "-d", "--name", "sick", "--health-cmd", "false", "--health-interval", "200ms",
                 "--health-retries", "2", "bb", "sleep", "3600")
    wait_for(lambda: tools.inspect("sick")["State"].get("Health", {}).get("Status") == "unhealthy",  # type: ignore[attr-defined]
             "sick to be unhealthy")
    assert "sick" in tools.docker("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}").stdout
    # on-failure:2: a crashing container is restarted exactly twice
    tools.docker("run", "-d", "--name", "crash", "--restart", "on-failure:2", "bb", "sh", "-c", "exit 3")
    wait_for(lambda: tools.inspect("crash")["RestartCount"] == 2 and not tools.inspect("crash")["State"]["Running"],  # type: ignore[index]
             "two restarts")
    time.sleep(1.5)                         # longer than the next back-off would be
    assert tools.inspect("crash")["RestartCount"] == 2
    assert tools.inspect("crash")["State"]["ExitCode"] == 3                          # type: ignore[index]


def test_always_container_runs_again_after_a_daemon_restart(tools: Tools) -> None:
    tools.docker("run", "-d", "--name", "phoenix", "--restart", "always", "bb", "sleep", "3600")
    tools.docker("run", "-d", "--name", "resting", "--restart", "unless-stopped", "bb", "sleep", "3600")
    tools.docker("run", "-d", "--name", "stubborn", "--restart", "always", "bb", "sleep", "3600")
    tools.docker("stop", "-t", "1", "resting")
    tools.docker("stop", "-t", "1", "stubborn")
    pid = int(tools.inspect("phoenix")["State"]["Pid"])                              # type: ignore[index]
    cove = tools.cove
    cove.stop()
    try:
        os.kill(pid, signal.SIGKILL)         # the container dies while the daemon is away
        time.sleep(0.3)
    finally:
        cove.start()
    wait_for(lambda: tools.inspect("phoenix")["State"]["Running"], "phoenix running again")  # type: ignore[index]
    assert tools.inspect("phoenix")["State"]["Pid"] != pid                           # type: ignore[index]
    assert not tools.inspect("resting")["State"]["Running"]          # unless-stopped: the user's stop holds
    wait_for(lambda: tools.inspect("stubborn")["State"]["Running"],   # always: back with the daemon, as dockerd
             "stubborn running again")  # type: ignore[index]
