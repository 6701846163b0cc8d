"""The targets table of issue #17: one row per target, measured value, target, met or not.

Pure (JSON-like data in, text out): ``bench/run.py`` prints it and writes
``bench/results/<stem>-targets.md``; the unit tests check it without a kernel.  Docker
and Podman columns are filled when that part ran (by hand, never in CI).  The DNS rows
come from the newest ``*-dns.json`` of ``bench/dnsbench.py`` in the results directory
(passed in as ``dns``), since the resolver has a bench of its own; the overlay rows (issue #15)
likewise from the newest ``*-overlayscale.json`` of ``bench/overlayscale.py`` (``overlay``).

A row is *met*, *not met* or *not judged* (a figure it needs is missing in this run, e.g.
the scale run stopped below 1,000 or no Docker part ran); nothing is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .report import median, rss_at_1000, samples

CLI_OVERHEAD_S = 0.010
# (label, CLI series, API series): what the CLI sends for that command, timed over the API
CLI_PAIRS = (
    ("network create", "net_create", "net_create_api"),
    ("network rm", "net_rm", "net_rm_api"),
    ("run -d", "run_d_name", "run_d_api"),
    ("rm -f", "rm_f", "rm_f_api"),
    ("exec", "exec_cli", "exec_api"),
    ("ps", "ps_cli", "ps_api"),
    ("inspect", "inspect_cli", "inspect_api"),
)


@dataclass
class Row:
    target: str
    measured: str
    goal: str
    met: bool | None
    docker: str = "–"
    podman: str = "–"
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        v = "met" if self.met else "not met" if self.met is False else "not judged"
        return v + (f" ({'; '.join(self.notes)})" if self.notes else "")


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.1f} ms"


def _ratio_row(name: str, a: float | None, b: float | None, limit: float, what: str, *,
               extra: float = 0.0, extra_label: str = "") -> Row:
    goal = f"≤ {limit:g}× {what}" + (f" + {extra_label}" if extra_label else "")
    if a is None or not b:
        return Row(name, _ms(a), goal, None, notes=[f"no {what} figure in this run"])
    bound = limit * b + extra
    shown = f"{a / b:.2f}× ({_ms(a)} vs {_ms(b)}" + (f" + {_ms(extra)} {extra_label}" if extra_label else "") + ")"
    return Row(name, shown, goal, a <= bound)


def cli_overhead_rows(data: dict[str, Any]) -> list[Row]:
    out = []
    for label, cli, api in CLI_PAIRS:
        c, a = median(data, "cove", cli), median(data, "cove", api)
        d_cli, d_api = median(data, "docker", cli), median(data, "docker", api)
        p_cli = median(data, "podman", cli)
        row = Row(f"CLI overhead: {label}", "–", "≤ 10 ms over the API", None,
                  docker=f"+{(d_cli - d_api) * 1000:.1f} ms" if d_cli is not None and d_api is not None else "–",
                  podman=f"{_ms(p_cli)} (CLI, no daemon)" if p_cli is not None else "–")
        if c is None or a is None:
            row.notes.append("not measured in this run")
        else:
            row.measured = f"+{(c - a) * 1000:.1f} ms ({_ms(c)} CLI vs {_ms(a)} API)"
            row.met = c - a <= CLI_OVERHEAD_S
        out.append(row)
    return out


def daemon_rows(data: dict[str, Any]) -> list[Row]:
    def m(part: str, series: str) -> float | None:
        return median(data, part, series)

    fw_create, fw_rm = m("raw", "raw_bridge_fw_create"), m("raw", "raw_bridge_fw_rm")
    if fw_create is not None:       # the issue's own yardstick: the bridge and the network's firewall rules
        create = _ratio_row("daemon: network create", m("cove", "net_create_api"), fw_create, 2.0,
                            "raw bridge + firewall")
    else:
        create = _ratio_row("daemon: network create", m("cove", "net_create_api"), m("raw", "raw_bridge_create"),
                            2.0, "raw bridge")
        create.notes.append("raw = pyroute2 bridge only, no firewall: stricter than the issue's bridge + firewall")
    rows = [
        create,
        _ratio_row("daemon: endpoint attach", m("cove", "connect_api"), m("raw", "raw_endpoint"), 1.5, "raw"),
        _ratio_row("daemon: endpoint detach", m("cove", "disconnect_api"), m("raw", "raw_teardown"), 1.5, "raw"),
    ]
    stop = m("cove", "stop_api")
    rm = _ratio_row("daemon: container rm -f", m("cove", "rm_f_api"), m("raw", "raw_teardown"), 1.5, "raw teardown",
                    extra=stop or 0.0, extra_label="runtime stop")
    if stop is None and rm.met is not None:
        rm.met, rm.notes = None, ["no runtime stop figure (stop_api) in this run"]
    rows.append(rm)
    for r, series in zip(rows, ("net_create_api", "connect_api", "disconnect_api", "rm_f_api")):
        d = m("docker", series)
        r.docker = _ms(d)
    if fw_rm is not None:
        net_rm = _ratio_row("daemon: network rm", m("cove", "net_rm_api"), fw_rm, 2.0, "raw bridge + firewall")
        net_rm.docker = _ms(m("docker", "net_rm_api"))
        rows.insert(1, net_rm)
    at = sorted(int(k.rsplit("_", 1)[1]) for k in ((data.get("cove") or {}).get("summary") or {})
                if k.startswith("scale_attach_at_"))
    top = at[-1] if at else 0
    flat = _ratio_row("attach flat: at 1,000 vs at 10", m("cove", f"scale_attach_at_{top}") if top else None,
                      m("cove", "scale_attach_at_10"), 1.2, "at 10")
    if top and top < 1000:
        flat.met = None
        flat.notes = [f"the run reached {top} containers, not 1,000"]
    rows.append(flat)
    return rows


def failed_rounds(data: dict[str, Any], part: str, series: str) -> int:
    """Rounds of ``series`` that ``part`` could not finish (its errors, "SERIES round N: ...")."""
    try:
        return sum(1 for e in data[part]["errors"] if str(e).startswith(f"{series} round "))
    except (KeyError, TypeError):
        return 0


def cli_vs_reference_rows(data: dict[str, Any]) -> list[Row]:
    def vs(name: str, series: str, engine: str, limit: float) -> Row:
        c, ref = median(data, "cove", series), median(data, engine, series)
        r = _ratio_row(name, c, ref, limit, engine.capitalize())
        r.docker, r.podman = _ms(median(data, "docker", series)), _ms(median(data, "podman", series))
        # a round that timed out is in the samples at its timeout: a median of those says nothing
        failed = {p: n for p in ("cove", engine) if (n := failed_rounds(data, p, series))}
        if failed:
            r.met = None
            r.notes.append(", ".join(f"{p} failed {n} round(s) of this scenario" for p, n in failed.items()))
        return r

    return [
        vs("CLI: network create vs Docker", "net_create", "docker", 0.25),
        vs("CLI: network create vs Podman", "net_create", "podman", 0.6),
        vs("CLI: run -d → ping by name vs Docker", "run_to_ping_name", "docker", 0.25),
        vs("CLI: run -d → ping by name vs Podman", "run_to_ping_name", "podman", 0.3),
        vs("CLI: rm -f vs Docker", "rm_f", "docker", 0.4),
    ]


#: what each running container needs the daemon to hold open, by kind: its exit watch (a pidfd
#: of its shim in the exit watcher's epoll) and the embedded resolver's UDP and TCP listeners
#: on 127.0.0.11:53, which must be made inside the container's namespace (dockerd's resolver
#: holds the same two per container)
FDS_NEEDED = {"pidfd": 1.0, "socket": 2.0}


def _fd_row(per: float, top: int, count: int, at0: dict[str, int] | None, at_top: dict[str, int] | None) -> Row:
    label, what = "daemon fds per container", f"{per:.1f} (at {top}: {count})"
    target = "only what the runtime needs"
    if not at0 or not at_top or top < 10:
        return Row(label, what, target, None, notes=["no descriptor kinds in this run: read the figure"])
    growth = {k: (at_top.get(k, 0) - at0.get(k, 0)) / top for k in set(at0) | set(at_top)}
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(growth.items()) if abs(v) >= 0.005)
    extra = {k: v for k, v in growth.items() if v > FDS_NEEDED.get(k, 0.0) + 0.02}
    notes = [f"per container: {parts or 'none'}; needed: 1 pidfd (exit watch), 2 sockets (the resolver's UDP and TCP)"]
    if extra:
        notes.append("beyond the need: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(extra.items())))
    return Row(label, what, target, not extra, notes=notes)


def scale_rows(data: dict[str, Any]) -> list[Row]:
    cove = data.get("cove") or {}
    facts = cove.get("facts", {})
    starts = samples(data, "cove", "scale_start_api")
    total = facts.get("scale_start_seconds_to_1000")
    if total is None and len(starts) >= 1000:
        total = sum(starts[:1000])
    label = "1,000 containers on one network, one client after the other"
    if total is not None:
        r1 = Row(label, f"{total:.1f} s", "≤ 20 s", total <= 20.0)
    else:
        r1 = Row(label, f"{sum(starts):.1f} s for {len(starts)}" if starts else "–",
                 "≤ 20 s", None, notes=["the run did not reach 1,000"])
    burst = facts.get("scale_burst_start_seconds")
    clients = facts.get("scale_burst_clients")
    label = f"1,000 containers on one network, {clients or 'N'} clients at once"
    if burst is None:
        rb = Row(label, "–", "≤ 20 s", None, notes=["no burst in this run"])
    elif facts.get("scale_burst_containers", 0) < 1000 or facts.get("scale_burst_failed"):
        rb = Row(label, f"{burst:.1f} s for {facts.get('scale_burst_containers')}", "≤ 20 s", None,
                 notes=["the burst did not start 1,000" if not facts.get("scale_burst_failed")
                        else f"{facts['scale_burst_failed']} client(s) failed"])
    else:
        rb = Row(label, f"{burst:.1f} s (removal {facts.get('scale_burst_rm_seconds', 0):.1f} s)", "≤ 20 s",
                 burst <= 20.0)
    est, top, _ = rss_at_1000(cove)
    if est is None:
        r2 = Row("daemon RSS at 1,000 containers", "–", "≤ 100 MB", None, notes=["no scale run"])
    else:
        r2 = Row("daemon RSS at 1,000 containers", f"{est * 1024 / 1e6:.1f} MB", "≤ 100 MB", est * 1024 <= 100e6,
                 notes=[] if top >= 1000 else [f"extrapolated from 0 and {top} containers"])
    fds = facts.get("daemon_fds_at") or {}
    fd0 = facts.get("daemon_fds_at_0")
    if fds and fd0 is not None:
        top_fd = max(int(k) for k in fds)
        per = (fds[str(top_fd)] - fd0) / top_fd
        r3 = _fd_row(per, top_fd, fds[str(top_fd)], facts.get("daemon_fd_kinds_at_0"),
                     facts.get("daemon_fd_kinds_at_top"))
    else:
        r3 = Row("daemon fds per container", "–", "only what the runtime needs", None, notes=["no scale run"])
    return [r1, rb, r2, r3]


def dns_rows(dns: dict[str, Any] | None, docker_dns: dict[str, Any] | None = None) -> list[Row]:
    """From ``bench/dnsbench.py`` results: saturation qps (1 name) and p99 at a light load."""
    def fig(d: dict[str, Any] | None, engine: str, key: str, what: str) -> float | None:
        try:
            return float(((d or {}).get("summary") or {})[engine][key][what]["median"])
        except (KeyError, TypeError, ValueError):
            return None

    c_qps = fig(dns, "cove", "names_1_qps", "qps")
    ref = dns if fig(dns, "docker", "names_1_qps", "qps") is not None else docker_dns
    d_qps = fig(ref, "docker", "names_1_qps", "qps")
    p_qps = fig(dns, "podman", "names_1_qps", "qps")
    date = ((ref or {}).get("meta") or {}).get("date", "?")
    r1 = Row("DNS queries/s vs Docker", f"{c_qps:.0f} q/s" if c_qps else "–", "≥ 1.5× Docker",
             None if not (c_qps and d_qps) else c_qps >= 1.5 * d_qps,
             docker=f"{d_qps:.0f} q/s" if d_qps else "–", podman=f"{p_qps:.0f} q/s" if p_qps else "–")
    if c_qps and d_qps:
        r1.measured += f" ({c_qps / d_qps:.2f}× Docker)"
        if ref is not dns:
            r1.notes.append(f"Docker's figure from the {date} run (no Docker in this one)")
    else:
        r1.notes.append("no DNS run with both cove and Docker")
    p99 = fig(dns, "cove", "names_1_lat", "p99_ms")
    r2 = Row("DNS p99 latency (500 q/s)", f"{p99:.2f} ms" if p99 is not None else "–", "< 2 ms",
             None if p99 is None else p99 < 2.0,
             docker=f"{fig(ref, 'docker', 'names_1_lat', 'p99_ms'):.2f} ms" if fig(ref, "docker", "names_1_lat",
                                                                                   "p99_ms") else "–")
    return [r1, r2]


def dataplane_rows(data: dict[str, Any]) -> list[Row]:
    out = []
    for label, raw_s, cove_s in (("data path: container → container", "iperf_raw_c2c", "iperf_cove_c2c"),
                                 ("data path: through a published port", "iperf_raw_routed", "iperf_cove_published")):
        raw, cove = median(data, "iperf", raw_s), median(data, "iperf", cove_s)
        if raw and cove:
            out.append(Row(label, f"{cove / raw:.0%} ({cove / 1e9:.2f} vs {raw / 1e9:.2f} Gbit/s)", "≥ 95% of raw",
                           cove >= 0.95 * raw))
        else:
            out.append(Row(label, "–", "≥ 95% of raw", None, notes=["no iperf3 figure in this run"]))
    return out


def overlay_rows(ov: dict[str, Any] | None) -> list[Row]:
    """From ``bench/overlayscale.py`` results (issue #15: one real host against simulated hosts in etcd);
    no rows when there are none."""
    if not ov:
        return []
    scale = f"{ov.get('hosts', '?')} hosts × {ov.get('endpoints', '?')} endpoints"
    cold = ov.get("cold_s")
    events = [float(x) for x in [*(ov.get("add_ms") or []), *(ov.get("remove_ms") or [])]]
    revoke = ov.get("revoke_ms")
    return [
        Row(f"overlay: cold convergence ({scale})", "–" if cold is None else f"{float(cold):.2f} s", "≤ 10 s",
            None if cold is None else float(cold) <= 10.0),
        Row("overlay: one endpoint added/removed → in the kernel (max)",
            f"{max(events):.0f} ms (p50 {sorted(events)[len(events) // 2]:.0f}, n {len(events)})" if events else "–",
            "≤ 1 s", max(events) <= 1000.0 if events else None),
        Row("overlay: a host's lease revoked → its endpoints gone",
            "–" if revoke is None else f"{float(revoke):.0f} ms", "≤ 1 s",
            None if revoke is None else float(revoke) <= 1000.0),
    ]


def rows(data: dict[str, Any], dns: dict[str, Any] | None = None,
         docker_dns: dict[str, Any] | None = None, overlay: dict[str, Any] | None = None) -> list[Row]:
    return (cli_overhead_rows(data) + daemon_rows(data) + cli_vs_reference_rows(data) + scale_rows(data)
            + dns_rows(dns, docker_dns) + dataplane_rows(data) + overlay_rows(overlay))


def table(data: dict[str, Any], dns: dict[str, Any] | None = None,
          docker_dns: dict[str, Any] | None = None, overlay: dict[str, Any] | None = None) -> str:
    lines = ["| target (issue #17) | cove, measured | target | verdict | Docker | Podman |",
             "|---|---|---|---|---|---|"]
    for r in rows(data, dns, docker_dns, overlay):
        lines.append(f"| {r.target} | {r.measured} | {r.goal} | {r.verdict} | {r.docker} | {r.podman} |")
    return "\n".join(lines)


def count(data: dict[str, Any], dns: dict[str, Any] | None = None,
          docker_dns: dict[str, Any] | None = None, overlay: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """(met, not met, not judged)."""
    rs = rows(data, dns, docker_dns, overlay)
    return (sum(r.met is True for r in rs), sum(r.met is False for r in rs), sum(r.met is None for r in rs))
