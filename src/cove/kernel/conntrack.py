"""Forgetting conntrack entries, as Docker does when an address or a UDP port is released.

Through the ``conntrack`` tool, as before (moved here from ``engine/ports.py``
so that the engine reaches it through :class:`cove.kernel.api.Kernel`).  A
missing tool is skipped, as before.  Conntrack over netlink (pyroute2 has it)
is the next step, once ``make bench-ports`` has compared the two.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger("cove.kernel")


def forget_flows(*ips: str) -> None:
    """Delete the conntrack entries of addresses that are being released, as Docker does:
    a later container given the same address must not inherit their flows (and their NAT
    decision, made at a flow's first packet)."""
    conntrack = shutil.which("conntrack")
    if not conntrack:
        return
    # flows it started, flows to it (DNAT included); all deletions at once, in parallel
    jobs = [(flag, ip) for ip in ips if ip for flag in ("--orig-src", "--reply-src")]
    procs = [subprocess.Popen([conntrack, "-D", *(["-f", "ipv6"] if ":" in ip else []), flag, ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for flag, ip in jobs]
    for (flag, ip), proc in zip(jobs, procs):
        _, err = proc.communicate()
        if proc.returncode not in (0, 1):
            log.warning("conntrack -D %s %s: %s", flag, ip, err.strip())


def forget_udp_port(port: int, family: str) -> None:
    """Delete the UDP entries to host port ``port`` (``family``: ipv4 or ipv6)."""
    conntrack = shutil.which("conntrack")
    if not conntrack:
        return
    r = subprocess.run([conntrack, "-D", "-f", family, "-p", "udp", "--orig-port-dst", str(port)],
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        log.warning("conntrack -D for udp/%d: %s", port, r.stderr.strip())
