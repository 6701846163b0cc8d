"""The CNI reference: Debian's containernetworking-plugins called directly, as a runtime would.

A network is the chain ``bridge`` (with ``host-local`` IPAM) then ``portmap``, the usual
conflist of a Kubernetes node.  Each plugin is executed with the CNI environment
(``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH``) and
its JSON config on stdin; for ADD each plugin after the first gets the previous result
(``prevResult``), DEL runs the chain in reverse.  host-local keeps its leases in a temp
dir (``dataDir``), never in the host's /var/lib/cni.  Namespaces are made the cheapest
way (see :func:`rawlimit.netns_create`): CNI does not make them, its runtime does.

Series:

* ``cni_attach`` / ``cni_detach``: ADD / DEL of the chain for a namespace that exists
  (the endpoint attach/detach, compare with cove's ``connect_api`` and ``raw_endpoint``);
* ``cni_scale_add``: namespace + ADD for containers 1..N kept on one network, in order
  (sample i is container i+1); ``cni_scale_total_seconds`` is their sum.

Run inside a throwaway namespace only (``tests/sandbox.sh``), on the main thread.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from . import rawlimit
from .proc import run
from .stats import Samples

CNI_PATH = "/usr/lib/cni"
BRIDGE = "cnibench0"
SUBNET = "10.242.0.0/16"


def plugins_present() -> bool:
    return all(os.access(f"{CNI_PATH}/{p}", os.X_OK) for p in ("bridge", "host-local", "portmap"))


class CniNetwork:
    """One CNI network (bridge + host-local + portmap); ADD and DEL of its chain."""

    def __init__(self, data_dir: str, name: str = "benchnet") -> None:
        self.name = name
        self.version = "1.0.0"
        self.chain: list[dict[str, Any]] = [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": f"{data_dir}/ipam"}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ]
        self.results: dict[str, dict[str, Any]] = {}

    def _exec(self, plugin: dict[str, Any], command: str, cid: str, netns: str,
              prev: dict[str, Any] | None) -> dict[str, Any]:
        conf = {"cniVersion": self.version, "name": self.name, **plugin, "runtimeConfig": {"portMappings": []}}
        if prev is not None:
            conf["prevResult"] = prev
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
               "CNI_PATH": CNI_PATH, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        r = run([f"{CNI_PATH}/{plugin['type']}"], env=env, input=json.dumps(conf), timeout=60)
        if r.rc != 0:
            raise RuntimeError(f"CNI {plugin['type']} {command} {cid}: exit {r.rc}: {(r.out + r.err).strip()[:300]}")
        if command != "ADD":
            return prev or {}
        result: dict[str, Any] = json.loads(r.out)
        return result

    def add(self, cid: str, netns: str) -> dict[str, Any]:
        prev: dict[str, Any] | None = None
        for plugin in self.chain:
            prev = self._exec(plugin, "ADD", cid, netns, prev)
        assert prev is not None
        self.results[cid] = prev
        return prev

    def delete(self, cid: str, netns: str) -> None:
        prev = self.results.pop(cid, None)
        for plugin in reversed(self.chain):
            self._exec(plugin, "DEL", cid, netns, prev)


def _ping_check(netns: str, gateway: str) -> str:
    busybox = shutil.which("busybox") or "/bin/busybox"
    r = run(["nsenter", f"--net={netns}", busybox, "ping", "-c1", "-W2", gateway], timeout=10)
    return "ok" if r.rc == 0 else f"failed: {(r.out + r.err)[-200:]}"


def measure(s: Samples, reps: int, scale: int) -> None:
    """``reps`` attach/detach pairs (after one warm-up), then ``scale`` containers kept on one network."""
    if not plugins_present():
        raise RuntimeError(f"CNI plugins not found in {CNI_PATH} (make bench-refs)")
    os.makedirs(rawlimit.NETNS_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="cove-bench-cni-")
    net = CniNetwork(tmp)
    s.facts["version"] = run(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"],
                             timeout=10).out.strip()
    live: dict[str, str] = {}  # container id -> namespace path
    try:
        probe = f"{rawlimit.NETNS_DIR}/cniprobe"
        rawlimit.netns_create(probe)
        live["cniprobe"] = probe
        for i in range(reps + 1):
            r_add = _timed(lambda: net.add("cniprobe", probe))
            if i == 0:
                gw = str(r_add[1].get("ips", [{}])[0].get("gateway", "10.242.0.1"))
                s.facts["ping_check"] = _ping_check(probe, gw)
            r_del = _timed(lambda: net.delete("cniprobe", probe))
            if i:
                s.add("cni_attach", r_add[0])
                s.add("cni_detach", r_del[0])
        total = 0.0
        for i in range(1, scale + 1):
            cid = f"cnis{i}"
            path = f"{rawlimit.NETNS_DIR}/{cid}"
            seconds, _ = _timed(lambda: (rawlimit.netns_create(path), live.__setitem__(cid, path), net.add(cid, path)))
            s.add("cni_scale_add", seconds)
            total += seconds
        s.facts["cni_scale_containers"] = scale
        s.facts["cni_scale_total_seconds"] = total
        for cid in [c for c in live if c.startswith("cnis")][-10:][::-1]:
            seconds, _ = _timed(lambda: net.delete(cid, live[cid]))
            s.add("cni_scale_del", seconds)
            rawlimit.netns_delete(live.pop(cid))
    finally:
        for cid, path in list(live.items()):
            try:
                net.delete(cid, path)
            except Exception as exc:  # noqa: BLE001 - clean-up goes on
                if cid != "cniprobe":
                    s.errors.append(f"cni: DEL {cid}: {exc}")
            rawlimit.netns_delete(path)
        run(["ip", "link", "del", BRIDGE], timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _timed(fn: Any) -> tuple[float, Any]:
    import time

    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
