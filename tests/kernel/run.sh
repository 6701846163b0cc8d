#!/bin/sh
# Run tests inside a guest Linux kernel that has what this machine's kernel may lack (ipvlan,
# 802.1q, dummy, bonding, bridge VLAN filtering, Open vSwitch, nftables), booted on the host's
# root filesystem. Two backends, chosen at run time (see README.md beside this file):
#   uml   Debian's User-Mode Linux (linux.uml), fastest where it boots;
#   qemu  Debian's own kernel (linux-image-6.1.0-*-amd64, never installed on the host) under
#         QEMU, with KVM when /dev/kvm is real KVM, else TCG.
#
#   tests/kernel/run.sh [pytest args...]        (default: -q tests/kernel)
#   tests/kernel/run.sh --exec CMD [ARGS...]    run CMD in the guest instead of pytest (debugging)
#
# Environment: COVE_KERNEL_BACKEND=auto|uml|qemu (default auto: qemu in strict runs -- CI or
# COVE_STRICT=1 -- so every machine runs the same tests; otherwise uml when a cached probe says it
# boots here, else qemu), COVE_KERNEL_TIMEOUT (seconds for the whole guest, default 900),
# COVE_KERNEL_MEM (default 1G), COVE_KERNEL_OVS=0 (explicit opt-out: no Open vSwitch, its tests
# skip; otherwise failing to provide it fails the run), COVE_KERNEL_CONSOLE=1 (copy the guest's
# kernel console to stderr), COVE_KERNEL_ACCEL=kvm|tcg and COVE_KERNEL_SMP (qemu only).
#
# Isolation: the guest is its own kernel, so every link, rule and namespace it makes dies with
# it, and it has no network device at all. The host's root is mounted read-only and the guest
# runs on an overlay of it whose writes land in the guest's RAM; the only host directory it can
# write is the result directory made here (see init.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
repo=$(pwd)
started=$(date +%s)
cache=/var/cache/cove-kernel
say() { echo "kernel: $*" >&2; }
die() { say "$*"; exit 1; }

# install the packages of the tools named "tool:package ..." that are missing (plain tools only)
need_tools() {
  missing=""
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
  done
  [ -z "$missing" ] && return 0
  say "installing$missing"
  apt-get update -qq >/dev/null &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# apt-get download PACKAGES... into DIR (an apt-get update and a second try when it fails)
download() {
  dir=$1; shift
  mkdir -p "$dir"
  get() { (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$@" >/dev/null 2>&1); }
  get "$@" || { apt-get update -qq >/dev/null 2>&1 && get "$@"; }
}

backend=${COVE_KERNEL_BACKEND:-auto}
case "$backend" in
  auto|uml|qemu) ;;
  *) die "COVE_KERNEL_BACKEND must be auto, uml or qemu (not '$backend')";;
esac
mkdir -p "$cache"
need_tools modprobe:kmod iptables-legacy:iptables nft:nftables
[ -x .venv/bin/python ] || ./scripts/install.sh

results=""
uml_pids=""
cleanup() {
  # linux.uml is a session leader with one host process per guest address space: after a
  # timeout, kill whatever of it is left, then drop the result directories. The script's exit
  # status is kept (dash would otherwise exit with the status of the trap's last command).
  status=$?
  for pid in $uml_pids; do kill -KILL "-$pid" 2>/dev/null || true; done
  for r in $results; do
    pid=$(cat "$r/uml/cove/pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then kill -KILL "-$pid" 2>/dev/null || true; fi
    rm -rf "$r"
  done
  exit "$status"
}
trap cleanup EXIT
# a fresh result directory in $made (the one host path a guest may write) holding ARGS one per line
new_result() {
  made=$(mktemp -d "${TMPDIR:-/tmp}/cove-kernel-XXXXXX")
  results="$results $made"
  case "$repo$made" in
    *[[:space:]]*) die "paths with blanks cannot go on the kernel command line: $repo $made";;
  esac
  printf '%s\n' "$@" > "$made/args"
  # the test policy of the host run goes into the guest too (strict skips, the stage's count floor)
  for v in CI COVE_STRICT COVE_STAGE COVE_MIN_TESTS; do
    eval "val=\${$v-}"
    case "$val" in *[!A-Za-z0-9_.-]*) die "$v has characters the guest cannot take: $val";; esac
    if [ -n "$val" ]; then printf 'export %s=%s\n' "$v" "$val"; fi
  done > "$made/env"
}

