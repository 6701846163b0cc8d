#!/bin/sh
# Lab 001 (seed 001, 容器网络篇一：单机网络方案): a network namespace, a veth pair, a bridge,
# a default route and NAT, by hand; then the same thing built by cove, and how to see it.
# Pages: docs/labs/001-netns-veth.zh.md / .en.md.   Run: tests/sandbox.sh sh docs/labs/001-netns-veth.sh
. "$(dirname "$0")/lib.sh"
lab_internet

say "By hand: a namespace plays the container"
lab_netns net1; lab_netns net2; lab_link veth1_p; lab_link veth2_p; lab_link mybridge
x 'ip netns add net1'
x 'ip netns exec net1 ip route'
x 'ip netns exec net1 ip link list'
seen "state DOWN"

say "A veth pair: one end in net1, the other on the host"
x 'ip link add veth1 type veth peer name veth1_p'
x 'ip link set veth1 netns net1'
x 'ip link list | grep veth'
seen "veth1_p@if"
x 'ip netns exec net1 ip link list'
seen "veth1@if"
x 'ip addr add 10.68.0.100/24 dev veth1_p'
x 'ip netns exec net1 ip addr add 10.68.0.101/24 dev veth1'
x 'ip netns exec net1 ip link set dev veth1 up'
x 'ip link set dev veth1_p up'
x 'ip netns exec net1 ping -c 2 -W 2 10.68.0.100'
seen "2 packets received"
ok "net1 reaches the host over the veth pair"

say "A bridge: the host end becomes a port, the bridge gets the address"
x 'ip link add mybridge type bridge'
x 'ip addr del 10.68.0.100/24 dev veth1_p'
x 'ip addr add 10.68.0.1/24 dev mybridge'
x 'ip link set dev mybridge up'
x 'ip link set veth1_p master mybridge'
x 'bridge link show'
seen "veth1_p"
seen "master mybridge"
x 'ip netns exec net1 ping -c 1 -W 2 10.68.0.1'
seen "1 packets received"
x 'ip netns exec net1 ip route'
x 'ip netns exec net1 ip route add default via 10.68.0.1 dev veth1'

say "A second namespace on the same bridge"
x 'ip netns add net2'
x 'ip link add veth2 type veth peer name veth2_p'
x 'ip link set veth2 netns net2'
x 'ip netns exec net2 ip addr add 10.68.0.102/24 dev veth2'
x 'ip netns exec net2 ip link set dev veth2 up'
x 'ip link set veth2_p master mybridge up'
x 'ip netns exec net1 ping -c 1 -W 2 10.68.0.102'
seen "1 packets received"
ok "net1 reaches net2 through mybridge"

say "To the outside: forwarding and masquerade (203.0.113.2 plays 8.8.8.8 and has no route back)"
x_fails 'ip netns exec net1 ping -c 1 -W 1 203.0.113.2'
x 'sysctl -w net.ipv4.ip_forward=1'
x 'nft add table ip byhand'
x "nft 'add chain ip byhand post { type nat hook postrouting priority 100; }'"
x "nft add rule ip byhand post ip saddr 10.68.0.0/24 oifname != mybridge masquerade"
LAB_EXIT="nft delete table ip byhand"
x 'ip netns exec net1 ping -c 1 -W 2 203.0.113.2'
seen "1 packets received"
ok "net1 reaches the outside through the hand-made masquerade"
x 'nft delete table ip byhand'
LAB_EXIT=""

say "The same with cove: one command per container"
lab_daemon
x 'cove run -d --name box1 bb sleep 3600'
x 'cove run -d --name box2 bb sleep 3600'
x 'cove exec box1 ip addr show eth0'
seen "inet 172.17.0.2/16"
x 'cove exec box1 ip route'
seen "default via 172.17.0.1 dev eth0"
x "cove inspect -f '{{json .NetworkSettings.Networks.bridge.Cove}}' box1"
seen '"Bridge":"cove0"'
host_if=$(cove inspect -f '{{.NetworkSettings.Networks.bridge.Cove.HostInterface}}' box1)
x 'ip link show master cove0'
seen "$host_if@if"
ok "cove's veth for box1 ($host_if) is a port of cove0, as veth1_p is of mybridge"
x 'cove exec box1 ping -c 1 -W 2 172.17.0.3'
seen "1 packets received"
x 'cove exec box1 ping -c 1 -W 2 203.0.113.2'
seen "1 packets received"
ok "box1 reaches box2 and the outside with no hand-made rule"
x 'cove diagnose box1 203.0.113.2'
seen "reachable"
x 'cove diagnose box1 box2'
seen "reachable"

say "The picture"
lab_graph 001
grep -q "$host_if" "$LAB_OUT/001.dot" || lab_fail "the graph does not name $host_if"
ok "cove graph names box1's veth"
echo "lab 001: all checks passed"
