"""docker-compose 1.29 (Debian 12's) and docker-py drive cove: logs, recreate, run, create fields.

Each test runs the real ``docker-compose`` with ``DOCKER_HOST`` at cove's socket, as a user
would, and checks what the user sees: the service's output, one container after a recreate,
a one-off ``run``'s output and exit status (with and without a terminal), a 400 naming a
create field cove cannot honour, a net.* sysctl read back inside the container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime.busybox import make_busybox_tar

from .conftest import Daemon

pytestmark = pytest.mark.integration

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"

PROJECT = """version: "3.7"
services:
  web:
    image: bb
    command: ["sh", "-c", "echo hello from web; while :; do sleep 1; done"]
    environment:
      FOO: "{foo}"
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    tmp = tempfile.mkdtemp(prefix="cove-compose-")
    exec_root = f"/run/cove/cf-{uuid.uuid4().hex[:8]}"
    d = Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib", exec_root=exec_root, log=f"{tmp}/daemon.log")
    d.start("--firewall-backend", "nftables", "--debug")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        for nid in d.cli("network", "ls", "-q").stdout.split():
            d.cli("network", "rm", nid)
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)


@pytest.fixture
def project(daemon: Daemon, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "docker-compose.yml").write_text(PROJECT.format(foo="1"))
    yield tmp_path
    compose(daemon, tmp_path, "down", check=False)
    for cid in daemon.cli("ps", "-aq").stdout.split():
        daemon.cli("rm", "-f", cid)


