#!/bin/sh
# `make bench-refs`: install the reference systems the benchmark compares cove with, from
# Debian, and matplotlib (the `bench` extra, pinned in pyproject.toml) into the venv for the
# plots.  By hand only: never from CI or tests.  No service is started (a policy-rc.d forbids
# it while apt runs); the bench starts private daemons inside throwaway namespaces (bench/refs/*-sandbox.sh).
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
# Debian's docker.io (and containerd) start their daemon from the postinst, in the machine's own
# network namespace: a policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d from
# starting any service.  One that is already there is left alone; ours is removed afterwards.
POLICY=/usr/sbin/policy-rc.d
ours=""
cleanup_policy() { [ -z "$ours" ] || rm -f "$POLICY"; }
if [ -n "$missing" ]; then
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# bench/refs/install.sh: no service starts while it installs\nexit 101\n' >"$POLICY"
    chmod 0755 "$POLICY"
    ours=1
    trap cleanup_policy EXIT
    trap 'exit 130' INT TERM HUP
  fi
  echo "bench-refs: apt packages:$missing" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends $missing >/dev/null
  cleanup_policy; ours=""
  # whatever still started anyway (no policy-rc.d honoured, a socket activation): report it
  for d in dockerd containerd; do
    if pids=$(pgrep -x "$d"); then
      echo "bench-refs: WARNING: $d is running in this namespace (pids: $(echo $pids)); stop it by pid" >&2
    fi
  done
fi
# NO_PIP=1: leave the venv alone (a venv shared by several worktrees keeps its editable install)
# pip writes its own `cove` script over the -S launcher of scripts/install.sh (site and re at
# every start: the CLI rows of a bench run measured pip's script, ~+10-15 ms a command), so
# scripts/install.sh runs again after it: it puts the launcher back (its other steps are no-ops).
if [ -z "${NO_PIP:-}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test,bench]'
  VENV="$VENV" ./scripts/install.sh
fi
echo "bench-refs: $(dockerd --version 2>/dev/null); $(podman --version 2>/dev/null);" \
  "netavark $(/usr/lib/podman/netavark --version 2>/dev/null | cut -d' ' -f2);" \
  "CNI $(ls /usr/lib/cni 2>/dev/null | wc -l) plugins; $(iperf3 --version 2>/dev/null | head -1)"
