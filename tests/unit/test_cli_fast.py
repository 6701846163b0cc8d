"""The CLI's fast path (cove.cli.fast): the same requests and output as the click
commands, without importing click; anything else goes to click unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .test_cli import FakeDaemon, cove, sockdir  # noqa: F401 - a fixture


@pytest.fixture
def fake(sockdir: str) -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(os.path.join(sockdir, "cove.sock"))
    daemon.on("POST", "/networks/create", {"Id": "n" * 64, "Warning": ""}, 201)
    daemon.on("DELETE", "/networks/gone", {"message": "network gone not found"}, 404)
    daemon.on("DELETE", "/networks/[a-z0-9]+", None, 204)
    daemon.on("DELETE", "/containers/[a-z0-9]+", None, 204)
    daemon.on("DELETE", "/containers/bad", {"message": "No such container: bad"}, 404)
    daemon.start()
    yield daemon
    daemon.stop()
    assert daemon.errors == []


def fast_process(fake: FakeDaemon, *args: str) -> tuple[int, str, str, list[str]]:
    """Run the fast entry point in a fresh interpreter; also report which heavy modules it loaded."""
    code = ("import sys; from cove.cli.fast import main; rc = main(sys.argv[1:]);"
            "sys.stdout.flush(); heavy = [m for m in ('click', 'cove.cli.main', 'dataclasses')"
            " if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    env = dict(os.environ, COVE_HOST=fake.url, COVE_NO_AUTOSTART="1")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    *out, heavy = done.stdout.splitlines()
    return done.returncode, "".join(line + "\n" for line in out), done.stderr, [heavy]


@pytest.mark.parametrize("args", [
    ("network", "create", "fastnet"),
    ("network", "rm", "fastnet", "other"),
    ("network", "rm", "gone"),
    ("network", "rm", "-f", "gone", "fastnet"),
    ("rm", "-f", "c1", "c2"),
    ("rm", "c1", "bad", "c2"),
])
def test_fast_path_matches_click_and_imports_no_click(
        fake: FakeDaemon, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err, heavy = fast_process(fake, *args)
    sent = [(r.method, r.path, r.json) for r in fake.requests]
    fake.requests.clear()
    monkeypatch.setenv("COVE_HOST", fake.url)
    result = cove(*args)
    assert (rc, out, err) == (result.exit_code, result.stdout, result.stderr)
    assert sent == [(r.method, r.path, r.json) for r in fake.requests]
    assert sent, "nothing was sent"
    assert heavy == ["HEAVY []"]


def test_other_command_lines_go_to_click(fake: FakeDaemon) -> None:
    rc, out, _err, heavy = fast_process(fake, "network", "create", "--internal", "x")
    assert rc == 0 and out == "n" * 64 + "\n"
    assert fake.find("POST", "/networks/create")[0].json["Internal"] is True
    assert "'click'" in heavy[0]
    rc, _out, err, _heavy = fast_process(fake, "rm")
    assert rc == 125 and "rm" in err


def test_version_fast(fake: FakeDaemon) -> None:
    rc, out, _err, heavy = fast_process(fake, "--version")
    assert (rc, out, heavy) == (0, "cove version 0.1.0\n", ["HEAVY []"])
    assert fake.requests == []
