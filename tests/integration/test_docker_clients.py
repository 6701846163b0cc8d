"""The real docker CLI (28) and the Docker SDK for Python drive cove unchanged.

DOCKER_HOST points at cove's socket; the same scenario as the cove CLI runs
(networks, modes, names, ports), with the same observable results.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from .conftest import Daemon, docker_cli

pytestmark = pytest.mark.integration


def docker(cove: Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**cove.env, "DOCKER_HOST": f"unix://{cove.sock}"}
    r = subprocess.run([docker_cli() or "docker-cli-missing", *args], capture_output=True, text=True, env=env,
                       timeout=60)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


def test_docker_cli_scenario(cove: Daemon, docker_bin: str) -> None:
    assert "cove" in docker(cove, "version").stdout
    docker(cove, "network", "create", "greatwall")
    docker(cove, "run", "-d", "--name", "milk", "bb", "sleep", "3600")
    docker(cove, "run", "-d", "--name", "beijing", "--network", "greatwall", "bb", "sleep", "3600")
    docker(cove, "run", "-d", "--name", "shenzhen", "--network", "greatwall", "bb", "sleep", "3600")
    bj = docker(cove, "inspect", "-f", "{{.NetworkSettings.Networks.greatwall.IPAddress}}", "beijing").stdout.strip()
    assert bj.count(".") == 3
    assert docker(cove, "exec", "shenzhen", "ping", "-c1", "-W1", "beijing").returncode == 0     # names
    assert docker(cove, "exec", "milk", "ping", "-c1", "-W1", bj, check=False).returncode != 0   # isolation
    docker(cove, "network", "connect", "greatwall", "milk")
    assert docker(cove, "exec", "milk", "ping", "-c1", "-W1", bj).returncode == 0
    none = docker(cove, "run", "--rm", "--network", "none", "bb", "ip", "-o", "link").stdout
    assert [line.split(": ")[1] for line in none.splitlines()] == ["lo"]
    docker(cove, "run", "-d", "--name", "web", "-p", "8181:80", "host", "python3", "-m", "http.server", "80")
    assert docker(cove, "port", "web").stdout.strip() == "80/tcp -> 0.0.0.0:8181"
    assert "greatwall" in docker(cove, "network", "ls").stdout
    r = docker(cove, "network", "create", "greatwall", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    assert docker(cove, "run", "--rm", "bb", "sh", "-c", "exit 3", check=False).returncode == 3


def test_docker_sdk_drives_networks_and_containers(cove: Daemon) -> None:
    import docker as sdk

    client = sdk.DockerClient(base_url=f"unix://{cove.sock}")
    try:
        net = client.networks.create("sdknet", driver="bridge",
                                     ipam=sdk.types.IPAMConfig(pool_configs=[sdk.types.IPAMPool(subnet="10.88.0.0/24")]))
        a = client.containers.run("bb", ["sleep", "3600"], name="sdk-a", detach=True, network="sdknet")
        b = client.containers.run("bb", ["sleep", "3600"], name="sdk-b", detach=True)
        net.connect(b, aliases=["bee"], ipv4_address="10.88.0.50")
        b.reload()
        assert b.attrs["NetworkSettings"]["Networks"]["sdknet"]["IPAddress"] == "10.88.0.50"
        code, out = a.exec_run(["nslookup", "bee"])
        assert code == 0 and b"10.88.0.50" in out
        code, out = a.exec_run(["ping", "-c1", "-W1", "sdk-b"])
        assert code == 0
        assert {c.name for c in client.containers.list()} >= {"sdk-a", "sdk-b"}
        net.reload()
        assert {c.name for c in net.containers} == {"sdk-a", "sdk-b"}
        for c in (a, b):
            c.remove(force=True)
        net.remove()
    finally:
        client.close()


def _wait_for(predicate, what: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sdk_events_stream_live_and_end_when_the_client_closes(cove: Daemon, docker_bin: str) -> None:
    import docker as sdk

    client = sdk.DockerClient(base_url=f"unix://{cove.sock}")
    try:
        start = time.time()
        stream = client.events(decode=True, filters={"type": ["container", "network"]})
        _wait_for(lambda: client.info()["NEventsListener"] == 1, "the subscription")
        net = client.networks.create("evnet")
        c = client.containers.run("bb", ["sh", "-c", "exit 7"], name="ev-c", network="evnet", detach=True)
        assert c.wait()["StatusCode"] == 7
        c.remove()
        net.remove()
        seen = []
        for ev in stream:                      # live, in order, until we stop reading
            seen.append((ev["Type"], ev["Action"], ev["Actor"]["Attributes"].get("name")))
            if ev["Type"] == "network" and ev["Action"] == "destroy":
                break
        stream.close()
        assert seen == [("network", "create", "evnet"), ("container", "create", "ev-c"),
                        ("network", "connect", "evnet"), ("container", "start", "ev-c"),
                        ("container", "die", "ev-c"), ("network", "disconnect", "evnet"),
                        ("container", "destroy", "ev-c"), ("network", "destroy", "evnet")]
        _wait_for(lambda: client.info()["NEventsListener"] == 0, "the stream to end after the client closed it")
        # since/until replay from the ring, and the stream ends by itself
        past = list(client.events(decode=True, since=start, until=time.time(),
                                  filters={"event": ["die"], "container": ["ev-c"]}))
        assert [(e["status"], e["from"], e["Actor"]["Attributes"]["exitCode"]) for e in past] == [("die", "bb", "7")]
        # (the SDK never looks at the status of an events answer: the docker CLI shows the 400)
        r = docker(cove, "events", "--until", "1", "--filter", "colour=red", check=False)
        assert r.returncode != 0 and "Invalid filter 'colour'" in r.stderr
    finally:
        client.close()


def test_resize_reaches_a_tty_and_is_accepted_without_one(cove: Daemon) -> None:
    import docker as sdk

    client = sdk.DockerClient(base_url=f"unix://{cove.sock}")
    try:
        tty = client.containers.run("bb", ["sh", "-c", "trap 'stty size > /tmp/size' WINCH; while :; do sleep 1; done"],
                                    name="rs-tty", tty=True, detach=True)
        plain = client.containers.run("bb", ["sleep", "600"], name="rs-plain", detach=True)
        _wait_for(lambda: "sleep" in tty.exec_run(["ps"]).output.decode(), "the tty container's loop")
        tty.resize(33, 77)
        size = _wait_for(lambda: (r := tty.exec_run(["cat", "/tmp/size"])).exit_code == 0 and r.output.strip(),
                         "SIGWINCH")      # the shell runs its trap once the current sleep ends
        assert size == b"33 77"
        plain.resize(10, 20)                                  # dockerd: 200, no effect
        eid = client.api.exec_create(tty.id, ["sleep", "30"], tty=True)["Id"]
        client.api.exec_start(eid, detach=True, tty=True)
        client.api.exec_resize(eid, height=40, width=100)
        with pytest.raises(sdk.errors.NotFound):
            client.api.exec_resize("nosuchexec", height=1, width=1)
        with pytest.raises(sdk.errors.APIError, match="invalid h"):
            client.api.resize(plain.id, height=-1, width=5)
        plain.kill()
        with pytest.raises(sdk.errors.APIError, match="is not running"):
            plain.resize(10, 20)
        for c in (tty, plain):
            c.remove(force=True)
    finally:
        client.close()
