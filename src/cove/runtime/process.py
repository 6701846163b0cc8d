"""The container runtime's verbs, as the engine calls them (``runtime.start(spec)``, ``runtime.stop(dir)``).

The runtime is split by lifecycle; this module gathers its public names:

- :mod:`cove.runtime.statedir`: :class:`StateDir`, what a container's state dir
  says (init and shim PIDs checked against their start times, the exit code) and
  the signals to it (``kill``, ``stop``);
- :mod:`cove.runtime.supervise`: ``launch`` and ``start`` (the shim, forked by a warm zygote),
  ``cleanup``, and the :class:`ExitWatcher`;
- :mod:`cove.runtime.exec`: ``exec_process`` (``runc exec`` with the container's
  profile) and the terminal's size;
- :mod:`cove.runtime.shim`: the per-container supervisor itself, which runs runc.

A state dir holds ``shim.pid``, ``pid``, ``exit``, ``stdin`` (the FIFO for
``open_stdin``), ``config.json``, ``spec.json`` and ``runc/`` (runc's state
root).  Logs are in the data dir (:mod:`cove.runtime.logs`): ``stdout.log``/``stderr.log``,
or ``tty.log``, rotated, made by the first write.  Both dirs are 0700 root.
"""

from __future__ import annotations

from .exec import ExecHandle, exec_process, resize_container_tty, set_winsize
from .logs import follow_logs
from .statedir import (SHIM_EXIT_TIMEOUT, StateDir, _running, exit_code, is_alive, kill, read_pid, shim_pid, stop,
                       wait_gone)
from .supervise import (START_TIMEOUT, STATE_FILES, ZYGOTE, ExitWatcher, Launch, Zygote, abandon, cleanup, launch,
                        start)

__all__ = ["abandon", "SHIM_EXIT_TIMEOUT", "START_TIMEOUT", "STATE_FILES", "ZYGOTE", "ExecHandle", "ExitWatcher",
           "Launch", "StateDir", "Zygote", "cleanup", "exec_process", "exit_code", "follow_logs", "is_alive", "kill",
           "launch", "read_pid", "resize_container_tty", "set_winsize", "shim_pid", "start", "stop", "wait_gone"]


# the helpers the integration tests (and branches written before the split) call by these names
def _identity(state_dir: str, name: str) -> tuple[int, str] | None:
    return StateDir(state_dir).identity(name)


def _wait_gone(state_dir: str, name: str, timeout: float) -> bool:
    return StateDir(state_dir).wait_gone(name, timeout)


__all__ += ["_identity", "_running", "_wait_gone"]
