"""The only code that touches the kernel's network stack: namespaces and netlink."""
