#!/bin/sh
# Lab 000 (seeds 000 Docker网络介绍, 002 四种网络模式, 003 七种模式 §1 §2 §3 §7): two namespaces
# joined by a veth pair; then cove's network modes: the default bridge, a user-defined bridge
# with names (DNS), network connect, host, none and container:.
# Pages: docs/labs/000-modes.zh.md / .en.md.   Run: tests/sandbox.sh sh docs/labs/000-modes.sh
. "$(dirname "$0")/lib.sh"

say "Two namespaces and a veth pair (seed 000, Network Namespace 实战)"
lab_netns ns1; lab_netns ns2
x 'ip netns add ns1'
x 'ip netns add ns2'
x 'ip netns list'
x 'ip link add veth-ns1 type veth peer name veth-ns2'
x 'ip link set veth-ns1 netns ns1'
x 'ip link set veth-ns2 netns ns2'
x 'ip netns exec ns1 ip addr add 192.168.0.11/24 dev veth-ns1'
x 'ip netns exec ns2 ip addr add 192.168.0.12/24 dev veth-ns2'
x 'ip netns exec ns1 ip link set veth-ns1 up'
x 'ip netns exec ns2 ip link set veth-ns2 up'
x 'ip netns exec ns1 ping -c 1 -W 2 192.168.0.12'
seen "1 packets received"
ok "ns1 reaches ns2 over veth-ns1/veth-ns2"

lab_daemon
say "The default bridge: every container gets a veth on cove0 (Docker's docker0)"
x 'cove network ls'
seen "bridge"
x 'cove run -d --name milk bb sleep 3600'
x 'cove run -d --name bread bb sleep 3600'
x 'bridge link show master cove0'
seen "master cove0"
x "cove network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{println}}{{end}}' bridge"
seen "milk 172.17.0.2/16"
x 'cove exec milk ping -c 1 -W 2 172.17.0.3'
seen "1 packets received"
ok "milk reaches bread by address on the default bridge"
x_fails 'cove exec milk ping -c 1 -W 1 bread'
ok "no names on the default bridge (as docker0)"

say "A user-defined bridge: its own Linux bridge and subnet, names by DNS"
x 'cove network create greatwall'
x 'cove run -d --name beijing --network greatwall bb sleep 3600'
x 'cove run -d --name shenzhen --network greatwall bb sleep 3600'
x "cove network inspect -f '{{.Id}} {{range .IPAM.Config}}{{.Subnet}} gw {{.Gateway}}{{end}}' greatwall"
seen "172.18.0.0/16 gw 172.18.0.1"
x 'cove exec beijing ping -c 1 -W 2 shenzhen'
seen "1 packets received"
ok "beijing reaches shenzhen by name"
x 'cove exec beijing cat /etc/resolv.conf'
seen "nameserver 127.0.0.11"
x_fails 'cove exec milk ping -c 1 -W 1 172.18.0.3'
x 'cove diagnose milk shenzhen --no-probe'
seen "blocked"
ok "milk (default bridge) cannot reach shenzhen (greatwall), and diagnose says why"

say "network connect: milk joins greatwall and gets eth1"
x 'cove network connect greatwall milk'
x 'cove exec milk ip -o -4 addr'
seen "eth1"
x 'cove exec milk ping -c 1 -W 2 shenzhen'
seen "1 packets received"
x 'cove exec shenzhen ping -c 1 -W 2 milk'
seen "1 packets received"
ok "after network connect, milk and shenzhen reach each other by name"

say "host: the host's own network stack"
x 'cove run --rm --network host bb ip -o -4 addr'
seen "172.18.0.1/16"
ok "a host-mode container sees the host's addresses"

say "none: a loopback and nothing else"
x 'cove run --rm --network none bb ip -o link'
seen "1: lo:"
unseen "eth0"
ok "a none-mode container has only lo"

say "container:NAME: share another container's namespace"
x 'cove run -d --name side --network container:beijing bb sleep 3600'
x 'cove exec side ip -o -4 addr show eth0'
beijing_ip=$(cove inspect -f '{{.NetworkSettings.Networks.greatwall.IPAddress}}' beijing)
seen "$beijing_ip"
x 'cove run -d --name web --network greatwall bb httpd -f -p 8080 -h /etc'
x 'cove run --rm --network container:web bb wget -qO- http://127.0.0.1:8080/hostname'
seen "$(cove inspect -f '{{.Config.Hostname}}' web)"
ok "a container: peer has the same eth0 and reaches its neighbour's port on 127.0.0.1"

say "The picture"
lab_graph 000
x 'cove graph --network greatwall -o 000-greatwall.dot'
grep -q "shenzhen" "$LAB_OUT/000-greatwall.dot" || lab_fail "the greatwall graph lacks shenzhen"
echo "lab 000: all checks passed"
