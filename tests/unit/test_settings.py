from __future__ import annotations

import json

import pytest

from cove.daemon.settings import SettingsError, effective, load


def write(tmp_path, data) -> str:
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(p)


def test_file_and_flags_with_dockerd_names(tmp_path) -> None:
    path = write(tmp_path, {"bip": "10.9.0.1/24", "icc": False, "dns": ["192.0.2.1"], "mtu": 1400,
                            "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]})
    s = load(["--config-file", path, "--ip", "127.0.0.1", "--dns-search", "corp.example"], {})
    assert (s.bip, s.icc, s.dns, s.mtu, s.ip, s.dns_search) == ("10.9.0.1/24", False, ["192.0.2.1"], 1400,
                                                                  "127.0.0.1", ["corp.example"])
    assert s.default_address_pools == ["base=10.10.0.0/16,size=24"]
    assert effective(s)["userland-proxy"] is False


@pytest.mark.parametrize("data, words", [
    ({"bip": "10.9.0.0/24"}, ["bip", "10.9.0.0/24"]),
    ({"bip": "nonsense"}, ["bip", "nonsense"]),
    ({"icc": "maybe"}, ["icc", "maybe", "true or false"]),
    ({"mtu": 20}, ["mtu", "20"]),
    ({"userland-proxy": True}, ["userland-proxy", "no userland proxy"]),
    ({"no-such-key": 1}, ["no-such-key", "unknown key"]),
    ({"dns": ["not-an-ip"]}, ["dns", "not-an-ip"]),
    ({"fixed-cidr": "10.1.0.0/24", "bip": "10.9.0.1/24"}, ["fixed-cidr", "not inside"]),
    ("{not json", ["invalid daemon config file"]),
    ({"image-import-max-size": "lots"}, ["image-import-max-size", "lots", "size in bytes"]),
    ({"ip-forward-no-drop": "sometimes"}, ["ip-forward-no-drop", "true or false"]),
])
def test_bad_settings_name_the_key_value_and_reason(tmp_path, data, words) -> None:
    with pytest.raises(SettingsError) as e:
        load(["--config-file", write(tmp_path, data)], {})
    assert len(str(e.value).splitlines()) == 1
    for w in words:
        assert w in str(e.value)


def test_a_setting_in_both_places_is_an_error(tmp_path) -> None:
    with pytest.raises(SettingsError, match="both as a flag and in the configuration file"):
        load(["--config-file", write(tmp_path, {"mtu": 1400}), "--mtu", "1300"], {})


def test_missing_file_is_fine_and_cove_host_is_honoured(tmp_path) -> None:
    s = load(["--config-file", str(tmp_path / "none.json")], {"COVE_HOST": "unix:///tmp/x.sock"})
    assert s.host == "unix:///tmp/x.sock" and s.firewall is None


def test_forward_drop_opt_out_and_import_cap(tmp_path) -> None:
    s = load(["--config-file", str(tmp_path / "absent.json")], {})
    assert (s.ip_forward_no_drop, s.image_import_max_size) == (False, 16 << 30)
    s = load(["--config-file", write(tmp_path, {"ip-forward-no-drop": True, "image-import-max-size": "512m"})], {})
    assert (s.ip_forward_no_drop, s.image_import_max_size) == (True, 512 << 20)
    s = load(["--config-file", str(tmp_path / "absent.json"), "--ip-forward-no-drop", "true",
              "--image-import-max-size", "0"], {})
    assert (s.ip_forward_no_drop, s.image_import_max_size) == (True, 0)
    assert effective(s)["ip-forward-no-drop"] is True


def test_cgroup_parent_from_file_flag_or_environment(tmp_path) -> None:
    absent = str(tmp_path / "absent.json")
    assert load(["--config-file", absent], {}).cgroup_parent == "/cove"
    assert load(["--config-file", absent], {"COVE_CGROUP_PARENT": "/cove-sandbox-7"}).cgroup_parent == "/cove-sandbox-7"
    s = load(["--config-file", absent, "--cgroup-parent", "/ci/run-1/"], {"COVE_CGROUP_PARENT": "/other"})
    assert s.cgroup_parent == "/ci/run-1" and effective(s)["cgroup-parent"] == "/ci/run-1"   # the flag wins
    s = load(["--config-file", write(tmp_path, {"cgroup-parent": "/from-file"})], {"COVE_CGROUP_PARENT": "/other"})
    assert s.cgroup_parent == "/from-file"
    for value in ("cove", "/", "/a/../b", "/a b", "/a//b/.", 5):
        with pytest.raises(SettingsError, match="cgroup-parent.*absolute cgroup path"):
            load(["--config-file", write(tmp_path, {"cgroup-parent": value})], {})
