"""A ``kill -9`` of a daemon during ``network connect`` of an overlay network (issue 15), on clusterlab.

h1's daemon runs with the crash hook (:mod:`cove.crashpoint`) and is killed at the 1st, 2nd, ...
durable step of ``network connect ovc victim``, then started again within its lease's TTL (so
its keys in etcd would otherwise stay).  After each restart the user's view must be whole:
either the connect happened (the container is on the network, its address and name registered),
or nothing of it is left in the cluster: no address or name of h1's is reserved in etcd besides
the container's real endpoint, the name does not resolve on h2, and h2 can take the address.
Seen failing with the release of this host's stale keys in ``OverlayNetworks._endpoints_reset``
removed: the killed attach's address and name stayed reserved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .clusterlab import Host, Lab, make_lab, ok, until

pytestmark = pytest.mark.integration

TTL = 60          # far longer than the test: the lease never expires, only the restart can clean up
STEPS = 6         # the connect's first durable steps (its intents, the reservation, the interface)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = make_lab(2, TTL, start=False)
    try:
        h1, h2 = lab.hosts
        h1.daemon_env = {"COVE_TEST_CRASH_FILE": f"{h1.root}/crash"}
        h1.start()
        h2.start()
        until(lambda: len(lab.store().list("hosts/")) == 2, 20)
        yield lab
    finally:
        lab.close()




def log(h: Host) -> str:
    """The daemon's whole log, all its restarts."""
    return Path(f"{h.root}/daemon.log").read_text()


def resolves(h: Host, container: str, name: str) -> bool:
    r = h.cli("exec", container, "busybox", "nslookup", name, "127.0.0.11")
    return "10.20.0." in r.stdout.split("127.0.0.11")[-1]


def test_a_connect_killed_at_each_step_leaves_no_reservation(lab: Lab) -> None:
    h1, h2 = lab.hosts
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.20.0.0/24", "ovc")
    net_id = json.loads(ok(h1, "network", "inspect", "ovc"))[0]["Id"]
    ok(h2, "run", "-d", "--name", "peer", "--network", "ovc", "host", "sleep", "600")
    ok(h1, "run", "-d", "--name", "victim", "host", "sleep", "600")
    store = lab.store()
    released: set[str] = set()
    for n in range(1, STEPS + 1):
        with open(f"{h1.root}/crash", "w") as f:
            f.write(str(n))
        r = h1.cli("network", "connect", "ovc", "victim")
        if r.returncode == 0:            # the connect ended before its Nth step: every step was aimed at
            h1.kill()                    # (the hook is still armed: disarm it)
            h1.start()
            ok(h1, "network", "disconnect", "ovc", "victim")
            break
        h1.kill()
        h1.start()
        nets = json.loads(ok(h1, "inspect", "victim"))[0]["NetworkSettings"]["Networks"]
        victim_ip = nets["ovc"]["IPAddress"] if "ovc" in nets else None
        peer_ip = json.loads(ok(h2, "inspect", "peer"))[0]["NetworkSettings"]["Networks"]["ovc"]["IPAddress"]
        want = {peer_ip, *([victim_ip] if victim_ip else [])}

        def whole() -> bool:
            ips = {e.key.rsplit("/", 1)[1] for e in store.list(f"ipam/{net_id}/")}
            names = {e.key.rsplit("/", 1)[1] for e in store.list(f"epnames/{net_id}/")}
            return ips == want and ("victim" in names) == (victim_ip is not None)

        until(whole, 20)                 # h1 lists its endpoints once it has joined again
        until(lambda: resolves(h2, "peer", "victim") == (victim_ip is not None), 10)   # h2's watch follows
        released |= set(re.findall(r"releasing endpoint \w+ \((10\.20\.0\.\d+) on network", log(h1)))
        if victim_ip:
            ok(h1, "network", "disconnect", "ovc", "victim")
    assert released, "no kill landed between the reservation and the endpoint record:\n" + log(h1)
    for ip in sorted(released):          # each address a killed attach had reserved is free for h2
        ok(h2, "run", "-d", "--name", f"at-{ip.rsplit('.', 1)[1]}", "--network", "ovc", "--ip", ip,
           "host", "sleep", "600")
