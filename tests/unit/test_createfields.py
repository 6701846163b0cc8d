"""The create-field table: set fields cove cannot honour are a 400 naming them; zero values are no-ops."""

from __future__ import annotations

import pytest

from cove.daemon import createfields
from cove.daemon.schema import container_request
from cove.errors import InvalidArgument

# what the docker CLI 20.10 sends for a plain `docker run bb true` (every HostConfig field, zero)
CLI_ZEROES = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
    "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "",
    "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 0, "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False,
    "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def test_the_docker_clis_zero_values_are_accepted() -> None:
    config, host, _ = container_request({"Image": "bb", "Cmd": ["true"], "AttachStdout": True,
                                         "StdinOnce": False, "HostConfig": CLI_ZEROES})
    assert config.attach_stdout and not config.attach_stdin and host.sysctls == {}


@pytest.mark.parametrize("body, field", [
    ({"HostConfig": {"ShmSize": 1 << 27}}, "HostConfig.ShmSize"),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}]}}, "HostConfig.Ulimits"),
    ({"HostConfig": {"PidMode": "host"}}, "HostConfig.PidMode"),
    ({"HostConfig": {"Init": True}}, "HostConfig.Init"),
    ({"User": "1000"}, "User"),
    ({"StopSignal": "SIGUSR1"}, "StopSignal"),
    ({"HostConfig": {"SomethingNew": 1}}, "HostConfig.SomethingNew"),
    ({"HostConfig": {"Sysctls": {"kernel.shmmax": "1"}}}, "kernel.shmmax"),
    ({"HostConfig": {"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}}}, "network host"),
    ({"HostConfig": {"LogConfig": {"Type": "syslog"}}}, "LogConfig.Type"),
])
def test_fields_cove_cannot_honour_are_refused_by_name(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field.replace(".", r"\.")):
        container_request({"Image": "bb", "Cmd": ["true"], **body})


def test_defaults_of_default_only_fields_and_the_other_branchs_fields_pass() -> None:
    container_request({"Image": "bb", "StopSignal": "SIGTERM", "Volumes": {"/data": {}},
                       "Healthcheck": {"Test": ["CMD", "true"]},
                       "HostConfig": {"IpcMode": "private", "Runtime": "runc", "Binds": ["/a:/b"],
                                      "Mounts": [{"Type": "volume", "Target": "/x"}],
                                      "RestartPolicy": {"Name": "always"}, "LogConfig": {"Type": "none"}}})


def test_every_table_entry_has_a_known_handling() -> None:
    handlings = {createfields.HONOURED, createfields.ACCEPTED, createfields.DEFAULT_ONLY,
                 createfields.REFUSED}
    for table in (createfields.CONFIG, createfields.HOST):
        assert all(f.handling in handlings for f in table.values())
    assert "| `HostConfig.Sysctls` | honoured |" in createfields.table_markdown()
