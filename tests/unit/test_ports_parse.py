"""``-p/--publish`` and ``--expose`` parsing (cove.cli.ports), checked against docker's rules."""

from __future__ import annotations

import pytest

from cove.cli.ports import PortMapping, parse_expose, parse_publish, port_maps
from cove.errors import InvalidArgument


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping("80/tcp", "", "")]),
        ("8080:80", [PortMapping("80/tcp", "", "8080")]),
        ("127.0.0.1:8080:80", [PortMapping("80/tcp", "127.0.0.1", "8080")]),
        ("127.0.0.1::80", [PortMapping("80/tcp", "127.0.0.1", "")]),
        ("53/udp", [PortMapping("53/udp", "", "")]),
        ("5353:53/UDP", [PortMapping("53/udp", "", "5353")]),
        ("132:132/sctp", [PortMapping("132/sctp", "", "132")]),
        ("[::1]:8080:80", [PortMapping("80/tcp", "::1", "8080")]),
        ("[::]::80/udp", [PortMapping("80/udp", "::", "")]),
        ("::1:8080:80", [PortMapping("80/tcp", "::1", "8080")]),
        ("0.0.0.0:0:80", [PortMapping("80/tcp", "0.0.0.0", "0")]),
    ],
)
def test_single_port_forms(spec: str, expected: list[PortMapping]) -> None:
    assert parse_publish(spec) == expected


def test_ranges_map_port_by_port() -> None:
    mappings = parse_publish("8000-8010:80-90")
    assert len(mappings) == 11
    assert mappings[0] == PortMapping("80/tcp", "", "8000")
    assert mappings[-1] == PortMapping("90/tcp", "", "8010")
    assert [m.port for m in mappings] == [f"{p}/tcp" for p in range(80, 91)]


def test_container_range_without_host_port() -> None:
    assert parse_publish("127.0.0.1::7000-7001/udp") == [
        PortMapping("7000/udp", "127.0.0.1", ""),
        PortMapping("7001/udp", "127.0.0.1", ""),
    ]


def test_host_range_for_one_container_port_is_kept_as_a_range() -> None:
    # The daemon picks one free port in the range, as docker's does.
    assert parse_publish("8000-8010:80") == [PortMapping("80/tcp", "", "8000-8010")]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "no container port"),
        ("8080:", "no container port"),
        ("abc", "container port"),
        ("8080:abc", "container port"),
        ("x:80", "host port"),
        ("70000:80", "out of range"),
        ("80:70000", "out of range"),
        ("90-80", "ends before it starts"),
        ("8000-8001:80-90", "different sizes"),
        ("80/icmp", "invalid protocol"),
        ("1.2.3:8080:80", "invalid IP address"),
        ("[::1:8080:80", "bracket"),
        ("localhost:8080:80", "invalid IP address"),
        ("+80", "container port"),
        ("8_0", "container port"),
    ],
)
def test_bad_specs_give_one_line_errors_naming_the_spec(spec: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_publish(spec)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"invalid publish {spec!r}: ")
    assert reason in message


def test_port_maps_merges_bindings_and_exposes() -> None:
    exposed, bindings = port_maps(
        ["8080:80", "127.0.0.1:8081:80", "53/udp"], ["443", "7000-7001/udp"]
    )
    assert exposed == {"80/tcp": {}, "53/udp": {}, "443/tcp": {}, "7000/udp": {}, "7001/udp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }


def test_expose_forms_and_errors() -> None:
    assert parse_expose("80") == ["80/tcp"]
    assert parse_expose("80-81/udp") == ["80/udp", "81/udp"]
    with pytest.raises(InvalidArgument, match=r"^invalid expose 'x': "):
        parse_expose("x")
    with pytest.raises(InvalidArgument, match="invalid protocol"):
        parse_expose("80/bogus")
