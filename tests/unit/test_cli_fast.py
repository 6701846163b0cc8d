"""The CLI's fast path (cove.cli.fast): the same requests and output as the click
commands, without importing click; anything else goes to click unchanged."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cove.cli.fast as fastmod

from .brokendaemon import BreakingDaemon, accepted_rest
from .test_cli import FakeDaemon, _exec_routes, cove, sockdir  # noqa: F401 - a fixture

#: where this cove is imported from (src/), which the installed launcher puts on sys.path
SRC = str(Path(fastmod.__file__).resolve().parents[2])


@pytest.fixture
def fake(sockdir: str) -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(os.path.join(sockdir, "cove.sock"))
    daemon.on("POST", "/networks/create", {"Id": "n" * 64, "Warning": ""}, 201)
    daemon.on("DELETE", "/networks/gone", {"message": "network gone not found"}, 404)
    daemon.on("DELETE", "/networks/[a-z0-9]+", None, 204)
    daemon.on("DELETE", "/containers/[a-z0-9]+", None, 204)
    daemon.on("DELETE", "/containers/bad", {"message": "No such container: bad"}, 404)
    daemon.on("GET", "/containers/json", PS_LIST)
    daemon.on("GET", "/containers/c2/json", {"Id": "c2" * 32, "State": {
        "Running": True, "StartedAt": "2026-12-05T07:00:00.5Z", "FinishedAt": "0001-01-01T00:00:00Z"}})
    daemon.on("GET", "/containers/c1/json", {"Id": "c1" * 32, "Name": "/c1", "Config": {"Env": ["A=é"]}})
    daemon.on("GET", "/containers/[a-z0-9]+/json", {"message": "No such container"}, 404)
    daemon.on("GET", "/networks/net1", {"Name": "net1", "Id": "n" * 64})
    daemon.on("GET", "/networks/[a-z0-9]+", {"message": "network not found"}, 404)
    daemon.on("GET", "/images/[a-z0-9]+/json", {"message": "No such image"}, 404)
    daemon.on("GET", "/images/broken/json", {"message": "store is locked"}, 500)
    daemon.on("POST", "/containers/create", {"Id": "d" * 64, "Warnings": ["low memory"]}, 201)
    daemon.on("POST", "/containers/[a-z0-9]+/start", None, 204)
    _exec_routes(daemon, 7)
    daemon.on("POST", "/containers/nope/exec", {"message": "No such container: nope"}, 404)
    daemon.start()
    yield daemon
    daemon.stop()
    assert daemon.errors == []


PS_LIST = [
    {"Id": "c1" * 32, "Image": "bb", "Command": "sleep 3600 with a long tail", "Created": 1_700_000_000,
     "Status": "Up 2 minutes", "State": "running", "Names": ["/c1", "/other/link"],
     "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"}]},
    {"Id": "c2" * 32, "Image": "sha256:" + "e" * 64, "Command": "sh", "Created": 1_700_000_100,
     "Status": "", "State": "running", "Names": ["/c2"], "Ports": []},
]


def fast_process(fake: FakeDaemon, *args: str, autostart: bool = False,
                 no_site: bool = False) -> tuple[int, str, str, list[str]]:
    """Run the fast entry point in a fresh interpreter; also report which heavy modules it loaded."""
    code = ("import sys; from cove.cli.fast import main; rc = main(sys.argv[1:]);"
            "sys.stdout.flush(); heavy = [m for m in ('click', 'cove.cli.main', 'dataclasses', 'typing',"
            " 'urllib.parse', 'contextlib', 'cove.cli.run', 'cove.cli.containers', 'socket', 'json', 're',"
            " 'enum', 'collections', 'threading', 'cove.cli.client', 'cove.errors', '__future__', 'struct', '_json'"
            + (", 'os'" if no_site else "") + ")"
            " if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    env = dict(os.environ, COVE_HOST=fake.url, COVE_NO_AUTOSTART="1")
    if autostart:
        del env["COVE_NO_AUTOSTART"]
        env["COVE_AUTOSTART"] = "1"
    if no_site:     # no site-packages, so no editable install's .pth: the launcher puts cove's path first
        env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, *(["-S"] if no_site else []), "-c", code, *args], capture_output=True,
                          text=True, env=env, timeout=30, check=False)
    *out, heavy = done.stdout.splitlines()
    return done.returncode, "".join(line + "\n" for line in out), done.stderr, [heavy]


@pytest.mark.parametrize("args", [
    ("network", "create", "fastnet"),
    ("network", "rm", "fastnet", "other"),
    ("network", "rm", "gone"),
    ("network", "rm", "-f", "gone", "fastnet"),
    ("rm", "-f", "c1", "c2"),
    ("rm", "c1", "bad", "c2"),
    ("ps",),
    ("ps", "-a"),
    ("ps", "-aq"),
    ("ps", "-q", "--no-trunc"),
    ("ps", "--no-trunc", "-a"),
    ("inspect", "c1"),
    ("inspect", "c1", "net1", "nothing"),
    ("inspect", "broken"),
    ("run", "-d", "bb"),
    ("run", "-d", "--name", "web", "--network", "net1", "-e", "A=1", "-e", "B=x=y", "bb", "sleep", "9"),
    ("run", "--rm", "--net", "net1", "-d", "--name", "w2", "bb", "-d", "--name"),
    ("run", "-d", "--network", "net1", "--ip", "10.1.2.3", "--name", "w3", "bb", "sleep", "9"),
    ("exec", "web", "sh", "-c", "exit 7"),
    ("exec", "nope", "true"),
])
def test_fast_path_matches_click_and_imports_no_click(
        fake: FakeDaemon, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err, heavy = fast_process(fake, *args)
    sent = [(r.method, r.path, r.json) for r in fake.requests]
    queries = [r.query for r in fake.requests]
    fake.requests.clear()
    monkeypatch.setenv("COVE_HOST", fake.url)
    result = cove(*args)
    assert (rc, out, err) == (result.exit_code, result.stdout, result.stderr)
    assert sent == [(r.method, r.path, r.json) for r in fake.requests]
    assert queries == [r.query for r in fake.requests]
    assert sent, "nothing was sent"
    allowed: set[str] = set()
    if err:     # the client's APIError, and report_error: click and what it imports
        allowed |= {"click", "cove.cli.main", "contextlib", "typing", "re", "enum", "collections", "threading",
                    "socket", "json", "cove.cli.client", "cove.errors", "__future__", "struct", "_json"}
    assert set(ast.literal_eval(heavy[0].removeprefix("HEAVY "))) <= allowed, heavy


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


@pytest.mark.parametrize("args", [
    ("exec", "-it", "web", "sh"), ("exec", "web"), ("exec", "-e", "A=1", "web", "env"),
    ("ps", "-a", "-a"), ("ps", "-n", "2"), ("ps", "--format", "{{.ID}}"), ("inspect", "-f", "{{.Id}}", "c1"),
    ("run", "bb"), ("run", "-d", "-p", "80", "bb"), ("run", "-dit", "bb"), ("run", "-d", "-e", "HOME", "bb"),
    ("run", "-d", "--network", "a", "--network", "b", "bb"), ("run", "-d"),
    ("run", "-d", "--network", "a", "--ip", "10.1.2", "bb"), ("run", "-d", "--network", "a", "--ip", "010.1.2.3", "bb"),
    ("run", "-d", "--network", "a", "--ip", "10.1.2.256", "bb"), ("run", "-d", "--network", "a", "--ip", "fe80::1", "bb"),
    ("run", "-d", "--network", "a", "--ip", "10.1.2.3", "--ip", "10.1.2.4", "bb"),
])
def test_shapes_the_fast_path_leaves_to_click(args: tuple[str, ...]) -> None:
    from cove.cli.fast import PS_FLAGS, _ps, run_d_body

    if args[0] == "run":
        assert run_d_body(list(args[1:])) is None
    elif args[0] == "exec":
        from cove.cli.fast import fast

        assert fast(list(args)) is None
    elif args[0] == "ps":
        assert _ps(list(args[1:])) is None and PS_FLAGS
    else:
        from cove.cli.fast import fast

        assert args[1].startswith("-") and fast(list(args)) is None


def test_run_d_body_is_the_click_commands_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path's body equals cove.cli.run.create_body's for the same flags."""
    from cove.cli.fast import run_d_body
    from cove.cli.run import create_body, run

    argv = ["--rm", "--name", "web", "-d", "--net", "n1", "-e", "K=V", "-e", "X=", "bb", "sh", "-c", "x"]
    ctx = run.make_context("run", list(argv))
    parsed = run_d_body(argv)
    assert parsed is not None
    assert parsed == (ctx.params["name"], create_body(ctx.params))
    ctx = run.make_context("run", ["-d", "bb"])
    assert run_d_body(["-d", "bb"]) == (None, create_body(ctx.params))
    argv = ["-d", "--network", "n1", "--ip", "10.1.2.3", "bb"]
    ctx = run.make_context("run", list(argv))
    assert run_d_body(argv) == (None, create_body(ctx.params))


