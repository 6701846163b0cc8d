"""The bridge driver's plans, read as data without root: what create and join will make."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from cove.daemon.schema import ipam_configs
from cove.drivers import DriverContext
from cove.drivers.bridge import BridgeDriver, plan_create, plan_join
from cove.drivers.bridge_plan import apply_bridge, apply_join
from cove.kernel.api import BridgePort
from cove.kernel.fake import FakeKernel, InjectedFailure
from cove.errors import Conflict
from cove.model import Endpoint, Network

from .enginefakes import FakeFirewall

NET_ID = "ab" * 32


def _net(ipv6: bool = False, **options: str) -> Network:
    wire = [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.1"}] + ([{"Subnet": "fd00:7::/64"}] if ipv6 else [])
    net = Network(id=NET_ID, name="back", driver="bridge", created="", ipam=ipam_configs(wire), ipv6=ipv6,
                  options=dict(options))
    BridgeDriver(DriverContext(kernel=FakeKernel(), firewall=FakeFirewall(), mtu=0)).validate(net)
    return net


def _ep(ifname: str = "eth0", ip6: bool = False) -> Endpoint:
    return Endpoint(id="cd" * 32, network_id=NET_ID, container_id="ef" * 32, ifname=ifname, host_ifname="vethcdcdcdc",
                    ip="10.7.0.2", prefixlen=24, gateway="10.7.0.1", mac="02:42:0a:07:00:02",
                    ip6="fd00:7::2" if ip6 else "", prefixlen6=64 if ip6 else 0, gateway6="fd00:7::1" if ip6 else "")


def test_create_plan_of_an_ipv4_network() -> None:
    plan = plan_create(_net(), 0, "nftables")
    assert plan.name == f"br-{NET_ID[:12]}" and plan.alias == f"cove:net:{NET_ID}" and plan.mtu is None
    assert plan.addresses == ((IPv4Address("10.7.0.1"), 24),)
    assert plan.sysctls == ((f"net.ipv4.conf.{plan.name}.route_localnet", "1"),)
    assert plan.rules.subnets == ("10.7.0.0/24",) and plan.rules.masquerade and not plan.rules.subnets6


def test_create_plan_of_an_ipv6_network_with_options() -> None:
    net = _net(ipv6=True, **{"com.docker.network.bridge.name": "br-six", "com.docker.network.driver.mtu": "1400",
                             "com.docker.network.bridge.enable_ip_masquerade": "false"})
    plan = plan_create(net, 1500, "none")
    assert plan.name == "br-six" and plan.mtu == 1400                      # the option beats the daemon's --mtu
    assert plan.addresses == ((IPv4Address("10.7.0.1"), 24), (IPv6Address("fd00:7::1"), 64))
    # IPv6 is switched on before the addresses go on; no firewall: no route_localnet
    assert plan.sysctls == (("net.ipv6.conf.br-six.disable_ipv6", "0"), ("net.ipv4.conf.br-six.route_localnet", "0"))
    assert plan.rules.subnets6 == ("fd00:7::/64",) and not plan.rules.masquerade
    assert plan_create(_net(), 1450, "nftables").mtu == 1450                # else the daemon's --mtu


def test_join_plan_of_the_first_interface() -> None:
    plan = plan_join(_net(ipv6=True), _ep(ip6=True), 0)
    assert (plan.host_ifname, plan.ifname, plan.bridge, plan.mac) == ("vethcdcdcdc", "eth0", f"br-{NET_ID[:12]}",
                                                                      "02:42:0a:07:00:02")
    assert plan.alias == f"cove:ep:{'cd' * 32}" and not plan.isolated
    assert plan.addresses == ((IPv4Address("10.7.0.2"), 24), (IPv6Address("fd00:7::2"), 64))
    assert plan.sysctls == (("net.ipv6.conf.eth0.disable_ipv6", "0"),)
    assert plan.routes == (IPv4Address("10.7.0.1"), IPv6Address("fd00:7::1"))
    # the host end is a bridge port only: no IPv6 of its own, even on an IPv6 network (the
    # bridge has the gateway), so the host's IPv6 route table does not grow with the containers
    assert plan.host_sysctls == (("net.ipv6.conf.vethcdcdcdc.disable_ipv6", "1"),)


def test_join_plan_of_a_second_interface_on_an_isolated_network() -> None:
    plan = plan_join(_net(**{"com.docker.network.bridge.enable_icc": "false"}), _ep("eth1"), 0)
    assert plan.isolated and plan.routes == () and plan.sysctls == ()     # only eth0 carries the default route
    assert plan.addresses == ((IPv4Address("10.7.0.2"), 24),)


SANDBOX = "/run/cove/netns/c1"


def _kernel(with_bridge: bool) -> tuple[FakeKernel, FakeFirewall, DriverContext]:
    kernel = FakeKernel()
    kernel.create_netns(SANDBOX)
    firewall = FakeFirewall(kernel)
    ctx = DriverContext(kernel=kernel, firewall=firewall, mtu=0)
    if with_bridge:
        apply_bridge(ctx, plan_create(_net(), 0, "nftables"))
    return kernel, firewall, ctx


@pytest.mark.parametrize("step", ["create", "join"])
def test_a_plan_applies_in_one_step_and_a_failure_at_any_call_leaves_nothing(step: str) -> None:
    def apply(ctx: DriverContext) -> None:
        if step == "create":
            apply_bridge(ctx, plan_create(_net(), 0, "nftables"))
        else:
            apply_join(ctx, plan_join(_net(), _ep(), 0), SANDBOX)

    kernel, firewall, ctx = _kernel(with_bridge=step == "join")
    kernel.fail_at(None)
    apply(ctx)
    total, dump = kernel.calls, kernel.dump()
    assert total >= (3 if step == "create" else 5) and ("10.7.0.1/24" if step == "create" else "10.7.0.2/24") in dump
    for n in range(1, total + 1):
        kernel, firewall, ctx = _kernel(with_bridge=step == "join")
        before = kernel.dump() + firewall.dump()
        kernel.fail_at(n)
        with pytest.raises(InjectedFailure):
            apply(ctx)
        failed = kernel.journal[n - 1]
        kernel.fail_at(None)
        assert kernel.dump() + firewall.dump() == before, f"a failure at call {n} ({failed}) left this behind"


def test_a_bridge_name_in_use_is_refused_naming_the_option_and_the_link_is_left_alone() -> None:
    kernel, firewall, ctx = _kernel(with_bridge=False)
    net = _net(**{"com.docker.network.bridge.name": "br-taken"})
    kernel.host.add_link("br-taken", "dummy", "admin's")
    before = kernel.dump() + firewall.dump()
    with pytest.raises(Conflict, match="bridge br-taken already exists; choose another com.docker.network.bridge.name"):
        BridgeDriver(ctx).create(net)
    assert kernel.dump() + firewall.dump() == before


def test_the_rules_go_in_beside_the_create_only_for_the_name_cove_derives() -> None:
    """A name given by option may be a link of the host's: its rules wait until the create succeeded."""
    assert plan_create(_net(), 0, "nftables").rules_beside
    assert not plan_create(_net(**{"com.docker.network.bridge.name": "br-mine"}), 0, "nftables").rules_beside


