"""A private cove daemon for the bench, started inside the sandbox namespace.

It listens on a socket in a fresh temp dir, keeps its runtime files under
``/run/cove/bench-<token>`` and its data root (store, images, each container's writable
layer, logs and ``/etc`` files) under ``/var/lib/cove/bench-<token>``: both private tmpfs
mounts in the sandbox, as ``bench/refs/docker-sandbox.sh`` gives dockerd its data root and
``podman-sandbox.sh`` gives Podman its storage, so no engine is timed on a different
filesystem from the others.  (Until 2026-12-07 cove's data root was in the temp dir on the
machine's ext4, whose root has no journal: there every file created under churn scans the
recently deleted inodes, ~1 ms each, ~12 ms of each container start; see
bench/results/2026-12-07-storage.md.)  Outside a sandbox that has the tmpfs, the data root
falls back to the temp dir, and :attr:`CoveDaemon.data_root_fs` says which it was.

The token also names every container shim it starts, so :meth:`CoveDaemon.stop` can
SIGKILL any shim left behind (containers outlive a stopped daemon by design), by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine
from .proc import kill_tree, pids_with_arg, vm_rss_kib

ROOT = Path(__file__).resolve().parents[2]
PYCACHE = "/tmp/cove-bench-pycache"
SANDBOX_DATA = "/var/lib/cove"          # a tmpfs of tests/sandbox.sh and of the refs' sandboxes


def fs_type(path: str) -> str:
    """The filesystem type of the mount that holds ``path`` (``/proc/self/mountinfo``'s longest match)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, fstype
    return kind


def launcher_problem(script: Path) -> str | None:
    """Why ``script`` is not the launcher ``scripts/install.sh`` writes (Python with ``-S``, then
    ``cove.cli.fast.launch``), or None.  ``pip install -e .`` puts back pip's own script (``site``
    and ``re`` at every start: ~10 ms more per command), and CLI rows timed with it measure pip."""
    try:
        with open(script, encoding="utf-8") as f:
            head = f.read(400)
    except OSError as exc:
        return f"{script}: {exc.strerror}"
    if " -S" not in head.splitlines()[0] or "launch()" not in head:
        return f"{script} is not cove's launcher (pip rewrote it?): run ./scripts/install.sh again"
    return None


def cove_cli_argv() -> list[str]:
    """The ``cove`` launcher next to this interpreter (what users run), else ``-m cove``;
    a pip-generated script fails the run (:func:`launcher_problem`)."""
    script = Path(sys.executable).parent / "cove"
    if not script.exists():
        return [sys.executable, "-m", "cove"]
    problem = launcher_problem(script)
    if problem:
        raise SystemExit(f"bench: {problem}")
    return [str(script)]


@dataclass
class CoveDaemon:
    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="cove-bench-"))
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    proc: subprocess.Popen[bytes] | None = None
    #: the ``src`` tree the daemon, CLI and shims run (an A/B's other tree); default this checkout's
    src: str = str(ROOT / "src")

    @property
    def sock(self) -> str:
        return f"{self.tmp}/cove.sock"

    @property
    def exec_root(self) -> str:
        return f"/run/cove/bench-{self.token}"

    @property
    def data_root(self) -> str:
        if fs_type(SANDBOX_DATA) == "tmpfs" and os.environ.get("COVE_SANDBOX") == "1":
            return f"{SANDBOX_DATA}/bench-{self.token}"
        return f"{self.tmp}/lib"

    @property
    def data_root_fs(self) -> str:
        return fs_type(os.path.dirname(self.data_root))

    @property
    def log(self) -> str:
        return f"{self.tmp}/daemon.log"

    @property
    def env(self) -> dict[str, str]:
        """CLI, daemon and shims: this daemon's socket, and a bytecode cache outside the tree.

        An installed cove has its ``.pyc`` files; without them every CLI run and every
        shim recompiles its modules (~10 ms).  So ``PYTHONDONTWRITEBYTECODE`` is dropped
        and the cache goes to :data:`PYCACHE` (``PYTHONPYCACHEPREFIX``), not into src/.
        """
        env = {**os.environ, "COVE_HOST": f"unix://{self.sock}", "COVE_NO_AUTOSTART": "1",
               "PYTHONPATH": self.src, "PYTHONPYCACHEPREFIX": PYCACHE}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def engine(self) -> Engine:
        return Engine("cove", cove_cli_argv(), self.env, self.sock)

    def extra_args(self) -> tuple[str, ...]:
        """More ``cove daemon`` flags (none here; subclasses add theirs)."""
        return ()

    def command(self) -> list[str]:
        """How the daemon is run (``cove daemon`` with :meth:`extra_args`; a bench may wrap it)."""
        return [sys.executable, "-m", "cove", "daemon", *self.daemon_args()]

    def daemon_args(self) -> list[str]:
        return ["--host", f"unix://{self.sock}", "--data-root", self.data_root, "--exec-root", self.exec_root,
                *self.extra_args()]

    def start(self, timeout: float = 30.0) -> Engine:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True)  # a signal to the bench must not stop it before clean-up
        eng = self.engine()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cove daemon exited early:\n{self.log_tail()}")
            if os.path.exists(self.sock) and eng.cli("version", timeout=10).rc == 0:
                return eng
            time.sleep(0.05)
        raise RuntimeError(f"cove daemon did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def import_busybox(self, eng: Engine) -> None:
        from cove.runtime.busybox import make_busybox_tar

        tar = make_busybox_tar(f"{self.tmp}/busybox.tar")
        eng.ok("import", "-c", 'CMD ["sh"]', tar, "bb", timeout=120)

    def rss_kib(self) -> int | None:
        return vm_rss_kib(self.proc.pid) if self.proc else None

    def fd_count(self) -> int | None:
        """Open file descriptors of the daemon (select() fails on descriptors >= 1024)."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd")) if self.proc else None
        except OSError:
            return None

    def fd_kinds(self) -> dict[str, int]:
        """The daemon's descriptors by kind: ``pidfd``, ``socket``, ``file``, other anon inodes by name."""
        kinds: dict[str, int] = {}
        if self.proc is None:
            return kinds
        base = f"/proc/{self.proc.pid}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            return kinds
        for fd in names:
            try:
                target = os.readlink(f"{base}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:"):
                kind = "socket"
            elif target.startswith("anon_inode:"):
                kind = target[len("anon_inode:"):].strip("[]")
            elif target.startswith("pipe:"):
                kind = "pipe"
            else:
                kind = "file"
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def shim_pids(self) -> list[int]:
        return [p for p in pids_with_arg(self.exec_root) if self.proc is None or p != self.proc.pid]

    def log_tail(self, n: int = 3000) -> str:
        try:
            return Path(self.log).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> list[str]:
        """Stop the daemon, kill any shim it left, remove the temp dir; return what was killed."""
        notes: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                notes.append(f"daemon {self.proc.pid} ignored SIGTERM; killed")
                kill_tree(self.proc.pid)
                self.proc.wait(5)
        for pid in self.shim_pids():
            notes.append(f"killed leftover shim {pid}")
            kill_tree(pid)
        if self.data_root.startswith(SANDBOX_DATA + "/"):
            shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return notes
