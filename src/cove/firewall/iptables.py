"""The iptables-legacy backend, for kernels without nftables (User-Mode Linux in CI).

Chains (``iptables-legacy-save`` shows them)::

    filter  FORWARD          -> -j COVE-FORWARD (inserted first, once)
            COVE-FORWARD     -j COVE-USER                       always the first rule
                             -i <internal bridge> -j COVE-F-<id12>   next: before any -o jump
                             -i <bridge> -j COVE-F-<id12>        one pair per network
                             -o <bridge> -j COVE-T-<id12>
            COVE-USER        the admin's hook (Docker's DOCKER-USER): created empty, never
                             written by cove; rules there filter traffic into containers first
            COVE-ISOLATION   -o <bridge> -j DROP                 one per network
            COVE-F-<id12>    -o <bridge> ACCEPT; [not internal: DNAT ACCEPT]; -j COVE-ISOLATION;
                             [internal: DROP]; ACCEPT
            COVE-T-<id12>    [internal: DROP]; ESTABLISHED,RELATED ACCEPT; DNAT ACCEPT; DROP
    nat     POSTROUTING      -> -j COVE-POSTROUTING (inserted first, once)
            COVE-POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE                egress
                             -s <subnet> -o <bridge> --ctstate DNAT -j MASQUERADE   hairpin
                             -s 127.0.0.0/8 -o <bridge> -j MASQUERADE      host's 127.0.0.1 -> container
            PREROUTING       -> ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j COVE-DNAT
            OUTPUT           -> -m addrtype --dst-type LOCAL -j COVE-DNAT
            COVE-DNAT        [-d <host ip>] -p <proto> --dport <port> -j DNAT --to <container ip>:<port>
    raw     PREROUTING       -> -j COVE-RAW
            COVE-RAW         -i <bridge> -d 127.0.0.0/8 -j DROP

Forward policy: with ``forward_drop`` the ``FORWARD`` chain's policy is ``DROP``
(what touches no cove bridge returns from COVE-FORWARD and meets it; an admin's
ACCEPT in ``FORWARD`` or ``COVE-USER`` still wins), and COVE-FORWARD ends with
``-m physdev --physdev-is-bridged -j ACCEPT``: frames another bridge switches
between its own ports meet FORWARD when br_netfilter is loaded, and are not
routed traffic.  When cove itself changed it
from ``ACCEPT``, it also creates the empty chain ``COVE-FWD-DROP`` as a note, and
only then sets ``ACCEPT`` back (no longer wanted, or at teardown).  Bridge names
are checked (:func:`~cove.firewall.base.ifname_problem`): ``+`` would be a
wildcard matching every interface.

IPv6 (``ip6tables-legacy``): the same chains with the same rules for every
network (isolation and ``--internal`` hold for IPv6 too); ``--ipv6`` networks add
their IPv6 subnets to COVE-POSTROUTING (egress masquerade for unique local
subnets only, hairpin for all), IPv6 published ports go to COVE-DNAT, and the
jumps use ``::1/128`` where IPv4 uses 127.0.0.0/8 (there is no IPv6 rule for
the host's loopback: ``[::1]`` cannot be published).

Every rule cove puts in a shared chain carries a comment naming its owner
(``cove:<network id>`` or ``cove-port:<proto>/<host ip>/<host port>``), so a
change finds exactly the lines it replaces in ``iptables-legacy-save`` and no
in-process memory is needed: a new daemon (or a second ``IptablesFirewall``)
adding a network never disturbs the others.

A change (one network, some ports) is one ``iptables-legacy-restore -w
--noflush`` call holding only that change: its own chains re-declared, its old
tagged lines deleted (``-D``), its new lines appended; the kernel applies each
table atomically.  :meth:`IptablesFirewall.sync` rewrites every cove chain but
``COVE-USER``.  Legacy iptables replaces a whole table per commit, so each
change still costs the kernel time in proportion to the table's size; nftables
is the backend for scale, this one is for kernels that have nothing else.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import CoveError, InvalidArgument
from ..portmap import PortMapping
from .base import NetworkRules, ifname_problem

PREFIX = "COVE-"
#: an empty chain that records "cove set FORWARD's policy to DROP" (so cove may set it back)
POLICY_NOTE = "COVE-FWD-DROP"
#: with the DROP policy: frames another bridge switches between its own ports (they meet FORWARD
#: when br_netfilter is loaded) are not routed traffic and pass, as before
BRIDGED = '-A COVE-FORWARD -m physdev --physdev-is-bridged -m comment --comment "cove:bridged" -j ACCEPT'
TABLES = ("filter", "nat", "raw")
BASE_CHAINS = {"filter": ("COVE-FORWARD", "COVE-ISOLATION", "COVE-USER"),
               "nat": ("COVE-POSTROUTING", "COVE-DNAT"), "raw": ("COVE-RAW",)}
USER_JUMP = "-A COVE-FORWARD -j COVE-USER"
#: cove's jumps from the built-in chains, as ``iptables-save`` prints them
JUMPS = {
    "filter": ["-A FORWARD -j COVE-FORWARD"],
    "nat": ["-A POSTROUTING -j COVE-POSTROUTING",
            "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j COVE-DNAT",
            "-A OUTPUT -m addrtype --dst-type LOCAL -j COVE-DNAT"],
    "raw": ["-A PREROUTING -j COVE-RAW"],
}
JUMPS6 = {
    "filter": JUMPS["filter"],
    "nat": ["-A POSTROUTING -j COVE-POSTROUTING",
            "-A PREROUTING ! -d ::1/128 -m addrtype --dst-type LOCAL -j COVE-DNAT",
            "-A OUTPUT -m addrtype --dst-type LOCAL -j COVE-DNAT"],
    "raw": JUMPS["raw"],
}


def _jump_rules(v6: bool) -> dict[str, list[str]]:
    return JUMPS6 if v6 else JUMPS


@dataclass
class Saved:
    """What ``iptables-legacy-save`` shows of the three tables cove writes."""

    chains: dict[str, set[str]] = field(default_factory=lambda: {t: set() for t in TABLES})   # COVE-* only
    rules: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TABLES})     # every -A line
    policies: dict[str, str] = field(default_factory=dict)      # filter's built-in chain -> ACCEPT/DROP

    @classmethod
    def parse(cls, table: str, text: str, into: Saved | None = None) -> Saved:
        s = into or cls()
        for line in text.splitlines():
            if line.startswith(f":{PREFIX}"):
                s.chains[table].add(line[1:].split()[0])
            elif line.startswith(":") and table == "filter":
                chain, _, rest = line[1:].partition(" ")
                s.policies[chain] = rest.split(" ", 1)[0]
            elif line.startswith("-A "):
                s.rules[table].append(line)
        return s

    @classmethod
    def parse_all(cls, text: str) -> Saved:
        """What one ``iptables-legacy-save`` of every loaded table shows; a table it does not list
        (not loaded in this namespace) has no rules, so it is left empty."""
        s = cls()
        table: str | None = None
        lines: list[str] = []
        for line in [*text.splitlines(), "*"]:
            if line.startswith("*"):
                if table in TABLES:
                    cls.parse(table, "\n".join(lines), s)
                table, lines = line[1:].strip(), []
            else:
                lines.append(line)
        return s


def own_chains(short: str) -> tuple[str, str]:
    """The filter chains one network owns whole."""
    return f"COVE-F-{short}", f"COVE-T-{short}"


def network_tag(net_id: str) -> str:
    return f"cove:{net_id}"


def port_tag(m: PortMapping) -> str:
    return f"cove-port:{m.proto}/{m.host_ip}/{m.host_port}"


def _comment(tag: str) -> str:
    return f'-m comment --comment "{tag}"'


_COMMENT = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')


def comment_of(line: str) -> str | None:
    """The ``--comment`` of a saved rule line, if any (``iptables-save`` quotes it)."""
    m = _COMMENT.search(line)
    if m is None:
        return None
    return m.group(2) if m.group(1) is None else re.sub(r"\\(.)", r"\1", m.group(1))


def network_lines(net: NetworkRules, v6: bool = False) -> dict[str, list[str]]:
    """Every rule one network adds, per table (``v6``: for ip6tables): tagged lines in shared
    chains, then its own chains."""
    problem = ifname_problem(net.bridge, "iptables")
    if problem:
        raise InvalidArgument(f"invalid bridge name {net.bridge!r}: {problem}")
    tag = _comment(network_tag(net.id))
    fc, tc = own_chains(net.short)
    filt = [f"-A COVE-FORWARD -i {net.bridge} {tag} -j {fc}",
            f"-A COVE-FORWARD -o {net.bridge} {tag} -j {tc}",
            f"-A COVE-ISOLATION -o {net.bridge} {tag} -j DROP",
            f"-A {fc} -o {net.bridge} -j ACCEPT"]
    if not net.internal:        # a published port, via the host (never out of an internal network)
        filt.append(f"-A {fc} -m conntrack --ctstate DNAT -j ACCEPT")
    filt.append(f"-A {fc} -j COVE-ISOLATION")
    if net.internal:
        filt += [f"-A {fc} -j DROP", f"-A {tc} -j DROP"]
    else:
        filt += [f"-A {fc} -j ACCEPT",
                 f"-A {tc} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                 f"-A {tc} -m conntrack --ctstate DNAT -j ACCEPT",
                 f"-A {tc} -j DROP"]
    nat: list[str] = []
    if v6:
        if not net.internal:
            for subnet in net.subnets6:
                if subnet in net.masq6:
                    nat.append(f"-A COVE-POSTROUTING -s {subnet} ! -o {net.bridge} {tag} -j MASQUERADE")
                nat.append(f"-A COVE-POSTROUTING -s {subnet} -o {net.bridge} -m conntrack --ctstate DNAT {tag} "
                           "-j MASQUERADE")
        return {"filter": filt, "nat": nat, "raw": [f"-A COVE-RAW -i {net.bridge} -d ::1/128 {tag} -j DROP"]}
    if not net.internal:
        nat.append(f"-A COVE-POSTROUTING -s 127.0.0.0/8 -o {net.bridge} {tag} -j MASQUERADE")
        for subnet in net.subnets:
            if net.masquerade:
                nat.append(f"-A COVE-POSTROUTING -s {subnet} ! -o {net.bridge} {tag} -j MASQUERADE")
            nat.append(f"-A COVE-POSTROUTING -s {subnet} -o {net.bridge} -m conntrack --ctstate DNAT {tag} "
                       "-j MASQUERADE")
    raw = [f"-A COVE-RAW -i {net.bridge} -d 127.0.0.0/8 {tag} -j DROP"]
    return {"filter": filt, "nat": nat, "raw": raw}


def is_v6(m: PortMapping) -> bool:
    return ":" in m.host_ip


def port_line(m: PortMapping) -> str:
    if is_v6(m):
        dest = "" if m.host_ip == "::" else f"-d {m.host_ip}/128 "
        to = f"[{m.container_ip}]:{m.container_port}"
    else:
        dest = "" if m.host_ip == "0.0.0.0" else f"-d {m.host_ip}/32 "
        to = f"{m.container_ip}:{m.container_port}"
    return (f"-A COVE-DNAT {dest}-p {m.proto} -m {m.proto} --dport {m.host_port} {_comment(port_tag(m))} "
            f"-j DNAT --to-destination {to}")


def _sealing(net: NetworkRules, line: str) -> bool:
    """An internal network's jump for what leaves its bridge: it must come before every other
    network's ``-o`` jump, whose chain accepts DNAT'ed packets (a published port)."""
    return net.internal and line.startswith(f"-A COVE-FORWARD -i {net.bridge} ")


def _placed(net: NetworkRules, line: str) -> str:
    """``line`` as written by a change: an internal network's sealing jump is inserted right after
    the COVE-USER jump, the rest appended."""
    return "-I COVE-FORWARD 2 " + line.removeprefix("-A COVE-FORWARD ") if _sealing(net, line) else line


def _jumps(table: str, saved: Saved, v6: bool = False) -> list[str]:
    """Insert cove's jumps at the top of the built-in chains where they are missing."""
    out = []
    for rule in _jump_rules(v6)[table]:
        if rule not in saved.rules[table]:
            _, chain, rest = rule.split(" ", 2)
            out.append(f"-I {chain} 1 {rest}")
    return out