# --- Open vSwitch, for the guest and never for the host ---------------------------------------
# The two .debs are unpacked into the cache and the guest links them into its own (RAM) root,
# so no service is installed or started here. Only the plain shared libraries they link are
# installed with apt-get (they run nothing).
ovs_root=-
provide_ovs() {
  if [ -x /usr/lib/openvswitch-switch/ovs-vswitchd ] && command -v ovsdb-server >/dev/null 2>&1; then
    ovs_root=/; return 0
  fi
  if [ ! -f "$cache/ovs/.complete" ]; then
    libs=""
    for p in libbpf1 libxdp1 libnuma1 libunbound8 libcap-ng0 libssl3; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || libs="$libs $p"
    done
    say "fetching Open vSwitch for the guest"
    rm -rf "$cache/ovs.new"
    download "$cache/ovs.new/debs" openvswitch-common openvswitch-switch || return 1
    if [ -n "$libs" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $libs >/dev/null 2>&1 || return 1
    fi
    for d in "$cache"/ovs.new/debs/*.deb; do dpkg-deb -x "$d" "$cache/ovs.new/root" || return 1; done
    rm -rf "$cache/ovs.new/root/usr/share/doc" "$cache/ovs.new/root/usr/share/man" "$cache/ovs.new/debs"
    touch "$cache/ovs.new/.complete"
    rm -rf "$cache/ovs" && mv "$cache/ovs.new" "$cache/ovs"
  fi
  ovs_root="$cache/ovs/root"
}
if [ "${COVE_KERNEL_OVS:-1}" = 0 ]; then
  say "COVE_KERNEL_OVS=0: no Open vSwitch in the guest, its tests will skip"
else
  provide_ovs || die "could not provide Open vSwitch to the guest (apt-get download failed?); \
its tests cannot run. COVE_KERNEL_OVS=0 skips them explicitly (hand runs only)"
fi

# --- User-Mode Linux --------------------------------------------------------------------------
uml_ready() {
  need_tools linux.uml:user-mode-linux || return 1
  uml_kver=$(linux.uml --version 2>/dev/null | head -n 1)
  [ -d "/usr/lib/uml/modules/$uml_kver" ] || { say "no modules for UML kernel '$uml_kver'"; return 1; }
}

# boot_uml RESULT LIMIT: sets rc (linux.uml's exit status)
boot_uml() {
  mkdir -p "$1/uml"
  rc=0
  timeout -k 10 "$2" linux.uml mem="${COVE_KERNEL_MEM:-1G}" \
    rootfstype=hostfs rootflags=/ ro init="$here/init.sh" uml_dir="$1/uml" umid=cove \
    cove_guest=uml cove_result="$1" cove_modules="/usr/lib/uml/modules/$uml_kver" cove_ovs="$ovs_root" \
    random.trust_cpu=on con=null con0=null,fd:2 </dev/null >/dev/null 2>"$1/console" || rc=$?
}

# Does UML boot here? Some CPUs break it before init runs (on Intel AMX, UML 6.1 dies with
# "ptrace set fp regs failed"): boot it once with a trivial command and keep the verdict per
# host kernel, CPU and UML build, so later runs decide at once.
uml_probe() {
  uml_ready || { uml_why="user-mode-linux is not available"; return 1; }
  key=$( { uname -r; grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo
           dpkg-query -W user-mode-linux 2>/dev/null; echo "$uml_kver"; } | sha256sum | cut -c1-16)
  verdict="$cache/uml-probe/$key"
  if [ ! -f "$verdict" ]; then
    say "probing whether User-Mode Linux $uml_kver boots on this machine"
    new_result --exec true
    r=$made
    boot_uml "$r" 60
    mkdir -p "$cache/uml-probe"
    if [ "$(cat "$r/rc" 2>/dev/null)" = 0 ]; then
      echo ok > "$verdict.new"
    else
      { echo fail; grep -m2 -E 'errno|Kernel panic' "$r/console" || tail -n 3 "$r/console"; } > "$verdict.new"
    fi
    mv "$verdict.new" "$verdict"
  fi
  [ "$(head -n 1 "$verdict")" = ok ] && return 0
  uml_why="it does not boot on this machine (probe cached in $verdict): $(tail -n +2 "$verdict" | tr '\n' ' ')"
  return 1
}

# --- QEMU with Debian's kernel ----------------------------------------------------------------
kernel_package() {
  if [ -n "${COVE_KERNEL_PACKAGE:-}" ]; then echo "$COVE_KERNEL_PACKAGE"; return; fi
  p=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
  if [ -z "$p" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    p=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
  fi
  if [ -z "$p" ]; then   # offline: the newest kernel already in the cache
    p=$(ls -d "$cache"/linux-image-*/.complete 2>/dev/null | sed 's#.*/\(linux-image-[^/]*\)/.complete#\1#' | sort -V | tail -n 1)
  fi
  echo "$p"
}

