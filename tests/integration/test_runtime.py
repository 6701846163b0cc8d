"""The container runtime on its own: start, exec, stop, exit codes, logs, the host image.

Each test runs real containers (a busybox image, or the built-in host image)
inside the sandbox and checks what a user of ``docker run`` would see.  The
``containers`` fixture kills and cleans up everything a test started and checks
that no mount of any container ever shows in the sandbox's mount table.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cove.errors import InvalidArgument
from cove.runtime import process as rt
from cove.runtime.images import ImageStore
from cove.runtime.spec import DEFAULT_PATH, ContainerSpec
from cove.runtime.busybox import make_busybox_tar

RUN = "/run/cove/rt-test"
LIB = "/var/lib/cove/rt-test"
ROOT = Path(__file__).resolve().parents[2]


def mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def wait_for(check, timeout: float = 10.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def busybox() -> Iterator[str]:
    """The busybox image's root filesystem, imported into a store in the sandbox."""
    os.makedirs(LIB, exist_ok=True)
    store = ImageStore(f"{LIB}/images")
    tar = make_busybox_tar(f"{LIB}/busybox.tar")
    with open(tar, "rb") as f:
        img = store.import_tar(f, "busybox")
    assert img.rootfs is not None
    try:
        yield img.rootfs
    finally:
        shutil.rmtree(LIB, ignore_errors=True)
        shutil.rmtree(RUN, ignore_errors=True)


@dataclass
class NetNS:
    name: str
    path: str
    ifname: str          # the veth end inside
    host_end: str        # its peer, in the sandbox ("the host")


@pytest.fixture(scope="module")
def netns() -> Iterator[NetNS]:
    """A network namespace with lo and one veth end (eth0, 10.99.0.2/24), made as the engine would."""
    tag = uuid.uuid4().hex[:6]
    ns = NetNS(name=f"rt-{tag}", path=f"/run/netns/rt-{tag}", ifname="eth0", host_end=f"rth{tag}")
    sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", ns.name)
    try:
        sh("ip", "link", "add", ns.host_end, "type", "veth", "peer", "name", ns.ifname, "netns", ns.name)
        sh("ip", "-n", ns.name, "addr", "add", "10.99.0.2/24", "dev", ns.ifname)
        sh("ip", "-n", ns.name, "link", "set", ns.ifname, "up")
        sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


ETC = {"hosts": "127.0.0.1\tlocalhost\n10.99.0.2\tbox\n", "hostname": "box\n", "resolv.conf": "nameserver 10.99.0.1\n"}


class Containers:
    """Makes specs, starts containers, and removes every trace of them at the end."""

    def __init__(self, rootfs: str) -> None:
        self.rootfs = rootfs
        self.specs: list[ContainerSpec] = []

    def spec(self, cmd: list[str], *, host_image: bool = False, netns: NetNS | None = None, hostname: str = "box",
             **kw: object) -> ContainerSpec:
        cid = uuid.uuid4().hex * 2
        etc_dir = f"{LIB}/etc/{cid}"
        os.makedirs(etc_dir)
        for name, text in ETC.items():
            Path(etc_dir, name).write_text(text.replace("box", hostname))
        spec = ContainerSpec(id=cid, rootfs=None if host_image else self.rootfs, state_dir=f"{RUN}/{cid}",
                             data_dir=f"{LIB}/containers/{cid}", netns=netns.path if netns else None,
                             hostname=hostname, etc_files={f"/etc/{n}": f"{etc_dir}/{n}" for n in ETC},
                             cmd=cmd, env=[], **kw)  # type: ignore[arg-type]
        self.specs.append(spec)
        return spec

    def start(self, cmd: list[str], **kw: object) -> tuple[ContainerSpec, int]:
        spec = self.spec(cmd, **kw)
        pid = rt.start(spec)
        assert spec.id not in mountinfo(), "a container mount leaked into the host's mount table"
        return spec, pid

    def wait(self, spec: ContainerSpec, timeout: float = 10) -> int:
        """Wait until the shim has recorded the exit and is gone; return the code."""
        assert rt._wait_gone(spec.state_dir, "shim.pid", timeout), "the shim did not end"
        code = rt.exit_code(spec.state_dir)
        assert code is not None
        return code

    def run(self, cmd: list[str], **kw: object) -> tuple[int, str, str]:
        spec, _ = self.start(cmd, **kw)
        code = self.wait(spec)
        return code, *self.logs(spec)

    def logs(self, spec: ContainerSpec) -> tuple[str, str]:
        out: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        for stream, data in rt.follow_logs(spec.data_dir, spec.tty, False, lambda: False):
            out[stream] += data
        return out["stdout"].decode(), out["stderr"].decode()

    def close(self) -> None:
        for spec in self.specs:
            rt.kill(spec.state_dir, signal.SIGKILL)
            rt._wait_gone(spec.state_dir, "shim.pid", 10)
            rt.cleanup(spec)
            shutil.rmtree(f"{LIB}/etc/{spec.id}", ignore_errors=True)
            assert not os.path.exists(spec.state_dir) and not os.path.exists(spec.data_dir)
        leaked = [line for line in mountinfo().splitlines() if any(s.id in line for s in self.specs)]
        assert not leaked, f"container mounts left in the host's mount table: {leaked}"


