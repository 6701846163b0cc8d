"""Hostile input against a real daemon in the sandbox (issue 14): schemathesis and a corpus.

Schemathesis generates requests for every operation of docs/openapi.yaml (tests/apifuzz.py:
valid-typed and wrong-typed bodies, parameters, bodies that are not JSON), first with random
references, then with references naming an existing running container (``fz-a``) and network
(``fz-net``) so the handlers are reached past their lookups.  Every answer must be below 500,
every 4xx a ``{"message": ...}`` without a traceback, and a refused request must leave the
daemon's networks (with their endpoints), containers, volumes, images and sandboxes as they
were.  The generated objects a successful request leaves are removed after it.

CI runs a bounded fuzz (``COVE_FUZZ_PER_MODE``, default 4 cases per operation and mode: about
400 requests, under two minutes); by hand, ``COVE_FUZZ_PER_MODE=40`` sends several thousand.
The test prints how many requests it sent and their statuses.

Routes that hold the connection open are left out of the generated run (the event stream,
attach, wait, exec start, logs with a follow flag): their parameters are in the corpus.
``kill`` is fuzzed with random references only: a generated SIGSTOP would freeze ``fz-a``;
``stop`` and ``restart`` on ``fz-a`` with refused parameters only (a valid ``t`` may be a day).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cove.runtime.busybox import make_busybox_tar

from schemathesis.generation import GenerationMode

from ..apifuzz import ALL_MODES, Tally, check_answer, fuzz, load_schema
from .conftest import Daemon

pytestmark = pytest.mark.integration

PER_MODE = int(os.environ.get("COVE_FUZZ_PER_MODE", "4"))
STREAMING = {("GET", "/events"), ("POST", "/containers/{ref}/attach"), ("POST", "/containers/{ref}/wait"),
             ("POST", "/exec/{exec_id}/start"), ("GET", "/containers/{ref}/logs"),
             ("GET", "/containers/{ref}/stats")}
RANDOM_REFS_ONLY = {("POST", "/containers/{ref}/kill")}
#: on ``fz-a`` only refused ones: a valid ``t`` may be a day, and a valid stop is no hostile input
NEGATIVE_ONLY_ON_FIXTURES = {("POST", "/containers/{ref}/stop"), ("POST", "/containers/{ref}/restart")}
#: a container that ends at once on SIGTERM (a stop or restart never waits out its timeout)
TERMINABLE = ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done"]


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Api:
    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.conn = UnixConnection(d.sock)

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, target, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.conn.close()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, target: str) -> Any:
        status, body = self.send("GET", target, {}, b"")
        assert status == 200, (target, status, body)
        return json.loads(body)

    def state(self) -> Any:
        """What a refused request must not change."""
        nets = []
        for n in sorted(self.get("/networks"), key=lambda n: n["Id"]):
            status, body = self.send("GET", f"/networks/{n['Id']}", {}, b"")
            eps = sorted((json.loads(body)["Containers"] or {}).items()) if status == 200 else "gone"
            nets.append((n["Id"], n["Name"], n["Driver"], n["Internal"], n["Attachable"], n["Labels"], n["Options"],
                         n["IPAM"], n["EnableIPv6"], json.dumps(eps, sort_keys=True)))
        cs = sorted((c["Id"], c["Names"], c["State"], c["Labels"], json.dumps(c["Ports"], sort_keys=True),
                     json.dumps(c["NetworkSettings"], sort_keys=True))
                    for c in self.get("/containers/json?all=1"))
        vols = sorted(v["Name"] for v in self.get("/volumes")["Volumes"] or [])
        imgs = sorted((i["Id"], sorted(i["RepoTags"])) for i in self.get("/images/json"))
        sbs = json.dumps(self.get("/cove/sandboxes"), sort_keys=True)
        return nets, cs, vols, imgs, sbs


def _new_daemon() -> Daemon:
    tmp = tempfile.mkdtemp(prefix="cove-fz-")
    return Daemon(sock=f"{tmp}/cove.sock", data_root=f"{tmp}/lib",
                  exec_root=f"/run/cove/fz-{uuid.uuid4().hex[:8]}", log=f"{tmp}/daemon.log")


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """One daemon on the nftables backend (overrides conftest's two-backend one)."""
    d = _new_daemon()
    tmp = os.path.dirname(d.sock)
    d.start("--firewall-backend", "nftables")
    try:
        d.ok("import", "-c", 'CMD ["sh"]', make_busybox_tar(f"{tmp}/busybox.tar"), "bb")
        yield d
    finally:
        for cid in d.cli("ps", "-aq").stdout.split():
            d.cli("rm", "-f", cid)
        d.stop()
        log = open(d.log).read() if os.path.exists(d.log) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        assert "Traceback" not in log or "internal error" not in log, log[-3000:]


class Fixtures:
    """``fz-net`` with the running ``fz-a`` on it; put back after a request removed or renamed them."""

    def __init__(self, d: Daemon, api: Api) -> None:
        self.d, self.api = d, api
        self.ensure()
        self.baseline = api.state()

    def ensure(self) -> None:
        status, body = self.api.send("GET", "/containers/fz-a/json", {}, b"")
        if status == 200 and json.loads(body)["State"]["Running"] and "fz-net" in \
                json.loads(body)["NetworkSettings"]["Networks"]:
            return
        for cid in self.d.cli("ps", "-aq").stdout.split():
            self.d.cli("rm", "-f", cid)
        if self.api.send("GET", "/networks/fz-net", {}, b"")[0] != 200:
            self.d.ok("network", "create", "--subnet", "10.231.0.0/24", "fz-net")
        self.d.ok("run", "-d", "--name", "fz-a", "--network", "fz-net", "bb", *TERMINABLE)

    def tidy(self) -> None:
        """Remove what a successful generated request made (networks, volumes, containers, sandboxes)."""
        nets, cs, vols, imgs, sbs = self.api.state()
        keep_nets = {n[0] for n in self.baseline[0]}
        for n in nets:
            if n[0] not in keep_nets:
                for cid in json.loads(n[9]) if n[9] != '"gone"' else []:
                    self.d.cli("rm", "-f", cid[0])
                self.d.cli("network", "rm", n[0])
        for v in set(vols) - set(self.baseline[2]):
            self.d.cli("volume", "rm", "-f", v)
        for sb in json.loads(sbs):
            sid = sb.get("Id") or sb.get("id") if isinstance(sb, dict) else None
            if sid:
                self.api.send("DELETE", f"/cove/sandboxes/{urllib.parse.quote(sid, safe='')}", {}, b"")
        for img in imgs:
            if img not in self.baseline[3]:
                self.api.send("DELETE", f"/images/{img[0]}?force=1", {}, b"")
        self.ensure()
        live = self.api.state()[1]
        for c in live:
            if c[1] != ["/fz-a"]:
                self.d.cli("rm", "-f", c[0])


def test_generated_requests_get_4xx_not_5xx_and_refusals_change_nothing(daemon: Daemon) -> None:
    api = Api(daemon)
    fx = Fixtures(daemon, api)
    ops = [r.ok() for r in load_schema().get_all_operations()]
    ops = [op for op in ops if (op.method.upper(), op.path) not in STREAMING]

    def existing(op: Any) -> dict[str, str] | None:
        names = {p.name for p in op.path_parameters}
        if "ref" not in names:
            return None
        return {"ref": "fz-net" if op.path.startswith("/networks") else "fz-a"}

    tally = Tally()
    fuzz(ops, api.send, api.state, PER_MODE, after_success=fx.tidy, tally=tally)
    fuzz([op for op in ops if (op.method.upper(), op.path) not in RANDOM_REFS_ONLY], api.send, api.state,
         PER_MODE, after_success=fx.tidy, tally=tally, path_parameters=existing,
         modes=lambda op: (GenerationMode.NEGATIVE,) if (op.method.upper(), op.path) in NEGATIVE_ONLY_ON_FIXTURES
         else ALL_MODES)
    print(f"\nfuzz: {tally.summary()}")
    with open(os.environ.get("COVE_FUZZ_REPORT", "/dev/null"), "a") as fh:
        fh.write(f"{tally.summary()}\n")
    assert tally.sent >= 40 * PER_MODE, tally.summary()
    assert tally.failures == [], f"{len(tally.failures)} bad answers:\n" + "\n".join(tally.failures[:40])
    assert 500 not in tally.by_status and 400 in tally.by_status


# -- the corpus: each case is a 400 naming the field, on the real daemon, with fz-a untouched --------

C = {"Image": "bb", "Cmd": ["true"]}
CORPUS: list[tuple[str, str, Any, str]] = [
    *[(m, p, body, "body") for m, p in (("POST", "/networks/create"), ("POST", "/networks/fz-net/connect"),
                                        ("POST", "/networks/fz-net/disconnect"), ("POST", "/containers/fz-a/exec"),
                                        ("POST", "/containers/create"), ("POST", "/volumes/create"))
      for body in ([], "x", 1, None)],
    ("POST", "/networks/create", {"Name": "fz-b", "IPAM": {"Config": "x"}}, "IPAM.Config"),
    ("POST", "/networks/create", {"Name": "fz-b", "IPAM": {"Config": [{"Subnet": 10}]}}, "Subnet"),
    ("POST", "/networks/create", {"Name": "fz-b", "Labels": {"a": 1}}, "Labels.a"),
    ("POST", "/networks/create", {"Name": 5}, "Name"),
    ("POST", "/networks/create", {"Name": "fz-b", "Internal": "yes"}, "Internal"),
    ("POST", "/containers/create", {"Image": 1}, "Image"),
    ("POST", "/containers/create", {**C, "Tty": "x"}, "Tty"),
    ("POST", "/containers/create", {**C, "Labels": {"a": 1}}, "Labels.a"),
    ("POST", "/containers/create", {**C, "ExposedPorts": {"abc": {}}}, "abc"),
    ("POST", "/containers/create", {**C, "HostConfig": {"PortBindings": "x"}}, "PortBindings"),
    ("POST", "/containers/create", {**C, "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 8080}]}}},
     "HostPort"),
    ("POST", "/containers/fz-a/stop?t=abc", None, "invalid t"),
    ("POST", "/containers/fz-a/stop?t=1e400", None, "invalid t"),
    ("POST", "/containers/fz-a/stop?t=nan", None, "invalid t"),
    ("POST", "/containers/fz-a/stop?t=-inf", None, "invalid t"),
    ("POST", "/containers/fz-a/restart?t=nan", None, "invalid t"),
    ("POST", "/containers/fz-a/kill?signal=99999", None, "signal"),
    ("GET", "/containers/fz-a/logs?stdout=1&tail=--5", None, "invalid tail"),
    ("GET", "/events?since=abc", None, "since"),
]


@pytest.mark.parametrize("method,target,body,words", CORPUS, ids=[f"{m} {t} {json.dumps(b)[:60]}"
                                                                  for m, t, b, _ in CORPUS])
def test_corpus_is_refused_naming_the_field(daemon: Daemon, method: str, target: str, body: Any,
                                            words: str) -> None:
    api = Api(daemon)
    fx = Fixtures(daemon, api)
    before = api.state()
    raw = b"" if body is None and method == "GET" or "?" in target else json.dumps(body).encode()
    status, answer = api.send(method, target, {"Content-Type": "application/json"}, raw)
    assert check_answer(status, answer) is None and status == 400, (status, answer)
    assert words in json.loads(answer)["message"], answer
    assert api.state() == before == fx.baseline
