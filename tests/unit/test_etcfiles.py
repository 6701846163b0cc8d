from __future__ import annotations

import os

from cove import etcfiles


def test_resolv_conf_drops_loopback_servers_and_falls_back_like_docker() -> None:
    host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n"
    out = etcfiles.resolv_conf(host)
    assert "nameserver 8.8.8.8" in out and "nameserver 8.8.4.4" in out
    assert "127.0.0.53" not in out
    assert "search corp.example" in out and "options edns0 trust-ad" in out


def test_resolv_conf_keeps_real_servers_and_flags_replace() -> None:
    host = "nameserver 10.0.0.2\nnameserver 127.0.0.1\n"
    assert etcfiles.resolv_conf(host).splitlines() == ["nameserver 10.0.0.2"]
    out = etcfiles.resolv_conf(host, dns=["1.1.1.1"], dns_search=["a.example", "b.example"], dns_options=["ndots:2"])
    assert out.splitlines() == ["search a.example b.example", "nameserver 1.1.1.1", "options ndots:2"]


def test_hosts_has_localhost_extras_and_own_name() -> None:
    text = etcfiles.hosts("web", ["172.18.0.2"], [("db", "172.18.0.3")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "172.18.0.3\tdb" in lines
    assert lines[-1] == "172.18.0.2\tweb"


def test_write_in_place_keeps_the_inode(tmp_path) -> None:
    p = tmp_path / "hosts"
    etcfiles.write_in_place(str(p), "a long first version\n")
    ino = os.stat(p).st_ino
    etcfiles.write_in_place(str(p), "short\n")
    assert os.stat(p).st_ino == ino
    assert p.read_text() == "short\n"
