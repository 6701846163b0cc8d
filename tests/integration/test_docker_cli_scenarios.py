"""One scripted scenario, run with the cove CLI and with the docker CLI against cove's socket.

Both transcripts (exit code, stdout, stderr of every step, with IDs and times
normalized) must be equal: networks with filters, the network modes, names
through the embedded DNS, ``-p`` forms and ``port``, connect/disconnect with
``--alias``/``--ip``, exec, logs, ps filters, and the events the scenario made.
Fixed subnets keep the addresses the same on both runs.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from .conftest import COVE, Daemon, docker_cli

pytestmark = pytest.mark.integration

HEX_ID = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")
TIMINGS = re.compile(r"time=[\d.]+ ms|= [\d./]+ ms")


def normalize(text: str) -> str:
    """IDs and round-trip times vary; busybox nslookup's blank lines too (they depend on the AAAA answer)."""
    text = TIMINGS.sub("<time>", HEX_ID.sub("<id>", text))
    return re.sub(r"\n{2,}", "\n\n", text).strip()
EVENT_FORMAT = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"


class Transcript:
    def __init__(self, daemon: Daemon, tool: str) -> None:
        self.daemon = daemon
        self.tool = tool
        self.steps: list[tuple[str, int, str, str]] = []

    def __call__(self, *args: str) -> tuple[int, str]:
        argv = [*COVE, *args] if self.tool == "cove" else [docker_cli() or "docker-cli-missing", *args]
        env = {**self.daemon.env, "DOCKER_HOST": f"unix://{self.daemon.sock}"}
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        out, err = normalize(r.stdout), normalize(r.stderr)
        if args[0] == "port" and len(args) == 2:
            # docker CLI 20.10 (Debian's docker.io, what CI installs) lists a container's ports in
            # Go map order, which varies run to run; CLI 28 sorts them, as cove does
            out = "\n".join(sorted(out.splitlines()))
        self.steps.append((" ".join(args), r.returncode, out, err))
        return r.returncode, out


