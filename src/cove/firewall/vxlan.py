"""The VXLAN guard: this host accepts VXLAN (UDP 4789) only from hosts registered in the cluster.

VXLAN carries no authentication: anyone who can send UDP to port 4789 could inject frames into
an overlay network.  With a cluster store, cove keeps its own nftables table::

    table ip cove-vxlan {
        set vteps { type ipv4_addr }                the VTEPs of the hosts under hosts/ in etcd
        chain input { type filter hook input priority filter; policy accept
            udp dport 4789 ip saddr != @vteps counter drop }
    }

rewritten in one libnftables transaction whenever the set of hosts changes (the overlay's
``hosts/`` watch), whatever the firewall backend of the bridges is (it needs only
libnftables, which the nftables backend needs too).  The table is the daemon's, per host.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import CoveError

TABLE = "cove-vxlan"
FAMILY = "ip"


class VxlanGuard:
    """Writes the VXLAN input filter of this host (see the module docstring)."""

    def __init__(self, port: int = 4789) -> None:
        import nftables  # Debian's python3-nftables

        self.port = port
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._lock = threading.Lock()

    def _run(self, cmds: list[dict[str, Any]], what: str) -> None:
        with self._lock:
            rc, _, err = self._nft.json_cmd({"nftables": cmds})
        if rc != 0:
            raise CoveError(f"nftables: {what}: {' '.join(str(err).split())}")

    def apply(self, vteps: set[str]) -> None:
        """Accept VXLAN from exactly ``vteps`` (one transaction)."""
        t = {"family": FAMILY, "table": TABLE}
        rule = [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": self.port}},
                {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@vteps"}},
                {"counter": None}, {"drop": None}]
        cmds: list[dict[str, Any]] = [
            {"add": {"table": {"family": FAMILY, "name": TABLE}}},
            {"add": {"set": {**t, "name": "vteps", "type": "ipv4_addr"}}},
            {"add": {"chain": {**t, "name": "input", "type": "filter", "hook": "input", "prio": 0,
                               "policy": "accept"}}},
            {"flush": {"chain": {**t, "name": "input"}}},
            {"add": {"rule": {**t, "chain": "input", "expr": rule}}},
            {"flush": {"set": {**t, "name": "vteps"}}},
        ]
        if vteps:
            cmds.append({"add": {"element": {**t, "name": "vteps", "elem": sorted(vteps)}}})
        self._run(cmds, f"accept VXLAN from {len(vteps)} hosts")

    def teardown(self) -> None:
        try:
            self._run([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}], "remove the VXLAN guard")
        except CoveError:
            pass
