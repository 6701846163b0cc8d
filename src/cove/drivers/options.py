"""Option parsing the drivers share (Docker's ``-o key=value`` network options)."""

from __future__ import annotations

from ..model import Network, parse_bool


def bool_option(net: Network, key: str, default: bool) -> bool:
    """A true/false option (true, 1, yes, on / false, 0, no, off); ``default`` when absent."""
    raw = net.options.get(key)
    return default if raw is None else parse_bool(f"option {key}", raw)
