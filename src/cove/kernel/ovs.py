"""Open vSwitch through ``ovs-vsctl``: the few verbs ``cove attach`` needs.

Not a hot path (one call per attach or detach), so a subprocess is fine and keeps
cove free of an OVSDB client.  Every call has ``--timeout`` so a stopped
``ovsdb-server`` or ``ovs-vswitchd`` gives an error instead of a hang.

Ports cove adds carry ``external_ids:cove-pw=<interface id>`` so reconcile can
find the ones no record owns (a daemon that died between ``add-port`` and its
store write) and delete them.

An OVS bridge with the kernel datapath also shows as a link of kind
``openvswitch`` (its internal port); so do its other internal ports, which is
why "is this a bridge" is asked of ovs-vsctl (``br-exists``).
"""

from __future__ import annotations

import json
import shutil
import subprocess

from ..errors import CoveError, Unavailable

VSCTL = "ovs-vsctl"
TIMEOUT = 10
#: the external_ids key that marks a port as cove's
EXTERNAL_ID = "cove-pw"


def available() -> bool:
    return shutil.which(VSCTL) is not None


def _vsctl(*args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(VSCTL)
    if tool is None:
        raise Unavailable("Open vSwitch: ovs-vsctl is not installed on this host")
    try:
        r = subprocess.run([tool, f"--timeout={TIMEOUT}", *args], capture_output=True, text=True,
                           timeout=TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"Open vSwitch: ovs-vsctl {' '.join(args)} did not answer "
                          f"within {TIMEOUT} s (is ovsdb-server/ovs-vswitchd running?)") from None
    if r.returncode not in ok_codes:
        msg = (r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").splitlines()[-1]
        raise CoveError(f"Open vSwitch: ovs-vsctl {' '.join(args)}: {msg}")
    return r


def bridge_exists(name: str) -> bool:
    """``ovs-vsctl br-exists``: 0 yes, 2 no."""
    return _vsctl("br-exists", name, ok_codes=(0, 2)).returncode == 0


def add_port(bridge: str, port: str, owner_id: str, tag: int | None = None) -> None:
    """Add ``port`` (an existing link) to ``bridge``, as an access port of VLAN ``tag`` if given."""
    args = ["add-port", bridge, port]
    if tag:
        args.append(f"tag={tag}")
    args += ["--", "set", "Port", port, f"external_ids:{EXTERNAL_ID}={owner_id}"]
    _vsctl(*args)


def del_port(port: str) -> None:
    """Delete ``port`` from whatever bridge holds it; nothing if it is not there."""
    _vsctl("--if-exists", "del-port", port)


def cove_ports() -> dict[str, str]:
    """Port name -> owner id of every port cove added (``external_ids:cove-pw``)."""
    r = _vsctl("--format=json", "--columns=name,external_ids", "list", "Port")
    out: dict[str, str] = {}
    for name, ids in json.loads(r.stdout or "{}").get("data", []):
        pairs = ids[1] if isinstance(ids, list) and len(ids) == 2 and ids[0] == "map" else []
        for key, value in pairs:
            if key == EXTERNAL_ID:
                out[name] = value
    return out


def port_to_bridge(port: str) -> str | None:
    r = _vsctl("port-to-br", port, ok_codes=(0, 1))
    return r.stdout.strip() or None if r.returncode == 0 else None
