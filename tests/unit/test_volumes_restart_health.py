"""Volumes and mounts, restart policies and healthchecks on the fake engine (issue #18, part B).

What a user sees: a create's Binds/Mounts/Volumes reach the runtime's spec (never dropped),
bad ones are refused with a 400 naming the field, named volumes are made on use and
protected while used, a crashing ``on-failure:2`` container is started exactly twice more,
a user's stop is never undone, an unhealthy check shows ``unhealthy``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cove.daemon import schema
from cove.engine.health import check_argv
from cove.engine.restart import wants_restart
from cove.errors import Conflict, InvalidArgument, NotFound
from cove.runtime import profile
from cove.runtime.spec import ContainerSpec

from .enginefakes import Rig


class SpecRuntime:
    """Records the spec of every start (the fake runtime keeps only the state dir)."""

    def __init__(self, rig: Rig) -> None:
        self.specs: list[ContainerSpec] = []
        inner = rig.runtime.start

        def start(spec: Any) -> int:
            self.specs.append(spec)
            return inner(spec)

        rig.runtime.start = start  # type: ignore[method-assign]


def create(rig: Rig, body: dict[str, Any], name: str | None = None) -> str:
    config, host, eps = schema.container_request({"Image": "busybox", "Cmd": ["sh"], **body})
    return rig.engine.create_container(name, config, host, eps).id


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# mounts --------------------------------------------------------------------------------------
def test_binds_mounts_and_volumes_reach_the_oci_config(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rec = SpecRuntime(rig)
    host_dir = tmp_path / "site"
    existing = tmp_path / "conf"
    existing.mkdir()
    cid = create(rig, {"Volumes": {"/anon": {}},
                       "HostConfig": {"Binds": [f"{host_dir}:/site:ro", "data:/data"],
                                      "Mounts": [{"Type": "bind", "Source": str(existing), "Target": "/conf"},
                                                 {"Type": "tmpfs", "Target": "/scratch",
                                                  "TmpfsOptions": {"SizeBytes": 1 << 20}}]}})
    assert host_dir.is_dir()                 # as `docker run -v`: the missing host directory is made
    vols = rig.engine.volume_svc.volumes
    assert "data" in vols and len(vols) == 2          # the named one and the anonymous one
    rig.engine.start_container(cid)
    mounts = {m["destination"]: m for m in profile.oci_config(rec.specs[-1], "/root")["mounts"]}
    assert mounts["/site"]["source"] == str(host_dir) and "ro" in mounts["/site"]["options"]
    assert mounts["/data"]["source"] == rig.engine.volume_svc.path("data")
    assert "ro" not in mounts["/data"]["options"]
    assert mounts["/conf"]["source"] == str(existing)
    assert mounts["/scratch"]["type"] == "tmpfs" and "size=1048576" in mounts["/scratch"]["options"]
    anon = next(n for n in vols if n != "data")
    assert mounts["/anon"]["source"] == rig.engine.volume_svc.path(anon)
    out = schema.container_json(rig.engine, rig.engine.containers[cid])
    assert {m["Destination"] for m in out["Mounts"]} == {"/site", "/data", "/conf", "/scratch", "/anon"}
    assert out["HostConfig"]["Binds"] == [f"{host_dir}:/site:ro", "data:/data"]
    # in use: refused; after rm -v the anonymous volume is gone, the named one stays
    with pytest.raises(Conflict, match="in use"):
        rig.engine.volume_svc.remove("data")
    rig.engine.remove_container(cid, force=True, volumes=True)
    assert set(vols) == {"data"}
    rig.engine.volume_svc.remove("data")
    assert not os.path.exists(rig.engine.volume_svc.path("data"))


@pytest.mark.parametrize("hc, field", [
    ({"Binds": ["/x"]}, "HostConfig.Binds"),
    ({"Binds": ["/x:relative"]}, "HostConfig.Binds"),
    ({"Binds": ["/x:/"]}, "HostConfig.Binds"),
    ({"Binds": ["/x:/y:bogus"]}, "unknown option"),
    ({"Binds": ["bad name!:/y"]}, "neither an absolute path"),
    ({"Mounts": [{"Type": "bind", "Source": "/nonexistent/cove", "Target": "/y"}]}, "does not exist"),
    ({"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/y"}]}, "HostConfig.Mounts.Type"),
    ({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/y",
                  "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}]}, "DriverConfig.Name"),
    ({"Binds": ["/a:/y", "/b:/y"]}, "duplicate mount point"),
    ({"RestartPolicy": {"Name": "sometimes"}}, "RestartPolicy.Name"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}, "maximum retry count"),
    ({"RestartPolicy": {"Name": "always"}, "AutoRemove": True}, "AutoRemove"),
])
def test_bad_mounts_and_policies_are_refused_by_name(hc: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        schema.container_request({"Image": "busybox", "HostConfig": hc})


@pytest.mark.parametrize("check, field", [
    ({"Test": ["SHELL", "true"]}, "Healthcheck.Test"),
    ({"Test": ["CMD"]}, "Healthcheck.Test"),
    ({"Test": ["CMD", "true"], "Interval": 10}, "Healthcheck.Interval"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Healthcheck.Retries"),
])
def test_bad_healthchecks_are_refused_by_name(check: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        schema.container_request({"Image": "busybox", "Healthcheck": check})


def test_volume_api_verbs(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    svc = rig.engine.volume_svc
    v = svc.create("web", labels={"team": "blue"})
    assert v["Mountpoint"] == svc.path("web") and os.path.isdir(v["Mountpoint"])
    assert svc.create("web")["CreatedAt"] == v["CreatedAt"]          # as dockerd: the existing one
    with pytest.raises(InvalidArgument, match="Driver"):
        svc.create("x", driver="nfs")
    with pytest.raises(InvalidArgument, match="Name"):
        svc.create("../escape")
    with pytest.raises(NotFound):
        svc.find("nope")
    anon = svc.create()["Name"]
    assert len(anon) == 64
    gone, _ = svc.prune()
    assert gone == [anon]                  # prune takes the anonymous ones unless all=true
    gone, _ = svc.prune(all_volumes=True)
    assert gone == ["web"]


def test_volumes_survive_a_daemon_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.volume_svc.create("keep")
    again = type(rig.engine)(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall,
                             images=rig.engine.images, dns=rig.dns, runtime=rig.runtime)
    again.volume_svc.load()
    assert "keep" in again.volume_svc.volumes


# restart policies -----------------------------------------------------------------------------
def exit_now(rig: Rig, cid: str, code: int) -> None:
    rig.runtime.running.pop(rig.engine.cfg.container_state_dir(cid), None)
    rig.engine.on_exit(cid, code)


def test_on_failure_2_is_restarted_exactly_twice(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    cid = create(rig, {"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}})
    c = rig.engine.containers[cid]
    rig.engine.start_container(cid)
    for n in (1, 2):
        exit_now(rig, cid, 1)
        assert wait_for(lambda: c.running), f"restart {n} did not happen"
        assert c.restart_count == n
    exit_now(rig, cid, 1)
    time.sleep(0.6)                      # longer than the third back-off (0.4 s)
    assert not c.running and c.restart_count == 2


def test_always_restarts_but_a_user_stop_is_final(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    cid = create(rig, {"HostConfig": {"RestartPolicy": {"Name": "always"}}})
    c = rig.engine.containers[cid]
    rig.engine.start_container(cid)
    exit_now(rig, cid, 0)                # even a clean exit
    assert wait_for(lambda: c.running) and c.restart_count == 1
    rig.engine.stop_container(cid)
    time.sleep(0.5)
    assert not c.running
    rig.engine.start_container(cid)      # a user's start clears the stop
    assert not c.state.stopped_by_user


def test_policy_rules() -> None:
    config, host, _ = schema.container_request({"Image": "b", "HostConfig": {"RestartPolicy": {"Name": "no"}}})
    from cove.model import Container

    c = Container(id="x", name="x", created="", config=config, host_config=host)
    assert not wants_restart(c, 1, 0)
    c.host_config.restart_policy = {"Name": "on-failure", "MaximumRetryCount": 0}
    assert wants_restart(c, 1, 99) and not wants_restart(c, 0, 0)
    c.host_config.restart_policy = {"Name": "unless-stopped"}
    assert wants_restart(c, 0, 0)
    c.state.stopped_by_user = True
    assert not wants_restart(c, 0, 0)


def test_always_container_starts_again_with_the_daemon(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    a = create(rig, {"HostConfig": {"RestartPolicy": {"Name": "always"}}}, "a")
    u = create(rig, {"HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}}, "u")
    s = create(rig, {"HostConfig": {"RestartPolicy": {"Name": "always"}}}, "s")
    for cid in (a, u, s):
        rig.engine.start_container(cid)
    rig.engine.stop_container(u)                      # the user stopped these two
    rig.engine.stop_container(s)
    rig.engine.container_svc.restarter.close()        # the daemon goes away ...
    exit_now(rig, a, 137)                             # ... and the container dies meanwhile
    again = type(rig.engine)(rig.engine.cfg, store=rig.store, kernel=rig.kernel, firewall=rig.firewall,
                             images=rig.engine.images, dns=rig.dns, runtime=rig.runtime)
    again.load()
    again.reconcile()
    again.container_svc.restarter.on_daemon_start()
    assert again.containers[a].running
    assert again.containers[s].running                # always: back with the daemon even if stopped
    assert not again.containers[u].running            # unless-stopped: stays stopped


# healthchecks ---------------------------------------------------------------------------------
class Probe:
    """A stand-in for runc exec: runs the check on the host."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pid: int, cmd: list[str], env: list[str], workdir: str = "/", tty: bool = False,
                 stdin: bool = False, state_dir: str | None = None) -> Any:
        self.calls += 1

        class Handle:
            popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

            def finish(self, code: int | None) -> int:
                return -1 if code is None else code
        return Handle()


