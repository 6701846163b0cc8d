#!/bin/sh
# Lab 003, second half (seed 003 §3+ macvlan on 802.1q, §4 ipvlan L2, §5 ipvlan L3). Needs a
# kernel with 802.1q and ipvlan: the guest kernel of tests/kernel (tests/kernel/test_labs_guest.py
# runs it there). ens33 is a veth to a `router` namespace that plays the switch's trunk port.
# Pages: docs/labs/003-macvlan-ipvlan.zh.md / .en.md.
. "$(dirname "$0")/lib.sh"
lab_netns router; lab_link ens33
ip netns add router
ip link add ens33 type veth peer name wire netns router
ip link set ens33 up
ip -n router addr add 192.168.241.2/24 dev wire
ip -n router link set wire up
ip -n router link set lo up
lab_daemon

say "802.1q: macvlan on ens33.20 and ens33.30 (the router's trunk has wire.20 and wire.30 and does not route)"
ip netns exec router sysctl -qw net.ipv4.ip_forward=0
for vid in 20 30; do
    ip -n router link add link wire name wire.$vid type vlan id $vid
    ip -n router addr add 192.168.$vid.1/24 dev wire.$vid
    ip -n router link set wire.$vid up
done
x 'cove network create -d macvlan --subnet 192.168.20.0/24 --gateway 192.168.20.1 -o parent=ens33.20 macvlan20'
x 'cove network create -d macvlan --subnet 192.168.30.0/24 --gateway 192.168.30.1 -o parent=ens33.30 macvlan30'
x 'ip -d link show ens33.20'
seen "vlan protocol 802.1Q id 20"
ok "cove made the 802.1q sub-interface ens33.20 for the parent"
x 'cove run -d --name milk --network macvlan20 --ip 192.168.20.92 bb sleep 3600'
x 'cove run -d --name bread --network macvlan20 --ip 192.168.20.95 bb sleep 3600'
x 'cove run -d --name tea --network macvlan30 --ip 192.168.30.96 bb sleep 3600'
x 'cove exec milk ping -c 1 -W 2 192.168.20.95'
seen "1 packets received"
x 'cove exec milk ping -c 1 -W 2 192.168.20.1'
seen "1 packets received"
x_fails 'cove exec milk ping -c 1 -W 1 192.168.30.96'
ok "VLAN 20 reaches VLAN 20 and its gateway, not VLAN 30"
x 'cove diagnose milk tea --no-probe'
seen "blocked"
lab_graph 003-vlan
grep -q "ens33.20" "$LAB_OUT/003-vlan.dot" || lab_fail "the graph lacks ens33.20"
x 'cove rm -f milk bread tea'
x 'cove network rm macvlan20 macvlan30'

say "ipvlan L2: one MAC (the parent's), the parent's subnet"
x 'cove network create -d ipvlan --subnet 192.168.241.0/24 --gateway 192.168.241.2 -o parent=ens33 subway'
x 'cove run -d --name milk --network subway --ip 192.168.241.92 bb sleep 3600'
x 'cove run -d --name bread --network subway --ip 192.168.241.95 bb sleep 3600'
x 'cove exec bread ping -c 1 -W 2 192.168.241.92'
seen "1 packets received"
x 'cove exec milk ping -c 1 -W 2 192.168.241.2'
seen "1 packets received"
x 'ip link show ens33'
mac=$(ip -o link show ens33 | sed 's/.*link\/ether \([0-9a-f:]*\).*/\1/')
x 'cove exec milk ip link show eth0'
seen "$mac"
x 'ip netns exec router ip neigh show dev wire'
seen "$mac"
ok "milk and bread answer the router with ens33's own MAC ($mac)"
x 'cove rm -f milk bread'
x 'cove network rm subway'

say "ipvlan L3: no gateway, no ARP; the host routes between the subnets"
x 'cove network create -d ipvlan --subnet 192.168.94.0/24 --subnet 192.168.95.0/24 -o parent=ens33 -o ipvlan_mode=l3 ipvlanl3'
x 'cove run -d --name milk --network ipvlanl3 --ip 192.168.94.7 bb sleep 3600'
x 'cove run -d --name bread --network ipvlanl3 --ip 192.168.94.8 bb sleep 3600'
x 'cove run -d --name beijing --network ipvlanl3 --ip 192.168.95.7 bb sleep 3600'
x 'cove exec milk ip route'
seen "default dev eth0"
x 'cove exec milk ping -c 1 -W 2 192.168.94.8'
seen "1 packets received"
x 'cove exec milk ping -c 1 -W 2 192.168.95.7'
seen "1 packets received"
ok "L3: milk reaches bread (same subnet) and beijing (other subnet) with no gateway"
x_fails 'cove exec milk ping -c 1 -W 1 192.168.241.2'
ok "the router has no route back to 192.168.94.0/24, so milk gets no answer from it"

say "The picture"
lab_graph 003-ipvlan
echo "lab 003 (guest): all checks passed"
