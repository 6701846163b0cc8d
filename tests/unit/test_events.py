"""The event bus (ring buffer, subscriptions, since/until, close) and dockerd's event filters."""

from __future__ import annotations

import threading
import time

import pytest

from cove.errors import InvalidArgument
from cove.events import Event, EventBus, EventFilter, parse_filters, parse_timestamp


def cev(action: str, cid: str = "c0ffee", name: str = "milk", **attrs: str) -> Event:
    return Event("container", action, cid, {"image": "bb:latest", "name": name, **attrs}, 1)


def nev(action: str, nid: str = "beef", name: str = "greatwall", **attrs: str) -> Event:
    return Event("network", action, nid, {"name": name, "type": "bridge", **attrs}, 1)


def match(filters: dict[str, list[str]], ev: Event) -> bool:
    return EventFilter(filters).matches(ev)


# -- wire shape -----------------------------------------------------------------------------
def test_container_event_has_docker_shape_and_legacy_fields() -> None:
    d = Event("container", "die", "abc", {"name": "x", "image": "bb", "exitCode": "3"}, 1_700_000_000_123_456_789).to_docker()
    assert list(d) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert (d["status"], d["id"], d["from"]) == ("die", "abc", "bb")
    assert d["Actor"] == {"ID": "abc", "Attributes": {"exitCode": "3", "image": "bb", "name": "x"}}
    assert (d["scope"], d["time"], d["timeNano"]) == ("local", 1_700_000_000, 1_700_000_000_123_456_789)


def test_network_event_has_no_legacy_fields() -> None:
    d = nev("connect", container="abc").to_docker()
    assert "status" not in d and "id" not in d and "from" not in d
    assert d["Actor"]["Attributes"] == {"container": "abc", "name": "greatwall", "type": "bridge"}


# -- filters --------------------------------------------------------------------------------
def test_type_and_event_filters_are_exact() -> None:
    assert match({"type": ["container"]}, cev("start"))
    assert not match({"type": ["container"]}, nev("create"))
    assert match({"event": ["start", "die"]}, cev("die"))
    assert not match({"event": ["star"]}, cev("start"))


def test_exec_actions_match_by_prefix() -> None:
    ev = cev("exec_create: ping -c1 x")
    assert match({"event": ["exec_create"]}, ev)
    assert not match({"event": ["exec_die"]}, ev)
    assert not match({"event": ["create"]}, ev)


def test_container_filter_matches_id_or_name_prefix_and_drops_other_types() -> None:
    assert match({"container": ["c0f"]}, cev("start"))
    assert match({"container": ["mil"]}, cev("start"))
    assert not match({"container": ["bread"]}, cev("start"))
    assert not match({"container": ["milk"]}, nev("connect", container="c0ffee"))


def test_network_filter_and_several_keys_must_all_match() -> None:
    assert match({"network": ["greatwall"]}, nev("create"))
    assert match({"network": ["be"], "event": ["connect"]}, nev("connect"))
    assert not match({"network": ["greatwall"], "event": ["destroy"]}, nev("connect"))
    assert not match({"network": ["greatwall"]}, cev("start"))


def test_label_and_image_filters() -> None:
    ev = cev("create", team="blue")
    assert match({"label": ["team"]}, ev)
    assert match({"label": ["team=blue"]}, ev)
    assert not match({"label": ["team=red"]}, ev)
    assert not match({"label": ["team", "tier"]}, ev)
    assert match({"image": ["bb"]}, ev)
    assert match({"image": ["bb:latest"]}, ev)
    assert not match({"image": ["alpine"]}, ev)


def test_scope_filter_and_unknown_key() -> None:
    assert match({"scope": ["local"]}, cev("start"))
    assert not match({"scope": ["swarm"]}, cev("start"))
    with pytest.raises(InvalidArgument, match="Invalid filter 'colour'"):
        EventFilter({"colour": ["red"]})


