"""Container start time, and runc's own floor: ``tests/sandbox.sh .venv/bin/python bench/startbench.py [N]``.

By hand only (never in CI).  Starts a cove daemon in the sandbox, imports busybox, then N times:
``POST /containers/create`` + ``POST /containers/C/start`` of ``sleep 3600`` on a user-defined
bridge (what ``run -d`` sends, the figure of ``run_d_api`` in bench/run.py), then removes it.
The floor: ``runc run --detach`` + ``runc delete -f`` of the same busybox rootfs (no network,
no cove), and ``runc run`` of ``/bin/true`` in the foreground.  Prints medians in ms.

``--userns-remap`` (issue 13): the same with a second daemon started with ``--userns-remap
default`` (with a copy of /etc bound over /etc in the sandbox's mount namespace, since it makes
the dockremap user), and the first container of each of N fresh images (where the image is
copied and chowned for the remapped root) against the following ones; the ratios to the
non-remapped daemon are printed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from harness.unixhttp import UnixAPI  # noqa: E402

from cove.runtime.busybox import make_busybox_tar  # noqa: E402


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1000:.1f} ms (min {xs[0] * 1000:.1f}, max {xs[-1] * 1000:.1f}, n={len(xs)})"


def runc_floor(tmp: str, reps: int) -> dict[str, list[float]]:
    bundle = os.path.join(tmp, "bundle")
    os.makedirs(os.path.join(bundle, "rootfs"))
    with tarfile.open(make_busybox_tar(os.path.join(tmp, "bb.tar"))) as t:
        t.extractall(os.path.join(bundle, "rootfs"))  # noqa: S202 - our own busybox tar
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads(Path(bundle, "config.json").read_text())
    spec["process"]["terminal"] = False
    out: dict[str, list[float]] = {"runc run /bin/true": [], "runc run --detach sleep + delete -f": [],
                                   "runc run --detach sleep (alone)": []}
    root = os.path.join(tmp, "runc-root")
    for i in range(reps + 1):
        spec["process"]["args"] = ["/bin/true"]
        Path(bundle, "config.json").write_text(json.dumps(spec))
        t0 = time.perf_counter()
        subprocess.run(["runc", "--root", root, "run", "--bundle", bundle, f"t{i}"], check=True,
                       stdin=subprocess.DEVNULL)
        t1 = time.perf_counter()
        spec["process"]["args"] = ["/bin/sleep", "3600"]
        Path(bundle, "config.json").write_text(json.dumps(spec))
        t2 = time.perf_counter()
        subprocess.run(["runc", "--root", root, "run", "--detach", "--bundle", bundle, f"s{i}"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t3 = time.perf_counter()
        subprocess.run(["runc", "--root", root, "delete", "-f", f"s{i}"], check=True)
        t4 = time.perf_counter()
        if i:
            out["runc run /bin/true"].append(t1 - t0)
            out["runc run --detach sleep (alone)"].append(t3 - t2)
            out["runc run --detach sleep + delete -f"].append(t4 - t2)
    return out


def cove_start(tmp: str, reps: int, remap: bool = False) -> dict[str, list[float]]:
    tag = " (remapped)" if remap else ""
    tmp = os.path.join(tmp, "remap" if remap else "plain")
    os.makedirs(tmp)
    os.chmod(tmp, 0o711)                  # the remapped root passes through to its containers' dirs
    sock = os.path.join(tmp, "cove.sock")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COVE_HOST": f"unix://{sock}", "COVE_NO_AUTOSTART": "1"}
    log = open(os.path.join(tmp, "daemon.log"), "ab")
    daemon = subprocess.Popen([sys.executable, "-m", "cove", "daemon", "--host", f"unix://{sock}", "--data-root",
                               os.path.join(tmp, "lib"), "--exec-root", "/run/cove/startbench" + ("-remap" if remap else ""),
                               *(["--userns-remap", "default"] if remap else [])],
                              stdout=log, stderr=log, env=env)
    out: dict[str, list[float]] = {f"create{tag}": [], f"start{tag}": [], f"create + start{tag}": [],
                                   f"create + start, first of an image{tag}": []}
    try:
        for _ in range(600):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        cli = [sys.executable, "-m", "cove"]
        time.sleep(0.5)
        subprocess.run([*cli, "import", "-c", 'CMD ["sh"]', make_busybox_tar(os.path.join(tmp, "bb2.tar")), "bb"],
                       env=env, check=True, capture_output=True)
        subprocess.run([*cli, "network", "create", "startnet"], env=env, check=True, capture_output=True)
        api = UnixAPI(sock)
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "startnet"}}
        for i in range(reps + 1):
            st, reply, t_create = api.request("POST", f"/containers/create?name=sb{i}", body)
            assert st == 201, reply
            st, reply, t_start = api.request("POST", f"/containers/sb{i}/start")
            assert st == 204, reply
            st, reply, _ = api.request("DELETE", f"/containers/sb{i}?force=1")
            assert st == 204, reply
            if i:
                out[f"create{tag}"].append(t_create)
                out[f"start{tag}"].append(t_start)
                out[f"create + start{tag}"].append(t_create + t_start)
        tar = make_busybox_tar(os.path.join(tmp, "bb3.tar"))
        for i in range(reps):             # a fresh image each time (its id changes with its config)
            subprocess.run([*cli, "import", "-c", f"ENV BENCH={i}", tar, f"fresh{i}"], env=env, check=True,
                           capture_output=True)
            first = {**body, "Image": f"fresh{i}"}
            st, reply, t_create = api.request("POST", f"/containers/create?name=fr{i}", first)
            assert st == 201, reply
            st, reply, t_start = api.request("POST", f"/containers/fr{i}/start")
            assert st == 204, reply
            st, reply, _ = api.request("DELETE", f"/containers/fr{i}?force=1")
            assert st == 204, reply
            out[f"create + start, first of an image{tag}"].append(t_create + t_start)
        api.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
    return out


def main() -> int:
    if os.environ.get("COVE_SANDBOX") != "1":
        print("run me inside tests/sandbox.sh", file=sys.stderr)
        return 2
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = tempfile.mkdtemp(prefix="cove-startbench-")
    os.chmod(tmp, 0o711)
    etc = os.path.join(tmp, "etc")
    try:
        results = {**runc_floor(tmp, reps), **cove_start(tmp, reps)}
        # dockremap is made in a copy of /etc, bound over /etc in the sandbox's mount namespace only
        subprocess.run(["cp", "-a", "/etc", etc], check=True)
        subprocess.run(["mount", "--bind", etc, "/etc"], check=True)
        try:
            results.update(cove_start(tmp, reps, remap=True))
        finally:
            subprocess.run(["umount", "/etc"], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, xs in results.items():
        print(f"{name:52s} {_ms(xs)}")
    for name in ("create + start", "create + start, first of an image"):
        plain, remapped = statistics.median(results[name]), statistics.median(results[name + " (remapped)"])
        print(f"ratio remapped / not remapped, {name:35s} {remapped / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