@pytest.fixture
def containers(busybox: str) -> Iterator[Containers]:
    c = Containers(busybox)
    try:
        yield c
    finally:
        c.close()


def exec_out(pid: int, cmd: list[str], **kw: object) -> str:
    handle = rt.exec_process(pid, cmd, [], **kw)  # type: ignore[arg-type]
    out, err = handle.popen.communicate(timeout=20)
    code = handle.finish(handle.popen.returncode)
    assert code == 0, f"{cmd} exited {code}: {err.decode()}"
    return out.decode()


# -- what the container sees ------------------------------------------------------------------
def test_container_sees_its_hostname_etc_files_and_only_its_interfaces(containers: Containers, netns: NetNS) -> None:
    code, out, err = containers.run(
        ["sh", "-c", "hostname; echo --; cat /etc/hosts; echo --; cat /etc/resolv.conf; echo --; ls /sys/class/net"],
        netns=netns, hostname="webbox")
    assert (code, err) == (0, "")
    hostname, hosts, resolv, links = out.split("--\n")
    assert hostname == "webbox\n"
    assert hosts == ETC["hosts"].replace("box", "webbox")
    assert resolv == ETC["resolv.conf"]
    assert links.split() == ["eth0", "lo"]          # not the sandbox's veth end, nor anything else


