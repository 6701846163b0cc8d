"""Extract the ELF ``vmlinux`` from an x86 bzImage, for QEMU's PVH direct boot.

    python3 tests/kernel/vmlinux.py BZIMAGE OUT

The boot protocol's setup header (2.08+) says where the compressed kernel is:
``setup_sects`` at 0x1f1 (the real-mode part is ``setup_sects + 1`` sectors of
512 bytes), ``payload_offset`` and ``payload_length`` at 0x248 and 0x24c, relative
to the start of the protected-mode part.  The payload's first bytes name its
format; Debian's kernels use xz.  The result must be an ELF file (checked).
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import struct
import subprocess
import sys


def payload(image: bytes) -> bytes:
    if image[0x202:0x206] != b"HdrS":
        raise SystemExit("vmlinux: not a bzImage (no HdrS setup header)")
    version = struct.unpack_from("<H", image, 0x206)[0]
    if version < 0x208:
        raise SystemExit(f"vmlinux: boot protocol {version:#x} has no payload fields (needs 2.08)")
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    return image[start:start + length]


def decompress(data: bytes) -> bytes:
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    raise SystemExit(f"vmlinux: unknown payload format (first bytes {data[:6].hex()})")


def main(src: str, out: str) -> None:
    with open(src, "rb") as f:
        elf = decompress(payload(f.read()))
    if not elf.startswith(b"\x7fELF"):
        raise SystemExit("vmlinux: the payload is not an ELF file")
    tmp = f"{out}.new"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: vmlinux.py BZIMAGE OUT")
    main(sys.argv[1], sys.argv[2])
