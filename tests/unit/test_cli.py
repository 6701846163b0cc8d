"""The ``cove`` CLI against a fake daemon on a unix socket.

The fake daemon (an http.server on a unix socket in a temporary directory) records
every request and answers canned JSON, including hijacked ``101 UPGRADED`` streams
with docker's multiplexed frames.  Tests drive the CLI with click's CliRunner, and
with the installed ``cove`` script where real processes matter (stdin pipes, exit
status, start-up imports).  Nothing here starts a real daemon: ``spawn_daemon`` is
replaced for every test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner, Result

import cove.cli.main as cli_main
import cove.cli.client as cove_client
from cove.cli.main import cli
from cove.cli.streams import FrameDecoder, encode_frame
from cove.cli.client import Spawned

REAL_SPAWN = cli_main.spawn_daemon  # the autouse fixture below replaces it in every test
ROOT = Path(__file__).resolve().parents[2]
COVE = ROOT / ".venv" / "bin" / "cove"
CID = "4f66ad9a0b2e" + "1" * 52
EXEC_ID = "e" * 64


# -- the fake daemon ------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the fake daemon received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Chunked:
    """A route reply: 200 with a chunked body sent piece by piece (logs, streams)."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces


class Hijack:
    """A route reply that upgrades the connection and runs ``script(stream)``."""

    def __init__(self, script: Callable[[HijackStream], None]) -> None:
        self.script = script


class HijackStream:
    """What a hijack script sees: the raw connection after ``101 UPGRADED``."""

    def __init__(self, handler: BaseHTTPRequestHandler, fake: FakeDaemon) -> None:
        self._handler = handler
        self.fake = fake

    def send(self, data: bytes) -> None:
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def frame(self, stream: int, data: bytes) -> None:
        self.send(encode_frame(stream, data))

    def read_all(self) -> bytes:
        """Everything the client sends until it half-closes (its stdin EOF)."""
        return self._handler.rfile.read()

    def wait_started(self) -> None:
        assert self.fake.started.wait(5), "the CLI never started the container"


class FakeDaemon:
    """A recording Docker-API-shaped server on a unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self._routes: list[tuple[str, re.Pattern[str], Any, int]] = []
        self._lock = threading.Lock()
        self.started = threading.Event()
        self.stream_done = threading.Event()
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def on(self, method: str, pattern: str, reply: Any = None, status: int = 200) -> None:
        """Answer ``method`` on paths matching ``pattern``; later routes win."""
        self._routes.insert(0, (method, re.compile(pattern + r"\Z"), reply, status))

    def find(self, method: str, pattern: str) -> list[Recorded]:
        rx = re.compile(pattern + r"\Z")
        with self._lock:
            return [r for r in self.requests if r.method == method and rx.match(r.path)]

    def calls(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def start(self) -> None:
        fake = self

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: object, client_address: object) -> None:
                import traceback

                fake.errors.append(traceback.format_exc())

        class Handler(_Handler):
            daemon = fake

        self._server = Server(self.path, Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def dispatch(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        recorded = Recorded(handler.command, url.path,
                            dict(parse_qsl(url.query, keep_blank_values=True)),
                            dict(handler.headers.items()), handler.read_body())
        with self._lock:
            self.requests.append(recorded)
        for method, rx, reply, status in self._routes:
            if method == recorded.method and rx.match(recorded.path):
                break
        else:
            handler.reply(404, {"message": "page not found"})
            return
        if callable(reply) and not isinstance(reply, Hijack):
            reply = reply(recorded)
            if isinstance(reply, tuple):
                status, reply = reply
        if isinstance(reply, Hijack):
            handler.upgrade(reply, self)
        elif isinstance(reply, Chunked):
            handler.chunked(reply)
        else:
            handler.reply(status, reply)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    daemon: FakeDaemon

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.daemon.dispatch(self)

    do_POST = do_DELETE = do_PUT = do_HEAD = do_GET

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        if body is None and status == 200:
            status = 204
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def chunked(self, reply: Chunked) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in reply.pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def upgrade(self, hijack: Hijack, fake: FakeDaemon) -> None:
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                         b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        self.wfile.flush()
        try:
            hijack.script(HijackStream(self, fake))
        finally:
            fake.stream_done.set()
            self.close_connection = True


@pytest.fixture
def sockdir() -> Iterator[str]:
    # Short path: AF_UNIX socket paths are limited to 107 bytes.
    path = tempfile.mkdtemp(prefix="cove-cli-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_real_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may start a real daemon."""

    def refuse(url: str) -> Spawned:
        raise AssertionError(f"a test tried to start a real daemon for {url}")

    monkeypatch.setattr(cli_main, "spawn_daemon", refuse)