def compose_env(cove: Daemon) -> dict[str, str]:
    # the docker CLI compose runs for `run` is the venv's (docker.io 20.10), first on PATH
    return {**cove.env, "DOCKER_HOST": f"unix://{cove.sock}", "COMPOSE_PROJECT_NAME": "cf",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def compose(cove: Daemon, where: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([COMPOSE, "--ansi", "never", *args], cwd=where, capture_output=True, text=True,
                       env=compose_env(cove), timeout=120)
    if check:
        assert r.returncode == 0, f"docker-compose {' '.join(args)}: {r.stdout}\n{r.stderr}"
    return r


def test_logs_and_recreate(cove: Daemon, project: Path) -> None:
    compose(cove, project, "up", "-d")
    import time

    deadline = time.monotonic() + 20
    while "hello from web" not in (out := compose(cove, project, "logs").stdout) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "hello from web" in out
    first = cove.ok("ps", "-aq").split()
    # a changed environment: compose recreates (it read the image's ContainerConfig: KeyError before)
    (project / "docker-compose.yml").write_text(PROJECT.format(foo="2"))
    r = compose(cove, project, "up", "-d")
    assert "Recreating" in r.stderr
    now = cove.ok("ps", "-aq").split()
    assert len(now) == 1 and now != first                                  # no orphan left behind
    assert "FOO=2" in cove.ok("exec", now[0], "env")
    # the debug log has one line per request
    log = Path(cove.log).read_text()
    assert "POST /v1.41/containers/create -> 201 (" in log or "/containers/create -> 201 (" in log


def test_run_without_and_with_a_terminal(cove: Daemon, project: Path) -> None:
    r = compose(cove, project, "run", "-T", "--rm", "web", "sh", "-c", "echo run-T-out; exit 3", check=False)
    assert r.returncode == 3 and "run-T-out" in r.stdout, r.stderr
    # under a pseudo-terminal: compose creates the container with Tty and attaches through docker
    # (its stdin stays open, as a user's terminal: `sleep` holds the pipe)
    cmd = f"{COMPOSE} --ansi never run --rm web sh -c 'echo tty-out; exit 4'"
    r = subprocess.run(["sh", "-c", f'sleep 30 | script -qec "{cmd}" /dev/null'], cwd=project,
                       capture_output=True, text=True, env=compose_env(cove), timeout=120)
    assert r.returncode == 4 and "tty-out" in r.stdout, r.stdout + r.stderr


def test_create_fields_are_honoured_or_refused(cove: Daemon) -> None:
    import docker as sdk

    client = sdk.DockerClient(base_url=f"unix://{cove.sock}")
    try:
        with pytest.raises(sdk.errors.APIError, match="ShmSize") as err:
            client.containers.create("bb", ["true"], shm_size="128m")
        assert err.value.status_code == 400
        with pytest.raises(sdk.errors.APIError, match="User"):
            client.containers.create("bb", ["true"], user="1000")
        with pytest.raises(sdk.errors.APIError, match="kernel.shmmax"):
            client.containers.create("bb", ["true"], sysctls={"kernel.shmmax": "1000"})
        with pytest.raises(sdk.errors.APIError, match="network host"):
            client.containers.create("bb", ["true"], network_mode="host",
                                     sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
        assert not client.containers.list(all=True)                       # nothing was created
        c = client.containers.run("bb", ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
                                  sysctls={"net.ipv4.ip_unprivileged_port_start": "99"}, detach=True,
                                  stdin_open=True, stop_signal="SIGTERM", init=False, oom_kill_disable=False)
        assert c.wait()["StatusCode"] == 0
        assert c.logs().strip() == b"99"
        cfg = client.api.inspect_container(c.id)["Config"]
        assert (cfg["AttachStdin"], cfg["AttachStdout"], cfg["OpenStdin"]) == (False, False, True)
        # the host's own value did not change
        assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip() != "99"
        c.remove()
    finally:
        client.close()


def test_attach_without_logs_replays_nothing(cove: Daemon) -> None:
    import docker as sdk

    client = sdk.DockerClient(base_url=f"unix://{cove.sock}")
    try:
        c = client.containers.run("bb", ["sh", "-c", "echo before; sleep 2; echo after"], detach=True)
        import time

        deadline = time.monotonic() + 10
        while b"before" not in c.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        out = client.api.attach(c.id, stream=False, logs=False)
        assert b"before" not in out
        streamed = b"".join(client.api.attach(c.id, stream=True, logs=False))
        assert streamed == b"after\n"
        c.remove(force=True)
    finally:
        client.close()


def test_run_with_a_terminal_through_dockerpty(cove: Daemon, project: Path) -> None:
    # COMPOSE_INTERACTIVE_NO_CLI: compose's own dockerpty (not the docker CLI) attaches stdin,
    # stdout and stderr to the container it created with Tty, in a terminal (script's)
    env = {**compose_env(cove), "COMPOSE_INTERACTIVE_NO_CLI": "1"}
    cmd = f"{COMPOSE} --ansi never run --rm web sh -c 'read x; echo got-\\$x; exit 5'"
    # the line is typed once the container runs (and its terminal is attached)
    typist = (f"until {sys.executable} -m cove ps -q | grep -q .; do sleep 0.2; done; sleep 1; "
              'printf "word\\n"; sleep 30')
    r = subprocess.run(["sh", "-c", f'({typist}) | script -qec "{cmd}" /dev/null'],
                       cwd=project, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 5 and "got-word" in r.stdout, r.stdout + r.stderr
    assert cove.ok("ps", "-aq").split() == []                               # --rm removed it


def test_stdin_once_closes_the_containers_stdin(cove: Daemon, docker_bin: str) -> None:
    # `docker run -i` creates the container with StdinOnce: when the client's stdin ends, the
    # container's does (before: `cat` waited for ever and the run never ended)
    r = subprocess.run([docker_bin, "run", "-i", "--rm", "bb", "sh", "-c", "cat; echo after-cat; exit 4"],
                       input="line-in\n", capture_output=True, text=True, timeout=60,
                       env={**cove.env, "DOCKER_HOST": f"unix://{cove.sock}"})
    assert (r.returncode, r.stdout) == (4, "line-in\nafter-cat\n"), r.stderr
    # without StdinOnce (-d -i: no client's stdin) the stdin stays open: the container still runs
    cid = subprocess.run([docker_bin, "run", "-d", "-i", "bb", "cat"], capture_output=True, text=True,
                         env={**cove.env, "DOCKER_HOST": f"unix://{cove.sock}"}, check=True).stdout.strip()
    import time

    time.sleep(1)
    assert json.loads(cove.ok("inspect", cid))[0]["State"]["Running"] is True
    cove.ok("rm", "-f", cid)
