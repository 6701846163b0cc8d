"""The etcd cluster store against a real etcd (Debian's etcd-server) on the sandbox's loopback.

What a caller observes: values written are read back, compare-and-swap refuses a stale
writer, a txn lands whole or not at all, a watch sees puts and deletes in order and is told
when its revision was compacted (the Watcher then re-lists), and a key on a lease vanishes
after the TTL once the keepalive stops, but stays while it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from cove.errors import Conflict, InvalidArgument, Unavailable
from cove.store import open_store
from cove.store.base import Compacted, Entry, Event
from cove.store.etcd import EtcdStore, Watcher, _b64, wait_ready

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


@pytest.fixture(scope="module")
def etcd_url() -> Iterator[str]:
    if os.environ.get("COVE_SANDBOX") != "1":
        pytest.fail("run inside tests/sandbox.sh: etcd listens on the sandbox's own loopback")
    if not os.path.exists(ETCD):
        pytest.fail("etcd is not installed (scripts/install.sh installs etcd-server)")
    data = tempfile.mkdtemp(prefix="cove-etcd-")
    log = open(os.path.join(data, "log"), "wb")
    proc = subprocess.Popen([ETCD, "--name", "t1", "--data-dir", os.path.join(data, "d"),
                             "--listen-client-urls", "http://127.0.0.1:23791",
                             "--advertise-client-urls", "http://127.0.0.1:23791",
                             "--listen-peer-urls", "http://127.0.0.1:23801",
                             "--initial-advertise-peer-urls", "http://127.0.0.1:23801",
                             "--initial-cluster", "t1=http://127.0.0.1:23801",
                             "--logger", "zap", "--log-level", "error"], stdout=log, stderr=log)
    try:
        s = EtcdStore([("127.0.0.1", 23791)])
        wait_ready(s, time.monotonic() + 20)
        yield "etcd://127.0.0.1:23791"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def store(etcd_url: str, request: pytest.FixtureRequest) -> Iterator[EtcdStore]:
    s = open_store(etcd_url)
    assert isinstance(s, EtcdStore)
    s.prefix = f"/test/{request.node.name}/"
    yield s
    s.close()


def test_put_get_list_delete(store: EtcdStore) -> None:
    assert store.get("networks/a") is None
    r1 = store.put("networks/a", {"name": "a", "n": 1})
    r2 = store.put("networks/b", {"name": "b"})
    assert r2 > r1
    e = store.get("networks/a")
    assert e == Entry("networks/a", {"name": "a", "n": 1}, r1)
    assert [x.key for x in store.list("networks/")] == ["networks/a", "networks/b"]
    assert store.list("nothing/") == []
    assert store.delete("networks/a") is True
    assert store.delete("networks/a") is False
    assert store.get("networks/a") is None
    assert store.revision() >= r2


def test_compare_and_swap(store: EtcdStore) -> None:
    r = store.put("names/x", {"id": "1"}, expect=0)
    with pytest.raises(Conflict, match="already exists"):
        store.put("names/x", {"id": "2"}, expect=0)
    assert store.get("names/x") == Entry("names/x", {"id": "1"}, r)  # the winner is kept
    r2 = store.put("names/x", {"id": "3"}, expect=r)
    with pytest.raises(Conflict, match="changed concurrently"):
        store.put("names/x", {"id": "4"}, expect=r)  # stale writer
    with pytest.raises(Conflict):
        store.delete("names/x", expect=r)
    assert store.delete("names/x", expect=r2)
    with pytest.raises(Conflict, match="does not exist"):
        store.put("names/x", {"id": "5"}, expect=r2)


def test_create_race_has_one_winner(store: EtcdStore) -> None:
    wins: list[int] = []
    losses: list[int] = []

    def create(i: int) -> None:
        try:
            store.put("names/race", {"by": i}, expect=0)
            wins.append(i)
        except Conflict:
            losses.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    e = store.get("names/race")
    assert e is not None and e.value == {"by": wins[0]}


def test_txn_all_or_nothing(store: EtcdStore) -> None:
    with store.txn():
        store.put("a", {"v": 1})
        store.put("b", {"v": 2})
        assert store.get("a") == Entry("a", {"v": 1}, 0)  # sees its own write
        assert store.get("c") is None
    ea, eb = store.get("a"), store.get("b")
    assert ea and eb and ea.revision == eb.revision  # one etcd Txn, one revision
    with pytest.raises(RuntimeError):
        with store.txn():
            store.put("c", {"v": 3})
            raise RuntimeError("boom")
    assert store.get("c") is None
    # a compare that fails at commit: another writer changed "a" after the txn read it
    with pytest.raises(Conflict):
        with store.txn():
            store.put("a", {"v": 10}, expect=ea.revision)
            store.put("d", {"v": 4})
            EtcdStore(store.endpoints, prefix=store.prefix).put("a", {"v": 99})
    assert store.get("d") is None
    got = store.get("a")
    assert got is not None and got.value == {"v": 99}


def test_watch_events_and_compaction(store: EtcdStore) -> None:
    start = store.revision()
    r1 = store.put("w/1", {"x": 1})
    store.delete("w/1")
    store.put("other/1", {"x": 0})
    events = store.watch("w/", start)
    assert events[0] == Event("put", "w/1", {"x": 1}, r1)
    if len(events) == 1:
        events += store.watch("w/", r1)
    assert [e.kind for e in events] == ["put", "delete"]
    assert store.watch("w/", store.revision(), timeout=0.3) == []  # nothing new: times out empty
    # compact past `start`: an old watch is told to re-list
    now = store.revision()
    store.call("/v3/kv/compaction", {"revision": str(now), "physical": True})
    with pytest.raises(Compacted):
        store.watch("w/", start, timeout=2)


def test_watcher_relists_after_compaction(store: EtcdStore) -> None:
    view: dict[str, dict[str, object]] = {}
    store.put("ep/a", {"ip": "1"})
    lock = threading.Lock()

    def reset(entries: list[Entry]) -> None:
        with lock:
            view.clear()
            view.update({e.key: e.value for e in entries})

    def event(ev: Event) -> None:
        with lock:
            if ev.kind == "put":
                assert ev.value is not None
                view[ev.key] = ev.value
            else:
                view.pop(ev.key, None)

    w = Watcher(store, "ep/", reset, event).start()
    try:
        _until(lambda: view == {"ep/a": {"ip": "1"}})
        store.put("ep/b", {"ip": "2"})
        store.delete("ep/a")
        _until(lambda: view == {"ep/b": {"ip": "2"}})
        # the watcher falls behind a compaction (simulated: its revision is moved back)
        store.put("ep/c", {"ip": "3"})
        store.call("/v3/kv/compaction", {"revision": str(store.revision()), "physical": True})
        resets = w.resets
        w.revision = 1
        w._stream.close() if w._stream else None
        _until(lambda: w.resets > resets and view == {"ep/b": {"ip": "2"}, "ep/c": {"ip": "3"}})
    finally:
        w.stop()


def test_lease_expires_without_keepalive(store: EtcdStore) -> None:
    kept = store.lease(2)
    dropped = store.lease(2)
    store.put("hosts/kept", {"h": 1}, lease=kept)
    store.put("hosts/dropped", {"h": 2}, lease=dropped)
    dropped.close()  # stops renewing, does not revoke
    t0 = time.monotonic()
    _until(lambda: store.get("hosts/dropped") is None, timeout=6)
    gone = time.monotonic() - t0
    assert 1.0 < gone < 4.0, gone
    time.sleep(1.5)
    assert store.get("hosts/kept") is not None  # renewed every TTL/3
    kept.revoke()
    assert store.get("hosts/kept") is None


def test_failover_to_a_live_member(etcd_url: str) -> None:
    # the first member listed is dead (nothing listens there): requests go to the next
    s = EtcdStore([("127.0.0.1", 23799), ("127.0.0.1", 23791)], prefix="/test/failover/")
    s.put("k", {"v": 1})
    assert s.get("k") == Entry("k", {"v": 1}, s.get("k").revision)  # type: ignore[union-attr]
    dead = EtcdStore([("127.0.0.1", 23799)], timeout=0.5)
    with pytest.raises(Unavailable, match="cluster store unavailable"):
        dead.get("k")


def test_bad_urls() -> None:
    for url in ("etcd://", "etcd://h:2379/x", "etcd://h:notaport"):
        with pytest.raises(InvalidArgument, match="invalid store"):
            open_store(url)
    assert _b64("a") == "YQ=="


def _until(cond: object, timeout: float = 5.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