@pytest.fixture
def daemon(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(os.path.join(sockdir, "cove.sock"))

    def start(_: Recorded) -> None:
        fake.started.set()

    fake.on("POST", r"/containers/[^/]+/start", start)
    fake.start()
    monkeypatch.setenv("COVE_HOST", fake.url)
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.errors == [], "the fake daemon failed to answer"


def cove(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def cove_process(fake: FakeDaemon, *args: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, COVE_HOST=fake.url)
    return subprocess.run([str(COVE), *args], input=input, capture_output=True, env=env,
                          timeout=30, check=False)


# -- networks -------------------------------------------------------------------------


def test_network_create_sends_docker_body_and_prints_id(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/networks/create", {"Id": "n" * 64, "Warning": ""}, 201)
    result = cove("network", "create", "-d", "bridge", "--subnet", "172.30.0.0/16",
                  "--gateway", "172.30.0.1", "--ip-range", "172.30.5.0/24",
                  "--aux-address", "router=172.30.1.5", "--internal", "--attachable",
                  "-o", "com.docker.network.bridge.name=br-test", "--opt", "mtu=1400",
                  "--label", "team=net", "--ipv6", "testnet")
    assert result.exit_code == 0, result.output
    assert result.stdout == "n" * 64 + "\n"
    [request] = daemon.find("POST", "/networks/create")
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "Name": "testnet",
        "Driver": "bridge",
        "Internal": True,
        "Attachable": True,
        "EnableIPv6": True,
        "Options": {"com.docker.network.bridge.name": "br-test", "mtu": "1400"},
        "Labels": {"team": "net"},
        "CheckDuplicate": True,
        "IPAM": {
            "Driver": "default",
            "Config": [{"Subnet": "172.30.0.0/16", "Gateway": "172.30.0.1",
                        "IPRange": "172.30.5.0/24",
                        "AuxiliaryAddresses": {"router": "172.30.1.5"}}],
            "Options": {},
        },
    }


def test_network_create_defaults_and_gateways_matched_to_subnets(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/networks/create", {"Id": "abc"}, 201)
    assert cove("network", "create", "plain").exit_code == 0
    assert cove("network", "create", "--subnet", "10.1.0.0/24", "--subnet", "fd00:1::/64",
                "--gateway", "fd00:1::1", "--gateway", "10.1.0.254", "two").exit_code == 0
    plain, two = (r.json for r in daemon.find("POST", "/networks/create"))
    assert plain["Driver"] == "bridge"
    assert plain["Internal"] is plain["Attachable"] is plain["EnableIPv6"] is False
    assert plain["IPAM"] == {"Driver": "default", "Config": [], "Options": {}}
    assert plain["Options"] == plain["Labels"] == {}
    assert two["IPAM"]["Config"] == [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254"},
                                     {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}]


def test_network_create_rejects_gateway_outside_every_subnet(daemon: FakeDaemon) -> None:
    result = cove("network", "create", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1", "x")
    assert result.exit_code == 2
    assert "no matching subnet for gateway 10.2.0.1" in result.stderr
    assert daemon.find("POST", "/networks/create") == []


def test_network_ls_table_sorted_like_docker(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/networks", [
        {"Id": "b" * 64, "Name": "net10", "Driver": "bridge", "Scope": "local"},
        {"Id": "a" * 64, "Name": "bridge", "Driver": "bridge", "Scope": "local"},
        {"Id": "c" * 64, "Name": "net2", "Driver": "macvlan", "Scope": "local"},
        {"Id": "d" * 64, "Name": "none", "Driver": "null", "Scope": "local"},
    ])
    result = cove("network", "ls", "-f", "driver=bridge")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "NETWORK ID     NAME      DRIVER    SCOPE",
        "aaaaaaaaaaaa   bridge    bridge    local",
        "cccccccccccc   net2      macvlan   local",
        "bbbbbbbbbbbb   net10     bridge    local",
        "dddddddddddd   none      null      local",
    ]
    assert json.loads(daemon.requests[-1].query["filters"]) == {"driver": {"bridge": True}}
    quiet = cove("network", "ls", "-q", "--no-trunc")
    assert quiet.stdout.split() == ["a" * 64, "c" * 64, "b" * 64, "d" * 64]


def test_network_inspect_prints_json_array_and_reports_missing(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/networks/web", {"Name": "web", "Id": "w1", "IPAM": {"Config": []}})
    daemon.on("GET", "/networks/nope", {"message": "network nope not found"}, 404)
    result = cove("network", "inspect", "web", "nope")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [{"Name": "web", "Id": "w1", "IPAM": {"Config": []}}]
    assert result.stdout.startswith('[\n    {\n        "Name": "web",')
    assert result.stderr == "Error response from daemon: network nope not found\n"


def test_network_rm_connect_disconnect(daemon: FakeDaemon) -> None:
    daemon.on("DELETE", "/networks/a")
    daemon.on("DELETE", "/networks/b", {"message": "error while removing network: network b"
                                             " has active endpoints"}, 403)
    daemon.on("DELETE", "/networks/c")
    result = cove("network", "rm", "a", "b", "c")
    assert result.exit_code == 1
    assert result.stdout == "a\nc\n"
    assert "Error response from daemon: error while removing network: network b has active" \
        " endpoints" in result.stderr

    daemon.on("POST", "/networks/[^/]+/(dis)?connect")
    assert cove("network", "connect", "--ip", "172.20.0.9", "--alias", "db", "--alias", "pg",
                "--mac-address", "02:42:ac:14:00:09", "mynet", "web").exit_code == 0
    assert cove("network", "connect", "other", "web").exit_code == 0
    assert cove("network", "disconnect", "-f", "mynet", "web").exit_code == 0
    first, second = daemon.find("POST", "/networks/[^/]+/connect")
    assert first.path == "/networks/mynet/connect"
    assert first.json == {"Container": "web", "EndpointConfig": {
        "IPAMConfig": {"IPv4Address": "172.20.0.9"}, "Aliases": ["db", "pg"],
        "MacAddress": "02:42:ac:14:00:09"}}
    assert second.json == {"Container": "web", "EndpointConfig": {
        "IPAMConfig": {}, "Aliases": [], "MacAddress": ""}}
    [disconnect] = daemon.find("POST", "/networks/mynet/disconnect")
    assert disconnect.json == {"Container": "web", "Force": True}


def test_network_prune_asks_first(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/networks/prune", {"NetworksDeleted": ["old1", "old2"]})
    declined = cove("network", "prune", input="n\n")
    assert declined.exit_code == 0
    assert "Are you sure you want to continue? [y/N]" in declined.stdout
    assert daemon.find("POST", "/networks/prune") == []
    accepted = cove("network", "prune", input="y\n")
    assert accepted.stdout.endswith("Deleted Networks:\nold1\nold2\n\n")
    forced = cove("network", "prune", "-f")
    assert forced.stdout == "Deleted Networks:\nold1\nold2\n\n"
    assert len(daemon.find("POST", "/networks/prune")) == 2


# -- create / run ---------------------------------------------------------------------


def test_run_detached_with_flags_sends_docker_body(daemon: FakeDaemon,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_ENV", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": ["low memory"]}, 201)
    result = cove("run", "-itd", "--rm", "--name", "web", "--network", "mynet",
                  "--ip", "172.20.0.5", "--mac-address", "02:42:ac:14:00:05",
                  "--alias", "www", "--network-alias", "site", "-e", "A=1", "-e", "FROM_ENV",
                  "-e", "NOT_SET", "-h", "webhost", "--dns", "9.9.9.9", "--dns-search",
                  "example.org", "--dns-opt", "ndots:2", "--add-host", "db:10.0.0.2",
                  "--link", "redis:cache", "-p", "8080:80", "-p", "127.0.0.1::53/udp",
                  "-p", "[::1]:9000-9001:90-91", "-P", "--expose", "443",
                  "-w", "/srv", "--entrypoint", "/bin/sh",
                  "alpine", "-c", "echo hi --rm")
    assert result.exit_code == 0, result.output
    assert result.stdout == CID + "\n"
    assert result.stderr == "WARNING: low memory\n"
    [create] = daemon.find("POST", "/containers/create")
    assert create.query == {"name": "web"}
    assert create.json == {
        "Hostname": "webhost",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "90/tcp": {}, "91/tcp": {}, "443/tcp": {}},
        "Tty": True,
        "OpenStdin": True,
        "StdinOnce": False,
        "Env": ["A=1", "FROM_ENV=yes"],
        "Cmd": ["-c", "echo hi --rm"],
        "Image": "alpine",
        "WorkingDir": "/srv",
        "Entrypoint": ["/bin/sh"],
        "MacAddress": "02:42:ac:14:00:05",
        "Labels": {},
        "HostConfig": {
            "NetworkMode": "mynet",
            "AutoRemove": True,
            "Dns": ["9.9.9.9"],
            "DnsSearch": ["example.org"],
            "DnsOptions": ["ndots:2"],
            "ExtraHosts": ["db:10.0.0.2"],
            "Links": ["redis:cache"],
            "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "90/tcp": [{"HostIp": "::1", "HostPort": "9000"}],
                "91/tcp": [{"HostIp": "::1", "HostPort": "9001"}],
            },
            "PublishAllPorts": True,
        },
        "NetworkingConfig": {"EndpointsConfig": {"mynet": {
            "IPAMConfig": {"IPv4Address": "172.20.0.5"},
            "Aliases": ["www", "site"],
            "MacAddress": "02:42:ac:14:00:05",
        }}},
    }
    assert daemon.calls() == ["POST /containers/create", f"POST /containers/{CID}/start"]


def test_create_minimal_body_and_default_network(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    result = cove("create", "-i", "busybox")
    assert result.exit_code == 0
    assert result.stdout == CID + "\n"
    [create] = daemon.find("POST", "/containers/create")
    body = create.json
    assert create.query == {}
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (True, True, True)
    assert body["OpenStdin"] is body["StdinOnce"] is True
    assert body["Cmd"] is None and body["Entrypoint"] is None
    assert body["HostConfig"]["NetworkMode"] == "default"
    assert body["HostConfig"]["PortBindings"] == {} and body["ExposedPorts"] == {}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {
        "IPAMConfig": {}, "Aliases": [], "MacAddress": ""}}}
    assert daemon.find("POST", r"/containers/[^/]+/start") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "Missing argument 'IMAGE'"),
        (["run", "--bogus", "alpine"], "No such option: --bogus"),
        (["run", "-p", "8080:abc", "alpine"], "invalid publish '8080:abc': invalid container port"),
        (["create", "--ip", "300.1.1.1", "alpine"], "invalid IPv4 address for --ip: 300.1.1.1"),
        (["run", "--add-host", "db", "alpine"], "--add-host"),
        (["run", "--mac-address", "zz", "alpine"], "zz is not a valid mac address"),
        (["run", "--network", "a", "--network", "b", "alpine"], "one network"),
    ],
)
def test_run_and_create_usage_errors_exit_125(daemon: FakeDaemon, args: list[str],
                                               message: str) -> None:
    result = cove(*args)
    assert result.exit_code == 125
    assert message in result.stderr
    assert daemon.requests == []


