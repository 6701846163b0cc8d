#!/bin/sh
# `make bench-refs`: install the reference systems the benchmark compares cove with, from
# Debian, and matplotlib (the `bench` extra, pinned in pyproject.toml) into the venv for the
# plots.  By hand only: never from CI or tests.  Services are not started by this script;
# the bench starts private daemons inside throwaway namespaces (bench/refs/*-sandbox.sh).
set -eu
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
if [ -n "${CI:-}" ]; then
  echo "bench-refs: refusing to run under CI (the references are for benchmarks by hand)" >&2
  exit 2
fi
# docker.io: dockerd 20.10 (+ containerd, runc); podman with netavark + aardvark-dns;
# the CNI reference plugins (/usr/lib/cni); iperf3 for the data path; busybox-static for images.
PKGS="docker.io podman netavark aardvark-dns containernetworking-plugins iperf3 busybox-static dnsperf dnsmasq-base
      runc conmon iproute2 util-linux"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bench-refs: apt packages:$missing" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends $missing >/dev/null
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test,bench]'
echo "bench-refs: $(dockerd --version 2>/dev/null); $(podman --version 2>/dev/null);" \
  "netavark $(/usr/lib/podman/netavark --version 2>/dev/null | cut -d' ' -f2);" \
  "CNI $(ls /usr/lib/cni 2>/dev/null | wc -l) plugins; $(iperf3 --version 2>/dev/null | head -1)"
