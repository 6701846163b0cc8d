"""The Markdown report: the summary table with the issue's targets, then every series.

Targets (from the issue): network create <= 0.1x Docker; run -d to first ping by name
<= 0.15x Docker; endpoint attach p50 <= 2x raw; CLI start-up <= 60 ms; daemon RSS
<= 100 MB at 1,000 containers (measured at the largest scale point and, when that is
below 1,000, extrapolated linearly from the RSS at 0 containers; 100 MB = 10^8 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RSS_TARGET_KIB = 100e6 / 1024
CLI_TARGET_S = 0.060


@dataclass
class Row:
    op: str
    cove: float | None
    docker: float | None
    raw: float | None
    target: str = ""
    met: bool | None = None
    unit: str = "ms"


def _median(data: dict[str, Any], part: str, series: str) -> float | None:
    try:
        return float(data[part]["summary"][series]["median"])
    except (KeyError, TypeError):
        return None


def _ms(v: float | None) -> str:
    if v is None:
        return "–"
    ms = v * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


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
    def m(part: str, series: str) -> float | None:
        return _median(data, part, series)

    out: list[Row] = []
    c, d = m("cove", "net_create"), m("docker", "net_create")
    out.append(Row("network create (CLI)", c, d, m("raw", "raw_bridge_create"), "≤ 0.1× Docker",
                   c / d <= 0.1 if c is not None and d else None))
    out.append(Row("network rm (CLI)", m("cove", "net_rm"), m("docker", "net_rm"), m("raw", "raw_bridge_rm")))
    out.append(Row("network create (API only)", m("cove", "net_create_api"), m("docker", "net_create_api"),
                   m("raw", "raw_bridge_create")))
    out.append(Row("network rm (API only)", m("cove", "net_rm_api"), m("docker", "net_rm_api"),
                   m("raw", "raw_bridge_rm")))
    out.append(Row("network create + rm (CLI)", m("cove", "net_create_rm"), m("docker", "net_create_rm"),
                   m("raw", "raw_bridge_create_rm")))
    out.append(Row("run -d (the command alone)", m("cove", "run_d_name"), m("docker", "run_d_name"),
                   m("raw", "raw_netns_endpoint")))
    out.append(Row("run -d → first ping by IP", m("cove", "run_to_ping_ip"), m("docker", "run_to_ping_ip"),
                   m("raw", "raw_netns_endpoint")))
    c, d = m("cove", "run_to_ping_name"), m("docker", "run_to_ping_name")
    out.append(Row("run -d → first ping by name (user network)", c, d, m("raw", "raw_netns_endpoint"),
                   "≤ 0.15× Docker", c / d <= 0.15 if c is not None and d else None))
    out.append(Row("run -d (API only: create + start)", m("cove", "run_d_api"), m("docker", "run_d_api"),
                   m("raw", "raw_netns_endpoint")))
    out.append(Row("rm -f (running container)", m("cove", "rm_f"), m("docker", "rm_f"), m("raw", "raw_teardown")))
    out.append(Row("rm -f (API only)", m("cove", "rm_f_api"), m("docker", "rm_f_api"), m("raw", "raw_teardown")))
    c, raw = m("cove", "connect_api"), m("raw", "raw_endpoint")
    out.append(Row("endpoint attach (API network connect)", c, m("docker", "connect_api"), raw, "p50 ≤ 2× raw",
                   c <= 2 * raw if c is not None and raw else None))
    out.append(Row("endpoint detach (API network disconnect)", m("cove", "disconnect_api"),
                   m("docker", "disconnect_api"), m("raw", "raw_teardown")))
    out.append(Row("network connect (CLI)", m("cove", "connect_cli"), m("docker", "connect_cli"), raw))
    c = m("cove", "cli_version")
    out.append(Row("CLI start-up (--version)", c, m("docker", "cli_version"), None, "≤ 60 ms",
                   c <= CLI_TARGET_S if c is not None else None))
    summary = (data.get("cove") or {}).get("summary", {})
    for key in sorted((k for k in summary if k.startswith("scale_run_d_") and k != "scale_run_d_all"),
                      key=lambda k: int(k.rsplit("_", 1)[1].split("-")[0])):
        label = key[len("scale_run_d_"):]
        out.append(Row(f"scale: run -d, container {label.replace('-', '–')} on one network", m("cove", key), None,
                       m("raw", "raw_netns_endpoint")))
    est, top, rss_top = rss_at_1000(data.get("cove") or {})
    facts = (data.get("cove") or {}).get("facts", {})
    if facts.get("scale_failed_at"):
        out.append(Row(f"scale: run -d FAILED at container {facts['scale_failed_at']} (see Errors)", None, None, None))
    if facts.get("daemon_rss_kib_at_0") is not None:
        out.append(Row("daemon RSS, 0 containers", facts["daemon_rss_kib_at_0"], None, None, unit="MiB"))
    if rss_top is not None:
        out.append(Row(f"daemon RSS, {top} containers", rss_top, None, None, unit="MiB"))
    if est is not None:
        label = "measured" if top >= 1000 else f"extrapolated from 0 and {top}"
        out.append(Row(f"daemon RSS, 1,000 containers ({label})", est, None, None, "≤ 100 MB",
                       est <= RSS_TARGET_KIB, unit="MiB"))
    return out


def _cell(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    return f"{v / 1024:.1f} MiB" if unit == "MiB" else _ms(v)


def table(data: dict[str, Any]) -> str:
    lines = ["| operation | cove median (ms) | docker median (ms) | cove/docker | raw limit (ms) | target | met |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in rows(data):
        met = "" if r.met is None and not r.target else ("met" if r.met else "not met" if r.met is False else "n/a")
        if r.met is not None and "extrapolated" in r.op:
            met += " (extrapolated)"
        ratio = _ratio(r.cove, r.docker) if r.unit == "ms" else "–"
        lines.append(f"| {r.op} | {_cell(r.cove, r.unit)} | {_cell(r.docker, r.unit)} | {ratio} | "
                     f"{_cell(r.raw, r.unit)} | {r.target} | {met} |")
    return "\n".join(lines)


def all_series(data: dict[str, Any]) -> str:
    lines = ["| part | series | n | min | median | max |", "|---|---|---:|---:|---:|---:|"]
    for part in ("cove", "docker", "raw"):
        for name, s in ((data.get(part) or {}).get("summary") or {}).items():
            if name.startswith("ping_attempts"):
                lines.append(f"| {part} | {name} (count) | {s['n']} | {s['min']:g} | {s['median']:g} | {s['max']:g} |")
            else:
                lines.append(f"| {part} | {name} | {s['n']} | {_ms(s['min'])} | {_ms(s['median'])} | {_ms(s['max'])} |")
    return "\n".join(lines)


def markdown(data: dict[str, Any]) -> str:
    meta = data.get("meta", {})
    cove_facts = (data.get("cove") or {}).get("facts", {})
    docker_facts = (data.get("docker") or {}).get("facts", {})
    raw_facts = (data.get("raw") or {}).get("facts", {})
    machine = meta.get("machine", {})
    header = (
        f"Command: `{meta.get('command', '')}`  \n"
        f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu')}), kernel {machine.get('kernel')}, "
        f"Python {machine.get('python')}  \n"
        f"cove: {cove_facts.get('version', '–')} (commit {meta.get('commit', '?')}); "
        f"docker: CLI {docker_facts.get('client_version', '–')}, dockerd {docker_facts.get('server_version', '–')}  \n"
        f"Repetitions: {meta.get('reps')} (CLI start-up: {meta.get('cli_reps')}); scale points: "
        f"{meta.get('scale_points')}; raw endpoint ping check: {raw_facts.get('raw_ping_check', '–')}"
    )
    out = [f"# cove benchmark, {meta.get('date', '')}", "", header, "",
           "Medians; every sample is in the JSON file next to this one.", "", table(data), "",
           "## Scale and memory facts", ""]
    for key in ("scale_containers", "scale_failed_at", "scale_total_seconds", "daemon_fds_at_0", "daemon_fds_at",
                "daemon_rss_kib_at_0", "daemon_rss_kib_at",
                "daemon_pss_kib_at_max", "shims_at_max", "shims_rss_kib_sum", "shims_pss_kib_sum",
                "scale_ping_by_name_last_to_first", "scale_rm_rest_count", "scale_rm_rest_seconds",
                "daemon_rss_kib_after_removal"):
        if key in cove_facts:
            out.append(f"- {key}: {cove_facts[key]}")
    out += ["", "## Every series (min / median / max, ms)", "", all_series(data)]
    errors = [(p, e) for p in ("raw", "cove", "docker") for e in (data.get(p) or {}).get("errors", [])]
    if errors:
        out += ["", "## Errors", ""] + [f"- {p}: {e.splitlines()[0] if e else e}" for p, e in errors]
    return "\n".join(out) + "\n"
