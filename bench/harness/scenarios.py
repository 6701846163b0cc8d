"""The measured operations, written once and run against cove and Docker alike.

Each function takes an :class:`Engine` and a :class:`Samples` and times CLI commands
exactly as a user types them (wall time of the whole process).  Names start with
``bench-``; every name is tracked before it is created so clean-up finds it.  Each
timed series starts with one unrecorded warm-up round.  Every wait is bounded.
"""

from __future__ import annotations

import time

from .engine import Engine
from .proc import CommandFailed
from .stats import Samples

IMAGE = "bb"
PING_NET = "bench-ping"
PING_SUBNET = "10.231"           # /16, fixed so that --ip works on both engines
CONN_NET = "bench-conn"
PINGER = "bench-pinger"
PING_DEADLINE = 30.0


def network_create_rm(eng: Engine, s: Samples, reps: int) -> None:
    """``network create NAME`` then ``network rm NAME``, each timed."""
    for i in range(reps + 1):
        name = eng.track_network(f"bench-net-{i}")
        create = eng.ok("network", "create", name)
        remove = eng.ok("network", "rm", name)
        eng.networks.remove(name)
        if i:
            s.add("net_create", create.seconds)
            s.add("net_rm", remove.seconds)
            s.add("net_create_rm", create.seconds + remove.seconds)


def _start_sleeper(eng: Engine, name: str, *extra: str) -> None:
    eng.track_container(name)
    eng.ok("run", "-d", "--name", name, *extra, IMAGE, "sleep", "3600")


def _wait_ping(eng: Engine, src: str, dest: str, deadline: float = PING_DEADLINE) -> int:
    """Ping ``dest`` from container ``src`` until one reply; return the attempts made."""
    end = time.monotonic() + deadline
    attempts = 0
    while True:
        attempts += 1
        r = eng.cli("exec", src, "ping", "-c1", "-W1", dest, timeout=10)
        if r.rc == 0:
            return attempts
        if time.monotonic() > end:
            raise CommandFailed(f"{eng.name}: no ping reply from {dest} within {deadline:.0f}s: {r.err.strip()[-200:]}")
        time.sleep(0.005)


def setup_ping_net(eng: Engine) -> None:
    """A user network with a fixed /16 and a long-running container that pings the others."""
    eng.track_network(PING_NET)
    eng.ok("network", "create", "--subnet", f"{PING_SUBNET}.0.0/16", PING_NET)
    _start_sleeper(eng, PINGER, "--network", PING_NET, "--ip", f"{PING_SUBNET}.0.2")
    _wait_ping(eng, PINGER, f"{PING_SUBNET}.0.1")


def run_to_ping(eng: Engine, s: Samples, reps: int) -> None:
    """``run -d`` a sleeper; time to its first ping by IP, then by name; ``rm -f`` it.

    By IP: the new container gets a fixed ``--ip`` and the pinger pings that address.
    By name: the pinger pings the container's name (the embedded DNS must know it).
    ``run_d_*`` is the ``run -d`` command alone, ``run_to_ping_*`` from its start to the
    first reply (``ping -c1 -W1`` through ``exec``, repeated until it answers).  A round
    with no reply within :data:`PING_DEADLINE` is counted in ``ping_failed_<mode>`` and
    in ``errors``, and the next round runs.
    """
    for i in range(reps + 1):
        for mode in ("ip", "name"):
            name = f"bench-{mode}-{i}"
            ip = f"{PING_SUBNET}.{1 + i // 200}.{10 + i % 200}"
            extra = ["--network", PING_NET] + (["--ip", ip] if mode == "ip" else [])
            eng.track_container(name)
            t0 = time.perf_counter()
            r = eng.ok("run", "-d", "--name", name, *extra, IMAGE, "sleep", "3600")
            try:
                attempts = _wait_ping(eng, PINGER, ip if mode == "ip" else name)
            except CommandFailed as exc:
                # no reply within the deadline: counted and reported, the series goes on
                s.add(f"ping_failed_{mode}", 1)
                s.errors.append(f"run_to_ping_{mode} round {i}: {exc}")
                eng.rm(name)
                eng.containers.remove(name)
                continue
            t1 = time.perf_counter()
            rm = eng.rm(name).check()
            eng.containers.remove(name)
            if i:
                s.add(f"run_d_{mode}", r.seconds)
                s.add(f"run_to_ping_{mode}", t1 - t0)
                s.add(f"ping_attempts_{mode}", attempts)
                s.add("rm_f", rm.seconds)