def test_init_is_pid_1_and_ps_shows_only_the_container(containers: Containers) -> None:
    code, out, _ = containers.run(["sh", "-c", "sleep 30 & echo $$; sleep 0.3; ps -o pid,comm; exit 0"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "1"
    procs = {tuple(line.split()) for line in lines[2:]}
    assert {comm for _, comm in procs} == {"sh", "sleep", "ps"}
    assert ("1", "sh") in procs and len(procs) == 3


def test_environment_and_workdir(containers: Containers) -> None:
    spec = containers.spec(["sh", "-c", "pwd; echo $HOSTNAME; echo $PATH; echo $FOO; echo $HOME"], workdir="/data/app")
    spec.env = ["FOO=bar baz"]
    rt.start(spec)
    assert containers.wait(spec) == 0
    assert containers.logs(spec)[0].splitlines() == ["/data/app", "box", DEFAULT_PATH, "bar baz", "/root"]


def test_no_netns_means_the_hosts_network(containers: Containers, netns: NetNS) -> None:
    code, out, _ = containers.run(["ls", "/sys/class/net"])
    assert code == 0
    assert netns.host_end in out.split() and "eth0" not in out.split()


def test_host_image_runs_host_programs_with_private_etc(containers: Containers, netns: NetNS) -> None:
    hostname_before = Path("/etc/hostname").read_bytes() if os.path.exists("/etc/hostname") else None
    probe = Path("/etc/cove-runtime-probe")
    try:
        code, out, err = containers.run(
            ["sh", "-c", f"test -x {sys.executable} && echo host-python; ls /usr/bin/env; hostname; cat /etc/hostname;"
             f" echo written > {probe} && cat {probe}; echo $$; grep -c ' nsfs ' /proc/self/mountinfo"],
            host_image=True, hostname="inbox")
        assert err == ""
        # the bind of / brings no namespace file along (it would pin other containers' namespaces)
        assert os.path.exists(netns.path)
        assert out.splitlines() == ["host-python", "/usr/bin/env", "inbox", "inbox", "written", "1", "0"]
        assert code == 1                                # grep -c found nothing
        assert not probe.exists(), "a write to the host image's /etc reached the host"
    finally:
        probe.unlink(missing_ok=True)
    after = Path("/etc/hostname").read_bytes() if os.path.exists("/etc/hostname") else None
    assert after == hostname_before


# -- exec -------------------------------------------------------------------------------------
def test_exec_enters_every_namespace_and_the_root(containers: Containers, netns: NetNS) -> None:
    spec, pid = containers.start(["sleep", "3600"], netns=netns)
    links = exec_out(pid, ["ip", "-o", "addr"])
    assert "eth0" in links and "10.99.0.2/24" in links and netns.host_end not in links
    assert exec_out(pid, ["hostname"]) == "box\n"
    assert exec_out(pid, ["cat", "/proc/1/cmdline"]) == "sleep\x003600\x00"     # its PID namespace
    assert exec_out(pid, ["cat", "/etc/hosts"]) == ETC["hosts"]
    exec_out(pid, ["mkdir", "/only-in-the-container"])
    assert exec_out(pid, ["pwd"], workdir="/only-in-the-container") == "/only-in-the-container\n"
    handle = rt.exec_process(pid, ["sh", "-c", "echo $FOO; cat"], ["FOO=from-exec"], stdin=True)
    out, _ = handle.popen.communicate(b"piped\n", timeout=20)
    assert out == b"from-exec\npiped\n"


def test_exec_with_a_terminal(containers: Containers) -> None:
    _, pid = containers.start(["sleep", "3600"])
    handle = rt.exec_process(pid, ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; echo TERM=$TERM"], [], tty=True)
    assert handle.master_fd is not None
    out = b""
    try:
        while True:
            try:
                chunk = os.read(handle.master_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(handle.master_fd)
    assert handle.popen.wait(20) == 0
    assert out.replace(b"\r\n", b"\n") == b"on-a-tty\nTERM=xterm\n"


def test_exec_of_a_missing_command_fails(containers: Containers) -> None:
    _, pid = containers.start(["sleep", "3600"])
    handle = rt.exec_process(pid, ["nosuch"], [])
    handle.popen.communicate(timeout=20)
    assert handle.finish(handle.popen.returncode) == 127


# -- exit codes, stop -------------------------------------------------------------------------
def test_stop_sigkills_after_the_timeout_when_init_ignores_sigterm(containers: Containers) -> None:
    spec, pid = containers.start(["sleep", "3600"])
    assert rt.is_alive(spec.state_dir) and rt.read_pid(spec.state_dir) == pid
    t0 = time.monotonic()
    assert rt.stop(spec.state_dir, timeout=1) == 137
    assert 1 <= time.monotonic() - t0 < 8
    assert not rt.is_alive(spec.state_dir) and rt.exit_code(spec.state_dir) == 137
    assert not os.path.exists(f"/proc/{pid}/stat") or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"


def test_stop_is_quick_when_init_handles_sigterm(containers: Containers) -> None:
    spec, _ = containers.start(["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
    time.sleep(0.2)
    t0 = time.monotonic()
    assert rt.stop(spec.state_dir, timeout=10) == 0
    assert time.monotonic() - t0 < 3


def test_exit_codes_reach_the_exit_watcher(containers: Containers) -> None:
    exits: queue.Queue[tuple[str, int | None]] = queue.Queue()
    watcher = rt.ExitWatcher(lambda cid, code: exits.put((cid, code)))
    try:
        three, _ = containers.start(["sh", "-c", "sleep 0.2; exit 3"])
        killed, _ = containers.start(["sleep", "3600"])
        watcher.watch(three.id, three.state_dir)
        watcher.watch(killed.id, killed.state_dir)
        assert exits.get(timeout=10) == (three.id, 3)
        assert rt.kill(killed.state_dir, signal.SIGKILL)
        assert exits.get(timeout=10) == (killed.id, 137)
        assert exits.empty()
    finally:
        watcher.close()


def test_a_new_watcher_finds_containers_an_earlier_daemon_started(containers: Containers) -> None:
    running = containers.spec(["sleep", "3600"])
    done = containers.spec(["sh", "-c", "exit 4"])
    # "the earlier daemon": another process starts both, then goes away
    script = ("import sys; from cove.runtime import process as rt; from cove.runtime.spec import ContainerSpec\n"
              "for path in sys.argv[1:]:\n    print(rt.start(ContainerSpec.from_json(open(path).read())))\n")
    paths = []
    for spec in (running, done):
        path = f"{LIB}/etc/{spec.id}/spec.json"
        Path(path).write_text(spec.to_json())
        paths.append(path)
    subprocess.run([sys.executable, "-c", script, *paths], check=True, capture_output=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert rt.is_alive(running.state_dir)
    wait_for(lambda: rt.exit_code(done.state_dir) is not None, what="exit 4")
    exits: queue.Queue[tuple[str, int | None]] = queue.Queue()
    first = rt.ExitWatcher(lambda cid, code: exits.put((cid, code)))
    first.watch(running.id, running.state_dir)
    first.close()                                                    # a daemon that stops...
    second = rt.ExitWatcher(lambda cid, code: exits.put((cid, code)))  # ...and one that starts
    try:
        second.watch(running.id, running.state_dir)
        second.watch(done.id, done.state_dir)
        assert exits.get(timeout=10) == (done.id, 4)                   # already over: reported at once
        assert rt.stop(running.state_dir, timeout=0.5) == 137
        assert exits.get(timeout=10) == (running.id, 137)
    finally:
        second.close()


def test_is_alive_is_not_fooled_by_a_reused_pid(tmp_path: Path) -> None:
    me = os.getpid()
    started = Path(f"/proc/{me}/stat").read_text().rsplit(")", 1)[1].split()[19]
    (tmp_path / "pid").write_text(f"{me} {started}\n")
    assert rt.is_alive(str(tmp_path)) and rt.read_pid(str(tmp_path)) == me
    (tmp_path / "pid").write_text(f"{me} {int(started) + 1}\n")      # same PID, another process
    assert not rt.is_alive(str(tmp_path))
    assert not rt.kill(str(tmp_path), 0)
    assert not rt.is_alive(str(tmp_path / "nothing"))


# -- start failures ---------------------------------------------------------------------------
@pytest.mark.parametrize("cmd, message", [
    (["nosuch"], 'exec: "nosuch": executable file not found in $PATH'),
    (["/bin/nosuch"], 'exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory'),
])
def test_a_command_that_cannot_run_fails_start_and_leaves_nothing(containers: Containers, cmd: list[str],
                                                                  message: str) -> None:
    spec = containers.spec(cmd)
    with pytest.raises(InvalidArgument) as err:
        rt.start(spec)
    assert str(err.value) == message
    assert rt.exit_code(spec.state_dir) == 127
    assert not rt.is_alive(spec.state_dir)
    assert not rt._running(rt._identity(spec.state_dir, "shim.pid"))
    assert spec.id not in mountinfo()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert spec.id not in ps


# -- mounts and cleanup -----------------------------------------------------------------------
def test_container_mounts_never_reach_the_host_and_cleanup_removes_all(containers: Containers) -> None:
    before = mountinfo()
    spec, pid = containers.start(["sleep", "3600"])
    inside = Path(f"/proc/{pid}/mountinfo").read_text()
    assert " / / " in inside and "overlay" in inside                   # the container does have its mounts
    assert mountinfo() == before
    assert rt.stop(spec.state_dir, timeout=0.2) == 137
    rt.cleanup(spec)
    assert not os.path.exists(spec.state_dir) and not os.path.exists(spec.data_dir)
    rt.cleanup(spec)                                                    # idempotent
    rt.cleanup(spec.state_dir, spec.data_dir)
    assert mountinfo() == before


# -- logs and stdin ---------------------------------------------------------------------------
def test_logs_keep_stdout_and_stderr_apart(containers: Containers) -> None:
    code, out, err = containers.run(["sh", "-c", "echo out1; echo err1 >&2; echo out2"])
    assert (code, out, err) == (0, "out1\nout2\n", "err1\n")


def test_follow_logs_streams_until_the_container_exits(containers: Containers) -> None:
    spec, _ = containers.start(["sh", "-c", "echo first; sleep 0.5; echo second >&2; sleep 0.3; echo third"])
    got: list[tuple[str, bytes]] = []
    t0 = time.monotonic()
    for item in rt.follow_logs(spec.data_dir, False, True, lambda: rt.is_alive(spec.state_dir)):
        got.append(item)
    assert time.monotonic() - t0 < 10
    assert b"".join(d for s, d in got if s == "stdout") == b"first\nthird\n"
    assert b"".join(d for s, d in got if s == "stderr") == b"second\n"


def write_stdin(spec: ContainerSpec, data: bytes) -> None:
    fd = os.open(os.path.join(spec.state_dir, "stdin"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_interactive_shell_with_a_terminal_stays_alive_and_reads_stdin(containers: Containers) -> None:
    spec, _ = containers.start(["sh"], tty=True, open_stdin=True)
    time.sleep(0.5)
    assert rt.is_alive(spec.state_dir)                                 # no EOF: the shell waits for input
    tty_log = Path(spec.data_dir, "tty.log")
    write_stdin(spec, b"echo hi-$((40+2)); tty\n")
    wait_for(lambda: b"hi-42" in tty_log.read_bytes() and b"/dev/pts/0" in tty_log.read_bytes(),
             what="the shell's answer")
    time.sleep(0.3)
    assert rt.is_alive(spec.state_dir)                                 # closing a writer is no EOF either
    write_stdin(spec, b"exit 5\n")
    assert containers.wait(spec) == 5
    stdout, stderr = containers.logs(spec)
    assert "hi-42" in stdout and stderr == ""


def test_open_stdin_without_a_terminal_is_a_fifo_that_never_ends(containers: Containers) -> None:
    spec, _ = containers.start(["cat"], open_stdin=True)
    write_stdin(spec, b"hello\n")
    wait_for(lambda: containers.logs(spec)[0] == "hello\n", what="cat's echo")
    time.sleep(0.3)
    assert rt.is_alive(spec.state_dir)
    write_stdin(spec, b"again\n")
    wait_for(lambda: containers.logs(spec)[0] == "hello\nagain\n", what="cat's second echo")
    assert rt.stop(spec.state_dir, timeout=0.2) == 137


def test_without_open_stdin_the_input_is_empty(containers: Containers) -> None:
    code, out, _ = containers.run(["sh", "-c", "cat; echo eof"])
    assert (code, out) == (0, "eof\n")


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_start_given_up_before_runc_runs_nothing_and_leaves_no_shim(containers: Containers) -> None:
    """``launch`` has the shim forked and prepare the container (mount namespace, root, runc's
    config) while the engine plumbs its network; giving it up (``cancel``: the gate's end of
    file, as when the daemon is killed at that moment) ends the shim before ``runc run``: the
    command never runs, no init or exit is recorded, nothing stays mounted (the fixture checks).
    Seen failing with the shim's gate ignored (``_gate_open`` always True): the command ran
    and left ``/ran`` in the container's writable layer."""
    spec = containers.spec(["sh", "-c", "touch /ran; exec sleep 100"])
    launch = rt.launch(spec)
    shim = wait_for(lambda: rt.shim_pid(spec.state_dir), what="the shim's pid")
    wait_for(lambda: os.path.exists(f"{spec.state_dir}/config.json"), what="runc's config, written by the shim")
    time.sleep(0.2)                              # a shim that did not wait would be inside runc by now
    launch.cancel()
    assert not _alive(shim), "the shim outlived a start given up"
    assert rt.read_pid(spec.state_dir) is None and rt.exit_code(spec.state_dir) is None
    assert not os.path.isdir(f"{spec.state_dir}/runc/{spec.id}"), "runc made the container"
    ran = list(Path(spec.data_dir).rglob("ran"))
    assert not ran, f"the command ran: {ran}"
    code, out, _ = containers.run(["echo", "after"])       # the runtime serves the next start as usual
    assert (code, out) == (0, "after\n")


def test_the_zygote_forks_the_next_shim_ahead_and_takes_it_along_when_it_goes(containers: Containers) -> None:
    """After a start the zygote forks the next start's shim ahead (off that start's path); it
    serves the next start, and when the zygote ends (the daemon gone) it goes too: no process
    is left waiting for a request that cannot come.  Seen failing with the spare's end of file
    ignored: the spare outlived the zygote."""
    from cove.runtime import process, shim

    code, out, _ = containers.run(["echo", "one"])
    assert (code, out) == (0, "one\n")
    zygote = process.ZYGOTE._proc
    assert zygote is not None and zygote.poll() is None
    spare = wait_for(lambda: _children(zygote.pid), what="a shim forked ahead")[0]
    spec, _ = containers.start(["sleep", "100"])
    assert rt.shim_pid(spec.state_dir) == spare, "the next start did not take the shim forked ahead"
    time.sleep(shim.SPARE_DELAY + 0.3)
    waiting = [p for p in _children(zygote.pid) if p != spare]
    assert len(waiting) == 1, f"the zygote's children besides the running shim: {waiting}"
    zygote.kill()
    zygote.wait()
    wait_for(lambda: not _alive(waiting[0]), what="the shim forked ahead to go with its zygote")
    assert rt.is_alive(spec.state_dir), "a running container's shim went with the zygote"


def test_shims_come_from_the_zygote_and_a_dead_zygote_is_replaced(containers: Containers) -> None:
    """Shims are forked from one warm zygote (so they share its interpreter's pages); if it
    dies, the next start makes a new one, and with the zygote off a new interpreter serves."""
    from cove.runtime import process

    code, out, _ = containers.run(["echo", "one"])
    assert (code, out) == (0, "one\n")
    first = process.ZYGOTE._proc
    assert first is not None and first.poll() is None
    first.kill()
    first.wait()
    code, out, _ = containers.run(["echo", "two"])
    assert (code, out) == (0, "two\n")
    assert process.ZYGOTE._proc is not None and process.ZYGOTE._proc.pid != first.pid
    process.ZYGOTE.disabled = True
    try:
        code, out, _ = containers.run(["echo", "three"])
        assert (code, out) == (0, "three\n")
    finally:
        process.ZYGOTE.disabled = False


def test_a_full_disk_under_the_logs_neither_ends_supervision_nor_changes_the_exit_status(
        containers: Containers) -> None:
    """The container's data dir (its logs) on a 64 KiB tmpfs that its output fills: the shim drops
    what it cannot write, keeps draining the pipes (``head`` gets all its
    1,000,000 bytes through), supervises on, and records the container's own status, 3: before,
    the ENOSPC ended the shim and the exit recorded was the shim's 127 while the container ran on.
    (What the shim said cannot be kept in shim.log here: that is on the full tmpfs too.)"""
    spec = containers.spec(["sh", "-c", "yes | head -c 1000000; echo written >&2; sleep 1; exit 3"])
    os.makedirs(spec.data_dir, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "cove-full-test", spec.data_dir], check=True)
    try:
        rt.start(spec)
        wait_for(lambda: os.statvfs(spec.data_dir).f_bavail == 0, what="the logs' tmpfs to fill")
        assert rt.exit_code(spec.state_dir) is None, "an exit was recorded while the container runs"
        assert rt.is_alive(spec.state_dir) and rt.StateDir(spec.state_dir).is_alive("shim.pid")
        assert containers.wait(spec) == 3
        stdout_log = os.path.join(spec.data_dir, "stdout.log")
        assert 0 < os.path.getsize(stdout_log) < 1_000_000           # the tmpfs was where the log went
    finally:
        subprocess.run(["umount", "-l", spec.data_dir], check=False)   # lazily: before the fixture removes the dir
