"""The iptables-legacy backend, for kernels without nftables (User-Mode Linux in CI).

Chains (``iptables-legacy-save`` shows them)::

    filter  FORWARD          -> -j COVE-FORWARD (inserted first, once)
            COVE-FORWARD     -j COVE-USER
                             -i <bridge> -j COVE-F-<id12>     one pair per network
                             -o <bridge> -j COVE-T-<id12>
            COVE-USER        the admin's hook; created once, never written by cove
            COVE-ISOLATION   -o <bridge> -j DROP              one per network
            COVE-F-<id12>    -o <bridge> ACCEPT; -j COVE-ISOLATION; [internal: DROP]; ACCEPT
            COVE-T-<id12>    [internal: DROP]; ESTABLISHED,RELATED ACCEPT; DNAT ACCEPT; DROP
    nat     POSTROUTING      -> -j COVE-POSTROUTING (inserted first, once)
            COVE-POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE        egress
                             -s <subnet> -o <bridge> --ctstate DNAT -j MASQUERADE   hairpin
                             -s 127.0.0.0/8 -o <bridge> -j MASQUERADE      host's 127.0.0.1 -> container
            PREROUTING       -> ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j COVE-DNAT
            OUTPUT           -> -m addrtype --dst-type LOCAL -j COVE-DNAT
            COVE-DNAT        [-d <host ip>] -p <proto> --dport <port> -j DNAT --to <container ip>:<port>
    raw     PREROUTING       -> -j COVE-RAW
            COVE-RAW         -i <bridge> -d 127.0.0.0/8 -j DROP

Every change rewrites cove's chains (never COVE-USER) in one
``iptables-legacy-restore --noflush`` call, which the kernel applies per table
atomically.  The cost grows with the number of networks; nftables is the
backend for scale, this one is for kernels that have nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Sequence

from ..errors import CoveError
from ..portmap import PortMapping
from .base import NetworkRules

PREFIX = "COVE-"


def _bin(name: str) -> str:
    return shutil.which(f"{name}-legacy" if name == "iptables" else f"iptables-legacy-{name}") or ""


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)


JUMPS = {
    "filter": ["-A FORWARD -j COVE-FORWARD"],
    "nat": ["-A POSTROUTING -j COVE-POSTROUTING",
            "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j COVE-DNAT",
            "-A OUTPUT -m addrtype --dst-type LOCAL -j COVE-DNAT"],
    "raw": ["-A PREROUTING -j COVE-RAW"],
}


def render(nets: Sequence[NetworkRules], existing: set[str], have_jumps: dict[str, bool],
           ports: Sequence[PortMapping] = ()) -> str:
    """The ``iptables-restore --noflush`` text that makes cove's chains hold exactly ``nets``.

    ``existing`` is the set of COVE-* chains in the kernel (per ``table:chain``);
    stale per-network chains among them are flushed and deleted.
    """
    f: list[str] = ["*filter"]
    want = {"COVE-FORWARD", "COVE-ISOLATION"} | {f"COVE-{d}-{n.short}" for n in nets for d in "FT"}
    for chain in sorted(want):
        f.append(f":{chain} - [0:0]")
    if "filter:COVE-USER" not in existing:
        f.append(":COVE-USER - [0:0]")
    stale = sorted(c.split(":", 1)[1] for c in existing if c.startswith("filter:")
                   and c.split(":", 1)[1] not in want | {"COVE-USER"})
    for chain in stale:
        f.append(f":{chain} - [0:0]")
    f.append("-A COVE-FORWARD -j COVE-USER")
    for n in nets:
        tag = f'-m comment --comment "cove:{n.id}"'
        fc, tc = f"COVE-F-{n.short}", f"COVE-T-{n.short}"
        f += [f"-A COVE-FORWARD -i {n.bridge} {tag} -j {fc}", f"-A COVE-FORWARD -o {n.bridge} {tag} -j {tc}",
              f"-A COVE-ISOLATION -o {n.bridge} {tag} -j DROP",
              f"-A {fc} -o {n.bridge} -j ACCEPT", f"-A {fc} -m conntrack --ctstate DNAT -j ACCEPT",
              f"-A {fc} -j COVE-ISOLATION"]
        if n.internal:
            f += [f"-A {fc} -j DROP", f"-A {tc} -j DROP"]
        else:
            f += [f"-A {fc} -j ACCEPT",
                  f"-A {tc} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                  f"-A {tc} -m conntrack --ctstate DNAT -j ACCEPT",
                  f"-A {tc} -j DROP"]
    for chain in stale:
        f.append(f"-X {chain}")
    f += _jumps("filter", have_jumps)
    f.append("COMMIT")
    nat = ["*nat", ":COVE-POSTROUTING - [0:0]", ":COVE-DNAT - [0:0]"]
    raw = ["*raw", ":COVE-RAW - [0:0]"]
    for n in nets:
        tag = f'-m comment --comment "cove:{n.id}"'
        raw.append(f"-A COVE-RAW -i {n.bridge} -d 127.0.0.0/8 {tag} -j DROP")
        if n.internal:
            continue
        nat.append(f"-A COVE-POSTROUTING -s 127.0.0.0/8 -o {n.bridge} {tag} -j MASQUERADE")
        for subnet in n.subnets:
            if n.masquerade:
                nat.append(f"-A COVE-POSTROUTING -s {subnet} ! -o {n.bridge} {tag} -j MASQUERADE")
            nat.append(f"-A COVE-POSTROUTING -s {subnet} -o {n.bridge} -m conntrack --ctstate DNAT {tag} -j MASQUERADE")
    for m in ports:
        dest = "" if m.host_ip == "0.0.0.0" else f"-d {m.host_ip}/32 "
        nat.append(f"-A COVE-DNAT {dest}-p {m.proto} -m {m.proto} --dport {m.host_port} "
                   f"-j DNAT --to-destination {m.container_ip}:{m.container_port}")
    nat += _jumps("nat", have_jumps)
    raw += _jumps("raw", have_jumps)
    return "\n".join(f + nat + ["COMMIT"] + raw + ["COMMIT"]) + "\n"


def _jumps(table: str, have: dict[str, bool]) -> list[str]:
    """Insert cove's jumps at the top of the built-in chains where they are missing."""
    out = []
    for rule in JUMPS[table]:
        if not have.get(rule):
            _, chain, rest = rule.split(" ", 2)
            out.append(f"-I {chain} 1 {rest}")
    return out