def connect(eng: Engine, s: Samples, reps: int) -> None:
    """Attach one more endpoint to a running container, and detach it.

    ``connect_cli``/``disconnect_cli``: ``network connect|disconnect`` from the CLI.
    ``connect_api``/``disconnect_api``: the same ``POST /networks/N/(dis)connect`` over a
    kept-open API connection: the daemon's own time, without a CLI process.
    """
    eng.track_network(CONN_NET)
    eng.ok("network", "create", CONN_NET)
    api = eng.api() if eng.has_api else None
    try:
        for i in range(reps + 1):
            c = eng.ok("network", "connect", CONN_NET, PINGER)
            d = eng.ok("network", "disconnect", CONN_NET, PINGER)
            if i:
                s.add("connect_cli", c.seconds)
                s.add("disconnect_cli", d.seconds)
            if api is None:
                continue
            st1, body1, t_con = api.request("POST", f"/networks/{CONN_NET}/connect", {"Container": PINGER})
            st2, body2, t_dis = api.request("POST", f"/networks/{CONN_NET}/disconnect", {"Container": PINGER})
            if st1 >= 300 or st2 >= 300:
                raise CommandFailed(f"{eng.name}: API connect/disconnect: {st1} {body1} / {st2} {body2}")
            if i:
                s.add("connect_api", t_con)
                s.add("disconnect_api", t_dis)
    finally:
        if api is not None:
            api.close()


