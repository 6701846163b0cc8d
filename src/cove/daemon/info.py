"""What ``cove info`` (``GET /info``) reports about this machine's kernel and firewall.

It lives here, not in :mod:`cove.kernel.features`, because it asks the firewall
layer too, and ``kernel/`` imports nothing above it.
"""

from __future__ import annotations

from typing import Any

from ..firewall import available_backends
from ..kernel.features import LINK_KINDS, link_kinds, openvswitch


def kernel_features() -> dict[str, Any]:
    """The feature table ``cove info`` shows."""
    have = available_backends()
    kinds = link_kinds()
    return {"nftables": "nftables" in have, "iptables-legacy": "iptables" in have,
            **{k: kinds.get(k, False) for k in LINK_KINDS}, "8021q": kinds.get("vlan", False),
            "openvswitch": openvswitch()}
