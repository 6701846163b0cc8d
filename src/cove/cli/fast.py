"""The ``cove`` script's entry point: a hand-dispatched fast path in front of click.

A handful of everyday command lines are recognised here by exact shape and sent with
:mod:`cove.cli.client` alone:

- ``--version``; ``network create NAME``; ``network rm [-f] NAME...``; ``rm [-f] NAME...``;
- ``ps`` with ``-a``, ``-q``, ``--no-trunc`` (the table through :func:`cove.cli.format.ps_table`);
- ``inspect NAME...`` (no ``--type``/``--format``);
- ``exec CONTAINER COMMAND...`` without flags (no tty, no stdin: :mod:`cove.cli.streams`);
- ``run -d`` with ``--name``, ``--network``/``--net``, ``--ip A.B.C.D``, ``-e K=V``, ``--rm``, then
  IMAGE [COMMAND...] (the body :func:`cove.cli.run.create_body` builds for those flags).

Every other command line, and any option this module does not know, goes to the click
CLI (:func:`cove.cli.main.main`) unchanged.  Output bytes and exit codes are the click
commands' own (``tests/unit/test_cli_fast.py`` runs both on the same argv).

Why: click and :mod:`cove.cli.main` cost ~30 ms of imports on this machine (``python -X
importtime``), more than the daemon's work for most of these commands.  This module imports
nothing at load time (not even ``__future__``: annotations are strings); its requests are
written and read by :mod:`cove.cli.wire`, which needs the C modules ``_socket`` and ``_json``
only (``socket``, ``json``, ``typing``, ``contextlib``, ``urllib.parse``, ``collections``
were left out for the same reason: ``import socket, json`` alone was ~13 ms of CPU, a
fast command's imports went from ~14 ms to ~4 ms of ``python -X importtime``; ``inspect``
prints with :func:`pretty_json`, not ``json``).  :mod:`cove.cli.client` (and
:mod:`cove.errors`) are imported only to report an error, when no daemon answered on the unix
socket (the client's autostart) or for a ``tcp://`` host, and for ``exec``'s hijacked stream:
each module a command imports is ~0.1-0.2 ms of CPU here, most of it the import system's own
work (``bench/cli_micro.py``), and ``network create`` imported 10 modules, now 5.  The
installed ``cove`` launcher (``scripts/install.sh``) runs Python with ``-S``: the ``site``
module and the venv's ``.pth`` files are loaded only when the click CLI is needed.
Errors are reported by ``cove.cli.main.report_error`` (click is imported then only).
"""

import sys

from cove.cli import env as _env

TYPE_CHECKING = False      # typing is not imported at run time: it is a third of a fast run
if TYPE_CHECKING:
    from typing import Any

    import _socket

    from cove.cli.client import Client

RM_MAX_NAMES = 4       # cove.cli.containers.PROGRESS_FROM - 1: more names show a progress bar
RUN_ERROR = 125        # cove.cli.run.RUN_ERROR
PS_FLAGS = {"-a": "a", "--all": "a", "-q": "q", "--quiet": "q", "--no-trunc": "n",
            "-aq": "aq", "-qa": "aq"}


def _names(args: "list[str]") -> bool:
    return bool(args) and not any(a.startswith("-") or not a for a in args)


def _say(text: str) -> None:
    """``print(text)`` in one write (``print`` writes ``end`` apart: two writes unbuffered)."""
    sys.stdout.write(text + "\n")


def _client() -> "Client":
    """The click CLI's client too (:func:`cove.cli.client.cli_client`: autostart only when allowed)."""
    from cove.cli.client import DEFAULT_HOST, cli_client

    host = _env("COVE_HOST") or DEFAULT_HOST

    def autostart(endpoint: "Any") -> "Any":
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


class _Api:
    """The requests of one command, each on its own connection as the client makes them:
    written by :func:`cove.cli.wire.presend` and read by :func:`cove.cli.wire.reply`, with
    the answers, errors included, :meth:`cove.cli.client.Client.call` gives.  When presend
    sends nothing (no daemon listens on the unix socket, a ``tcp://`` host) the command's
    :func:`_client` takes over (autostart included) and makes its remaining requests."""

    def __init__(self) -> None:
        self.client: "Client | None" = None
        self.reached = False

    def call(self, method: str, path: str, body: "Any" = None, missing: "Any" = None) -> "Any":
        """``Client.call(method, path, body=body)``; a 404 answer is ``missing`` when that is
        given (``inspect`` tries the next kind of object: no APIError, so no client import)."""
        if self.client is None:
            from cove.cli.wire import presend

            sock = presend(method, path, body)
            if sock is not None:
                self.reached = True
                return _answer(sock, method, path, missing)
            self.client = _client()
            self.client._reached = self.reached      # a daemon that answered once is not autostarted
        if missing is None:
            return self.client.call(method, path, body=body)
        from cove.cli.client import APIError

        try:
            return self.client.call(method, path, body=body)
        except APIError as exc:
            if exc.status != 404:
                raise
            return missing

    def get(self, path: str) -> "Any":
        return self.call("GET", path)

    def hijack(self, method: str, path: str, body: "Any") -> "tuple[Any, Any]":
        """``Client.hijack(method, path, body=body)``'s connection as (read(size), close())."""
        if self.client is None:
            from cove.cli.wire import presend

            sock = presend(method, path, body, upgrade=True)
            if sock is not None:
                return _upgraded(sock, method, path)
            self.client = _client()
            self.client._reached = self.reached
        conn = self.client.hijack(method, path, body=body)
        return conn.read, conn.close


