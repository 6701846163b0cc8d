"""The bench's pure helpers (summaries, targets, report formatting): no kernel, no timing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from harness import report  # noqa: E402
from harness.plots import rolling_median  # noqa: E402
from harness.stats import summarize  # noqa: E402


def _part(**series: list[float]) -> dict[str, Any]:
    return {"samples": series,
            "summary": {k: s.as_dict() for k, v in series.items() if (s := summarize(v))},
            "facts": {}, "errors": []}


def _data() -> dict[str, Any]:
    cove = _part(net_create=[0.010, 0.012, 0.011], run_to_ping_name=[0.050], connect_api=[0.006],
                 cli_version=[0.030], scale_attach_at_10=[0.006], scale_attach_at_1000=[0.012],
                 scale_start_api=[0.02] * 1000)
    cove["facts"].update(daemon_rss_kib_at_0=50_000, daemon_rss_kib_at={"10": 50_100, "1000": 60_000})
    cni = _part(cni_scale_add=[0.05] * 200)
    cni["facts"].update(cni_scale_total_seconds=10.0, cni_scale_containers=200)
    return {"meta": {"date": "2026-01-01"},
            "cove": cove, "docker": _part(net_create=[0.100], run_to_ping_name=[0.300]),
            "podman": _part(net_create=[0.050], run_to_ping_name=[0.200]),
            "raw": _part(raw_endpoint=[0.004]), "cni": cni,
            "iperf": _part(iperf_raw_c2c=[10e9], iperf_cove_c2c=[9.6e9])}


def test_summaries_and_windows() -> None:
    s = summarize([3.0, 1.0, 2.0])
    assert s is not None and (s.n, s.min, s.median, s.max) == (3, 1.0, 2.0, 3.0)
    assert summarize([]) is None
    values = [float(i) for i in range(1, 101)]
    assert report.window_median(values, 10) == 10.0
    assert report.window_median(values, 100) == 97.5  # the window is cut at the end
    assert report.window_median(values, 101) is None
    assert rolling_median([1.0, 100.0, 1.0, 1.0], half=1) == [50.5, 1.0, 1.0, 1.0]


def test_targets_judged_from_one_run() -> None:
    got = {t.name: t for t in report.targets(_data())}
    assert got["network create ≤ 0.1× Docker"].met is False  # 11 ms vs 100 ms: 0.11x
    assert got["network create ≤ 0.33× Podman"].met is True
    assert got["run -d → ping by name ≤ 0.15× Docker"].met is False  # 0.17x
    assert got["endpoint attach p50 ≤ 2× raw"].met is True
    assert got["attach flat: at 1,000 ≤ 1.5× at 10"].met is False  # 2x
    assert got["1,000 containers < CNI for 200"].met is False  # 20 s vs 10 s
    assert got["CLI start-up ≤ 60 ms"].met is True
    assert got["daemon RSS ≤ 100 MB at 1,000"].met is True and got["daemon RSS ≤ 100 MB at 1,000"].note == ""
    assert got["data path ≥ 95% of raw (c2c)"].measured.startswith("96%")


def test_missing_references_are_not_judged() -> None:
    data = _data()
    del data["docker"], data["iperf"]
    data["cove"]["facts"]["daemon_rss_kib_at"] = {"100": 51_000}
    got = {t.name: t for t in report.targets(data)}
    assert got["network create ≤ 0.1× Docker"].met is None
    assert got["data path ≥ 95% of raw (c2c)"].met is None
    rss = got["daemon RSS ≤ 100 MB at 1,000"]
    assert rss.note == "extrapolated from 0 and 100 containers" and rss.measured == "58.6 MiB"


def test_markdown_and_tables() -> None:
    md = report.markdown(_data())
    assert "| network create (CLI) | 11.0 | 100.0 | 50.0 | 0.11× | 0.22× | – |" in md
    assert "| data path ≥ 95% of raw (c2c) | 96% (9.60 Gbit/s vs 10.00 Gbit/s) | met |" in md
    assert "| 1,000 | 12.0 |" in md  # the scale table
    assert report.fmt_ms(None) == "–" and report.fmt_ms(0.0012) == "1.20" and report.fmt_ms(2.5) == "2500"


def test_result_stem_keeps_history(tmp_path: Path) -> None:
    assert report.result_stem(tmp_path, "2026-01-01", quick=False) == "2026-01-01"
    (tmp_path / "2026-01-01.json").write_text("{}")
    assert report.result_stem(tmp_path, "2026-01-01", quick=False) == "2026-01-01-2"
    assert report.result_stem(tmp_path, "2026-01-01", quick=True) == "2026-01-01-quick"


def test_rounds_without_reply_are_noted() -> None:
    data = _data()
    data["podman"] = _part(net_create=[0.050], run_to_ping_name=[0.200], ping_failed_name=[1.0, 1.0])
    got = {t.name: t for t in report.targets(data)}
    assert got["run -d → ping by name ≤ 0.3× Podman"].note == "podman: 2 round(s) without a reply in 30 s"
    assert "| podman | ping_failed_name (count) | 2 |" in report.markdown(data)


def test_issue17_targets_table() -> None:
    """One row per target of issue #17, judged from one run; missing figures are 'not judged'."""
    from harness import targets

    data = _data()
    data["cove"] = _part(net_create=[0.020], net_create_api=[0.0125], ps_cli=[0.030], ps_api=[0.004],
                         rm_f_api=[0.070], stop_api=[0.030], run_to_ping_name=[0.050],
                         scale_attach_at_10=[0.010], scale_attach_at_1000=[0.011], scale_start_api=[0.01] * 1000)
    data["raw"] = _part(raw_bridge_create=[0.005], raw_teardown=[0.030])
    data["docker"] = _part(net_create=[0.100], net_create_api=[0.060], run_to_ping_name=[0.300])
    dns = {"meta": {"date": "2026-12-05"},
           "summary": {"cove": {"names_1_qps": {"qps": {"median": 20000.0}},
                                "names_1_lat": {"p99_ms": {"median": 1.5}}}}}
    old = {"meta": {"date": "2026-11-23"}, "summary": {"docker": {"names_1_qps": {"qps": {"median": 10000.0}}}}}
    rows = {r.target: r for r in targets.rows(data, dns, old)}
    assert rows["CLI overhead: network create"].met is True          # +7.5 ms
    assert rows["CLI overhead: network create"].docker == "+40.0 ms"
    assert rows["CLI overhead: ps"].met is False                      # +26 ms
    assert rows["CLI overhead: exec"].met is None
    assert rows["daemon: network create"].met is False                # 2.5x raw
    assert rows["daemon: container rm -f"].met is True                # 70 <= 1.5*30 + 30
    assert rows["attach flat: at 1,000 vs at 10"].met is True
    assert rows["CLI: network create vs Docker"].met is True          # 0.2x
    assert rows["CLI: run -d → ping by name vs Podman"].met is True   # 0.25x (50 vs 200 ms) <= 0.3x
    assert rows["CLI: rm -f vs Docker"].met is None                    # no Docker rm_f figure
    assert rows["1,000 containers on one network, one client after the other"].met is True   # 10 s
    assert rows["1,000 containers on one network, N clients at once"].met is None   # no burst in this run
    assert rows["DNS queries/s vs Docker"].met is True and "2026-11-23" in rows["DNS queries/s vs Docker"].verdict
    assert rows["DNS p99 latency (500 q/s)"].met is True
    assert rows["daemon fds per container"].met is None
    table = targets.table(data, dns, old)
    assert table.count("\n") == len(rows) + 1 and "| not judged" in table


