"""Reads never wait behind kernel work (issue 14): list and inspect of containers and networks answer
while another thread holds the engine lock (as an operation does through its netlink and firewall
steps).  Seen failing with ``read_view`` taking the engine lock (every read waited for the holder).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from cove.daemon.routes import build_router
from cove.daemon.routes._common import read_view

from .enginefakes import Rig
from .test_routes_on_fakes import call


@pytest.fixture(autouse=True)
def _no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cove.engine.ports.host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr("cove.kernel.features.require", lambda name: None)


def test_list_and_inspect_answer_while_the_engine_lock_is_held(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    r = build_router(rig.engine)
    assert call(r, "POST", "/networks/create", {"Name": "web", "IPAM": {"Config": [{"Subnet": "10.70.0.0/24"}]}}).status == 201
    assert call(r, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh"],
                                                  "HostConfig": {"NetworkMode": "web"}}, name="a").status == 201
    assert call(r, "POST", "/containers/a/start").status == 204
    held, done = threading.Event(), threading.Event()

    def kernel_work() -> None:
        with rig.engine.lock:
            held.set()
            done.wait(30)

    holder = threading.Thread(target=kernel_work, daemon=True)
    holder.start()
    assert held.wait(10)
    answers: list[Any] = []

    def reads() -> None:
        answers.append(json.loads(call(r, "GET", "/containers/json").body)[0]["Names"])
        answers.append(json.loads(call(r, "GET", "/containers/a/json").body)["NetworkSettings"]["Networks"]["web"]["IPAddress"])
        answers.append(sorted(n["Name"] for n in json.loads(call(r, "GET", "/networks").body)))
        answers.append(list(json.loads(call(r, "GET", "/networks/web").body)["Containers"].values())[0]["Name"])
        answers.append(call(r, "GET", "/containers/nope/json").status)

    reader = threading.Thread(target=reads, daemon=True)
    reader.start()
    reader.join(10)
    answered = not reader.is_alive()
    done.set()
    holder.join(10)
    reader.join(10)
    assert answered, "a read waited for the engine lock"
    assert answers == [["/a"], "10.70.0.2", ["bridge", "host", "none", "web"], "a", 404]


def test_a_read_torn_by_writers_is_built_again_and_at_last_under_the_lock(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    tries: list[bool] = []

    def build() -> str:
        tries.append(rig.engine.lock._is_owned())  # type: ignore[attr-defined]
        if len(tries) <= 3:
            raise RuntimeError("dictionary changed size during iteration")
        return "whole"

    assert read_view(rig.engine, build) == "whole"
    assert tries == [False, False, False, True]
