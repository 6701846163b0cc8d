"""The Markdown report: the operations side by side, the issue's targets, then every series.

Parts: ``cove``, ``docker``, ``podman`` (the same scenarios), ``raw`` (the pyroute2 limit),
``cni`` (the CNI plugins called directly), ``iperf`` (data path).  Every function here
is pure (JSON-like data in, text out), so the unit tests can check it without a kernel.

Targets (issue #7), judged on medians of one run:

* network create <= 0.1x Docker and <= 0.33x Podman (``net_create``, CLI end to end);
* run -d to first ping by name <= 0.15x Docker and <= 0.3x Podman (``run_to_ping_name``);
* endpoint attach p50 <= 2x the raw netlink limit (``connect_api`` vs ``raw_endpoint``);
* attach flat with scale: the attach with 1,000 containers on the network within 1.5x
  the attach with 10 (``scale_attach_at_1000`` vs ``scale_attach_at_10``);
* 1,000 containers on one network started in less time than the CNI bridge chain needs
  for 200 (sum of ``scale_start_api`` over containers 1..1000 vs ``cni_scale_add`` 1..200);
* CLI start-up <= 60 ms; daemon RSS <= 100 MB (10^8 bytes) with 1,000 containers
  (extrapolated linearly from 0 containers when the run stopped below 1,000);
* data path >= 95% of raw veth+bridge throughput container to container.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import summarize

RSS_TARGET_KIB = 100e6 / 1024
CLI_TARGET_S = 0.060
PARTS = ("cove", "docker", "podman", "raw", "cni", "iperf")
ENGINES = ("cove", "docker", "podman")


@dataclass
class Row:
    op: str
    values: dict[str, float | None]  # engine -> median seconds
    ref: float | None = None          # the raw limit or the CNI figure for the same work
    ref_label: str = "raw"


@dataclass
class Target:
    name: str
    measured: str
    met: bool | None  # None: could not be judged in this run
    note: str = ""


def result_stem(results: Path, date: str, quick: bool) -> str:
    """``<date>[-quick]``, or with ``-2``, ``-3``... when that run's files already exist (history is kept)."""
    base = f"{date}-quick" if quick else date
    stem, n = base, 1
    while (results / f"{stem}.json").exists() or (results / f"{stem}.md").exists():
        n += 1
        stem = f"{base}-{n}"
    return stem


def median(data: dict[str, Any], part: str, series: str) -> float | None:
    try:
        return float(data[part]["summary"][series]["median"])
    except (KeyError, TypeError):
        return None


def samples(data: dict[str, Any], part: str, series: str) -> list[float]:
    try:
        return [float(v) for v in data[part]["samples"][series]]
    except (KeyError, TypeError):
        return []


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "–"
    ms = v * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def fmt_gbit(bps: float | None) -> str:
    return "–" if bps is None else f"{bps / 1e9:.2f} Gbit/s"


def rss_at_1000(cove: dict[str, Any]) -> tuple[float | None, int, float | None]:
    """(RSS in KiB at 1,000 containers (measured or extrapolated), the largest point, RSS there)."""
    facts = (cove or {}).get("facts", {})
    at = facts.get("daemon_rss_kib_at") or {}
    rss0 = facts.get("daemon_rss_kib_at_0")
    if not at or rss0 is None:
        return None, 0, None
    top = max(int(k) for k in at)
    rss_top = at[str(top)]
    if rss_top is None:
        return None, top, None
    if top >= 1000:
        return float(rss_top), top, float(rss_top)
    return rss0 + (rss_top - rss0) * 1000 / top, top, float(rss_top)