def test_a_derived_name_in_use_leaves_the_link_and_no_rules_behind() -> None:
    """With the rules written beside the create, the kernel's EEXIST comes after them: they are removed."""
    kernel, firewall, ctx = _kernel(with_bridge=False)
    kernel.host.add_link(f"br-{NET_ID[:12]}", "dummy", "someone's")
    before = kernel.dump() + firewall.dump()
    with pytest.raises(Conflict, match="already exists"):
        BridgeDriver(ctx).create(_net())
    assert kernel.dump() + firewall.dump() == before


def test_a_new_bridge_is_up_with_its_gateway() -> None:
    kernel, _, ctx = _kernel(with_bridge=False)
    BridgeDriver(ctx).create(_net())
    link = kernel.host.find(f"br-{NET_ID[:12]}")
    assert link is not None and link.up and link.alias == f"cove:net:{NET_ID}"
    assert [str(a) for _, a in kernel.host.addresses(link.index)] == ["10.7.0.1/24"]


def test_a_join_enslaves_the_veth_and_sets_the_inner_mac_in_its_create_request() -> None:
    """Two requests fewer per endpoint: the bridge port and the container's MAC come with the
    veth itself (IFLA_MASTER, the peer's IFLA_ADDRESS), not from ``set link`` requests after it."""
    kernel, _, ctx = _kernel(with_bridge=True)
    kernel.fail_at(None)
    inner, host, bridge_index = apply_join(ctx, plan_join(_net(), _ep(), 0), SANDBOX)
    bridge = kernel.host.find(f"br-{NET_ID[:12]}")
    assert bridge is not None and bridge_index == bridge.index
    host_end = [lk for lk in kernel.host.links() if lk.index == host][0]
    inner_end = [lk for lk in kernel.get(SANDBOX).links() if lk.index == inner][0]
    assert host_end.master == bridge.index and host_end.up
    assert inner_end.mac == "02:42:0a:07:00:02" and inner_end.up
    sets = [what for what in kernel.journal if what.startswith("set link")]
    assert not [what for what in sets if "master" in what or "address" in what], sets


