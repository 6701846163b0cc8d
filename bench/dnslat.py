"""Embedded DNS latency probe (issue #17: p99 < 2 ms): a steady stream of queries under API churn.

Run by hand, inside the sandbox (it starts private cove daemons):

    tests/sandbox.sh .venv/bin/python bench/dnslat.py [--queries 20000] [--rate 2000] [--modes untuned,tuned]

For each mode a private daemon is started (``tuned``: ``cove daemon`` as shipped;
``untuned``: the same with :func:`cove.daemon.main.tune_runtime` replaced by a no-op, i.e.
the interpreter's default switch interval and no ``gc.freeze``), with a user network, a
container ``lat-srv`` whose name is asked for and a container ``lat-client`` whose network
namespace the client runs in (``nsenter --net``: UDP to 127.0.0.11:53, what the
container's resolv.conf names).  The client is a separate process (``--client``, GC off)
sending A queries for ``lat-srv`` open-loop at ``--rate`` per second (a fixed schedule, so
a stall of the resolver is not hidden by the client waiting for it), matching replies by
id; a query without a reply within 2 s counts as lost.  Two phases per mode:

* ``idle``: nothing else happens;
* ``churn``: meanwhile a thread of this process keeps the API busy, one request after the
  other over :class:`cove.cli.client.Client`: network create, container create + start on
  it, inspect, ps, ``rm -f``, network rm (each container on a user network also gets its own
  DNS listener).

Reported per phase: queries, lost, p50 / p99 / p99.9 / max latency (ms) and the churn
operations done.  Written to ``bench/results/<date>-dnslat.md`` (and ``.json`` with the
summaries); a second run the same day appends ``-2``, ``-3``.  No timings live in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "src")]

NAME = "lat-srv"
CLIENT = "lat-client"
NET = "latnet"
RESOLVER = ("127.0.0.11", 53)


# -- the client (runs in the container's network namespace) ---------------------------------

def query_packet(qid: int, name: str) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def client(name: str, count: int, rate: float, warmup: int) -> dict[str, Any]:
    """Send ``warmup + count`` queries at ``rate``/s; latencies (µs) of the last ``count``."""
    gc.disable()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect(RESOLVER)
    sock.setblocking(False)
    total = warmup + count
    packets = [query_packet(i & 0xFFFF, name) for i in range(min(total, 65536))]
    sent_at: dict[int, tuple[int, int]] = {}          # id -> (index, send time ns)
    lat: list[int] = []
    late = bad = 0
    interval = 1e9 / rate
    start = time.perf_counter_ns()

    def drain(timeout: float) -> None:
        nonlocal late, bad
        ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
        if not ready:
            return
        while True:
            try:
                data = sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                return
            now = time.perf_counter_ns()
            if len(data) < 12:
                bad += 1
                continue
            hit = sent_at.pop(struct.unpack_from("!H", data)[0], None)
            if hit is None:
                late += 1
                continue
            if data[3] & 0xF != 0 or struct.unpack_from("!H", data, 6)[0] == 0:
                bad += 1                                  # an error or an empty answer
            if hit[0] >= warmup:
                lat.append((now - hit[1]) // 1000)

    for i in range(total):
        due = start + int(i * interval)
        while True:
            now = time.perf_counter_ns()
            if now >= due:
                break
            drain((due - now) / 1e9)
        qid = i & 0xFFFF
        sent_at.pop(qid, None)                            # 65536 queries ago: lost
        sent_at[qid] = (i, time.perf_counter_ns())
        try:
            sock.send(packets[qid])
        except BlockingIOError:
            pass
    deadline = time.monotonic() + 2.0
    while sent_at and time.monotonic() < deadline:
        drain(0.05)
    elapsed = (time.perf_counter_ns() - start) / 1e9
    return {"latencies_us": lat, "sent": count, "lost": count - len(lat), "bad": bad, "late": late,
            "seconds": elapsed}


# -- the daemon, the churn ------------------------------------------------------------------

def percentiles(lat_us: list[int]) -> dict[str, float]:
    if not lat_us:
        return {}
    s = sorted(lat_us)

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(len(s) * q))] / 1000

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "p99.9_ms": at(0.999), "max_ms": s[-1] / 1000}


def watch_stalls(late_ms: float = 4.0) -> None:
    """Diagnostic (mode ``tuned+stalls``, in the daemon): a thread that sleeps 1 ms at a time;
    when it wakes ``late_ms`` late (it waited for the GIL or a CPU), the innermost frames of the
    other threads (the one that held the GIL has just left its long call) are counted; the
    counts go to ``$DNSLAT_STALLS`` every second."""
    from collections import Counter

    out = os.environ.get("DNSLAT_STALLS", "/dev/null")
    me = threading.get_ident()
    counts: Counter[str] = Counter()
    stalls: list[float] = []

    def frames() -> list[str]:
        seen = []
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            parts = []
            f: Any = frame
            while f is not None and len(parts) < 4:
                parts.append(f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}:{f.f_code.co_name}")
                f = f.f_back
            seen.append(" < ".join(parts))
        return seen

    def run() -> None:
        last_dump = time.monotonic()
        while True:
            t = time.perf_counter()
            time.sleep(0.001)
            late = (time.perf_counter() - t) * 1000 - 1
            if late >= late_ms:
                stalls.append(late)
                for line in frames():
                    if "select" in line and "service.py" in line or "wait" in line.split(" < ")[0]:
                        continue
                    counts[line] += 1
            if time.monotonic() - last_dump > 1:
                last_dump = time.monotonic()
                with open(out, "w") as f:
                    f.write(f"stalls {len(stalls)} ms {sorted(stalls)[-20:]}\n")
                    for line, n in counts.most_common(40):
                        f.write(f"{n} {line}\n")

    threading.Thread(target=run, name="dnslat-stalls", daemon=True).start()


#: how each mode changes ``cove daemon`` before it starts (``m`` is :mod:`cove.daemon.main`);
#: the last three are diagnostics: which part of the tuning matters
MODES = {
    "untuned": "m.tune_runtime = lambda: None",
    "tuned": "",
    "switch-only": "m.tune_runtime = lambda: sys.setswitchinterval(m.SWITCH_INTERVAL)",
    "freeze-only": "import gc; m.tune_runtime = lambda: (gc.collect(), gc.freeze())",
    "tuned+stalls": (f"sys.path.insert(0, {str(BENCH)!r}); import dnslat; tune = m.tune_runtime;"
                     " m.tune_runtime = lambda: (tune(), dnslat.watch_stalls())"),
    "tuned+gc-off": "import gc; tune = m.tune_runtime; m.tune_runtime = lambda: (tune(), gc.disable())",
}


def start_daemon(mode: str) -> Any:
    from harness.covedaemon import CoveDaemon
    from harness.nskit import started

    class LatDaemon(CoveDaemon):
        def command(self) -> list[str]:
            code = f"import sys; import cove.daemon.main as m\n{MODES[mode]}\nsys.exit(m.main(sys.argv[1:]))"
            return [sys.executable, "-c", code, *self.daemon_args()]

    return started(LatDaemon())


def churn(sock: str, stop: threading.Event, done: dict[str, int]) -> None:
    from cove.cli.client import Client
    from cove.errors import CoveError

    api = Client(f"unix://{sock}")
    i = 0
    while not stop.is_set():
        i += 1
        net, name = f"churn{i}", f"churn-c{i}"
        body = {"Image": "bb", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": net},
                "NetworkingConfig": {"EndpointsConfig": {net: {}}}}
        steps = (("POST", "/networks/create", {"Name": net}, None),
                 ("POST", "/containers/create", body, {"name": name}),
                 ("POST", f"/containers/{name}/start", None, None),
                 ("GET", f"/containers/{name}/json", None, None),
                 ("GET", "/containers/json", None, None),
                 ("DELETE", f"/containers/{name}", None, {"force": True}),
                 ("DELETE", f"/networks/{net}", None, None))
        for method, path, data, query in steps:
            try:
                api.call(method, path, body=data, query=query)
                done["ops"] = done.get("ops", 0) + 1
            except CoveError as exc:
                done["errors"] = done.get("errors", 0) + 1
                done["last_error"] = str(exc)[:200]   # type: ignore[assignment]


def run_client(pid: int, opts: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(prefix="dnslat-", suffix=".json", delete=False) as f:
        out = f.name
    try:
        subprocess.run(["nice", "-n", str(opts.client_nice), "nsenter", f"--net=/proc/{pid}/ns/net", sys.executable,
                        str(Path(__file__).resolve()), "--client", "--queries", str(opts.queries),
                        "--rate", str(opts.rate), "--out", out],
                       check=True, timeout=opts.queries / opts.rate + 120)
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


def measure(mode: str, opts: argparse.Namespace) -> dict[str, Any]:
    from harness import nskit

    daemon, eng = start_daemon(mode)
    res: dict[str, Any] = {}
    try:
        eng.ok("network", "create", NET)
        eng.ok("run", "-d", "--name", NAME, "--network", NET, "bb", "sleep", "36000")
        eng.ok("run", "-d", "--name", CLIENT, "--network", NET, "bb", "sleep", "36000")
        pid = nskit.container_pid(eng, CLIENT)
        for phase in opts.phases:
            stop = threading.Event()
            done: dict[str, int] = {}
            th = threading.Thread(target=churn, args=(daemon.sock, stop, done), daemon=True)
            if phase == "churn":
                th.start()
                time.sleep(1.0)                     # churn under way before the first query
            nskit.log(f"{mode}: {phase}: {opts.queries} queries at {opts.rate}/s")
            r = run_client(pid, opts)
            stop.set()
            if phase == "churn":
                th.join(60)
            lat = r.pop("latencies_us")
            res[phase] = {**r, **percentiles(lat), "churn": done}
            nskit.log(f"  {res[phase]}")
    finally:
        try:
            eng.cleanup()
        except Exception as exc:  # noqa: BLE001
            res["cleanup_error"] = str(exc)
        daemon.stop()
    return res


def report(data: dict[str, Any], opts: argparse.Namespace) -> str:
    lines = [f"# Embedded DNS latency under API churn (issue #17), {data['date']}", "",
             f"`tests/sandbox.sh .venv/bin/python bench/dnslat.py --queries {opts.queries} --rate {opts.rate:g}"
             f" --modes {','.join(opts.modes)}` at commit {data['commit']}; load average before: {data['load']}.",
             f"A queries for a container name, UDP to 127.0.0.11 from another container's netns, open-loop at"
             f" {opts.rate:g}/s, after {opts.warmup} unrecorded ones.", "",
             "| daemon | phase | queries | lost | p50 ms | p99 ms | p99.9 ms | max ms | churn ops (errors) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, phases in data["modes"].items():
        for phase, r in phases.items():
            if not isinstance(r, dict) or "sent" not in r:
                continue
            c = r.get("churn") or {}
            lines.append(f"| {mode} | {phase} | {r['sent']} | {r['lost']} | {r.get('p50_ms', 0):.3f} |"
                         f" {r.get('p99_ms', 0):.3f} | {r.get('p99.9_ms', 0):.3f} | {r.get('max_ms', 0):.1f} |"
                         f" {c.get('ops', 0)} ({c.get('errors', 0)}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/dnslat.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=20000)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--modes", default="untuned,tuned")
    p.add_argument("--phases", default="idle,churn")
    p.add_argument("--client-nice", type=int, default=0,
                   help="the client's nice value (negative: what the client waits for a CPU leaves the numbers)")
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.client:
        Path(opts.out).write_text(json.dumps(client(NAME, opts.queries, opts.rate, opts.warmup)))
        return 0
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    opts.modes = opts.modes.split(",")
    if set(opts.modes) - set(MODES):
        sys.exit(f"--modes: one of {', '.join(MODES)}")
    opts.phases = opts.phases.split(",")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    data: dict[str, Any] = {"date": dt.date.today().isoformat(), "commit": commit,
                            "load": " ".join(os.getloadavg().__repr__().strip("()").split(", ")), "modes": {}}
    for mode in opts.modes:
        key, n = mode, 1
        while key in data["modes"]:
            n += 1
            key = f"{mode} ({n})"
        data["modes"][key] = measure(mode, opts)
    res = Path(opts.results_dir)
    res.mkdir(parents=True, exist_ok=True)
    stem, n = f"{data['date']}-dnslat", 1
    while (res / f"{stem}.md").exists():
        n += 1
        stem = f"{data['date']}-dnslat-{n}"
    text = report(data, opts)
    (res / f"{stem}.md").write_text(text)
    (res / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(text)
    print(f"wrote {res / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
