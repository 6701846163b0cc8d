"""The one true/false parser (model.parse_bool) and the one address test (ipam.is_ip), as every
caller sees them: a network option, a daemon setting, a list filter."""

from __future__ import annotations

import pytest

from cove.daemon.listfilters import ContainerRow, select_containers
from cove.daemon.settings import SettingsError, convert
from cove.errors import InvalidArgument
from cove.ipam import is_ip
from cove.model import Network, parse_bool
from cove.drivers.options import bool_option


@pytest.mark.parametrize("word", ["true", "1", "yes", "on", "TRUE", " On ", True])
def test_true_words(word: object) -> None:
    assert parse_bool("f", word) is True


@pytest.mark.parametrize("word", ["false", "0", "no", "off", "False", False])
def test_false_words(word: object) -> None:
    assert parse_bool("f", word) is False


@pytest.mark.parametrize("word", ["maybe", "", "2", None, 1])
def test_other_values_name_the_field(word: object) -> None:
    with pytest.raises(InvalidArgument, match=r"invalid my-field .*must be true or false"):
        parse_bool("my-field", word)


def test_network_option_default_and_error() -> None:
    net = Network(id="n1", name="n", driver="macvlan", created="", options={"host_access": "on", "odd": "maybe"})
    assert bool_option(net, "host_access", False) is True
    assert bool_option(net, "absent", True) is True
    with pytest.raises(InvalidArgument, match="option odd 'maybe': must be true or false"):
        bool_option(net, "odd", False)


def test_daemon_setting_keeps_its_own_error() -> None:
    assert convert("icc", "bool", "yes") is True
    assert convert("iptables", "iptables", "false") == "none"
    with pytest.raises(SettingsError, match=r"invalid daemon setting icc='maybe': must be true or false"):
        convert("icc", "bool", "maybe")


def test_list_filter_bool() -> None:
    rows = [ContainerRow({"Id": "a" * 64, "Names": ["/web"], "State": "running", "Labels": {}})]
    assert select_containers(rows, {"is-task": ["yes"]}, all_=True) == []
    with pytest.raises(InvalidArgument, match="Invalid filter 'is-task=maybe'"):
        select_containers(rows, {"is-task": ["maybe"]}, all_=True)


@pytest.mark.parametrize("text,ok", [("10.0.0.1", True), ("fd00::1", True), ("example.com", False),
                                     ("10.0.0.256", False), ("", False)])
def test_is_ip(text: str, ok: bool) -> None:
    assert is_ip(text) is ok
