"""What the runtime needs to start one container: a plain, JSON-serialisable spec."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ContainerSpec:
    id: str
    rootfs: str | None               # image root filesystem (lower layer); None: the host's own /
    state_dir: str                   # runtime files: pid, exit status, stdin fifo, mount point
    data_dir: str                    # overlay upper/work, logs
    netns: str | None                # namespace file to join; None: stay in the host's
    hostname: str
    etc_files: dict[str, str] = field(default_factory=dict)   # container path -> host file to bind
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    workdir: str = "/"
    tty: bool = False
    open_stdin: bool = False

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {"PATH": DEFAULT_PATH}
        for item in self.env:
            k, _, v = item.partition("=")
            env[k] = v
        env.setdefault("HOSTNAME", self.hostname)
        if self.tty:
            env.setdefault("TERM", "xterm")
        env.setdefault("HOME", "/root")
        return env

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ContainerSpec:
        return cls(**json.loads(text))
