"""Issue 13 (seal): fields written into /etc files refuse control characters; the daemon's
autostart cannot be hijacked from the caller's directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cove.daemon.schema import container_request
from cove.errors import InvalidArgument

INJECT = "x\nnameserver 203.0.113.66"


@pytest.mark.parametrize("where, field, value", [
    ("", "Hostname", "web\n203.0.113.66 evil"),
    ("", "Domainname", "corp\rsearch evil"),
    ("HostConfig", "Dns", ["192.0.2.1\nnameserver 203.0.113.66"]),
    ("HostConfig", "DnsSearch", ["corp.example\nnameserver 203.0.113.66"]),
    ("HostConfig", "DnsOptions", ["ndots:1\nnameserver 203.0.113.66"]),
    ("HostConfig", "ExtraHosts", ["db:192.0.2.9\n203.0.113.66 bank.example"]),
    ("HostConfig", "ExtraHosts", ["db\0:192.0.2.9"]),
])
def test_control_characters_in_etc_file_fields_are_refused(where: str, field: str, value: object) -> None:
    body: dict[str, object] = {"Image": "bb"}
    if where:
        body[where] = {field: value}
    else:
        body[field] = value
    with pytest.raises(InvalidArgument) as e:
        container_request(body)
    assert field in str(e.value) and "control characters" in str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_ordinary_values_still_pass() -> None:
    cfg, host, _ = container_request({"Image": "bb", "Hostname": "web", "Domainname": "corp.example",
                                      "HostConfig": {"Dns": ["192.0.2.1"], "DnsSearch": ["a.example"],
                                                     "DnsOptions": ["ndots:2", "timeout:1"],
                                                     "ExtraHosts": ["db:192.0.2.9", "v6:fd00::9"]}})
    assert (cfg.hostname, cfg.domainname, host.dns_options) == ("web", "corp.example", ["ndots:2", "timeout:1"])


def test_daemon_command_ignores_a_cove_package_in_the_current_directory(tmp_path: Path) -> None:
    """The autostart's command line runs this cove, not ``./cove``.  With the old
    ``[sys.executable, "-m", "cove", ...]`` in :func:`daemon_command` the planted package runs."""
    from cove.cli.main import daemon_command

    planted = tmp_path / "cove"
    planted.mkdir()
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('planted code ran')\nraise SystemExit(0)\n"
    (planted / "__init__.py").write_text(payload)
    (planted / "__main__.py").write_text(payload)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONSTARTUP": str(planted / "__init__.py")}
    r = subprocess.run(daemon_command("--version"), cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert not marker.exists(), "the planted cove/ package ran"
    assert r.returncode == 0 and r.stdout.startswith("cove version"), r.stderr