def test_run_daemon_error_exits_125_with_docker_wording(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/create", {"message": "No such image: ghost:latest"}, 404)
    result = cove("run", "-d", "ghost")
    assert result.exit_code == 125
    assert result.stderr == "Error response from daemon: No such image: ghost:latest\n"


def _greeting(stream: HijackStream) -> None:
    stream.wait_started()
    stream.frame(1, b"hello ")
    stream.frame(2, b"oops\n")
    stream.frame(1, b"world\n")


def test_run_attached_demultiplexes_and_exits_with_status(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(_greeting))
    daemon.on("POST", r"/containers/[^/]+/wait", {"StatusCode": 3})
    result = cove("run", "alpine", "sh", "-c", "exit 3")
    assert result.exit_code == 3, result.output
    assert result.stdout == "hello world\n"
    assert result.stderr == "oops\n"
    [attach] = daemon.find("POST", r"/containers/[^/]+/attach")
    assert attach.path == f"/containers/{CID}/attach"
    assert attach.query == {"stream": "1", "stdout": "1", "stderr": "1"}
    assert attach.headers["Connection"] == "Upgrade" and attach.headers["Upgrade"] == "tcp"
    calls = daemon.calls()
    assert calls.index(f"POST /containers/{CID}/attach") < calls.index(f"POST /containers/{CID}/start")
    # The canned wait answered at once (before start), so the CLI asked again at EOF.
    waits = daemon.find("POST", r"/containers/[^/]+/wait")
    assert [w.query for w in waits] == [{"condition": "next-exit"}, {}]


def test_run_rm_waits_for_removal_registered_before_start(daemon: FakeDaemon) -> None:
    def wait_for_exit(_: Recorded) -> dict[str, int]:
        assert daemon.stream_done.wait(5)
        return {"StatusCode": 42}

    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(_greeting))
    daemon.on("POST", r"/containers/[^/]+/wait", wait_for_exit)
    result = cove("run", "--rm", "alpine", "false")
    assert result.exit_code == 42
    assert daemon.find("POST", "/containers/create")[0].json["HostConfig"]["AutoRemove"] is True
    [wait] = daemon.find("POST", r"/containers/[^/]+/wait")
    assert wait.query == {"condition": "removed"}
    calls = daemon.calls()
    assert calls.index(f"POST /containers/{CID}/wait") < calls.index(f"POST /containers/{CID}/start")


