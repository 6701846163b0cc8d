"""``docker ps`` and ``docker network ls`` filters: each documented key works or is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from cove.daemon.listfilters import ContainerRow, NetworkRow, select_containers, select_networks
from cove.errors import CoveError, InvalidArgument, NotFound


def crow(name: str, state: str = "running", code: int | None = None, labels: dict[str, str] | None = None,
         ports: list[dict[str, Any]] | None = None, nets: dict[str, str] | None = None,
         image_id: str = "sha256:bb") -> ContainerRow:
    networks = {n: {"NetworkID": i} for n, i in (nets or {"bridge": "b1d9e"}).items()}
    return ContainerRow({"Id": f"{name}-id0123", "Names": [f"/{name}"], "State": state, "Labels": labels or {},
                         "Ports": ports or [], "ImageID": image_id,
                         "NetworkSettings": {"Networks": networks}}, code, state != "created")


# newest first, as the daemon sorts them
ROWS = [
    crow("web", ports=[{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                       {"PrivatePort": 53, "Type": "udp"}], nets={"greatwall": "abc123"}),
    crow("done", "exited", 3, labels={"team": "blue"}),
    crow("ok", "exited", 0, labels={"team": "red", "tier": "db"}, image_id="sha256:other"),
    crow("made", "created"),
    crow("milk", labels={"team": "blue"}),
]


def names(f: dict[str, list[str]], **kw: Any) -> list[str]:
    index = {r.summary["Names"][0][1:]: i for i, r in enumerate(ROWS)}

    def index_of(ref: str) -> int:
        if ref not in index:
            raise NotFound(f"No such container: {ref}")
        return index[ref]

    images = {"bb": "sha256:bb", "other": "sha256:other"}
    out = select_containers(ROWS, f, index_of=index_of, image_id_of=images.get, **kw)
    return [c["Names"][0][1:] for c in out]


def test_running_only_unless_all() -> None:
    assert names({}) == ["web", "milk"]
    assert names({}, all_=True) == ["web", "done", "ok", "made", "milk"]
    assert names({}, limit=2) == ["web", "done"]          # a limit shows stopped ones, as docker


def test_name_and_id_are_regular_expressions() -> None:
    assert names({"name": ["mil"]}) == ["milk"]
    assert names({"name": ["^/w"]}, all_=True) == ["web"]
    assert names({"name": ["^milk$"]}) == []             # the name starts with "/"
    assert names({"id": ["^done-"]}, all_=True) == ["done"]


def test_label_status_exited() -> None:
    assert names({"label": ["team=blue"]}, all_=True) == ["done", "milk"]
    assert names({"label": ["team", "tier"]}, all_=True) == ["ok"]
    assert names({"status": ["exited"]}) == ["done", "ok"]           # status implies all
    assert names({"status": ["created", "running"]}) == ["web", "made", "milk"]
    assert names({"exited": ["3"]}, all_=True) == ["done"]
    assert names({"exited": ["0"]}, all_=True) == ["ok"]            # not "made": it never ran
    with pytest.raises(InvalidArgument, match="Invalid filter 'status=sleeping'"):
        names({"status": ["sleeping"]})
    with pytest.raises(InvalidArgument, match="Invalid filter 'exited=x'"):
        names({"exited": ["x"]})


def test_before_since_ancestor() -> None:
    assert names({"before": ["ok"]}) == ["made", "milk"]
    assert names({"since": ["ok"]}) == ["web", "done"]
    with pytest.raises(NotFound):
        names({"before": ["nobody"]})
    assert names({"ancestor": ["other"]}, all_=True) == ["ok"]
    assert names({"ancestor": ["nothere"]}, all_=True) == []


def test_network_publish_expose() -> None:
    assert names({"network": ["greatwall"]}) == ["web"]
    assert names({"network": ["abc"]}) == ["web"]                   # an id prefix
    assert names({"network": ["bridge"]}, all_=True) == ["done", "ok", "made", "milk"]
    assert names({"publish": ["8080"]}) == ["web"]
    assert names({"publish": ["8080/udp"]}) == []
    assert names({"publish": ["8000-8100/tcp"]}) == ["web"]
    assert names({"expose": ["80"]}) == ["web"]
    assert names({"expose": ["53/udp"]}) == ["web"]
    assert names({"publish": ["80"]}) == []
    with pytest.raises(InvalidArgument, match="Invalid filter 'publish=http'"):
        names({"publish": ["http"]})


def test_health_isolation_is_task() -> None:
    assert names({"health": ["none"]}) == ["web", "milk"]
    assert names({"health": ["healthy"]}) == []
    assert names({"isolation": ["default"]}) == ["web", "milk"]
    assert names({"isolation": ["hyperv"]}) == []
    assert names({"is-task": ["false"]}) == ["web", "milk"]
    assert names({"is-task": ["true"]}) == []
    with pytest.raises(InvalidArgument, match="health"):
        names({"health": ["great"]})


def test_health_and_volume_match_the_row() -> None:
    rows = [ContainerRow({"Id": "a", "Names": ["/a"], "State": "running"}, None, True, health="healthy",
                         volumes=("data", "/data")),
            ContainerRow({"Id": "b", "Names": ["/b"], "State": "running"}, None, True, health="unhealthy")]
    assert [s["Id"] for s in select_containers(rows, {"health": ["healthy"]})] == ["a"]
    assert [s["Id"] for s in select_containers(rows, {"health": ["unhealthy"]})] == ["b"]
    assert [s["Id"] for s in select_containers(rows, {"volume": ["/data"]})] == ["a"]
    assert [s["Id"] for s in select_containers(rows, {"volume": ["data"]})] == ["a"]
    assert select_containers(rows, {"volume": ["other"]}) == []


def test_unsupported_and_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="Invalid filter 'colour'"):
        names({"colour": ["red"]})


NETS = [
    NetworkRow({"Name": "bridge", "Id": "b1d9e", "Driver": "bridge", "Scope": "local", "Labels": {}}, True, True),
    NetworkRow({"Name": "host", "Id": "h0st", "Driver": "host", "Scope": "local", "Labels": {}}, True, False),
    NetworkRow({"Name": "greatwall", "Id": "abc123", "Driver": "bridge", "Scope": "local",
                "Labels": {"env": "prod"}}, False, True),
    NetworkRow({"Name": "empty", "Id": "e3f", "Driver": "macvlan", "Scope": "local", "Labels": {}}, False, False),
]


def nnames(f: dict[str, list[str]]) -> list[str]:
    return [n["Name"] for n in select_networks(NETS, f)]


def test_network_filters() -> None:
    assert nnames({"driver": ["bridge"]}) == ["bridge", "greatwall"]
    assert nnames({"name": ["wall"]}) == ["greatwall"]
    assert nnames({"name": ["^e"]}) == ["empty"]
    assert nnames({"id": ["^abc"]}) == ["greatwall"]
    assert nnames({"label": ["env=prod"]}) == ["greatwall"]
    assert nnames({"scope": ["local"]}) == ["bridge", "host", "greatwall", "empty"]
    assert nnames({"scope": ["swarm"]}) == []
    assert nnames({"type": ["builtin"]}) == ["bridge", "host"]
    assert nnames({"type": ["custom"]}) == ["greatwall", "empty"]
    assert nnames({"dangling": ["true"]}) == ["empty"]
    assert nnames({"dangling": ["0"]}) == ["bridge", "host", "greatwall"]


@pytest.mark.parametrize("f, message", [
    ({"type": ["odd"]}, "invalid filter: 'type'='odd'"),
    ({"dangling": ["maybe"]}, "dangling"),
    ({"dangling": ["true", "false"]}, "more than one value"),
    ({"colour": ["red"]}, "Invalid filter 'colour'"),
])
def test_network_filter_errors(f: dict[str, list[str]], message: str) -> None:
    with pytest.raises(CoveError, match=message) as exc:
        nnames(f)
    assert exc.value.status == 400


# -- patterns from the client run in linear time (RE2, as Go's regexp in dockerd) ----------------------

REDOS = "([0-9a-f]*)*z"          # catastrophic backtracking in Python's re against a long hex id


def test_a_runaway_pattern_answers_at_once() -> None:
    # Protection check: with `re.search` in docker_match, this test never ends (64 hex digits,
    # 2**64 ways to split them); with RE2 it takes microseconds.
    import threading

    hexes = "0123456789abcdef" * 4
    long_ids = [NetworkRow({"Name": f"{hexes}{i}", "Id": hexes, "Driver": "bridge",
                            "Scope": "local", "Labels": {}}, False, False) for i in range(50)]
    out: list[object] = []

    def run() -> None:
        out.append(select_networks(long_ids, {"id": [REDOS]}))
        out.append(select_networks(long_ids, {"name": [REDOS]}))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)                   # generous: the point is "finishes", not "fast"
    assert out == [[], []]


@pytest.mark.parametrize("pattern, expected", [
    ("wall", ["greatwall"]),          # part of the name
    ("^g.*l$", ["greatwall"]),        # Go syntax works as before
    ("(?i)EMPTY", ["empty"]),
    ("(a)\\1", []),                   # RE2 (and Go) refuse back-references: nothing matches
    ("a{1001}", []),                  # a repeat RE2 refuses
    ("[", []),                        # not a pattern at all
])
def test_network_name_patterns(pattern: str, expected: list[str]) -> None:
    assert nnames({"name": [pattern]}) == expected


def test_refused_and_huge_patterns_still_match_an_equal_name() -> None:
    rows = [NetworkRow({"Name": "[", "Id": "1", "Labels": {}}, False, False),
            NetworkRow({"Name": "x" * 5000, "Id": "2", "Labels": {}}, False, False)]
    assert [n["Id"] for n in select_networks(rows, {"name": ["["]})] == ["1"]
    assert [n["Id"] for n in select_networks(rows, {"name": ["x" * 5000]})] == ["2"]
    assert [n["Id"] for n in select_networks(rows, {"name": ["x" * 4999]})] == []   # too long to compile


def test_container_id_prefix_and_name_part() -> None:
    assert names({"id": ["done-id"]}, all_=True) == ["done"]
    assert names({"name": ["il"]}) == ["milk"]
    assert names({"name": [REDOS]}, all_=True) == []
