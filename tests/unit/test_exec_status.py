"""An exec's status as Docker gives it, from ``runc exec``'s (issue 17: in the daemon, not a ``sh`` wrapper).

runc exits 255 when the command cannot start; its log says why: 127 (not found), 126 (not
executable).  :func:`exec_status` must give what the shell wrapper it replaces gave
(``EXEC_STATUS``, run here on the same code and log), and :meth:`ExecHandle.finish` reads it from the
memfd runc wrote it to (``--log /proc/self/fd/N``) and closes it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from cove.runtime import shim
from cove.runtime.exec import ExecHandle, exec_status

#: the ``sh -c`` wrapper around ``runc exec`` that exec_status replaced, kept as the rule's reference
EXEC_STATUS = """log=$1; shift; "$@"; rc=$?
if [ "$rc" -eq 255 ] && [ -s "$log" ]; then
  case $(cat "$log") in
    *'exec: '*'not found'*|*'exec: '*'no such file'*) rc=127 ;;
    *'exec: '*'permission denied'*) rc=126 ;;
  esac
fi
rm -f "$log"; exit "$rc"
"""

LOGS = [
    "",
    '{"level":"error","msg":"runc exec failed: unable to start container process: exec: \\"nosuch\\": '
    'executable file not found in $PATH"}',
    '{"msg":"exec: \\"/x\\": stat /x: no such file or directory"}',
    '{"msg":"exec: \\"/etc/passwd\\": permission denied"}',
    '{"msg":"not found before exec: nothing"}',
    '{"msg":"container not running"}',
]


@pytest.mark.parametrize("code", [0, 1, 126, 127, 255])
@pytest.mark.parametrize("log", LOGS)
def test_the_status_is_the_shell_wrappers(tmp_path: Path, code: int, log: str) -> None:
    path = tmp_path / "exec.log"
    path.write_text(log)
    shell = subprocess.run(["sh", "-c", EXEC_STATUS, "sh", str(path), "sh", "-c", f"exit {code}"], check=False)
    assert exec_status(code, log) == shell.returncode


def _logged(text: str) -> BinaryIO:
    """A runc log as exec_process makes it, written as runc does: through /proc/self/fd/N, appending."""
    log = shim.runc_log()
    with open(shim.log_arg(log), "a") as f:
        f.write(text)
    return log


def test_finish_reads_the_memfd_log_and_closes_it() -> None:
    log = _logged(LOGS[1])
    handle = ExecHandle(subprocess.Popen(["true"]), log=log)
    assert handle.finish(handle.popen.wait()) == 0
    assert log.closed
    handle = ExecHandle(subprocess.Popen(["sh", "-c", "exit 255"]), log=_logged(LOGS[1]))
    assert handle.wait() == 127 and handle.log is not None and handle.log.closed
    assert handle.finish(None) == -1
    assert ExecHandle(subprocess.Popen(["sh", "-c", "exit 255"])).wait() == 255


def test_runc_error_reads_the_last_error() -> None:
    text = ('{"level":"info","msg":"starting"}\nnot json\n[1]\n'
            '{"level":"error","msg":"first"}\n'
            '{"level":"fatal","msg":"runc run failed: exec: \\"nosuch\\": executable file not found in $PATH"}\n')
    assert shim.runc_error(text) == 'exec: "nosuch": executable file not found in $PATH'
    assert shim.runc_error("") == "runc failed"
