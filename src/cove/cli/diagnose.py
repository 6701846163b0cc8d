"""``cove diagnose A B``: can A reach B, and if not, what is the first thing in the way.

The verdict comes from what cove itself decided when it built the network (the daemon's
records, read through the API: which networks each side is on, ``--internal``, ``enable_icc``,
masquerade, macvlan/ipvlan parents, published ports and the names registered on each network)
and names one reason in one sentence, with the evidence a user can check by hand.  Then a real
probe runs from A's network namespace (``nsenter --net``): a ping, a TCP connect or a DNS query
to 127.0.0.11; when the probe disagrees with the verdict, the output says so and lists what cove
does not decide itself: the admin's rules in the ``user`` chain (``COVE-USER`` with iptables).

Ends: a container (name or id), ``host`` (this machine's own namespace), an IPv4 address that is
no container's (an outside address, as destination only), or ``outside`` as the source with
``--port`` (another machine reaching a published port; probed from this host through the host's
own address, the closest this host can come to it).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from cove.cli.main import client


@dataclass
class End:
    """One side of the question: a container (with its inspect), the host, or an address."""
    kind: str                         # container | host | address | outside
    label: str
    info: dict[str, Any] = field(default_factory=dict)
    address: str = ""

    @property
    def running(self) -> bool:
        return bool((self.info.get("State") or {}).get("Running"))

    @property
    def mode(self) -> str:
        return str((self.info.get("HostConfig") or {}).get("NetworkMode") or "")

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Network id -> endpoint settings (only those with an address)."""
        nets = (self.info.get("NetworkSettings") or {}).get("Networks") or {}
        return {ep["NetworkID"]: {**ep, "Name": name} for name, ep in nets.items() if ep.get("IPAddress")}


@dataclass
class Verdict:
    reachable: bool
    reason: str
    evidence: list[str] = field(default_factory=list)
    probe: list[str] = field(default_factory=list)   # argv of the probe, run in the source's namespace
    netns: str = ""                                  # the source's namespace path ("" = the host's)
    probe_ok: bool | None = None
    agrees: bool | None = None
    note: str = ""


def _port(spec: str | None) -> tuple[int, str] | None:
    if spec is None:
        return None
    num, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if not num.isdigit() or not 0 < int(num) < 65536 or proto not in ("tcp", "udp"):
        raise click.BadParameter(f"{spec!r}: give PORT[/tcp|udp], PORT from 1 to 65535", param_hint="'--port'")
    return int(num), proto


def _net_desc(net: dict[str, Any]) -> str:
    return f"{net['Name']} ({net['Driver']})"


def _probe_ping(ip: str) -> list[str]:
    return ["busybox", "ping", "-c", "1", "-W", "1", ip]


def describe_probe(argv: list[str]) -> str:
    """What a probe does, in words (the argv holds a Python one-liner for TCP and DNS)."""
    if not argv:
        return ""
    if argv[0] == "busybox":
        return f"ping {argv[-1]}"
    if "create_connection" in argv[-3]:
        return f"TCP connect to {argv[-2]}:{argv[-1]}"
    return f"DNS query for {argv[-1]} to 127.0.0.11"


def _probe_tcp(ip: str, port: int) -> list[str]:
    code = ("import socket,sys\ntry: socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()\n"
            "except ConnectionRefusedError: sys.exit(2)\nexcept OSError: sys.exit(1)")
    return [sys.executable, "-I", "-c", code, ip, str(port)]


def _probe_dns(name: str) -> list[str]:
    code = ("import socket,sys; from dnslib import DNSRecord; q=DNSRecord.question(sys.argv[1]);"
            "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2);"
            "s.sendto(q.pack(), ('127.0.0.11', 53)); r=DNSRecord.parse(s.recv(4096));"
            "ips=[str(a.rdata) for a in r.rr if a.rtype == 1]; print(' '.join(ips)); sys.exit(0 if ips else 1)")
    return [sys.executable, "-c", code, name]


