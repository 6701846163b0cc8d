"""``make demo``, second part: seed 000/003's overlay — three hosts, a container on each, pinging by name.

Runs inside tests/sandbox.sh (the Makefile puts it there) on the cluster lab of the tests
(tests/integration/clusterlab.py): three etcd members and three cove daemons, each host a
network namespace on the underlay bridge ul0.  Every command is printed as a user would type it
on that host.  Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import os
import subprocess
import sys

from .clusterlab import Host, make_lab, sh


def run(h: Host, *args: str, check: bool = True) -> str:
    print(f"[{h.name} {h.ip}]$ cove {' '.join(args)}", flush=True)
    r = h.cli(*args)
    out = (r.stdout + r.stderr).rstrip()
    if out:
        print("  " + out.replace("\n", "\n  "), flush=True)
    if check and r.returncode != 0:
        raise SystemExit(f"demo step failed: cove {' '.join(args)}")
    return r.stdout


def main() -> int:
    if os.environ.get("COVE_SANDBOX") != "1":
        print("overlay demo: run it through `make demo` (inside tests/sandbox.sh)", file=sys.stderr)
        return 2
    print("\n## Seed 000/003: an overlay network across three hosts (VXLAN, etcd)", flush=True)
    print("(three hosts h1-h3 = 10.99.0.21-23 and etcd e1-e3 = 10.99.0.11-13 on one underlay bridge;"
          " each daemon runs with --cluster-store etcd://10.99.0.11:2379,... --cluster-advertise eth0)", flush=True)
    lab = make_lab(3, 10)
    try:
        h1, h2, h3 = lab.hosts
        run(h1, "network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "ovnet")
        run(h2, "network", "ls", "--filter", "driver=overlay")
        for h, name in ((h1, "a1"), (h2, "b2"), (h3, "c3")):
            run(h, "run", "-d", "--name", name, "--network", "ovnet", "host", "sleep", "600")
        for h, me, other in ((h1, "a1", "b2"), (h2, "b2", "c3"), (h3, "c3", "a1")):
            run(h, "exec", me, "busybox", "ping", "-c1", "-W2", other, check=False)
        print("[h2]$ bridge fdb show dev vx-001000   (remote MACs → remote VTEPs, programmed from etcd)")
        print("  " + sh("bridge", "-n", "h2", "fdb", "show", "dev", "vx-001000").stdout.strip().replace("\n", "\n  "))
        run(h2, "rm", "-f", "b2")
        run(h2, "network", "rm", "ovnet", check=False)      # refused: h1 and h3 still have endpoints
        for h, name in ((h1, "a1"), (h3, "c3")):
            run(h, "rm", "-f", name)
        run(h3, "network", "rm", "ovnet")
        return 0
    finally:
        lab.close()
        subprocess.run(["true"])


if __name__ == "__main__":
    sys.exit(main())
