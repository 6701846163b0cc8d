"""The HTTP routes over the Backend, on an engine with the fake kernel: a user's round trip, no root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.http import Request, Response, error_response
from cove.daemon.routes import build_router
from cove.errors import CoveError

from .enginefakes import Rig


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach the machine's kernel."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test reached the real kernel")

    for name in ("cove.kernel.features.require", "cove.kernel.features.link_kinds", "cove.kernel.netns.create",
                 "cove.kernel.netlink.open_iproute", "cove.kernel.netlink.sysctl_set", "cove.engine.ports.host_port_free"):
        monkeypatch.setattr(name, refuse)


def call(router: Any, method: str, path: str, body: Any = None, **query: str) -> Response:
    req = Request(method=method, path=path, query={k: [v] for k, v in query.items()}, headers={},
                  body=json.dumps(body).encode() if body is not None else b"")
    try:
        resp: Response = router.dispatch(req)
        return resp
    except CoveError as exc:
        return error_response(exc)


def test_network_and_container_round_trip(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    before = rig.kernel.dump()
    r = build_router(rig.engine)
    resp = call(r, "POST", "/v1.43/networks/create", {"Name": "web", "IPAM": {"Config": [{"Subnet": "10.70.0.0/24"}]}})
    assert resp.status == 201
    assert json.loads(call(r, "GET", "/networks/web").body)["IPAM"]["Config"][0]["Subnet"] == "10.70.0.0/24"
    resp = call(r, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh"], "HostConfig": {"NetworkMode": "web"}},
                name="a")
    assert resp.status == 201, resp.body
    assert call(r, "POST", "/containers/a/start").status == 204
    info = json.loads(call(r, "GET", "/containers/a/json").body)
    assert info["State"]["Running"] and info["NetworkSettings"]["Networks"]["web"]["IPAddress"] == "10.70.0.2"
    assert "addr eth0 10.70.0.2/24" in rig.kernel.dump()
    assert call(r, "DELETE", "/containers/a", force="1").status == 204
    assert call(r, "DELETE", "/networks/web").status == 204
    assert rig.kernel.dump() == before


@pytest.mark.parametrize("body,status,words", [
    ({"Name": "x", "Driver": "nope"}, 404, 'plugin "nope" not found'),
    ({"Name": "x", "Driver": "bridge", "Options": {"com.docker.network.driver.mtu": "9"}}, 400, "between 68 and 65535"),
    ({"Name": "x", "Driver": "macvlan", "Options": {}}, 400, "parent"),
])
def test_bad_network_requests_name_the_field_and_change_nothing(tmp_path: Path, body: dict[str, Any], status: int,
                                                                words: str) -> None:
    rig = Rig(tmp_path)
    before = rig.state()
    resp = call(build_router(rig.engine), "POST", "/networks/create", body)
    assert resp.status == status and words in json.loads(resp.body)["message"]
    assert rig.state() == before