@pytest.mark.parametrize("text", ["plain", "a b+c/d:e@f=g,h", "é/ü?&#%", "~._-", "x y", ""])
def test_quote_matches_urllib(text: str) -> None:
    from urllib.parse import quote, urlencode

    from cove.cli.client import segment, target

    assert segment(text) == quote(text, safe="/:@+=,")
    assert target("/p", {"name": text, "all": True, "skip": None}) == (
        "/p?" + urlencode([("name", text), ("all", "1")]))


def test_installed_launcher_runs_without_site(fake: FakeDaemon) -> None:
    """The ``cove`` script runs Python with -S and still falls back to click (site added then)."""
    from .test_cli import COVE

    head = COVE.read_text().splitlines()[0]
    assert head.endswith("python3 -S"), head
    env = dict(os.environ, COVE_HOST=fake.url, COVE_NO_AUTOSTART="1")
    fast = subprocess.run([str(COVE), "network", "create", "fastnet"], capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    slow = subprocess.run([str(COVE), "network", "create", "--internal", "slownet"], capture_output=True,
                          text=True, env=env, timeout=30, check=False)
    assert (fast.returncode, fast.stdout) == (0, "n" * 64 + "\n")
    assert (slow.returncode, slow.stdout, slow.stderr) == (0, "n" * 64 + "\n", "")


def test_autostart_hook_imports_click_only_when_no_daemon_answers(fake: FakeDaemon) -> None:
    """With autostart allowed (what users at a terminal run) a daemon that answers costs no click import."""
    rc, out, _err, heavy = fast_process(fake, "network", "create", "fastnet", autostart=True)
    assert (rc, out, heavy) == (0, "n" * 64 + "\n", ["HEAVY []"])


ODD_JSON = [
    {"Id": "c1" * 32, "Env": ["A=é", "B=\u2028\ud7ff"], "n": [0, -1, 10 ** 30, 2.5, -0.0, 1e100], "t": True,
     "f": False, "z": None, "e": {}, "l": [], "nested": {"a": [{"b": [[]]}]}, "tab\t": "quote\"back\\slash\n"},
    [], {}, "", 0, 1.5, None, [{"x": (1, 2)}],
    {"Id": "n" * 64, "Warning": ""}, {"Name": "plain-ASCII_name.1", "Labels": {}, "IPAM": {"Config": []}, "k": -0},
    [{"a": 1, "b": [True, False, None, -12, 0]}] * 40, {"\u00e9": "\x7f", "\x1f": "\\", "big": -(10 ** 40)}, [[[[[]]]]],
    {1: "int key", None: "none key"}, "x" * 3000,
]


@pytest.mark.parametrize("value", ODD_JSON)
def test_client_json_is_the_json_modules(value: object) -> None:
    """The fast path's client encodes and decodes JSON with the C modules alone, byte for byte
    what ``json.dumps``/``json.loads`` (and ``json.dumps(indent=4, ensure_ascii=False)``, the
    inspect output) give."""
    import json

    from cove.cli.client import decode_body, dumps, loads
    from cove.cli.fast import pretty_json

    assert dumps(value) == json.dumps(value)
    assert pretty_json(value) == json.dumps(value, indent=4, ensure_ascii=False)
    raw = json.dumps(value).encode()
    assert loads(raw) == json.loads(raw)
    assert loads(b" \n" + json.dumps(value, ensure_ascii=False).encode() + b"\r\n") == json.loads(raw)
    assert decode_body(b"\xef\xbb\xbf" + raw) == json.loads(b"\xef\xbb\xbf" + raw)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 30), 10 ** 30) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["", "web", "a b", 'q"', "back\\", "\u00e9", "\x7f", "\t", "\u2028", "\ud800"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES, pad=st.sampled_from(["", " ", "\n\t", "\r\n "]))