def test_health_goes_healthy_or_unhealthy(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    probe = Probe()
    rig.runtime.exec_process = probe  # type: ignore[attr-defined]
    ms = 1_000_000
    ok = create(rig, {"Healthcheck": {"Test": ["CMD-SHELL", "echo fine"], "Interval": 50 * ms}}, "ok")
    bad = create(rig, {"Healthcheck": {"Test": ["CMD", "false"], "Interval": 50 * ms, "Retries": 2}}, "bad")
    none = create(rig, {"Healthcheck": {"Test": ["NONE"]}}, "none")
    for cid in (ok, bad, none):
        rig.engine.start_container(cid)
    cs = rig.engine.containers
    assert cs[ok].state.health["Status"] == "starting"
    assert wait_for(lambda: cs[ok].state.health["Status"] == "healthy")
    assert wait_for(lambda: cs[bad].state.health["Status"] == "unhealthy")
    assert cs[bad].state.health["FailingStreak"] >= 2
    assert cs[ok].state.health["Log"][-1]["Output"] == "fine\n"
    assert cs[none].state.health == {}
    out = schema.container_json(rig.engine, cs[bad])
    assert out["State"]["Health"]["Status"] == "unhealthy"
    assert "(unhealthy)" in schema.status_text(cs[bad])
    rig.engine.stop_container(ok)
    rig.engine.stop_container(bad)
    n = probe.calls
    time.sleep(0.3)
    assert probe.calls <= n + 1          # the stopped containers' probes ended (one may be under way)


def test_test_argv() -> None:
    assert check_argv({"Test": ["CMD-SHELL", "curl -f x"]}) == ["/bin/sh", "-c", "curl -f x"]
    assert check_argv({"Test": ["CMD", "a", "b"]}) == ["a", "b"]
    assert check_argv({"Test": ["NONE"]}) is None
    assert check_argv({}) is None


def test_copy_up_fills_a_new_volume_but_never_through_a_symlink_out(tmp_path: Path) -> None:
    from cove.engine.volumes import _copy_up

    root, host_secret = tmp_path / "rootfs", tmp_path / "host-etc"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "index.html").write_text("image file")
    host_secret.mkdir()
    (host_secret / "shadow").write_text("host secret")
    (root / "data").symlink_to(host_secret)               # absolute: on the host it is the host's dir
    (root / "rel").symlink_to("../host-etc")               # relative, climbing out
    for target in ("/srv", "/data", "/rel"):
        vol = tmp_path / f"vol{target.replace('/', '-')}"
        vol.mkdir()
        _copy_up(str(root), target, str(vol))
    assert (tmp_path / "vol-srv" / "index.html").read_text() == "image file"
    assert os.listdir(tmp_path / "vol-data") == [] and os.listdir(tmp_path / "vol-rel") == []