def scenario(run: Transcript) -> None:
    t0 = f"{time.time():.9f}"
    # networks, with filters
    run("network", "create", "--subnet", "10.231.0.0/24", "sc-net")
    run("network", "create", "--subnet", "10.231.1.0/24", "--label", "team=blue", "sc-other")
    run("network", "ls", "--filter", "name=sc-", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    run("network", "ls", "--filter", "label=team=blue", "--format", "{{.Name}}")
    run("network", "ls", "--filter", "type=custom", "--filter", "name=^sc-", "--format", "{{.Name}}")
    run("network", "ls", "--filter", "dangling=true", "--filter", "name=sc-", "--format", "{{.Name}}")
    run("network", "ls", "--filter", "colour=red")
    run("network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "sc-net")
    # containers on a user network, names and aliases
    run("run", "-d", "--name", "sc-a", "--network", "sc-net", "--network-alias", "alpha", "--label", "role=app",
        "bb", "sleep", "600")
    run("run", "-d", "--name", "sc-b", "--network", "sc-net", "--ip", "10.231.0.50", "bb", "sleep", "600")
    run("exec", "sc-a", "nslookup", "sc-b")
    run("exec", "sc-b", "nslookup", "alpha")
    run("exec", "sc-b", "ping", "-c1", "-W2", "sc-a")
    # the other modes
    run("run", "--rm", "--network", "none", "bb", "sh", "-c", "ip -o link | cut -d' ' -f2")
    run("run", "--rm", "--network", "container:sc-a", "bb", "sh", "-c",
        "ip -o -4 addr show eth0 | awk '{print $4}'; hostname")
    run("run", "--rm", "--network", "host", "bb", "sh", "-c", "test -e /sys/class/net/lo && echo host")
    run("run", "--rm", "bb", "sh", "-c", "exit 3")
    # ports
    run("run", "-d", "--name", "sc-web", "--network", "sc-net", "-p", "18080:80", "-p", "127.0.0.1:18081:81/udp",
        "-p", "18082-18083:82-83", "--expose", "90", "bb", "httpd", "-f", "-p", "80")
    run("port", "sc-web")
    run("port", "sc-web", "80")
    run("port", "sc-web", "82/tcp")
    # connect / disconnect with --alias and --ip
    run("network", "connect", "--alias", "beta", "--ip", "10.231.1.9", "sc-other", "sc-a")
    run("exec", "sc-a", "sh", "-c", "ip -o -4 addr show eth1 | awk '{print $4}'")
    run("run", "--rm", "--network", "sc-other", "bb", "nslookup", "beta")
    run("network", "disconnect", "sc-other", "sc-a")
    run("run", "--rm", "--network", "sc-other", "bb", "nslookup", "beta")
    # exec and logs
    run("exec", "sc-a", "sh", "-c", "echo out; echo err >&2; exit 4")
    run("exec", "-e", "GREETING=hi", "-w", "/tmp", "sc-a", "sh", "-c", "echo $GREETING; pwd")
    run("run", "-d", "--name", "sc-log", "bb", "sh", "-c", "echo hello; echo oops >&2; exit 2")
    run("wait", "sc-log")
    run("logs", "sc-log")
    run("logs", "--tail", "1", "sc-log")
    # ps filters
    fmt = ["--format", "{{.Names}}"]
    run("ps", "--filter", "name=sc-", *fmt)
    run("ps", "-a", "--filter", "name=^/sc-", *fmt)
    run("ps", "--filter", "network=sc-net", *fmt)
    run("ps", "--filter", "label=role=app", *fmt)
    run("ps", "--filter", "publish=18080", *fmt)
    run("ps", "--filter", "expose=90", *fmt)
    run("ps", "-a", "--filter", "exited=2", *fmt)
    run("ps", "--filter", "status=exited", *fmt)
    run("ps", "--filter", "before=sc-web", "--filter", "name=sc-", *fmt)
    run("ps", "--filter", "since=sc-b", "--filter", "name=sc-", *fmt)
    run("ps", "--filter", "ancestor=bb", "--filter", "name=sc-", *fmt)
    run("ps", "--filter", "volume=/data", *fmt)
    run.steps[-1] = ("ps --filter volume=/data", *run.steps[-1][1:])
    run("ps", "--filter", "colour=red")
    # rename, stop, remove
    run("rename", "sc-log", "sc-log2")
    run("stop", "-t", "1", "sc-b")
    run("rm", "-f", "sc-a", "sc-b", "sc-web", "sc-log2")
    run("network", "rm", "sc-net", "sc-other")
    # the scenario's own events (the --rm containers' random names are left out)
    _, events = run("events", "--since", t0, "--until", f"{time.time():.9f}", "--filter", "type=container",
                    "--filter", "type=network", "--format", EVENT_FORMAT)
    # per object the order is fixed; across objects it is not (docker rm removes several at once)
    ours = sorted((line for line in events.splitlines() if line.split(" ")[2].startswith("sc-")),
                  key=lambda line: line.split(" ")[2])
    run.steps[-1] = ("events scenario", run.steps[-1][1], "\n".join(ours), "")
    run("events", "--since", t0, "--until", f"{time.time():.9f}", "--filter", "container=sc-b",
        "--filter", "event=die", "--format", EVENT_FORMAT)
    run.steps[-1] = ("events die sc-b", *run.steps[-1][1:])


def test_cove_and_docker_clis_see_the_same(cove: Daemon, docker_bin: str) -> None:
    transcripts = {}
    for tool in ("cove", "docker"):
        run = Transcript(cove, tool)
        try:
            scenario(run)
        finally:
            for name in ("sc-a", "sc-b", "sc-web", "sc-log", "sc-log2"):
                cove.cli("rm", "-f", name)
            for net in ("sc-net", "sc-other"):
                cove.cli("network", "rm", net)
        transcripts[tool] = run.steps
    diffs = [f"`{c[0]}`:\n  cove:   {c[1:]}\n  docker: {d[1:]}"
             for c, d in zip(transcripts["cove"], transcripts["docker"], strict=True) if c != d]
    assert not diffs, "cove and docker differ at\n" + "\n".join(diffs)
    steps = {s[0]: s for s in transcripts["docker"]}
    # what the scenario means, beyond "the same"
    assert "10.231.0.50" in steps["exec sc-a nslookup sc-b"][2]
    assert steps["port sc-web 80"][2] == "0.0.0.0:18080"
    assert steps["exec sc-a sh -c ip -o -4 addr show eth1 | awk '{print $4}'"][2] == "10.231.1.9/24"
    assert steps["run --rm --network sc-other bb nslookup beta"][1] != 0      # after the disconnect
    assert steps["ps --filter volume=/data"][1:3] == (0, "")       # no container mounts /data
    assert steps["events die sc-b"][2] == "container die sc-b 137"
    events = steps["events scenario"][2].splitlines()
    assert [e for e in events if e.startswith("container") and " sc-b " in e] == [
        "container create sc-b <no value>", "container start sc-b <no value>",
        "container exec_die sc-b 0", "container exec_die sc-b 0",
        "container kill sc-b <no value>", "container kill sc-b <no value>",     # stop: SIGTERM, SIGKILL
        "container die sc-b 137", "container stop sc-b <no value>", "container destroy sc-b <no value>"]
    assert events.count("network connect sc-other <no value>") == 3          # sc-a, then two --rm runs