def analyse(src: End, dst: End, nets: dict[str, dict[str, Any]], port: tuple[int, str] | None = None,
            by_name: bool = False) -> Verdict:
    """The verdict from the daemon's records alone (a pure function of the inspect answers)."""
    if src.kind == "container" and not src.running:
        return Verdict(False, f"{src.label} is not running", [f"State.Status = {src.info['State']['Status']}"])
    if dst.kind == "container" and not dst.running:
        return Verdict(False, f"{dst.label} is not running", [f"State.Status = {dst.info['State']['Status']}"])
    if src.kind == "container" and src.mode == "none":
        return Verdict(False, f"{src.label} runs with --network none: it has only lo", ["HostConfig.NetworkMode = none"])
    if dst.kind == "container" and dst.mode == "none":
        return Verdict(False, f"{dst.label} runs with --network none: nothing can reach it",
                       ["HostConfig.NetworkMode = none"])
    if src.kind == "outside":
        return _published(dst, port)
    if dst.kind == "address":
        return _egress(src, dst, nets)
    if dst.kind == "host":
        return _to_host(src, nets)
    if src.kind == "host":
        return _from_host(dst, nets, port)
    return _between(src, dst, nets, port, by_name)


def _between(src: End, dst: End, nets: dict[str, dict[str, Any]], port: tuple[int, str] | None,
             by_name: bool) -> Verdict:
    if "host" in (src.mode, dst.mode):
        return Verdict(True, "one side uses the host's network: it is reached as the host is",
                       [f"{e.label}: --network host" for e in (src, dst) if e.mode == "host"])
    a, b = src.endpoints(), dst.endpoints()
    shared = [n for n in a if n in b]
    evidence = [f"{src.label} is on {', '.join(_net_desc(nets[n]) for n in a) or 'no network'}",
                f"{dst.label} is on {', '.join(_net_desc(nets[n]) for n in b) or 'no network'}"]
    if not shared:
        far = next(iter(b.values()), {}).get("IPAddress", "")
        return Verdict(False, f"{src.label} and {dst.label} share no network, and cove keeps networks isolated "
                       "from each other (connect one to the other's network: cove network connect)", evidence,
                       _probe_ping(far) if far else [])
    net = nets[shared[0]]
    target = b[shared[0]]["IPAddress"]
    evidence.append(f"shared: {_net_desc(net)}; {dst.label} has {target} there")
    icc = (net.get("Cove") or {}).get("ICC", True)
    if net["Driver"] == "bridge" and icc is False:
        return Verdict(False, f"network {net['Name']} has enable_icc=false: containers on it cannot reach each "
                       "other (their bridge ports are isolated), only the gateway and the outside",
                       [*evidence, f"bridge {net['Cove']['Bridge']}: every port isolated (bridge -d link: "
                        "isolated on)"], _probe_ping(target))
    verdict = Verdict(True, f"{src.label} reaches {dst.label} at {target} on network {net['Name']}", evidence,
                      _probe_ping(target))
    if port is not None:
        verdict.reason += f", port {port[0]}/{port[1]}"
        verdict.probe = _probe_tcp(target, port[0]) if port[1] == "tcp" else []
        verdict.note = "the probe connects to the port: it fails if nothing in the container listens there"
    if by_name:
        return _names(src, dst, nets, a, b, verdict)
    return verdict


def _names(src: End, dst: End, nets: dict[str, dict[str, Any]], a: dict[str, Any], b: dict[str, Any],
           verdict: Verdict) -> Verdict:
    name = dst.label
    shared = [n for n in a if n in b]
    user_nets = [n for n in shared if nets[n]["Name"] != "bridge"]
    links = [link for ep in a.values() for link in (ep.get("Links") or [])]
    if any(link.split(":")[0].lstrip("/") == name for link in links):
        verdict.reason = f"{src.label} resolves {name} through its /etc/hosts (--link)"
        verdict.probe = []
        return verdict
    if not user_nets:
        on_default = "bridge" in {nets[n]["Name"] for n in shared}
        why = ("names do not resolve on the default bridge network (use a user-defined network, or --link)"
               if on_default else f"{name} is not on a network {src.label} is on, so its name is not there")
        return Verdict(False, f"{src.label} cannot resolve {name}: {why}", verdict.evidence, _probe_dns(name),
                       note="names are answered per network: only the networks both containers are on count")
    verdict.reason = f"{src.label} resolves {name} on network {nets[user_nets[0]]['Name']} through 127.0.0.11"
    verdict.probe = _probe_dns(name)
    return verdict


