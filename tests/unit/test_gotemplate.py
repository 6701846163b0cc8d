from __future__ import annotations

import pytest

from cove.cli.gotemplate import TemplateError, render, table_format

C = {"Id": "abc123", "Name": "/milk", "State": {"Pid": 4242, "Running": True, "ExitCode": 0},
     "Args": ["-c", "sleep 1"], "Config": {"Labels": {"tier": "web", "a.b": "x"}},
     "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "greatwall": {"IPAddress": "172.18.0.3"}}}}


@pytest.mark.parametrize("tpl, out", [
    ("{{.State.Pid}}", "4242"),
    ("{{ .Name }}", "/milk"),
    ("{{.NetworkSettings.Networks.bridge.IPAddress}}", "172.17.0.2"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "172.17.0.2 172.18.0.3 "),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}", "bridge=172.17.0.2;greatwall=172.18.0.3;"),
    ('{{index .Config.Labels "a.b"}}', "x"),
    ("{{json .State}}", '{"Pid":4242,"Running":true,"ExitCode":0}'),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .State.ExitCode}}bad{{else if .State.Running}}running{{else}}x{{end}}", "running"),
    ("{{with .Config}}{{.Labels.tier}}{{end}}", "web"),
    ("{{.Args}}", "[-c sleep 1]"),
    ('{{join .Args ","}}', "-c,sleep 1"),
    ("{{.Name | upper}}", "/MILK"),
    ("{{len .Args}}", "2"),
    ("{{truncate .Id 3}}", "abc"),
    ('{{printf "%s:%d" .Name .State.Pid}}', "/milk:4242"),
    ("{{.Nope}}", "<no value>"),
    ("a {{- .Id -}} b", "aabc123b"),
    ("{{/* comment */}}x", "x"),
    ("{{$n := .Name}}{{$n}}", "/milk"),
    ('{{if eq .Name "/milk"}}yes{{end}}', "yes"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
])
def test_forms_people_type(tpl: str, out: str) -> None:
    assert render(tpl, C) == out


@pytest.mark.parametrize("tpl, word", [
    ("{{.Name.Foo}}", "can't evaluate field Foo"), ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ("{{if .Name}}x", "missing {{end}}"), ("{{end}}", "unexpected {{end}}"), ("{{.Name", "unclosed action"),
])
def test_errors_say_what_is_wrong(tpl: str, word: str) -> None:
    with pytest.raises(TemplateError) as e:
        render(tpl, C)
    assert word in str(e.value)


def test_table_prefix() -> None:
    assert table_format("table {{.ID}}\t{{.Name}}") == (True, "{{.ID}}\t{{.Name}}")
    assert table_format("{{.ID}}") == (False, "{{.ID}}")