def rows(data: dict[str, Any]) -> list[Row]:
    def r(op: str, series: str, ref: str | None = None, ref_part: str = "raw", label: str = "raw") -> Row:
        return Row(op, {e: median(data, e, series) for e in ENGINES},
                   median(data, ref_part, ref) if ref else None, label)

    return [
        r("network create (CLI)", "net_create", "raw_bridge_create"),
        r("network rm (CLI)", "net_rm", "raw_bridge_rm"),
        r("network create (API only)", "net_create_api", "raw_bridge_create"),
        r("network rm (API only)", "net_rm_api", "raw_bridge_rm"),
        r("run -d (the command alone)", "run_d_name", "raw_netns_endpoint"),
        r("run -d → first ping by IP", "run_to_ping_ip", "raw_netns_endpoint"),
        r("run -d → first ping by name", "run_to_ping_name", "raw_netns_endpoint"),
        r("run -d (API only: create + start)", "run_d_api", "raw_netns_endpoint"),
        r("rm -f (running container)", "rm_f", "raw_teardown"),
        r("rm -f (API only)", "rm_f_api", "raw_teardown"),
        r("endpoint attach (API connect)", "connect_api", "raw_endpoint"),
        r("endpoint attach: CNI ADD bridge+portmap", "-", "cni_attach", "cni", "CNI"),
        r("endpoint detach (API disconnect)", "disconnect_api", "raw_teardown"),
        r("endpoint detach: CNI DEL", "-", "cni_detach", "cni", "CNI"),
        r("network connect (CLI)", "connect_cli", "raw_endpoint"),
        r("network disconnect (CLI)", "disconnect_cli", "raw_teardown"),
        r("CLI start-up (--version)", "cli_version"),
    ]


