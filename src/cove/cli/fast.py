"""The ``cove`` script's entry point: a hand-dispatched fast path in front of click.

A handful of everyday command lines are recognised here by exact shape and sent with
:mod:`cove.cli.client` alone:

- ``--version``; ``network create NAME``; ``network rm [-f] NAME...``; ``rm [-f] NAME...``;
- ``ps`` with ``-a``, ``-q``, ``--no-trunc`` (the table through :mod:`cove.cli.pslist`);
- ``inspect NAME...`` (no ``--type``/``--format``);
- ``exec CONTAINER COMMAND...`` without flags (no tty, no stdin: :mod:`cove.cli.streams`);
- ``run -d`` with ``--name``, ``--network``/``--net``, ``--ip A.B.C.D``, ``-e K=V``, ``--rm``, then
  IMAGE [COMMAND...] (the body :func:`cove.cli.run.create_body` builds for those flags).

Every other command line, and any option this module does not know, goes to the click
CLI (:func:`cove.cli.main.main`) unchanged.  Output bytes and exit codes are the click
commands' own (``tests/unit/test_cli_fast.py`` runs both on the same argv).

Why: click and :mod:`cove.cli.main` cost ~30 ms of imports on this machine (``python -X
importtime``), more than the daemon's work for most of these commands.  This module imports
nothing at load time; :mod:`cove.cli.client` needs the C modules ``_socket`` and ``_json``
only (``socket``, ``json``, ``typing``, ``contextlib``, ``urllib.parse``, ``collections``
were left out of it for the same reason: ``import socket, json`` alone was ~13 ms of CPU, a
fast command's imports went from ~14 ms to ~4 ms of ``python -X importtime``; ``inspect``
prints with :func:`pretty_json`, not ``json``), and the
installed ``cove`` launcher (``scripts/install.sh``) runs Python with ``-S``: the ``site``
module and the venv's ``.pth`` files are loaded only when the click CLI is needed.
Errors are reported by ``cove.cli.main.report_error`` (click is imported then only).
"""

from __future__ import annotations

import sys

from cove.cli.environ import env as _env

TYPE_CHECKING = False      # typing is not imported at run time: it is a third of a fast run
if TYPE_CHECKING:
    from typing import Any

    from cove.cli.client import Client

RM_MAX_NAMES = 4       # cove.cli.containers.PROGRESS_FROM - 1: more names show a progress bar
RUN_ERROR = 125        # cove.cli.run.RUN_ERROR
PS_FLAGS = {"-a": "a", "--all": "a", "-q": "q", "--quiet": "q", "--no-trunc": "n",
            "-aq": "aq", "-qa": "aq"}


def _names(args: list[str]) -> bool:
    return bool(args) and not any(a.startswith("-") or not a for a in args)


def _client() -> Client:
    """The click CLI's client too (:func:`cove.cli.client.cli_client`: autostart only when allowed)."""
    from cove.cli.client import DEFAULT_HOST, cli_client

    host = _env("COVE_HOST") or DEFAULT_HOST

    def autostart(endpoint: Any) -> Any:
        _full_path()
        from cove.cli.main import _autostart     # click: only when no daemon answers

        return _autostart(endpoint)

    return cli_client(host, autostart)


