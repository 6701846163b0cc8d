"""Overlay at scale (issue 15), by hand only: ``tests/sandbox.sh .venv/bin/python bench/overlayscale.py``.

One real cove host converging against 100 simulated hosts × 100 endpoints, inside the sandbox:

1. the cluster lab's 3 etcd members (tests/integration/clusterlab.py) and one plugged host ``h1``
   whose daemon is not started yet;
2. one overlay network and, for each of the 100 simulated hosts, what a real host writes: its own
   lease and ``hosts/<id>`` record (:class:`cove.engine.cluster.ClusterSession`'s join) and 100
   endpoints on the network, each the Txn of :func:`cove.engine.overlay.register_endpoint` on that
   host's lease (the network record is :func:`cove.engine.overlay.network_txn`'s), so the layout is
   cove's own, not hand-written keys;
3. then ``h1``'s daemon starts (joined to the cluster) and the bench measures, from the kernel of
   ``h1`` (``ip``/``bridge`` in its namespace; CLOCK_MONOTONIC):

   - **cold convergence**: daemon start → its VXLAN device holds all 10,000 FDB and neighbour
     entries (goal ≤ 10 s);
   - **one event**: a simulated host registers or releases one endpoint → the entry is there / gone
     in h1's kernel (p50 and max over ``--events`` adds and as many removes; goal ≤ 1 s);
   - **host death**: one simulated host's lease revoked → its 100 endpoints gone from h1's kernel.

Results go to bench/results/<date>-overlayscale.md with the goals beside them, and the figures to
``<date>-overlayscale.json``, from which bench/run.py's targets table takes its overlay rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cove import ipam  # noqa: E402
from cove.drivers.overlay import OPT_VNI  # noqa: E402
from cove.engine.cluster import ClusterSession  # noqa: E402
from cove.engine.core import EngineConfig, new_id, now_rfc3339  # noqa: E402
from cove.engine.overlay import EtcdKV, network_txn, register_endpoint  # noqa: E402
from cove.model import Network  # noqa: E402
from cove.store.memory import MemoryStore  # noqa: E402
from tests.integration.clusterlab import STORE_URL, make_lab, sh  # noqa: E402

VNI = 4096
VX = f"vx-{VNI:06x}"
SUBNET = "10.128.0.0/16"


def sim_vtep(i: int) -> str:
    return f"10.98.{i // 200}.{i % 200 + 1}"


def ep_ip(host: int, j: int) -> str:
    return f"10.128.{host}.{j + 1}"


class SimHost:
    """A simulated host: a cluster session (lease + host record, kept alive) and the endpoint Txns."""

    def __init__(self, i: int, net_id: str, ttl: int, store: object) -> None:
        self.i, self.net_id = i, net_id
        self.vtep = sim_vtep(i)
        cfg = EngineConfig(cluster_store=STORE_URL, cluster_advertise=self.vtep, cluster_lease_ttl=ttl)
        self.session = ClusterSession(cfg, MemoryStore(), new_id())
        self.session.etcd = store  # type: ignore[assignment]  # one shared client for all
        self.session._join()
        self.kv = EtcdKV(self.session)
        self.eps: dict[str, str] = {}   # ip -> endpoint id

    def add(self, ip: str) -> None:
        ep_id, cid = new_id(), new_id()
        name = f"s{self.i}-{ip.replace('.', '-')}"
        if not register_endpoint(self.kv, self.vtep, self.net_id, ep_id, cid, name, [name, cid[:12]], ip,
                                 ipam.mac_for_ip(IPv4Address(ip))):
            raise RuntimeError(f"endpoint {ip} refused")
        self.eps[ip] = ep_id

    def remove(self, ip: str) -> None:
        ep_id = self.eps.pop(ip)
        name = f"s{self.i}-{ip.replace('.', '-')}"
        self.kv.txn([], [], [f"endpoints/{self.net_id}/{ep_id}", f"ipam/{self.net_id}/{ip}",
                             f"epnames/{self.net_id}/{name}"])


def count(ns: str, what: str, vtep: str | None = None) -> int:
    """Permanent neighbour or FDB entries (with a remote dst) on h1's VXLAN device; -1 if no device."""
    if what == "neigh":
        r = sh("ip", "-n", ns, "-o", "neigh", "show", "dev", VX, "nud", "permanent", check=False)
    else:
        r = sh("bridge", "-n", ns, "fdb", "show", "dev", VX, check=False)
    if r.returncode:
        return -1
    lines = r.stdout.splitlines()
    if what == "fdb":
        lines = [ln for ln in lines if " dst " in ln and (vtep is None or f" dst {vtep} " in ln + " ")]
    return len(lines)


def has_neigh(ns: str, ip: str) -> bool:
    r = sh("ip", "-n", ns, "neigh", "get", ip, "dev", VX, check=False)
    return r.returncode == 0 and "PERMANENT" in r.stdout


def has_fdb(ns: str, mac: str) -> bool:
    return sh("bridge", "-n", ns, "fdb", "get", mac, "dev", VX, "self", check=False).returncode == 0


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.0f} | {max(xs) * 1000:.0f}"