def _egress(src: End, dst: End, nets: dict[str, dict[str, Any]]) -> Verdict:
    if src.mode == "host":
        return Verdict(True, f"{src.label} uses the host's network: it goes out as the host does",
                       ["HostConfig.NetworkMode = host"], _probe_ping(dst.address))
    eps = src.endpoints()
    if not eps:
        return Verdict(False, f"{src.label} is on no network with an address", [])
    outward = [n for n in eps if not nets[n].get("Internal")]
    evidence = [f"{src.label} is on {', '.join(_net_desc(nets[n]) + (' --internal' if nets[n].get('Internal') else '') for n in eps)}"]
    if not outward:
        return Verdict(False, f"every network of {src.label} is --internal: it has no route out of the host",
                       evidence, _probe_ping(dst.address))
    net = nets[outward[0]]
    gw = eps[outward[0]].get("Gateway")
    if not gw:
        return Verdict(False, f"network {net['Name']} gives {src.label} no gateway", evidence,
                       _probe_ping(dst.address))
    evidence.append(f"default route via {gw} on {net['Name']}")
    masq = (net.get("Cove") or {}).get("Masquerade", True)
    if net["Driver"] == "bridge" and masq is False:
        return Verdict(True, f"{src.label} leaves through {gw} on {net['Name']} with its own address "
                       "(enable_ip_masquerade=false): an answer comes back only if the far side routes "
                       f"{(net['IPAM']['Config'] or [{}])[0].get('Subnet', 'the subnet')} to this host",
                       evidence, _probe_ping(dst.address))
    how = "masqueraded as the host" if net["Driver"] == "bridge" else f"straight onto the {net['Driver']} parent's LAN"
    return Verdict(True, f"{src.label} reaches {dst.address} through {gw} on {net['Name']}, {how}", evidence,
                   _probe_ping(dst.address))


def _lan_host_access(net: dict[str, Any]) -> bool:
    return str((net.get("Options") or {}).get("host_access", "")).lower() in ("true", "1", "yes")


def _to_host(src: End, nets: dict[str, dict[str, Any]]) -> Verdict:
    if src.mode == "host":
        return Verdict(True, f"{src.label} is in the host's namespace", ["HostConfig.NetworkMode = host"])
    for nid, ep in src.endpoints().items():
        net = nets[nid]
        if net["Driver"] == "bridge" and ep.get("Gateway"):
            return Verdict(True, f"{src.label} reaches the host at its gateway {ep['Gateway']} on {net['Name']}",
                           [f"bridge {(net.get('Cove') or {}).get('Bridge')} holds {ep['Gateway']}"],
                           _probe_ping(ep["Gateway"]))
    for nid in src.endpoints():
        net = nets[nid]
        if net["Driver"] in ("macvlan", "ipvlan"):
            parent = (net.get("Options") or {}).get("parent", "")
            if net["Driver"] == "macvlan" and _lan_host_access(net):
                shim = next((v for k, v in (net["IPAM"]["Config"][0].get("AuxiliaryAddresses") or {}).items()
                             if k == "cove-host-access"), "")
                return Verdict(True, f"{src.label} reaches the host through its host_access link on {parent}",
                               [f"{net['Name']}: host_access=true, host address {shim}"],
                               _probe_ping(shim) if shim else [])
            return Verdict(False, f"{net['Driver']} parent/host isolation: the host cannot talk to its "
                           f"{net['Driver']} children through {parent} (macvlan: -o host_access=true lifts it)",
                           [f"network {net['Name']}: driver {net['Driver']}, parent {parent}"])
    return Verdict(False, f"{src.label} has no network that leads to the host", [])