def test_the_burst_and_the_descriptors_of_the_scale_run_are_judged() -> None:
    """The burst of N clients has a row of its own; fds per container are judged by kind."""
    from harness import targets

    facts = {"scale_burst_start_seconds": 18.5, "scale_burst_rm_seconds": 9.0, "scale_burst_clients": 4,
             "scale_burst_containers": 1000, "daemon_fds_at": {"1000": 3040}, "daemon_fds_at_0": 40,
             "daemon_fd_kinds_at_0": {"socket": 20, "file": 10, "pidfd": 2},
             "daemon_fd_kinds_at_top": {"socket": 2020, "file": 10, "pidfd": 1002}}
    rows = {r.target: r for r in targets.scale_rows({"cove": {"facts": facts, "series": {}}})}
    burst = rows["1,000 containers on one network, 4 clients at once"]
    assert burst.met is True and burst.measured == "18.5 s (removal 9.0 s)"
    fds = rows["daemon fds per container"]
    assert fds.met is True and "pidfd 1.00" in fds.verdict and "socket 2.00" in fds.verdict
    facts["daemon_fd_kinds_at_top"] = {**facts["daemon_fd_kinds_at_top"], "file": 1010}
    fds = {r.target: r for r in targets.scale_rows({"cove": {"facts": facts, "series": {}}})}["daemon fds per container"]
    assert fds.met is False and "beyond the need: file 1.00" in fds.verdict
    facts["scale_burst_failed"] = 1
    burst = {r.target: r for r in targets.scale_rows({"cove": {"facts": facts, "series": {}}})}[
        "1,000 containers on one network, 4 clients at once"]
    assert burst.met is None and "1 client(s) failed" in burst.verdict