def wait(cond: object, timeout: float, step: float = 0.005) -> float:
    """Seconds until ``cond()`` holds (polling); raises on timeout."""
    t0 = time.monotonic()
    while not cond():  # type: ignore[operator]
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--endpoints", type=int, default=100, help="per simulated host")
    ap.add_argument("--events", type=int, default=20, help="single adds (and as many removes)")
    ap.add_argument("--ttl", type=int, default=30)
    ap.add_argument("--writers", type=int, default=8)
    args = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        print("run it inside tests/sandbox.sh", file=sys.stderr)
        return 2
    total = args.hosts * args.endpoints
    lab = make_lab(1, args.ttl, start=False)
    sims: list[SimHost] = []
    try:
        store = lab.store()
        cfg = ipam.IpamConfig(IPv4Network(SUBNET), IPv4Address("10.128.0.1"))
        net = Network(id=new_id(), name="ov", driver="overlay", created=now_rfc3339(), ipam=[cfg],
                      options={OPT_VNI: str(VNI)})
        conds, puts = network_txn(net)
        writer = SimHost(0, net.id, args.ttl, store)        # host 0 only writes the network record
        assert writer.kv.txn(conds, puts, [])
        sims.append(writer)
        t0 = time.monotonic()
        sims += [SimHost(i, net.id, args.ttl, store) for i in range(1, args.hosts + 1)]
        with ThreadPoolExecutor(args.writers) as pool:
            list(pool.map(lambda s: [s.add(ep_ip(s.i, j)) for j in range(args.endpoints)], sims[1:]))
        fill = time.monotonic() - t0
        print(f"etcd filled: {args.hosts} hosts, {total} endpoints in {fill:.1f} s", flush=True)

        h1 = lab.hosts[0]
        t0 = time.monotonic()
        h1.start()
        answered = time.monotonic() - t0
        while count(h1.name, "neigh") < total:
            if time.monotonic() - t0 > 120:
                raise TimeoutError(f"h1 did not converge: {count(h1.name, 'neigh')} neighbours")
            time.sleep(0.05)
        cold = time.monotonic() - t0
        fdb = count(h1.name, "fdb")
        print(f"cold: daemon answering {answered:.2f} s, {total} entries {cold:.2f} s (fdb {fdb})", flush=True)

        adds, removes = [], []
        s = sims[1]
        for k in range(args.events):
            ip = ep_ip(200, k + 1)
            mac = ipam.mac_for_ip(IPv4Address(ip))
            t = time.monotonic()
            s.add(ip)
            wait(lambda: has_neigh(h1.name, ip) and has_fdb(h1.name, mac), 10)
            adds.append(time.monotonic() - t)
        for k in range(args.events):
            ip = ep_ip(200, k + 1)
            mac = ipam.mac_for_ip(IPv4Address(ip))
            t = time.monotonic()
            s.remove(ip)
            wait(lambda: not has_fdb(h1.name, mac) and not has_neigh(h1.name, ip), 10)
            removes.append(time.monotonic() - t)
        print(f"events: add p50 {statistics.median(adds) * 1000:.0f} ms, remove p50 "
              f"{statistics.median(removes) * 1000:.0f} ms", flush=True)

        victim = sims[-1]
        t = time.monotonic()
        assert victim.session.lease is not None
        victim.session.lease.revoke()
        death = wait(lambda: count(h1.name, "fdb", victim.vtep) == 0
                     and count(h1.name, "neigh") == total - args.endpoints, 30, 0.01)
        print(f"lease revoked: {args.endpoints} endpoints gone in {death * 1000:.0f} ms", flush=True)
        left = count(h1.name, "fdb")
        load = open("/proc/loadavg").read().split()[0]
        lines = [
            f"# overlay at scale {datetime.date.today()}: 1 real host, {args.hosts} simulated hosts × "
            f"{args.endpoints} endpoints", "",
            f"3 etcd members and h1 in namespaces inside tests/sandbox.sh; the simulated hosts write with cove's "
            f"own Txns ({args.writers} writer threads, {fill:.1f} s for {total} endpoints); load average "
            f"{load} at the end (2 CPUs shared).", "",
            "| measure | n | p50 (ms) | max (ms) | goal |", "|---|---|---|---|---|",
            f"| cold: daemon start → all {total} FDB + neighbour entries in h1's kernel | 1 | {cold * 1000:.0f} | "
            f"{cold * 1000:.0f} | ≤ 10,000 |",
            f"| (of which: daemon start → API answering) | 1 | {answered * 1000:.0f} | {answered * 1000:.0f} | |",
            f"| one endpoint registered on a simulated host → in h1's kernel | {len(adds)} | {ms(adds)} | ≤ 1,000 |",
            f"| one endpoint released → gone from h1's kernel | {len(removes)} | {ms(removes)} | ≤ 1,000 |",
            f"| a simulated host's lease revoked → its {args.endpoints} endpoints gone from h1's kernel | 1 | "
            f"{death * 1000:.0f} | {death * 1000:.0f} | ≤ 1,000 |",
            "", f"FDB entries after cold start: {fdb} (want {total}); after the revoke: {left} "
            f"(want {total - args.endpoints}).",
            "Event times run from just before the etcd Txn (one HTTP round trip included) to the kernel check "
            "(`ip neigh get` + `bridge fdb get` polled every 5 ms).",
        ]
        text = "\n".join(lines) + "\n"
        print(text)
        out = ROOT / "bench" / "results" / f"{datetime.date.today()}-overlayscale.md"
        out.write_text(text)
        # for bench/run.py's targets table (bench/harness/targets.py overlay_rows)
        out.with_suffix(".json").write_text(json.dumps({
            "meta": {"date": str(datetime.date.today()), "load": load, "fill_s": round(fill, 2)},
            "hosts": args.hosts, "endpoints": args.endpoints, "cold_s": round(cold, 3),
            "answered_s": round(answered, 3), "add_ms": [round(x * 1000, 1) for x in adds],
            "remove_ms": [round(x * 1000, 1) for x in removes], "revoke_ms": round(death * 1000, 1),
            "fdb_cold": fdb, "fdb_after_revoke": left}, indent=1) + "\n")
        return 0
    finally:
        for s in sims:
            if s.session.lease is not None:
                s.session.lease.close()
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
