"""The container's output logs in its data dir: ``stdout.log``/``stderr.log``, or ``tty.log``."""

from __future__ import annotations

import os

from .spec import ContainerSpec


def open_log(spec: ContainerSpec, name: str) -> int:
    """A descriptor appending to the log ``name`` (0600: the output may hold secrets)."""
    return os.open(os.path.join(spec.data_dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
