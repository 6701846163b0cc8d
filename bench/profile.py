"""Where cove's time goes: ``python bench/profile.py [--tools DIR] [--reps N]`` (root, by hand).

Needs py-spy and pyinstrument in a throwaway venv, never the project's::

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install py-spy pyinstrument

Like ``bench/run.py`` it re-executes itself inside ``tests/sandbox.sh``.  There it
starts a private cove daemon and, for each daemon operation, samples the daemon with
``py-spy record --idle`` (wall time, waits included) while the operation runs N times
over the API; the stacks under the engine method are folded into "share of the
method's wall time" per callee.  The CLI side is profiled with pyinstrument.  Output:
``bench/results/<date>-profile.md`` (``-profile-2.md``... when that exists).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "src")]

from harness.covedaemon import CoveDaemon
from harness.engine import Engine
from harness.unixhttp import UnixAPI

RATE = 500  # samples per second (non-blocking sampling: the daemon is not paused)


# frames that only hand work to another thread or wait: folded into their caller
WRAPPERS = ("Netlink._do ", "KernelThread.call ", "Future.result ", "Condition.wait ", "Event.wait ",
            "Popen._wait ", "Thread._wait_for_tstate_lock ", "_translate ", "_GeneratorContextManager.")


def fold(raw_path: str, key: str, depth: int = 4, top: int = 24) -> str:
    """py-spy raw stacks under frames matching ``key``: inclusive share per (depth, function)."""
    incl: Counter[tuple[int, str]] = Counter()
    total = 0
    for line in Path(raw_path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if key not in stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(WRAPPERS)]
        start = next(i for i, f in enumerate(frames) if key in f)
        total += int(count)
        seen: set[tuple[int, str]] = set()
        for d, frame in enumerate(frames[start:start + depth + 1]):
            name = frame.split(" (")[0]
            where = frame.rsplit("(", 1)[-1].rsplit("/", 1)[-1].split(":")[0].rstrip(")") if "(" in frame else ""
            k = (d, f"{name} ({where})")
            if k not in seen:
                seen.add(k)
                incl[k] += int(count)
    if not total:
        return f"(no samples under {key})\n"
    out = [f"{total} samples under `{key}`", "", "| share | depth | function |", "|---:|---:|---|"]
    for (d, name), n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"| {n * 100 / total:.0f}% | {d} | {'· ' * d}{name} |")
    return "\n".join(out) + "\n"


def sampled(pyspy: str, pid: int, work: Callable[[], None], reps: int) -> tuple[str, str]:
    """Run ``work`` (``reps`` rounds) while py-spy samples ``pid``: (raw stacks file, timing note)."""
    out = tempfile.mktemp(prefix="cove-prof-", suffix=".txt")
    spy = subprocess.Popen([pyspy, "record", "--idle", "--nonblocking", "-t", "-r", str(RATE), "-f", "raw",
                            "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        t0 = time.perf_counter()
        work()
        note = f"{reps} rounds, {(time.perf_counter() - t0) / reps * 1000:.1f} ms per round while sampled."
        time.sleep(0.3)
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    return out, note


def inner(tools: str, reps: int, out_md: str) -> None:
    pyspy, pyinst = f"{tools}/py-spy", f"{tools}/pyinstrument"
    daemon = CoveDaemon()
    eng: Engine = daemon.engine()
    sections: list[str] = []
    try:
        daemon.start()
        daemon.import_busybox(eng)
        pid = daemon.proc.pid if daemon.proc else 0
        api = UnixAPI(daemon.sock)

        ok = api.call                                # request() that must succeed (harness/unixhttp.py)

        def networks() -> None:
            for i in range(reps):
                eng.track_network(f"prof-n{i}")
                ok("POST", "/networks/create", {"Name": f"prof-n{i}"})
                ok("DELETE", f"/networks/prof-n{i}")

        raw, note = sampled(pyspy, pid, networks, reps)
        sections += ["## network create / rm (API)", "", note, "", fold(raw, "NetworkService.create_network"), "",
                     fold(raw, "NetworkService.remove_network"), ""]
        os.unlink(raw)

        eng.track_network("prof-net")
        eng.ok("network", "create", "prof-net")
        eng.track_network("prof-conn")
        eng.ok("network", "create", "prof-conn")
        eng.track_container("prof-p")
        eng.ok("run", "-d", "--name", "prof-p", "--network", "prof-net", "bb", "sleep", "3600")
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "prof-net"}}

        def containers() -> None:
            for i in range(reps):
                eng.track_container(f"prof-c{i}")
                ok("POST", f"/containers/create?name=prof-c{i}", body)
                ok("POST", f"/containers/prof-c{i}/start")
                ok("DELETE", f"/containers/prof-c{i}?force=1")

        raw, note = sampled(pyspy, pid, containers, reps)
        sections += ["## container create + start / remove (API; what run -d and rm -f ask)", "", note, "",
                     fold(raw, "ContainerService.start_container"), "",
                     fold(raw, "ContainerService.remove_container"), ""]
        os.unlink(raw)

        def attach() -> None:
            for _ in range(reps):
                ok("POST", "/networks/prof-conn/connect", {"Container": "prof-p"})
                ok("POST", "/networks/prof-conn/disconnect", {"Container": "prof-p"})

        raw, note = sampled(pyspy, pid, attach, reps)
        sections += ["## endpoint attach / detach (API network connect / disconnect)", "", note, "",
                     fold(raw, "NetworkService.connect"), "", fold(raw, "NetworkService.disconnect"), "",
                     "The kernel thread's side of the same calls (every netlink verb runs there):", "",
                     fold(raw, "_WorkItem.run"), ""]
        os.unlink(raw)
        api.close()

        env = {**eng.env, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path[2:]])}
        for title, args in (("cove network create", ["network", "create", "prof-cli"]),
                            ("cove run -d", ["run", "-d", "--name", "prof-cli-c", "--network", "prof-net",
                                             "bb", "sleep", "3600"])):
            eng.track_network("prof-cli")
            eng.track_container("prof-cli-c")
            r = subprocess.run([pyinst, "-r", "text", "--show", "*", "-m", "cove", *args], env=env,
                               capture_output=True, text=True, timeout=120, check=False)
            text = r.stdout if r.returncode == 0 else r.stderr
            sections += [f"## CLI: `{title}` (pyinstrument; interpreter start-up itself not included)", "",
                         "```", _trim(text), "```", ""]
    finally:
        eng.cleanup()
        daemon.stop()
    intro = (f"`python bench/profile.py --reps {reps}`: py-spy {RATE} Hz on the daemon, wall time "
             "(`--idle`), shares of the named engine method; depth 0 is the method itself.")
    head = [f"# cove profile, {dt.date.today().isoformat()}", "", intro, ""]
    Path(out_md).write_text("\n".join(head + sections))


def _trim(text: str, width: int = 150, lines: int = 60) -> str:
    keep = [ln[:width] for ln in text.splitlines() if ln.strip() and "_bootstrap" not in ln]
    return "\n".join(keep[:lines])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tools", default="/tmp/benchvenv/bin", help="directory with py-spy and pyinstrument")
    p.add_argument("--reps", type=int, default=60)
    p.add_argument("--inner", metavar="OUT_MD", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        if os.environ.get("COVE_SANDBOX") != "1":
            raise SystemExit("profile: the inner part runs only inside tests/sandbox.sh")
        inner(args.tools, args.reps, args.inner)
        return 0
    for tool in ("py-spy", "pyinstrument"):
        if not os.access(f"{args.tools}/{tool}", os.X_OK):
            raise SystemExit(f"profile: {args.tools}/{tool} missing; see this script's docstring")
    out = BENCH / "results" / f"{dt.date.today().isoformat()}-profile.md"
    n = 1
    while out.exists():  # the history is kept: a second profile the same day is <date>-profile-2.md
        n += 1
        out = BENCH / "results" / f"{dt.date.today().isoformat()}-profile-{n}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    rc = subprocess.run([str(ROOT / "tests/sandbox.sh"), sys.executable, str(Path(__file__).resolve()),
                         "--tools", args.tools, "--reps", str(args.reps), "--inner", str(out)],
                        cwd=ROOT, timeout=3600, check=False).returncode
    print(f"wrote {out}" if rc == 0 else f"profile: inner part exited {rc}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