def test_run_rm_falls_back_to_next_exit_when_removed_is_answered_at_once(
        daemon: FakeDaemon) -> None:
    def wait(request: Recorded) -> dict[str, int]:
        if request.query.get("condition") == "next-exit":
            assert daemon.stream_done.wait(5)
            return {"StatusCode": 12}
        return {"StatusCode": 0}  # a daemon that treats "removed" like "not-running"

    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(_greeting))
    daemon.on("POST", r"/containers/[^/]+/wait", wait)
    result = cove("run", "--rm", "alpine", "sh", "-c", "exit 12")
    assert result.exit_code == 12
    waits = daemon.find("POST", r"/containers/[^/]+/wait")
    assert [w.query for w in waits] == [{"condition": "removed"}, {"condition": "next-exit"}]


def test_run_interactive_copies_stdin_and_tty_stream_is_raw(daemon: FakeDaemon) -> None:
    def echo(stream: HijackStream) -> None:
        stream.wait_started()
        data = stream.read_all()
        stream.frame(1, b"got: " + data)

    def tty(stream: HijackStream) -> None:
        stream.wait_started()
        stream.send(b"\x01\x00\x00\x00raw tty bytes\r\n")

    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.on("POST", r"/containers/[^/]+/wait", {"StatusCode": 0})
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(echo))
    result = cove("run", "-i", "alpine", "cat", input="line one\nline two\n")
    assert result.exit_code == 0
    assert result.stdout == "got: line one\nline two\n"
    assert daemon.find("POST", r"/containers/[^/]+/attach")[0].query["stdin"] == "1"

    daemon.started.clear()
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(tty))
    result = cove("run", "-t", "alpine", "top")
    assert result.exit_code == 0
    assert result.stdout_bytes == b"\x01\x00\x00\x00raw tty bytes\r\n"


def test_run_interactive_through_the_installed_script(daemon: FakeDaemon) -> None:
    def echo(stream: HijackStream) -> None:
        stream.wait_started()
        stream.frame(1, stream.read_all().upper())
        stream.frame(2, b"done\n")

    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(echo))
    daemon.on("POST", r"/containers/[^/]+/wait", {"StatusCode": 5})
    done = cove_process(daemon, "run", "-i", "--rm", "alpine", "tr", "a-z", "A-Z",
                        input=b"shout\n")
    assert done.returncode == 5, done.stderr
    assert done.stdout == b"SHOUT\n"
    assert done.stderr == b"done\n"


# -- exec ----------------------------------------------------------------------------


def _exec_routes(fake: FakeDaemon, exit_code: int) -> None:
    def output(stream: HijackStream) -> None:
        stream.frame(1, b"in the container\n")

    fake.on("POST", r"/containers/[^/]+/exec", {"Id": EXEC_ID}, 201)
    fake.on("POST", r"/exec/[^/]+/start", Hijack(output))
    fake.on("GET", r"/exec/[^/]+/json", {"ID": EXEC_ID, "Running": False, "ExitCode": exit_code})


@pytest.mark.parametrize("code", [0, 1, 7])
def test_exec_exits_with_the_commands_status(daemon: FakeDaemon, code: int) -> None:
    _exec_routes(daemon, code)
    result = cove("exec", "-e", "X=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c", "exit")
    assert result.exit_code == code
    assert result.stdout == "in the container\n"
    [create] = daemon.find("POST", "/containers/web/exec")
    assert create.json == {"User": "nobody", "AttachStdin": False, "AttachStdout": True,
                           "AttachStderr": True, "Tty": False, "Cmd": ["sh", "-c", "exit"],
                           "Env": ["X=1"], "WorkingDir": "/tmp"}
    [start] = daemon.find("POST", f"/exec/{EXEC_ID}/start")
    assert start.json == {"Detach": False, "Tty": False}
    assert start.headers["Upgrade"] == "tcp"


