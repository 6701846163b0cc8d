"""Option parsing the drivers share (Docker's ``-o key=value`` network options)."""

from __future__ import annotations

from ..errors import field_error
from ..model import Network


def bool_option(net: Network, key: str, default: bool) -> bool:
    """A true/false option (true, 1, yes, on / false, 0, no, off); ``default`` when absent."""
    raw = net.options.get(key)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise field_error(f"option {key}", raw, "must be true or false")