_MISSING = object()


def _dropped(method: str, path: str, exc: Exception) -> Exception:
    """The client's DaemonUnreachable for a connection that failed while its answer was read."""
    from cove.cli.client import Endpoint, dropped

    return dropped(Endpoint.parse(_env("COVE_HOST") or "unix:///run/cove/cove.sock").url, f"{method} {path}", exc)


def _upgraded(sock: "_socket.socket", method: str, path: str) -> "tuple[Any, Any]":
    """What ``Client.hijack`` does once the request is written: the stream's (read, close) on
    101 or 200, else the answer's APIError; a connection that fails meanwhile, DaemonUnreachable."""
    from cove.cli.wire import reply

    try:
        status, reason, body, reader = reply(sock, method)
    except (OSError, ValueError) as exc:
        sock.close()
        raise _dropped(method, path, exc) from exc

    def close() -> None:
        reader.close()
        sock.close()

    if status in (101, 200):
        def read(size: int = 65536) -> bytes:          # Hijacked.read
            try:
                data: bytes = reader.read1(size)  # type: ignore[attr-defined]
                return data
            except (OSError, ValueError):
                return b""

        return read, close
    try:
        raw = body.read()
    except (OSError, ValueError) as exc:
        close()
        raise _dropped(method, path, exc) from exc
    close()
    from cove.cli.client import APIError, error_message

    raise APIError(status, error_message(raw, status, reason))


def _answer(sock: "_socket.socket", method: str, path: str, missing: "Any" = None) -> "Any":
    """``Client.call``'s result for the request written on ``sock``: its Pending.response
    (a failed head: DaemonUnreachable; a 4xx/5xx: APIError, or ``missing`` for a 404 when
    that is given), then the JSON body."""
    from cove.cli.wire import reply

    try:
        status, reason, body, reader = reply(sock, method)
    except (OSError, ValueError) as exc:
        sock.close()
        raise _dropped(method, path, exc) from exc
    try:
        if status >= 400:
            try:
                raw = body.read()        # all of it, as the client reads it: the daemon's write completes
            except (OSError, ValueError):
                raw = b""
            if status == 404 and missing is not None:
                return missing
            from cove.cli.client import APIError, error_message

            raise APIError(status, error_message(raw, status, reason))
        try:
            raw = body.read()
        except (OSError, ValueError) as exc:     # Response.read's DaemonUnreachable
            raise _dropped(method, path, exc) from exc
    finally:
        reader.close()
        sock.close()
    from cove.cli.wire import decode_body

    return decode_body(raw)


def _delete_each(names: "list[str]", path: str, query: str, skip_404: bool = False) -> int:
    """``DELETE path.format(segment(name)) + query`` for each name."""
    from cove.cli.wire import segment

    api = _Api()
    return _each(names, lambda name: api.call("DELETE", path.format(segment(name)) + query), skip_404=skip_404)


def _each(names: "list[str]", action: "Any", skip_404: bool = False) -> int:
    failed = False
    for name in names:
        try:
            action(name)
        except Exception as exc:
            from cove.cli.client import APIError

            if not isinstance(exc, APIError):
                raise
            if skip_404 and exc.status == 404:
                continue
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed = True
            continue
        _say(name)
        sys.stdout.flush()
    return 1 if failed else 0


def _ps(flags: "list[str]") -> "int | None":
    seen = "".join(PS_FLAGS.get(f, "?") for f in flags)
    if "?" in seen or len(set(seen)) != len(seen):
        return None
    import time

    api = _Api()
    containers = api.get("/containers/json?all=1" if "a" in seen else "/containers/json") or []
    trunc = "n" not in seen
    if "q" in seen:
        for c in containers:
            _say(c.get("Id", "") if not trunc else c.get("Id", "")[:12])
        return 0
    from cove.cli.format import ps_table

    def status_of(ident: str) -> str:
        from cove.cli.format import container_status
        from cove.cli.wire import segment

        try:
            found = api.call("GET", f"/containers/{segment(ident)}/json", missing=_MISSING)
        except Exception as exc:
            from cove.errors import CoveError

            if not isinstance(exc, CoveError):
                raise
            return ""
        if found is _MISSING:           # gone since the list was made: a 404, no client import
            return ""
        state = (found or {}).get("State") or {}
        return container_status(state, time.time()) if isinstance(state, dict) else str(state)

    _say(ps_table(containers, time.time(), trunc=trunc, status_of=status_of))
    return 0


