"""A tiny Docker Engine API client for cove's CLI, over a unix socket.

Only the standard library is used, so the CLI installs nothing extra; and of it only the
C modules ``_socket`` and ``_json`` (``import socket, json`` costs ~13 ms of CPU at each CLI
start here: ``enum``, ``re``, ``selectors``; ``python -X importtime``): a socket's
buffered reader is an :class:`io.BufferedReader` over :class:`cove.cli.wire._SocketIO`, and JSON
is encoded and decoded by :func:`dumps` and :func:`loads` (in :mod:`cove.cli.wire`, with the
response reader, so that the CLI's fast path reads answers without loading this module), which drive the same C encoder and
scanner as ``json.dumps``/``json.loads`` with their default settings (byte-identical;
``json`` itself is imported only to raise its error for a malformed body, or for the
rare input the C scanner is not given: a BOM, UTF-16/32).  ``socket`` is imported for
``tcp://`` hosts only. the HTTP/1.1 it needs (a request, a response head, a body by Content-Length,
chunks or EOF) is written here rather than taken from ``http.client``, whose imports
(``email``, ``ssl``) cost more start-up time than all of click.  The client speaks un-versioned API paths
(``/containers/json``), turns ``{"message": ...}`` error bodies into
:class:`APIError`, and can *hijack* a connection (``Connection: Upgrade``), which is
how ``attach`` and ``exec`` carry a raw two-way stream.

When nothing answers on a local unix socket, an ``autostart`` hook given by the
caller may start a daemon; the client then retries connecting for a while.  That is
how ``cove`` brings its daemon up on demand -- only when :func:`autostart_allowed`
says so (a person at a terminal, or ``COVE_AUTOSTART=1``; never with
``COVE_NO_AUTOSTART=1``): a script, a test or a CI job run on a machine where no daemon
answers must not create bridges, firewall tables and ``ip_forward=1`` in that machine's
own network namespace behind its author's back.  Otherwise the "no daemon" error says
how to start one.  The CLI imports this module lazily.
"""

from __future__ import annotations

import _socket
import sys
import time
from cove import __version__
from cove.cli.wire import Body, Headers, buffered_reader, hijack_head, read_head
from cove.cli.wire import HTTPError as HTTPError
from cove.cli.wire import _quote as _quote
from cove.cli.wire import decode_body as decode_body
from cove.cli.wire import dumps as dumps
from cove.cli.wire import env as env
from cove.cli.wire import loads as loads
from cove.cli.wire import segment as segment
from cove.cli.wire import target as target
from cove.errors import CoveError, Unavailable, field_error

DEFAULT_HOST = "unix:///run/cove/cove.sock"
API_VERSION = "1.43"
USER_AGENT = f"cove-cli/{__version__}"
AUTOSTART_TIMEOUT = 10.0
_RETRY_INTERVAL = 0.05

TYPE_CHECKING = False     # typing, contextlib, urllib.parse, collections stay unimported: see Endpoint, segment
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import IO, Any

    Query = Mapping[str, Any]


class APIError(CoveError):
    """The daemon answered with a 4xx/5xx status; ``message`` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonUnreachable(Unavailable):
    """No daemon answered on the socket (after starting one, if that was allowed), or its
    connection broke before the whole answer came (:func:`dropped`)."""


def dropped(url: str, what: str, exc: BaseException) -> DaemonUnreachable:
    """The error of a connection that failed while ``what`` (``GET /path``) was sent or its
    answer read: one line that names the daemon, the request and the cause, the way docker
    says ``error during connect: Get "http://...": EOF`` (``read: connection reset by peer``).
    The OSError's errno (``[Errno 104]``) is left out, as docker leaves it out."""
    reason = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, HTTPError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
    return DaemonUnreachable(
        f"error during connect: the cove daemon at {url} dropped the connection during {what}: {reason}")


