"""Where attach and start time goes with N containers on one network (by hand, root).

    tests/sandbox.sh .venv/bin/python bench/profile_scale.py 1000 > bench/results/<date>-profile-scale-1000.md

Needs py-spy in /tmp/benchvenv (see bench/README.md).  Inside the sandbox: a private cove
daemon, N containers started over the API on one network, then py-spy (``--idle``, wall
time) on the daemon while a probe container is connected to / disconnected from that
network 30 times, and while 20 more containers start; the stacks are folded under the
engine methods as in ``bench/profile.py``.  Everything it made is removed at the end.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

import profile as bench_profile  # noqa: E402  (bench/profile.py, first on sys.path)

from harness.covedaemon import CoveDaemon  # noqa: E402
from harness.parts import _assert_sandboxed  # noqa: E402

PYSPY = "/tmp/benchvenv/bin/py-spy"


def fd_table(pid: int) -> str:
    """The daemon's open descriptors by kind (socket, pipe, anon_inode:..., file directory)."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("anon_inode:"):
            kind = target                       # anon_inode:[pidfd], anon_inode:[eventpoll], ...
        else:
            kind = target.split(":[")[0] if ":[" in target else os.path.dirname(target) or target
        kinds[kind] += 1
    rows = "\n".join(f"| {k} | {v} |" for k, v in kinds.most_common(12))
    return f"## daemon fds: {sum(kinds.values())}\n\n| kind | count |\n|---|---:|\n{rows}\n"


def main(n: int) -> None:
    _assert_sandboxed()
    assert bench_profile.__file__ == str(BENCH / "profile.py"), bench_profile.__file__
    daemon = CoveDaemon()
    eng = daemon.engine()
    try:
        daemon.start()
        daemon.import_busybox(eng)
        for net, subnet in (("sn", "10.240.0.0/16"), ("pn", "10.241.0.0/24")):
            eng.track_network(net)
            eng.ok("network", "create", "--subnet", subnet, net)
        eng.track_container("probe")
        eng.ok("run", "-d", "--name", "probe", "--network", "pn", "bb", "sleep", "3600")
        api = eng.api()
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "sn"}}

        def start(i: int) -> None:
            eng.track_container(f"s{i}")
            for method, url, payload in (("POST", f"/containers/create?name=s{i}", body),
                                         ("POST", f"/containers/s{i}/start", None)):
                status, reply, _ = api.request(method, url, payload)
                if status >= 300:
                    raise RuntimeError(f"{method} {url}: {status} {reply}")

        for i in range(1, n + 1):
            start(i)

        def attach() -> None:
            for _ in range(30):
                api.request("POST", "/networks/sn/connect", {"Container": "probe"})
                api.request("POST", "/networks/sn/disconnect", {"Container": "probe"})

        print(f"# cove profile with {n} containers on one network\n")
        print(fd_table(daemon.proc.pid))  # type: ignore[union-attr]
        raw, note = bench_profile.sampled(PYSPY, daemon.proc.pid, attach, 30)  # type: ignore[union-attr]
        print(f"## endpoint attach / detach with {n} containers on the network\n\n{note}\n")
        print(bench_profile.fold(raw, "NetworkService.connect ", depth=5, top=30))
        print(bench_profile.fold(raw, "NetworkService.disconnect ", depth=5, top=12))
        raw, note = bench_profile.sampled(PYSPY, daemon.proc.pid,  # type: ignore[union-attr]
                                          lambda: [start(i) for i in range(n + 1, n + 21)], 20)
        print(f"## container create + start, containers {n + 1}..{n + 20}\n\n{note}\n")
        print(bench_profile.fold(raw, "ContainerService.start_container ", depth=5, top=30))
        print(bench_profile.fold(raw, "ContainerService.create_container ", depth=4, top=15))
        api.close()
    finally:
        eng.cleanup()
        daemon.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
