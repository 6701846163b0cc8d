"""``runc run --detach`` time against the number of empty cgroups beside it (issue 17), by hand::

    tests/sandbox.sh .venv/bin/python bench/cgroupcount.py [COUNT ...]   # default 0 10000 0 3000 6000 0

Why it exists: on this project's build machine (cgroup v1 controllers plus an empty v2 tree),
~9,700 empty cgroups per hierarchy had piled up under ``/cove`` -- containers that tests/sandbox.sh
killed at the end of a run, which runc never deleted -- and every ``runc run`` had become about 2x
slower (bench/results/2026-12-07-cgroups.md).  This makes (or removes down to) COUNT empty sibling cgroups in every
mounted hierarchy under a parent of its own (``/cove-cgcount-PID``), times 12 plain ``runc run -d``
of a busybox bundle at each count (median, min), and removes everything it made, even on failure.
No cove daemon is involved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cove.runtime.busybox import make_busybox_tar  # noqa: E402
from cove.runtime.rootfs import mount_points  # noqa: E402


def cgroup_mounts() -> list[str]:
    return [point for point, fstype in mount_points() if fstype in ("cgroup", "cgroup2")]


def main() -> int:
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    counts = [int(a) for a in sys.argv[1:]] or [0, 10000, 0, 3000, 6000, 0]
    parent, mounts = f"/cove-cgcount-{os.getpid()}", cgroup_mounts()
    tmp = tempfile.mkdtemp(prefix="cove-cgcount-")
    bundle, root, made, n = f"{tmp}/bundle", f"{tmp}/state", 0, 0
    try:
        os.makedirs(f"{bundle}/rootfs")
        subprocess.run(["tar", "-xf", make_busybox_tar(f"{tmp}/bb.tar"), "-C", f"{bundle}/rootfs"], check=True)
        subprocess.run(["runc", "spec"], cwd=bundle, check=True)
        base = json.loads(Path(f"{bundle}/config.json").read_text())
        base["process"].update(terminal=False, args=["sleep", "3600"])
        print(f"load average {os.getloadavg()[0]:.2f}; {len(mounts)} cgroup hierarchies", flush=True)
        for count in counts:
            while made < count:
                for m in mounts:
                    os.makedirs(f"{m}{parent}/empty-{made}", exist_ok=True)
                made += 1
            while made > count:
                made -= 1
                for m in mounts:
                    os.rmdir(f"{m}{parent}/empty-{made}")
            times = []
            for _ in range(12):
                n += 1
                cfg = dict(base, linux=dict(base["linux"], cgroupsPath=f"{parent}/run-{n}"))
                Path(f"{bundle}/config.json").write_text(json.dumps(cfg))
                t0 = time.perf_counter()
                subprocess.run(["runc", "--root", root, "run", "-d", "--bundle", bundle, f"c{n}"], check=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append((time.perf_counter() - t0) * 1000)
                subprocess.run(["runc", "--root", root, "delete", "--force", f"c{n}"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"{count:6d} empty cgroups beside it: runc run -d median {statistics.median(times):6.1f} ms, "
                  f"min {min(times):6.1f} ms", flush=True)
    finally:
        for m in mounts:
            top = f"{m}{parent}"
            if os.path.isdir(top):
                for name in os.listdir(top):
                    if os.path.isdir(f"{top}/{name}"):
                        os.rmdir(f"{top}/{name}")
                os.rmdir(top)
        subprocess.run(["rm", "-rf", tmp], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
