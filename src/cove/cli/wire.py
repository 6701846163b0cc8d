"""What the CLI's requests are made of, for its fast path and its client alike: the
environment, request targets, JSON, a request written before :mod:`cove.cli.client` is loaded,
and the reading of an HTTP/1.1 response.

The CLI's fast path (:mod:`cove.cli.fast`) knows its first request from the command line
alone.  :func:`presend` connects to the daemon's unix socket and writes that request at once,
with only the C modules ``_socket`` and ``_json`` loaded.  The bytes are the ones
:meth:`cove.cli.client.Client.send` writes for the same request (``tests/unit/test_cli_fast.py``
compares them), so the daemon cannot tell the two apart.  :func:`reply` then reads the answer
with the same code the client reads its answers with (:func:`read_head`, :class:`Body`, here so
that both share it), and the fast path imports :mod:`cove.cli.client` (its 15 classes, and
:mod:`cove.errors`) only to report an error or when no daemon answered (autostart): every
module imported costs ~0.1-0.2 ms of a ~6 ms command on this machine, mostly the import
machinery's own work (``python -X importtime``; the launchers of ``bench/cli_micro.py``), and
``network create`` went from 10 modules to 5.

This module has no ``from __future__ import annotations`` (nor has :mod:`cove.cli.fast`):
that statement imports the ``__future__`` module at run time (~0.1 ms); annotations that name
what only the type checker imports are written as strings.

The environment is read by :func:`cove.cli.env` (``os`` stays unimported).
"""

import io

from cove.cli import env as env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

    import _socket
    from _json import make_scanner

    Query = Mapping[str, Any]

#: ``cove.cli.client.DEFAULT_HOST``'s socket
DEFAULT_SOCKET = "/run/cove/cove.sock"
_MAX_HEADER_BYTES = 1 << 20


def target(path: str, query: "Query | None" = None) -> str:
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
    return f"{path}?{'&'.join(_quote(k, '', True) + '=' + _quote(v, '', True) for k, v in pairs)}" if pairs else path


def segment(name: str) -> str:
    """Quote a name or id for use inside an API path."""
    return _quote(name, "/:@+=,")


_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str, safe: str, plus: bool = False) -> str:
    """``urllib.parse.quote`` (``quote_plus`` with ``plus``) for the few calls made here.

    Written out because importing ``urllib.parse`` costs more than a request to the
    daemon at CLI start-up (~1.7 ms of ``python -X importtime``); the unit tests check it
    against ``urllib.parse`` on odd names.
    """
    ok = _ALWAYS_SAFE | frozenset(safe.encode())
    out = []
    for byte in text.encode("utf-8"):
        if byte in ok:
            out.append(chr(byte))
        elif plus and byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _not_serializable(value: "Any") -> "Any":
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


class _Unusual(Exception):
    """A value or text the small JSON codec below leaves to the C module."""


def _small_dumps(value: "Any", out: "list[str]") -> None:
    """Append ``json.dumps(value)`` for exactly dict (str keys), list, tuple, printable-ASCII
    str without ``"`` or ``\\``, int, bool and None (what the fast path's request bodies hold
    but a name with odd characters); _Unusual for anything else."""
    kind = type(value)
    if kind is str:
        if not (value.isascii() and value.isprintable()) or '"' in value or "\\" in value:
            raise _Unusual
        out.append('"' + value + '"')
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is list or kind is tuple:
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _small_dumps(item, out)
        out.append("]")
    elif kind is dict:
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if type(key) is not str:
                raise _Unusual
            if i:
                out.append(", ")
            _small_dumps(key, out)
            out.append(": ")
            _small_dumps(item, out)
        out.append("}")
    else:
        raise _Unusual


