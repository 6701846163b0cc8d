"""Shell completion: bash really completes container, network and image names from the daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import Daemon


def complete(cove: Daemon, line: str) -> list[str]:
    """What bash offers after typing ``line`` and pressing Tab, through `cove completion bash`."""
    words = line.split(" ")
    script = ('eval "$(cove completion bash)"; COMP_WORDS=(' + " ".join(f"'{w}'" for w in words) + ");"
              f" COMP_CWORD={len(words) - 1}; _cove_completion cove; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = {**cove.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return sorted(x for x in r.stdout.splitlines() if x)


def test_bash_completes_names_from_the_daemon(cove: Daemon) -> None:
    cove.ok("network", "create", "greatwall")
    cove.ok("network", "create", "greenhouse")
    cove.ok("run", "-d", "--name", "milk", "bb", "sleep", "300")
    cove.ok("create", "--name", "mocha", "bb", "true")
    assert complete(cove, "cove stop m") == ["milk", "mocha"]
    assert complete(cove, "cove network rm gr") == ["greatwall", "greenhouse"]
    assert complete(cove, "cove network connect greatwall mi") == ["milk"]
    assert "bb" in complete(cove, "cove run b")
    assert "network" in complete(cove, "cove netw")
    assert complete(cove, "cove stop zz") == []
    zsh = cove.ok("completion", "zsh")
    assert zsh.startswith("#compdef cove")
