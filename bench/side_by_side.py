#!/usr/bin/env python3
"""The same scripted commands against cove and against Docker 20.10, and where they differ.

    .venv/bin/python bench/side_by_side.py            # -> bench/results/<date>-side-by-side.md

By hand, as root, never in CI.  The script runs itself twice: once in ``tests/sandbox.sh``
with a private cove daemon and the cove CLI, once in ``bench/refs/docker-sandbox.sh`` with a
private dockerd 20.10 and the docker CLI; both have an image ``bb`` made from busybox-static.
Each step is one CLI command; its exit status and its output, with container ids and
timestamps masked, are compared.  The scenarios are the seed articles' (names on a user
network but not on the default one, aliases, links, hostname and resolver files, isolation,
published ports, errors).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (step name, CLI arguments); "{ip:NAME:NET}" is replaced by the container's address on NET.
STEPS: list[tuple[str, list[str]]] = [
    ("create a user network", ["network", "create", "greatwall"]),
    ("run on the default bridge", ["run", "-d", "--name", "milk", "bb", "sleep", "600"]),
    ("run a neighbour", ["run", "-d", "--name", "bread", "bb", "sleep", "600"]),
    ("run on the user network", ["run", "-d", "--name", "beijing", "--network", "greatwall", "bb", "sleep", "600"]),
    ("run with an alias", ["run", "-d", "--name", "shenzhen", "--network", "greatwall", "--network-alias", "sz",
                           "bb", "sleep", "600"]),
    ("names resolve on a user network (ping)", ["exec", "shenzhen", "ping", "-c1", "-W2", "beijing"]),
    ("aliases resolve", ["exec", "beijing", "ping", "-c1", "-W2", "sz"]),
    ("nslookup a container name", ["exec", "shenzhen", "nslookup", "beijing"]),
    ("nslookup an unknown single label", ["exec", "shenzhen", "nslookup", "nosuchname"]),
    ("names do not resolve on the default bridge", ["exec", "milk", "ping", "-c1", "-W2", "bread"]),
    ("same bridge by address", ["exec", "milk", "ping", "-c1", "-W2", "{ip:bread:bridge}"]),
    ("other bridge is isolated", ["exec", "milk", "ping", "-c1", "-W2", "{ip:beijing:greatwall}"]),
    ("resolv.conf on a user network", ["exec", "beijing", "cat", "/etc/resolv.conf"]),
    ("hosts on a user network", ["exec", "beijing", "cat", "/etc/hosts"]),
    ("--link on the default bridge", ["run", "-d", "--name", "linked", "--link", "bread:loaf", "bb", "sleep", "600"]),
    ("the link alias resolves by /etc/hosts", ["exec", "linked", "ping", "-c1", "-W2", "loaf"]),
    ("-h sets the hostname", ["run", "--rm", "-h", "myhost", "bb", "hostname"]),
    ("/etc/hostname", ["run", "--rm", "-h", "myhost", "bb", "cat", "/etc/hostname"]),
    ("--dns and --dns-search on the default bridge",
     ["run", "--rm", "--dns", "10.1.2.3", "--dns-search", "corp.test", "--dns-opt", "timeout:2", "bb",
      "cat", "/etc/resolv.conf"]),
    ("--dns on a user network keeps 127.0.0.11",
     ["run", "--rm", "--network", "greatwall", "--dns", "10.1.2.3", "bb", "cat", "/etc/resolv.conf"]),
    ("--add-host", ["run", "--rm", "--add-host", "db:10.0.0.9", "bb", "grep", "db", "/etc/hosts"]),
    ("aliases in inspect", ["inspect", "-f", "{{json .NetworkSettings.Networks.greatwall.Aliases}}", "shenzhen"]),
    ("connect with an alias", ["network", "connect", "--alias", "moo", "greatwall", "milk"]),
    ("the new alias resolves", ["exec", "beijing", "ping", "-c1", "-W2", "moo"]),
    ("connected: the other bridge reachable", ["exec", "milk", "ping", "-c1", "-W2", "beijing"]),
    ("disconnect", ["network", "disconnect", "greatwall", "shenzhen"]),
    ("a disconnected name stops resolving", ["exec", "beijing", "ping", "-c1", "-W2", "shenzhen"]),
    ("stop", ["stop", "-t", "1", "milk"]),
    ("a stopped container stops resolving", ["exec", "beijing", "ping", "-c1", "-W2", "moo"]),
    ("an invalid alias", ["run", "-d", "--name", "badalias", "--network", "greatwall", "--network-alias",
                          "bad_alias!", "bb", "sleep", "600"]),
    ("publish a port", ["run", "-d", "--name", "web", "-p", "8080:80", "bb", "sleep", "600"]),
    ("port", ["port", "web"]),
    ("the same host port again", ["run", "-d", "--name", "web2", "-p", "8080:80", "bb", "sleep", "600"]),
    ("none has only lo", ["run", "--rm", "--network", "none", "bb", "ip", "-o", "link"]),
    ("container: mode shares the stack", ["run", "--rm", "--network", "container:beijing", "bb", "hostname"]),
    ("duplicate network", ["network", "create", "greatwall"]),
    ("remove a network in use", ["network", "rm", "greatwall"]),
    ("remove a pre-defined network", ["network", "rm", "bridge"]),
    ("--ip on the default bridge", ["run", "--rm", "--ip", "172.17.0.50", "bb", "true"]),
]

ID = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")
VETH = re.compile(r"\bveth[0-9a-f]{7}\b")
IFINDEX = re.compile(r"@if\d+")
PING_TIME = re.compile(r"time=[\d.]+ ms|= [\d.]+/[\d.]+/[\d.]+ ms")


def mask(text: str) -> str:
    """Ids and per-run names masked, so that outputs can be compared."""
    text = ID.sub("<id>", text)
    text = VETH.sub("<veth>", text)
    text = PING_TIME.sub("<time>", text)
    return IFINDEX.sub("@if<n>", text)


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]


def run_engine(engine: str, out: str) -> None:
    """Inside a sandbox: the steps with the engine's CLI; results as JSON to ``out``."""
    env = dict(os.environ)
    daemon = None
    if engine == "cove":
        tmp = tempfile.mkdtemp(prefix="cove-sbs-")
        sock = f"{tmp}/cove.sock"
        env.update(COVE_HOST=f"unix://{sock}", COVE_NO_AUTOSTART="1", PYTHONPATH=str(ROOT / "src"))
        cli = [sys.executable, "-m", "cove"]
        daemon = subprocess.Popen([*cli, "daemon", "--host", f"unix://{sock}", "--data-root", f"{tmp}/lib",
                                   "--exec-root", "/run/cove/sbs"], env=env,
                                  stdout=open(f"{tmp}/daemon.log", "wb"), stderr=subprocess.STDOUT)
        for _ in range(200):
            if subprocess.run([*cli, "version"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        from cove.runtime.busybox import make_busybox_tar

        subprocess.run([*cli, "import", make_busybox_tar(f"{tmp}/bb.tar"), "bb"], env=env, check=True,
                       capture_output=True)
    else:
        cli = ["docker"]
    results = []
    try:
        for name, args in STEPS:
            resolved = []
            for a in args:
                m = re.fullmatch(r"\{ip:(\w+):(\w+)\}", a)
                if m:
                    fmt = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % m.group(2)
                    a = subprocess.run([*cli, "inspect", "-f", fmt, m.group(1)], env=env, capture_output=True,
                                       text=True).stdout.strip()
                resolved.append(a)
            t0 = time.perf_counter()
            r = subprocess.run([*cli, *resolved], env=env, capture_output=True, text=True, timeout=60)
            results.append({"step": name, "args": args, "rc": r.returncode, "stdout": r.stdout,
                            "stderr": r.stderr, "seconds": time.perf_counter() - t0})
    finally:
        ids = subprocess.run([*cli, "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*cli, "rm", "-f", *ids], env=env, capture_output=True)
        subprocess.run([*cli, "network", "rm", "greatwall"], env=env, capture_output=True)
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
    Path(out).write_text(json.dumps(results))


def report(cove: list[dict], docker: list[dict]) -> tuple[str, int]:
    lines = ["| # | step | cove | Docker 20.10 | same |", "|---:|---|---|---|---|"]
    same_count = 0
    details = []
    for i, (c, d) in enumerate(zip(cove, docker), 1):
        same_rc = (c["rc"] == 0) == (d["rc"] == 0)
        same_out = mask(c["stdout"]).strip() == mask(d["stdout"]).strip()
        same = same_rc and (same_out or c["rc"] != 0)
        same_count += same

        def cell(r: dict) -> str:
            text = first_line(r["stdout"] if r["rc"] == 0 else r["stderr"] or r["stdout"])
            return f"exit {r['rc']}" + (f": `{mask(text)}`".replace("|", "\\|") if text else "")

        lines.append(f"| {i} | {c['step']} | {cell(c)} | {cell(d)} | {'yes' if same else '**no**'} |")
        if not same or (c["rc"] == 0 and not same_out):
            details.append(f"### {i}. {c['step']}: `{' '.join(c['args'])}`\n\ncove (exit {c['rc']}):\n```\n"
                           f"{mask(c['stdout'] + c['stderr']).strip()}\n```\nDocker 20.10 (exit {d['rc']}):\n```\n"
                           f"{mask(d['stdout'] + d['stderr']).strip()}\n```\n")
    head = (f"# cove vs Docker 20.10, side by side ({datetime.date.today()})\n\n"
            f"`bench/side_by_side.py`: {len(cove)} steps, {same_count} with the same outcome "
            "(success or failure alike, and the same output after masking ids when both succeed).\n\n")
    return head + "\n".join(lines) + "\n\n## Where they differ\n\n" + "\n".join(details), same_count


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["cove", "docker"])
    ap.add_argument("--out")
    ap.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    if a.engine:
        run_engine(a.engine, a.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        me = [sys.executable, str(Path(__file__).resolve())]
        subprocess.run([str(ROOT / "tests" / "sandbox.sh"), *me, "--engine", "cove", "--out", f"{tmp}/cove.json"],
                       check=True, cwd=ROOT, timeout=1200)
        subprocess.run([str(ROOT / "bench" / "refs" / "docker-sandbox.sh"), *me, "--engine", "docker",
                        "--out", f"{tmp}/docker.json"], check=True, cwd=ROOT, timeout=1200)
        cove = json.loads(Path(f"{tmp}/cove.json").read_text())
        docker = json.loads(Path(f"{tmp}/docker.json").read_text())
    text, same = report(cove, docker)
    path = Path(a.results_dir) / f"{datetime.date.today()}-side-by-side.md"
    path.write_text(text)
    print(f"{same}/{len(cove)} steps alike; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