def test_exec_status_through_the_installed_script(daemon: FakeDaemon) -> None:
    _exec_routes(daemon, 9)
    done = cove_process(daemon, "exec", "-it", "web", "false")
    assert done.returncode == 9
    assert daemon.find("POST", "/containers/web/exec")[0].json["AttachStdin"] is True


def test_exec_detached_does_not_attach(daemon: FakeDaemon) -> None:
    _exec_routes(daemon, 0)
    daemon.on("POST", r"/exec/[^/]+/start")
    result = cove("exec", "-d", "web", "sleep", "10")
    assert result.exit_code == 0 and result.stdout == ""
    [start] = daemon.find("POST", f"/exec/{EXEC_ID}/start")
    assert start.json == {"Detach": True, "Tty": False}
    assert "Upgrade" not in start.headers


def test_exec_in_missing_container(daemon: FakeDaemon) -> None:
    daemon.on("POST", r"/containers/[^/]+/exec", {"message": "No such container: nope"}, 404)
    result = cove("exec", "nope", "true")
    assert result.exit_code == 1
    assert result.stderr == "Error response from daemon: No such container: nope\n"


# -- other container commands -------------------------------------------------------------


def test_ps_table_like_docker(daemon: FakeDaemon) -> None:
    now = time.time()
    daemon.on("GET", "/containers/json", [
        {"Id": "a" * 64, "Image": "alpine", "Command": "sleep 1000000000000000000",
         "Created": int(now) - 125, "State": "running", "Status": "Up 5 seconds",
         "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                   {"PrivatePort": 53, "Type": "udp"}],
         "Names": ["/web"]},
        {"Id": "b" * 64, "Image": "busybox", "Command": "sh", "Created": int(now) - 3 * 3600,
         "State": "exited", "Status": "Exited (0) 3 seconds ago", "Ports": [],
         "Names": ["/db", "/web/db"]},
    ])
    result = cove("ps", "-a")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS       "
        "              PORTS                          NAMES",
        'aaaaaaaaaaaa   alpine    "sleep 1000000000000…"   2 minutes ago   Up 5 seconds '
        "              53/udp, 0.0.0.0:8080->80/tcp   web",
        'bbbbbbbbbbbb   busybox   "sh"                     3 hours ago     Exited (0) 3 '
        "seconds ago                                  db",
    ]
    assert daemon.requests[-1].query == {"all": "1"}
    assert cove("ps", "-q").stdout.split() == ["a" * 12, "b" * 12]
    assert daemon.requests[-1].query == {}


def test_ps_empty_header_and_status_from_inspect(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/containers/json", [])
    assert cove("ps").stdout == ("CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS"
                                 "     NAMES\n")
    daemon.on("GET", "/containers/json", [{"Id": "c" * 64, "Image": "x", "Command": "",
                                           "Created": 0, "Status": "", "Names": ["/c"]}])
    daemon.on("GET", r"/containers/c+/json", {"State": {
        "Running": False, "ExitCode": 2, "StartedAt": "2020-01-01T00:00:00.5Z",
        "FinishedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z",
                                    time.gmtime(time.time() - 31))}})
    assert re.search(r"   Exited \(2\) 3[12] seconds ago   ", cove("ps", "-a").stdout)


def test_lifecycle_commands_print_names_and_report_errors(daemon: FakeDaemon) -> None:
    daemon.on("POST", r"/containers/[^/]+/(stop|restart|kill)")
    daemon.on("DELETE", r"/containers/[^/]+")
    daemon.on("POST", r"/containers/nope/stop", {"message": "No such container: nope"}, 404)
    result = cove("stop", "-t", "3", "web", "nope", "db")
    assert result.exit_code == 1
    assert result.stdout == "web\ndb\n"
    assert result.stderr == "Error response from daemon: No such container: nope\n"
    assert daemon.find("POST", "/containers/web/stop")[0].query == {"t": "3"}
    assert cove("kill", "-s", "HUP", "web").stdout == "web\n"
    assert daemon.find("POST", "/containers/web/kill")[0].query == {"signal": "HUP"}
    assert cove("rm", "-f", "web", "db").stdout == "web\ndb\n"
    assert daemon.find("DELETE", "/containers/web")[0].query == {"force": "1"}
    assert cove("restart", "web").exit_code == 0
    assert cove("start", "web", "db").stdout == "web\ndb\n"


def test_wait_rename_top(daemon: FakeDaemon) -> None:
    daemon.on("POST", r"/containers/[^/]+/wait", {"StatusCode": 4})
    assert cove("wait", "a", "b").stdout == "4\n4\n"
    daemon.on("POST", r"/containers/[^/]+/rename")
    assert cove("rename", "old", "new").exit_code == 0
    assert daemon.find("POST", "/containers/old/rename")[0].query == {"name": "new"}
    daemon.on("GET", r"/containers/[^/]+/top", {
        "Titles": ["UID", "PID", "CMD"], "Processes": [["root", "4242", "sleep 100"]]})
    assert cove("top", "web").stdout.splitlines() == [
        "UID                 PID                 CMD",
        "root                4242                sleep 100",
    ]


