#!/bin/sh
# Run tests inside a User-Mode Linux kernel: Debian's user-mode-linux, a whole 6.1 kernel with
# ipvlan, 802.1q, dummy, bonding, bridge VLAN filtering and openvswitch as modules, booted on
# the host's root filesystem. See README.md beside this file.
#
#   tests/uml/run.sh [pytest args...]        (default: -q tests/uml)
#   tests/uml/run.sh --exec CMD [ARGS...]    run CMD in the guest instead of pytest (debugging)
#
# Environment: COVE_UML_TIMEOUT (seconds for the whole guest, default 600), COVE_UML_MEM
# (default 1G), COVE_UML_OVS=0 (do not provide Open vSwitch), COVE_UML_CONSOLE=1 (copy the
# guest's kernel console to stderr).
#
# Isolation: the guest is its own kernel, so every link, rule and namespace it makes dies with
# it, and it has no network device at all (no eth0=/vec0= option). The host's root is mounted
# read-only and the guest runs on an overlay of it whose writes land in the guest's RAM; the
# only host directory it can write is the result directory made here (see init.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
repo=$(pwd)
started=$(date +%s)

need=""
command -v linux.uml >/dev/null 2>&1 || need="$need user-mode-linux"
command -v modprobe >/dev/null 2>&1 || need="$need kmod"
command -v iptables-legacy >/dev/null 2>&1 || need="$need iptables"
if [ -n "$need" ]; then
  echo "uml: installing$need" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -x .venv/bin/python ] || ./scripts/install.sh

kver=$(linux.uml --version 2>/dev/null | head -n 1)
if [ ! -d "/usr/lib/uml/modules/$kver" ]; then
  echo "uml: no modules for UML kernel '$kver' under /usr/lib/uml/modules" >&2
  exit 1
fi

# Open vSwitch for the guest, never for the host: the two .debs are unpacked into a cache and
# the guest copies them into its own (RAM) root, so no service is installed or started here.
# Only the plain shared libraries they link are installed with apt-get (they run nothing).
ovs_root=""
provide_ovs() {
  cache=/var/cache/cove-uml
  if [ -x /usr/lib/openvswitch-switch/ovs-vswitchd ] && command -v ovsdb-server >/dev/null 2>&1; then
    ovs_root=/; return 0
  fi
  if [ ! -f "$cache/ovs/.complete" ]; then
    libs=""
    for p in libbpf1 libxdp1 libnuma1 libunbound8 libcap-ng0 libssl3; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || libs="$libs $p"
    done
    rm -rf "$cache/ovs.new" && mkdir -p "$cache/ovs.new/debs" || return 1
    get() {
      (cd "$cache/ovs.new/debs" &&
       apt-get download -qq -o APT::Sandbox::User=root openvswitch-common openvswitch-switch >/dev/null 2>&1) &&
      { [ -z "$libs" ] ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $libs >/dev/null 2>&1; }
    }
    echo "uml: fetching Open vSwitch for the guest" >&2
    get || { apt-get update -qq >/dev/null 2>&1 && get; } || return 1
    for d in "$cache"/ovs.new/debs/*.deb; do dpkg-deb -x "$d" "$cache/ovs.new/root" || return 1; done
    rm -rf "$cache/ovs.new/root/usr/share/doc" "$cache/ovs.new/root/usr/share/man" "$cache/ovs.new/debs"
    touch "$cache/ovs.new/.complete"
    rm -rf "$cache/ovs" && mv "$cache/ovs.new" "$cache/ovs"
  fi
  ovs_root="$cache/ovs/root"
}
if [ "${COVE_UML_OVS:-1}" != 0 ]; then
  provide_ovs || { ovs_root=""; echo "uml: Open vSwitch not available; its tests will skip" >&2; }
fi

result=$(mktemp -d "${TMPDIR:-/tmp}/cove-uml-XXXXXX")
case "$repo$result$ovs_root" in
  *[[:space:]]*) echo "uml: paths with blanks cannot go on the kernel command line: $repo $result" >&2; exit 1;;
esac
cleanup() {
  # linux.uml is a session leader with one host process per guest address space: after a
  # timeout, kill whatever of it is left, then drop the result directory (and UML's pid file).
  pid=$(cat "$result/uml/cove/pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -KILL "-$pid" 2>/dev/null
  rm -rf "$result"
}
trap cleanup EXIT
if [ "$#" -eq 0 ]; then set -- -q tests/uml; fi
printf '%s\n' "$@" > "$result/args"
mkdir "$result/uml"
echo "uml: booting linux.uml $kver" >&2
booted=$(date +%s)
limit=${COVE_UML_TIMEOUT:-600}
rc=0
timeout -k 10 "$limit" linux.uml mem="${COVE_UML_MEM:-1G}" \
  rootfstype=hostfs rootflags=/ ro init="$here/init.sh" uml_dir="$result/uml" umid=cove \
  cove_result="$result" cove_ovs="${ovs_root:--}" random.trust_cpu=on \
  con=null con0=null,fd:2 </dev/null >/dev/null 2>"$result/console" || rc=$?
if [ "${COVE_UML_CONSOLE:-0}" = 1 ]; then cat "$result/console" >&2; fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "uml: the guest did not finish within ${limit}s and was killed" >&2
fi
if [ -s "$result/modprobe.log" ]; then
  echo "uml: $(tr '\n' ' ' < "$result/modprobe.log")" >&2
fi
if [ ! -f "$result/rc" ]; then
  echo "uml: the guest wrote no result (linux.uml exit status $rc); the end of its console:" >&2
  tail -n 25 "$result/console" >&2
  if [ -f "$result/output" ]; then echo "uml: partial output:" >&2; cat "$result/output"; fi
  exit 1
fi
now=$(date +%s)
echo "uml: guest done in $((now - booted))s ($(cat "$result/timing" 2>/dev/null)), $((now - started))s in all" >&2
cat "$result/output"
exit "$(cat "$result/rc")"
