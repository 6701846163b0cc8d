"""cove: Docker's container networking, rebuilt in Python.

The package is layered; each layer only calls the ones below it:

- :mod:`cove.model`, :mod:`cove.ipam`: pure data and allocation, no I/O.
- :mod:`cove.store`: persistent key/value state (SQLite here, etcd later).
- :mod:`cove.kernel`: the only code that talks netlink (namespaces, links, routes).
- :mod:`cove.firewall`: one file per backend (nftables, iptables-legacy, none).
- :mod:`cove.drivers`: one file per network driver (bridge, host, null, ...).
- :mod:`cove.runtime`: container processes (namespaces, root filesystems, exec).
- :mod:`cove.engine`: turns desired state into kernel state, with rollback.
- :mod:`cove.daemon`, :mod:`cove.cli`: the Docker-shaped HTTP API and its client.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