def dumps(value: "Any") -> str:
    """``json.dumps(value)`` (default settings): by :func:`_small_dumps` when it takes the
    value, else by the C encoder alone.  Loading ``_json`` (a shared library) is ~0.2 ms of a CLI
    run here, before its request is sent (``bench/cli_micro.py``, ``network create``); the body
    that request needs is encoded by hand in ~20 µs instead, and ``_json`` is loaded, if at all,
    while the daemon works on the request."""
    out: "list[str]" = []
    try:
        _small_dumps(value, out)
        return "".join(out)
    except (_Unusual, RecursionError):
        pass
    from _json import encode_basestring_ascii, make_encoder

    encode = make_encoder({}, _not_serializable, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def hijack_head(method: str, path: str, payload: bytes) -> bytes:
    """A request asking the daemon to turn the connection into a raw stream (attach, exec),
    with its ``payload`` (what :meth:`cove.cli.client.Client.hijack` writes)."""
    from cove import __version__

    return (f"{method} {path} HTTP/1.1\r\nHost: cove\r\nUser-Agent: cove-cli/{__version__}\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode("latin-1") + payload


def presend(method: str, path: str, body: "Any" = None, upgrade: bool = False) -> "Any":
    """Connect to the daemon's unix socket (``COVE_HOST``) and write ``method path`` with
    ``body`` as JSON (None: no body), as :meth:`cove.cli.client.Client.send` does (``upgrade``:
    as :meth:`cove.cli.client.Client.hijack` does).  Returns the connected socket, to be read
    with :func:`reply`; None when nothing was sent (a ``tcp://`` host, no daemon listening, any
    error), and the caller goes the usual way, autostart included.
    """
    host = env("COVE_HOST") or "unix://" + DEFAULT_SOCKET
    if host.startswith("unix://"):
        address = host[len("unix://"):]
    elif host.startswith("/"):
        address = host
    else:
        return None
    if not address:
        return None
    import _socket

    if upgrade:
        request = hijack_head(method, path, b"" if body is None else dumps(body).encode())
    else:
        from cove import __version__

        head = f"{method} {path} HTTP/1.1\r\nHost: cove\r\nUser-Agent: cove-cli/{__version__}\r\n"
        data = b""
        if body is not None:
            data = dumps(body).encode()
            head += "Content-Type: application/json\r\nConnection: close\r\n" f"Content-Length: {len(data)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "Connection: close\r\nContent-Length: 0\r\n"
        else:
            head += "Connection: close\r\n"
        request = head.encode("latin-1") + b"\r\n" + data
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(address)
        sock.sendall(request)
    except OSError:
        sock.close()
        return None
    return sock


class _SocketIO(io.RawIOBase):
    """The raw stream under :func:`buffered_reader` (what ``socket.makefile`` builds, without ``socket``).

    Closing it leaves the socket open: its owner closes that.
    """

    def __init__(self, sock: "_socket.socket") -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "Any") -> int:
        return self._sock.recv_into(buffer)


def buffered_reader(sock: "_socket.socket") -> io.BufferedReader:
    """A buffered binary reader of ``sock`` (``sock.makefile("rb")``)."""
    return io.BufferedReader(_SocketIO(sock))


class HTTPError(OSError):
    """The daemon's answer is not HTTP/1.1 as we speak it."""


class Headers(dict):  # type: ignore[type-arg]
    """Response headers; keys lower-cased, ``get`` ignores case."""

    def get(self, key: str, default: "Any" = None) -> "Any":
        return super().get(key.lower(), default)


def read_head(reader: "IO[bytes]") -> "tuple[int, str, Headers]":
    """The status line and headers of a response (1xx interim answers other than 101 skipped)."""
    while True:
        line = reader.readline(_MAX_HEADER_BYTES)
        if not line:
            raise HTTPError("the connection closed before a response")
        if not line.endswith(b"\n"):
            raise HTTPError("response headers too long" if len(line) >= _MAX_HEADER_BYTES
                            else "the connection closed inside the response head")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HTTPError(f"not an HTTP response: {line[:80]!r}")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers = Headers()
        total = 0
        while True:
            h = reader.readline(_MAX_HEADER_BYTES)
            total += len(h)
            if total > _MAX_HEADER_BYTES:
                raise HTTPError("response headers too long")
            if h in (b"\r\n", b"\n"):
                break
            if not h.endswith(b"\n"):           # EOF before the blank line: not a whole answer
                raise HTTPError("the connection closed inside the response head")
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 and status != 101:
            continue
        return status, reason, headers


class Body:
    """A response body: by Content-Length, chunked, or until the connection closes."""

    def __init__(self, reader: "IO[bytes]", headers: Headers, method: str, status: int) -> None:
        self._reader = reader
        self._length = 0                        # the Content-Length, for the error of a cut body
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._left: "int | None" = 0
        elif self._chunked:
            self._left = 0                      # bytes left in the current chunk
        elif length is not None:
            self._left = int(length)
            self._length = self._left
        else:
            self._left = None                   # until EOF
        self._done = self._left == 0 and not self._chunked

    def read1(self, size: int = 65536) -> bytes:
        if self._done:
            return b""
        if self._chunked:
            if self._left == 0:
                line = self._reader.readline(1024)
                if not line:
                    raise HTTPError("the connection closed inside a chunked body")
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self._reader.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass                     # trailers
                    self._done = True
                    return b""
                self._left = n
            left = self._left or 0
            data: bytes = self._reader.read1(min(size, left))  # type: ignore[attr-defined]
            if not data:
                raise HTTPError("the connection closed inside a chunk")
            self._left = left - len(data)
            if self._left == 0:
                self._reader.readline(16)         # the CRLF after the chunk
            return data
        want = size if self._left is None else min(size, self._left)
        data = self._reader.read1(want)  # type: ignore[attr-defined]
        assert isinstance(data, bytes)
        if self._left is not None:
            if not data:
                got = self._length - self._left
                raise HTTPError(f"the connection closed inside the body ({got} of {self._length} bytes)")
            self._left -= len(data)
            self._done = self._left == 0
        elif not data:
            self._done = True
        return data

    def read(self) -> bytes:
        parts: list[bytes] = []
        while True:
            data = self.read1(1 << 16)
            if not data:
                return b"".join(parts)
            parts.append(data)

def reply(sock: "_socket.socket", method: str) -> "tuple[int, str, Body, IO[bytes]]":
    """The status, reason and unread body of the answer to the request written on ``sock``
    (what :meth:`cove.cli.client.Pending.response` reads; its OSError and ValueError are the
    caller's to word).  The caller closes the reader, then ``sock``."""
    reader = buffered_reader(sock)
    try:
        status, reason, headers = read_head(reader)
        return status, reason, Body(reader, headers, method, status), reader
    except BaseException:
        reader.close()
        raise


def decode_body(raw: bytes) -> "Any":
    """JSON-decode a response body; None when empty, text when not JSON."""
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _ScanContext:
    """The settings ``json.JSONDecoder()`` hands its C scanner (``json.loads``'s defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: "dict[str, str]" = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.lower().replace("infinity", "inf"))   # NaN, Infinity, -Infinity


_scanner: "list[make_scanner]" = []
_JSON_SPACE = " \t\n\r"


#: the longest text :func:`_small_loads` is tried on (~35 µs for a ``ps`` list of one container,
#: 0.8 KiB, ~80-140 µs for a container's ``inspect``, 3 KiB, on this loaded machine) where loading
#: ``_json`` is ~0.2 ms; longer texts (``ps`` with many containers) go to the C scanner
SMALL_JSON = 4096


def _small_loads(text: str) -> "Any":
    """``json.loads(text)`` for what short API answers hold (objects, arrays, strings without
    escapes or control characters, integers, true, false, null); _Unusual (or IndexError,
    ValueError) for anything else, which the caller gives to the C scanner."""
    end = len(text)

    def value(i: int) -> "tuple[Any, int]":
        while text[i] in _JSON_SPACE:
            i += 1
        c = text[i]
        if c == '"':
            j = text.index('"', i + 1)
            s = text[i + 1:j]
            if "\\" in s or not s.isprintable():
                raise _Unusual
            return s, j + 1
        if c == "{":
            obj: "dict[str, Any]" = {}
            i += 1
            while text[i] in _JSON_SPACE:
                i += 1
            if text[i] == "}":
                return obj, i + 1
            while True:
                if text[i] != '"':
                    raise _Unusual
                key, i = value(i)
                while text[i] in _JSON_SPACE:
                    i += 1
                if text[i] != ":":
                    raise _Unusual
                obj[key], i = value(i + 1)
                while text[i] in _JSON_SPACE:
                    i += 1
                if text[i] == "}":
                    return obj, i + 1
                if text[i] != ",":
                    raise _Unusual
                i += 1
                while text[i] in _JSON_SPACE:
                    i += 1
        if c == "[":
            arr: "list[Any]" = []
            i += 1
            while text[i] in _JSON_SPACE:
                i += 1
            if text[i] == "]":
                return arr, i + 1
            while True:
                item, i = value(i)
                arr.append(item)
                while text[i] in _JSON_SPACE:
                    i += 1
                if text[i] == "]":
                    return arr, i + 1
                if text[i] != ",":
                    raise _Unusual
                i += 1
        if c == "-" or "0" <= c <= "9":
            j = i + 1
            while j < end and "0" <= text[j] <= "9":
                j += 1
            digits = text[i + 1 if c == "-" else i:j]
            if not digits or (digits[0] == "0" and len(digits) > 1) or (j < end and text[j] in ".eE"):
                raise _Unusual
            return int(text[i:j]), j
        for word, val in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, i):
                return val, i + len(word)
        raise _Unusual

    result, i = value(0)
    while i < end and text[i] in _JSON_SPACE:
        i += 1
    if i != end:
        raise _Unusual
    return result


def loads(raw: "bytes | str") -> "Any":
    """``json.loads(raw)``: short texts by :func:`_small_loads` when it takes them, the rest by
    the C scanner alone; malformed input raises json's ``JSONDecodeError`` (a ``ValueError``),
    as ``json.loads`` does."""
    if isinstance(raw, (bytes, bytearray)):
        if raw[:3] == b"\xef\xbb\xbf" or b"\0" in raw[:4]:
            import json                     # a BOM, UTF-16 or UTF-32: json's detection

            return json.loads(raw)
        text = bytes(raw).decode("utf-8", "surrogatepass")
    else:
        text = raw
    if len(text) <= SMALL_JSON:
        try:
            return _small_loads(text)
        except (_Unusual, IndexError, ValueError, RecursionError):
            pass
    if not _scanner:
        from _json import make_scanner

        _scanner.append(make_scanner(_ScanContext()))  # type: ignore[arg-type]  # typeshed: "a scanner"
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, end = _scanner[0](text, start)
    except StopIteration:
        end = -1
    if end < 0 or text[end:].strip(_JSON_SPACE):
        import json

        return json.loads(text)             # raises its JSONDecodeError
    return value
