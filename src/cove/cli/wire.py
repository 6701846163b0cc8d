"""A request written to the daemon before :mod:`cove.cli.client` is loaded, and the JSON
encoding both share.

The CLI's fast path (:mod:`cove.cli.fast`) knows its first request from the command line
alone.  :func:`presend` connects to the daemon's unix socket and writes that request at once,
with only the C modules ``_socket`` and ``_json`` loaded; the daemon then works on it while the
process imports the client that reads the answer (~1.1 ms of a ~6 ms command here: ``io``'s
classes, the HTTP reader; ``python -X importtime``).  The bytes are the ones
:meth:`cove.cli.client.Client.send` writes for the same request (``tests/unit/test_cli_fast.py``
compares them), so the daemon cannot tell the two apart.
"""

from __future__ import annotations

from cove.cli.environ import env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Query = Mapping[str, Any]

#: ``cove.cli.client.DEFAULT_HOST``'s socket
DEFAULT_SOCKET = "/run/cove/cove.sock"


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


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """``json.dumps(value)`` (default settings), by the C encoder alone."""
    from _json import encode_basestring_ascii, make_encoder

    encode = make_encoder({}, _not_serializable, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def presend(method: str, path: str, body: Any = None) -> Any:
    """Connect to the daemon's unix socket (``COVE_HOST``) and write ``method path`` with
    ``body`` as JSON (None: no body).  Returns the connected socket, to be read through
    :meth:`cove.cli.client.Client.adopt`; None when nothing was sent (a ``tcp://`` host, no
    daemon listening, any error), and the caller goes the usual way, autostart included.
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
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(address)
        sock.sendall(head.encode("latin-1") + b"\r\n" + data)
    except OSError:
        sock.close()
        return None
    return sock
