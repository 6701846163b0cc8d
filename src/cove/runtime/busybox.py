"""A busybox root filesystem tarball, as ``docker import`` takes one (demo, tests, users).

``make_busybox_tar(path)`` packs Debian's busybox-static (``/bin/busybox``) with
a symlink per applet (``busybox --list``: sh, ls, cat, ip, ping, sleep,
hostname, ps, ...) and the empty directories a container needs (etc, proc,
sys, dev, tmp, ...), plus a minimal /etc/passwd and /etc/group.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

DIRS = ("bin", "dev", "etc", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "usr/bin", "var")
FILES = {"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"}


def busybox_path() -> str:
    return shutil.which("busybox") or "/bin/busybox"


def make_busybox_tar(path: str) -> str:
    """Write the tarball to ``path``; return ``path``."""
    busybox = busybox_path()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        for d in DIRS:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type = tarfile.SYMTYPE
                info.linkname = "busybox"
                tar.addfile(info)
        for name, text in FILES.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