def reads(eng: Engine, s: Samples, reps: int) -> None:
    """``exec PINGER true``, ``ps``, ``inspect PINGER`` from the CLI and over the API.

    ``exec_api``: ``POST /containers/C/exec``, ``POST /exec/ID/start`` (hijacked, read to
    its end), ``GET /exec/ID/json``: what ``exec`` sends.  ``ps_api``: ``GET
    /containers/json``; ``inspect_api``: ``GET /containers/C/json``.
    """
    api = eng.api() if eng.has_api else None

    def call(method: str, url: str, payload: object = None) -> tuple[object, float]:
        assert api is not None
        status, reply, seconds = api.request(method, url, payload)
        if status >= 300:
            raise CommandFailed(f"{eng.name}: {method} {url}: {status} {reply}")
        return reply, seconds

    try:
        for i in range(reps + 1):
            ex = eng.ok("exec", PINGER, "true")
            ps = eng.ok("ps")
            ins = eng.ok("inspect", PINGER)
            if i:
                s.add("exec_cli", ex.seconds)
                s.add("ps_cli", ps.seconds)
                s.add("inspect_cli", ins.seconds)
            if api is None:
                continue
            reply, t_exec = call("POST", f"/containers/{PINGER}/exec",
                                 {"AttachStdout": True, "AttachStderr": True, "Cmd": ["true"]})
            eid = reply["Id"] if isinstance(reply, dict) else ""
            t_exec += api.stream("POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False})
            t_exec += call("GET", f"/exec/{eid}/json")[1]
            t_ps = call("GET", "/containers/json")[1]
            t_ins = call("GET", f"/containers/{PINGER}/json")[1]
            if i:
                s.add("exec_api", t_exec)
                s.add("ps_api", t_ps)
                s.add("inspect_api", t_ins)
    finally:
        if api is not None:
            api.close()


def cli_version(eng: Engine, s: Samples, reps: int) -> None:
    """``--version``: the CLI's start-up alone (no daemon involved)."""
    for i in range(reps + 1):
        r = eng.ok("--version")
        if i:
            s.add("cli_version", r.seconds)


def api_ops(eng: Engine, s: Samples, reps: int) -> None:
    """The daemon's own time for the same operations, over one kept-open API connection.

    ``net_create_api``/``net_rm_api``: ``POST /networks/create``, ``DELETE /networks/N``;
    ``run_d_api``: ``POST /containers/create`` + ``POST /containers/C/start`` (what
    ``run -d`` sends); ``rm_f_api``: ``DELETE /containers/C?force=1``.  The CLI figure
    minus the API figure is what the CLI process costs.  ``stop_api``: the runtime's stop of
    a second container (``POST /containers/C/kill`` then ``POST /containers/C/wait``) and
    ``rm_stopped_api`` its ``DELETE`` afterwards: rm -f's target is judged against the raw
    teardown plus that stop.
    """
    api = eng.api()
    body = {"Image": IMAGE, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": PING_NET},
            "NetworkingConfig": {"EndpointsConfig": {PING_NET: {}}}}

    def call(method: str, url: str, payload: object = None) -> float:
        status, reply, seconds = api.request(method, url, payload)
        if status >= 300:
            raise CommandFailed(f"{eng.name}: {method} {url}: {status} {reply}")
        return seconds

    try:
        for i in range(reps + 1):
            net = eng.track_network(f"bench-apinet-{i}")
            t_create = call("POST", "/networks/create", {"Name": net})
            t_rm = call("DELETE", f"/networks/{net}")
            eng.networks.remove(net)
            name = eng.track_container(f"bench-api-{i}")
            t_run = call("POST", f"/containers/create?name={name}", body)
            t_run += call("POST", f"/containers/{name}/start")
            t_del = call("DELETE", f"/containers/{name}?force=1")
            eng.containers.remove(name)
            other = eng.track_container(f"bench-api-stop-{i}")
            call("POST", f"/containers/create?name={other}", body)
            call("POST", f"/containers/{other}/start")
            t_stop = call("POST", f"/containers/{other}/kill")
            t_stop += call("POST", f"/containers/{other}/wait")
            t_rm_stopped = call("DELETE", f"/containers/{other}")
            eng.containers.remove(other)
            if i:
                s.add("stop_api", t_stop)
                s.add("rm_stopped_api", t_rm_stopped)
                s.add("net_create_api", t_create)
                s.add("net_rm_api", t_rm)
                s.add("run_d_api", t_run)
                s.add("rm_f_api", t_del)
    finally:
        api.close()


def network_scale(eng: Engine, s: Samples, count: int) -> None:
    """Networks 1..``count`` kept side by side: the cost of the N-th ``network create``.

    Over the API where the engine has one (cove, Docker: the daemon's own time), from the
    CLI otherwise (Podman, marked by ``netscale_via``).  Each network gets its own /24
    (``10.200.0.0/24``, ``10.200.1.0/24``, ...) so no engine's address pool runs out.
    ``netscale_create`` sample i is network i+1; ``netscale_rm`` removes them newest first.
    """
    names = [f"bench-ns-{i}" for i in range(1, count + 1)]
    subnets = [f"10.{200 + i // 256}.{i % 256}.0/24" for i in range(count)]
    api = eng.api() if eng.has_api else None
    s.facts["netscale_via"] = "api" if api else "cli"

    def create(name: str, subnet: str) -> float:
        if api is None:
            return eng.ok("network", "create", "--subnet", subnet, name).seconds
        status, reply, seconds = api.request("POST", "/networks/create",
                                             {"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}})
        if status >= 300:
            raise CommandFailed(f"{eng.name}: network create {name}: {status} {reply}")
        return seconds

    def remove(name: str) -> float:
        if api is None:
            return eng.ok("network", "rm", name).seconds
        status, reply, seconds = api.request("DELETE", f"/networks/{name}")
        if status >= 300:
            raise CommandFailed(f"{eng.name}: network rm {name}: {status} {reply}")
        return seconds

    try:
        for name, subnet in zip(names, subnets):
            eng.track_network(name)
            s.add("netscale_create", create(name, subnet))
        for name in reversed(names):
            s.add("netscale_rm", remove(name))
            eng.networks.remove(name)
    finally:
        if api is not None:
            api.close()