class Endpoint:
    """Where the daemon listens: ``unix`` + socket path, or ``tcp`` + ``host:port``.

    A plain class, not a NamedTuple or a dataclass: ``typing`` and ``dataclasses``
    (with ``inspect``, ``ast``) are most of a CLI run's imports (``python -X importtime``).
    """

    __slots__ = ("scheme", "address")

    def __init__(self, scheme: str, address: str) -> None:
        self.scheme = scheme
        self.address = address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and (self.scheme, self.address) == (other.scheme, other.address)

    def __hash__(self) -> int:
        return hash((self.scheme, self.address))

    def __repr__(self) -> str:
        return f"Endpoint(scheme={self.scheme!r}, address={self.address!r})"

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Parse ``unix:///path``, a bare ``/path`` or ``tcp://host:port``."""
        if url.startswith("unix://"):
            path = url[len("unix://"):]
            if not path:
                raise field_error("host", url, "no socket path after unix://")
            return cls("unix", path)
        if url.startswith("/"):
            return cls("unix", url)
        if url.startswith("tcp://"):
            rest = url[len("tcp://"):].rstrip("/")
            _host, sep, port = rest.rpartition(":")
            if not sep or not port.isdigit():
                raise field_error("host", url, "expected tcp://HOST:PORT")
            return cls("tcp", rest)
        raise field_error("host", url, "expected unix:///path/to/socket or tcp://HOST:PORT")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    def connect(self) -> _socket.socket:
        """Open a connected stream socket (raises the OSError of a failed connect)."""
        if self.scheme == "unix":
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
            return sock
        import socket

        host, _, port = self.address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)))


class Spawned:
    """A daemon process started by an autostart hook (a plain class: see :class:`Endpoint`)."""

    __slots__ = ("pid", "log_path", "poll")

    def __init__(self, pid: int, log_path: str, poll: Callable[[], int | None] = lambda: None) -> None:
        self.pid = pid
        self.log_path = log_path
        self.poll = poll

    def __repr__(self) -> str:
        return f"Spawned(pid={self.pid!r}, log_path={self.log_path!r})"


if TYPE_CHECKING:
    AutostartHook = Callable[[Endpoint], Spawned | None]

START_HINT = "start one with `cove daemon &`, or set COVE_AUTOSTART=1 to let the CLI start it"
START_HINT_REFUSED = "start one with `cove daemon &` (COVE_NO_AUTOSTART=1 keeps the CLI from starting one)"


def interactive() -> bool:
    """Whether a person is at a terminal: the process's stdin and stderr are both ttys.

    stderr too: the CLI says on stderr that it started a daemon, and ``2>/dev/null`` or a
    log file is how scripts run it.
    """
    for stream in (sys.stdin, sys.stderr):
        try:
            if stream is None or not stream.isatty():
                return False
        except (ValueError, OSError):            # closed, or not a file at all
            return False
    return True


def autostart_allowed(environ: Mapping[str, str] | None = None, tty: bool | None = None) -> bool:
    """Whether the CLI may start a daemon when none answers on its unix socket.

    ============================  ==========  =========
    environment                   tty         autostart
    ============================  ==========  =========
    ``COVE_NO_AUTOSTART=1``       any         no (wins over ``COVE_AUTOSTART=1``)
    ``COVE_AUTOSTART=1``          any         yes
    ``COVE_AUTOSTART=0``          any         no
    neither                       yes         yes
    neither                       no          no
    ============================  ==========  =========

    ``tty`` is :func:`interactive` unless given; ``environ`` is the process's (:func:`env`)
    unless given.
    """
    get = env if environ is None else environ.get
    if get("COVE_NO_AUTOSTART") == "1":
        return False
    wanted = get("COVE_AUTOSTART")
    if wanted in ("0", "1"):
        return wanted == "1"
    return interactive() if tty is None else tty



class Response:
    """An HTTP response whose body has not been read yet (close it when done)."""

    def __init__(self, sock: _socket.socket, reader: IO[bytes], status: int, reason: str,
                 headers: Headers, body: Body, pending: Pending | None = None) -> None:
        self._sock = sock
        self._reader = reader
        self._body = body
        self._pending = pending
        self.status = status
        self.reason = reason
        self.headers = headers

    def read(self) -> bytes:
        """The whole body; a connection that breaks before its end raises :class:`DaemonUnreachable`."""
        if self._pending is None:
            return self._body.read()
        with self._pending.failures():
            return self._body.read()

    def read1(self, size: int = 65536) -> bytes:
        """Return the next available bytes of the body (b"" at its end); a connection that
        breaks before the end raises :class:`DaemonUnreachable` (a ``logs`` or ``events``
        stream cut short is an error, as docker's "unexpected EOF", not a quiet exit 0)."""
        if self._pending is None:
            return self._body.read1(size)
        with self._pending.failures():
            return self._body.read1(size)

    def json(self) -> Any:
        return decode_body(self.read())

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hijacked:
    """A connection the daemon upgraded to a raw two-way stream (attach, exec)."""

    def __init__(self, sock: _socket.socket, reader: IO[bytes]) -> None:
        self._sock = sock
        self._reader = reader

    def read(self, size: int = 65536) -> bytes:
        """Return the next bytes from the daemon; b"" once the stream ended."""
        try:
            data: bytes = self._reader.read1(size)  # type: ignore[attr-defined]
            return data
        except (OSError, ValueError):
            return b""

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_write(self) -> None:
        """Tell the daemon our input ended (half-close), as docker does on stdin EOF."""
        try:
            self._sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def abort(self) -> None:
        """Stop both directions now; a blocked :meth:`read` then returns b""."""
        try:
            self._sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pending:
    """A request that was sent and whose response has not been read yet."""

    def __init__(self, client: Client, sock: _socket.socket, method: str, path: str) -> None:
        self._client = client
        self._sock = sock
        self._reader = buffered_reader(sock)
        self._method = method
        self._what = f"{method} {path}"

    def _close(self) -> None:
        self._reader.close()
        self._sock.close()

    def failures(self) -> _Failures:
        """Turn a broken connection into :class:`DaemonUnreachable` (and close it)."""
        return _Failures(self)

    def response(self) -> Response:
        """Wait for the status and headers; a 4xx/5xx status raises :class:`APIError`."""
        with self.failures():
            status, reason, headers = read_head(self._reader)
            body = Body(self._reader, headers, self._method, status)
        if status >= 400:
            try:
                raw = body.read()
            except (OSError, ValueError):
                raw = b""
            self._close()
            raise APIError(status, error_message(raw, status, reason))
        return Response(self._sock, self._reader, status, reason, headers, body, self)


