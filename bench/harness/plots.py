"""PNG plots of one run (matplotlib, Agg backend: no display needed).

* ``<stem>-containers.png``: per-operation cost against the number of containers on one
  network: cove's start (API) of container N, cove's endpoint attach with N containers on
  the network, the CNI chain (namespace + ADD) for container N, and the raw limit;
* ``<stem>-networks.png``: cost of the N-th ``network create`` with N-1 networks already
  there, cove and Docker over the API, Podman from its CLI;
* ``<stem>-ops.png``: medians of the main operations, one bar per system.

matplotlib comes with the ``bench`` extra (``make bench-refs``); without it no plot is
written and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import ENGINES, median, rows, samples

COLORS = {"cove": "#1f77b4", "docker": "#d62728", "podman": "#9467bd", "raw": "#2ca02c", "cni": "#ff7f0e"}


def rolling_median(values: list[float], half: int = 5) -> list[float]:
    """Each sample replaced by the median of itself and ``half`` neighbours on each side."""
    out = []
    for i in range(len(values)):
        w = sorted(values[max(0, i - half):i + half + 1])
        n = len(w)
        out.append(w[n // 2] if n % 2 else (w[n // 2 - 1] + w[n // 2]) / 2)
    return out


def _containers(plt: Any, data: dict[str, Any], path: Path) -> bool:
    starts = samples(data, "cove", "scale_start_api")
    cni = samples(data, "cni", "cni_scale_add")
    if not starts and not cni:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    if starts:
        xs = range(1, len(starts) + 1)
        ax.scatter(xs, [v * 1000 for v in starts], s=3, alpha=0.25, color=COLORS["cove"])
        ax.plot(xs, [v * 1000 for v in rolling_median(starts)], color=COLORS["cove"],
                label="cove: start of container N (API create+start), rolling median")
    points = sorted(int(k.rsplit("_", 1)[1]) for k in (data.get("cove") or {}).get("summary", {})
                    if k.startswith("scale_attach_at_"))
    if points:
        ax.plot(points, [(median(data, "cove", f"scale_attach_at_{n}") or 0) * 1000 for n in points], "o-",
                color="#17becf", label="cove: endpoint attach (API connect) with N containers on the network")
    if cni:
        xs = range(1, len(cni) + 1)
        ax.scatter(xs, [v * 1000 for v in cni], s=3, alpha=0.25, color=COLORS["cni"])
        ax.plot(xs, [v * 1000 for v in rolling_median(cni)], color=COLORS["cni"],
                label="CNI bridge+host-local+portmap: netns + ADD of container N")
    raw = median(data, "raw", "raw_netns_endpoint")
    if raw:
        ax.axhline(raw * 1000, color=COLORS["raw"], linestyle="--", label="raw limit: netns + endpoint (pyroute2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("containers on one network (N)")
    ax.set_ylabel("ms per operation")
    ax.set_title("Per-operation cost against the number of containers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _networks(plt: Any, data: dict[str, Any], path: Path) -> bool:
    series = {e: samples(data, e, "netscale_create") for e in ENGINES}
    if not any(series.values()):
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    for engine, values in series.items():
        if values:
            via = (data.get(engine) or {}).get("facts", {}).get("netscale_via", "?")
            xs = range(1, len(values) + 1)
            ax.scatter(xs, [v * 1000 for v in values], s=4, alpha=0.3, color=COLORS[engine])
            ax.plot(xs, [v * 1000 for v in rolling_median(values)], color=COLORS[engine],
                    label=f"{engine} ({'API' if via == 'api' else 'CLI'}), rolling median")
    raw = median(data, "raw", "raw_bridge_create")
    if raw:
        ax.axhline(raw * 1000, color=COLORS["raw"], linestyle="--", label="raw limit: bridge + address + up")
    ax.set_yscale("log")
    ax.set_xlabel("networks (N-th network create, N-1 already there)")
    ax.set_ylabel("ms per network create")
    ax.set_title("Per-operation cost against the number of networks")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _ops(plt: Any, data: dict[str, Any], path: Path) -> bool:
    table = [r for r in rows(data) if any(r.values.values()) or r.ref]
    if not table:
        return False
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(table) + 1.5))
    h = 0.2
    for k, engine in enumerate((*ENGINES, "ref")):
        ys = [i + (k - 1.5) * h for i in range(len(table))]
        if engine == "ref":
            vals = [(r.ref or 0) * 1000 for r in table]
            ax.barh(ys, vals, height=h, color=COLORS["raw"], label="raw limit / CNI (orange rows)")
            for y, r in zip(ys, table):
                if r.ref_label == "CNI" and r.ref:
                    ax.barh([y], [r.ref * 1000], height=h, color=COLORS["cni"])
        else:
            vals = [(r.values[engine] or 0) * 1000 for r in table]
            ax.barh(ys, vals, height=h, color=COLORS[engine], label=engine)
    ax.set_yticks(range(len(table)))
    ax.set_yticklabels([r.op for r in table], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median ms (log scale)")
    ax.set_title("Medians of one run, side by side")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_all(data: dict[str, Any], results: Path, stem: str) -> list[str]:
    """Write the plots next to the JSON; return their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed (make bench-refs): no plots", flush=True)
        return []
    written = []
    for suffix, fn in (("containers", _containers), ("networks", _networks), ("ops", _ops)):
        path = results / f"{stem}-{suffix}.png"
        if fn(plt, data, path):
            written.append(str(path))
    return written