def test_parse_filters_accepts_both_wire_forms() -> None:
    assert parse_filters('{"type":["container"]}') == {"type": ["container"]}
    assert parse_filters('{"type":{"container":true,"network":true}}') == {"type": ["container", "network"]}
    with pytest.raises(InvalidArgument, match="filters"):
        parse_filters("{nope")


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("1700000000", "since") == 1_700_000_000_000_000_000
    assert parse_timestamp("1700000000.5", "since") == 1_700_000_000_500_000_000
    assert parse_timestamp("1700000000.000000001", "since") == 1_700_000_000_000_000_001
    assert parse_timestamp("2023-11-14T22:13:20Z", "since") == 1_700_000_000_000_000_000
    assert parse_timestamp("10m", "since", now=1000.0) == 400 * 1_000_000_000
    assert parse_timestamp(None, "since") is None
    with pytest.raises(InvalidArgument, match="invalid until"):
        parse_timestamp("yesterday", "until")


# -- the bus --------------------------------------------------------------------------------
def test_subscriber_gets_later_events_in_order_and_close_ends_the_stream() -> None:
    bus = EventBus()
    bus.publish("container", "create", "a", {"name": "x"})      # before: not seen without since
    sub = bus.subscribe()
    got: list[str] = []
    t = threading.Thread(target=lambda: got.extend(e.action for e in sub))
    t.start()
    for action in ("start", "die", "destroy"):
        bus.publish("container", action, "a", {"name": "x"})
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.close()
    t.join(10)
    assert not t.is_alive()
    assert got == ["start", "die", "destroy"]
    assert bus.subscribers == 0


def test_since_replays_the_ring_then_streams_live() -> None:
    bus = EventBus(ring_size=3)
    evs = [bus.publish("container", f"a{i}", "x") for i in range(5)]
    assert [e.action for e in bus.recent()] == ["a2", "a3", "a4"]          # bounded
    sub = bus.subscribe(since=evs[3].time_nano)
    assert sub.get().action == "a3" and sub.get().action == "a4"
    bus.publish("container", "live", "x")
    assert sub.get().action == "live"
    sub.close()
    assert sub.get() is None


def test_until_in_the_past_gives_only_remembered_events_and_ends() -> None:
    bus = EventBus()
    a = bus.publish("container", "create", "x")
    b = bus.publish("network", "create", "n")
    bus.publish("container", "start", "x")
    sub = bus.subscribe(since=0, until=b.time_nano, flt=EventFilter({"type": ["container"]}))
    assert [e.action for e in sub] == ["create"] and a.time_nano < b.time_nano
    assert bus.subscribers == 0


def test_until_in_the_future_ends_the_stream_when_it_passes() -> None:
    bus = EventBus()
    sub = bus.subscribe(until=time.time_ns() + 200_000_000)
    assert list(sub) == []          # returns once the deadline passes, with nothing published


def test_timestamps_strictly_increase() -> None:
    bus = EventBus()
    times = [bus.publish("container", "x", "a").time_nano for _ in range(100)]
    assert times == sorted(set(times))


def test_bus_close_ends_every_stream() -> None:
    bus = EventBus()
    subs = [bus.subscribe() for _ in range(3)]
    bus.close()
    assert [s.get() for s in subs] == [None, None, None]
    late = bus.subscribe()
    assert late.get() is None


def test_a_subscriber_too_far_behind_is_cut_off_not_the_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    import cove.events as mod

    monkeypatch.setattr(mod, "QUEUE_LIMIT", 5)
    bus = EventBus()
    slow = bus.subscribe()
    for i in range(20):
        bus.publish("container", f"a{i}", "x")
    got = [e.action for e in slow]
    assert got == [f"a{i}" for i in range(5)] and slow.dropped


def test_filtered_subscriber_sees_only_matching_events() -> None:
    bus = EventBus()
    sub = bus.subscribe(flt=EventFilter({"event": ["die"]}))
    bus.publish("container", "start", "x")
    bus.publish("container", "die", "x", {"exitCode": "3"})
    ev = sub.get()
    assert ev is not None and ev.action == "die" and ev.attributes["exitCode"] == "3"
    sub.close()