class _Failures:
    """The context manager of :meth:`Pending.failures` (a class: ``contextlib`` stays unimported)."""

    def __init__(self, pending: Pending) -> None:
        self._pending = pending

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        if isinstance(exc, DaemonUnreachable):
            self._pending._close()
            return
        if isinstance(exc, (OSError, ValueError)):
            self._pending._close()
            raise dropped(self._pending._client.endpoint.url, self._pending._what, exc) from exc


def _send(sock: _socket.socket, method: str, path: str, headers: dict[str, str], data: Any) -> None:
    """Write one request; a file body is streamed (chunked unless a Content-Length is given)."""
    lower = {k.lower() for k in headers}
    chunked = False
    if data is None:
        if method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
    elif isinstance(data, (bytes, bytearray)):
        headers["Content-Length"] = str(len(data))
    elif "content-length" not in lower:
        headers["Transfer-Encoding"] = "chunked"
        chunked = True
    head = f"{method} {path} HTTP/1.1\r\nHost: cove\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if data is None or isinstance(data, (bytes, bytearray)):
        sock.sendall(head.encode("latin-1") + b"\r\n" + (bytes(data) if data else b""))
        return
    sock.sendall(head.encode("latin-1") + b"\r\n")
    while True:
        block = data.read(1 << 16)
        if not block:
            break
        sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