def test_client_json_small_codec_is_the_json_modules(value: object, pad: str) -> None:
    """cove.cli.wire's hand-written codec for small texts (the C module's load is ~0.2 ms of a
    CLI run) gives json.dumps's text and json.loads's value or error for any JSON value, and for
    texts cut or spoiled anywhere; inspect's pretty_json gives json.dumps(indent=4,
    ensure_ascii=False)'s text."""
    import json
    import math

    from cove.cli.wire import dumps, loads

    from cove.cli.fast import pretty_json

    text = json.dumps(value)
    assert dumps(value) == text
    assert pretty_json(value) == json.dumps(value, indent=4, ensure_ascii=False)
    if not any(isinstance(v, float) and math.isnan(v) for v in _leaves(value)):
        assert loads(pad + text + pad) == json.loads(text)
    for cut in {len(text) // 2, len(text) - 1, 1}:
        for spoiled in (text[:cut], text[:cut] + "," + text[cut:], text[:cut] + "0" + text[cut:]):
            try:
                expected: object = ("ok", json.loads(spoiled))
            except ValueError as exc:
                expected = ("error", str(exc))
            try:
                got: object = ("ok", loads(spoiled))
            except ValueError as exc:
                got = ("error", str(exc))
            if expected[0] == "ok" and _has_nan(expected[1]):
                continue
            assert got == expected, spoiled


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _has_nan(value: object) -> bool:
    return any(isinstance(v, float) and v != v for v in _leaves(value))


@pytest.mark.parametrize("raw", [b"{bad", b"[] x", b"[1,]", b'{"a": 1', b'"\\x"', b"\x00\x00", b"01", b"-", b"[1.]",
                                 b'{"a" 1}', b"nul", b"[true false]", b'{"a": 1,}', b'"a\x01"'])
def test_client_json_refuses_what_json_refuses(raw: bytes) -> None:
    import json

    from cove.cli.client import decode_body, loads

    with pytest.raises(json.JSONDecodeError) as mine:
        loads(raw)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(raw)
    assert str(mine.value) == str(theirs.value)
    assert decode_body(raw) == raw.decode("utf-8", "replace")


def test_fast_path_imports_neither_socket_nor_json(fake: FakeDaemon) -> None:
    """``import socket, json`` was ~13 ms of CPU of every fast command (``enum``, ``re``,
    ``selectors``, ``collections``); the client uses ``_socket`` and ``_json`` directly.
    Seen failing (``['socket', 're', 'enum', 'collections', 'json']`` loaded) with the
    client's ``import socket, json`` put back; ``os`` (~1.5 ms under ``-S``, the launcher's
    flag) seen loaded with fast.py's ``import os`` put back."""
    for args in (("network", "create", "fastnet"), ("ps",), ("inspect", "net1"), ("exec", "web", "true")):
        rc, _out, err, heavy = fast_process(fake, *args, no_site=True)     # as the installed launcher
        loaded = set(ast.literal_eval(heavy[0].removeprefix("HEAVY ")))
        assert rc in (0, 1, 7) and "Traceback" not in err, (args, err)     # exec: 7, inspect: not found
        assert loaded & {"socket", "json", "re", "enum", "collections", "threading", "os"} == set(), (args, heavy)


def test_fast_path_answers_without_the_client(fake: FakeDaemon) -> None:
    """A command the daemon answers reads its answers with cove.cli.wire: cove.cli.client (15
    classes), cove.errors and __future__ (~0.1-0.2 ms of CPU each at every CLI start here,
    bench/cli_micro.py) stay unloaded, and so do struct for exec's frames and _json (short JSON
    is read and written by hand).  ``inspect net1``
    is answered 404 for a container first.  Seen failing with fast.py's client calls put back
    (``['cove.cli.client', 'cove.errors', '__future__']``)."""
    fake.on("GET", "/containers/c1/json", {"Id": "c1" * 32, "Name": "/c1"})     # later routes win
    fake.on("GET", "/networks/net1", {"Name": "net1", "Id": "n" * 64})
    for args in (("network", "create", "fastnet"), ("network", "rm", "fastnet"), ("rm", "-f", "c1", "c2"), ("ps",),
                 ("ps", "-q"), ("inspect", "c1", "net1"), ("exec", "web", "true"),
                 ("run", "-d", "--name", "web", "--network", "net1", "bb", "sleep", "9")):
        rc, _out, err, heavy = fast_process(fake, *args, no_site=True)
        loaded = set(ast.literal_eval(heavy[0].removeprefix("HEAVY ")))
        assert (rc, err) == (7 if args[0] == "exec" else 0, "WARNING: low memory\n" if args[0] == "run" else ""), args
        assert loaded == set(), (args, heavy)


@pytest.mark.parametrize("answer", [b"", b"HELLO\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 30\r\n\r\n{\"message\": \"cut",
                                    b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"])
@pytest.mark.parametrize("args", [("network", "create", "fastnet"), ("inspect", "c1"), ("ps",), ("rm", "c1"),
                                  ("exec", "web", "true")])
def test_broken_answers_are_reported_as_the_client_reports_them(
        sockdir: str, answer: bytes, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path reads answers without cove.cli.client; a connection that closes early, a
    head that is not HTTP, a bad Content-Length, a cut error body: the click command's output."""
    server = BreakingDaemon(os.path.join(sockdir, "broken.sock"), answer, reset=False)
    try:
        env = dict(os.environ, COVE_HOST=server.url, COVE_NO_AUTOSTART="1")
        done = subprocess.run([sys.executable, "-c", "import sys; from cove.cli.fast import main; sys.exit(main())",
                               *args], capture_output=True, text=True, env=env, timeout=30, check=False)
        monkeypatch.setenv("COVE_HOST", server.url)
        result = cove(*args)
    finally:
        server.close()
    assert (done.returncode, done.stdout, done.stderr) == (result.exit_code, result.stdout, result.stderr)
    assert done.returncode != 0 and "Traceback" not in done.stderr


def _accepted_bytes(listener: Any) -> bytes:
    conn, _ = listener.accept()
    with conn:
        return accepted_rest(conn)


@pytest.mark.parametrize(("method", "path", "query", "body"), [
    ("DELETE", "/containers/c1", {"force": True, "v": None}, None),
    ("DELETE", "/containers/c1", {"force": None, "v": None}, None),
    ("DELETE", "/networks/n~1 é/x", None, None),
    ("POST", "/containers/c1/start", None, None),
    ("POST", "/networks/create", None, {"Name": "é\"x", "IPAM": {"Config": []}, "Internal": False}),
    ("POST", "/containers/create", {"name": "web 1"}, {"Cmd": ["sleep", "9"], "Env": ["A=é"], "Entrypoint": None}),
])
def test_presend_writes_the_bytes_the_client_writes(sockdir: str, method: str, path: str, query: Any, body: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A request written before cove.cli.client is loaded is the one Client.send makes."""
    import socket

    from cove.cli.client import Client
    from cove.cli.wire import presend, segment, target

    where = os.path.join(sockdir, "pre.sock")
    path = "/".join(segment(part) if i > 1 else part for i, part in enumerate(path.split("/")))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(where)
        listener.listen(2)
        monkeypatch.setenv("COVE_HOST", f"unix://{where}")
        sock = presend(method, target(path, query), body)
        assert sock is not None
        sock.close()
        early = _accepted_bytes(listener)
        pending = Client(f"unix://{where}").send(method, path, query=query, body=body)
        late = _accepted_bytes(listener)
        pending._close()
    assert early == late
    assert early.startswith(f"{method} {target(path, query)} HTTP/1.1\r\n".encode())


def test_presend_sends_nothing_without_a_local_daemon(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cove.cli.wire import presend

    monkeypatch.setenv("COVE_HOST", f"unix://{sockdir}/nobody.sock")
    assert presend("DELETE", "/containers/x") is None
    monkeypatch.setenv("COVE_HOST", "tcp://127.0.0.1:1")
    assert presend("DELETE", "/containers/x") is None


@pytest.mark.parametrize("args", [("rm", "c1", "bad", "c2"), ("network", "rm", "-f", "gone", "fastnet"),
                                  ("network", "create", "fastnet"), ("inspect", "c1")])
def test_launch_leaves_with_the_answer_and_its_output(fake: FakeDaemon, args: tuple[str, ...]) -> None:
    """The launcher's posix._exit after a fast answer loses no output and keeps the exit status
    and the requests of main() (stdout and stderr are pipes here: block-buffered until the flush)."""
    rc, out, err, _heavy = fast_process(fake, *args)
    sent = [(r.method, r.path, r.query) for r in fake.requests]
    fake.requests.clear()
    env = dict(os.environ, COVE_HOST=fake.url, COVE_NO_AUTOSTART="1")
    env.pop("PYTHONUNBUFFERED", None)           # as a user's shell has it
    done = subprocess.run([sys.executable, "-c", "import sys; from cove.cli.fast import launch;"
                           " sys.argv[0] = 'cove'; launch()", *args],
                          capture_output=True, text=True, env=env, timeout=30, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (rc, out, err)
    assert sent == [(r.method, r.path, r.query) for r in fake.requests]
    assert out
