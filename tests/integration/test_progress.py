"""Progress bars: drawn on a terminal for long work, absent when output is not a terminal."""

from __future__ import annotations

import shlex
import subprocess
import sys

from tests.integration.conftest import COVE, Daemon


def on_a_terminal(cove: Daemon, *args: str) -> str:
    """Run the CLI under a pseudo-terminal (util-linux `script`) and return what the terminal got."""
    cmd = " ".join(shlex.quote(a) for a in [*COVE, *args])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, env=cove.env,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_rm_of_many_containers_and_import_show_a_bar_only_on_a_terminal(cove: Daemon, tmp_path) -> None:
    names = [f"p{i}" for i in range(6)]
    for n in names:
        cove.ok("create", "--name", n, "bb", "true")
    screen = on_a_terminal(cove, "rm", "-f", *names[:3], *names[3:])
    assert "100%" in screen and "6/6" in screen and "[" + "#" * 30 + "]" in screen
    assert all(n in screen for n in names)

    for n in names:
        cove.ok("create", "--name", n, "bb", "true")
    piped = cove.cli("rm", "-f", *names)                  # not a terminal: names only, no bar
    assert piped.returncode == 0 and piped.stdout.split() == names and piped.stderr == ""

    big = tmp_path / "big.tar"
    subprocess.run([sys.executable, "-c", f"""
import io, os, tarfile
with tarfile.open({str(big)!r}, "w") as t:
    data = os.urandom(6 << 20)
    info = tarfile.TarInfo("blob"); info.size = len(data); t.addfile(info, io.BytesIO(data))
"""], check=True)
    screen = on_a_terminal(cove, "import", str(big), "big")
    assert "importing big.tar" in screen and "MB" in screen and "100%" in screen
    piped = cove.cli("import", str(big), "big2")
    assert piped.returncode == 0 and "%" not in piped.stderr and "MB" not in piped.stderr
