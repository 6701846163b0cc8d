#!/bin/busybox sh
# /init of the QEMU guest's initramfs (built by run.sh: busybox-static, this script, and the
# virtio / 9p / overlay modules of the guest kernel listed in /modules in load order).
#
# Stage 1 of the QEMU backend, the twin of init.sh's UML stage 1: load the modules, mount the
# host's / read-only over virtio-9p (tag hostroot), make an overlay of it whose upper layer is
# guest RAM, mount the result directory (tag result, the one host path the guest may write) at
# its own path inside, and switch_root into the overlay to run init.sh's stage 2 from there.
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev /lower /rw /newroot
$bb mount -t proc proc /proc
$bb mount -t devtmpfs devtmpfs /dev
arg() { $bb sed -n "s/.* $1=\([^ ]*\).*/\1/p" /proc/cmdline; }
fail() {
  echo "qemu initramfs: $*" >/dev/console
  $bb poweroff -f
}
while read -r m; do $bb insmod "/modules.d/$m" || fail "insmod $m failed"; done < /modules
result=$(arg cove_result)
init=$(arg cove_init)
[ -n "$result" ] && [ -n "$init" ] || fail "no cove_result= or cove_init= on the kernel command line"
# cache=loose: the host's files are read once and kept (a host file changed during a run may or
# may not be seen); msize: 512 KiB per 9p message instead of 8 KiB (python imports get faster)
$bb mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=loose hostroot /lower ||
  fail "cannot mount the host's root over 9p"
$bb mount -t tmpfs -o mode=0755 rw /rw
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "no overlay root"
$bb mkdir -p "/newroot$result"
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 result "/newroot$result" ||
  fail "cannot mount the result directory"
$bb cut -d' ' -f1 /proc/uptime > "/newroot$result/boot"
$bb umount /proc /dev
exec $bb switch_root /newroot /bin/sh "$init" stage2
