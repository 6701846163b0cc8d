"""Text formatting for the CLI: docker-style tables, humanised times and sizes.

Everything here is pure (no I/O, ``now`` passed in) so the output can be checked
exactly in unit tests.  The rules follow the docker CLI: tables are aligned like Go's
``tabwriter`` with minimum width 10 and padding 3, durations like go-units'
``HumanDuration``, sizes like ``HumanSizeWithPrecision(size, 3)``, commands quoted like
Go's ``strconv.Quote`` after truncation to 20 characters.
"""

TYPE_CHECKING = False         # typing, re, collections are not imported at load time (cove.cli.fast's start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

# click is imported only where an error is raised or a line echoed: cove.cli.fast prints
# ps tables through this module without loading click.

ELLIPSIS = "…"
_ZERO_TIME_PREFIX = "0001-01-01"


def table(
    header: "Sequence[str]", rows: "Iterable[Sequence[str]]", *, min_width: int = 10, padding: int = 3
) -> str:
    """Align columns like Go's tabwriter (last column unpadded); no trailing newline."""
    lines = [list(header)] + [list(row) for row in rows]
    ncols = max(len(line) for line in lines)
    widths = [0] * ncols
    for line in lines:
        for i, cell in enumerate(line[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, min_width)
    out = []
    for line in lines:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        cells.append(line[-1] if line else "")
        out.append("".join(cells))
    return "\n".join(out)


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: "Less than a second", "5 seconds", "About an hour"..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = secs // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(timestamp: float, now: float) -> str:
    """"2 minutes ago" for a unix timestamp."""
    return f"{human_duration(now - timestamp)} ago"


def parse_time(value: "str | None") -> "float | None":
    """Unix time of an RFC 3339 timestamp; None for empty or Go's zero time."""
    if not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    from datetime import datetime, timezone      # here: the ps table needs it only for an empty STATUS

    text = value.strip()
    import re

    match = re.fullmatch(r"(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not match:
        return None
    base, frac, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    else:
        offset = 0
    seconds = moment.replace(tzinfo=timezone.utc).timestamp() - offset
    return seconds + (float(frac) if frac else 0.0)


def container_status(state: "dict[str, Any]", now: float) -> str:
    """Docker's status text for an inspect ``State``: "Up 5 seconds", "Exited (0) ..."."""
    started = parse_time(state.get("StartedAt"))
    finished = parse_time(state.get("FinishedAt"))
    code = state.get("ExitCode", 0)
    if state.get("Running"):
        up = human_duration(now - started) if started is not None else human_duration(0)
        if state.get("Paused"):
            return f"Up {up} (Paused)"
        if state.get("Restarting"):
            since = human_duration(now - finished) if finished is not None else human_duration(0)
            return f"Restarting ({code}) {since} ago"
        return f"Up {up}"
    if state.get("Status") == "removing":
        return "Removal In Progress"
    if state.get("Dead"):
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        return ""
    return f"Exited ({code}) {human_duration(now - finished)} ago"


def ellipsis(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, the last one being "…" when cut."""
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    return text[: width - 1] + ELLIPSIS


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Double-quote ``text`` the way Go's strconv.Quote does."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def short_id(ident: str, trunc: bool = True) -> str:
    """An id without its ``sha256:`` prefix, cut to 12 characters unless ``trunc`` is off."""
    if not trunc:
        return ident
    if ident.startswith("sha256:"):
        ident = ident[len("sha256:"):]
    return ident[:12]


def human_size(size: float) -> str:
    """go-units' HumanSizeWithPrecision(size, 3): "0B", "7.8MB", "128MB"."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000.0 and index < len(units) - 1:
        size /= 1000.0
        index += 1
    return f"{size:.3g}{units[index]}"


def join_host_port(host: str, port: "str | int") -> str:
    """Go's net.JoinHostPort: brackets around IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def display_ports(ports: "list[dict[str, Any]] | None") -> str:
    """The PORTS column of ``ps``, grouping consecutive ports like docker."""
    items = sorted(
        ports or [],
        key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                       p.get("Type", "")),
    )
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for port in items:
        current = int(port.get("PrivatePort", 0))
        key = port.get("Type", "tcp")
        ip = port.get("IP") or ""
        if ip:
            public = int(port.get("PublicPort", 0))
            if public != current:
                host_mappings.append(
                    f"{join_host_port(ip, public)}->{current}/{port.get('Type', 'tcp')}"
                )
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(_port_group(key, group[0], group[1]))
            groups[key] = [current, current]
    result.extend(_port_group(key, *groups[key]) for key in order)
    result.extend(host_mappings)
    return ", ".join(result)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    if ip:
        text = f"{join_host_port(ip, text)}->{text}"
    return f"{text}/{proto}"


def ps_table(containers: "list[dict[str, Any]]", now: float, *, trunc: bool = True,
             status_of: "Callable[[str], str] | None" = None) -> str:
    """The ``ps`` table; ``status_of`` fills in a STATUS the daemon left empty.

    Shared by the ``ps`` command and :mod:`cove.cli.fast` (which prints the same bytes without
    loading click); here rather than in a module of its own: one import less for ``cove ps``.
    """
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


def container_names(names: "list[str] | None", trunc: bool) -> str:
    """The NAMES column: leading "/" stripped; truncated output hides link names."""
    stripped = [n[1:] if n.startswith("/") else n for n in names or []]
    if trunc:
        canonical = [n for n in stripped if "/" not in n]
        stripped = canonical[:1] or stripped
    return ",".join(stripped)


def natural_key(text: str) -> "list[Any]":
    """Sort key that orders "net2" before "net10"."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", text) if part]


def dump_json(value: "Any") -> str:
    """Docker's inspect output style: 4-space indent, UTF-8 kept."""
    import json

    return json.dumps(value, indent=4, ensure_ascii=False)


def kv_lines(data: "Any", indent: int = 0) -> "list[str]":
    """``Key: value`` lines for nested API data (``info``, ``version``)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value and not _is_flat_list(value):
                lines.append(f"{pad}{key}:")
                lines.extend(kv_lines(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}".rstrip())
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (dict, list)):
                lines.extend(kv_lines(item, indent))
            else:
                lines.append(f"{pad}{_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(data)}")
    return lines


def _is_flat_list(value: "Any") -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


def _scalar(value: "Any") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value)
    if isinstance(value, dict):
        return ""
    return str(value)


def print_objects(objects: "list[Any]", template: "str | None") -> "None":
    """``inspect`` output: a JSON array, or one rendered template line per object (``-f``)."""
    import click

    if not template:
        click.echo(dump_json(objects))
        return
    from cove.cli.gotemplate import TemplateError, parse

    try:
        tpl = parse(template)
        for obj in objects:
            click.echo(tpl.render(obj, missing_error=True))
    except TemplateError as exc:
        raise click.ClickException(f"template: {exc}") from None


def format_rows(template: str, rows: "list[dict[str, Any]]", headers: "dict[str, str]",
                labels: "list[dict[str, str]] | None" = None) -> str:
    """``--format`` for list commands: a Go template per row; ``table ...`` adds docker's header
    row (each field's column title) and aligns the tab-separated columns.  With ``labels``
    (one dict per row), rows have docker's ``{{.Label "key"}}`` method."""
    from cove.cli.gotemplate import Row, TemplateError, parse, table_format

    if labels is not None:
        rows = [Row(row, {"Label": lambda key, lb=lb: str(lb.get(key, ""))}) for row, lb in zip(rows, labels)]
        headers = Row(headers, {"Label": lambda key: key.split(".")[-1].replace("-", " ").replace("_", " ").upper()})

    is_table, text = table_format(template)
    text = text.replace("\\t", "\t")
    try:
        tpl = parse(text)
        lines = [tpl.render(row, missing_error=True) for row in rows]
        if is_table:
            head = tpl.render(headers)
            cells = [line.split("\t") for line in [head, *lines]]
            return table(cells[0], cells[1:])
    except TemplateError as exc:
        import click

        raise click.ClickException(f"template: {exc}") from None
    return "\n".join(lines)
