#!/bin/sh
# Lab 002, second half (seed 002 §2 单主机Docker容器VLAN划分): pipework with Open vSwitch, as
# `cove attach --vlan`. Needs a kernel with the openvswitch module and running OVS daemons: the
# guest kernel of tests/kernel (tests/kernel/test_labs_guest.py starts them and runs this).
# Pages: docs/labs/002-ports-dns-link.zh.md / .en.md.
. "$(dirname "$0")/lib.sh"
ovs-vsctl --timeout=10 show >/dev/null 2>&1 || lab_refuse "needs Open vSwitch running (ovs-vsctl show fails)"
LAB_EXIT="ovs-vsctl --timeout=10 --if-exists del-br ovs0"
lab_daemon

say "An OVS bridge and four containers with no network of their own"
x 'ovs-vsctl add-br ovs0'
x 'cove run -d --name test1 --network none bb sleep 3600'
x 'cove run -d --name test2 --network none bb sleep 3600'
x 'cove run -d --name test3 --network none bb sleep 3600'
x 'cove run -d --name test4 --network none bb sleep 3600'

say "pipework br0 test1 10.70.0.1/24 @100 -> cove attach --vlan 100"
x 'cove attach test1 --bridge ovs0 --ip 10.70.0.1/24 --vlan 100'
x 'cove attach test2 --bridge ovs0 --ip 10.70.0.2/24 --vlan 100'
x 'cove attach test3 --bridge ovs0 --ip 10.70.0.3/24 --vlan 200'
x 'cove attach test4 --bridge ovs0 --ip 10.70.0.4/24 --vlan 200'
x 'ovs-vsctl --columns=name,tag list Port'
seen "100"
seen "200"
x "cove inspect -f '{{json .NetworkSettings.ExtraInterfaces.eth0}}' test1"
seen '"BridgeType":"openvswitch"'
seen '"Vlan":100'

say "Same tag: one broadcast domain; different tag: none"
try() { for i in 1 2 3; do cove exec "$1" ping -c 1 -W 1 "$2" && return 0; done; return 1; }
x 'try test1 10.70.0.2'
seen "1 packets received"
x 'try test4 10.70.0.3'
seen "1 packets received"
x_fails 'cove exec test1 ping -c 1 -W 1 10.70.0.3'
x_fails 'cove exec test4 ping -c 1 -W 1 10.70.0.2'
ok "tag 100 reaches tag 100, tag 200 reaches tag 200, and the two VLANs are split"

say "The picture"
lab_graph 002-ovs
grep -q "ovs0" "$LAB_OUT/002-ovs.dot" || lab_fail "the graph lacks ovs0"
x 'cove rm -f test1 test2 test3 test4'
x 'ovs-vsctl list-ports ovs0'
unseen "veth"
ok "removing the containers removed their OVS ports"
x 'ovs-vsctl del-br ovs0'
echo "lab 002 (OVS, guest): all checks passed"
