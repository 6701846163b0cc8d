"""``--sysctl`` / ``HostConfig.Sysctls``: the namespaced ``net.*`` keys, set inside the container.

runc writes them (OCI ``linux.sysctl``) from the container's init, after it joined the
container's network namespace, so they change that namespace only.  A key is accepted
when it names a sysctl a fresh network namespace has: the list is read once from
``/proc/sys/net`` by a child in a new, empty namespace (what the kernel shows there is
per namespace; keys of the host's namespace only, such as ``net.core.rmem_max`` on older
kernels, are not in it).  Per-interface keys (``net.ipv4.conf.eth0.rp_filter``) are
checked against the ``default`` interface's, since the container's interfaces do not
exist yet.  Docker's other namespaced keys (``kernel.shm*``, ``kernel.msg*``, ``fs.mqueue.*``)
are refused, as is any ``net.*`` key with ``--network host`` (it would change the host)
or ``container:NAME`` (it would change another container).
"""

from __future__ import annotations

import functools
import re
import subprocess

from ..errors import InvalidArgument

_KEY = re.compile(r"^net(\.[A-Za-z0-9_-]+)+$")
_PER_IF = re.compile(r"^(net\.ipv[46]\.(?:conf|neigh))\.([^.]+)\.(.+)$")


@functools.lru_cache(maxsize=1)
def namespaced_keys() -> frozenset[str]:
    """The ``net.*`` sysctls of a new network namespace (read once)."""
    out = subprocess.run(["unshare", "--net", "find", "/proc/sys/net", "-type", "f"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise InvalidArgument(f"invalid Sysctls: cannot list the namespaced sysctls: {out.stderr.strip()}")
    return frozenset(line[len("/proc/sys/"):].replace("/", ".") for line in out.stdout.split())


def check(sysctls: object, network_mode: str) -> dict[str, str]:
    """``HostConfig.Sysctls`` checked: a 400 naming the first key cove will not set."""
    if sysctls is None:
        return {}
    if not isinstance(sysctls, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in sysctls.items()):
        raise InvalidArgument("invalid Sysctls: expected an object mapping keys to strings")
    if not sysctls:
        return {}
    mode = network_mode or "default"
    for key, value in sysctls.items():
        if not key.startswith("net."):
            raise InvalidArgument(f"invalid Sysctls key {key!r}: cove sets the namespaced net.* sysctls only")
        if mode == "host":
            raise InvalidArgument(f"invalid Sysctls key {key!r}: net.* sysctls cannot be set with --network host "
                                  "(they would change the host's own network namespace)")
        if mode.startswith("container:"):
            raise InvalidArgument(f"invalid Sysctls key {key!r}: net.* sysctls cannot be set with --network "
                                  f"{mode} (they would change the other container's network namespace)")
        if not _KEY.match(key):
            raise InvalidArgument(f"invalid Sysctls key {key!r}: not a sysctl name")
        if any(ord(c) < 0x20 for c in value):
            raise InvalidArgument(f"invalid Sysctls value for {key!r}: control characters are not allowed")
        m = _PER_IF.match(key)
        probe = f"{m.group(1)}.default.{m.group(3)}" if m and m.group(2) not in ("all", "default") else key
        if probe not in namespaced_keys():
            raise InvalidArgument(f"invalid Sysctls key {key!r}: not a sysctl of a container's network namespace")
    return dict(sysctls)
