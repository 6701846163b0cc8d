"""The real docker CLI (28) and the Docker SDK for Python drive cove unchanged.

DOCKER_HOST points at cove's socket; the same scenario as the cove CLI runs
(networks, modes, names, ports), with the same observable results.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import Daemon

pytestmark = pytest.mark.integration


def docker(cove: Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**cove.env, "DOCKER_HOST": f"unix://{cove.sock}"}
    r = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_docker_cli_scenario(cove: Daemon) -> None:
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
