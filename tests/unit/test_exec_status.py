"""An exec's status as Docker gives it, from ``runc exec``'s (issue 17: in the daemon, not a ``sh`` wrapper).

runc exits 255 when the command cannot start; its log says why: 127 (not found), 126 (not
executable).  :func:`exec_status` must give what the shell wrapper it replaces gave
(``EXEC_STATUS``, run here on the same code and log), and :meth:`ExecHandle.finish` removes the log.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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


def test_finish_removes_the_log(tmp_path: Path) -> None:
    path = tmp_path / "exec.log"
    path.write_text(LOGS[1])
    handle = ExecHandle(subprocess.Popen(["true"]), log=str(path))
    assert handle.finish(handle.popen.wait()) == 0
    assert not path.exists()
    handle = ExecHandle(subprocess.Popen(["sh", "-c", "exit 255"]), log=str(tmp_path / "other.log"))
    (tmp_path / "other.log").write_text(LOGS[1])
    assert handle.wait() == 127 and not (tmp_path / "other.log").exists()
    assert handle.finish(None) == -1
