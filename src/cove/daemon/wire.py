"""Typed readers for request bodies and query strings: the one place where wire JSON gets its type.

dockerd decodes a body into Go structs, so a value of the wrong JSON type (``"Tty": "x"``,
``"Labels": {"a": 1}``, a body of ``[]``) is a 400, never coerced and never a 500.  Each
reader here takes the value, the field's dotted name as the user wrote it, and answers the
value in its Python type, or raises :class:`~cove.errors.InvalidArgument` naming the field
and what was expected.  ``null`` (``None``) and a missing key mean "not set", as in Go.

Handlers and :mod:`cove.daemon.schema` read every field through these; nothing else in the
daemon checks a JSON type by hand.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidArgument
from .http import Request

_JSON_TYPE = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
              float: "a number", type(None): "null"}


def _got(v: Any) -> str:
    return _JSON_TYPE.get(type(v), type(v).__name__)


def _wrong(field: str, want: str, v: Any) -> InvalidArgument:
    return InvalidArgument(f"invalid {field}: expected {want}, got {_got(v)}")


def body_object(req: Request, what: str) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``); ``[]``, ``"x"``, ``1``, ``null`` are 400."""
    body = req.json()
    if not isinstance(body, dict):
        raise _wrong(f"{what}: the request body", "a JSON object", body)
    return body


def obj(v: Any, field: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _wrong(field, "an object", v)
    return v


def string(v: Any, field: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _wrong(field, "a string", v)
    return v


def boolean(v: Any, field: str, default: bool = False) -> bool:
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _wrong(field, "a boolean", v)
    return v


def integer(v: Any, field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int):
        raise _wrong(field, "an integer", v)
    return v


def array(v: Any, field: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _wrong(field, "an array", v)
    return v


def str_map(v: Any, field: str) -> dict[str, str]:
    """An object of strings (``Labels``, ``Options``, ``DriverOpts``, ``Sysctls``)."""
    d = obj(v, field)
    for k, x in d.items():
        if not isinstance(x, str):
            raise _wrong(f"{field}.{k}", "a string", x)
    return dict(d)


def obj_map(v: Any, field: str) -> dict[str, dict[str, Any]]:
    """An object whose values are objects or null (``ExposedPorts``, ``Volumes``, ``EndpointsConfig``)."""
    d = obj(v, field)
    for k, x in d.items():
        obj(x, f"{field}.{k}")
    return {k: dict(x or {}) for k, x in d.items()}


_INT = re.compile(r"-?[0-9]{1,10}")


def query_int(req: Request, name: str, lo: int, hi: int) -> int | None:
    """An integer query parameter (``stop?t=``): digits only, as Go's ``strconv.Atoi``; ``nan``,
    ``-inf``, ``1e400`` and ``abc`` are 400."""
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    if not _INT.fullmatch(raw):
        raise InvalidArgument(f"invalid {name}: {raw[:40]!r} is not an integer")
    n = int(raw)
    if not lo <= n <= hi:
        raise InvalidArgument(f"invalid {name}: {n} is outside {lo}-{hi}")
    return n