# the kernel package unpacked (never installed) into $kdir: root/ (dpkg-deb -x, depmod run on
# it), vmlinux (the ELF kernel, for PVH direct boot)
provide_kernel() {
  pkg=$(kernel_package)
  [ -n "$pkg" ] || die "cannot tell which kernel package linux-image-amd64 means (apt-cache depends); set COVE_KERNEL_PACKAGE"
  kdir="$cache/$pkg"
  if [ ! -f "$kdir/.complete" ]; then
    say "fetching $pkg for the guest (unpacked into $kdir, not installed)"
    rm -rf "$kdir.new"
    download "$kdir.new" "$pkg" || die "apt-get download $pkg failed"
    dpkg-deb -x "$kdir.new"/*.deb "$kdir.new/root"
    rm -rf "$kdir.new"/*.deb "$kdir.new/root/usr/share/doc"
    v=$(ls "$kdir.new/root/lib/modules")
    depmod -b "$kdir.new/root" "$v"
    python3 "$here/vmlinux.py" "$kdir.new/root/boot/vmlinuz-$v" "$kdir.new/vmlinux"
    touch "$kdir.new/.complete"
    rm -rf "$kdir" && mv "$kdir.new" "$kdir"
    for old in "$cache"/linux-image-*; do [ "$old" = "$kdir" ] || rm -rf "$old"; done
  fi
  qemu_kver=$(ls "$kdir/root/lib/modules")
}

# busybox-static, unpacked into the cache (the host's own busybox may be the dynamic one)
provide_busybox() {
  if [ ! -f "$cache/busybox/.complete" ]; then
    rm -rf "$cache/busybox.new"
    download "$cache/busybox.new" busybox-static || die "apt-get download busybox-static failed"
    dpkg-deb -x "$cache"/busybox.new/*.deb "$cache/busybox.new/root"
    rm -f "$cache"/busybox.new/*.deb
    touch "$cache/busybox.new/.complete"
    rm -rf "$cache/busybox" && mv "$cache/busybox.new" "$cache/busybox"
  fi
  busybox="$cache/busybox/root/bin/busybox"
}

# the initramfs: busybox, initramfs-init.sh as /init, and the modules stage 1 needs with their
# dependencies (from modules.dep) in load order. Named by a hash of its inputs: rebuilt when
# the script, busybox or the kernel changes.
initramfs_modules="virtio_pci 9pnet_virtio 9p overlay"
provide_initramfs() {
  mdir="$kdir/root/lib/modules/$qemu_kver"
  key=$( { cat "$here/initramfs-init.sh" "$busybox"; echo "$qemu_kver $initramfs_modules"; } | sha256sum | cut -c1-16)
  initrd="$kdir/initramfs-$key.cpio"
  [ -f "$initrd" ] && return 0
  say "building the guest's initramfs"
  b="$kdir/initramfs.build"
  rm -rf "$b" && mkdir -p "$b/bin" "$b/modules.d"
  cp "$busybox" "$b/bin/busybox"
  cp "$here/initramfs-init.sh" "$b/init"
  chmod 0755 "$b/init" "$b/bin/busybox"
  : > "$b/modules"
  for m in $initramfs_modules; do
    line=$(grep -E "/$m\.ko:" "$mdir/modules.dep") || die "module $m not in $mdir/modules.dep"
    # modules.dep lists a module's dependencies with the deepest last: load them in reverse
    for f in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
      name=$(basename "$f")
      grep -qx "$name" "$b/modules" && continue
      cp "$mdir/$f" "$b/modules.d/$name"
      echo "$name" >> "$b/modules"
    done
  done
  (cd "$b" && find . | cpio -o -H newc -R 0:0 --quiet) > "$initrd.new"
  mv "$initrd.new" "$initrd"
  rm -rf "$b"
  for old in "$kdir"/initramfs-*.cpio; do [ "$old" = "$initrd" ] || rm -f "$old"; done
}

# KVM only when /dev/kvm is the real thing: a paravirtualised kvm_pvm does not boot a stock
# kernel, so it means TCG (QEMU's own emulation)
qemu_accel() {
  case "${COVE_KERNEL_ACCEL:-}" in
    kvm|tcg) echo "$COVE_KERNEL_ACCEL"; return;;
    "") ;;
    *) die "COVE_KERNEL_ACCEL must be kvm or tcg";;
  esac
  if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
     { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    echo kvm
  else
    echo tcg
  fi
}

qemu_ready() {
  need_tools qemu-system-x86_64:qemu-system-x86 cpio:cpio || die "cannot install qemu-system-x86"
  provide_kernel
  provide_busybox
  provide_initramfs
  accel=$(qemu_accel)
}

# boot_qemu RESULT LIMIT: sets rc (QEMU's exit status)
boot_qemu() {
  smp=${COVE_KERNEL_SMP:-1}
  if [ "$accel" = kvm ]; then how="-accel kvm -cpu host"; else how="-accel tcg,thread=multi -cpu max"; fi
  rc=0
  timeout -k 10 "$2" qemu-system-x86_64 -nodefaults -no-user-config -nic none -display none -no-reboot \
    -machine pc -m "${COVE_KERNEL_MEM:-1G}" -smp "$smp" $how \
    -serial "file:$1/console" \
    -kernel "$kdir/vmlinux" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 softlockup_panic=1 quiet mitigations=off cove_guest=qemu cove_result=$1 cove_init=$here/init.sh cove_modules=$kdir/root/lib/modules/$qemu_kver cove_ovs=$ovs_root" \
    -fsdev "local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev "local,id=result,path=$1,security_model=passthrough,multidevs=remap" \
    -device virtio-9p-pci,fsdev=result,mount_tag=result \
    </dev/null >/dev/null 2>"$1/qemu.log" || rc=$?
}

# --- choose the backend -------------------------------------------------------------------------
uml_why=""
case "$backend" in
  uml)
    uml_probe || die "COVE_KERNEL_BACKEND=uml, but User-Mode Linux cannot be used: $uml_why
kernel: use COVE_KERNEL_BACKEND=qemu (or auto) on this machine";;
  auto)
    if [ -n "${CI:-}" ] || [ "${COVE_STRICT:-}" = 1 ]; then
      # strict runs (CI) take the one backend that boots on every machine and has every feature the
      # tests use: under UML (no nftables) the nftables tests would be skipped, which strict mode
      # turns into a failure on exactly the machines where UML boots (AMD), and nowhere else
      say "strict run: QEMU on every machine (User-Mode Linux lacks nftables; COVE_KERNEL_BACKEND=uml to choose it)"
      backend=qemu
    elif uml_probe; then backend=uml; else say "not using User-Mode Linux: $uml_why"; backend=qemu; fi;;
esac
if [ "$backend" = qemu ]; then qemu_ready; fi

if [ "$#" -eq 0 ]; then set -- -q tests/kernel; fi
exec_mode=0
if [ "$1" = --exec ]; then exec_mode=1; fi
new_result "$@"
result=$made
limit=${COVE_KERNEL_TIMEOUT:-900}
booted=$(date +%s)
# A guest that dies or hangs before writing a result (seen once under TCG with two virtual CPUs:
# both soft-locked for 800 s; softlockup_panic=1 now ends such a guest at once) is booted once
# more, saying so; a second failure fails the stage. Test failures are never retried.
attempt=1
while :; do
  if [ "$backend" = uml ]; then
    say "booting User-Mode Linux $uml_kver"
    boot_uml "$result" "$limit"
  else
    say "booting QEMU ($accel, ${COVE_KERNEL_SMP:-1} CPUs) with $pkg"
    boot_qemu "$result" "$limit"
  fi
  if [ -f "$result/rc" ] || [ "$attempt" -ge "${COVE_KERNEL_TRIES:-2}" ]; then break; fi
  say "the $backend guest wrote no result (exit status $rc) on attempt $attempt; the end of its console:"
  tail -n 15 "$result/console" >&2
  attempt=$((attempt + 1))
  new_result "$@"
  result=$made
  say "booting the guest once more (attempt $attempt of ${COVE_KERNEL_TRIES:-2})"
done
if [ "${COVE_KERNEL_CONSOLE:-0}" = 1 ]; then cat "$result/console" >&2; fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  say "the guest did not finish within ${limit}s and was killed"
fi
if [ -s "$result/modprobe.log" ]; then
  say "$(tr '\n' ' ' < "$result/modprobe.log")"
fi
if [ ! -f "$result/rc" ]; then
  say "the $backend guest wrote no result (exit status $rc); the end of its console:"
  tail -n 25 "$result/console" >&2
  [ -s "$result/qemu.log" ] && cat "$result/qemu.log" >&2
  if [ -f "$result/output" ]; then say "partial output:"; cat "$result/output"; fi
  exit 1
fi
now=$(date +%s)
say "$backend guest done in $((now - booted))s ($(cat "$result/timing" 2>/dev/null)), $((now - started))s in all"
cat "$result/output"
guest_rc=$(cat "$result/rc")
if [ "$exec_mode" = 1 ]; then exit "$guest_rc"; fi
# how many tests ran, from pytest's JUnit XML: a run that ran none fails whatever pytest said
counts=$(python3 - "$result/junit.xml" <<'EOF' || echo "0 0 0 0 0"
import sys
import xml.etree.ElementTree as ET
t = f = e = s = 0
for suite in ET.parse(sys.argv[1]).getroot().iter("testsuite"):
    t += int(suite.get("tests", 0)); f += int(suite.get("failures", 0))
    e += int(suite.get("errors", 0)); s += int(suite.get("skipped", 0))
print(t - s, t - s - f - e, f, e, s)
EOF
)
set -- $counts
say "$1 tests ran in the $backend guest: $2 passed, $3 failed, $4 errors; $5 skipped"
if [ "$1" = 0 ]; then
  say "no test ran in the guest (pytest exit status $guest_rc): that is a failure"
  exit 1
fi
exit "$guest_rc"