def _from_host(dst: End, nets: dict[str, dict[str, Any]], port: tuple[int, str] | None) -> Verdict:
    if dst.mode == "host":
        return Verdict(True, f"{dst.label} is in the host's namespace", ["HostConfig.NetworkMode = host"])
    for nid, ep in dst.endpoints().items():
        net = nets[nid]
        ip = ep["IPAddress"]
        if net["Driver"] == "bridge":
            v = Verdict(True, f"the host reaches {dst.label} at {ip} through bridge "
                        f"{(net.get('Cove') or {}).get('Bridge')}", [f"{ip} on {_net_desc(net)}"], _probe_ping(ip))
            if port is not None and port[1] == "tcp":
                v.probe = _probe_tcp(ip, port[0])
                v.note = "the probe connects to the port: it fails if nothing in the container listens there"
            return v
    for nid, ep in dst.endpoints().items():
        net = nets[nid]
        parent = (net.get("Options") or {}).get("parent", "")
        if net["Driver"] == "macvlan" and _lan_host_access(net):
            return Verdict(True, f"the host reaches {dst.label} through its host_access link on {parent}",
                           [f"{net['Name']}: host_access=true"], _probe_ping(ep["IPAddress"]))
        return Verdict(False, f"{net['Driver']} parent/host isolation: the host cannot reach {dst.label} "
                       f"through {parent} (other machines on the LAN can; macvlan: -o host_access=true)",
                       [f"{ep['IPAddress']} on {_net_desc(net)}, parent {parent}"], _probe_ping(ep["IPAddress"]))
    return Verdict(False, f"{dst.label} has no address the host can reach", [])


def _published(dst: End, port: tuple[int, str] | None) -> Verdict:
    if port is None:
        raise click.UsageError("from outside, give the container's --port (as published with -p)")
    key = f"{port[0]}/{port[1]}"
    bindings = ((dst.info.get("NetworkSettings") or {}).get("Ports") or {}).get(key) or []
    evidence = [f"{dst.label} publishes " + (", ".join(f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}" for b in bindings)
                                             if bindings else f"nothing for {key}")]
    if not bindings:
        return Verdict(False, f"port {key} of {dst.label} is not published: other machines cannot reach it "
                       "(run it with -p HOSTPORT:" + str(port[0]) + ")", evidence)
    open_ = [b for b in bindings if not (b.get("HostIp") or "").startswith("127.") and b.get("HostIp") != "::1"]
    if not open_:
        here = _host_address()
        return Verdict(False, f"port {key} of {dst.label} is published on {bindings[0]['HostIp']} only: "
                       "this host can use it, other machines cannot", evidence,
                       _probe_tcp(here, int(bindings[0]["HostPort"])) if port[1] == "tcp" and here else [],
                       note="probed from this host through its own address, the nearest it can come to another "
                       "machine")
    b = open_[0]
    target = b.get("HostIp") if b.get("HostIp") not in ("", "0.0.0.0", "::") else _host_address()
    return Verdict(True, f"port {key} of {dst.label} is published on {b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}",
                   evidence, _probe_tcp(target, int(b["HostPort"])) if port[1] == "tcp" and target else [],
                   note="probed from this host through its own address, the nearest it can come to another machine")


def _host_address() -> str:
    try:
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, timeout=5).stdout
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info", []):
                if a.get("scope") == "global":
                    return str(a["local"])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return ""


def user_rules() -> list[str]:
    """The admin's own rules, the one thing between containers cove does not decide itself."""
    rules: list[str] = []
    if shutil.which("nft"):
        out = subprocess.run(["nft", "list", "chain", "ip", "cove", "user"], capture_output=True, text=True).stdout
        body = [ln.strip() for ln in out.splitlines()[2:] if ln.strip() and ln.strip() not in ("}",)]
        rules += [f"nft: {r}" for r in body if not r.startswith(("type ", "policy "))]
    for tool in ("iptables-legacy", "iptables"):
        if shutil.which(tool):
            out = subprocess.run([tool, "-S", "COVE-USER"], capture_output=True, text=True).stdout
            rules += [f"{tool}: {r}" for r in out.splitlines() if r.startswith("-A ")]
            break
    return rules


def run_probe(v: Verdict) -> None:
    if not v.probe:
        return
    argv = (["nsenter", f"--net={v.netns}", "--"] if v.netns else []) + v.probe
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        v.probe_ok = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        r, v.probe_ok = None, False
    v.agrees = v.probe_ok == v.reachable
    if r is not None and r.returncode == 2:
        v.note = ("the probe disagrees: the connection was refused, so the path is open but nothing in the "
                  "destination listens on that port")
    elif not v.agrees:
        rules = user_rules()
        if v.reachable and rules:
            v.note = ("the probe disagrees: cove's records say it is open, so look at the admin's rules in the "
                      "user chain: " + "; ".join(rules))
        elif v.reachable:
            v.note = ("the probe disagrees: cove's records say it is open; nothing is in the user chain, so look "
                      "for a listener, a firewall inside the container, or rules outside cove's tables")
        else:
            v.note = "the probe disagrees: it got through although cove's records say it should not"


