#!/bin/sh
# Idempotent set-up on Debian 12 as root: the apt packages cove uses, and a virtual
# environment in .venv with cove installed (editable) and its pinned dependencies.
set -eu
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

# Debian packages: the kernel's user-space tools, libnftables' Python binding,
# busybox-static (the rootfs the demo and the tests turn into an image), runc (the OCI
# runtime containers run with: a binary, no service, no maintainer scripts); graphviz draws
# `cove graph`, chromium is the browser of the `cove ui` test; etcd-server/etcd-client are the
# cluster store the overlay tests start on loopback inside their sandbox (Debian's postinst does
# not start a service where policy-rc.d forbids it; the tests never use a system etcd); podman
# (with conmon) runs containers on cove networks through cove-netavark in its integration test;
# docker-compose (1.29.2, Python, no dockerd: installed without recommends) drives cove in
# tests/integration/test_compose.py and test_compose_front.py; containerd (with ctr and its runc
# shim) runs `ctr run --cni` against cove-cni in tests/integration/test_ctr_cni.py, which starts its
# own containerd in a private mount namespace inside the sandbox (never the system service).
PKGS="python3 python3-venv python3-nftables nftables iptables iproute2 util-linux
      busybox-static kmod tcpdump conntrack procps bridge-utils make runc graphviz chromium
      etcd-server etcd-client podman conmon docker-compose containerd"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install: apt packages:$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The docker CLI for the compatibility tests (tests/integration/test_docker_*.py,
# test_templates_vs_docker.py): Debian's docker.io client, 20.10 (API 1.41). The package's
# postinst would enable and start dockerd, so it is never installed: the .deb is fetched with
# `apt-get download` into a cache, only its client binary is unpacked, and the venv gets a
# symlink to it. The tests use $VENV/bin/docker (or COVE_DOCKER_CLI), never /usr/local/bin/docker.
DOCKER_CACHE=${COVE_DOCKER_CACHE:-/var/cache/cove-docker}
if [ ! -x "$DOCKER_CACHE/bin/docker" ]; then
  echo "install: docker CLI (docker.io client only, into $DOCKER_CACHE; dockerd is never installed)" >&2
  mkdir -p "$DOCKER_CACHE/deb" "$DOCKER_CACHE/bin"
  if ! ls "$DOCKER_CACHE"/deb/docker.io_*.deb >/dev/null 2>&1; then
    (cd "$DOCKER_CACHE/deb" && { apt-get download -q docker.io >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get download -q docker.io >/dev/null; }; })
  fi
  unpack=$(mktemp -d "$DOCKER_CACHE/unpack.XXXXXX")
  deb=$(ls "$DOCKER_CACHE"/deb/docker.io_*.deb | tail -n 1)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$unpack" ./usr/bin/docker
  mv "$unpack/usr/bin/docker" "$DOCKER_CACHE/bin/docker"
  rm -rf "$unpack"
fi

# Docker's default seccomp profile, as Debian's golang-github-containers-common ships it
# (/usr/share/containers/seccomp.json).  That package is not installed: it depends on
# containernetworking-plugins, whose postinst enables a systemd service.  Its files are
# unpacked into a cache instead, where cove looks when /usr/share/containers has none.
COMMON=/var/cache/cove-containers-common
if [ ! -f /usr/share/containers/seccomp.json ] && [ ! -f "$COMMON/usr/share/containers/seccomp.json" ]; then
  echo "install: Docker's seccomp profile (golang-github-containers-common) into $COMMON" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq golang-github-containers-common 2>/dev/null) ||
    { apt-get update -qq; (cd "$tmp" && apt-get download -qq golang-github-containers-common); }
  mkdir -p "$COMMON"
  dpkg-deb -x "$tmp"/golang-github-containers-common_*.deb "$COMMON"
  rm -rf "$tmp"
fi

# The venv uses Debian's python3 so that its nftables binding (a ctypes wrapper of
# libnftables.so.1, shipped only as a Debian package) matches; only that one module
# is linked in, not the whole of dist-packages.
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn /usr/lib/python3/dist-packages/nftables "$site/nftables"
ln -sfn "$DOCKER_CACHE/bin/docker" "$VENV/bin/docker"

stamp="$VENV/.cove-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

# Bytecode precompiled once here: the environment may set PYTHONDONTWRITEBYTECODE, and
# a CLI run that compiles cove's modules costs several times one that loads them.
"$VENV/bin/python" -m compileall -q -j 0 src/cove >/dev/null

# The `cove` launcher, replacing pip's generated script (which imports `re` and runs with
# `site`): Python with -S, cove's package directory on sys.path, then cove.cli.fast.  The
# fast path imports only the C modules _socket and _json besides cove.cli.wire (cove.cli.client
# only for errors and autostart) and leaves with posix._exit once its output is flushed; it
# runs site.main() itself (site-packages, .pth files) when it hands over to click.  ~4 ms of
# each CLI run (bench/cli_overhead.py).  cove's directory takes the place of the script's own
# (.venv/bin: no modules there) at the head of sys.path: the first import of cove then lists
# one directory, not three (.venv/bin, lib-dynload, cove's).
pkg_dir=$("$VENV/bin/python" -c 'import cove, os; print(os.path.dirname(os.path.dirname(os.path.abspath(cove.__file__))))')
venv_bin=$(cd "$VENV/bin" && pwd)
cat > "$VENV/bin/cove.new" <<LAUNCHER
#!$venv_bin/python3 -S
import sys
sys.path[0:0 if sys.flags.safe_path else 1] = ["$pkg_dir"]
from cove.cli.fast import launch
launch()
LAUNCHER
chmod 755 "$VENV/bin/cove.new"
mv -f "$VENV/bin/cove.new" "$VENV/bin/cove"
