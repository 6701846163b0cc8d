#!/bin/sh
# PID 1 of the guest kernels booted by run.sh (which documents the kernel command line:
# cove_guest=uml|qemu, cove_result=DIR, cove_modules=DIR, cove_ovs=DIR|-).
#
# Stage 1 of User-Mode Linux (QEMU's is the initramfs's /init, initramfs-init.sh), on the host's
# root mounted read-only through hostfs: load overlayfs, build an overlay of that root whose upper
# layer is guest RAM, mount the result directory (the one host path the guest may write) into it,
# and pivot_root there. Stage 2, the same for both backends, in the overlay: proc, sysfs,
# devtmpfs, empty tmpfs on /run, /tmp, /var/tmp, /var/lib/cove, /etc/cove, /root and /lib/modules
# (so no host state shows through, and cove's own overlay mounts get a real upper filesystem),
# the guest kernel's modules, Open vSwitch's files when run.sh provided them, then pytest (or the
# --exec command). Output, exit code, JUnit XML and timings go to the result directory; then the
# guest powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
arg() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" /proc/cmdline; }
up_s() { cut -d' ' -f1 /proc/uptime; }
off() {
  sync
  poweroff -f 2>/dev/null || busybox poweroff -f 2>/dev/null || halt -f 2>/dev/null
  python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x4321FEDC)'
}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
repo=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${1:-}" != stage2 ]; then
  mount -t proc proc /proc
  result=$(arg cove_result)
  if [ -z "$result" ]; then echo "guest init: no cove_result= on the kernel command line" >&2; off; fi
  boot=$(up_s)
  mount -t tmpfs -o mode=0755 stage1 /run
  mkdir -p /run/ov/upper /run/ov/work /run/ov/root /run/km/lib/modules
  ln -s "$(arg cove_modules)" "/run/km/lib/modules/$(uname -r)"
  modprobe -d /run/km overlay
  if ! mount -t overlay overlay -o lowerdir=/,upperdir=/run/ov/upper,workdir=/run/ov/work /run/ov/root; then
    echo "guest init: no overlay root" >&2; off
  fi
  mkdir -p "/run/ov/root$result" /run/ov/root/.uml-oldroot
  mount -t hostfs -o "$result" hostfs "/run/ov/root$result"
  echo "$boot" > "/run/ov/root$result/boot"
  cd /run/ov/root && pivot_root . .uml-oldroot && exec chroot . /bin/sh "$self" stage2
  echo "guest init: pivot_root failed" >&2; off
fi

mount -t proc proc /proc
result=$(arg cove_result)
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
[ -d /.uml-oldroot ] && umount -l /.uml-oldroot
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
# The repository and the result directory may sit under /tmp (a CI clone): set them aside,
# cover /tmp and /var/tmp with tmpfs, and put them back at the same paths.
mkdir -p /.guest-keep
n=0
for p in "$repo" "$result"; do
  case "$p" in /tmp/*|/var/tmp/*) n=$((n + 1)); mkdir -p "/.guest-keep/$n"; mount --rbind "$p" "/.guest-keep/$n";; esac
done
for d in /run /tmp /var/tmp /var/lib/cove /etc/cove /root /lib/modules; do
  mkdir -p "$d" && mount -t tmpfs -o mode=0755 guest "$d"
done
chmod 1777 /tmp /var/tmp
n=0
for p in "$repo" "$result"; do
  case "$p" in /tmp/*|/var/tmp/*) n=$((n + 1)); mkdir -p "$p"; mount --move "/.guest-keep/$n" "$p";; esac
done
mkdir -p /run/netns /run/cove /run/lock

mounted=$(up_s)
kver=$(uname -r)
ln -s "$(arg cove_modules)" "/lib/modules/$kver"
[ -f "/lib/modules/$kver/modules.dep" ] || depmod -a
: > "$result/modprobe.log"
mods="veth dummy bridge br_netfilter 8021q macvlan ipvlan bonding vxlan tun openvswitch
      ip_tables ip6_tables iptable_filter iptable_nat iptable_mangle iptable_raw ip6table_filter
      ip6table_nat nf_conntrack nf_nat xt_MASQUERADE xt_conntrack xt_addrtype xt_comment
      xt_tcpudp xt_multiport xt_mark xt_nat"
modprobe -a $mods 2>/dev/null
for m in $mods; do   # one process for all; then name each that is missing
  [ -d "/sys/module/$m" ] || modprobe "$m" 2>/dev/null || echo "module $m: not loaded" >>"$result/modprobe.log"
done

loaded=$(up_s)
ovs=$(arg cove_ovs)
if [ -n "$ovs" ] && [ "$ovs" != - ] && [ "$ovs" != / ]; then cp -as "$ovs/usr/." /usr/; fi
if [ "$ovs" = - ]; then export COVE_KERNEL_OVS=0; else export COVE_KERNEL_OVS=1; fi

ip link set lo up
export COVE_SANDBOX=1 COVE_GUEST="$(arg cove_guest)" HOME=/root PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8
[ -f "$result/env" ] && . "$result/env"     # CI, COVE_STRICT, COVE_STAGE, COVE_MIN_TESTS from run.sh
cd "$repo"
set --
while IFS= read -r a; do set -- "$@" "$a"; done < "$result/args"
start=$(up_s)
if [ "${1:-}" = --exec ]; then
  shift
  "$@" > "$result/output" 2>&1
else
  .venv/bin/python -m pytest -p no:cacheprovider --junitxml="$result/junit.xml" "$@" > "$result/output" 2>&1
fi
echo $? > "$result/rc.new"
echo "init at $(cat "$result/boot")s, mounts done ${mounted}s, modules ${loaded}s, tests from ${start}s to $(up_s)s of guest uptime" > "$result/timing"
mv "$result/rc.new" "$result/rc"
off