def _policy(saved: Saved, drop: bool) -> tuple[list[str], list[str]]:
    """(declarations, deletions) that give filter's FORWARD the policy cove wants: DROP when
    ``drop``; else ACCEPT again, but only if cove's note says cove was the one that set DROP."""
    noted = POLICY_NOTE in saved.chains["filter"]
    if drop and saved.policies.get("FORWARD", "ACCEPT") != "DROP":
        return [":FORWARD DROP [0:0]", _decl(POLICY_NOTE)], []
    if not drop and noted:
        return [":FORWARD ACCEPT [0:0]"], [f"-X {POLICY_NOTE}"]
    return [], []


def _decl(chain: str) -> str:
    """Declaring a chain in ``--noflush`` mode creates it, or empties it if it exists."""
    return f":{chain} - [0:0]"


def change_text(saved: Saved, add: Sequence[NetworkRules] = (), remove: Iterable[str] = (),
                add_ports: Sequence[PortMapping] = (), remove_ports: Sequence[PortMapping] = (),
                v6: bool = False, forward_drop: bool | None = None) -> str:
    """The ``iptables-restore --noflush`` text of one change, given the kernel's current ``saved`` state
    (``v6``: ``ip6tables-restore``'s, with the IPv6 ports only).

    Adds (or replaces) the networks ``add``, removes the networks with ids in
    ``remove``, publishes ``add_ports`` and withdraws ``remove_ports``; creates
    cove's base chains and jumps where missing; with ``forward_drop`` not None,
    sets FORWARD's policy (see :func:`_policy`).  Touches no other line.
    """
    add_ports = [m for m in add_ports if is_v6(m) == v6]
    remove_ports = [m for m in remove_ports if is_v6(m) == v6]
    replaced = {n.id for n in add}
    dropped = set(remove) - replaced
    tags = {network_tag(i) for i in replaced | dropped}
    gone_ports = {port_tag(m) for m in remove_ports} | {port_tag(m) for m in add_ports}
    out: list[str] = []
    for table in TABLES:
        have = saved.chains[table]
        decl = [c for c in BASE_CHAINS[table] if c not in have]
        dels: list[str] = []
        if table == "filter":
            decl += [c for n in add for c in own_chains(n.short)]
            stale = [c for i in dropped for c in own_chains(i[:12]) if c in have]
            decl += stale
        for line in saved.rules[table]:
            tag = comment_of(line)
            if tag in tags or (tag in gone_ports and line.startswith("-A COVE-DNAT ")):
                dels.append("-D" + line[2:])
        adds = [_placed(n, line) for n in add for line in network_lines(n, v6)[table]]
        if table == "nat":
            adds += [port_line(m) for m in add_ports]
        pol, unnote = _policy(saved, forward_drop) if table == "filter" and forward_drop is not None else ([], [])
        out.append(f"*{table}")
        out += pol + [_decl(c) for c in decl]
        if table == "filter" and USER_JUMP not in saved.rules["filter"]:
            out.append("-I COVE-FORWARD 1 -j COVE-USER")
        have_bridged = table == "filter" and BRIDGED in saved.rules["filter"]
        # COVE-FORWARD's physdev ACCEPT stays its last rule (as sync_text writes it), so the chain's
        # order is the same whether it was built rule by rule or rewritten after a restart
        moved = have_bridged and any(line.startswith("-A COVE-FORWARD ") for line in adds)
        out += dels + (["-D" + BRIDGED[2:]] if moved else []) + adds + ([BRIDGED] if moved else [])
        if table == "filter" and forward_drop is not None:
            if forward_drop and not have_bridged:
                out.append(BRIDGED)
            elif not forward_drop and have_bridged:
                out.append("-D" + BRIDGED[2:])
        if table == "filter":
            out += [f"-X {c}" for c in stale] + unnote
        out += _jumps(table, saved, v6)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def sync_text(saved: Saved, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = (),
              v6: bool = False, forward_drop: bool = False) -> str:
    """The ``iptables-restore --noflush`` text that makes cove's chains hold exactly ``nets`` and ``ports``.

    Every COVE-* chain is re-declared (emptied) and refilled, except ``COVE-USER``
    (the admin's), which is only created if missing; COVE-* chains cove no longer
    wants are deleted.
    """
    out: list[str] = []
    for table in TABLES:
        want = set(BASE_CHAINS[table])
        if table == "filter":
            want |= {c for n in nets for c in own_chains(n.short)}
        stale = sorted(saved.chains[table] - want - {"COVE-USER", POLICY_NOTE})
        pol, unnote = _policy(saved, forward_drop) if table == "filter" else ([], [])
        out.append(f"*{table}")
        out += pol
        out += [_decl(c) for c in sorted(want) if c != "COVE-USER" or c not in saved.chains[table]]
        out += [_decl(c) for c in stale]
        lines = [line for n in nets for line in network_lines(n, v6)[table]]
        if table == "filter":
            out.append(USER_JUMP)
            first = {line for n in nets if n.internal for line in network_lines(n, v6)[table] if _sealing(n, line)}
            lines = [ln for ln in lines if ln in first] + [ln for ln in lines if ln not in first]
            lines += [BRIDGED] if forward_drop else []
        out += lines
        if table == "nat":
            out += [port_line(m) for m in ports if is_v6(m) == v6]
        out += [f"-X {c}" for c in stale] + unnote
        out += _jumps(table, saved, v6)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def teardown_text(saved: Saved, v6: bool = False) -> str:
    """Remove cove's jumps and every COVE-* chain, ``COVE-USER`` included (and FORWARD's DROP
    policy, if cove set it)."""
    out: list[str] = []
    for table in TABLES:
        chains = sorted(saved.chains[table])
        out.append(f"*{table}")
        if table == "filter":
            out += _policy(saved, False)[0]
        out += [_decl(c) for c in chains]
        out += ["-D" + rule[2:] for rule in _jump_rules(v6)[table] if rule in saved.rules[table]]
        out += [f"-X {c}" for c in chains]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def _legacy(tool: str) -> tuple[str, str, str] | None:
    """(TOOL, TOOL-save, TOOL-restore) of the legacy flavour: ``TOOL-legacy*``, or plain ``TOOL*``
    when ``TOOL --version`` says legacy; None if neither."""
    legacy = (shutil.which(f"{tool}-legacy"), shutil.which(f"{tool}-legacy-save"),
              shutil.which(f"{tool}-legacy-restore"))
    if all(legacy):
        return legacy  # type: ignore[return-value]
    plain = shutil.which(tool), shutil.which(f"{tool}-save"), shutil.which(f"{tool}-restore")
    if all(plain):
        try:
            version = _run([plain[0], "--version"]).stdout  # type: ignore[list-item]
        except (OSError, subprocess.TimeoutExpired):
            return None
        if "legacy" in version:
            return plain  # type: ignore[return-value]
    return None


