"""Docker Engine API route: ``GET /containers/{id}/stats`` (``stream``, ``one-shot``).

As dockerd: ``stream=true`` (the default) sends one JSON line a second until the client goes
away or the container is removed, each with ``preread``/``precpu_stats`` from the line before;
``stream=false`` answers one object, sampled twice a second apart so the CPU % can be computed
(``one-shot=true``: once, no wait, empty ``precpu_stats``).  A container that is not running
gets Docker's empty stats (name, id, zero times), not an error.  The counters are the engine's
(:mod:`cove.engine.stats`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from ...errors import InvalidArgument, NotFound
from ...stats import ZERO_TIME, with_previous
from ..backend import Backend
from ..http import Handler, Request, Response

#: seconds between two samples, dockerd's collector interval
INTERVAL = 1.0


def _bool(req: Request, name: str, default: bool) -> bool:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise InvalidArgument(f"invalid {name}: {raw!r} is not a boolean")


def container_stats(engine: Backend, req: Request, ref: str) -> Response:
    stream = _bool(req, "stream", True)
    one_shot = _bool(req, "one-shot", False)
    if stream and one_shot:
        raise InvalidArgument("cannot have stream=true and one-shot=true")
    first = engine.container_stats(ref)          # NotFound: a 404 before any header goes out
    if not stream:
        if one_shot or first["read"] == ZERO_TIME:
            return Response.json(with_previous(first, None))
        time.sleep(INTERVAL)
        try:
            return Response.json(with_previous(engine.container_stats(ref), first))
        except NotFound:                         # removed meanwhile: what was read before
            return Response.json(with_previous(first, None))
    stop = threading.Event()

    def lines() -> Iterator[bytes]:
        before, now = None, first
        while True:
            yield (json.dumps(with_previous(now, before)) + "\n").encode()
            if stop.wait(INTERVAL):
                return
            try:
                before, now = now, engine.container_stats(ref)
            except NotFound:                     # the container was removed: the stream ends
                return

    return Response(stream=lines(), on_hangup=stop.set)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/containers/{ref}/stats", container_stats),
]
