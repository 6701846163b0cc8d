"""A daemon connection that breaks while the CLI waits for, or reads, an answer: what a user sees.

The project's rule for failures is one line on stderr that names the cause and a non-zero exit,
never a Python traceback.  docker prints ``error during connect: <request>: EOF`` (or ``...:
read: connection reset by peer``) and exits 1 (125 for ``run``); so does cove, with cove's
words.  A fake daemon on a unix socket in a temp dir reads each request and then breaks the
connection at one point of its answer; the CLI runs as the installed ``cove`` script does (its
fast path, :func:`cove.cli.fast.main`, in front of the click commands), in a fresh process, for
command lines of both paths.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .test_cli import sockdir  # noqa: F401 - a fixture
from .brokendaemon import BreakingDaemon

HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

#: how the fake daemon breaks the connection: (what it sends, whether it resets), and the words the
#: one-line error must hold
BREAKS: dict[str, tuple[bytes | None, bool, str]] = {
    "closed-before-reply": (b"", False, "closed before a response"),
    "closed-in-status-line": (b"HTTP/1.1 200", False, "closed inside the response head"),
    "closed-in-headers": (HEAD_200 + b"Content-Le", False, "closed inside the response head"),
    "closed-in-body": (HEAD_200 + b"Content-Length: 400\r\n\r\n[{\"Id\": \"c1", False,
                       "closed inside the body (11 of 400 bytes)"),
    "closed-in-chunk": (HEAD_200 + b"Transfer-Encoding: chunked\r\n\r\n40\r\n[{\"Id\"", False,
                        "closed inside a chunk"),
    "reset-before-reply": (b"", True, "connection reset by peer"),
    "reset-in-body": (HEAD_200 + b"Content-Length: 400\r\n\r\n[{\"Id\": \"c1", True, "connection reset by peer"),
}

#: command lines of the fast path (cove.cli.fast) and of the click commands, and the exit status
#: docker gives them on a connection error
COMMANDS: list[tuple[tuple[str, ...], int]] = [
    (("ps",), 1),                                    # fast
    (("inspect", "c1"), 1),                          # fast
    (("network", "create", "n1"), 1),                # fast
    (("rm", "c1"), 1),                               # fast
    (("exec", "web", "true"), 1),                    # fast (its first request, the exec create)
    (("run", "-d", "bb"), 125),                      # fast
    (("network", "ls"), 1),                          # click
    (("ps", "--format", "{{.ID}}"), 1),              # click
    (("inspect", "--type", "container", "c1"), 1),   # click
    (("logs", "c1"), 1),                             # click, the body streamed to stdout
    (("images",), 1),                                # click
]


def run_cove(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``cove`` script (its entry point, cove.cli.fast:main) in a fresh interpreter."""
    env = dict(os.environ, COVE_HOST=url, COVE_NO_AUTOSTART="1")
    return subprocess.run([sys.executable, "-c", "import sys; from cove.cli.fast import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=env, timeout=30, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.returncode == code, (done.returncode, done.stderr)
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(params=sorted(BREAKS))
def breaking(request: pytest.FixtureRequest, sockdir: str) -> Iterator[tuple[BreakingDaemon, str]]:  # noqa: F811
    answer, reset, words = BREAKS[request.param]
    server = BreakingDaemon(os.path.join(sockdir, "cove.sock"), answer or b"", reset)
    try:
        yield server, words
    finally:
        server.close()


@pytest.mark.parametrize(("args", "code"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_connection_broken_mid_reply_is_one_line_and_a_failure(
        breaking: tuple[BreakingDaemon, str], args: tuple[str, ...], code: int) -> None:
    server, words = breaking
    done = run_cove(server.url, *args)
    line = assert_one_line_error(done, code, "error during connect:", words, server.url)
    assert server.served >= 1, "the request never reached the fake daemon"
    assert done.stdout == "", done.stdout                       # no half answer printed as if whole
    assert line.startswith(("cove: ", "cove: error during connect")), line


@pytest.mark.parametrize("args", [("ps",), ("network", "ls")], ids=["fast", "click"])
def test_no_daemon_listening_is_one_line_and_a_failure(sockdir: str, args: tuple[str, ...]) -> None:  # noqa: F811
    """A socket path where nothing is (the daemon never ran), and a socket nobody listens on
    (a daemon that died without removing it): docker's "Cannot connect ..." line, exit 1."""
    missing = os.path.join(sockdir, "missing.sock")
    dead = os.path.join(sockdir, "dead.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as orphan:
        orphan.bind(dead)                  # bound, never listening: connect() is refused
        for path, cause in ((missing, "No such file or directory"), (dead, "Connection refused")):
            done = run_cove(f"unix://{path}", *args)
            assert_one_line_error(done, 1, "Cannot connect to the cove daemon", cause, path)


def test_a_log_stream_cut_short_is_an_error_after_what_came(sockdir: str) -> None:  # noqa: F811
    """``cove logs``: the container's inspect answered whole, then its log stream (chunked, as the
    daemon sends it) breaks after one frame: the frame is printed, then the one-line error and
    exit 1 (docker: ``error from daemon in stream`` / ``unexpected EOF``), not a quiet exit 0
    that passes a cut log for the whole log."""
    inspect = b'{"Id": "c1", "Config": {"Tty": false}}'
    frame = b"\x01\0\0\0\0\0\0\x06hello\n"
    server = BreakingDaemon(
        os.path.join(sockdir, "cove.sock"),
        HEAD_200 + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(frame), frame) + b"40\r\n\x01\0",
        False,
        whole=(HEAD_200 + b"Content-Length: %d\r\n\r\n%s" % (len(inspect), inspect),))
    try:
        done = run_cove(server.url, "logs", "c1")
    finally:
        server.close()
    assert done.stdout == "hello\n"
    assert_one_line_error(done, 1, "error during connect:", "GET /containers/c1/logs", "closed inside a chunk")