@functools.cache
def binaries() -> tuple[str, str, str] | None:
    """(iptables, save, restore) of the legacy flavour; None if absent."""
    return _legacy("iptables")


@functools.cache
def binaries6() -> tuple[str, str, str] | None:
    """(ip6tables, save, restore) of the legacy flavour; None if absent."""
    return _legacy("ip6tables")


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)


class IptablesFirewall:
    """iptables-legacy for IPv4 and, where ``ip6tables-legacy`` exists and the kernel has
    ip6tables, the same chains for IPv6; each change is one restore call per family."""

    name = "iptables"

    def __init__(self) -> None:
        found = binaries()
        if found is None:
            raise CoveError("iptables-legacy is not installed")
        _, save, restore = found
        #: (save, restore, v6) per family
        self._families: list[tuple[str, str, bool]] = [(save, restore, False)]
        found6 = binaries6()
        if found6 is not None and probe6():
            self._families.append((found6[1], found6[2], True))
        self._lock = threading.Lock()
        #: families whose forwarded traffic of no cove bridge is dropped (set before setup/sync)
        self.forward_drop: frozenset[str] = frozenset()

    def _drop(self, v6: bool) -> bool:
        return ("ipv6" if v6 else "ipv4") in self.forward_drop

    @staticmethod
    def _tool(save: str, v6: bool) -> str:
        return "ip6tables-legacy" if v6 else "iptables-legacy"

    def _state(self, save: str = "", v6: bool = False) -> Saved:
        """The three tables read by one ``-save`` call of every loaded table, as a change starts.

        Per table it was three processes per family, six of a change's eight (a network create or
        rm took 38 ms here, sandbox, 2026-12-06).  If that call fails (no table loaded at all:
        no ``/proc/net/ip_tables_names``), each table is read on its own as before.
        """
        save = save or self._families[0][0]
        r = _run([save])
        if r.returncode == 0:
            return Saved.parse_all(r.stdout)
        saved = Saved()
        for table in TABLES:
            r = _run([save, "-t", table])
            if r.returncode != 0:
                raise CoveError(f"{self._tool(save, v6)}-save -t {table}: {r.stderr.strip() or 'failed'}")
            Saved.parse(table, r.stdout, saved)
        return saved

    def _restore_text(self, text: str, what: str, restore: str = "", v6: bool = False) -> None:
        r = _run([restore or self._families[0][1], "-w", "--noflush"], text)
        if r.returncode != 0:
            raise CoveError(f"{self._tool(restore, v6)}-restore ({what}): {r.stderr.strip() or 'failed'}")

    def _change(self, what: str, add: Sequence[NetworkRules] = (), remove: Sequence[str] = (),
                add_ports: Sequence[PortMapping] = (), remove_ports: Sequence[PortMapping] = (),
                policy: bool = False) -> None:
        """One change, in both families at once: IPv6's save and restore run on a helper thread while
        IPv4's run here (separate kernel tables, separate processes; 2 cores here took a network's
        rules from 8.6 to ~5 ms, sandbox, 2026-12-06).  A failure in either is raised after both
        ended, as before when they ran in turn: the caller's undo removes what the other wrote."""
        def one(save: str, restore: str, v6: bool) -> None:
            text = change_text(self._state(save, v6), add, remove, add_ports, remove_ports, v6,
                               self._drop(v6) if policy else None)
            if any(line not in ("COMMIT",) and not line.startswith("*") for line in text.splitlines()):
                self._restore_text(text, what, restore, v6)

        with self._lock:
            first, *rest = self._families
            failed: list[BaseException] = []

            def other(family: tuple[str, str, bool]) -> None:
                try:
                    one(*family)
                except BaseException as exc:  # noqa: BLE001 - raised below, on the caller's thread
                    failed.append(exc)

            helpers = [threading.Thread(target=other, args=(f,), name="cove-ip6tables") for f in rest]
            for t in helpers:
                t.start()
            try:
                one(*first)
            finally:
                for t in helpers:
                    t.join()
            if failed:
                raise failed[0]

    # the Firewall protocol ------------------------------------------------------------
    def setup(self) -> None:
        """Create the base chains, the COVE-USER jump and the built-in jumps where missing;
        give FORWARD the policy :attr:`forward_drop` asks for."""
        self._change("set up cove's chains", policy=True)

    def ensure_network(self, net: NetworkRules) -> None:
        self._change(f"add network {net.short}", add=[net])

    def remove_network(self, net_id: str) -> None:
        self._change(f"remove network {net_id[:12]}", remove=[net_id])

    def add_ports(self, ports: Sequence[PortMapping]) -> None:
        if ports:
            if any(is_v6(m) for m in ports) and len(self._families) < 2:
                raise CoveError("publishing on an IPv6 host address needs ip6tables-legacy (not installed here)")
            self._change("publish ports", add_ports=list(ports))

    def remove_ports(self, ports: Sequence[PortMapping]) -> None:
        if ports:
            self._change("unpublish ports", remove_ports=list(ports))

    def sync(self, nets: Sequence[NetworkRules], ports: Sequence[PortMapping] = ()) -> None:
        with self._lock:
            for save, restore, v6 in self._families:
                self._restore_text(sync_text(self._state(save, v6), nets, ports, v6, self._drop(v6)),
                                   "sync networks", restore, v6)

    def teardown(self) -> None:
        with self._lock:
            for save, restore, v6 in self._families:
                saved = self._state(save, v6)
                jumps = _jump_rules(v6)
                if any(saved.chains.values()) or any(r in saved.rules[t] for t in TABLES for r in jumps[t]):
                    self._restore_text(teardown_text(saved, v6), "remove cove's chains", restore, v6)

    def intact(self) -> bool:
        """False when cove's base chains, their jumps or COVE-FORWARD's first rule are gone (a flush),
        in the IPv4 or the IPv6 tables."""
        for save, _, v6 in self._families:
            try:
                saved = self._state(save, v6)
            except CoveError:
                return False
            jumps = _jump_rules(v6)
            if not (all(c in saved.chains[t] for t in TABLES for c in BASE_CHAINS[t]) and
                    all(r in saved.rules[t] for t in TABLES for r in jumps[t]) and USER_JUMP in saved.rules["filter"]):
                return False
        return True


@functools.cache
def probe6() -> bool:
    """Can ip6tables-legacy list the filter, nat and raw tables here?"""
    found = binaries6()
    if found is None:
        return False
    try:
        return all(_run([found[0], "-w", "-t", t, "-L", "-n"]).returncode == 0 for t in TABLES)
    except (OSError, subprocess.TimeoutExpired):
        return False


def probe() -> bool:
    found = binaries()
    if found is None:
        return False
    try:
        return all(_run([found[0], "-w", "-t", t, "-L", "-n"]).returncode == 0 for t in TABLES)
    except (OSError, subprocess.TimeoutExpired):
        return False
