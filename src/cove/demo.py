"""``make demo``: build the seed articles' topologies with cove and show who reaches whom.

Runs inside the throwaway namespace of ``tests/sandbox.sh`` (the Makefile puts
it there), so nothing touches the machine's own network.  It starts a daemon on
a private socket, imports a busybox root filesystem as the image ``bb``, then
follows the articles: two containers on the default bridge (milk, bread), a
user-defined network ``greatwall`` (beijing, shenzhen), ``network connect``,
the host, none and container modes, an internal network, egress through
masquerade to a namespace that plays the internet, a published port, -h/--dns
and --link, --icc=false, macvlan on a LAN (with the host_access shim), a
pipework-style extra interface, IPv6, the debugging tools (nsenter, capture), and the picture of it
all (``cove graph``, written under ``$COVE_DEMO_OUT``, default /tmp/cove-demo) with ``cove diagnose``
explaining three pairs.  Every command is printed as a user would type it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .runtime.busybox import make_busybox_tar

COVE = [sys.executable, "-m", "cove"]
INTERNET = "203.0.113.2"


class Demo:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cove-demo-")
        self.env = {**os.environ, "COVE_HOST": f"unix://{self.tmp}/cove.sock", "COVE_NO_AUTOSTART": "1"}
        self.daemon: subprocess.Popen[bytes] | None = None

    def say(self, text: str) -> None:
        print(f"\n## {text}", flush=True)

    def run(self, *args: str, show: bool = True, check: bool = True) -> str:
        if show:
            print(f"$ cove {' '.join(args)}", flush=True)
        r = subprocess.run([*COVE, *args], capture_output=True, text=True, env=self.env, timeout=120)
        if show and r.stdout.strip():
            print("  " + r.stdout.strip().replace("\n", "\n  "), flush=True)
        if show and r.returncode != 0 and not check:
            print(f"  (exit {r.returncode}) {r.stderr.strip()}", flush=True)
        if r.returncode != 0 and check:
            raise SystemExit(f"cove {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def sh(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True)

    def start(self) -> None:
        log = open(f"{self.tmp}/daemon.log", "ab")
        self.daemon = subprocess.Popen([*COVE, "daemon", "--host", self.env["COVE_HOST"],
                                        "--data-root", f"{self.tmp}/lib", "--exec-root", f"{self.tmp}/run"],
                                       stdout=log, stderr=log, env=self.env)
        for _ in range(200):
            if subprocess.run([*COVE, "version"], capture_output=True, env=self.env).returncode == 0:
                return
            time.sleep(0.05)
        raise SystemExit("the daemon did not start; see " + f"{self.tmp}/daemon.log")

    def internet(self) -> None:
        """A namespace that plays the internet, reachable from the host at 203.0.113.1."""
        self.sh("ip", "netns", "add", "internet")
        self.sh("ip", "link", "add", "uplink", "type", "veth", "peer", "name", "wan0", "netns", "internet")
        self.sh("ip", "addr", "add", "203.0.113.1/24", "dev", "uplink")
        self.sh("ip", "link", "set", "uplink", "up")
        self.sh("ip", "-n", "internet", "addr", "add", f"{INTERNET}/24", "dev", "wan0")
        self.sh("ip", "-n", "internet", "link", "set", "wan0", "up")

    def lan(self, link: str, ns: str, addr: str, bridge: str | None = None) -> None:
        """A namespace ``ns`` at ``addr`` on the other end of the veth ``link`` (in ``bridge`` if given)."""
        self.sh("ip", "netns", "add", ns)
        self.sh("ip", "link", "add", link, "type", "veth", "peer", "name", "wire", "netns", ns)
        if bridge:
            self.sh("ip", "link", "add", bridge, "type", "bridge")
            self.sh("ip", "link", "set", bridge, "up")
            self.sh("ip", "link", "set", link, "master", bridge)
        self.sh("ip", "link", "set", link, "up")
        self.sh("ip", "-n", ns, "addr", "add", addr, "dev", "wire")
        self.sh("ip", "-n", ns, "link", "set", "wire", "up")
        self.sh("ip", "-n", ns, "link", "set", "lo", "up")

    def ns_ping(self, ns: str, dst: str) -> bool:
        return subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c1", "-W2", dst], capture_output=True).returncode == 0

    def host_ping(self, dst: str) -> bool:
        return subprocess.run(["busybox", "ping", "-c1", "-W2", dst], capture_output=True).returncode == 0

    def ip(self, name: str) -> str:
        nets = json.loads(self.run("inspect", name, show=False))[0]["NetworkSettings"]["Networks"]
        return next((v["IPAddress"] for v in nets.values() if v["IPAddress"]), "")

    def ping(self, src: str, dst: str) -> bool:
        r = subprocess.run([*COVE, "exec", src, "ping", "-c1", "-W1", dst], capture_output=True, env=self.env)
        return r.returncode == 0


def main() -> int:
    if os.environ.get("COVE_SANDBOX") != "1":
        print("cove demo: run it through `make demo` (inside tests/sandbox.sh), not on the host", file=sys.stderr)
        return 2
    d = Demo()
    try:
        d.start()
        d.internet()
        d.say("An image from a root filesystem (busybox-static), as `docker import`")
        d.run("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{d.tmp}/busybox.tar"), "bb")

        d.say("Seed 003 §1: the default bridge — milk and bread on cove0 (docker0's twin)")
        d.run("run", "-d", "--name", "milk", "bb", "sleep", "3600")
        d.run("run", "-d", "--name", "bread", "bb", "sleep", "3600")
        d.run("network", "ls")
        d.run("exec", "milk", "ip", "-4", "addr", "show", "eth0")

        d.say("Seed 003 §2: a user-defined bridge — greatwall, isolated from the default one")
        d.run("network", "create", "greatwall")
        d.run("run", "-d", "--name", "beijing", "--network", "greatwall", "bb", "sleep", "3600")
        d.run("run", "-d", "--name", "shenzhen", "--network", "greatwall", "bb", "sleep", "3600")

        d.say("Seed 000: an internal network (no way out) and a static address")
        d.run("network", "create", "--internal", "--subnet", "10.10.0.0/24", "vault")
        d.run("run", "-d", "--name", "safe", "--network", "vault", "--ip", "10.10.0.10", "bb", "sleep", "3600")

        names = ["milk", "bread", "beijing", "shenzhen", "safe"]
        ips = {n: d.ip(n) for n in names}
        ips["internet"] = INTERNET

        def table(title: str) -> None:
            d.say(title)
            cols = names + ["internet"]
            width = max(len(c) for c in cols) + 2
            print(" " * 10 + "".join(c.ljust(width) for c in cols))
            for src in names:
                row = []
                for dst in cols:
                    row.append("-" if src == dst else ("yes" if d.ping(src, ips[dst]) else "no"))
                print(src.ljust(10) + "".join(v.ljust(width) for v in row), flush=True)

        table("Who reaches whom (ping by IP; `internet` is a namespace with no route back: egress is NATed)")

        d.say("Seed 003 §2: on a user-defined network names resolve (embedded DNS at 127.0.0.11); not on the default bridge")
        d.run("exec", "beijing", "ping", "-c1", "-W1", "shenzhen")
        d.run("exec", "milk", "ping", "-c1", "-W1", "bread", check=False)

        d.say("Seed 000 端口映射 / seed 003 coffee -p: publish a port; the internet reaches it on the host's address")
        d.run("run", "-d", "--name", "coffee", "-p", "8080:80", "host", "python3", "-m", "http.server", "80")
        d.run("port", "coffee")
        get = "import urllib.request as u,sys; print(u.urlopen(sys.argv[1], timeout=3).status)"
        for _ in range(50):
            r = subprocess.run(["ip", "netns", "exec", "internet", "python3", "-c", get, "http://203.0.113.1:8080/"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        print(f"$ ip netns exec internet curl http://203.0.113.1:8080/  ->  HTTP {r.stdout.strip() or 'failed'}")

        d.say("Seed 003 §2: network connect — milk joins greatwall and gets eth1")
        d.run("network", "connect", "greatwall", "milk")
        d.run("exec", "milk", "ip", "-o", "-4", "addr")
        print(f"milk -> beijing ({ips['beijing']}): {'yes' if d.ping('milk', ips['beijing']) else 'no'}")

        d.say("Seed 002 四种网络模式: host, none, container")
        d.run("run", "--rm", "--network", "host", "bb", "ip", "-o", "-4", "addr")
        d.run("run", "--rm", "--network", "none", "bb", "ip", "-o", "link")
        d.run("run", "-d", "--name", "side", "--network", "container:beijing", "bb", "sleep", "3600")
        d.run("exec", "side", "ip", "-o", "-4", "addr", "show", "eth0")

        d.say("Seed 002 DNS/HOSTNAME自定义 and --link: -h, --dns, --dns-search; a link alias in /etc/hosts")
        d.run("run", "-d", "--name", "web", "-h", "myweb", "--dns", "10.1.2.3", "--dns-search", "corp.test",
              "bb", "sleep", "3600")
        d.run("exec", "web", "cat", "/etc/hostname", "/etc/resolv.conf")
        d.run("run", "-d", "--name", "client", "--link", "bread:db", "bb", "sleep", "3600")
        d.run("exec", "client", "grep", "db", "/etc/hosts")
        print(f"client -> db (bread by its link alias): {'yes' if d.ping('client', 'db') else 'no'}")

        d.say("Seed 002 --icc=false: neighbours on one bridge cut off from each other, not from the gateway")
        d.run("network", "create", "--subnet", "10.20.0.0/24", "-o", "com.docker.network.bridge.enable_icc=false", "quiet")
        d.run("run", "-d", "--name", "q1", "--network", "quiet", "bb", "sleep", "3600")
        d.run("run", "-d", "--name", "q2", "--network", "quiet", "bb", "sleep", "3600")
        print(f"q1 -> q2: {'yes' if d.ping('q1', d.ip('q2')) else 'no'};  q1 -> gateway 10.20.0.1: "
              f"{'yes' if d.ping('q1', '10.20.0.1') else 'no'}")

        d.say("Seed 003 MacVLAN: containers on the LAN segment (ens33 here is a veth to a `router` namespace)")
        d.lan("ens33", "router", "192.168.241.2/24")
        d.run("network", "create", "-d", "macvlan", "--subnet", "192.168.241.0/24", "--gateway", "192.168.241.2",
              "-o", "parent=ens33", "-o", "host_access=true", "subway")
        d.run("run", "-d", "--name", "m1", "--network", "subway", "--ip", "192.168.241.92", "bb", "sleep", "3600")
        print(f"router -> m1 (192.168.241.92): {'yes' if d.ns_ping('router', '192.168.241.92') else 'no'};  "
              f"host -> m1 through the host_access shim: {'yes' if d.host_ping('192.168.241.92') else 'no'}")

        d.say("Seed 002 pipework: an extra interface on a running container, on an existing bridge br0")
        d.lan("br0-peer", "lanpeer", "192.168.1.1/24", bridge="br0")
        d.run("attach", "beijing", "--bridge", "br0", "--ip", "192.168.1.150/24@192.168.1.1")
        d.run("nsenter", "--net", "beijing", "--", "ip", "route")
        print(f"lanpeer -> beijing (192.168.1.150): {'yes' if d.ns_ping('lanpeer', '192.168.1.150') else 'no'}")
        d.run("detach", "beijing", "--ifname", "eth1")

        d.say("IPv6 on a user network: addresses, names (AAAA), ping6")
        d.run("network", "create", "--ipv6", "--subnet", "fd00:30::/64", "six")
        d.run("run", "-d", "--name", "s1", "--network", "six", "bb", "sleep", "3600")
        d.run("run", "-d", "--name", "s2", "--network", "six", "bb", "sleep", "3600")
        d.run("exec", "s1", "ping", "-6", "-c1", "-W2", "s2")

        d.say("Seed 004 实用工具: the container's pid, a host tool in its namespace, its traffic in a pcap")
        d.run("inspect", "-f", "{{.State.Pid}} {{.NetworkSettings.Networks.greatwall.Cove.HostInterface}}", "shenzhen")
        d.run("nsenter", "shenzhen", "--", "ip", "-o", "-4", "addr", "show", "eth0")
        pcap = f"{d.tmp}/shenzhen.pcap"
        cap = subprocess.Popen([*COVE, "capture", "shenzhen", "-w", pcap, "-c", "2", "icmp"], env=d.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("$ cove capture shenzhen -w shenzhen.pcap -c 2 icmp   (while beijing pings shenzhen)")
        for _ in range(50):
            d.ping("beijing", ips["shenzhen"])
            try:
                cap.wait(0.2)
                break
            except subprocess.TimeoutExpired:
                pass
        else:
            cap.kill()
        out = subprocess.run(["tcpdump", "-n", "-r", pcap], capture_output=True, text=True).stdout
        print("$ tcpdump -n -r shenzhen.pcap\n  " + out.strip().replace("\n", "\n  "))

        d.say("The picture of all of it (cove graph), and why some pairs cannot talk (cove diagnose)")
        out_dir = os.environ.get("COVE_DEMO_OUT", "/tmp/cove-demo")
        os.makedirs(out_dir, exist_ok=True)
        picture = f"{out_dir}/net.{'svg' if shutil.which('dot') else 'dot'}"
        d.run("graph", "-o", picture)
        d.run("graph", "-o", f"{out_dir}/net.dot", show=False)
        print(f"  (written: {picture} and {out_dir}/net.dot)")
        d.run("diagnose", "milk", "safe", check=False)
        d.run("diagnose", "q1", "q2", check=False)
        d.run("diagnose", "outside", "coffee", "--port", "80", check=False)

        d.say("Inspect, Docker-shaped")
        net = json.loads(d.run("network", "inspect", "greatwall", show=False))[0]
        print(json.dumps({k: net[k] for k in ("Name", "Driver", "IPAM", "Containers")}, indent=2))

        d.say("Clean up: removal leaves no veth, namespace or rule behind")
        ids = d.run("ps", "-aq", show=False).split()
        d.run("rm", "-f", *ids)
        d.run("network", "rm", "greatwall", "vault", "quiet", "subway", "six")
        left = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        vs = [line.split(": ")[1] for line in left.splitlines() if ": veth" in line]
        print("veths left:", vs or "none")
        return 0
    finally:
        if d.daemon is not None:
            d.daemon.send_signal(signal.SIGTERM)
            d.daemon.wait(10)
        for ns in ("internet", "router", "lanpeer"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in ("uplink", "ens33", "br0-peer", "br0"):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        shutil.rmtree(d.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
