"""--cluster-store and friends: validated like every daemon setting; overlay refused without a store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cove.daemon.settings import SettingsError, effective, load
from cove.errors import InvalidArgument, Unavailable

from .enginefakes import Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def test_cluster_flags_and_file_keys(tmp_path: Path) -> None:
    s = load(["--config-file", "/nonexistent", "--cluster-store", "etcd://10.0.0.1:2379,10.0.0.2:2379",
              "--cluster-advertise", "eth0", "--cluster-lease-ttl", "5"], {})
    assert (s.cluster_store, s.cluster_advertise, s.cluster_lease_ttl) == (
        "etcd://10.0.0.1:2379,10.0.0.2:2379", "eth0", 5)
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps({"cluster-store": "etcd://h1:2379", "cluster-advertise": "10.99.0.21:2376"}))
    s = load(["--config-file", str(p)], {})
    assert effective(s)["cluster-store"] == "etcd://h1:2379"
    assert effective(s)["cluster-advertise"] == "10.99.0.21:2376"
    assert load(["--config-file", "/nonexistent"], {}).cluster_store == ""


@pytest.mark.parametrize("args, words", [
    (["--cluster-store", "consul://h:8500"], ["cluster-store", "consul://h:8500", "etcd://"]),
    (["--cluster-store", "etcd://h:2379/path"], ["cluster-store", "bad member"]),
    (["--cluster-store", "etcd://h:port"], ["cluster-store", "h:port"]),
    (["--cluster-advertise", "not an interface"], ["cluster-advertise", "IPv4 address or an interface"]),
    (["--cluster-lease-ttl", "1"], ["cluster-lease-ttl", "between 2 and 3600"]),
    (["--cluster-store-opt", "kv.nonsense=/x"], ["cluster-store-opts", "kv.nonsense", "unknown"]),
    (["--cluster-store-opt", "kv.cacertfile=/ca.pem"], ["cluster-store-opts", "need --cluster-store"]),
    (["--cluster-store", "etcd://h:2379", "--cluster-store-opt", "kv.cacertfile=ca.pem"],
     ["cluster-store-opts", "kv.cacertfile=ca.pem", "absolute path"]),
])
def test_bad_cluster_settings_name_the_key_and_reason(args: list[str], words: list[str]) -> None:
    with pytest.raises(SettingsError) as e:
        load(["--config-file", "/nonexistent", *args], {})
    for w in words:
        assert w in str(e.value)


def test_overlay_without_cluster_store_is_refused_in_one_line(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    before = set(rig.engine.networks)
    with pytest.raises(InvalidArgument) as e:
        rig.engine.create_network("ov", "overlay")
    msg = str(e.value)
    assert e.value.status == 400 and "\n" not in msg
    assert "overlay" in msg and "--cluster-store" in msg
    assert set(rig.engine.networks) == before  # nothing changed


def test_overlay_with_cluster_store_says_what_is_missing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.cfg.cluster_store = "etcd://127.0.0.1:2379"
    with pytest.raises(Unavailable, match="cluster session"):
        rig.engine.create_network("ov", "overlay")
