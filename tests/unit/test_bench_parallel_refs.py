"""bench/parallel_refs.py's tables (pure formatting: no daemon, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import parallel_refs  # noqa: E402


def _run(ops_per_s: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {"version": "v1 | x", "clients": 32, "rounds": 4, "ops": 900, "seconds": 10.0, "ops_per_s": ops_per_s,
            "p50_ms": 12.0, "p99_ms": p99, "p99_ms_by_op": {"create": p99, "rm": 5.0}, "responses_5xx": 3,
            "responses_5xx_outside_clash": 0, "duplicate_count": 0, "duplicates": [],
            "clash_statuses": {}, "statuses": {"create 201": 128, "clash-create 409": 3}, "errors": [],
            "networks": {"network_create_ms": [4.0, 6.0], "statuses": {"network_create 201": 2}}, **extra}


def test_one_column_per_system_in_order_and_failures_shown() -> None:
    results = {"podman": {"failed": "exited 1 without results"}, "cove": _run(90.0, 120.0),
               "docker": _run(30.0, 900.0, create_extra={"StopTimeout": 0})}
    t = parallel_refs.table(results).splitlines()
    assert t[0] == "| | cove | docker | podman |"
    row = {line.split(" | ")[0].lstrip("| "): line for line in t[2:]}
    assert "**90.0**" in row["**operations/s**"] and "**30.0**" in row["**operations/s**"]
    assert "**900.0**" in row["**p99 (ms)** (goal < 300)"]
    assert "failed: exited 1" in row["p50 (ms)"]
    assert "v1 / x" in row["version"]            # no stray column separators
    assert row["network create, slowest of 2 (ms)"].startswith("| network create, slowest of 2 (ms) | 6 | 6 |")
    ops = parallel_refs.op_table(results).splitlines()
    assert ops[0] == "| p99 by operation (ms) | cove | docker |" and "| create | 120.0 | 900.0 |" in ops
    d = parallel_refs.details(results)
    assert '{"StopTimeout": 0}' in d and "**podman**" not in d


def test_stem_keeps_earlier_results(tmp_path: Path) -> None:
    assert parallel_refs._stem(tmp_path, "2026-01-01") == "2026-01-01-parallel-refs"
    (tmp_path / "2026-01-01-parallel-refs.md").write_text("x")
    assert parallel_refs._stem(tmp_path, "2026-01-01") == "2026-01-01-parallel-refs-2"


def test_clash_answers_keep_create_and_start_apart() -> None:
    run = _run(1.0, 1.0)
    run["statuses"] = {"clash-create 409": 121, "clash-start 409": 3, "clash-start 204": 1, "rm 204": 4}
    row = next(line for line in parallel_refs.table({"cove": run}).splitlines() if line.startswith("| clash answers"))
    assert row == "| clash answers | create 409×121, start 204×1, start 409×3 |"
