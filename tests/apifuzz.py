"""Drive cove's API from docs/openapi.yaml with schemathesis and check every answer (issue 14).

Shared by the unit run (the router over the fake kernel, tests/unit/test_hostile_input.py) and
the integration run (a real daemon in the sandbox, tests/integration/test_fuzz.py): they differ
only in how a request is sent and how the daemon's state is read.

Schemathesis generates cases per operation in both of its modes: ``positive`` (bodies and
parameters the document allows, so handlers are reached with odd but typed values) and
``negative`` (wrong JSON types, missing required fields, bodies that are not JSON at all).
Cases are the same on every run (``derandomize``) unless ``COVE_FUZZ_RANDOM=1``.  Every answer
must be:

- below 500;
- for a 4xx, a JSON object ``{"message": "..."}`` with no Python traceback in it, of bounded length;
- for a 4xx, no change to the daemon's state (the caller's ``state()``: networks, endpoints,
  containers, volumes, images).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"

ALL_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

#: (status, body) of one request: send(method, path_with_query, headers, body)
Send = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]


# an image import's body is a tarball: sent as the bytes generated for it
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")


def load_schema() -> Any:
    return schemathesis.openapi.from_dict(yaml.safe_load(DOC.read_text()))


def request_of(case: Any) -> tuple[str, str, dict[str, str], bytes]:
    """A schemathesis case as (method, path?query, headers, body bytes)."""
    kw = case.as_transport_kwargs(base_url="http://cove")
    parts = urllib.parse.urlsplit(kw["url"])
    query = urllib.parse.urlencode(kw.get("params") or {}, doseq=True)
    target = parts.path + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/json"}
    if "json" in kw:
        body = json.dumps(kw["json"]).encode()
    else:
        data = kw.get("data")
        body = data if isinstance(data, bytes) else (data or "").encode() if isinstance(data, str) else b""
    return kw["method"], target, headers, body


@dataclass
class Tally:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.sent} requests, statuses {dict(sorted(self.by_status.items()))}"


def check_answer(status: int, body: bytes) -> str | None:
    """What is wrong with one answer, or None."""
    if status >= 500:
        return f"{status}: {body[:300]!r}"
    text = body.decode(errors="replace")
    if "Traceback" in text or 'File "/' in text:
        return f"a traceback in the answer: {text[:300]!r}"
    if status >= 400:
        try:
            msg = json.loads(body)
        except ValueError:
            return f"{status} without a JSON body: {body[:200]!r}"
        if not isinstance(msg, dict) or not isinstance(msg.get("message"), str) or not msg["message"]:
            return f"{status} without a message: {body[:200]!r}"
        if len(msg["message"]) > 4096:
            return f"{status} with a {len(msg['message'])}-character message (the input echoed back?)"
    return None


def fuzz(operations: Iterable[Any], send: Send, state: Callable[[], Any], per_mode: int,
         after_success: Callable[[], None] = lambda: None, tally: Tally | None = None,
         path_parameters: Callable[[Any], dict[str, str] | None] = lambda op: None,
         modes: Callable[[Any], tuple[GenerationMode, ...]] = lambda op: ALL_MODES) -> Tally:
    """Send ``per_mode`` generated cases of each operation in each of its ``modes``; collect what is wrong."""
    t = tally or Tally()
    for op in operations:
        for mode in modes(op):
            fixed = path_parameters(op)

            @settings(max_examples=per_mode, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck),
                      derandomize=not os.environ.get("COVE_FUZZ_RANDOM"))
            @given(case=op.as_strategy(generation_mode=mode, path_parameters=fixed))
            def one(case: Any) -> None:
                method, target, headers, body = request_of(case)
                before = state()
                status, answer = send(method, target, headers, body)
                t.sent += 1
                t.by_status[status] = t.by_status.get(status, 0) + 1
                where = f"{method} {target[:200]} body={body[:200]!r}"
                problem = check_answer(status, answer)
                if problem is None and status >= 400 and state() != before:
                    problem = f"a refused request ({status}) changed the daemon's state"
                if problem is not None:
                    t.failures.append(f"{where}: {problem}")
                elif status < 300:
                    after_success()

            try:
                one()
            except Unsatisfiable:       # nothing to make negative (no parameters, no body)
                pass
            print(f"fuzz: {op.method.upper()} {op.path} {mode.value}: {t.summary()}", file=sys.stderr, flush=True)
    return t