class Client:
    """Docker Engine API client for one daemon endpoint.

    ``autostart`` is called at most once, when the first connection finds no
    listener on a unix socket; if it returns a :class:`Spawned`, connecting is retried
    for ``autostart_timeout`` seconds (or until that process exits).  ``hint`` replaces
    "Is the cove daemon running?" in the error when nothing listens on a unix socket.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        *,
        autostart: AutostartHook | None = None,
        autostart_timeout: float | None = None,
        hint: str = "",
    ) -> None:
        self.endpoint = Endpoint.parse(host)
        self._hint = hint
        self._autostart = autostart
        self._autostart_timeout = autostart_timeout
        self._spawned: Spawned | None = None
        self._reached = False

    # -- connecting ---------------------------------------------------------------

    def connect(self) -> _socket.socket:
        """Connect to the daemon, starting one first if allowed and needed."""
        try:
            return self._connect_once()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            error: OSError = exc
        if self._reached or self._autostart is None or self.endpoint.scheme != "unix":
            raise self._unreachable(error)
        if self._spawned is None:
            self._spawned = self._autostart(self.endpoint)
            if self._spawned is None:
                raise self._unreachable(error)
        timeout = AUTOSTART_TIMEOUT if self._autostart_timeout is None else self._autostart_timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._connect_once()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                error = exc
            status = self._spawned.poll()
            if status is not None:
                raise DaemonUnreachable(
                    f"the cove daemon started for {self.endpoint.url} exited with status {status}"
                    f" (log: {self._spawned.log_path}){_last_line(self._spawned.log_path)}"
                )
            if time.monotonic() >= deadline:
                raise DaemonUnreachable(
                    f"the cove daemon started for {self.endpoint.url} did not answer within"
                    f" {timeout:g} s (log: {self._spawned.log_path})"
                )
            time.sleep(_RETRY_INTERVAL)

    def _connect_once(self) -> _socket.socket:
        try:
            sock = self.endpoint.connect()
        except PermissionError as exc:
            raise DaemonUnreachable(
                f"permission denied while trying to connect to the cove daemon socket at"
                f" {self.endpoint.url}: {exc.strerror}"
            ) from exc
        except (FileNotFoundError, ConnectionRefusedError):
            raise
        except OSError as exc:
            raise self._unreachable(exc) from exc
        self._reached = True
        return sock

    def _unreachable(self, exc: OSError) -> DaemonUnreachable:
        reason = exc.strerror or str(exc)
        if self._hint and self.endpoint.scheme == "unix":
            return DaemonUnreachable(
                f"Cannot connect to the cove daemon at {self.endpoint.url} ({reason}); {self._hint}."
            )
        return DaemonUnreachable(
            f"Cannot connect to the cove daemon at {self.endpoint.url} ({reason})."
            " Is the cove daemon running?"
        )

    # -- plain requests -------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send a request and return the response with its body unread.

        ``body`` may be JSON-able data, ``bytes``, or a binary file object (streamed;
        chunked unless ``headers`` give a Content-Length).  A 4xx/5xx status raises
        :class:`APIError` with the daemon's message.
        """
        return self.send(method, path, query=query, body=body, headers=headers).response()

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Pending:
        """Send a request now; read its response later with :meth:`Pending.response`.

        Used when the request must have reached the daemon before the next one is
        sent (``run`` registers its wait for the exit before it starts the container).
        """
        all_headers = {"User-Agent": USER_AGENT}
        data: Any = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)) or hasattr(body, "read"):
                data = body
            else:
                data = dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        all_headers["Connection"] = "close"
        pending = Pending(self, self.connect(), method, path)
        with pending.failures():
            _send(pending._sock, method, target(path, query), all_headers, data)
        return pending

    def adopt(self, sock: _socket.socket, method: str, path: str) -> Pending:
        """A request already written on ``sock`` (connected to this daemon) by someone else:
        :func:`cove.cli.fast._presend`, which sends before this module is imported."""
        self._reached = True
        return Pending(self, sock, method, path)

    def call(self, method: str, path: str, *, query: Query | None = None, body: Any = None) -> Any:
        """Send a request and return its decoded JSON body (None when empty)."""
        with self.request(method, path, query=query, body=body) as resp:
            return resp.json()

    def get(self, path: str, query: Query | None = None) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None, query: Query | None = None) -> Any:
        return self.call("POST", path, query=query, body=body)

    def delete(self, path: str, query: Query | None = None) -> Any:
        return self.call("DELETE", path, query=query)

    # -- hijacked streams -------------------------------------------------------------

    def hijack(
        self, method: str, path: str, *, query: Query | None = None, body: Any = None
    ) -> Hijacked:
        """Send a request asking to upgrade the connection to a raw stream.

        The daemon answers ``101 UPGRADED`` (or ``200 OK``, as old daemons do) and then
        the connection carries the container's streams both ways.
        """
        request = hijack_head(method, target(path, query), b"" if body is None else dumps(body).encode())
        sock = self.connect()
        reader = buffered_reader(sock)
        try:
            sock.sendall(request)
            status, reason, headers = read_head(reader)
            if status in (101, 200):
                return Hijacked(sock, reader)     # the stream is ours now
            raw = Body(reader, headers, method, status).read()
            raise APIError(status, error_message(raw, status, reason))
        except (OSError, ValueError) as exc:
            reader.close()
            sock.close()
            raise dropped(self.endpoint.url, f"{method} {path}", exc) from exc
        except BaseException:
            reader.close()
            sock.close()
            raise


def cli_client(host: str, hook: AutostartHook) -> Client:
    """The CLI's client for ``host``: it may call ``hook`` if :func:`autostart_allowed`, else
    its "no daemon" error says how to start one (both ``cove`` entry points use this)."""
    if autostart_allowed():
        return Client(host, autostart=hook)
    refused = env("COVE_NO_AUTOSTART") == "1"
    return Client(host, hint=START_HINT_REFUSED if refused else START_HINT)


def error_message(raw: bytes, status: int, reason: str = "") -> str:
    """The one-line explanation in an error body (``{"message": ...}`` or text)."""
    body = decode_body(raw)
    if isinstance(body, dict) and isinstance(message := body.get("message"), str):
        return message
    if isinstance(body, str) and body.strip():
        return body.strip().splitlines()[0]
    return f"{status} {reason}".strip()


def _last_line(path: str) -> str:
    """``": <last line of the log>"``, or nothing when unreadable or empty."""
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - 4096))
            lines = log.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""
