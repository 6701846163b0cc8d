"""CLI overhead: each hot command from the CLI vs the same request over the API.

Run by hand, inside tests/sandbox.sh (it starts a private daemon on a temp socket):

    tests/sandbox.sh .venv/bin/python bench/cli_overhead.py [--reps 15]

For each of ``network create NAME``, ``network rm NAME``, ``--version`` it times, one
after the other: the request alone on a kept-open :class:`cove.cli.client.Client`
(the API time), the ``cove`` entry point (``cove.cli.fast``) and the click entry
point (``cove.cli.main``, what the script ran before), each as a fresh interpreter.
Prints a Markdown table of medians (ms) and CLI − API.  No timings live in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from cove.cli.client import Client

ENTRIES = {"fast (cove script)": "cove.cli.fast", "click (before)": "cove.cli.main"}


def run_cli(module: str, env: dict[str, str], *args: str) -> float:
    code = f"import sys; from {module} import main; sys.exit(main())"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    opts = ap.parse_args()
    if os.environ.get("COVE_SANDBOX") != "1":
        sys.exit("run inside tests/sandbox.sh")
    tmp = tempfile.mkdtemp(prefix="cove-cliov-")
    sock = f"unix://{tmp}/cove.sock"
    env = dict(os.environ, COVE_HOST=sock, COVE_NO_AUTOSTART="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    daemon = subprocess.Popen([sys.executable, "-m", "cove", "daemon", "--host", sock,
                               "--data-root", f"{tmp}/data", "--exec-root", f"{tmp}/exec"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        api = Client(sock)
        for _ in range(200):
            try:
                api.get("/_ping")
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        rows: dict[str, dict[str, list[float]]] = {}
        for i in range(opts.reps + 1):       # round 0: warm-up, not recorded
            sample: dict[str, float] = {}
            t = time.perf_counter()
            api.post("/networks/create", {"Name": f"ov-api-{i}", "CheckDuplicate": True})
            sample["network create/API"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            api.delete(f"/networks/ov-api-{i}")
            sample["network rm/API"] = (time.perf_counter() - t) * 1000
            sample["--version/API"] = 0.0
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            sample["python -c pass (interpreter alone)/API"] = 0.0
            for label in ENTRIES:
                sample[f"python -c pass (interpreter alone)/{label}"] = (time.perf_counter() - t) * 1000
            for label, module in ENTRIES.items():
                name = f"ov-{module.rsplit('.', 1)[1]}-{i}"
                sample[f"network create/{label}"] = run_cli(module, env, "network", "create", name)
                sample[f"network rm/{label}"] = run_cli(module, env, "network", "rm", name)
                sample[f"--version/{label}"] = run_cli(module, env, "--version")
            if i:
                for key, ms in sample.items():
                    op, _, how = key.partition("/")
                    rows.setdefault(op, {}).setdefault(how, []).append(ms)
        print(f"| command ({opts.reps} reps, medians ms) | API | " + " | ".join(ENTRIES) +
              " | " + " | ".join(f"overhead {k}" for k in ENTRIES) + " |")
        print("|---|---:|" + "---:|" * (2 * len(ENTRIES)))
        for op, hows in rows.items():
            a = statistics.median(hows["API"])
            cli = [statistics.median(hows[k]) for k in ENTRIES]
            print(f"| {op} | {a:.1f} | " + " | ".join(f"{c:.1f}" for c in cli) + " | " +
                  " | ".join(f"+{c - a:.1f}" for c in cli) + " |")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