def test_the_overlay_rows_come_from_the_overlayscale_bench_when_there_is_one() -> None:
    from harness import targets

    assert targets.overlay_rows(None) == []
    ov = {"hosts": 100, "endpoints": 100, "cold_s": 1.34, "add_ms": [11.0, 191.0], "remove_ms": [14.0, 26.0],
          "revoke_ms": 242.0}
    rows = {r.target: r for r in targets.overlay_rows(ov)}
    assert rows["overlay: cold convergence (100 hosts × 100 endpoints)"].met is True
    assert rows["overlay: one endpoint added/removed → in the kernel (max)"].measured.startswith("191 ms")
    assert rows["overlay: a host's lease revoked → its endpoints gone"].met is True
    slow = targets.overlay_rows({**ov, "cold_s": 15.2, "add_ms": [2616.0], "remove_ms": [], "revoke_ms": None})
    assert [r.met for r in slow] == [False, False, None]


def test_issue17_network_rows_use_the_raw_bridge_and_firewall_figure_when_the_run_has_one() -> None:
    from harness import targets

    data = _data()
    data["cove"] = _part(net_create_api=[0.0090], net_rm_api=[0.120])
    data["raw"] = _part(raw_bridge_create=[0.003], raw_bridge_fw_create=[0.005], raw_bridge_fw_rm=[0.050])
    rows = {r.target: r for r in targets.rows(data, None, None)}
    create, rm = rows["daemon: network create"], rows["daemon: network rm"]
    assert create.met is True and "raw bridge + firewall" in create.goal      # 9 <= 2 x 5 (3x the bridge alone)
    assert "1.80×" in create.measured and not create.notes
    assert rm.met is False and "2.40×" in rm.measured                          # 120 > 2 x 50
    del data["raw"]["summary"]["raw_bridge_fw_create"], data["raw"]["summary"]["raw_bridge_fw_rm"]
    rows = {r.target: r for r in targets.rows(data, None, None)}
    assert rows["daemon: network create"].met is False and "daemon: network rm" not in rows


def test_a_reference_that_failed_rounds_of_a_scenario_is_not_judged_against() -> None:
    """Podman's exec hung in three of ten rounds of run -> ping (2026-12-07-5): its median
    (10.4 s, the timeouts) made cove's row "met" at 0.01x; such a row is not judged."""
    from harness import targets

    data = _data()
    data["podman"]["errors"] = ["run_to_ping_name round 2: podman: no ping reply from bench-name-2 within 30s"]
    rows = {r.target: r for r in targets.rows(data)}
    row = rows["CLI: run -d → ping by name vs Podman"]
    assert row.met is None and "podman failed 1 round(s) of this scenario" in row.verdict
    assert rows["CLI: network create vs Podman"].met is True           # its other scenarios still count