def resolve(api: Any, what: str, role: str) -> End:
    from cove.cli.client import APIError, segment

    if what == "host":
        return End("host", "the host")
    if what == "outside":
        if role != "source":
            raise click.UsageError("'outside' can only be the source")
        return End("outside", "another machine")
    try:
        ipaddress.ip_address(what)
    except ValueError:
        try:
            return End("container", what, api.get(f"/containers/{segment(what)}/json"))
        except APIError as exc:
            raise click.ClickException(str(exc)) from None
    if role == "source":
        raise click.UsageError("an address can only be the destination")
    for c in api.get("/containers/json"):
        for ep in ((c.get("NetworkSettings") or {}).get("Networks") or {}).values():
            if ep.get("IPAddress") == what:
                return End("container", c["Names"][0].lstrip("/"), api.get(f"/containers/{segment(c['Id'])}/json"))
    return End("address", what, address=what)


def sandbox_of(api: Any, end: End) -> str:
    """The network namespace a probe from ``end`` runs in ("" for the host's own)."""
    from cove.cli.client import segment

    if end.kind != "container" or end.mode == "host":
        return ""
    if end.mode.startswith("container:"):
        owner = api.get(f"/containers/{segment(end.mode.split(':', 1)[1])}/json")
        return str(owner["NetworkSettings"].get("SandboxKey") or "")
    return str(end.info["NetworkSettings"].get("SandboxKey") or "")


@click.command("diagnose")
@click.argument("source")
@click.argument("destination")
@click.option("--port", default=None, metavar="PORT[/PROTO]", help="A port on the destination (tcp by default).")
@click.option("--name", "by_name", is_flag=True, help="Reach the destination by its name (DNS), not its address.")
@click.option("--no-probe", is_flag=True, help="Only the verdict from cove's records, no real probe.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_context
def diagnose(ctx: click.Context, source: str, destination: str, port: str | None, by_name: bool, no_probe: bool,
             as_json: bool) -> None:
    """Can SOURCE reach DESTINATION? If not, the first thing in the way, then a real probe.

    SOURCE and DESTINATION are containers, `host`, an outside IPv4 address (destination), or
    `outside` (source, with --port: another machine reaching a published port).
    """
    from cove.cli.client import segment

    api = client(ctx)
    src, dst = resolve(api, source, "source"), resolve(api, destination, "destination")
    for end in (src, dst):
        if end.mode.startswith("container:"):      # it lives on the owner's endpoints
            owner = api.get(f"/containers/{segment(end.mode.split(':', 1)[1])}/json")
            end.info["NetworkSettings"]["Networks"] = owner["NetworkSettings"].get("Networks") or {}
    ids = {nid for end in (src, dst) for nid in end.endpoints()}
    nets = {nid: api.get(f"/networks/{segment(nid)}") for nid in ids}
    verdict = analyse(src, dst, nets, _port(port), by_name)
    verdict.netns = sandbox_of(api, src) if src.kind == "container" else ""
    if not no_probe:
        run_probe(verdict)
    if as_json:
        click.echo(json.dumps({"source": src.label, "destination": dst.label, **asdict(verdict),
                               "probe_description": describe_probe(verdict.probe)}, indent=2))
        return
    click.echo(f"{src.label} -> {dst.label}: {'reachable' if verdict.reachable else 'blocked'}")
    click.echo(f"  why: {verdict.reason}")
    for e in verdict.evidence:
        click.echo(f"  evidence: {e}")
    if verdict.probe_ok is not None:
        origin = "this host" if src.kind in ("host", "outside") else src.label
        click.echo(f"  probe: {describe_probe(verdict.probe)} from {origin}: "
                   f"{'answered' if verdict.probe_ok else 'no answer'}"
                   f" ({'agrees' if verdict.agrees else 'DISAGREES'})")
    if verdict.note:
        click.echo(f"  note: {verdict.note}")
