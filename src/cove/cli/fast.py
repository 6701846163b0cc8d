"""The ``cove`` script's entry point: a hand-dispatched fast path in front of click.

A handful of everyday command lines (``--version``, ``network create NAME``,
``network rm NAME...``, ``rm [-f] NAME...``) are recognised here by exact shape and
sent with :mod:`cove.cli.client` alone; every other command line, and any option
this module does not know, goes to the click CLI (:func:`cove.cli.main.main`)
unchanged.  Output and exit codes are the click commands' own.

Why: click and :mod:`cove.cli.main` cost ~30 ms of imports on this machine
(``python -X importtime``), which is most of a ``network create`` from the CLI; the
fast path imports only the client (json, socket, dataclasses, urllib.parse).
Errors fall back to ``cove.cli.main.report_error`` (click is imported then only).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cove.cli.client import Client

RM_MAX_NAMES = 4       # cove.cli.containers.PROGRESS_FROM - 1: more names show a progress bar


def _names(args: list[str]) -> bool:
    return bool(args) and not any(a.startswith("-") or not a for a in args)


def _client() -> Client:
    from cove.cli.client import DEFAULT_HOST, Client

    host = os.environ.get("COVE_HOST") or DEFAULT_HOST
    if os.environ.get("COVE_NO_AUTOSTART") == "1":
        return Client(host, autostart=None)
    from cove.cli.main import _autostart     # only imported when no daemon answers

    return Client(host, autostart=lambda endpoint: _autostart(endpoint))


def _each(names: list[str], action: Any, skip_404: bool = False) -> int:
    from cove.cli.client import APIError

    failed = False
    for name in names:
        try:
            action(name)
        except APIError as exc:
            if skip_404 and exc.status == 404:
                continue
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed = True
            continue
        print(name, flush=True)
    return 1 if failed else 0


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
        reply = _client().post("/networks/create", body) or {}
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
        from cove.cli.client import segment

        api = _client()
        return _each(names, lambda n: api.delete(f"/networks/{segment(n)}"), skip_404=force)
    if argv[:1] == ["rm"]:
        rest = argv[1:]
        force = bool(rest) and rest[0] in ("-f", "--force")
        names = rest[1:] if force else rest
        if not _names(names) or len(names) > RM_MAX_NAMES:
            return None
        from cove.cli.client import segment

        api = _client()
        query = {"force": True if force else None, "v": None}
        return _each(names, lambda n: api.delete(f"/containers/{segment(n)}", query))
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cove`` script; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if "_COVE_COMPLETE" not in os.environ:
        from cove.errors import CoveError

        try:
            code = fast(args)
        except CoveError as exc:
            from cove.cli.main import report_error

            return report_error(exc) or 1
        if code is not None:
            return code
    from cove.cli.main import main as click_main

    return click_main(argv)
