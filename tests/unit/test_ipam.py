"""Unit tests of cove.ipam: pools, subnet choice, config validation, leases, MACs."""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cove import ipam
from cove.errors import Conflict, InvalidArgument, Unavailable
from cove.daemon.schema import ipam_config_from_json, ipam_config_json
from cove.ipam import AddressPool, IpamConfig, Pool

N = IPv4Network
A = IPv4Address


# --- pools --------------------------------------------------------------------------

def test_default_pools_are_dockers() -> None:
    pools = ipam.DEFAULT_POOLS
    assert pools[:15] == [Pool(N(f"172.{n}.0.0/16"), 16) for n in range(17, 32)]
    assert pools[15:] == [Pool(N("192.168.0.0/16"), 20)]


def test_parse_pool() -> None:
    assert ipam.parse_pool("base=10.10.0.0/16,size=24") == Pool(N("10.10.0.0/16"), 24)
    assert ipam.parse_pool(" size=24 , base=10.10.0.0/16 ") == Pool(N("10.10.0.0/16"), 24)


@pytest.mark.parametrize("spec, names", [
    ("base=10.10.0.1/16,size=24", "base"),
    ("base=nonsense,size=24", "base"),
    ("base=fd00::/48,size=64", "base"),
    ("base=10.0.0.0/8,size=x", "size"),
    ("base=10.0.0.0/16,size=8", "size"),
    ("base=10.0.0.0/16,size=33", "size"),
    ("base=10.0.0.0/16", "size"),
    ("size=24", "base"),
    ("base=10.0.0.0/16,size=24,colour=red", "colour"),
    ("base=10.0.0.0/16,base=10.1.0.0/16,size=24", "base"),
    ("base", "base"),
])
def test_parse_pool_errors_name_the_key(spec: str, names: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        ipam.parse_pool(spec)
    msg = str(e.value)
    assert "default-address-pool" in msg and names in msg and "\n" not in msg


def test_parse_pool_host_bits_suggests_the_network() -> None:
    with pytest.raises(InvalidArgument, match=r"host bits set, did you mean 10\.10\.0\.0/16\?"):
        ipam.parse_pool("base=10.10.0.1/16,size=24")


# --- pick_subnet --------------------------------------------------------------------

def test_pick_subnet_first_default() -> None:
    assert ipam.pick_subnet([]) == N("172.17.0.0/16")


def test_pick_subnet_skips_taken_and_overlapping() -> None:
    taken = [N("172.17.0.0/16"), N("172.18.42.0/24"), N("172.19.0.5/32")]
    assert ipam.pick_subnet(taken) == N("172.20.0.0/16")


def test_pick_subnet_goes_to_192_168_in_slash_20s() -> None:
    taken = [N("172.16.0.0/12"), N("192.168.0.0/24"), N("192.168.17.0/24")]
    assert ipam.pick_subnet(taken) == N("192.168.32.0/20")


def test_pick_subnet_ignores_ipv6_entries() -> None:
    assert ipam.pick_subnet([IPv6Network("fd00::/8")]) == N("172.17.0.0/16")  # type: ignore[list-item]


def test_pick_subnet_exhausted() -> None:
    with pytest.raises(Unavailable, match="no free subnet in the default address pools"):
        ipam.pick_subnet([N("172.16.0.0/12"), N("192.168.0.0/16")])


def test_pick_subnet_user_pools_in_order() -> None:
    pools = [ipam.parse_pool("base=10.10.0.0/16,size=24"), ipam.parse_pool("base=10.20.0.0/16,size=24")]
    assert ipam.pick_subnet([], pools) == N("10.10.0.0/24")
    assert ipam.pick_subnet([N("10.10.0.0/16")], pools) == N("10.20.0.0/24")


def test_pick_subnet_is_fast_with_many_taken() -> None:
    pools = [ipam.parse_pool("base=10.0.0.0/8,size=24")]
    taken = [N((0x0A000000 + i * 256, 24)) for i in range(1000)]          # 10.0.0.0/24 .. 10.3.231.0/24
    taken += [N("10.3.232.0/21"), N("10.3.240.7/32")]
    got = ipam.pick_subnet(taken, pools)
    assert got == N("10.3.241.0/24")
    # a pool of 65536 candidates that are all taken is answered too (speed is bench's business)
    with pytest.raises(Unavailable):
        ipam.pick_subnet([N((0x0A000000 + i * 65536, 16)) for i in range(256)], pools)


def _naive_pick(taken: list[IPv4Network], pools: list[Pool]) -> IPv4Network | None:
    for pool in pools:
        for cand in pool.base.subnets(new_prefix=pool.size):
            if not any(cand.overlaps(t) for t in taken):
                return cand
    return None


_small_nets = st.builds(lambda a, p: N((a, p), strict=False),
                        st.integers(0x0A000000, 0x0A0003FF), st.integers(20, 32))


@given(taken=st.lists(_small_nets, max_size=30),
       sizes=st.lists(st.integers(24, 28), min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_pick_subnet_matches_first_fit(taken: list[IPv4Network], sizes: list[int]) -> None:
    pools = [Pool(N("10.0.0.0/22"), s) for s in sizes]
    expected = _naive_pick(taken, pools)
    if expected is None:
        with pytest.raises(Unavailable):
            ipam.pick_subnet(taken, pools)
    else:
        assert ipam.pick_subnet(taken, pools) == expected


# --- configs ------------------------------------------------------------------------

def test_parse_ipam_config_full_and_docker_roundtrip() -> None:
    cfg = ipam.parse_ipam_config("172.28.0.0/16", "172.28.5.254", "172.28.5.0/24",
                                 {"my-router": "172.28.1.5", "my-switch": "172.28.1.6"})
    assert cfg == IpamConfig(N("172.28.0.0/16"), A("172.28.5.254"), N("172.28.5.0/24"),
                             {"my-router": A("172.28.1.5"), "my-switch": A("172.28.1.6")})
    d = ipam_config_json(cfg)
    assert d == {"Subnet": "172.28.0.0/16", "IPRange": "172.28.5.0/24", "Gateway": "172.28.5.254",
                 "AuxiliaryAddresses": {"my-router": "172.28.1.5", "my-switch": "172.28.1.6"}}
    assert ipam_config_from_json(d) == cfg


def test_to_docker_omits_unset_keys() -> None:
    cfg = ipam.parse_ipam_config("10.1.0.0/24")
    assert ipam_config_json(cfg) == {"Subnet": "10.1.0.0/24"}
    assert ipam_config_from_json({"Subnet": "10.1.0.0/24"}) == cfg
    assert ipam_config_from_json({"Subnet": "10.1.0.0/24", "Gateway": "", "IPRange": "",
                                   "AuxiliaryAddresses": None}) == cfg


def test_from_docker_validates() -> None:
    with pytest.raises(InvalidArgument, match="gateway"):
        ipam_config_from_json({"Subnet": "10.1.0.0/24", "Gateway": "10.2.0.1"})
    with pytest.raises(InvalidArgument, match="subnet"):
        ipam_config_from_json({})


@pytest.mark.parametrize("kwargs, field, reason", [
    ({"subnet": "nonsense"}, "subnet", "not a CIDR"),
    ({"subnet": "10.0.0.0"}, "subnet", "not a CIDR"),
    ({"subnet": "10.0.0.0/33"}, "subnet", "not a CIDR"),
    ({"subnet": "10.0.0.1/24"}, "subnet", "host bits set, did you mean 10.0.0.0/24?"),
    ({"subnet": "10.0.0.0/31"}, "subnet", "no room"),
    ({"subnet": "10.0.0.0/32"}, "subnet", "no room"),
    ({"subnet": "fd00::/127"}, "subnet", "no room"),
    ({"subnet": "fd00::1/64"}, "subnet", "host bits set, did you mean fd00::/64?"),
    ({"subnet": "fd00::/64", "gateway": "10.0.0.1"}, "gateway", "not an IPv6 address"),
    ({"subnet": "fd00::/64", "ip_range": "10.0.0.0/24"}, "ip-range", "not inside subnet fd00::/64"),
    ({"subnet": "10.0.0.0/24", "gateway": "ten"}, "gateway", "not an IPv4 address"),
    ({"subnet": "10.0.0.0/24", "gateway": "fd00::1"}, "gateway", "not an IPv4 address"),
    ({"subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}, "gateway", "not in subnet 10.0.0.0/24"),
    ({"subnet": "10.0.0.0/24", "gateway": "10.0.0.0"}, "gateway", "network address"),
    ({"subnet": "10.0.0.0/24", "gateway": "10.0.0.255"}, "gateway", "broadcast address"),
    ({"subnet": "10.0.0.0/24", "ip_range": "10.0.0.0"}, "ip-range", "not a CIDR"),
    ({"subnet": "10.0.0.0/24", "ip_range": "10.0.0.128/33"}, "ip-range", "not a CIDR"),
    ({"subnet": "10.0.0.0/24", "ip_range": "10.0.1.0/25"}, "ip-range", "not inside subnet 10.0.0.0/24"),
    ({"subnet": "10.0.0.0/24", "ip_range": "10.0.0.0/23"}, "ip-range", "not inside subnet 10.0.0.0/24"),
    ({"subnet": "10.0.0.0/24", "ip_range": "10.0.0.129/25"}, "ip-range", "host bits set"),
    ({"subnet": "10.0.0.0/24", "aux": {"": "10.0.0.5"}}, "aux-address", "NAME=IP"),
    ({"subnet": "10.0.0.0/24", "aux": {"r": "five"}}, "aux-address", "NAME=IP"),
    ({"subnet": "10.0.0.0/24", "aux": {"r": "10.0.9.5"}}, "aux-address", "not in subnet 10.0.0.0/24"),
    ({"subnet": "10.0.0.0/24", "aux": {"r": "10.0.0.255"}}, "aux-address", "broadcast"),
    ({"subnet": "10.0.0.0/24", "gateway": "10.0.0.9", "aux": {"r": "10.0.0.9"}}, "aux-address", "gateway"),
    ({"subnet": "10.0.0.0/24", "aux": {"r": "10.0.0.1"}}, "aux-address", "gateway"),   # the default gateway
])
def test_parse_ipam_config_errors(kwargs: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        ipam.parse_ipam_config(**kwargs)  # type: ignore[arg-type]
    msg = str(e.value)
    assert msg.startswith(f"invalid {field} "), msg
    assert reason in msg and "\n" not in msg


def test_parse_ipam_config_accepts_edges() -> None:
    cfg = ipam.parse_ipam_config("10.0.0.0/30", "10.0.0.2")
    assert cfg.gateway == A("10.0.0.2")
    assert ipam.parse_ipam_config("10.0.0.0/24", ip_range="10.0.0.0/24").ip_range == N("10.0.0.0/24")
    assert ipam.parse_ipam_config("10.0.0.0/24", ip_range="10.0.0.7/32").ip_range == N("10.0.0.7/32")


def test_parse_aux_address() -> None:
    assert ipam.parse_aux_address("my-router=172.28.1.5") == ("my-router", "172.28.1.5")
    for bad in ("my-router", "=172.28.1.5", "my-router="):
        with pytest.raises(InvalidArgument, match=r"^invalid aux-address .*NAME=IP"):
            ipam.parse_aux_address(bad)


def test_check_overlap() -> None:
    existing = {"greatwall": N("172.18.0.0/16"), "other": N("10.0.0.0/24")}
    ipam.check_overlap(N("172.19.0.0/16"), existing)
    with pytest.raises(Conflict) as e:
        ipam.check_overlap(N("172.18.0.0/16"), existing)
    assert str(e.value) == 'subnet 172.18.0.0/16 overlaps with network "greatwall" (172.18.0.0/16)'
    with pytest.raises(Conflict, match='network "other"'):
        ipam.check_overlap(N("10.0.0.0/8"), existing)


# --- AddressPool --------------------------------------------------------------------

def pool(subnet: str = "172.18.0.0/16", gateway: str | None = None, ip_range: str | None = None,
         aux: dict[str, str] | None = None, **kw: object) -> AddressPool:
    return AddressPool(ipam.parse_ipam_config(subnet, gateway, ip_range, aux), **kw)  # type: ignore[arg-type]


def test_gateway_defaults_to_first_address() -> None:
    assert pool().gateway == A("172.18.0.1")
    assert pool(gateway="172.18.255.254").gateway == A("172.18.255.254")


def test_sequential_allocation_skips_gateway() -> None:
    p = pool()
    assert [str(p.allocate()) for _ in range(3)] == ["172.18.0.2", "172.18.0.3", "172.18.0.4"]
    assert p.last == A("172.18.0.4")
    assert p.leased == frozenset({A("172.18.0.2"), A("172.18.0.3"), A("172.18.0.4")})


def test_allocation_skips_aux_and_custom_gateway() -> None:
    p = pool("10.5.0.0/29", gateway="10.5.0.3", aux={"r": "10.5.0.1"})
    assert [str(p.allocate()) for _ in range(4)] == ["10.5.0.2", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(Unavailable) as e:
        p.allocate()
    assert str(e.value) == "no free address in 10.5.0.0/29"


def test_the_lowest_free_address_is_handed_out_as_docker_does() -> None:
    p = pool("10.5.0.0/29")                       # usable for containers: .2 .. .6
    a = [p.allocate() for _ in range(3)]          # .2 .3 .4
    p.release(a[1])
    assert p.allocate() == A("10.5.0.3")          # dockerd 20.10 reuses a released address at once
    p.release(a[0])
    assert p.allocate() == A("10.5.0.2")
    assert p.allocate() == A("10.5.0.5")
    assert p.allocate() == A("10.5.0.6")
    with pytest.raises(Unavailable):
        p.allocate()


def test_release_is_idempotent_and_takes_strings() -> None:
    p = pool("10.5.0.0/30")                       # one address for a container: .2
    ip = p.allocate()
    assert ip == A("10.5.0.2")
    p.release("10.5.0.2")
    p.release("10.5.0.2")
    p.release(A("10.5.0.3"))
    assert p.leased == frozenset()
    assert p.allocate() == ip


def test_resume_from_stored_state() -> None:
    p = pool(leased=[A("172.18.0.2"), A("172.18.0.3")], last=A("172.18.0.3"))
    assert p.allocate() == A("172.18.0.4")
    q = pool(leased=[A("172.18.0.2")], last=A("172.18.0.9"))
    assert q.allocate() == A("172.18.0.3")


def test_ip_range_allocation_like_docker() -> None:
    p = pool("172.28.0.0/16", ip_range="172.28.5.0/30")
    # Docker hands out the range's own first address; only the subnet's network/broadcast are reserved
    got = [str(p.allocate()) for _ in range(4)]
    assert got == ["172.28.5.0", "172.28.5.1", "172.28.5.2", "172.28.5.3"]
    with pytest.raises(Unavailable, match=r"no free address in 172\.28\.5\.0/30 of 172\.28\.0\.0/16"):
        p.allocate()
    # a static address outside the range but inside the subnet is fine
    assert p.allocate("172.28.9.9") == A("172.28.9.9")


def test_cursor_outside_range_starts_at_range() -> None:
    p = pool("172.28.0.0/16", ip_range="172.28.5.0/24", last=A("172.28.9.9"))
    assert p.allocate() == A("172.28.5.0")


def test_static_allocation_does_not_move_cursor() -> None:
    p = pool()
    assert p.allocate("172.18.0.50") == A("172.18.0.50")
    assert p.last is None
    assert p.allocate() == A("172.18.0.2")


def test_static_allocation_errors() -> None:
    p = pool(aux={"router": "172.18.0.9"})
    p.allocate("172.18.0.5")
    with pytest.raises(InvalidArgument) as e:
        p.allocate("10.9.0.5")
    assert str(e.value) == "invalid ip 10.9.0.5: not in subnet 172.18.0.0/16"
    with pytest.raises(InvalidArgument, match=r"^invalid ip 'nonsense': not an IPv4 address$"):
        p.allocate("nonsense")
    with pytest.raises(Conflict) as c:
        p.allocate("172.18.0.5")
    assert str(c.value) == "ip 172.18.0.5 is already in use"
    for addr, what in [("172.18.0.0", "network address"), ("172.18.255.255", "broadcast address"),
                       ("172.18.0.1", "gateway"), ("172.18.0.9", "auxiliary address router")]:
        with pytest.raises(Conflict) as c:
            p.allocate(addr)
        assert str(c.value).startswith(f"ip {addr} is already in use") and what in str(c.value)


def test_exhaustion_message() -> None:
    p = pool("10.5.0.0/30")
    p.allocate()
    with pytest.raises(Unavailable) as e:
        p.allocate()
    assert str(e.value) == "no free address in 10.5.0.0/30"


def test_thousand_allocations_are_fast() -> None:
    p = pool()
    ips = [p.allocate() for _ in range(1000)]
    assert len(set(ips)) == 1000


def test_allocation_in_crowded_pool_after_wrap_is_fast() -> None:
    net = N("10.7.0.0/16")
    leased = [a for a in net.hosts() if int(a) % 2 == 0][1:]            # every even address but .0
    p = AddressPool(IpamConfig(net), leased=leased, last=A("10.7.255.250"))
    got = {p.allocate() for _ in range(1000)}
    assert len(got) == 1000 and not got & set(leased)


_configs = st.builds(
    lambda prefix, gw_off, rng_prefix, rng_off, aux_offs: (prefix, gw_off, rng_prefix, rng_off, aux_offs),
    st.integers(26, 30), st.none() | st.integers(1, 62), st.none() | st.integers(26, 32),
    st.integers(0, 63), st.lists(st.integers(1, 62), max_size=3),
)


def _build(spec: tuple[int, int | None, int | None, int, list[int]]) -> IpamConfig:
    prefix, gw_off, rng_prefix, rng_off, aux_offs = spec
    net = N(f"10.1.2.0/{prefix}")
    size = net.num_addresses
    gw = net.network_address + gw_off if gw_off is not None and gw_off < size - 1 else None
    rng = None
    if rng_prefix is not None and rng_prefix >= prefix:
        rng = N((int(net.network_address) + rng_off % size, rng_prefix), strict=False)
    eff_gw = gw or net.network_address + 1
    aux = {f"a{i}": net.network_address + off for i, off in enumerate(aux_offs)
           if off < size - 1 and net.network_address + off != eff_gw}
    return IpamConfig(net, gw, rng, aux)


@given(spec=_configs, ops=st.lists(st.tuples(st.sampled_from(["auto", "static", "release"]),
                                             st.integers(0, 63)), max_size=80))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_allocator_properties(spec: tuple[int, int | None, int | None, int, list[int]],
                              ops: list[tuple[str, int]]) -> None:
    cfg = _build(spec)
    p = AddressPool(cfg)
    net, rng = cfg.subnet, cfg.ip_range or cfg.subnet
    reserved = {net.network_address, net.broadcast_address, p.gateway, *cfg.aux.values()}
    mine: set[IPv4Address] = set()
    for op, n in ops:
        if op == "auto":
            free = {a for a in rng if a not in reserved and a not in mine}
            if not free:
                with pytest.raises(Unavailable):
                    p.allocate()
                continue
            ip = p.allocate()
            assert ip in free and ip in rng
            mine.add(ip)
        elif op == "static":
            want = net.network_address + n % net.num_addresses
            if want in reserved or want in mine:
                with pytest.raises(Conflict, match="is already in use"):
                    p.allocate(want)
                continue
            assert p.allocate(str(want)) == want
            mine.add(want)
        elif mine:
            victim = sorted(mine)[n % len(mine)]
            p.release(victim)
            mine.discard(victim)
            if victim in rng:
                # with everything else in the range taken, the released address is the one handed out
                while True:
                    ip = p.allocate()
                    mine.add(ip)
                    if ip == victim:
                        break
        assert p.leased == frozenset(mine)
        assert not (mine & reserved)
        assert all(a in net for a in mine)


# --- MAC addresses ------------------------------------------------------------------

def test_mac_for_ip() -> None:
    assert ipam.mac_for_ip(A("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.mac_for_ip(A("10.255.0.1")) == "02:42:0a:ff:00:01"


def test_random_mac_is_local_unicast() -> None:
    macs = {ipam.random_mac() for _ in range(200)}
    assert len(macs) > 190
    for mac in macs:
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01
        assert ipam.parse_mac(mac) == mac


@pytest.mark.parametrize("text, norm", [
    ("02:42:AC:11:00:02", "02:42:ac:11:00:02"),
    ("02-42-ac-11-00-02", "02:42:ac:11:00:02"),
    ("2:42:ac:11:0:2", "02:42:ac:11:00:02"),
    ("0242.ac11.0002", "02:42:ac:11:00:02"),
    (" 92:1f:00:aa:bb:cc ", "92:1f:00:aa:bb:cc"),
])
def test_parse_mac_normalises(text: str, norm: str) -> None:
    assert ipam.parse_mac(text) == norm


@pytest.mark.parametrize("text, reason", [
    ("nonsense", "not a MAC address"),
    ("02:42:ac:11:00", "not a MAC address"),
    ("02:42:ac:11:00:02:03", "not a MAC address"),
    ("02:42-ac:11:00:02", "not a MAC address"),
    ("02:42:ac:11:00:g2", "not a MAC address"),
    ("01:00:5e:00:00:01", "multicast"),
    ("ff:ff:ff:ff:ff:ff", "multicast"),
    ("00:00:00:00:00:00", "all-zero"),
])
def test_parse_mac_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        ipam.parse_mac(text)
    assert str(e.value).startswith("invalid mac-address ") and reason in str(e.value)


# --- IPv6 (``--ipv6`` networks) -----------------------------------------------------

def test_ipv6_config_gateway_defaults_to_subnet_one_and_round_trips() -> None:
    cfg = ipam.parse_ipam_config("fd00:30::/64")
    assert cfg.version == 6
    pool = ipam.AddressPool(cfg)
    assert str(pool.gateway) == "fd00:30::1"
    assert ipam_config_from_json(ipam_config_json(cfg)) == cfg
    custom = ipam.parse_ipam_config("fd00:30::/64", "fd00:30::fe", "fd00:30::100/120")
    assert ipam_config_json(custom) == {"Subnet": "fd00:30::/64", "IPRange": "fd00:30::100/120", "Gateway": "fd00:30::fe"}


def test_ipv6_allocation_takes_the_lowest_free_and_static_requests_are_checked() -> None:
    cfg = ipam.parse_ipam_config("fd00:30::/64")
    pool = ipam.AddressPool(cfg)
    assert [str(pool.allocate()) for _ in range(3)] == ["fd00:30::2", "fd00:30::3", "fd00:30::4"]
    pool.release("fd00:30::3")
    assert str(pool.allocate()) == "fd00:30::3"          # the lowest free, as Docker
    assert str(pool.allocate("fd00:30::99")) == "fd00:30::99"
    with pytest.raises(Conflict):
        pool.allocate("fd00:30::1")                      # the gateway
    with pytest.raises(Conflict):
        pool.allocate("fd00:30::")                       # the subnet-router anycast address
    with pytest.raises(InvalidArgument, match="ip6"):
        pool.allocate("10.0.0.1")
    with pytest.raises(InvalidArgument, match="not in subnet"):
        pool.allocate("fd00:31::5")
    assert str(ipam.AddressPool(cfg, leased=pool.leased, last=pool.last).allocate()) == "fd00:30::5"


def test_ipv6_small_range_fills_up_and_last_address_is_usable() -> None:
    pool = ipam.AddressPool(ipam.parse_ipam_config("fd00::/126"))     # ::0 anycast, ::1 gateway
    assert [str(pool.allocate()) for _ in range(2)] == ["fd00::2", "fd00::3"]   # no broadcast in IPv6
    with pytest.raises(Unavailable):
        pool.allocate()


def test_ipv6_and_ipv4_subnets_never_overlap() -> None:
    ipam.check_overlap(N("10.0.0.0/8"), {"v6": ipaddress.ip_network("fd00::/8")})
    with pytest.raises(Conflict):
        ipam.check_overlap(ipaddress.ip_network("fd00:1::/64"), {"v6": ipaddress.ip_network("fd00::/16")})