def _inspect(names: "list[str]") -> int:
    from cove.cli.wire import segment

    api = _Api()
    found: "list[Any]" = []
    failed = False
    for name in names:
        for path in ("/containers/{}/json", "/networks/{}", "/images/{}/json"):
            try:
                value = api.call("GET", path.format(segment(name)), missing=_MISSING)
                if value is _MISSING:
                    continue
                found.append(value)
                break
            except Exception as exc:
                from cove.cli.client import APIError

                if not isinstance(exc, APIError):
                    raise
                if exc.status != 404:
                    sys.stderr.write(f"Error response from daemon: {exc.message}\n")
                    failed = True
                    break
        else:
            sys.stderr.write(f"Error: No such object: {name}\n")
            failed = True
    _say(pretty_json(found))     # cove.cli.format.dump_json
    return 1 if failed else 0


class _Unusual(Exception):
    """A value :func:`pretty_json` leaves to ``json``."""


def pretty_json(value: "Any") -> str:
    """``json.dumps(value, indent=4, ensure_ascii=False)`` without importing ``json`` (and its
    ``re``, ``enum``: ~8 ms of a CLI run) for what API replies hold: dicts with str keys,
    lists, str, int, float, bool, None.  Anything else goes to ``json`` itself.  A string
    ``json`` would write as it is (printable, no ``"`` or ``\\``) is written here; others by
    ``_json``'s ``encode_basestring``, loaded then only (~0.2 ms: an ``inspect`` answer is
    decoded without it too, :data:`cove.cli.wire.SMALL_JSON`)."""

    def quoted(text: str) -> str:
        if text.isprintable() and '"' not in text and "\\" not in text:
            return '"' + text + '"'
        from _json import encode_basestring

        return encode_basestring(text)

    out: "list[str]" = []

    def emit(v: "Any", pad: str) -> None:
        if isinstance(v, str):
            out.append(quoted(v))
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
                out.append(("\n" if i == 0 else ",\n") + inner + quoted(key) + ": ")
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


def run_d_body(args: "list[str]") -> "tuple[str | None, dict[str, Any]] | None":
    """``run -d`` argv (after ``run``) -> (name, create body); None: not a fast-path shape.

    The body is the one :func:`cove.cli.run.create_body` makes for these flags (a unit
    test compares them); anything else, ``-p`` included, is left to click.
    """
    name: "str | None" = None
    ip: "str | None" = None
    networks: "list[str]" = []
    env: "list[str]" = []
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


def _run_d(name: "str | None", body: "dict[str, Any]") -> int:
    from cove.cli.wire import segment, target

    try:
        api = _Api()
        reply = api.call("POST", target("/containers/create", {"name": name}), body) or {}
        for warning in reply.get("Warnings") or []:
            sys.stderr.write(f"WARNING: {warning}\n")
        cid = str(reply.get("Id", ""))
        api.call("POST", f"/containers/{segment(cid)}/start")
    except Exception as exc:
        from cove.errors import CoveError

        if not isinstance(exc, CoveError):
            raise
        _full_path()
        from cove.cli.main import report_error

        return report_error(exc, RUN_ERROR) or RUN_ERROR
    _say(cid)
    return 0


def _exec(container: str, command: "list[str]") -> int:
    """``exec C CMD...`` without -i/-t/-d/-e/-w/-u: cove.cli.attach.exec_'s requests and output."""
    import time

    from cove.cli.wire import segment

    body = {"User": "", "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "Cmd": command, "Env": [], "WorkingDir": ""}
    api = _Api()
    exec_id = str((api.call("POST", f"/containers/{segment(container)}/exec", body) or {}).get("Id", ""))
    from cove.cli.streams import copy_output

    path = f"/exec/{segment(exec_id)}"
    read, close = api.hijack("POST", f"{path}/start", {"Detach": False, "Tty": False})
    try:
        # run_session(tty=False, interactive=False) is this copy; its streams come from click
        copy_output(read, tty=False, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    finally:
        close()
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


def fast(argv: "list[str]") -> "int | None":
    """Run ``argv`` if it has a fast-path shape; None: not handled (nothing was sent)."""
    if argv in (["--version"], ["-v"]):
        from cove import __version__

        _say(f"cove version {__version__}")
        return 0
    if argv[:2] == ["network", "create"] and len(argv) == 3 and _names(argv[2:]):
        body = {"Name": argv[2], "Driver": "bridge", "Internal": False, "Attachable": False,
                "EnableIPv6": False, "Options": {}, "Labels": {}, "CheckDuplicate": True,
                "IPAM": {"Driver": "default", "Config": [], "Options": {}}}
        reply = _Api().call("POST", "/networks/create", body) or {}
        if reply.get("Warning"):
            sys.stderr.write(f"WARNING: {reply['Warning']}\n")
        _say(reply.get("Id", ""))
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


def main(argv: "list[str] | None" = None) -> int:
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
