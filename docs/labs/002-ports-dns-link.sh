#!/bin/sh
# Lab 002 (seed 002, Docker 中的网络功能介绍): every form of -p and -P, the NAT behind them,
# -h/--dns/--dns-search, --link, icc=false, and pipework's extra interface (cove attach).
# The Open vSwitch VLAN half of seed 002 needs a kernel with OVS: 002-ovs-vlan.sh (guest).
# Pages: docs/labs/002-ports-dns-link.zh.md / .en.md.   Run: tests/sandbox.sh sh docs/labs/002-ports-dns-link.sh
. "$(dirname "$0")/lib.sh"
lab_internet
lab_daemon
get() { ip netns exec internet wget -qO- -T 2 "$1"; }    # "another machine" fetching a URL

say "-P: every exposed port on a random host port"
x 'cove run -d --name sshweb -P --expose 22 --expose 80 bb httpd -f -p 80 -h /etc'
x 'cove port sshweb'
seen "80/tcp -> 0.0.0.0:"
seen "22/tcp -> 0.0.0.0:"
port=$(cove port sshweb 80/tcp | head -n 1 | sed 's/.*://')
x "ip netns exec internet wget -qO- -T 2 http://203.0.113.1:$port/hostname"
seen "$(cove inspect -f '{{.Config.Hostname}}' sshweb)"
ok "another machine reaches sshweb's port 80 on the random host port $port"

say "-p: the four forms"
x 'cove run -d --name web1 -p 8081:80 bb httpd -f -p 80 -h /etc'
x 'cove run -d --name web2 -p 203.0.113.1:8082:80 bb httpd -f -p 80 -h /etc'
x 'cove run -d --name web3 -p 203.0.113.1::80 bb httpd -f -p 80 -h /etc'
x 'cove run -d --name web4 -p 80 bb httpd -f -p 80 -h /etc'
x 'cove run -d --name db4 -p 127.0.0.1:5000:5000/udp bb sleep 3600'
x 'cove ps --format "{{.Names}}\t{{.Ports}}"'
seen "0.0.0.0:8081->80/tcp"
seen "203.0.113.1:8082->80/tcp"
seen "127.0.0.1:5000->5000/udp"
x 'cove port web3 80'
seen "203.0.113.1:"
x 'ip netns exec internet wget -qO- -T 2 http://203.0.113.1:8081/hostname'
seen "$(cove inspect -f '{{.Config.Hostname}}' web1)"
x 'ip netns exec internet wget -qO- -T 2 http://203.0.113.1:8082/hostname'
seen "$(cove inspect -f '{{.Config.Hostname}}' web2)"
ok "hostPort:containerPort and ip:hostPort:containerPort answer from another machine"
x 'cove diagnose outside db4 --port 5000/udp --no-probe'
seen "blocked"
seen "127.0.0.1"
ok "a port published on 127.0.0.1 is not for other machines, and diagnose says so"

say "The NAT behind it: masquerade out, DNAT in"
x 'nft list map ip cove masq'
seen "172.17.0.0/16"
x 'nft list map ip cove pub_any_tcp'
seen "8081 : 172.17.0."
x 'nft list map ip cove pub_ip_tcp'
seen "203.0.113.1 . 8082 : 172.17.0."
x 'cove exec web1 ping -c 1 -W 2 203.0.113.2'
seen "1 packets received"
x 'cove diagnose web1 203.0.113.2'
seen "masqueraded"

say "DNS and host name: -h, --dns, --dns-search"
x 'cove run -d --name dnsbox -h myweb --dns 10.1.2.3 --dns-search example.com bb sleep 3600'
x 'cove exec dnsbox cat /etc/hostname /etc/resolv.conf'
seen "myweb"
seen "nameserver 10.1.2.3"
seen "search example.com"
x 'cove exec dnsbox grep myweb /etc/hosts'
ok "the host name and resolver settings are the container's own files"

say "--link: a name (and alias) in the new container's /etc/hosts"
x 'cove run -d --name dbserver bb sleep 3600'
x 'cove run -d --name web --link dbserver:db bb sleep 3600'
x 'cove exec web cat /etc/hosts'
seen "dbserver"
x 'cove exec web ping -c 1 -W 2 db'
seen "1 packets received"
ok "web reaches dbserver by its link alias db"

say "icc=false: neighbours on one bridge cannot talk; the gateway and the outside still work"
x 'cove network create -o com.docker.network.bridge.enable_icc=false --subnet 10.20.0.0/24 quiet'
x 'cove run -d --name q1 --network quiet bb sleep 3600'
x 'cove run -d --name q2 --network quiet bb sleep 3600'
x_fails 'cove exec q1 ping -c 1 -W 1 10.20.0.3'
x 'cove exec q1 ping -c 1 -W 2 10.20.0.1'
seen "1 packets received"
x 'cove diagnose q1 q2'
seen "blocked"
seen "icc"
seen "agrees"
ok "q1 cannot reach q2 with icc=false, and the probe agrees with diagnose"

say "pipework: an extra interface on an existing bridge br0 (the LAN), with its gateway"
lab_netns lanpeer; lab_link br0; lab_link br0-peer
ip netns add lanpeer
ip link add br0 type bridge
ip link set br0 up
ip link add br0-peer type veth peer name lan netns lanpeer
ip link set br0-peer master br0 up
ip -n lanpeer addr add 192.168.1.1/24 dev lan
ip -n lanpeer link set lan up
x 'cove run -d --name test1 bb sleep 3600'
x 'cove attach test1 --bridge br0 --ip 192.168.1.150/24@192.168.1.1'
seen "eth1"
x 'cove nsenter test1 -- ip -4 addr show eth1'
seen "192.168.1.150/24"
x 'cove nsenter test1 -- ip route'
seen "default via 192.168.1.1 dev eth1"
x 'ip netns exec lanpeer ping -c 1 -W 2 192.168.1.150'
seen "1 packets received"
ok "the LAN (lanpeer) reaches test1 on its pipework address"
x "cove inspect -f '{{json .NetworkSettings.ExtraInterfaces}}' test1"
seen '"Bridge":"br0"'

say "The picture"
lab_graph 002
grep -q "8081" "$LAB_OUT/002.dot" || lab_fail "the graph lacks the published port 8081"
grep -q "br0" "$LAB_OUT/002.dot" || lab_fail "the graph lacks br0"
ok "cove graph shows the published ports and the pipework bridge"
x 'cove detach test1 --ifname eth1'
echo "lab 002: all checks passed"