def test_inspect_falls_back_to_networks_and_images(daemon: FakeDaemon) -> None:
    daemon.on("GET", r"/containers/[^/]+/json", {"message": "No such container"}, 404)
    daemon.on("GET", r"/containers/web/json", {"Id": "c1", "Name": "/web"})
    daemon.on("GET", r"/networks/[^/]+", {"message": "network not found"}, 404)
    daemon.on("GET", r"/networks/mynet", {"Id": "n1", "Name": "mynet"})
    daemon.on("GET", r"/images/.+/json", {"message": "No such image"}, 404)
    daemon.on("GET", r"/images/alpine/json", {"Id": "sha256:i1"})
    result = cove("inspect", "web", "mynet", "alpine", "ghost")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [{"Id": "c1", "Name": "/web"},
                                         {"Id": "n1", "Name": "mynet"}, {"Id": "sha256:i1"}]
    assert result.stderr == "Error: No such object: ghost\n"
    typed = cove("inspect", "--type", "network", "web")
    assert typed.exit_code == 1 and typed.stdout == "[]\n"
    assert typed.stderr == "Error: No such network: web\n"


def test_logs_demultiplex_unless_tty(daemon: FakeDaemon) -> None:
    daemon.on("GET", r"/containers/plain/json", {"Config": {"Tty": False}})
    daemon.on("GET", r"/containers/tty/json", {"Config": {"Tty": True}})

    frames = encode_frame(1, b"out\n") + encode_frame(2, b"err\n")
    # Frames split across chunks must still be decoded.
    daemon.on("GET", r"/containers/plain/logs", Chunked(frames[:5], frames[5:14], frames[14:]))
    daemon.on("GET", r"/containers/tty/logs", Chunked(b"\x02\x00\x00\x00tty\n"))
    plain = cove("logs", "--tail", "5", "-f", "plain")
    assert (plain.stdout, plain.stderr) == ("out\n", "err\n")
    assert daemon.find("GET", "/containers/plain/logs")[0].query == {
        "stdout": "1", "stderr": "1", "follow": "1", "tail": "5"}
    assert cove("logs", "tty").stdout_bytes == b"\x02\x00\x00\x00tty\n"


