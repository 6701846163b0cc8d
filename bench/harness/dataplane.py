"""Data path: iperf3 TCP throughput through cove's networks against raw veth+bridge.

Inside one throwaway namespace (``tests/sandbox.sh``) that plays the host:

* raw: a bridge ``ipbr0`` (10.252.0.1/16) and two namespaces ``iprawa``/``iprawb`` on it,
  made by ``ip`` commands (a veth each, address, default route): the kernel alone;
* cove: a private daemon, a user network (10.243.0.0/24) and two busybox containers,
  the server with ``-p 15201:5201``;
* an "outside" client namespace ``ipout`` joined to the host by a veth
  (host 10.253.0.1/24, client 10.253.0.2), with IPv4 forwarding on.

iperf3 runs *in the containers' network namespaces* (``nsenter --net`` on the path
``inspect`` reports as SandboxKey): the busybox image has no iperf3, and what is measured
is the packet path (veth, bridge, netfilter), which is the same for any process in that
namespace.  Paths, each ``reps`` times, interleaved so drift hits them alike:

* ``iperf_raw_c2c`` / ``iperf_cove_c2c``: container to container on one bridge;
* ``iperf_raw_routed``: outside client to a raw namespace, routed by the host, no NAT;
* ``iperf_cove_published``: outside client to the host's 10.253.0.1:15201, DNAT to the
  container (cove's published port).

Samples are bits per second (receiver side, first second omitted).
"""

from __future__ import annotations

import json
import subprocess
import time

from .covedaemon import CoveDaemon
from .proc import run
from .stats import Samples

PORT = 5201
PUBLISHED = 15201
NET = "bench-iperf"


def _ip(*args: str) -> None:
    r = run(["ip", *args], timeout=20)
    if r.rc != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.err.strip()}")


def _ns_endpoint(ns: str, host_if: str, addr: str, gw: str, master: str | None) -> None:
    _ip("netns", "add", ns)
    _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
    if master:
        _ip("link", "set", host_if, "master", master)
    _ip("link", "set", host_if, "up")
    _ip("-n", ns, "addr", "add", addr, "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "route", "add", "default", "via", gw)


def iperf(server_ns: str, client_ns: str, target: str, port: int, seconds: int) -> float:
    """One TCP run: server in ``server_ns`` (a netns path) on PORT, client to target:port."""
    srv = subprocess.Popen(["nsenter", f"--net={server_ns}", "iperf3", "-s", "-1", "-p", str(PORT)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            r = run(["nsenter", f"--net={client_ns}", "iperf3", "-c", target, "-p", str(port), "-t", str(seconds),
                     "-O", "1", "-J"], timeout=seconds + 60)
            try:
                data = json.loads(r.out)
            except ValueError:
                data = {"error": (r.out + r.err).strip()[-300:]}
            if r.rc == 0 and "error" not in data:
                return float(data["end"]["sum_received"]["bits_per_second"])
            if "refused" not in str(data.get("error", "")) or time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 to {target}:{port}: exit {r.rc}: {(r.out + r.err).strip()[-300:]}")
            time.sleep(0.1)
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait(10)


class _RoutingDaemon(CoveDaemon):
    """cove with ``--ip-forward-no-drop true``: the raw routed baseline (``ipout`` to
    ``iprawa`` over ``ipbr0``) touches no cove bridge, and cove's forward chain drops such
    traffic by default, as dockerd's FORWARD policy DROP does (every routed run timed out).
    cove's own paths meet their accept verdicts before that last rule, so they are measured
    as they run by default."""

    def extra_args(self) -> tuple[str, ...]:
        return ("--ip-forward-no-drop", "true")


def measure(s: Samples, reps: int, seconds: int = 4) -> None:
    made_ns: list[str] = []
    made_links: list[str] = []
    daemon = _RoutingDaemon()
    eng = daemon.engine()
    s.facts["iperf3"] = run(["iperf3", "--version"], timeout=10).out.splitlines()[:1]
    s.facts["seconds_per_run"] = seconds
    try:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # the sandbox's own namespace
            f.write("1\n")
        made_links.append("ipbr0")
        _ip("link", "add", "ipbr0", "type", "bridge")
        _ip("addr", "add", "10.252.0.1/16", "dev", "ipbr0")
        _ip("link", "set", "ipbr0", "up")
        for ns, host_if, addr in (("iprawa", "iprawa0", "10.252.0.2/16"), ("iprawb", "iprawb0", "10.252.0.3/16")):
            made_ns.append(ns)
            made_links.append(host_if)
            _ns_endpoint(ns, host_if, addr, "10.252.0.1", "ipbr0")
        made_ns.append("ipout")
        made_links.append("ipouth")
        _ip("netns", "add", "ipout")
        _ip("link", "add", "ipouth", "type", "veth", "peer", "name", "eth0", "netns", "ipout")
        _ip("addr", "add", "10.253.0.1/24", "dev", "ipouth")
        _ip("link", "set", "ipouth", "up")
        _ip("-n", "ipout", "addr", "add", "10.253.0.2/24", "dev", "eth0")
        _ip("-n", "ipout", "link", "set", "eth0", "up")
        _ip("-n", "ipout", "route", "add", "default", "via", "10.253.0.1")

        daemon.start()
        daemon.import_busybox(eng)
        eng.track_network(NET)
        eng.ok("network", "create", "--subnet", "10.243.0.0/24", NET)
        for name, extra in (("bench-iperf-srv", ["-p", f"{PUBLISHED}:{PORT}"]), ("bench-iperf-cli", [])):
            eng.track_container(name)
            eng.ok("run", "-d", "--name", name, "--network", NET, *extra, "bb", "sleep", "3600")
        key = "{{.NetworkSettings.SandboxKey}}"
        srv_ns = eng.ok("inspect", "-f", key, "bench-iperf-srv").out.strip()
        cli_ns = eng.ok("inspect", "-f", key, "bench-iperf-cli").out.strip()
        srv_ip = eng.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                        "bench-iperf-srv").out.strip()
        s.facts["cove_server"] = {"netns": srv_ns, "ip": srv_ip}
        raw_a, raw_b, out = "/run/netns/iprawa", "/run/netns/iprawb", "/run/netns/ipout"
        paths = [
            ("iperf_raw_c2c", lambda: iperf(raw_a, raw_b, "10.252.0.2", PORT, seconds)),
            ("iperf_cove_c2c", lambda: iperf(srv_ns, cli_ns, srv_ip, PORT, seconds)),
            ("iperf_raw_routed", lambda: iperf(raw_a, out, "10.252.0.2", PORT, seconds)),
            ("iperf_cove_published", lambda: iperf(srv_ns, out, "10.253.0.1", PUBLISHED, seconds)),
        ]
        for _ in range(reps):
            for name, fn in paths:
                try:
                    s.add(name, fn())
                except RuntimeError as exc:
                    s.errors.append(f"{name}: {exc}")
    finally:
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001 - clean-up goes on
            s.errors.append(f"iperf clean-up: {exc}")
        s.errors.extend(eng.cleanup_errors)
        s.errors.extend(daemon.stop())
        for link in made_links:
            run(["ip", "link", "del", link], timeout=10)
        for ns in made_ns:
            run(["ip", "netns", "del", ns], timeout=10)
