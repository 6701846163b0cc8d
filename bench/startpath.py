"""rm -f, run -d -> first ping by name, and exec over the API, for an A/B of two source trees (issue 17).

Run by hand, inside tests/sandbox.sh (it starts a private daemon on a temp socket)::

    tests/sandbox.sh .venv/bin/python bench/startpath.py [--src DIR] [--reps 15] [--json OUT]

``--src`` is the ``src`` directory whose ``cove`` the daemon runs (default: this tree's), so an
older commit's tree (``git archive REV src | tar -x -C DIR``) can be timed in alternation with
this one, each in its own sandbox.  Per round: ``run -d`` over the API (create + start),
then ``ping -c1 -W1 NAME`` through an exec in a pinger container, repeated until it
answers (``run_to_ping``: from the create to the reply, as bench/harness/scenarios.py's
run_to_ping but without the CLI processes), ``rm -f`` (``DELETE ?force=1``), ``exec true``.
Prints medians (ms); ``--json`` also writes every sample.  No timings live in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from cove.cli.client import Client  # noqa: E402
from harness import privdaemon  # noqa: E402

BODY: dict[str, Any] = {"Tty": False, "OpenStdin": False, "Env": [], "Cmd": ["sleep", "3600"], "Image": "bb",
                        "Labels": {}, "HostConfig": {"NetworkMode": "spnet", "AutoRemove": False},
                        "NetworkingConfig": {"EndpointsConfig": {"spnet": {}}}}


def api_exec(api: Client, container: str, cmd: list[str]) -> int:
    eid = api.post(f"/containers/{container}/exec", {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd})["Id"]
    with api.hijack("POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": False}) as stream:
        while stream.read():
            pass
    return int(api.get(f"/exec/{eid}/json")["ExitCode"])


class Floors:
    """runc's own times on this machine, next to cove's (no daemon, no network, no HTTP)."""

    def __init__(self, tmp: str, pinger: str) -> None:
        self.pinger = pinger
        self.state = f"{tmp}/exec/containers/{pinger}"
        self.proc = f"{tmp}/floor-process.json"
        with open(f"{self.state}/spec.json") as f:
            from cove.runtime import profile
            from cove.runtime.spec import ContainerSpec

            spec = ContainerSpec.from_json(f.read())
        caps = profile.capabilities(spec.cap_add, spec.cap_drop, spec.privileged)
        Path(self.proc).write_text(json.dumps(profile.process(["true"], {"PATH": "/bin:/usr/bin"}, "/", False, caps,
                                                              spec.no_new_privileges)))
        # a bundle of its own for `runc run`: the pinger's config with a plain directory root (no network)
        self.bundle = f"{tmp}/floor-bundle"
        os.makedirs(f"{self.bundle}/rootfs", exist_ok=True)
        subprocess.run(["cp", "-a", f"{tmp}/data/images", f"{self.bundle}/img"], check=True)
        roots = [p for p in Path(f"{self.bundle}/img").rglob("bin/busybox")]
        cfg = json.loads(Path(f"{self.state}/config.json").read_text())
        cfg["root"] = {"path": str(roots[0].parent.parent), "readonly": False}
        cfg["process"]["args"] = ["sleep", "3600"]
        cfg["process"]["terminal"] = False
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["source"].startswith(tmp)]
        cfg.get("hooks", {}).clear()
        cfg["linux"]["cgroupsPath"] = f"cove-floor/{os.getpid()}"     # not the pinger's
        Path(f"{self.bundle}/config.json").write_text(json.dumps(cfg))
        self.n = 0

    def round(self) -> dict[str, float]:
        t0 = time.perf_counter()
        subprocess.run(["runc", "--root", f"{self.state}/runc", "exec", "--process", self.proc, self.pinger],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        t1 = time.perf_counter()
        self.n += 1
        name = f"floor-{self.n}"
        subprocess.run(["runc", "--root", f"{self.bundle}/runc", "run", "--detach", "--bundle", self.bundle, name],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t2 = time.perf_counter()
        subprocess.run(["runc", "--root", f"{self.bundle}/runc", "delete", "--force", name], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        t3 = time.perf_counter()
        return {"floor runc exec": t1 - t0, "floor runc run -d": t2 - t1, "floor runc delete -f": t3 - t2}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", default=None)
    ap.add_argument("--pause", type=float, default=0.0, help="seconds between rounds")
    ap.add_argument("--pyspy", default=None, help="py-spy binary: sample the daemon (raw stacks to --pyspy-out)")
    ap.add_argument("--pyspy-out", default="/tmp/startpath-pyspy.txt")
    ap.add_argument("--floors", action="store_true",
                    help="also time, in each round, runc's own floors: `runc exec` of `true` in the pinger "
                         "(the process cove's exec gives it) and `runc run --detach` + `runc delete -f`")
    ap.add_argument("--root-dir", default="/var/lib/cove",
                    help="where the daemon's data and exec roots go (default: the sandbox's tmpfs)")
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    # the daemon's roots on the sandbox's tmpfs, as the bench's (harness/covedaemon.py): this
    # machine's /tmp is ext4 without a journal, ~12 ms of inode scans per start (results/2026-12-07-storage.md)
    tmp = tempfile.mkdtemp(prefix="cove-sp-", dir=opts.root_dir)
    sock = f"unix://{tmp}/cove.sock"
    samples: dict[str, list[float]] = {}
    daemon, api, _ = privdaemon.launch(tmp, src=opts.src)
    try:
        api.post("/networks/create", {"Name": "spnet"})
        pinger = api.post('/containers/create', BODY, {'name': 'sppinger'})['Id']
        api.post(f"/containers/{pinger}/start")
        floors = Floors(tmp, pinger) if opts.floors else None
        spy = None
        if opts.pyspy:
            spy = subprocess.Popen([opts.pyspy, "record", "--idle", "--threads", "-r", "1000", "-f", "raw", "-o",
                                    opts.pyspy_out, "-p", str(daemon.pid)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1.5)
        for i in range(opts.reps + 1):
            name = f"sp-{i}"
            t0 = time.perf_counter()
            cid = api.post("/containers/create", BODY, {"name": name})["Id"]
            t1 = time.perf_counter()
            api.post(f"/containers/{cid}/start")
            t2 = time.perf_counter()
            attempts = 0
            while True:
                attempts += 1
                if api_exec(api, "sppinger", ["ping", "-c1", "-W1", name]) == 0:
                    break
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"{name}: no reply")
            t3 = time.perf_counter()
            api.delete(f"/containers/{name}", {"force": True})
            t4 = time.perf_counter()
            t5 = time.perf_counter()
            api_exec(api, "sppinger", ["true"])
            t6 = time.perf_counter()
            if floors is not None:
                for k, v in floors.round().items():
                    if i:
                        samples.setdefault(k, []).append(v * 1000)
            if i:
                for k, v in (("create", t1 - t0), ("start", t2 - t1), ("run -d", t2 - t0), ("run_to_ping", t3 - t0),
                             ("ping part", t3 - t2), ("attempts", attempts / 1000), ("rm -f", t4 - t3),
                             ("exec true", t6 - t5)):
                    samples.setdefault(k, []).append(v * 1000)
            if opts.pause:
                time.sleep(opts.pause)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
        for k, v in samples.items():
            print(f"{k:12s} median {statistics.median(v):7.1f}  min {min(v):7.1f}  max {max(v):7.1f}")
        if opts.json:
            Path(opts.json).write_text(json.dumps({"src": opts.src, "samples": samples}) + "\n")
    finally:
        try:
            Client(sock).delete("/containers/sppinger", {"force": True})
        except Exception:  # noqa: BLE001
            pass
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
