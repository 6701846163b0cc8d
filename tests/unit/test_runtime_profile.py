"""The security profile and the log files, without a kernel: what runc is given, what a user reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cove.daemon import schema
from cove.errors import InvalidArgument
from cove.runtime import logs, profile

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    ],
}


@pytest.fixture
def amd64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(profile.platform, "release", lambda: "6.1.0-13-amd64")
    monkeypatch.setattr(profile, "_x32", lambda: False)


def names(seccomp: dict) -> list[str]:
    return [n for rule in seccomp["syscalls"] for n in rule["names"]]


def test_default_capabilities_are_dockers_fourteen() -> None:
    caps = profile.capabilities([], [])
    assert sorted(caps) == sorted(profile.DEFAULT_CAPS) and len(caps) == 14
    assert "CAP_NET_ADMIN" not in caps and "CAP_SYS_ADMIN" not in caps


def test_cap_add_and_drop_follow_docker() -> None:
    assert "CAP_NET_ADMIN" in profile.capabilities(["net_admin"], [])
    assert "CAP_CHOWN" not in profile.capabilities([], ["CHOWN"])
    assert profile.capabilities(["KILL"], ["ALL"]) == ["CAP_KILL"]
    every = profile.capabilities(["ALL"], ["MKNOD"])
    assert "CAP_SYS_ADMIN" in every and "CAP_MKNOD" not in every
    assert set(profile.capabilities([], [], privileged=True)) >= set(profile.DEFAULT_CAPS)
    with pytest.raises(InvalidArgument, match="CapAdd.*NOPE"):
        profile.capabilities(["NOPE"], [])


def test_seccomp_keeps_this_machines_arches_and_the_rules_that_fit(amd64: None) -> None:
    out = profile.oci_seccomp(PROFILE, list(profile.DEFAULT_CAPS))
    assert out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 1
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    got = names(out)
    assert "arch_prctl" in got and "arm_fadvise64_64" not in got and "new_call" not in got
    bpf = [r for r in out["syscalls"] if r["names"] == ["bpf"]]
    assert bpf == [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    sock = next(r for r in out["syscalls"] if r["names"] == ["socket"])
    assert sock["args"] == [{"index": 0, "value": 16, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]


def test_seccomp_rules_for_added_capabilities(amd64: None) -> None:
    out = profile.oci_seccomp(PROFILE, [*profile.DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert [r["action"] for r in out["syscalls"] if r["names"] == ["bpf"]] == ["SCMP_ACT_ALLOW"]


def test_seccomp_options() -> None:
    assert profile.seccomp_for("unconfined", [], False) is None
    assert profile.seccomp_for("", [], True) is None                 # --privileged: no filter
    with pytest.raises(InvalidArgument, match="seccomp"):
        profile.seccomp_for("{not json", [], False)
    assert profile.parse_security_opts(["seccomp=unconfined", "no-new-privileges"]) == ("unconfined", True)
    assert profile.parse_security_opts(["no-new-privileges:false"]) == ("", False)
    with pytest.raises(InvalidArgument, match="SecurityOpt"):
        profile.parse_security_opts(["label=type:x"])


def spec(**kw: object) -> SimpleNamespace:
    base = dict(id="c" * 64, cap_add=[], cap_drop=[], privileged=False, seccomp="unconfined",
                no_new_privileges=False, pids_limit=0, memory=0, netns="/run/cove/netns/x",
                etc_files={"/etc/hosts": "/var/lib/cove/h"}, cmd=["sh"], workdir="/", tty=False,
                hostname="box", environment=lambda: {"PATH": "/bin"})
    base.update(kw)
    return SimpleNamespace(**base)


def test_oci_config_has_dockers_paths_and_cove_own_parts() -> None:
    cfg = profile.oci_config(spec(pids_limit=5, memory=1 << 26), "/run/cove/x/rootfs")
    linux = cfg["linux"]
    assert {"type": "network", "path": "/run/cove/netns/x"} in linux["namespaces"]
    assert {"type": "cgroup"} in linux["namespaces"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]
    assert {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/cove/h",
            "options": ["rbind", "rprivate"]} in cfg["mounts"]
    assert linux["resources"]["pids"] == {"limit": 5} and linux["resources"]["memory"] == {"limit": 1 << 26}
    assert linux["cgroupsPath"] == f"/cove/{spec().id}"                       # the daemon's --cgroup-parent
    assert profile.oci_config(spec(cgroup_parent="/ci/run-1"), "/r")["linux"]["cgroupsPath"].startswith("/ci/run-1/")
    assert cfg["process"]["capabilities"]["effective"] == list(profile.capabilities([], []))
    host = profile.oci_config(spec(netns=None), "/r")
    assert not any(n["type"] == "network" for n in host["linux"]["namespaces"])   # --network host
    priv = profile.oci_config(spec(privileged=True), "/r")
    assert priv["linux"]["maskedPaths"] == [] and "seccomp" not in priv["linux"]


def test_log_writer_rotates_as_json_file(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    w = logs.LogWriter(str(path), 100, 3)
    for i in range(60):
        w.write(b"line %02d padding\n" % i)
    w.write(b"".join(b"big %03d\n" % i for i in range(40)))       # one chunk bigger than a file
    w.close()
    files = sorted(f for f in tmp_path.iterdir() if not f.name.startswith("times-"))
    assert [f.name for f in files] == ["stdout.log", "stdout.log.1", "stdout.log.2"]
    # each with its write times (logs --timestamps), rotated alongside
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("times-")) == [
        "times-stdout.log", "times-stdout.log.1", "times-stdout.log.2"]
    assert all(f.stat().st_size <= 100 for f in files)
    assert path.read_bytes().endswith(b"big 039\n")
    assert (path.stat().st_mode & 0o777) == 0o600


def test_tail_reads_the_last_lines_across_rotated_files(tmp_path: Path) -> None:
    w = logs.LogWriter(str(tmp_path / "stdout.log"), 64, 3)
    for i in range(30):
        w.write(b"l%02d\n" % i)
    w.close()
    got = list(logs.follow_logs(str(tmp_path), False, False, lambda: False, tail=20))
    assert b"".join(d for _, d in got) == b"".join(b"l%02d\n" % i for i in range(10, 30))
    assert list(logs.follow_logs(str(tmp_path), False, False, lambda: False, tail=0)) == []
    whole = b"".join(d for _, d in logs.follow_logs(str(tmp_path), False, False, lambda: False))
    assert whole.endswith(b"l29\n") and whole.startswith(b"l")
    assert logs._last_lines([str(tmp_path / "stdout.log")], 2, block=3) == [b"l28\n", b"l29\n"]


def test_log_options_are_checked() -> None:
    assert logs.limits({}) == (logs.DEFAULT_MAX_SIZE, logs.DEFAULT_MAX_FILE)
    assert logs.limits({"Config": {"max-size": "10k", "max-file": "2"}}) == (10240, 2)
    assert logs.limits({"Config": {"max-size": "-1"}}) == (0, 1)
    for bad in ({"Type": "syslog"}, {"Config": {"max-size": "ten"}}, {"Config": {"max-file": "0"}},
                {"Config": {"compress": "true"}}, {"Config": {"max-file": "3"}}):
        with pytest.raises(InvalidArgument, match="LogConfig"):
            logs.check_config(bad)


def test_create_refuses_bad_security_fields_naming_them() -> None:
    body = {"Image": "bb", "HostConfig": {}}
    for hc, field in (({"CapAdd": ["NOPE"]}, "CapAdd"), ({"CapDrop": ["x_y"]}, "CapDrop"),
                      ({"SecurityOpt": ["seccomp="]}, "SecurityOpt"), ({"Memory": 1024}, "Memory"),
                      ({"PidsLimit": "x"}, "PidsLimit"), ({"LogConfig": {"Type": "gelf"}}, "LogConfig")):
        with pytest.raises(InvalidArgument, match=field):
            schema.container_request({**body, "HostConfig": hc})
    _, host, _ = schema.container_request({**body, "HostConfig": {"CapAdd": ["NET_ADMIN"], "Privileged": True,
                                                                   "PidsLimit": -1}})
    assert host.cap_add == ["NET_ADMIN"] and host.privileged and host.pids_limit == 0
