"""The bridge driver's plans, read as data without root: what create and join will make."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from cove.daemon.schema import ipam_configs
from cove.drivers import DriverContext
from cove.drivers.bridge import BridgeDriver, plan_create, plan_join
from cove.drivers.bridge_plan import apply_bridge, apply_join
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
    inner, host = apply_join(ctx, plan_join(_net(), _ep(), 0), SANDBOX)
    bridge = kernel.host.find(f"br-{NET_ID[:12]}")
    assert bridge is not None
    host_end = [lk for lk in kernel.host.links() if lk.index == host][0]
    inner_end = [lk for lk in kernel.get(SANDBOX).links() if lk.index == inner][0]
    assert host_end.master == bridge.index and host_end.up
    assert inner_end.mac == "02:42:0a:07:00:02" and inner_end.up
    sets = [what for what in kernel.journal if what.startswith("set link")]
    assert not [what for what in sets if "master" in what or "address" in what], sets
