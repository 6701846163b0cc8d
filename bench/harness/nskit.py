"""Helpers shared by ``bench/dnsbench.py`` and ``bench/portsbench.py``.

Everything here runs *inside* a throwaway namespace (``tests/sandbox.sh`` or
``bench/refs/docker-sandbox.sh``) and refuses to run anywhere else: a private
podman (temp ``--root``/``--runroot``, runc, vfs, netavark + aardvark-dns), a
private cove daemon per firewall backend, a local upstream DNS server
(dnsmasq on an address of the sandbox's lo), and small wrappers for tools run in a
container's network namespace with ``nsenter``.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .covedaemon import CoveDaemon
from .engine import Engine
from .proc import kill_tree, run

UPSTREAM_IP = "10.253.0.1"
FWD_ZONE = "fwd.test"
FWD_ANSWER = "10.1.2.3"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def assert_sandboxed() -> None:
    """Kernel work only in a namespace made for this run (tests/sandbox.sh or docker-sandbox.sh)."""
    if os.environ.get("COVE_SANDBOX") != "1":
        raise SystemExit("bench: this part must run inside tests/sandbox.sh or bench/refs/docker-sandbox.sh")
    outer = os.environ.get("COVE_OUTER_NETNS")
    if outer is not None and outer == str(os.stat("/proc/self/ns/net").st_ino):
        raise SystemExit("bench: still in the machine's own network namespace; refusing")


def sh(*argv: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> str:
    return run(list(argv), env=env, timeout=timeout).check().out


# -- a private resolv.conf and an upstream DNS server --------------------------------------

@dataclass
class Upstream:
    """dnsmasq on ``UPSTREAM_IP`` (an address on the sandbox's lo) answering ``*.fwd.test``; the
    sandbox's /etc/resolv.conf is bind-mounted (private mount namespace) to name it."""

    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bench-up-"))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert_sandboxed()
        sh("ip", "addr", "add", f"{UPSTREAM_IP}/32", "dev", "lo")  # no dummy module on every kernel
        conf = Path(self.tmp, "resolv.conf")
        conf.write_text(f"nameserver {UPSTREAM_IP}\n")
        sh("mount", "--bind", str(conf), "/etc/resolv.conf")
        self.proc = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--bind-interfaces", f"--listen-address={UPSTREAM_IP}", f"--address=/{FWD_ZONE}/{FWD_ANSWER}",
             "--user=root", "--group=root", f"--pid-file={self.tmp}/dnsmasq.pid", "--dns-forward-max=1000",
             "--cache-size=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("dnsmasq exited at once")

    def stop(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc.pid)
            self.proc.wait(5)
        subprocess.run(["umount", "/etc/resolv.conf"], capture_output=True)
        subprocess.run(["ip", "addr", "del", f"{UPSTREAM_IP}/32", "dev", "lo"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- engines ------------------------------------------------------------------------------

class FirewallCoveDaemon(CoveDaemon):
    """The bench's private cove daemon, started with ``--firewall-backend``."""

    firewall: str = "nftables"

    def extra_args(self) -> tuple[str, ...]:
        return ("--firewall-backend", self.firewall)


def cove_engine(firewall: str = "nftables") -> tuple[CoveDaemon, Engine]:
    """A private cove daemon (inside the sandbox) with ``firewall``; image ``bb`` imported."""
    assert_sandboxed()
    d = FirewallCoveDaemon()
    d.firewall = firewall
    return started(d)


def started(d: CoveDaemon) -> tuple[CoveDaemon, Engine]:
    """``d`` started, with image ``bb`` imported; stopped again if either fails."""
    try:
        eng = d.start()
        d.import_busybox(eng)
    except BaseException:
        d.stop()
        raise
    return d, eng


def docker_engine() -> Engine:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix:///run/docker/"):
        raise SystemExit("bench: the docker part must run inside bench/refs/docker-sandbox.sh")
    return Engine("docker", ["docker"], dict(os.environ), host[len("unix://"):])


def busybox_tar(path: str) -> str:
    """A rootfs tarball from busybox-static (the same as docker-sandbox.sh imports)."""
    root = tempfile.mkdtemp(prefix="bench-bb-")
    try:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
            os.makedirs(f"{root}/{d}")
        shutil.copy("/bin/busybox", f"{root}/bin/busybox")
        for applet in sh("/bin/busybox", "--list").split():
            if applet != "busybox":
                os.symlink("busybox", f"{root}/bin/{applet}")
        sh("tar", "-C", root, "-cf", path, ".")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return path


RUNC_WRAPPER = r"""#!/usr/bin/python3
import json, os, sys
args = sys.argv[1:]

def strip(path, key):
    with open(path) as f:
        doc = json.load(f)
    (doc.get("process", {}) if key == "spec" else doc).pop("rlimits", None)
    with open(path, "w") as f:
        json.dump(doc, f)

if "create" in args or "run" in args:
    bundle = args[args.index("--bundle") + 1] if "--bundle" in args else "."
    strip(os.path.join(bundle, "config.json"), "spec")
if "exec" in args and "--process" in args:
    strip(args[args.index("--process") + 1], "process")
os.execvp("runc", ["runc", *args])
"""


@dataclass
class Podman:
    """A private rootful podman 4 in the sandbox: temp root/runroot, runc, vfs, netavark."""

    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bench-podman-"))

    @property
    def argv(self) -> list[str]:
        return ["podman", "--root", f"{self.tmp}/root", "--runroot", f"{self.tmp}/run",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": f"{self.tmp}/containers.conf",
                "CONTAINERS_STORAGE_CONF": f"{self.tmp}/storage.conf",
                "CONTAINERS_REGISTRIES_CONF": f"{self.tmp}/registries.conf", "TMPDIR": f"{self.tmp}/tmp"}

    def start(self) -> Engine:
        assert_sandboxed()
        t = self.tmp
        for d in ("root", "run", "tmp", "net", "libpod"):
            os.makedirs(f"{t}/{d}", exist_ok=True)
        # explicit ulimits, no higher than this process's (runc in the sandbox may not raise them)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        psoft, phard = (("-1" if v == resource.RLIM_INFINITY else str(v)) for v in resource.getrlimit(resource.RLIMIT_NPROC))
        Path(t, "containers.conf").write_text(f"""[containers]
default_ulimits = ["nofile={soft}:{hard}", "nproc={psoft}:{phard}"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{t}/libpod"
[network]
network_backend = "netavark"
network_config_dir = "{t}/net"
[engine.runtimes]
runc = ["{t}/runc-norlimits"]
""")
        # This machine lacks CAP_SYS_RESOURCE, and runc fails on every rlimit podman puts into
        # config.json (even --ulimit values equal to the current ones), so podman's runc is a
        # wrapper that drops process.rlimits before ``runc create``: containers keep conmon's.
        wrapper = Path(t, "runc-norlimits")
        wrapper.write_text(RUNC_WRAPPER)
        wrapper.chmod(0o755)
        Path(t, "storage.conf").write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{t}/run"\ngraphroot = "{t}/root"\n')
        Path(t, "registries.conf").write_text("")
        eng = Engine("podman", self.argv, self.env, "")
        eng.ok("import", "--change", 'CMD ["sh"]', busybox_tar(f"{t}/bb.tar"), "bb", timeout=120)
        return eng

    def stop(self, eng: Engine) -> list[str]:
        notes: list[str] = []
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            notes.append(f"podman clean-up: {exc}")
        # conmon / aardvark-dns started for this root: kill by PID (their cmdline names our temp dir)
        from .proc import pids_with_arg

        for pid in pids_with_arg(self.tmp):
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        subprocess.run(["umount", "-R", f"{self.tmp}/root"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return notes


def container_pid(eng: Engine, name: str) -> int:
    return int(eng.ok("inspect", "-f", "{{.State.Pid}}", name).out.strip())


def container_ip(eng: Engine, name: str, network: str) -> str:
    out = eng.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name).out
    return out.split()[0]


def in_netns(pid: int, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]