def _full_path() -> None:
    """Under the ``-S`` launcher, add site-packages (click, pyroute2) before leaving the fast path."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


_DONE = False                               # main() answered on the fast path (launch() may _exit)


def _early(method: str, path: str, body: Any = None) -> tuple[Client, Any]:
    """The client and ``call(method, path, body=body)``'s answer, the request written before
    the client is imported (:func:`cove.cli.wire.presend`) when a daemon listens on a unix
    socket; otherwise the usual way (autostart included)."""
    from cove.cli.wire import presend

    pre = presend(method, path, body)
    api = _client()
    if pre is None:
        return api, api.call(method, path, body=body)
    with api.adopt(pre, method, path).response() as resp:
        return api, resp.json()


def _delete_each(names: list[str], path: str, query: str, skip_404: bool = False) -> int:
    """``DELETE path.format(segment(name)) + query`` for each name, the first one written
    early (:func:`_early`)."""
    from cove.cli.wire import segment

    api: Client | None = None           # set by the first request that got an answer

    def action(name: str) -> None:
        nonlocal api
        where = path.format(segment(name)) + query
        if api is None:
            api = _early("DELETE", where)[0]
        else:
            api.call("DELETE", where)

    return _each(names, action, skip_404=skip_404)


def _each(names: list[str], action: Any, skip_404: bool = False) -> int:
    failed = False
    for name in names:
        try:
            action(name)
        except Exception as exc:
            from cove.cli.client import APIError     # loaded by now: the action used the client

            if not isinstance(exc, APIError):
                raise
            if skip_404 and exc.status == 404:
                continue
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed = True
            continue
        print(name, flush=True)
    return 1 if failed else 0


def _ps(flags: list[str]) -> int | None:
    seen = "".join(PS_FLAGS.get(f, "?") for f in flags)
    if "?" in seen or len(set(seen)) != len(seen):
        return None
    import time

    api = _client()
    containers = api.get("/containers/json", {"all": True if "a" in seen else None, "limit": None}) or []
    trunc = "n" not in seen
    if "q" in seen:
        for c in containers:
            print(c.get("Id", "") if not trunc else c.get("Id", "")[:12])
        return 0
    from cove.cli.pslist import ps_table

    def status_of(ident: str) -> str:
        from cove.cli.client import segment
        from cove.cli.format import container_status
        from cove.errors import CoveError

        try:
            state = (api.get(f"/containers/{segment(ident)}/json") or {}).get("State") or {}
        except CoveError:
            return ""
        return container_status(state, time.time()) if isinstance(state, dict) else str(state)

    print(ps_table(containers, time.time(), trunc=trunc, status_of=status_of))
    return 0


def _inspect(names: list[str]) -> int:
    from cove.cli.client import APIError, segment

    api = _client()
    found: list[Any] = []
    failed = False
    for name in names:
        for path in ("/containers/{}/json", "/networks/{}", "/images/{}/json"):
            try:
                found.append(api.get(path.format(segment(name))))
                break
            except APIError as exc:
                if exc.status != 404:
                    sys.stderr.write(f"Error response from daemon: {exc.message}\n")
                    failed = True
                    break
        else:
            sys.stderr.write(f"Error: No such object: {name}\n")
            failed = True
    print(pretty_json(found))     # cove.cli.format.dump_json
    return 1 if failed else 0


class _Unusual(Exception):
    """A value :func:`pretty_json` leaves to ``json``."""


def pretty_json(value: Any) -> str:
    """``json.dumps(value, indent=4, ensure_ascii=False)`` without importing ``json`` (and its
    ``re``, ``enum``: ~8 ms of a CLI run) for what API replies hold: dicts with str keys,
    lists, str, int, float, bool, None.  Anything else goes to ``json`` itself."""
    from _json import encode_basestring

    out: list[str] = []

    def emit(v: Any, pad: str) -> None:
        if isinstance(v, str):
            out.append(encode_basestring(v))
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, int):
            out.append(int.__repr__(v))
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise _Unusual
            out.append(float.__repr__(v))
        elif isinstance(v, (list, tuple)):
            if not v:
                out.append("[]")
                return
            inner = pad + "    "
            out.append("[")
            for i, item in enumerate(v):
                out.append(("\n" if i == 0 else ",\n") + inner)
                emit(item, inner)
            out.append("\n" + pad + "]")
        elif isinstance(v, dict):
            if not v:
                out.append("{}")
                return
            inner = pad + "    "
            out.append("{")
            for i, (key, item) in enumerate(v.items()):
                if not isinstance(key, str):
                    raise _Unusual
                out.append(("\n" if i == 0 else ",\n") + inner + encode_basestring(key) + ": ")
                emit(item, inner)
            out.append("\n" + pad + "}")
        else:
            raise _Unusual

    try:
        emit(value, "")
    except (_Unusual, RecursionError):
        import json

        return json.dumps(value, indent=4, ensure_ascii=False)
    return "".join(out)


def _plain_ipv4(value: str) -> bool:
    """A dotted quad ``ipaddress`` takes as it is (no leading zeros); anything else goes to click,
    which checks it and words the error."""
    parts = value.split(".")
    return len(parts) == 4 and all(p.isascii() and p.isdigit() and str(int(p)) == p and int(p) <= 255
                                   for p in parts)


def run_d_body(args: list[str]) -> tuple[str | None, dict[str, Any]] | None:
    """``run -d`` argv (after ``run``) -> (name, create body); None: not a fast-path shape.

    The body is the one :func:`cove.cli.run.create_body` makes for these flags (a unit
    test compares them); anything else, ``-p`` included, is left to click.
    """
    name: str | None = None
    ip: str | None = None
    networks: list[str] = []
    env: list[str] = []
    detach = auto_remove = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-d", "--detach") and not detach:
            detach = True
        elif a == "--rm" and not auto_remove:
            auto_remove = True
        elif a in ("--name", "--network", "--net", "-e", "--env", "--ip") and i + 1 < len(args):
            i += 1
            value = args[i]
            if a == "--name":
                if name is not None:
                    return None
                name = value
            elif a == "--ip":
                if ip is not None or not _plain_ipv4(value):
                    return None
                ip = value
            elif a in ("-e", "--env"):
                key, sep, _ = value.partition("=")
                if not key or not sep:
                    return None
                env.append(value)
            else:
                networks.append(value)
        elif a.startswith("-") or not a:
            return None
        else:
            break
        i += 1
    if not detach or i >= len(args) or len(networks) > 1:
        return None
    image, command = args[i], args[i + 1:]
    network = networks[0] if networks else "default"
    return name, {
        "Hostname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": {}, "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": env, "Cmd": list(command) or None, "Image": image, "WorkingDir": "",
        "Entrypoint": None, "MacAddress": "", "Labels": {},
        "HostConfig": {"NetworkMode": network, "AutoRemove": auto_remove, "Dns": [], "DnsSearch": [],
                       "DnsOptions": [], "ExtraHosts": [], "Links": [], "PortBindings": {},
                       "PublishAllPorts": False},
        "NetworkingConfig": {"EndpointsConfig": {network: {"IPAMConfig": {"IPv4Address": ip} if ip else {},
                                                           "Aliases": [], "MacAddress": ""}}},
    }


def _run_d(name: str | None, body: dict[str, Any]) -> int:
    from cove.cli.wire import segment
    from cove.errors import CoveError

    try:
        from cove.cli.wire import target

        api, reply = _early("POST", target("/containers/create", {"name": name}), body)
        reply = reply or {}
        for warning in reply.get("Warnings") or []:
            sys.stderr.write(f"WARNING: {warning}\n")
        cid = str(reply.get("Id", ""))
        api.post(f"/containers/{segment(cid)}/start")
    except CoveError as exc:
        _full_path()
        from cove.cli.main import report_error

        return report_error(exc, RUN_ERROR) or RUN_ERROR
    print(cid)
    return 0


def _exec(container: str, command: list[str]) -> int:
    """``exec C CMD...`` without -i/-t/-d/-e/-w/-u: cove.cli.attach.exec_'s requests and output."""
    import time

    from cove.cli.wire import segment

    body = {"User": "", "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "Cmd": command, "Env": [], "WorkingDir": ""}
    api, reply = _early("POST", f"/containers/{segment(container)}/exec", body)
    exec_id = str((reply or {}).get("Id", ""))
    from cove.cli.streams import copy_output

    path = f"/exec/{segment(exec_id)}"
    with api.hijack("POST", f"{path}/start", body={"Detach": False, "Tty": False}) as conn:
        # run_session(tty=False, interactive=False) is this copy; its streams come from click
        copy_output(conn.read, tty=False, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    deadline = time.monotonic() + 5.0             # cove.cli.attach.exec_exit_code
    while True:
        info = api.get(f"{path}/json") or {}
        code = info.get("ExitCode")
        if code is not None and not info.get("Running"):
            return int(code)
        if time.monotonic() >= deadline:
            if code is None:
                sys.stderr.write(f"cove: the daemon reported no exit code for {path}\n")
                return 1
            return int(code)
        time.sleep(0.05)


def fast(argv: list[str]) -> int | None:
    """Run ``argv`` if it has a fast-path shape; None: not handled (nothing was sent)."""
    if argv in (["--version"], ["-v"]):
        from cove import __version__

        print(f"cove version {__version__}")
        return 0
    if argv[:2] == ["network", "create"] and len(argv) == 3 and _names(argv[2:]):
        body = {"Name": argv[2], "Driver": "bridge", "Internal": False, "Attachable": False,
                "EnableIPv6": False, "Options": {}, "Labels": {}, "CheckDuplicate": True,
                "IPAM": {"Driver": "default", "Config": [], "Options": {}}}
        reply = _early("POST", "/networks/create", body)[1] or {}
        if reply.get("Warning"):
            sys.stderr.write(f"WARNING: {reply['Warning']}\n")
        print(reply.get("Id", ""))
        return 0
    if argv[:2] == ["network", "rm"]:
        rest = argv[2:]
        force = bool(rest) and rest[0] in ("-f", "--force")
        names = rest[1:] if force else rest
        if not _names(names):
            return None
        return _delete_each(names, "/networks/{}", "", skip_404=force)
    if argv[:1] == ["rm"]:
        rest = argv[1:]
        force = bool(rest) and rest[0] in ("-f", "--force")
        names = rest[1:] if force else rest
        if not _names(names) or len(names) > RM_MAX_NAMES:
            return None
        return _delete_each(names, "/containers/{}", "?force=1" if force else "")
    if argv[:1] == ["ps"]:
        return _ps(argv[1:])
    if argv[:1] == ["inspect"] and _names(argv[1:]):
        return _inspect(argv[1:])
    if argv[:1] == ["exec"] and len(argv) >= 3 and _names(argv[1:2]):
        return _exec(argv[1], argv[2:])
    if argv[:1] == ["run"]:
        parsed = run_d_body(argv[1:])
        return None if parsed is None else _run_d(*parsed)
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cove`` script; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if _env("_COVE_COMPLETE") is None:
        try:
            code = fast(args)
        except Exception as exc:
            from cove.errors import CoveError

            if not isinstance(exc, CoveError):
                raise
            _full_path()
            from cove.cli.main import report_error

            return report_error(exc) or 1
        if code is not None:
            global _DONE
            _DONE = True
            return code
    _full_path()
    from cove.cli.main import main as click_main

    return click_main(argv)


def launch() -> None:
    """The installed ``cove`` launcher's call: :func:`main`, then exit.

    After a fast-path answer the process leaves with ``posix._exit`` once stdout and
    stderr are flushed: the interpreter's own shutdown (module teardown, GC of every
    object) is ~1 ms of a ~6 ms command here and does nothing the command needs (no
    files are open, no atexit hooks are registered on this path).  If a flush fails
    (a closed pipe), the usual ``sys.exit`` reports it as Python would.
    """
    code = main()
    if _DONE:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - the interpreter's exit reports it
            sys.exit(code)
        import posix

        posix._exit(code & 0xFF)
    sys.exit(code)
