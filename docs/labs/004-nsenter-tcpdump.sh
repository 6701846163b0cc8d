#!/bin/sh
# Lab 004 (seed 004, 实用工具与调试技巧): the everyday commands, nsenter into a container's
# namespaces with the host's tools, and tcpdump on the host end of its veth.
# Pages: docs/labs/004-nsenter-tcpdump.zh.md / .en.md.   Run: tests/sandbox.sh sh docs/labs/004-nsenter-tcpdump.sh
. "$(dirname "$0")/lib.sh"
lab_internet
lab_daemon

say "6.1 The everyday commands"
x 'cove run -d --name web bb httpd -f -p 80 -h /etc'
x 'cove run -d --name client bb sleep 3600'
x 'cove network ls'
x "cove inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' web"
seen "172.17.0.2"
x 'cove exec web ip a'
seen "inet 172.17.0.2/16"

say "6.3 nsenter: the host's tools inside the container's network namespace"
x "pid=\$(cove inspect -f '{{.State.Pid}}' web); echo \$pid"
x 'nsenter -t "$pid" -n ss -ltn'
seen ":80"
ok "nsenter -t PID -n shows httpd listening on :80, with the host's ss (busybox has none)"
x 'cove nsenter web -- ss -ltn'
seen ":80"
x 'cove nsenter web -- ip -d link show eth0'
seen "veth"
x 'cove nsenter --uts web -- hostname'
seen "$(cove inspect -f '{{.Config.Hostname}}' web)"
x 'cove nsenter --net --mount web -- ls /'
seen "bin"
ok "cove nsenter enters the chosen namespaces (net by default; --uts, --mount ...)"

say "6.2 tcpdump: the host end of web's veth, and a pcap to read later"
x "cove inspect -f '{{.NetworkSettings.Networks.bridge.Cove.HostInterface}}' web"
x 'timeout 30 cove capture web -w web.pcap -c 6 tcp port 80 2>capture.log & cap=$!'
i=0
until grep -q "listening on" capture.log 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || lab_fail "tcpdump did not start: $(cat capture.log)"; sleep 0.1
done
x 'cove exec client wget -qO- http://172.17.0.2/hostname'
x 'wait $cap; cat capture.log'
seen "packets captured"
x 'tcpdump -n -r web.pcap'
seen "172.17.0.3."
seen "> 172.17.0.2.80: Flags [S]"
ok "the capture shows client's TCP handshake to web:80"
rm -f web.pcap capture.log

say "diagnose: the same question, answered from cove's records and proved by a probe"
x 'cove diagnose client web --port 80'
seen "reachable"
seen "agrees"
x 'cove network create --internal vault'
x 'cove run -d --name safe --network vault bb sleep 3600'
x 'cove diagnose safe 203.0.113.2'
seen "blocked"
seen "internal"
seen "agrees"
ok "diagnose names --internal as the reason safe cannot get out, and its probe agrees"

say "The picture"
lab_graph 004
echo "lab 004: all checks passed"