class IptablesFirewall:
    name = "iptables"

    def __init__(self) -> None:
        self._iptables = _bin("iptables")
        self._save, self._restore = _bin("save"), _bin("restore")
        self._nets: dict[str, NetworkRules] = {}
        self._ports: set[PortMapping] = set()
        self._lock = threading.Lock()

    def _state(self) -> tuple[set[str], dict[str, bool]]:
        """(``table:chain`` of every COVE-* chain, which of cove's jump rules exist)."""
        chains: set[str] = set()
        jumps: dict[str, bool] = {}
        wanted = {rule for rules in JUMPS.values() for rule in rules}
        for table in JUMPS:
            r = _run([self._save, "-t", table])
            if r.returncode != 0:
                raise CoveError(f"iptables-legacy-save -t {table}: {r.stderr.strip()}")
            for line in r.stdout.splitlines():
                if line.startswith(f":{PREFIX}"):
                    chains.add(f"{table}:{line[1:].split()[0]}")
                elif line in wanted:
                    jumps[line] = True
        return chains, jumps

    def _apply(self) -> None:
        existing, jumps = self._state()
        text = render(list(self._nets.values()), existing, jumps, sorted(self._ports, key=repr))
        r = _run([self._restore, "-w", "--noflush"], text)
        if r.returncode != 0:
            raise CoveError(f"iptables-legacy-restore: {r.stderr.strip()}")

    def setup(self) -> None:
        with self._lock:
            self._apply()

    def ensure_network(self, net: NetworkRules) -> None:
        with self._lock:
            old = self._nets.get(net.id)
            self._nets[net.id] = net
            try:
                self._apply()
            except CoveError:
                if old is None:
                    del self._nets[net.id]
                else:
                    self._nets[net.id] = old
                raise

    def remove_network(self, net_id: str) -> None:
        with self._lock:
            old = self._nets.pop(net_id, None)
            try:
                self._apply()
            except CoveError:
                if old is not None:
                    self._nets[net_id] = old
                raise

    def add_ports(self, ports: Sequence[PortMapping]) -> None:
        with self._lock:
            new = set(ports) - self._ports
            self._ports |= new
            try:
                self._apply()
            except CoveError:
                self._ports -= new
                raise

    def remove_ports(self, ports: Sequence[PortMapping]) -> None:
        with self._lock:
            gone = set(ports) & self._ports
            self._ports -= gone
            try:
                self._apply()
            except CoveError:
                self._ports |= gone
                raise

    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None:
        with self._lock:
            self._nets = {n.id: n for n in nets}
            self._ports = set(ports)
            self._apply()

    def teardown(self) -> None:
        with self._lock:
            self._nets, self._ports = {}, set()
            existing, jumps = self._state()
            lines = []
            for table, rules in JUMPS.items():
                chains = sorted(c.split(":", 1)[1] for c in existing if c.startswith(table + ":"))
                lines.append(f"*{table}")
                lines += [f":{c} - [0:0]" for c in chains]
                lines += ["-D" + rule[2:] for rule in rules if jumps.get(rule)]
                lines += [f"-X {c}" for c in chains]
                lines.append("COMMIT")
            r = _run([self._restore, "-w", "--noflush"], "\n".join(lines) + "\n")
            if r.returncode != 0:
                raise CoveError(f"iptables-legacy-restore: {r.stderr.strip()}")

    def intact(self) -> bool:
        existing, jumps = self._state()
        return {"filter:COVE-FORWARD", "nat:COVE-POSTROUTING"} <= existing and \
            all(jumps.get(r) for rules in JUMPS.values() for r in rules)


def probe() -> bool:
    ipt = _bin("iptables")
    if not (ipt and _bin("save") and _bin("restore")):
        return False
    return all(_run([ipt, "-w", "-t", t, "-L", "-n"]).returncode == 0 for t in JUMPS)
