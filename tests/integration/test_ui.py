"""``cove ui`` in a real browser: headless Chromium loads the page, runs its script, and the DOM it
ends with names the containers and networks that exist, the picture and the reachability matrix.

Chromium is Debian's (scripts/install.sh installs it); it talks only to 127.0.0.1 inside the
sandbox namespace, with its background networking off.  Missing Chromium fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.integration.conftest import COVE, Daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def page(cove: Daemon, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    extra = getattr(request, "param", [])
    proc = subprocess.Popen([*COVE, "ui", "--listen", f"127.0.0.1:{port}", *extra], env=cove.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def chromium_dom(url: str, tmp_path) -> str:
    """The DOM after the page's first drawing; the budget (virtual time) ends before the page opens its
    event stream at 2 s, which would otherwise keep a headless Chromium waiting for the network."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("Debian's chromium is not installed (scripts/install.sh installs it)")
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=1500", "--dump-dom", url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_the_page_shows_the_containers_networks_picture_and_matrix(cove: Daemon, page: str, tmp_path) -> None:
    cove.ok("network", "create", "greatwall")
    cove.ok("run", "-d", "--name", "milk", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "bread", "bb", "sleep", "300")
    cove.ok("run", "-d", "--name", "beijing", "--network", "greatwall", "bb", "sleep", "300")
    dom = chromium_dom(page, tmp_path)
    for name in ("milk", "bread", "beijing"):
        assert f'class="item container" data-name="{name}"' in dom, dom[-3000:]
    for net in ("bridge", "greatwall", "host", "none"):
        assert f'class="network" data-name="{net}"' in dom
    assert "<svg" in dom and "cove0" in dom                     # the Graphviz picture, inline
    assert re.search(r"rx [\d.]+k?B / tx [\d.]+k?B", dom), dom[-3000:]   # each interface's traffic
    st = json.loads(urllib.request.urlopen(page + "/api/container/milk/stats", timeout=30).read())
    assert "eth0" in st["networks"] and st["read"] != "0001-01-01T00:00:00Z"
    assert 'id="reach"' in dom and "up to date" in dom
    m = json.loads(urllib.request.urlopen(page + "/api/matrix?probe=1", timeout=60).read())
    assert m["cells"]["milk bread"]["reachable"] is True and m["cells"]["milk bread"]["agrees"] is True
    assert m["cells"]["milk beijing"]["reachable"] is False and m["cells"]["milk beijing"]["agrees"] is True


def test_read_only_unless_allowed(cove: Daemon, page: str) -> None:
    cove.ok("run", "-d", "--name", "keep", "bb", "sleep", "300")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(page + "/api/container/keep/stop", method="POST"), timeout=10)
    assert err.value.code == 403
    assert cove.ok("inspect", "-f", "{{.State.Running}}", "keep").strip() == "true"


@pytest.mark.parametrize("page", [["--allow-actions"]], indirect=True)
def test_actions_when_allowed(cove: Daemon, page: str) -> None:
    cove.ok("run", "-d", "--name", "halt", "bb", "sleep", "300")
    req = urllib.request.Request(page + "/api/container/halt/stop", method="POST")
    assert urllib.request.urlopen(req, timeout=30).status == 200
    assert cove.ok("inspect", "-f", "{{.State.Running}}", "halt").strip() == "false"


def test_events_reach_the_page(cove: Daemon, page: str) -> None:
    with urllib.request.urlopen(page + "/api/events", timeout=30) as stream:
        assert stream.readline().startswith(b": connected")
        stream.readline()
        cove.ok("network", "create", "signal")
        line = stream.readline()
        assert line.startswith(b"data: ") and json.loads(line[6:])["Type"] == "network"
