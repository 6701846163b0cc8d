"""What this kernel can do, probed once: each link type is created (and dropped)
inside a throwaway network namespace, so the probe never touches the host.

Drivers use :func:`require` to fail with the kernel option's name before they
change anything; ``cove info`` shows the whole table.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from typing import Any

from ..errors import Unavailable

#: link kind -> (kernel option, extra IFLA_LINKINFO data needed to create one)
LINK_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "bridge": ("CONFIG_BRIDGE", {}),
    "veth": ("CONFIG_VETH", {"peer": "probe-peer"}),
    "macvlan": ("CONFIG_MACVLAN", {"link": "lo-parent", "macvlan_mode": "bridge"}),
    "ipvlan": ("CONFIG_IPVLAN", {"link": "lo-parent", "ipvlan_mode": 0}),
    "vlan": ("CONFIG_VLAN_8021Q", {"link": "lo-parent", "vlan_id": 20}),
    "vxlan": ("CONFIG_VXLAN", {"vxlan_id": 42, "vxlan_port": 4789}),
    "dummy": ("CONFIG_DUMMY", {}),
}


@functools.cache
def link_kinds() -> dict[str, bool]:
    """Which link kinds the kernel can create (in a private namespace)."""
    from pyroute2 import IPRoute

    from . import netns

    result: dict[str, bool] = {}
    tmp = tempfile.mkdtemp(prefix="cove-probe-")
    path = os.path.join(tmp, "ns")

    def probe() -> None:
        with netns.entered(path):
            ipr = IPRoute()
        try:
            # a parent for the stacked kinds: a bridge if the kernel has one
            try:
                ipr.link("add", ifname="lo-parent", kind="bridge")
            except Exception:  # noqa: BLE001
                pass
            for kind, (_, extra) in LINK_KINDS.items():
                kw: dict[str, Any] = {"ifname": f"probe-{kind}"[:15], "kind": kind}
                for k, v in extra.items():
                    if k == "link":
                        idx = ipr.link_lookup(ifname=v)
                        if not idx:
                            break
                        kw["link"] = idx[0]
                    elif k == "peer":
                        kw["peer"] = {"ifname": v}
                    else:
                        kw[k] = v
                try:
                    ipr.link("add", **kw)
                    result[kind] = True
                    ipr.link("del", ifname=kw["ifname"])
                except Exception:  # noqa: BLE001 - any failure means "not here"
                    result[kind] = False
        finally:
            ipr.close()

    try:
        netns.create(path)
        t = threading.Thread(target=probe, name="cove-probe")
        t.start()
        t.join()
    finally:
        try:
            netns.delete(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def openvswitch() -> bool:
    return os.path.isdir("/sys/module/openvswitch") and shutil.which("ovs-vsctl") is not None


def require(kind: str) -> None:
    """Raise Unavailable naming the kernel option if ``kind`` links cannot be made here."""
    if not link_kinds().get(kind, False):
        option = LINK_KINDS[kind][0]
        raise Unavailable(f"the kernel lacks {kind} links ({option}); cove cannot create this network here")
