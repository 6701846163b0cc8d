"""Unit tests of cove.store, run against every backend (SQLite in tmp_path, memory)."""

from __future__ import annotations

import os
import stat
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cove.errors import Conflict, CoveError, InvalidArgument, Unavailable
from cove.store import Compacted, Entry, Event, MemoryStore, SqliteStore, Store, open_store

Factory = Callable[..., Store]


@pytest.fixture(params=["sqlite", "memory"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A factory of stores of one backend; every store it made is closed afterwards."""
    made: list[Store] = []

    def factory(**kw: object) -> Store:
        if request.param == "sqlite":
            s: Store = SqliteStore(str(tmp_path / "state" / "cove.db"), **kw)  # type: ignore[arg-type]
        else:
            s = MemoryStore(**kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


@pytest.fixture
def store(make: Factory) -> Store:
    return make()


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


# --- basics -------------------------------------------------------------------------

def test_implements_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_put_get_list(store: Store) -> None:
    assert store.get("networks/a") is None
    assert store.revision() == 0
    r1 = store.put("networks/b", {"name": "b"})
    r2 = store.put("networks/a", {"name": "a", "ipam": [{"Subnet": "10.0.0.0/24"}]})
    store.put("containers/x", {"name": "x"})
    store.put("networksX", {"not": "under the prefix"})
    assert 0 < r1 < r2 < store.revision()
    assert store.get("networks/a") == Entry("networks/a", {"name": "a", "ipam": [{"Subnet": "10.0.0.0/24"}]}, r2)
    assert [e.key for e in store.list("networks/")] == ["networks/a", "networks/b"]
    assert [e.key for e in store.list("")] == ["containers/x", "networks/a", "networks/b", "networksX"]
    assert store.list("nothing/") == []


def test_overwrite_moves_revision(store: Store) -> None:
    r1 = store.put("k", {"v": 1})
    r2 = store.put("k", {"v": 2})
    assert r2 == r1 + 1
    assert store.get("k") == Entry("k", {"v": 2}, r2)


def test_values_are_copies(store: Store) -> None:
    value = {"list": [1, 2], "nested": {"a": "b"}}
    store.put("k", value)
    value["list"].append(3)
    got = store.get("k")
    assert got is not None and got.value == {"list": [1, 2], "nested": {"a": "b"}}
    got.value["nested"]["a"] = "changed"
    again = store.get("k")
    assert again is not None and again.value["nested"] == {"a": "b"}


def test_values_behave_like_json(store: Store) -> None:
    store.put("k", {"t": (1, 2), "unicode": "ünï", "none": None})
    got = store.get("k")
    assert got is not None and got.value == {"t": [1, 2], "unicode": "ünï", "none": None}


@pytest.mark.parametrize("bad", [[1, 2], "text", {"x": object()}, {"x": float("nan")}, {"x": {1, 2}}])
def test_rejects_values_that_are_not_json_dicts(store: Store, bad: object) -> None:
    with pytest.raises(TypeError, match="'k'"):
        store.put("k", bad)  # type: ignore[arg-type]
    assert store.get("k") is None and store.revision() == 0


def test_rejects_empty_key(store: Store) -> None:
    with pytest.raises(TypeError):
        store.put("", {})


def test_unicode_keys_sort_like_python(store: Store) -> None:
    keys = ["p/z", "p/ä", "p/A", "p/a", "p/€", "p/\U0001f600", "p/"]
    for k in keys:
        store.put(k, {})
    assert [e.key for e in store.list("p/")] == sorted(keys)
    assert [e.key for e in store.list("p/ä")] == ["p/ä"]


def test_prefix_is_literal(store: Store) -> None:
    store.put("a%b/1", {})
    store.put("axb/1", {})
    store.put("A_b/1", {})
    assert [e.key for e in store.list("a%")] == ["a%b/1"]
    assert [e.key for e in store.list("a_")] == []


# --- compare-and-swap ---------------------------------------------------------------

def test_expect_zero_creates_only(store: Store) -> None:
    rev = store.put("networks/n1", {"v": 1}, expect=0)
    with pytest.raises(Conflict) as e:
        store.put("networks/n1", {"v": 2}, expect=0)
    assert "networks/n1" in str(e.value) and "already exists" in str(e.value)
    assert store.get("networks/n1") == Entry("networks/n1", {"v": 1}, rev)


def test_expect_revision(store: Store) -> None:
    rev = store.put("k", {"v": 1})
    store.put("other", {})
    rev2 = store.put("k", {"v": 2}, expect=rev)
    with pytest.raises(Conflict) as e:
        store.put("k", {"v": 3}, expect=rev)
    assert '"k"' in str(e.value) and f"expected revision {rev}" in str(e.value)
    with pytest.raises(Conflict, match='"missing" does not exist'):
        store.put("missing", {}, expect=1)
    entry = store.get("k")
    assert entry is not None and entry.value == {"v": 2} and entry.revision == rev2
    assert store.get("missing") is None


def test_delete(store: Store) -> None:
    assert store.delete("k") is False
    assert store.revision() == 0             # deleting nothing is not a change
    assert store.watch("", 0, timeout=0) == []
    rev = store.put("k", {})
    with pytest.raises(Conflict, match='"k"'):
        store.delete("k", expect=rev + 5)
    with pytest.raises(Conflict, match='"k" already exists'):
        store.delete("k", expect=0)
    assert store.get("k") is not None
    assert store.delete("k", expect=rev) is True
    assert store.get("k") is None
    assert store.revision() == rev + 1
    assert store.delete("k", expect=0) is False
    with pytest.raises(Conflict, match='"k" does not exist'):
        store.delete("k", expect=rev)


def test_concurrent_compare_and_swap_counter(store: Store) -> None:
    """Many threads incrementing one counter with CAS retries never lose an update."""
    store.put("counter", {"n": 0})

    def worker() -> None:
        for _ in range(25):
            while True:
                e = store.get("counter")
                assert e is not None
                try:
                    store.put("counter", {"n": e.value["n"] + 1}, expect=e.revision)
                    break
                except Conflict:
                    continue

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    e = store.get("counter")
    assert e is not None and e.value == {"n": 200}


# --- transactions -------------------------------------------------------------------

def test_txn_commits_everything(store: Store) -> None:
    store.put("old", {})
    with store.txn():
        store.put("a", {"v": 1})
        store.put("b", {"v": 2})
        store.delete("old")
        assert store.get("a") is not None           # own writes are visible inside
    assert [e.key for e in store.list("")] == ["a", "b"]
    assert store.revision() == 4


def test_txn_exception_rolls_back_everything(store: Store) -> None:
    store.put("keep", {"v": 0})
    rev = store.revision()
    with pytest.raises(RuntimeError):
        with store.txn():
            store.put("a", {"v": 1})
            store.put("keep", {"v": 99})
            store.delete("keep")
            raise RuntimeError("boom")
    assert store.get("a") is None
    assert store.get("keep") == Entry("keep", {"v": 0}, rev)
    assert store.revision() == rev
    assert store.watch("", rev, timeout=0) == []
    # the store still works afterwards
    assert store.put("a", {"v": 2}) == rev + 1


def test_txn_conflict_rolls_back(store: Store) -> None:
    store.put("taken", {})
    with pytest.raises(Conflict):
        with store.txn():
            store.put("new", {})
            store.put("taken", {}, expect=0)
    assert store.get("new") is None


def test_nested_txn_joins_outer(store: Store) -> None:
    with pytest.raises(ValueError):
        with store.txn():
            store.put("outer", {})
            with store.txn():
                store.put("inner", {})
            assert store.get("inner") is not None
            raise ValueError
    assert store.get("outer") is None and store.get("inner") is None
    assert store.revision() == 0


def test_nested_txn_failure_caught_by_outer(store: Store) -> None:
    with store.txn():
        store.put("outer", {})
        try:
            with store.txn():
                store.put("inner", {})
                raise KeyError("inner fails")
        except KeyError:
            pass
        try:
            store.put("outer", {}, expect=0)             # a failed put inside leaves nothing behind
        except Conflict:
            pass
        store.put("after", {})
    assert [e.key for e in store.list("")] == ["after", "outer"]
    assert [(e.kind, e.key) for e in store.watch("", 0, timeout=0)] == [("put", "outer"), ("put", "after")]
    assert [e.revision for e in store.watch("", 0, timeout=0)] == [1, 2]


def test_txn_is_atomic_for_other_threads(store: Store) -> None:
    store.put("a", {"v": 0})
    store.put("b", {"v": 0})
    entered, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.txn():
            store.put("a", {"v": 1})
            entered.set()
            release.wait(5)
            store.put("b", {"v": 1})

    w = threading.Thread(target=writer)
    w.start()
    assert entered.wait(5)
    reader, seen = in_thread(lambda: [e.value["v"] for e in store.list("")])
    reader.join(0.2)
    assert reader.is_alive(), "a reader got in while another thread's txn was open"
    release.set()
    w.join(5)
    reader.join(5)
    assert seen == [[1, 1]]


def test_txn_in_other_thread_does_not_join(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.txn():
            store.put("mine", {})
            t, out = in_thread(lambda: store.put("theirs", {}))
            t.join(0.2)
            assert t.is_alive()          # waits for this txn to finish
            raise RuntimeError
    t.join(5)
    assert isinstance(out[0], int)
    assert store.get("mine") is None and store.get("theirs") is not None


# --- watch --------------------------------------------------------------------------

def test_watch_returns_events_after_since(store: Store) -> None:
    r1 = store.put("networks/a", {"v": 1})
    store.put("containers/c", {"v": 1})
    r3 = store.put("networks/a", {"v": 2})
    r4 = store.put("networks/b", {"v": 1})
    store.delete("networks/a")
    events = store.watch("networks/", 0, timeout=0)
    assert events == [Event("put", "networks/a", {"v": 1}, r1), Event("put", "networks/a", {"v": 2}, r3),
                      Event("put", "networks/b", {"v": 1}, r4), Event("delete", "networks/a", None, r4 + 1)]
    assert [e.revision for e in store.watch("", r3, timeout=0)] == [r4, r4 + 1]
    assert store.watch("", store.revision(), timeout=0) == []


def test_watch_times_out_empty(store: Store) -> None:
    store.put("other/x", {})
    start = time.monotonic()
    assert store.watch("networks/", 0, timeout=0.2) == []
    assert 0.15 < time.monotonic() - start < 2


def test_watch_wakes_on_change(store: Store) -> None:
    since = store.revision()
    t, out = in_thread(lambda: store.watch("networks/", since, timeout=5))
    time.sleep(0.1)
    store.put("containers/c", {})                        # not under the prefix: keeps waiting
    time.sleep(0.1)
    assert t.is_alive()
    start = time.monotonic()
    store.put("networks/n", {"v": 1})
    t.join(5)
    assert time.monotonic() - start < 1
    assert out == [[Event("put", "networks/n", {"v": 1}, since + 2)]]


def test_watch_sees_txn_only_at_commit(store: Store) -> None:
    t, out = in_thread(lambda: store.watch("", 0, timeout=5))
    with store.txn():
        store.put("a", {})
        store.put("b", {})
        time.sleep(0.1)
        assert t.is_alive()
    t.join(5)
    assert [[e.key for e in evs] for evs in out] == [["a", "b"]]  # type: ignore[union-attr]


def test_watch_compacted(make: Factory) -> None:
    store = make(history=5)
    for i in range(12):
        store.put(f"k/{i}", {"i": i})
    events = store.watch("k/", 7, timeout=0)
    assert [e.revision for e in events] == [8, 9, 10, 11, 12]
    with pytest.raises(Compacted) as e:
        store.watch("k/", 2, timeout=0)
    assert isinstance(e.value, CoveError)
    assert "revision 2" in str(e.value) and "\n" not in str(e.value)
    # since == the current revision is never compacted
    assert store.watch("", store.revision(), timeout=0) == []


def test_watch_history_is_bounded(make: Factory) -> None:
    store = make(history=100)
    for i in range(1000):
        store.put("k", {"i": i})
    rev = store.revision()
    assert len(store.watch("", rev - 100, timeout=0)) == 100     # at least the last 100 are kept
    with pytest.raises(Compacted):
        store.watch("", rev - 111, timeout=0)                    # and at most 10% more
    with pytest.raises(Compacted):
        store.watch("", 0, timeout=0)


def test_watch_inside_txn_is_refused(store: Store) -> None:
    with store.txn():
        with pytest.raises(RuntimeError):
            store.watch("", 0, timeout=1)


# --- close --------------------------------------------------------------------------

def test_close_wakes_watchers_and_refuses_use(store: Store) -> None:
    t, out = in_thread(lambda: store.watch("", 0, timeout=10))
    time.sleep(0.1)
    store.close()
    t.join(5)
    assert not t.is_alive() and isinstance(out[0], Unavailable)
    for call in (lambda: store.get("k"), lambda: store.put("k", {}), lambda: store.list(""),
                 lambda: store.delete("k"), store.revision):
        with pytest.raises(Unavailable, match="closed"):
            call()
    store.close()                                            # idempotent


# --- SQLite specifics ---------------------------------------------------------------

def test_sqlite_persists(tmp_path: Path) -> None:
    path = str(tmp_path / "a" / "b" / "cove.db")
    s = SqliteStore(path)
    s.put("networks/a", {"v": 1})
    rev = s.put("networks/b", {"v": 2})
    s.delete("networks/a")
    s.close()
    s = SqliteStore(path)
    try:
        assert s.revision() == rev + 1
        assert [e.key for e in s.list("")] == ["networks/b"]
        assert s.get("networks/b") == Entry("networks/b", {"v": 2}, rev)
        assert [e.kind for e in s.watch("", 0, timeout=0)] == ["put", "put", "delete"]
        with pytest.raises(Conflict):
            s.put("networks/b", {}, expect=0)
    finally:
        s.close()


def test_sqlite_file_is_private_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "cove.db"
    old = os.umask(0)
    try:
        s = SqliteStore(str(path))
    finally:
        os.umask(old)
    try:
        s.put("k", {})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for extra in ("cove.db-wal", "cove.db-shm"):
            p = path.parent / extra
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0
        conn = sqlite3.connect(str(path))
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    finally:
        s.close()


def test_sqlite_takes_a_thousand_puts(tmp_path: Path) -> None:
    s = SqliteStore(str(tmp_path / "cove.db"))
    try:
        for i in range(1000):
            s.put(f"endpoints/{i}", {"ip": f"10.0.{i // 256}.{i % 256}"})
        assert len(s.list("endpoints/")) == 1000
    finally:
        s.close()


def test_sqlite_rollback_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "cove.db")
    s = SqliteStore(path)
    s.put("a", {})
    with pytest.raises(RuntimeError):
        with s.txn():
            s.put("b", {})
            raise RuntimeError
    s.close()
    s = SqliteStore(path)
    try:
        assert [e.key for e in s.list("")] == ["a"] and s.revision() == 1
    finally:
        s.close()


# --- open_store ---------------------------------------------------------------------

def test_open_store(tmp_path: Path) -> None:
    m = open_store("memory://")
    assert isinstance(m, MemoryStore)
    m.close()
    s = open_store(f"sqlite://{tmp_path}/x/cove.db")
    try:
        assert isinstance(s, SqliteStore)
        assert (tmp_path / "x" / "cove.db").exists()
    finally:
        s.close()


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite:///", "sqlite:///tmp/dir/", "etcd://host:2379/x",
                                 "nonsense"])
def test_open_store_errors(url: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        open_store(url)
    assert str(e.value).startswith("invalid store ")
