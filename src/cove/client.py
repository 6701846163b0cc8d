"""A tiny Docker Engine API client for cove's CLI, over a unix socket.

Only the standard library is used (``http.client``, ``socket``, ``json``), so the CLI
installs nothing extra.  The client speaks un-versioned API paths
(``/containers/json``), turns ``{"message": ...}`` error bodies into
:class:`APIError`, and can *hijack* a connection (``Connection: Upgrade``), which is
how ``attach`` and ``exec`` carry a raw two-way stream.

When nothing answers on a local unix socket, an ``autostart`` hook given by the
caller may start a daemon; the client then retries connecting for a while.  That is
how ``cove`` brings its daemon up on demand.  The CLI imports this module lazily:
``http.client`` alone costs more start-up time than all of click.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import quote, urlencode

from cove import __version__
from cove.errors import CoveError, Unavailable, field_error

DEFAULT_HOST = "unix:///run/cove/cove.sock"
API_VERSION = "1.43"
USER_AGENT = f"cove-cli/{__version__}"
AUTOSTART_TIMEOUT = 10.0
_RETRY_INTERVAL = 0.05
_MAX_HEADER_BYTES = 1 << 20

Query = Mapping[str, Any]


class APIError(CoveError):
    """The daemon answered with a 4xx/5xx status; ``message`` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonUnreachable(Unavailable):
    """No daemon answered on the socket (after starting one, if that was allowed)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon listens: ``unix`` + socket path, or ``tcp`` + ``host:port``."""

    scheme: str
    address: str

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

    def connect(self) -> socket.socket:
        """Open a connected stream socket (raises the OSError of a failed connect)."""
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
            return sock
        host, _, port = self.address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)))


@dataclass
class Spawned:
    """A daemon process started by an autostart hook."""

    pid: int
    log_path: str
    poll: Callable[[], int | None] = field(default=lambda: None)


AutostartHook = Callable[[Endpoint], "Spawned | None"]


class Response:
    """An HTTP response whose body has not been read yet (close it when done)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self) -> bytes:
        return self._resp.read()

    def read1(self, size: int = 65536) -> bytes:
        """Return the next available bytes of the body (b"" at its end)."""
        try:
            return self._resp.read1(size)
        except (ConnectionError, http.client.IncompleteRead):
            return b""

    def json(self) -> Any:
        return decode_body(self.read())

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hijacked:
    """A connection the daemon upgraded to a raw two-way stream (attach, exec)."""

    def __init__(self, sock: socket.socket, reader: IO[bytes]) -> None:
        self._sock = sock
        self._reader = reader

    def read(self, size: int = 65536) -> bytes:
        """Return the next bytes from the daemon; b"" once the stream ended."""
        try:
            return self._reader.read1(size)  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return b""

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_write(self) -> None:
        """Tell the daemon our input ended (half-close), as docker does on stdin EOF."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def abort(self) -> None:
        """Stop both directions now; a blocked :meth:`read` then returns b""."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Connection(http.client.HTTPConnection):
    """An HTTPConnection whose socket comes from :meth:`Client.connect`."""

    def __init__(self, client: Client) -> None:
        super().__init__("cove", blocksize=65536)
        self._client = client

    def connect(self) -> None:
        self.sock = self._client.connect()


class _ReaderShim:
    """Lets ``http.client.HTTPResponse`` parse headers from a reader we keep using."""

    def __init__(self, reader: IO[bytes]) -> None:
        self._reader = reader

    def makefile(self, *args: object, **kwargs: object) -> IO[bytes]:
        return self._reader


class Pending:
    """A request that was sent and whose response has not been read yet."""

    def __init__(self, client: Client, conn: http.client.HTTPConnection, method: str,
                 path: str) -> None:
        self._client = client
        self._conn = conn
        self._what = f"{method} {path}"

    @contextmanager
    def failures(self) -> Iterator[None]:
        """Turn a broken connection into :class:`DaemonUnreachable` (and close it)."""
        try:
            yield
        except DaemonUnreachable:
            self._conn.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise DaemonUnreachable(
                f"the cove daemon at {self._client.endpoint.url} dropped the connection"
                f" during {self._what}: {exc}"
            ) from exc

    def response(self) -> Response:
        """Wait for the status and headers; a 4xx/5xx status raises :class:`APIError`."""
        with self.failures():
            resp = self._conn.getresponse()
        if resp.status >= 400:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            self._conn.close()
            raise APIError(resp.status, error_message(raw, resp.status, resp.reason))
        return Response(self._conn, resp)


class Client:
    """Docker Engine API client for one daemon endpoint.

    ``autostart`` is called at most once, when the first connection finds no
    listener on a unix socket; if it returns a :class:`Spawned`, connecting is retried
    for ``autostart_timeout`` seconds (or until that process exits).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        *,
        autostart: AutostartHook | None = None,
        autostart_timeout: float | None = None,
    ) -> None:
        self.endpoint = Endpoint.parse(host)
        self._autostart = autostart
        self._autostart_timeout = autostart_timeout
        self._spawned: Spawned | None = None
        self._reached = False

    # -- connecting ---------------------------------------------------------------

    def connect(self) -> socket.socket:
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

    def _connect_once(self) -> socket.socket:
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
                data = json.dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn = _Connection(self)
        pending = Pending(self, conn, method, path)
        with pending.failures():
            conn.request(method, target(path, query), body=data, headers=all_headers)
        return pending

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
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {target(path, query)} HTTP/1.1\r\n"
            f"Host: cove\r\nUser-Agent: {USER_AGENT}\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        sock = self.connect()
        reader = sock.makefile("rb")
        try:
            sock.sendall(head.encode("latin-1") + payload)
            resp = http.client.HTTPResponse(_ReaderShim(reader), method=method)  # type: ignore[arg-type]
            resp.begin()
            if resp.status in (101, 200):
                resp.fp = None  # the stream is ours now: closing resp must not close it
                return Hijacked(sock, reader)
            raw = resp.read()
            raise APIError(resp.status, error_message(raw, resp.status, resp.reason))
        except (OSError, http.client.HTTPException) as exc:
            reader.close()
            sock.close()
            raise DaemonUnreachable(
                f"the cove daemon at {self.endpoint.url} dropped the connection during"
                f" {method} {path}: {exc}"
            ) from exc
        except BaseException:
            reader.close()
            sock.close()
            raise


def target(path: str, query: Query | None = None) -> str:
    """The request target: ``path`` plus the query, without None values.

    Booleans become ``1``/``0`` (what the Docker API accepts); other values ``str()``.
    """
    if not query:
        return path
    pairs = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            pairs += [(key, str(v)) for v in value]
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        pairs.append((key, str(value)))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def segment(name: str) -> str:
    """Quote a name or id for use inside an API path."""
    return quote(name, safe="/:@+=,")


def decode_body(raw: bytes) -> Any:
    """JSON-decode a response body; None when empty, text when not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def error_message(raw: bytes, status: int, reason: str = "") -> str:
    """The one-line explanation in an error body (``{"message": ...}`` or text)."""
    body = decode_body(raw)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
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