def _join_requests(kernel: FakeKernel, start: int) -> list[str]:
    return [w.split(" ")[0] + " " + w.split(" ")[1] for w in kernel.journal[start:]]


def test_a_join_is_the_create_the_tag_the_address_and_the_route_when_the_bridge_index_is_known() -> None:
    """The pair comes up enslaved and both indexes come back from ``add_veth_pair``: no lookup of the
    bridge, of the new link or of the peer, no host ``set link ... up``, no separate port flags."""
    kernel, _, ctx = _kernel(with_bridge=False)
    drv = BridgeDriver(ctx)
    net = _net(**{"com.docker.network.bridge.enable_icc": "false"})
    drv.create(net)
    kernel.fail_at(None)
    start = len(kernel.journal)
    ep = _ep()
    drv.join(net, ep, SANDBOX)
    assert _join_requests(kernel, start) == ["create veth", "tag link", f"sysctl net.ipv6.conf.{ep.host_ifname}.disable_ipv6=1",
                                             "add address", "set link", "add default"]
    host_end = kernel.host.find(ep.host_ifname)
    assert host_end is not None and host_end.index == ep.host_ifindex and host_end.alias == f"cove:ep:{ep.id}"
    inner = [lk for lk in kernel.get(SANDBOX).links() if lk.name == "eth0"][0]
    assert inner.index == ep.ifindex and inner.up
    dump = kernel.dump()
    assert "isolated" in dump and "hairpin" in dump, dump


def test_add_veth_pair_returns_both_indexes_and_a_failed_tag_leaves_nothing() -> None:
    kernel = FakeKernel()
    kernel.create_netns(SANDBOX)
    br = kernel.host.add_bridge("br0", "cove:net:x", up=True)
    host, peer = kernel.host.add_veth_pair("vethx", "eth3", SANDBOX, "cove:ep:x", master=br, peer_mac="02:00:00:00:00:07",
                                           up=True, port=BridgePort(hairpin=True))
    assert kernel.host.index("vethx") == host and kernel.get(SANDBOX).index("eth3") == peer
    before = kernel.dump()
    kernel.fail_at(2)                            # the create passes, the tag fails
    with pytest.raises(InjectedFailure):
        kernel.host.add_veth_pair("vethy", "eth4", SANDBOX, "cove:ep:y", master=br)
    kernel.fail_at(None)
    assert kernel.dump() == before


def test_a_join_after_the_bridge_was_made_again_retries_once_with_its_new_index() -> None:
    """The bridge's index is cached per network; a bridge deleted and made again behind cove's back
    (reconcile's restore on another driver object, an admin) has another index: the create fails on
    the stale one (EINVAL, ENODEV), the index is looked up again and the join goes on with it."""
    kernel, _, ctx = _kernel(with_bridge=False)
    drv = BridgeDriver(ctx)
    net = _net()
    drv.create(net)
    old = drv.bridge_index(net)
    kernel.host.delete_link(net.bridge)
    BridgeDriver(ctx).restore(net)            # another driver object: this one's cache is stale
    fresh = kernel.host.index(net.bridge)
    assert old is not None and fresh != old and drv.bridge_index(net) == old
    ep = _ep("eth1")
    drv.join(net, ep, SANDBOX)
    host_end = kernel.host.find(ep.host_ifname)
    assert host_end is not None and host_end.master == fresh and drv.bridge_index(net) == fresh


def test_a_join_with_no_cached_index_looks_the_bridge_up_and_caches_it() -> None:
    kernel, _, ctx = _kernel(with_bridge=True)      # made without this driver: nothing cached
    drv = BridgeDriver(ctx)
    net = _net()
    assert drv.bridge_index(net) is None
    drv.join(net, _ep(), SANDBOX)
    assert drv.bridge_index(net) == kernel.host.index(net.bridge)
    drv.delete(net)
    assert drv.bridge_index(net) is None
