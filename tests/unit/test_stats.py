"""``GET /containers/{id}/stats`` and ``cove stats`` on the fake kernel: what a user reads.

Traffic is made with :meth:`FakeKernel.traffic` (the sender's link counts tx, its veth peer rx),
so the numbers a user sees can be checked exactly: the container's own ``eth0`` (rx what it
received, tx what it sent, never swapped), no ``lo``, no ``networks`` on the host's network,
Docker's empty answer for a stopped container, 4xx for bad flags.  The cgroup reader runs on
made-up v1 and v2 trees; the CLI's columns are docker's arithmetic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.http import Request, Response, error_response
from cove.daemon.routes import build_router
from cove.daemon.routes import stats as stats_route
from cove.errors import CoveError
from cove.runtime import cgroups
from cove.stats import ZERO_TIME, binary_size, decimal_size, row, with_previous

from .enginefakes import Rig

FRAME = 1042            # one ping -s 1000: 1000 + ICMP 8 + IPv4 20 + Ethernet 14


def fake_cgroups(pid: int) -> dict[str, Any]:
    return {"cpu_stats": {"cpu_usage": {"total_usage": pid * 10}, "system_cpu_usage": 1000, "online_cpus": 2},
            "memory_stats": {"usage": 4096, "limit": 8192, "stats": {}}, "pids_stats": {"current": 1},
            "blkio_stats": {"io_service_bytes_recursive": []}}


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_route, "INTERVAL", 0.0)


def call(router: Any, path: str, **query: str) -> Response:
    req = Request(method="GET", path=path, query={k: [v] for k, v in query.items()}, headers={}, body=b"")
    try:
        resp: Response = router.dispatch(req)
        return resp
    except CoveError as exc:
        return error_response(exc)


def rig_with(tmp_path: Path, *containers: tuple[str, str]) -> Rig:
    rig = Rig(tmp_path)
    rig.engine.stats.cgroup_reader = fake_cgroups
    r = build_router(rig.engine)
    assert post(r, "/networks/create", {"Name": "web"}).status == 201
    for name, mode in containers:
        resp = post(r, "/containers/create", {"Image": "busybox", "Cmd": ["sh"], "HostConfig": {"NetworkMode": mode}},
                    name=name)
        assert resp.status == 201, resp.body
        assert post(r, f"/containers/{name}/start").status == 204
    return rig


def post(router: Any, path: str, body: Any = None, **query: str) -> Response:
    req = Request(method="POST", path=path, query={k: [v] for k, v in query.items()}, headers={},
                  body=json.dumps(body).encode() if body is not None else b"")
    try:
        resp: Response = router.dispatch(req)
        return resp
    except CoveError as exc:
        return error_response(exc)


def netns_of(rig: Rig, name: str) -> str:
    return rig.engine.find_container(name).state.netns


def test_a_containers_traffic_shows_on_its_own_eth0(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    r = build_router(rig.engine)
    before = json.loads(call(r, "/containers/a/stats", stream="0", **{"one-shot": "1"}).body)
    assert set(before["networks"]) == {"eth0"}                          # lo is not a network
    rig.kernel.traffic(netns_of(rig, "a"), "eth0", 20 * FRAME, 20)     # a sends 20 pings
    host_end = next(lk.name for lk in rig.kernel.host.links() if lk.kind == "veth")
    rig.kernel.traffic(None, host_end, 20 * FRAME, 20, dropped=1)      # 20 replies come back, one lost
    after = json.loads(call(r, "/containers/a/stats", stream="0", **{"one-shot": "1"}).body)
    eth0 = after["networks"]["eth0"]
    assert eth0["tx_bytes"] - before["networks"]["eth0"]["tx_bytes"] == 20 * FRAME
    assert eth0["tx_packets"] == 20 and eth0["rx_packets"] == 19 and eth0["rx_dropped"] == 1
    assert eth0["rx_bytes"] == 19 * FRAME
    assert after["name"] == "/a" and after["read"] != ZERO_TIME
    assert after["memory_stats"]["usage"] == 4096 and after["pids_stats"]["current"] == 1
    assert row(after, "a")["NetIO"] == "19.8kB / 20.8kB"


def test_host_network_has_no_networks_and_container_mode_shows_the_others(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"), ("h", "host"), ("side", "container:a"))
    rig.kernel.traffic(netns_of(rig, "a"), "eth0", 500, 5)
    r = build_router(rig.engine)
    h = json.loads(call(r, "/containers/h/stats", stream="false").body)
    assert "networks" not in h and h["read"] != ZERO_TIME
    side = json.loads(call(r, "/containers/side/stats", stream="false").body)
    assert side["networks"]["eth0"]["tx_bytes"] == 500


def test_stopped_container_gets_dockers_empty_stats(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    rig.engine.stop_container("a", 0)
    r = build_router(rig.engine)
    for query in ({"stream": "false"}, {"stream": "false", "one-shot": "true"}):
        resp = call(r, "/containers/a/stats", **query)
        body = json.loads(resp.body)
        assert resp.status == 200 and body["read"] == ZERO_TIME and body["preread"] == ZERO_TIME
        assert "networks" not in body and body["name"] == "/a" and body["memory_stats"] == {}
    resp = call(r, "/containers/a/stats")                       # streamed: empty stats each tick
    assert json.loads(next(iter(resp.stream or [])))["read"] == ZERO_TIME


@pytest.mark.parametrize("query,status,words", [
    ({"stream": "true", "one-shot": "true"}, 400, "stream=true and one-shot=true"),
    ({"stream": "maybe"}, 400, "invalid stream"),
    ({"one-shot": "x", "stream": "0"}, 400, "invalid one-shot"),
])
def test_bad_flags_are_a_4xx_naming_the_field(tmp_path: Path, query: dict[str, str], status: int, words: str) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    resp = call(build_router(rig.engine), "/containers/a/stats", **query)
    assert resp.status == status and words in json.loads(resp.body)["message"]


def test_unknown_container_is_404(tmp_path: Path) -> None:
    rig = rig_with(tmp_path)
    resp = call(build_router(rig.engine), "/containers/nope/stats", stream="0")
    assert resp.status == 404 and "No such container: nope" in json.loads(resp.body)["message"]


def test_stream_pairs_each_sample_with_the_one_before(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    resp = call(build_router(rig.engine), "/containers/a/stats")
    lines = iter(resp.stream or [])
    first = json.loads(next(lines))
    rig.kernel.traffic(netns_of(rig, "a"), "eth0", 1000, 1)
    second = json.loads(next(lines))
    assert second["preread"] == first["read"] and second["precpu_stats"] == first["cpu_stats"]
    assert second["networks"]["eth0"]["tx_bytes"] == first["networks"]["eth0"]["tx_bytes"] + 1000
    rig.engine.remove_container("a", force=True)
    assert list(lines) == []                                    # the stream ends with the container


def test_no_stream_answer_has_a_previous_sample_for_cpu(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    body = json.loads(call(build_router(rig.engine), "/containers/a/stats", stream="0").body)
    assert body["preread"] != ZERO_TIME and body["precpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_a_stopped_container_reads_no_counters(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, ("a", "web"))
    path = netns_of(rig, "a")
    rig.engine.stop_container("a", 0)
    rig.kernel.journal.clear()
    rig.engine.container_stats("a")
    assert not [j for j in rig.kernel.journal if "counters" in j] and path not in rig.kernel.namespaces


# the CLI's columns -----------------------------------------------------------------------------

def test_columns_are_dockers_arithmetic() -> None:
    before = {"read": "t0", "cpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000}}
    now = {"read": "t1", "id": "0123456789abcdef", "name": "/web",
           "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
           "memory_stats": {"usage": 3 * 1024 * 1024, "limit": 12 * 1024 * 1024,
                            "stats": {"total_inactive_file": 1024 * 1024}},
           "pids_stats": {"current": 3},
           "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 1500},
                                                          {"op": "write", "value": 20}]},
           "networks": {"eth0": {"rx_bytes": 20840, "tx_bytes": 1000}, "eth1": {"rx_bytes": 0, "tx_bytes": 24}}}
    r = row(with_previous(now, before), "web")
    assert r == {"Container": "web", "ID": "0123456789ab", "Name": "web", "CPUPerc": "40.00%",
                 "MemUsage": "2MiB / 12MiB", "MemPerc": "16.67%", "NetIO": "20.8kB / 1.02kB",
                 "BlockIO": "1.5kB / 20B", "PIDs": "3"}
    assert decimal_size(0) == "0B" and binary_size(25276071936) == "23.54GiB"


def test_cli_renders_docker_table_and_interfaces() -> None:
    from cove.cli.stats import render

    s = {"id": "ab" * 32, "name": "/a", "networks": {"eth0": {"rx_bytes": 7, "rx_packets": 1, "rx_errors": 0,
                                                               "rx_dropped": 2, "tx_bytes": 9, "tx_packets": 3,
                                                               "tx_errors": 0, "tx_dropped": 0}}}
    text = render([("a", s)], None, False)
    assert re.split(r"\s{2,}", text.splitlines()[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT",
                                                         "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    assert "7B / 9B" in text.splitlines()[1]
    lines = render([("a", s)], None, True).splitlines()
    assert lines[0].split() == ["CONTAINER", "INTERFACE", "RX", "BYTES", "RX", "PACKETS", "RX", "ERRORS", "RX",
                                "DROPPED", "TX", "BYTES", "TX", "PACKETS", "TX", "ERRORS", "TX", "DROPPED"]
    assert lines[1].split() == ["a", "eth0", "7", "1", "0", "2", "9", "3", "0", "0"]
    assert json.loads(render([("a", s)], "json", False))["NetIO"] == "7B / 9B"
    assert render([("a", s)], "{{.Name}}: {{.NetIO}}", False) == "a: 7B / 9B"


# cgroups ------------------------------------------------------------------------------------------

def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_cgroup_v1_counters(tmp_path: Path) -> None:
    cg = "/cove/abc"
    write(tmp_path, "proc/42/cgroup", f"4:memory:{cg}\n2:cpuacct:{cg}\n1:cpu:{cg}\n8:pids:{cg}\n7:blkio:{cg}\n0::{cg}\n")
    write(tmp_path, "proc/self/mountinfo", "\n".join(
        f"3{i} 23 0:2{i} / /sys/fs/cgroup/{c} rw - cgroup cgroup rw,{c}" for i, c in
        enumerate(["memory", "cpuacct", "cpu", "pids", "blkio"])) + "\n40 23 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    write(tmp_path, "proc/meminfo", "MemTotal:       1000 kB\n")
    write(tmp_path, "proc/stat", "cpu  1 2 3 4 5 6 7 8 9\ncpu0 1 1 1 1 1 1 1\n")
    base = "sys/fs/cgroup"
    write(tmp_path, f"{base}/memory{cg}/memory.usage_in_bytes", "2048\n")
    write(tmp_path, f"{base}/memory{cg}/memory.limit_in_bytes", f"{cgroups.V1_UNLIMITED}\n")
    write(tmp_path, f"{base}/memory{cg}/memory.stat", "total_inactive_file 1024\ncache 5\n")
    write(tmp_path, f"{base}/cpuacct{cg}/cpuacct.usage", "5000\n")
    write(tmp_path, f"{base}/cpuacct{cg}/cpuacct.usage_percpu", "2000 3000 \n")
    write(tmp_path, f"{base}/cpu{cg}/cpu.stat", "nr_periods 3\nnr_throttled 1\nthrottled_time 99\n")
    write(tmp_path, f"{base}/pids{cg}/pids.current", "4\n")
    write(tmp_path, f"{base}/pids{cg}/pids.max", "max\n")
    write(tmp_path, f"{base}/blkio{cg}/blkio.throttle.io_service_bytes_recursive", "8:0 Read 10\n8:0 Write 20\nTotal 30\n")
    s = cgroups.container_stats(42, str(tmp_path))
    assert s["memory_stats"]["usage"] == 2048 and s["memory_stats"]["limit"] == 1000 * 1024   # capped at the host's
    assert s["memory_stats"]["stats"]["total_inactive_file"] == 1024
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 5000
    assert s["cpu_stats"]["cpu_usage"]["percpu_usage"] == [2000, 3000]
    assert s["cpu_stats"]["throttling_data"] == {"periods": 3, "throttled_periods": 1, "throttled_time": 99}
    assert s["cpu_stats"]["system_cpu_usage"] > 0
    assert s["pids_stats"] == {"current": 4}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "Read", "value": 10},
                                                              {"major": 8, "minor": 0, "op": "Write", "value": 20}]


def test_cgroup_v2_counters(tmp_path: Path) -> None:
    write(tmp_path, "proc/7/cgroup", "0::/cove/xyz\n")
    write(tmp_path, "proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    d = "sys/fs/cgroup/cove/xyz"
    write(tmp_path, f"{d}/cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 0\n")
    write(tmp_path, f"{d}/memory.current", "4096\n")
    write(tmp_path, f"{d}/memory.max", "8192\n")
    write(tmp_path, f"{d}/memory.stat", "inactive_file 100\n")
    write(tmp_path, f"{d}/pids.current", "2\n")
    write(tmp_path, f"{d}/pids.max", "50\n")
    write(tmp_path, f"{d}/io.stat", "8:0 rbytes=11 wbytes=22 rios=1 wios=2 dbytes=0 dios=0\n")
    s = cgroups.container_stats(7, str(tmp_path))
    assert s["cpu_stats"]["cpu_usage"] == {"total_usage": 7000, "usage_in_usermode": 5000, "usage_in_kernelmode": 2000}
    assert s["memory_stats"] == {"usage": 4096, "limit": 8192, "stats": {"inactive_file": 100}}
    assert s["pids_stats"] == {"current": 2, "limit": 50}
    assert [(r["op"], r["value"]) for r in s["blkio_stats"]["io_service_bytes_recursive"]] == [("read", 11), ("write", 22)]


def test_no_cgroups_reads_as_zeros(tmp_path: Path) -> None:
    s = cgroups.container_stats(99, str(tmp_path))
    assert s["memory_stats"] == {"usage": 0, "limit": 0, "stats": {}} and s["pids_stats"] == {"current": 0}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert s["blkio_stats"]["io_service_bytes_recursive"] == []
