"""Docker's stats JSON as data: the pieces the engine (:mod:`cove.engine.stats`), the API route
and the CLI share, pure functions with no I/O.

Shapes follow moby's ``api/types/container/stats.go``: a sample has ``read``, ``name``, ``id``,
``cpu_stats``, ``memory_stats``, ``pids_stats``, ``blkio_stats``, ``networks``; the API adds
``preread``/``precpu_stats`` from the sample before (:func:`with_previous`).  The CLI's columns
(CPU %, MEM USAGE / LIMIT, NET I/O, BLOCK I/O, PIDS) are computed as docker's CLI computes them
(:func:`row`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .kernel.api import LinkStats

#: Go's zero time, as Docker writes ``read`` of a container that is not running
ZERO_TIME = "0001-01-01T00:00:00Z"


def network_json(counters: dict[str, LinkStats]) -> dict[str, dict[str, int]]:
    """Docker's ``networks`` object: one entry per interface but ``lo``, its eight counters."""
    return {name: {f: getattr(s, f) for f in LinkStats.__dataclass_fields__}
            for name, s in sorted(counters.items()) if name != "lo"}


def _zero_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(name: str, cid: str) -> dict[str, Any]:
    """What Docker answers for a container that is not running."""
    return {"name": "/" + name, "id": cid, "read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                            "io_queue_recursive": None, "io_service_time_recursive": None,
                            "io_wait_time_recursive": None, "io_merged_recursive": None,
                            "io_time_recursive": None, "sectors_recursive": None},
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _zero_cpu(), "precpu_stats": _zero_cpu(),
            "memory_stats": {}}


def with_previous(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """``now`` with Docker's ``preread``/``precpu_stats`` taken from the sample ``before`` (the
    CLI's CPU % is the difference of the two)."""
    out = dict(now)
    if before is None or before.get("read", ZERO_TIME) == ZERO_TIME or now.get("read", ZERO_TIME) == ZERO_TIME:
        out.setdefault("preread", ZERO_TIME)
        out.setdefault("precpu_stats", _zero_cpu())
        return out
    out["preread"] = before["read"]
    out["precpu_stats"] = before.get("cpu_stats") or _zero_cpu()
    return out


def rfc3339_nano(t: float) -> str:
    whole = datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int((t % 1) * 1e9):09d}Z"


# the docker CLI's columns -------------------------------------------------------------------

#: ``docker stats``' default table and each field's column title
DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}
#: ``cove stats --interfaces``: one row per interface, every counter
INTERFACE_FIELDS = tuple(LinkStats.__dataclass_fields__)


def decimal_size(size: float) -> str:
    """go-units' HumanSizeWithPrecision(size, 3): "0B", "1.02kB", "20.6kB"."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000.0 and index < len(units) - 1:
        size /= 1000.0
        index += 1
    return f"{size:.3g}{units[index]}"


def binary_size(size: float) -> str:
    """go-units' BytesSize: "1.5MiB", "23.54GiB" (4 significant digits)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    index = 0
    while size >= 1024.0 and index < len(units) - 1:
        size /= 1024.0
        index += 1
    return f"{size:.4g}{units[index]}"


def cpu_percent(s: dict[str, Any]) -> float:
    """docker's calculateCPUPercentUnix: the container's share of the host's CPU time between
    ``precpu_stats`` and ``cpu_stats``, times the CPUs online."""
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return float(cpu_delta / system_delta * cpus * 100.0)
    return 0.0


def memory_usage(s: dict[str, Any]) -> int:
    """docker's calculateMemUsageUnixNoCache: usage less the inactive page cache."""
    mem = s.get("memory_stats") or {}
    usage, stats = int(mem.get("usage") or 0), mem.get("stats") or {}
    v1 = stats.get("total_inactive_file")
    if v1 is not None and v1 < usage:
        return usage - int(v1)
    v2 = stats.get("inactive_file", 0)
    return usage - int(v2) if v2 < usage else usage


def net_io(s: dict[str, Any]) -> tuple[int, int]:
    """(received, sent) bytes over every interface."""
    nets = (s.get("networks") or {}).values()
    return sum(int(n.get("rx_bytes", 0)) for n in nets), sum(int(n.get("tx_bytes", 0)) for n in nets)


def block_io(s: dict[str, Any]) -> tuple[int, int]:
    """(read, written) bytes, as docker's calculateBlockIO."""
    read = write = 0
    for row in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(row.get("op", ""))[:1].lower()
        if op == "r":
            read += int(row.get("value", 0))
        elif op == "w":
            write += int(row.get("value", 0))
    return read, write


def row(s: dict[str, Any], container: str, trunc: bool = True) -> dict[str, str]:
    """One sample as the docker CLI's stats row (the fields of :data:`HEADERS`)."""
    mem = s.get("memory_stats") or {}
    used, limit = memory_usage(s), int(mem.get("limit") or 0)
    rx, tx = net_io(s)
    rd, wr = block_io(s)
    cid = str(s.get("id", ""))
    return {"Container": container, "ID": cid[:12] if trunc else cid, "Name": str(s.get("name", "")).lstrip("/"),
            "CPUPerc": f"{cpu_percent(s):.2f}%", "MemUsage": f"{binary_size(used)} / {binary_size(limit)}",
            "MemPerc": f"{used / limit * 100.0 if limit else 0.0:.2f}%",
            "NetIO": f"{decimal_size(rx)} / {decimal_size(tx)}", "BlockIO": f"{decimal_size(rd)} / {decimal_size(wr)}",
            "PIDs": str(int((s.get("pids_stats") or {}).get("current") or 0))}


def interface_rows(s: dict[str, Any], container: str) -> list[list[str]]:
    """``cove stats --interfaces``: [container, interface, the eight counters] per interface."""
    return [[container, name, *(str(int(n.get(f, 0))) for f in INTERFACE_FIELDS)]
            for name, n in sorted((s.get("networks") or {}).items())]
