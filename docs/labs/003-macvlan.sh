#!/bin/sh
# Lab 003 (seed 003, 你应该学会的docker网络模式 §3 MacVLAN): containers straight on the LAN.
# ens33 is the seed's NIC: here a veth whose other end is a `router` namespace at 192.168.241.2.
# 802.1q parents and ipvlan L2/L3 need a kernel with them: 003-ipvlan-vlan.sh (guest kernel).
# Pages: docs/labs/003-macvlan-ipvlan.zh.md / .en.md.   Run: tests/sandbox.sh sh docs/labs/003-macvlan.sh
. "$(dirname "$0")/lib.sh"
lab_netns router; lab_link ens33
ip netns add router
ip link add ens33 type veth peer name wire netns router
ip link set ens33 up
ip -n router addr add 192.168.241.2/24 dev wire
ip -n router link set wire up
ip -n router link set lo up
lab_daemon

say "A macvlan network on ens33: the LAN's subnet and gateway"
x 'cove network create -d macvlan --subnet 192.168.241.0/24 --gateway 192.168.241.2 -o parent=ens33 subway'
x 'cove run -d --name milk --network subway --ip 192.168.241.92 bb sleep 3600'
x 'cove run -d --name bread --network subway --ip 192.168.241.95 bb sleep 3600'
x 'cove run -d --name tea --network subway --ip 192.168.241.96 bb httpd -f -p 80 -h /etc'
x 'cove nsenter milk -- ip addr show eth0'
ens33_index=$(ip -o link show ens33 | cut -d: -f1)
seen "eth0@if$ens33_index"
ok "milk's eth0 is a macvlan sub-interface of ens33 (eth0@if$ens33_index)"
x "cove inspect -f '{{json .NetworkSettings.Networks.subway.Cove}}' milk"
seen '"Parent":"ens33"'

say "The gateway, each other, and the LAN reaching a container"
x 'cove exec milk ping -c 1 -W 2 192.168.241.2'
seen "1 packets received"
x 'cove exec bread ping -c 1 -W 2 192.168.241.92'
seen "1 packets received"
x 'ip netns exec router wget -qO- -T 2 http://192.168.241.96/hostname'
seen "$(cove inspect -f '{{.Config.Hostname}}' tea)"
ok "the router (the LAN) reaches tea's web server at its own address, no port published"
x 'ip netns exec router ip neigh show dev wire'
seen "192.168.241.92"
ok "each container has its own MAC on the LAN"

say "The host cannot talk to its own macvlan children"
x 'ip addr add 192.168.241.1/24 dev ens33'
x_fails 'ping -c 1 -W 1 192.168.241.92'
x 'cove diagnose host milk --no-probe'
seen "blocked"
seen "macvlan"
ok "host -> milk is blocked by macvlan's parent/host isolation, and diagnose names it"

say "The picture"
lab_graph 003
grep -q "ens33" "$LAB_OUT/003.dot" || lab_fail "the graph lacks the parent ens33"
ok "cove graph shows ens33 as the parent of the macvlan interfaces"
echo "lab 003: all checks passed"
