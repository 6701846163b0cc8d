"""A container's CPU, memory, pids and block I/O counters from its cgroups, in Docker's stats shape.

runc puts each container in ``cgroupsPath: /cove/<id>`` (:mod:`cove.runtime.profile`); where
that lands depends on the machine: cgroup v1 (one hierarchy per controller, e.g.
``/sys/fs/cgroup/memory/cove/<id>``), v2 (one unified tree) or hybrid (v1 controllers plus an
empty v2 tree, as on this project's build machine).  So nothing is assumed: the container's
cgroup paths come from ``/proc/<pid>/cgroup`` and are placed under the mount points
``/proc/self/mountinfo`` lists for each controller (v1 first, the unified tree where a v1
controller is not mounted).  A controller or file that is missing reads as zeros, never as an
error: a stats request must not fail because a machine lacks the memory controller.

The fields and units are moby's (``daemon/stats_unix.go``): CPU times in nanoseconds (v1
``cpuacct.stat`` ticks and v2 microseconds converted), memory in bytes with an unlimited v1
limit capped at the machine's memory, block I/O as ``{major, minor, op, value}`` rows.
``root`` lets unit tests point the reader at a made-up ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import os
from typing import Any

NS_PER_S = 1_000_000_000
#: v1's "no limit" (PAGE_COUNTER_MAX rounded to pages), as ``memory.limit_in_bytes`` shows it
V1_UNLIMITED = 0x7FFFFFFFFFFFF000


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK") or 100
    except (ValueError, OSError):
        return 100


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _int(text: str | None) -> int:
    try:
        return int((text or "").strip() or 0)
    except ValueError:
        return 0


def _keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (``memory.stat``, ``cpu.stat``, ``cpuacct.stat``) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def cgroup_dirs(pid: int, root: str = "/") -> dict[str, str]:
    """Controller name (``memory``, ``cpuacct``...; ``""`` for the v2 tree) -> the directory of
    ``pid``'s cgroup for it, for the controllers that are mounted."""
    proc = _read(os.path.join(root, f"proc/{pid}/cgroup"))
    mounts = _read(os.path.join(root, "proc/self/mountinfo"))
    if not proc or not mounts:
        return {}
    # (controller -> (mount root, mount point)) from mountinfo: "... root mountpoint opts ... - fstype src superopts"
    where: dict[str, tuple[str, str]] = {}
    for line in mounts.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, superopts = tail[0], tail[2].split(",")
        mount_root, point = fields[3], fields[4].replace("\\040", " ")
        if fstype == "cgroup2":
            where.setdefault("", (mount_root, point))
        elif fstype == "cgroup":
            for opt in superopts:
                where.setdefault(opt, (mount_root, point))
    out: dict[str, str] = {}
    for line in proc.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = parts[1].split(",") if parts[1] else [""]
        for ctl in controllers:
            if ctl not in where:
                continue
            mount_root, point = where[ctl]
            rel = os.path.relpath(parts[2], mount_root) if parts[2].startswith(mount_root) else None
            if rel is None or rel.startswith(".."):
                continue
            path = os.path.normpath(os.path.join(root, point.lstrip("/"), "" if rel == "." else rel))
            if os.path.isdir(path):
                out[ctl] = path
    return out


def _file(dirs: dict[str, str], v1: str, name: str) -> str | None:
    d = dirs.get(v1)
    return os.path.join(d, name) if d else None


def _v2(dirs: dict[str, str], name: str) -> str | None:
    d = dirs.get("")
    return os.path.join(d, name) if d and os.path.exists(os.path.join(d, name)) else None


