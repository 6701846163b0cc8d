"""The API server's HTTP layer on a real unix socket: routing, errors, streams, hijack."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from cove.daemon.http import Request, Response, Router, Server
from cove.errors import Conflict, NotFound


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


@pytest.fixture
def server(tmp_path):
    r = Router()

    def hello(req: Request, name: str) -> Response:
        return Response.json({"hello": name, "q": req.arg("q")})

    def missing(req: Request) -> Response:
        raise NotFound("No such container: x")

    def taken(req: Request) -> Response:
        raise Conflict("network with name x already exists")

    def stream(req: Request) -> Response:
        return Response(stream=iter([b"a", b"b", b"c"]), content_type="text/plain")

    def echo(req: Request) -> Response:
        def run(sock: socket.socket, leftover: bytes) -> None:
            data = leftover
            while not data.endswith(b"\n"):
                data += sock.recv(100)
            sock.sendall(b"got:" + data)
            sock.shutdown(socket.SHUT_WR)

        return Response(hijack=run)

    r.add("GET", "/hello/{name}", hello)
    r.add("GET", "/missing", missing)
    r.add("POST", "/taken", taken)
    r.add("GET", "/stream", stream)
    r.add("POST", "/echo", echo)
    s = Server(str(tmp_path / "s.sock"), r)
    s.bind()
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()


def get(server: Server, method: str, path: str, body: bytes | None = None):
    c = UnixConnection(server.path)
    c.request(method, path, body=body)
    resp = c.getresponse()
    return resp.status, resp.read()


def test_routes_with_version_prefix_and_query(server) -> None:
    status, body = get(server, "GET", "/v1.43/hello/milk?q=1")
    assert status == 200 and json.loads(body) == {"hello": "milk", "q": "1"}


def test_errors_become_docker_json_with_their_status(server) -> None:
    assert get(server, "GET", "/missing") == (404, b'{"message": "No such container: x"}\n')
    status, body = get(server, "POST", "/taken")
    assert status == 409 and json.loads(body)["message"].startswith("network with name")
    status, body = get(server, "GET", "/nowhere")
    assert status == 501 and b"does not implement" in body
    status, _ = get(server, "DELETE", "/hello/x")
    assert status == 405


def test_streamed_body_is_chunked(server) -> None:
    assert get(server, "GET", "/stream") == (200, b"abc")


def test_keep_alive_serves_several_requests_on_one_connection(server) -> None:
    c = UnixConnection(server.path)
    for name in ("a", "b", "c"):
        c.request("GET", f"/hello/{name}")
        assert json.loads(c.getresponse().read())["hello"] == name


def test_hijack_switches_to_a_raw_stream(server) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(server.path)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nping\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert rest == b"got:ping\n"
