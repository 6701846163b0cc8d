"""When the CLI may start a daemon by itself: only for a person at a terminal or when asked.

A developer ran ``cove`` on a machine where no daemon answered, from a script: the CLI started one
in the background, in the machine's own network namespace, and it made a bridge, nft tables and
``ip_forward=1`` there.  Now autostart needs stdin and stderr to be a terminal, or
``COVE_AUTOSTART=1``, and never happens with ``COVE_NO_AUTOSTART=1``
(:func:`cove.cli.client.autostart_allowed`); otherwise the one-line error says how to start one.

Both entry points are run in a fresh interpreter, with stdin and stderr on a pseudo-terminal or on
pipes; ``spawn_daemon`` is replaced there by one that only reports that it was called.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from cove.cli import client as cove_client

ENVS: dict[str, dict[str, str]] = {
    "none": {},
    "AUTOSTART=1": {"COVE_AUTOSTART": "1"},
    "AUTOSTART=0": {"COVE_AUTOSTART": "0"},
    "NO_AUTOSTART=1": {"COVE_NO_AUTOSTART": "1"},
    "both=1": {"COVE_AUTOSTART": "1", "COVE_NO_AUTOSTART": "1"},
}


def expected(env: dict[str, str], tty: bool) -> bool:
    if env.get("COVE_NO_AUTOSTART") == "1":
        return False
    if "COVE_AUTOSTART" in env:
        return env["COVE_AUTOSTART"] == "1"
    return tty


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "no-tty"])
@pytest.mark.parametrize("name", list(ENVS))
def test_decision_table(name: str, tty: bool) -> None:
    assert cove_client.autostart_allowed(ENVS[name], tty=tty) is expected(ENVS[name], tty)


@pytest.mark.parametrize("stdin_tty, stderr_tty, closed", [
    (True, True, False), (True, False, False), (False, True, False), (True, True, True)])
def test_interactive_needs_stdin_and_stderr_on_a_terminal(monkeypatch: pytest.MonkeyPatch, stdin_tty: bool,
                                                          stderr_tty: bool, closed: bool) -> None:
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            if closed:
                raise ValueError("I/O operation on closed file")
            return self.tty

    monkeypatch.setattr(sys, "stdin", Stream(stdin_tty))
    monkeypatch.setattr(sys, "stderr", Stream(stderr_tty))
    assert cove_client.interactive() is (stdin_tty and stderr_tty and not closed)
    monkeypatch.setattr(sys, "stdin", None)                  # python started with fd 0 closed
    assert cove_client.interactive() is False


# One CLI run in a fresh interpreter: spawn_daemon only says it was called (and "dies").
RUN = """
import sys
import cove.cli.main as cli_main
from cove.cli.client import Spawned

def spawn(url):
    print("SPAWNED", url, flush=True)
    return Spawned(pid=1, log_path="/dev/null", poll=lambda: 3)

cli_main.spawn_daemon = spawn
if sys.argv[1] == "fast":
    from cove.cli.fast import main
else:
    main = cli_main.main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A unix socket URL where no daemon answers."""
    with tempfile.TemporaryDirectory(prefix="cove-autostart-") as d:
        yield f"unix://{d}/cove.sock"


def run_cli(entry: str, env: dict[str, str], tty: bool, url: str) -> tuple[int, str, str]:
    """``cove ps`` through ``entry`` (fast: the ``cove`` script's path; click: cove.cli.main) with
    stdin and stderr on a pseudo-terminal (tty) or on pipes; returns (status, stdout, stderr)."""
    full = {k: v for k, v in os.environ.items() if k not in ("COVE_AUTOSTART", "COVE_NO_AUTOSTART")}
    full.update(env, COVE_HOST=url)
    argv = [sys.executable, "-c", RUN, entry, "ps"]
    if not tty:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=full,
                              timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=full, text=True)
        os.close(slave)
        slave = -1
        out, _ = proc.communicate(timeout=60)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:                        # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            err += chunk
        return proc.returncode, out, err.decode().replace("\r\n", "\n")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


@pytest.mark.parametrize("entry", ["fast", "click"])
@pytest.mark.parametrize("tty", [True, False], ids=["tty", "no-tty"])
@pytest.mark.parametrize("name", list(ENVS))
def test_both_entry_points_follow_the_table(entry: str, tty: bool, name: str, nowhere: str) -> None:
    """Seen failing with ``cli_client`` passing the hook unless ``COVE_NO_AUTOSTART=1`` (as before):
    both entry points started a daemon from a script (no terminal, no variable) and with
    ``COVE_AUTOSTART=0`` (SPAWNED printed)."""
    env = ENVS[name]
    status, out, err = run_cli(entry, env, tty, nowhere)
    assert status != 0
    assert "Traceback" not in err
    if expected(env, tty):
        assert out == f"SPAWNED {nowhere}\n", err
        assert "started one in the background (pid 1" in err
        assert "exited with status 3" in err
    else:
        assert out == "", err
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"cove: Cannot connect to the cove daemon at {nowhere} (")
        assert "start one with `cove daemon &`" in lines[0]
        if env.get("COVE_NO_AUTOSTART") == "1":
            assert "COVE_NO_AUTOSTART=1 keeps the CLI from starting one" in lines[0]
        else:
            assert "or set COVE_AUTOSTART=1 to let the CLI start it" in lines[0]
