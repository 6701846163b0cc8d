"""What the runtime needs to start one container: a plain, JSON-serialisable spec.

The daemon builds it; the shim reads it back from ``STATE_DIR/spec.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ContainerSpec:
    id: str                          # 64 hex
    rootfs: str | None               # image root filesystem (read-only lower layer); None: the host's own /
    state_dir: str                   # runtime files: pid, shim.pid, exit, stdin FIFO, spec.json, mount point
    data_dir: str                    # overlay upper/work, logs
    netns: str | None                # namespace file to join; None: stay in the caller's (host's)
    hostname: str
    etc_files: dict[str, str] = field(default_factory=dict)   # container path -> host file to bind over it
    cmd: list[str] = field(default_factory=list)              # argv, looked up in PATH inside the container
    env: list[str] = field(default_factory=list)              # "K=V"
    workdir: str = "/"
    tty: bool = False                # a pseudo-terminal (docker -t)
    open_stdin: bool = False         # stdin stays open: a FIFO the daemon writes to (docker -i)
    stdin_once: bool = False         # without a terminal: stdin ends when the first attached client's does
    # the security profile (see cove.runtime.profile): Docker's default unless loosened
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    seccomp: str = ""                # "": Docker's default profile; "unconfined"; or a profile's JSON
    no_new_privileges: bool = False
    pids_limit: int = 0              # 0: no limit
    memory: int = 0                  # bytes; 0: no limit
    log_max_size: int = 0            # bytes per log file before it is rotated; 0: the default cap
    log_max_file: int = 1            # rotated files kept (json-file's max-file)
    #: binds, volumes and tmpfs: {"type": bind|volume|tmpfs, "source": host path, "target",
    #: "readonly", "propagation", "size", "mode"} (cove.engine.volumes.VolumeService.spec_mounts)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)    # net.* keys runc sets in the container's netns
    #: --userns-remap: [[container id, host id, count], ...] (OCI uidMappings/gidMappings); empty: no user namespace
    uid_map: list[list[int]] = field(default_factory=list)
    gid_map: list[list[int]] = field(default_factory=list)
    userns: str | None = None        # the bound user namespace to join (it owns ``netns``); None: runc makes one
    cgroup_parent: str = "/cove"     # the daemon's --cgroup-parent: runc makes the cgroup <it>/<id>
    #: the daemon's directories of namespace binds, detached in the shims' mount namespaces
    #: (cove.kernel.netns.hide): no shim, runc or host image copies other containers' binds
    hidden: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The init's environment: ``env`` over Docker's defaults (PATH, HOSTNAME, HOME, TERM)."""
        env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname}
        for item in self.env:
            k, _, v = item.partition("=")
            env[k] = v
        if self.tty:
            env.setdefault("TERM", "xterm")
        env.setdefault("HOME", "/root")
        return env

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ContainerSpec:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def security_spec(host_config: Any) -> dict[str, Any]:
    """The spec's profile fields from a container's :class:`~cove.model.HostConfig`."""
    from . import logs, profile

    seccomp, nnp = profile.parse_security_opts(list(host_config.security_opt))
    max_size, max_file = logs.limits(host_config.log_config)
    return {"cap_add": list(host_config.cap_add), "cap_drop": list(host_config.cap_drop),
            "privileged": bool(host_config.privileged), "seccomp": seccomp, "no_new_privileges": nnp,
            "pids_limit": int(host_config.pids_limit), "memory": int(host_config.memory),
            "log_max_size": max_size, "log_max_file": max_file, "sysctls": dict(host_config.sysctls)}