def machine_memory(root: str = "/") -> int:
    for line in (_read(os.path.join(root, "proc/meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            return _int(line.split()[1]) * 1024
    return 0


def system_cpu_usage(root: str = "/") -> int:
    """The host's CPU time in nanoseconds (``/proc/stat``'s first line), the denominator of CPU %."""
    for line in (_read(os.path.join(root, "proc/stat")) or "").splitlines():
        if line.startswith("cpu "):
            ticks = sum(_int(x) for x in line.split()[1:8])
            return ticks * NS_PER_S // _clock_ticks()
    return 0


def online_cpus() -> int:
    try:
        return int(os.sysconf("SC_NPROCESSORS_ONLN"))
    except (ValueError, OSError):
        return os.cpu_count() or 1


def cpu_stats(dirs: dict[str, str], root: str = "/") -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    throttling = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    if "cpuacct" in dirs:
        usage["total_usage"] = _int(_read(_file(dirs, "cpuacct", "cpuacct.usage")))
        percpu = (_read(_file(dirs, "cpuacct", "cpuacct.usage_percpu")) or "").split()
        if percpu:
            usage["percpu_usage"] = [_int(x) for x in percpu]
        ticks = _keyed(_read(_file(dirs, "cpuacct", "cpuacct.stat")))
        hz = _clock_ticks()
        usage["usage_in_usermode"] = ticks.get("user", 0) * NS_PER_S // hz
        usage["usage_in_kernelmode"] = ticks.get("system", 0) * NS_PER_S // hz
    elif _v2(dirs, "cpu.stat"):
        st = _keyed(_read(_v2(dirs, "cpu.stat")))
        usage.update(total_usage=st.get("usage_usec", 0) * 1000, usage_in_usermode=st.get("user_usec", 0) * 1000,
                     usage_in_kernelmode=st.get("system_usec", 0) * 1000)
        throttling.update(periods=st.get("nr_periods", 0), throttled_periods=st.get("nr_throttled", 0),
                          throttled_time=st.get("throttled_usec", 0) * 1000)
    if "cpu" in dirs:
        st = _keyed(_read(_file(dirs, "cpu", "cpu.stat")))
        throttling.update(periods=st.get("nr_periods", 0), throttled_periods=st.get("nr_throttled", 0),
                          throttled_time=st.get("throttled_time", 0))
    return {"cpu_usage": usage, "system_cpu_usage": system_cpu_usage(root), "online_cpus": online_cpus(),
            "throttling_data": throttling}


def memory_stats(dirs: dict[str, str], root: str = "/") -> dict[str, Any]:
    host = machine_memory(root)
    if "memory" in dirs:
        limit = _int(_read(_file(dirs, "memory", "memory.limit_in_bytes")))
        if host and (limit >= V1_UNLIMITED or limit > host or limit == 0):
            limit = host
        return {"usage": _int(_read(_file(dirs, "memory", "memory.usage_in_bytes"))),
                "max_usage": _int(_read(_file(dirs, "memory", "memory.max_usage_in_bytes"))),
                "failcnt": _int(_read(_file(dirs, "memory", "memory.failcnt"))),
                "stats": _keyed(_read(_file(dirs, "memory", "memory.stat"))),
                "limit": limit}
    if _v2(dirs, "memory.current"):
        raw = (_read(_v2(dirs, "memory.max")) or "max").strip()
        limit = host if raw == "max" else _int(raw)
        return {"usage": _int(_read(_v2(dirs, "memory.current"))),
                "stats": _keyed(_read(_v2(dirs, "memory.stat"))), "limit": limit}
    return {"usage": 0, "limit": 0, "stats": {}}


def pids_stats(dirs: dict[str, str]) -> dict[str, Any]:
    path = _file(dirs, "pids", "pids.current") if "pids" in dirs else _v2(dirs, "pids.current")
    if path is None:
        return {"current": 0}
    out: dict[str, Any] = {"current": _int(_read(path))}
    limit = (_read(os.path.join(os.path.dirname(path), "pids.max")) or "max").strip()
    if limit.isdigit():
        out["limit"] = int(limit)
    return out


def _v1_rows(text: str | None) -> list[dict[str, Any]]:
    rows = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            rows.append({"major": _int(major), "minor": _int(minor), "op": parts[1], "value": _int(parts[2])})
    return rows


def blkio_stats(dirs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"io_service_bytes_recursive": [], "io_serviced_recursive": []}
    if "blkio" in dirs:
        for key, name in (("io_service_bytes_recursive", "io_service_bytes_recursive"),
                          ("io_serviced_recursive", "io_serviced_recursive")):
            rows = _v1_rows(_read(_file(dirs, "blkio", f"blkio.{name}")))
            out[key] = rows or _v1_rows(_read(_file(dirs, "blkio", f"blkio.throttle.{name}")))
    elif _v2(dirs, "io.stat"):
        for line in (_read(_v2(dirs, "io.stat")) or "").splitlines():
            parts = line.split()
            if not parts or ":" not in parts[0]:
                continue
            major, _, minor = parts[0].partition(":")
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            for op, b, n in (("read", "rbytes", "rios"), ("write", "wbytes", "wios")):
                dev = {"major": _int(major), "minor": _int(minor), "op": op}
                out["io_service_bytes_recursive"].append({**dev, "value": _int(kv.get(b))})
                out["io_serviced_recursive"].append({**dev, "value": _int(kv.get(n))})
    return out


def container_stats(pid: int, root: str = "/") -> dict[str, Any]:
    """``cpu_stats``, ``memory_stats``, ``pids_stats``, ``blkio_stats`` of the container whose init
    is ``pid`` (zeros for what this machine does not count)."""
    dirs = cgroup_dirs(pid, root) if pid > 0 else {}
    return {"cpu_stats": cpu_stats(dirs, root), "memory_stats": memory_stats(dirs, root),
            "pids_stats": pids_stats(dirs), "blkio_stats": blkio_stats(dirs)}