def table(data: dict[str, Any]) -> str:
    lines = ["| operation | cove (ms) | docker (ms) | podman (ms) | cove/docker | cove/podman | raw or CNI (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows(data):
        c, d, p = (row.values[e] for e in ENGINES)
        if c is None and d is None and p is None and row.ref is None:
            continue
        ref = f"{fmt_ms(row.ref)} ({row.ref_label})" if row.ref is not None else "–"
        lines.append(f"| {row.op} | {fmt_ms(c)} | {fmt_ms(d)} | {fmt_ms(p)} | {ratio(c, d)} | {ratio(c, p)} | {ref} |")
    return "\n".join(lines)


def window_median(values: list[float], nth: int, half: int = 5) -> float | None:
    """Median of the samples around the ``nth`` (1-based) one: a steadier figure than one sample."""
    if nth < 1 or nth > len(values):
        return None
    s = summarize(values[max(0, nth - 1 - half):min(len(values), nth + half)])
    return s.median if s else None


def _vs(name: str, a: float | None, b: float | None, limit: float, what: str) -> Target:
    if a is None or not b:
        return Target(name, "–", None, f"no {what} figure in this run")
    return Target(name, f"{a / b:.2f}× ({fmt_ms(a)} vs {fmt_ms(b)} ms)", a / b <= limit)


def targets(data: dict[str, Any]) -> list[Target]:
    def m(part: str, series: str) -> float | None:
        return median(data, part, series)

    out = [
        _vs("network create ≤ 0.1× Docker", m("cove", "net_create"), m("docker", "net_create"), 0.1, "Docker"),
        _vs("network create ≤ 0.33× Podman", m("cove", "net_create"), m("podman", "net_create"), 0.33, "Podman"),
        _vs("run -d → ping by name ≤ 0.15× Docker", m("cove", "run_to_ping_name"), m("docker", "run_to_ping_name"),
            0.15, "Docker"),
        _vs("run -d → ping by name ≤ 0.3× Podman", m("cove", "run_to_ping_name"), m("podman", "run_to_ping_name"),
            0.3, "Podman"),
    ]
    for t, engine in ((out[2], "docker"), (out[3], "podman"), (out[2], "cove"), (out[3], "cove")):
        failed = samples(data, engine, "ping_failed_name")
        if failed:
            t.note = (t.note + "; " if t.note else "") + f"{engine}: {len(failed)} round(s) without a reply in 30 s"
    out += [
        _vs("endpoint attach p50 ≤ 2× raw", m("cove", "connect_api"), m("raw", "raw_endpoint"), 2.0, "raw"),
    ]
    at = sorted(int(k.rsplit("_", 1)[1]) for k in ((data.get("cove") or {}).get("summary") or {})
                if k.startswith("scale_attach_at_"))
    top = at[-1] if at else 0
    a10, atop = m("cove", "scale_attach_at_10"), m("cove", f"scale_attach_at_{top}")
    flat = _vs("attach flat: at 1,000 ≤ 1.5× at 10", atop, a10, 1.5, "scale")
    if top and top < 1000 and flat.met is not None:
        flat.met, flat.note = None, f"the run reached {top} containers, not 1,000"
    elif top:
        flat.measured = f"{flat.measured}; at {top}"
    out.append(flat)
    starts = samples(data, "cove", "scale_start_api")
    cni_total = (data.get("cni") or {}).get("facts", {}).get("cni_scale_total_seconds")
    cni_n = (data.get("cni") or {}).get("facts", {}).get("cni_scale_containers")
    if len(starts) >= 1000 and cni_total:
        cove_total = sum(starts[:1000])
        out.append(Target(f"1,000 containers < CNI for {cni_n}", f"{cove_total:.1f} s vs {cni_total:.1f} s",
                          cove_total < cni_total and cni_n == 200,
                          "" if cni_n == 200 else f"CNI ran {cni_n}, not 200"))
    else:
        have = f"{sum(starts):.1f} s for {len(starts)}" if starts else "–"
        out.append(Target("1,000 containers < CNI for 200", f"{have} vs {cni_total or '–'} s", None,
                          "not reached in this run" if cni_total else "no CNI figure in this run"))
    c = m("cove", "cli_version")
    out.append(Target("CLI start-up ≤ 60 ms", f"{fmt_ms(c)} ms" if c else "–", c <= CLI_TARGET_S if c else None))
    est, top_rss, _ = rss_at_1000(data.get("cove") or {})
    if est is None:
        out.append(Target("daemon RSS ≤ 100 MB at 1,000", "–", None, "no scale run"))
    else:
        note = "" if top_rss >= 1000 else f"extrapolated from 0 and {top_rss} containers"
        out.append(Target("daemon RSS ≤ 100 MB at 1,000", f"{est / 1024:.1f} MiB", est <= RSS_TARGET_KIB, note))
    raw_bps, cove_bps = m("iperf", "iperf_raw_c2c"), m("iperf", "iperf_cove_c2c")
    if raw_bps and cove_bps:
        out.append(Target("data path ≥ 95% of raw (c2c)", f"{cove_bps / raw_bps:.0%} ({fmt_gbit(cove_bps)} vs "
                          f"{fmt_gbit(raw_bps)})", cove_bps >= 0.95 * raw_bps))
    else:
        out.append(Target("data path ≥ 95% of raw (c2c)", "–", None, "no iperf3 figure in this run"))
    return out


def targets_table(data: dict[str, Any]) -> str:
    lines = ["| target | measured | met |", "|---|---|---|"]
    for t in targets(data):
        met = "met" if t.met else "not met" if t.met is False else "not judged"
        lines.append(f"| {t.name} | {t.measured} | {met}{f' ({t.note})' if t.note else ''} |")
    return "\n".join(lines)


def scale_table(data: dict[str, Any]) -> str:
    """Per-op cost at each scale point: attach/detach probe, start window, RSS, descriptors."""
    cove = data.get("cove") or {}
    facts = cove.get("facts", {})
    starts = samples(data, "cove", "scale_start_api")
    points = sorted({int(k.rsplit("_", 1)[1]) for k in cove.get("summary", {}) if k.startswith("scale_attach_at_")})
    if not points:
        return ""
    lines = ["| containers on the network | attach (API) ms | detach (API) ms | start (API) ms, ±5 around | "
             "daemon RSS | daemon fds |", "|---:|---:|---:|---:|---:|---:|"]
    for n in points:
        rss = (facts.get("daemon_rss_kib_at") or {}).get(str(n))
        lines.append(f"| {n:,} | {fmt_ms(median(data, 'cove', f'scale_attach_at_{n}'))} | "
                     f"{fmt_ms(median(data, 'cove', f'scale_detach_at_{n}'))} | {fmt_ms(window_median(starts, n))} | "
                     f"{'–' if rss is None else f'{rss / 1024:.1f} MiB'} | "
                     f"{(facts.get('daemon_fds_at') or {}).get(str(n), '–')} |")
    return "\n".join(lines)


def iperf_table(data: dict[str, Any]) -> str:
    rows_ = [("container → container, one bridge", "iperf_raw_c2c", "iperf_cove_c2c"),
             ("outside → container (raw: routed; cove: published port, DNAT)", "iperf_raw_routed",
              "iperf_cove_published")]
    lines = ["| path | raw veth+bridge | cove | cove/raw |", "|---|---:|---:|---:|"]
    for label, raw, cove in rows_:
        r, c = median(data, "iperf", raw), median(data, "iperf", cove)
        if r is None and c is None:
            continue
        lines.append(f"| {label} | {fmt_gbit(r)} | {fmt_gbit(c)} | {f'{c / r:.0%}' if r and c else '–'} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def all_series(data: dict[str, Any]) -> str:
    lines = ["| part | series | n | min | median | max |", "|---|---|---:|---:|---:|---:|"]
    for part in PARTS:
        for name, s in ((data.get(part) or {}).get("summary") or {}).items():
            if name.startswith(("ping_attempts", "ping_failed")):
                lines.append(f"| {part} | {name} (count) | {s['n']} | {s['min']:g} | {s['median']:g} | {s['max']:g} |")
            elif name.startswith("iperf_"):
                lines.append(f"| {part} | {name} | {s['n']} | {fmt_gbit(s['min'])} | {fmt_gbit(s['median'])} | "
                             f"{fmt_gbit(s['max'])} |")
            else:
                lines.append(f"| {part} | {name} | {s['n']} | {fmt_ms(s['min'])} | {fmt_ms(s['median'])} | "
                             f"{fmt_ms(s['max'])} |")
    return "\n".join(lines)


def markdown(data: dict[str, Any]) -> str:
    meta = data.get("meta", {})
    f = {p: (data.get(p) or {}).get("facts", {}) for p in PARTS}
    machine = meta.get("machine", {})
    header = (
        f"Command: `{meta.get('command', '')}`  \n"
        f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu')}), kernel {machine.get('kernel')}, "
        f"Python {machine.get('python')}; load average before {meta.get('load_before', '?')}, "
        f"after {meta.get('load_after', '?')}  \n"
        f"cove: {f['cove'].get('version', '–')} (commit {meta.get('commit', '?')}); "
        f"docker: CLI {f['docker'].get('client_version', '–')}, dockerd {f['docker'].get('server_version', '–')}; "
        f"podman: {f['podman'].get('client_version', '–')} ({f['podman'].get('network_backend', '–')}, "
        f"{f['podman'].get('runtime', '–')}); CNI plugins {f['cni'].get('version', '–')}  \n"
        f"Repetitions: {meta.get('reps')} (CLI start-up: {meta.get('cli_reps')}); scale points: "
        f"{meta.get('scale_points')}; raw endpoint ping check: {f['raw'].get('raw_ping_check', '–')}; "
        f"CNI ping check: {f['cni'].get('ping_check', '–')}"
    )
    out = [f"# cove benchmark, {meta.get('date', '')}", "", header, "",
           "Medians; every sample is in the JSON file next to this one.", "", table(data), "",
           "## Targets (issue #7)", "", targets_table(data), ""]
    st = scale_table(data)
    if st:
        out += ["## Scale: one network, cove", "", st, ""]
    import parallel             # bench/parallel.py (bench/ is on the path)

    pt = parallel.table(data)
    if pt:
        out += ["## 32 parallel clients (create -p, start, connect, clash, rm -f; issue 14's goal: p99 < 300 ms)",
                "", pt, ""]
    it = iperf_table(data)
    if it:
        out += ["## Data path (iperf3, TCP, median of runs)", "", it, ""]
    plots = meta.get("plots") or []
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    out += ["## Facts", ""]
    for part in ("cove", "cni", "iperf"):
        for key, value in f[part].items():
            if key not in ("version", "scale_failed_log"):
                out.append(f"- {part} {key}: {value}")
    out += ["", "## Every series (min / median / max, ms)", "", all_series(data)]
    errors = [(p, e) for p in PARTS for e in (data.get(p) or {}).get("errors", [])]
    if errors or meta.get("failures"):
        out += ["", "## Errors", ""] + [f"- {p}: {e.splitlines()[0] if e else e}" for p, e in errors]
        out += [f"- run: {x}" for x in meta.get("failures") or []]
    return "\n".join(out) + "\n"
