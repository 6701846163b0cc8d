"""A private ``cove daemon`` for the by-hand start-path benches (startpath, startcpu, daemoncpu,
cli_overhead), inside ``tests/sandbox.sh``: its socket and roots in one temp dir, answering, with
the image ``bb`` imported from busybox-static.  The caller stops it and removes the dir; a
launch that fails does both itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cove.cli.client import Client

ROOT = Path(__file__).resolve().parents[2]


def launch(tmp: str, src: str | None = None, exec_root: str | None = None,
           timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], Client, dict[str, str]]:
    """(the daemon, a client of it, the environment for ``cove`` commands against it).

    ``src``: the ``src`` tree the daemon runs (``PYTHONPATH``); ``exec_root``: default
    ``TMP/exec``; its data root is ``TMP/data``, its log ``TMP/daemon.log``."""
    sock = f"unix://{tmp}/cove.sock"
    env = dict(os.environ, COVE_HOST=sock, COVE_NO_AUTOSTART="1")
    if src is not None:
        env["PYTHONPATH"] = src
    env.pop("PYTHONDONTWRITEBYTECODE", None)     # the shims' modules from their bytecode, as installed
    with open(f"{tmp}/daemon.log", "wb") as logf:
        daemon = subprocess.Popen([sys.executable, "-m", "cove", "daemon", "--host", sock, "--data-root",
                                   f"{tmp}/data", "--exec-root", exec_root or f"{tmp}/exec"],
                                  stdout=subprocess.DEVNULL, stderr=logf, env=env)
    try:
        api = Client(sock)
        deadline = time.monotonic() + timeout
        while True:
            try:
                api.get("/_ping")
                break
            except Exception:  # noqa: BLE001 - not up yet
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the private daemon did not answer: "
                                     + Path(tmp, "daemon.log").read_text(errors="replace")[-2000:]) from None
                time.sleep(0.05)
        from cove.runtime.busybox import make_busybox_tar

        tar = make_busybox_tar(f"{tmp}/busybox.tar")
        subprocess.run([str(ROOT / ".venv" / "bin" / "cove"), "import", "-c", 'CMD ["sh"]', tar, "bb"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    except BaseException:                        # nothing of it is left: the daemon, its dir
        daemon.kill()
        daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return daemon, api, env
