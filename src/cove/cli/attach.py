"""Attaching to a container's or exec's streams: ``run``'s attached phase,
``start -a`` and ``cove exec``.

The order follows docker: attach (a hijacked connection), register the wait for the
container's exit *before* starting it (so an ``--rm`` container removed at exit still
reports its status), start, stream until EOF, then exit with the status.  While
attached to a tty the terminal size is sent to the daemon (and again on SIGWINCH);
without a tty, SIGINT/SIGTERM are passed on to the container (docker's sig-proxy).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Iterator

import click

from cove.cli.main import client
from cove.cli.run import RUN_ERROR, env_list

if TYPE_CHECKING:
    from cove.cli.client import Client

_WAIT_REGISTER_GRACE = 0.25


class ExitWaiter:
    """``POST /containers/{id}/wait?condition=...`` sent before the container starts.

    The request is sent from the calling thread, so it reached the daemon before the
    start request does; a thread then waits for the answer, which comes when the
    container exits.  An answer complete before we asked to start the container (a
    body, or a Content-Length known with the headers) is *premature*: the daemon
    answered for the not-yet-started container.
    """

    def __init__(self, api: Client, cid: str, condition: str) -> None:
        from cove.cli.client import segment

        self._api = api
        self._path = f"/containers/{segment(cid)}/wait"
        self._answered = threading.Event()
        self._registered = threading.Event()
        self._answered_early = False
        self._reply: Any = None
        self._error: BaseException | None = None
        self.premature = False
        pending = api.send("POST", self._path, query={"condition": condition})
        threading.Thread(target=self._receive, args=(pending,), name="cove-wait",
                         daemon=True).start()

    def _receive(self, pending: Any) -> None:
        try:
            with pending.response() as resp:
                self._answered_early = resp.headers.get("Content-Length") is not None
                self._registered.set()
                self._reply = resp.json()
        except BaseException as exc:  # noqa: BLE001 - reported by status()
            self._error = exc
        finally:
            self._registered.set()
            self._answered.set()

    def settle(self) -> ExitWaiter:
        """Give the daemon a moment to register the wait; note a premature answer."""
        registered = self._registered.wait(_WAIT_REGISTER_GRACE)
        self.premature = self._answered.is_set() or (registered and self._answered_early)
        return self

    def status(self) -> int:
        """The container's exit status; asked again now if the first answer was premature."""
        if self.premature:
            reply = self._api.post(self._path)
        else:
            self._answered.wait()
            if self._error is not None:
                raise self._error
            reply = self._reply
        reply = reply or {}
        error = (reply.get("Error") or {}).get("Message")
        if error:
            click.echo(f"Error waiting for container: {error}", err=True)
            return RUN_ERROR
        return int(reply.get("StatusCode", 0))


def register_wait(api: Client, cid: str, *, auto_remove: bool) -> ExitWaiter:
    """Register the wait for the container's exit, as docker does before starting it.

    ``--rm`` containers wait for ``removed``; a daemon that answers that at once for
    a created container gets ``next-exit`` instead (the removed container's status is
    still reported by daemons that remember it).
    """
    conditions = ["removed", "next-exit"] if auto_remove else ["next-exit"]
    for condition in conditions:
        waiter = ExitWaiter(api, cid, condition).settle()
        if not waiter.premature:
            break
    return waiter


def attach_and_start(api: Client, cid: str, *, tty: bool, interactive: bool,
                     auto_remove: bool) -> int:
    """Attach to ``cid``, start it, stream until EOF; return its exit status."""
    from cove.cli.streams import run_session
    from cove.cli.client import segment

    path = f"/containers/{segment(cid)}"
    query = {"stream": True, "stdin": interactive or None, "stdout": True, "stderr": True}
    with api.hijack("POST", f"{path}/attach", query=query) as conn:
        waiter = register_wait(api, cid, auto_remove=auto_remove)
        api.post(f"{path}/start")
        with forwarded_signals(api, path, tty=tty), resized(api, path, tty=tty):
            detached = run_session(conn, tty=tty, interactive=interactive)
    if detached:
        return 0
    return waiter.status()


def exec_options(func: Any) -> Any:
    """The flags of ``exec``, named as docker names them."""
    options = [
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("-d", "--detach", is_flag=True, help="Run the command in the background."),
        click.option("-e", "--env", multiple=True, help="Set an environment variable."),
        click.option("-w", "--workdir", default="", help="Working directory for the command."),
        click.option("-u", "--user", default="", help="User name or UID[:GID]."),
        click.argument("container"),
        click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("exec", context_settings={"allow_interspersed_args": False})
@exec_options
@click.pass_context
def exec_(ctx: click.Context, interactive: bool, tty: bool, detach: bool, env: tuple[str, ...],
          workdir: str, user: str, container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container and exit with its status."""
    from cove.cli.streams import run_session
    from cove.cli.client import segment

    api = client(ctx)
    body = {"User": user, "AttachStdin": interactive and not detach,
            "AttachStdout": not detach, "AttachStderr": not detach, "Tty": tty,
            "Cmd": list(command), "Env": env_list(env), "WorkingDir": workdir}
    exec_id = str((api.post(f"/containers/{segment(container)}/exec", body) or {}).get("Id", ""))
    path = f"/exec/{segment(exec_id)}"
    if detach:
        api.post(f"{path}/start", {"Detach": True, "Tty": tty})
        return
    with api.hijack("POST", f"{path}/start", body={"Detach": False, "Tty": tty}) as conn:
        with resized(api, path, tty=tty):
            if run_session(conn, tty=tty, interactive=interactive):
                return
    ctx.exit(exec_exit_code(api, path))


def exec_exit_code(api: Client, path: str, timeout: float = 5.0) -> int:
    """ExitCode of a finished exec (polling briefly while the daemon records it)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        info = api.get(f"{path}/json") or {}
        code = info.get("ExitCode")
        if code is not None and not info.get("Running"):
            return int(code)
        if time.monotonic() >= deadline:
            if code is None:
                click.echo(f"cove: the daemon reported no exit code for {path}", err=True)
                return 1
            return int(code)
        time.sleep(0.05)


@contextmanager
def forwarded_signals(api: Client, path: str, *, tty: bool) -> Iterator[None]:
    """While attached to a non-tty container, pass SIGINT/SIGTERM on to it."""
    import signal

    saved: dict[int, Any] = {}
    if not tty and threading.current_thread() is threading.main_thread():
        def forward(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            quietly(lambda: api.post(f"{path}/kill", query={"signal": name}))

        for signum in (signal.SIGINT, signal.SIGTERM):
            saved[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


@contextmanager
def resized(api: Client, path: str, *, tty: bool) -> Iterator[None]:
    """With a tty, tell the daemon our terminal size now and on every SIGWINCH."""
    import signal

    from cove.cli.streams import terminal_size

    def send(*_: Any) -> None:
        size = terminal_size()
        if size is not None:
            query = {"h": size[0], "w": size[1]}
            quietly(lambda: api.post(f"{path}/resize", query=query))

    saved: Any = None
    if tty:
        send()
        if threading.current_thread() is threading.main_thread():
            saved = signal.signal(signal.SIGWINCH, send)
    try:
        yield
    finally:
        if saved is not None:
            signal.signal(signal.SIGWINCH, saved)


def quietly(action: Callable[[], Any]) -> None:
    """Run a best-effort API call, ignoring cove errors."""
    from cove.errors import CoveError

    try:
        action()
    except CoveError:
        pass
