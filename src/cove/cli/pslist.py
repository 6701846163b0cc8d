"""The ``ps`` table, without click: shared by the ``ps`` command and :mod:`cove.cli.fast`.

Only :mod:`cove.cli.format` (``re``, ``datetime``) is imported, so the fast path can
print the same bytes as the click command without loading click.
"""

from __future__ import annotations

TYPE_CHECKING = False         # typing, collections are not imported at run time (start-up of cove.cli.fast)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def ps_table(containers: list[dict[str, Any]], now: float, *, trunc: bool = True,
             status_of: Callable[[str], str] | None = None) -> str:
    """The ``ps`` table; ``status_of`` fills in a STATUS the daemon left empty."""
    from cove.cli.format import ago, display_ports, ellipsis, go_quote, short_id, table

    rows = []
    for c in containers:
        ident = c.get("Id", "")
        image = c.get("Image", "")
        if image.startswith("sha256:"):
            image = short_id(image, trunc)
        command = c.get("Command", "")
        command = go_quote(ellipsis(command, 20) if trunc else command)
        created = ago(c["Created"], now) if c.get("Created") else ""
        status = c.get("Status") or (status_of(ident) if status_of else "") or c.get("State", "")
        rows.append([ident[:12] if trunc else ident, image, command, created, status,
                     display_ports(c.get("Ports")), container_names(c.get("Names"), trunc)])
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    return table(header, rows)


def container_names(names: list[str] | None, trunc: bool) -> str:
    """The NAMES column: leading "/" stripped; truncated output hides link names."""
    stripped = [n[1:] if n.startswith("/") else n for n in names or []]
    if trunc:
        canonical = [n for n in stripped if "/" not in n]
        stripped = canonical[:1] or stripped
    return ",".join(stripped)