def test_port_lists_bindings_like_docker(daemon: FakeDaemon) -> None:
    daemon.on("GET", r"/containers/web/json", {"NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "443/tcp": None}}})
    assert cove("port", "web").stdout.splitlines() == [
        "53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
    assert cove("port", "web", "80").stdout == "0.0.0.0:8080\n[::]:8080\n"
    missing = cove("port", "web", "443/tcp")
    assert missing.exit_code == 1
    assert missing.stderr == "Error: No public port '443/tcp' published for web\n"


# -- images ---------------------------------------------------------------------------


def test_import_streams_the_tar(daemon: FakeDaemon, sockdir: str) -> None:
    daemon.on("POST", "/images/create", lambda r: {"status": "sha256:" + "f" * 64})
    tar = Path(sockdir) / "rootfs.tar"
    tar.write_bytes(b"\0" * 10240)
    result = cove("import", str(tar), "myimg:1.0")
    assert result.exit_code == 0, result.output
    assert result.stdout == "sha256:" + "f" * 64 + "\n"
    from_file = daemon.find("POST", "/images/create")[0]
    assert from_file.query == {"fromSrc": "-", "repo": "myimg", "tag": "1.0"}
    assert from_file.headers["Content-Type"] == "application/x-tar"
    assert from_file.body == b"\0" * 10240

    piped = cove_process(daemon, "import", "-", "localhost:5000/base", input=b"tar bytes")
    assert piped.returncode == 0, piped.stderr
    from_stdin = daemon.find("POST", "/images/create")[1]
    assert from_stdin.query == {"fromSrc": "-", "repo": "localhost:5000/base", "tag": ""}
    assert from_stdin.headers["Transfer-Encoding"] == "chunked"
    assert from_stdin.body == b"tar bytes"


def test_images_rmi_tag(daemon: FakeDaemon) -> None:
    now = int(time.time())
    daemon.on("GET", "/images/json", [
        {"Id": "sha256:" + "1" * 64, "RepoTags": ["alpine:3.19", "alpine:latest"],
         "Created": now - 7200, "Size": 7_800_000},
        {"Id": "sha256:" + "2" * 64, "RepoTags": None, "Created": now - 30, "Size": 0},
    ])
    assert cove("images").stdout.splitlines() == [
        "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE",
        "alpine       3.19      111111111111   2 hours ago      7.8MB",
        "alpine       latest    111111111111   2 hours ago      7.8MB",
        "<none>       <none>    222222222222   30 seconds ago   0B",
    ]
    assert cove("images", "-q").stdout.split() == ["1" * 12, "2" * 12]
    daemon.on("DELETE", r"/images/.+", [{"Untagged": "alpine:3.19"},
                                        {"Deleted": "sha256:" + "1" * 64}])
    assert cove("rmi", "alpine:3.19").stdout == (
        "Untagged: alpine:3.19\nDeleted: sha256:" + "1" * 64 + "\n")
    daemon.on("POST", r"/images/.+/tag", None, 201)
    assert cove("tag", "alpine", "reg:5000/me/alpine:v1").exit_code == 0
    assert daemon.find("POST", r"/images/.+/tag")[0].query == {"repo": "reg:5000/me/alpine",
                                                              "tag": "v1"}


# -- global behaviour -------------------------------------------------------------------


def test_version_and_info(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/version", {"Version": "0.1.0", "ApiVersion": "1.43",
                                  "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
                                  "KernelVersion": "6.1.0"})
    result = cove("version")
    assert result.exit_code == 0
    assert "Client:\n Version:          " in result.stdout
    assert " API version:      1.43 (minimum version 1.12)" in result.stdout
    assert " KernelVersion:    6.1.0" in result.stdout
    daemon.on("GET", "/info", {"Containers": 2, "Name": "host", "Driver": "cove",
                               "Plugins": {"Network": ["bridge", "host", "null"]}})
    assert cove("info").stdout.splitlines() == [
        "Containers: 2", "Name: host", "Driver: cove", "Plugins:", " Network: bridge, host, null"]


def test_host_flag_wins_over_environment(daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon.on("GET", "/networks", [])
    monkeypatch.setenv("COVE_HOST", "unix:///nonexistent/elsewhere.sock")
    assert cove("-H", daemon.url, "network", "ls", "-q").exit_code == 0
    assert cove("--host", daemon.path, "network", "ls", "-q").exit_code == 0


def test_usage_errors_outside_run_use_clicks_code(daemon: FakeDaemon) -> None:
    assert cove("network", "create").exit_code == 2
    assert cove("stop").exit_code == 2
    assert cove("nosuchcommand").exit_code == 2


def test_daemon_passes_arguments_through(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class FakeDaemonModule:
        @staticmethod
        def main(argv: list[str]) -> int:
            seen.append(argv)
            return 3

    monkeypatch.setitem(sys.modules, "cove.daemon.main", FakeDaemonModule)
    monkeypatch.delenv("COVE_HOST", raising=False)
    result = cove("daemon", "--host", "unix:///tmp/x.sock", "--help", "-v")
    assert result.exit_code == 3
    assert cove("daemon").exit_code == 3
    # A global -H (or $COVE_HOST) reaches the daemon unless its own arguments name one.
    assert cove("-H", "unix:///tmp/y.sock", "daemon", "--debug").exit_code == 3
    assert cove("-H", "unix:///tmp/y.sock", "daemon", "--host=unix:///z").exit_code == 3
    assert seen == [["--host", "unix:///tmp/x.sock", "--help", "-v"], [],
                    ["--host", "unix:///tmp/y.sock", "--debug"], ["--host=unix:///z"]]


def test_version_flag_imports_nothing_heavy() -> None:
    code = ("import sys; from cove.cli.main import main; rc = main(['--version']);"
            "heavy = [m for m in ('http.client', 'json', 'cove.cli.client', 'cove.cli.run')"
            " if m in sys.modules]; print(rc, heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.splitlines() == ["cove version 0.1.0", "0 []"]


# -- starting the daemon on demand ------------------------------------------------------


def asked_for_autostart(monkeypatch: pytest.MonkeyPatch) -> None:
    """COVE_AUTOSTART=1: CliRunner's stdin/stderr are no terminal (tests/unit/test_autostart.py)."""
    monkeypatch.delenv("COVE_NO_AUTOSTART", raising=False)
    monkeypatch.setenv("COVE_AUTOSTART", "1")


def test_autostart_message_and_retry(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(sockdir, "late.sock")
    fake = FakeDaemon(path)
    fake.on("GET", "/networks", [{"Id": "x" * 64, "Name": "bridge", "Driver": "bridge",
                                  "Scope": "local"}])
    spawned: list[str] = []

    def spawn(url: str) -> Spawned:
        spawned.append(url)
        threading.Timer(0.3, fake.start).start()  # the "daemon" comes up a bit later
        return Spawned(pid=4242, log_path="/var/log/cove-daemon.log")

    monkeypatch.setattr(cli_main, "spawn_daemon", spawn)
    monkeypatch.setenv("COVE_HOST", f"unix://{path}")
    asked_for_autostart(monkeypatch)
    try:
        result = cove("network", "ls", "-q")
    finally:
        time.sleep(0.35)
        fake.stop()
    assert result.exit_code == 0, result.output
    assert spawned == [f"unix://{path}"]
    assert result.stderr == (f"cove: no daemon answered on unix://{path}; started one in the"
                             " background (pid 4242, log: /var/log/cove-daemon.log)\n")
    assert result.stdout == "x" * 12 + "\n"


def test_autostart_reports_a_daemon_that_died(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = os.path.join(sockdir, "daemon.log")
    Path(log).write_text("starting\ncove daemon: must run as root\n")
    monkeypatch.setattr(cli_main, "spawn_daemon",
                        lambda url: Spawned(pid=7, log_path=log, poll=lambda: 1))
    monkeypatch.setenv("COVE_HOST", f"unix://{sockdir}/none.sock")
    asked_for_autostart(monkeypatch)
    result = cove("ps")
    assert result.exit_code == 1
    assert "started one in the background (pid 7" in result.stderr
    assert (f"cove: the cove daemon started for unix://{sockdir}/none.sock exited with status 1"
            f" (log: {log}): cove daemon: must run as root\n") in result.stderr


def test_autostart_gives_up_after_the_timeout(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cove_client, "AUTOSTART_TIMEOUT", 0.3)
    monkeypatch.setattr(cli_main, "spawn_daemon",
                        lambda url: Spawned(pid=8, log_path="/tmp/l.log"))
    monkeypatch.setenv("COVE_HOST", f"unix://{sockdir}/none.sock")
    asked_for_autostart(monkeypatch)
    started = time.monotonic()
    result = cove("ps")
    assert result.exit_code == 1
    assert time.monotonic() - started < 5
    assert "did not answer within 0.3 s (log: /tmp/l.log)" in result.stderr


def test_no_autostart_for_tcp_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_HOST", "tcp://127.0.0.1:1")
    asked_for_autostart(monkeypatch)
    result = cove("ps")
    assert result.exit_code == 1
    assert result.stderr.startswith("cove: Cannot connect to the cove daemon at tcp://127.0.0.1:1")


def test_spawn_daemon_detaches_and_picks_a_writable_log(sockdir: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[tuple[list[str], dict[str, Any]]] = []

    class FakePopen:
        pid = 999

        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            launched.append((argv, kwargs))

        def poll(self) -> int | None:
            return None

    blocker = Path(sockdir) / "file"
    blocker.write_text("")
    monkeypatch.setattr(cli_main, "DAEMON_LOG", str(blocker / "cove-daemon.log"))
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    url = f"unix://{sockdir}/run/cove.sock"
    result = REAL_SPAWN(url)
    argv, kwargs = launched[0]
    assert argv == cli_main.daemon_command("daemon", "--host", url)       # isolated: not ``-m cove`` from cwd
    assert argv[:2] == [sys.executable, "-I"] and kwargs["cwd"] == "/"
    assert kwargs["start_new_session"] is True
    assert kwargs["stdin"] == subprocess.DEVNULL
    assert kwargs["stdout"] is kwargs["stderr"]
    assert result.pid == 999
    assert result.log_path == f"{sockdir}/run/daemon.log"
    assert os.path.exists(result.log_path)


def test_frame_decoder_handles_split_frames() -> None:
    data = encode_frame(1, b"abc") + encode_frame(2, b"") + encode_frame(2, b"de")
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i:i + 1])
    assert [(k, p) for k, p in out if p] == [(1, b"abc"), (2, b"de")]


def test_tty_session_sets_raw_mode_resizes_and_detaches(daemon: FakeDaemon) -> None:
    import fcntl
    import select
    import struct
    import termios

    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        before = termios.tcgetattr(slave)
        typed: list[bytes] = []

        def shell(stream: HijackStream) -> None:
            stream.wait_started()
            stream.send(b"prompt$ ")
            typed.append(stream.read_all())  # until the CLI drops it on ctrl-p ctrl-q

        daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
        daemon.on("POST", r"/containers/[^/]+/attach", Hijack(shell))
        daemon.on("POST", r"/containers/[^/]+/resize")
        env = dict(os.environ, COVE_HOST=daemon.url)
        proc = subprocess.Popen([str(COVE), "run", "-it", "alpine", "sh"], stdin=slave,
                                stdout=slave, stderr=subprocess.PIPE, env=env)
        output = b""
        deadline = time.monotonic() + 10
        while b"prompt$ " not in output and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 1024)
        assert b"prompt$ " in output
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & (termios.ICANON | termios.ECHO), "terminal not in raw mode"
        os.write(master, b"ls\r\x10\x11")
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else b""
        assert termios.tcgetattr(slave) == before, "terminal not restored"
        assert typed == [b"ls\r"]
        assert daemon.find("POST", f"/containers/{CID}/resize")[0].query == {"h": "33", "w": "101"}
        # Detached: the container keeps running, so nobody waits for its exit status
        # after the stream (only the wait registered before start exists).
        assert len(daemon.find("POST", r"/containers/[^/]+/wait")) <= 1
    finally:
        os.close(master)
        os.close(slave)


def test_start_attach_streams_and_exits_with_status(daemon: FakeDaemon) -> None:
    daemon.on("GET", r"/containers/web/json", {"Id": CID, "Config": {"Tty": False},
                                               "HostConfig": {"AutoRemove": True}})
    daemon.on("POST", r"/containers/[^/]+/attach", Hijack(_greeting))
    daemon.on("POST", r"/containers/[^/]+/wait", {"StatusCode": 6})
    result = cove("start", "-a", "web")
    assert (result.exit_code, result.stdout, result.stderr) == (6, "hello world\n", "oops\n")
    assert daemon.find("POST", r"/containers/[^/]+/wait")[0].query == {"condition": "removed"}
    assert cove("start", "-a", "web", "db").exit_code == 2


def test_bad_host_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    result = cove("-H", "relative.sock", "ps")
    assert result.exit_code == 1
    assert result.stderr == ("Error: invalid host 'relative.sock': expected"
                             " unix:///path/to/socket or tcp://HOST:PORT\n")


def test_run_label_sends_labels(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    result = cove("create", "-l", "team=blue", "--label", "solo", "alpine")
    assert result.exit_code == 0, result.output
    [create] = daemon.find("POST", "/containers/create")
    assert create.json["Labels"] == {"team": "blue", "solo": ""}


def test_events_default_line_is_dockers(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as _time

    from cove.cli.events import pretty

    monkeypatch.setenv("TZ", "UTC")
    _time.tzset()
    try:
        line = pretty({"Type": "container", "Action": "die", "timeNano": 1_700_000_000_000_000_042,
                       "Actor": {"ID": "abc", "Attributes": {"name": "x", "exitCode": "3", "image": "bb"}}})
    finally:
        monkeypatch.undo()
        _time.tzset()
    assert line == "2023-11-14T22:13:20.000000042Z container die abc (exitCode=3, image=bb, name=x)"
