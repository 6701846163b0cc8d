#!/bin/sh
# PID 1 of the User-Mode Linux guest: private mounts, the UML kernel's modules, then pytest.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mkdir -p /dev/pts /dev/shm 2>/dev/null
mount -t devpts devpts /dev/pts 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
result=$(arg cove_result)
repo=$(arg cove_repo)
# Everything the tests write outside the result directory lands on tmpfs, not the host's disk
# (temporary files through TMPDIR: /tmp itself may hold the repository, e.g. in a CI clone).
for d in /run /var/lib/cove /etc/cove /root; do
  [ -d "$d" ] && mount -t tmpfs -o mode=0755 uml "$d"
done
mkdir -p /run/netns /run/cove /run/uml/lib/modules /run/tmp
chmod 1777 /run/tmp
export TMPDIR=/run/tmp
ln -s "/usr/lib/uml/modules/$(uname -r)" "/run/uml/lib/modules/$(uname -r)"
for m in overlay ipv6 veth bridge macvlan ipvlan 8021q dummy vxlan tun openvswitch ip_tables iptable_filter \
         iptable_nat iptable_raw nf_nat nf_conntrack xt_MASQUERADE xt_conntrack xt_addrtype xt_comment \
         xt_tcpudp xt_multiport; do
  modprobe -d /run/uml "$m" 2>>"$result/modprobe.log" || echo "module $m: not loaded" >>"$result/modprobe.log"
done
ip link set lo up
export COVE_SANDBOX=1 COVE_UML=1 HOME=/root PYTHONDONTWRITEBYTECODE=1
cd "$repo"
set --
while IFS= read -r a; do set -- "$@" "$a"; done < "$result/args"
.venv/bin/python -m pytest -p no:cacheprovider "$@" > "$result/output" 2>&1
echo $? > "$result/rc"
sync
poweroff -f
