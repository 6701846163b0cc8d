"""``--format``/``-f`` templates (cove.cli.gotemplate): what docker users type, and what
Go's text/template prints for it on JSON data (docker's typed output where they differ)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cove.cli.gotemplate import Template, TemplateError, parse, render, table_format
from cove.errors import CoveError, InvalidArgument

CID = "4f9a1c2b3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12"

# A container as `docker inspect` shows it (trimmed).  The networks are deliberately
# not in sorted order: range over a map must sort the keys.
CONTAINER: dict[str, Any] = {
    "Id": CID,
    "Created": "2026-11-23T09:00:00.123456789Z",
    "Path": "sh",
    "Args": ["-c", "sleep 1000"],
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 1234,
              "ExitCode": 0, "Health": None},
    "Name": "/milk",
    "RestartCount": 0,
    "HostConfig": {"NetworkMode": "bridge", "Memory": 0, "Dns": []},
    "Config": {
        "Hostname": "4f9a1c2b3d4e",
        "Env": ["PATH=/usr/bin", "TERM=xterm"],
        "Cmd": ["sh", "-c", "sleep 1000"],
        "Entrypoint": None,
        "Image": "busybox",
        "Labels": {"com.docker.compose.project": "dairy", "tier": "web"},
        "ExposedPorts": {"80/tcp": {}},
    },
    "NetworkSettings": {
        "Networks": {
            "greatwall": {"IPAddress": "172.18.0.3", "IPPrefixLen": 16, "Gateway": "172.18.0.1",
                          "Aliases": ["milk", "4f9a1c2b3d4e"]},
            "bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16, "Gateway": "172.17.0.1",
                       "Aliases": None},
        },
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None},
    },
    "Mounts": [],
    "Stats": {"CpuPercent": 12.5, "Ratio": 1e-07, "Whole": 3.0, "Big": 1234567.5,
              "Small": 0.0001},
}

NETWORK: dict[str, Any] = {
    "Name": "greatwall",
    "Id": "9b1f" + "0" * 60,
    "Driver": "bridge",
    "Scope": "local",
    "EnableIPv6": False,
    "Internal": False,
    "IPAM": {"Driver": "default", "Options": {},
             "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]},
    "Containers": {
        CID: {"Name": "milk", "IPv4Address": "172.18.0.3/16", "MacAddress": "02:42:ac:12:00:03"},
        "77aa" + "0" * 60: {"Name": "cheese", "IPv4Address": "172.18.0.4/16",
                            "MacAddress": "02:42:ac:12:00:04"},
    },
    "Options": {"com.docker.network.bridge.name": "br-greatwall"},
    "Labels": {},
}

ROWS = [  # rows as `cove ps` hands them to the template
    {"ID": "4f9a1c2b3d4e", "Image": "busybox", "Names": "milk", "Status": "Up 2 minutes"},
    {"ID": "77aa00000000", "Image": "alpine", "Names": "cheese", "Status": "Exited (0) 1 second ago"},
]


def r(text: str, data: object = CONTAINER) -> str:
    return render(text, data)


def cases(*pairs: tuple[str, str]) -> Any:
    return pytest.mark.parametrize(("text", "expected"), pairs, ids=[p[0] for p in pairs])


# ---------------------------------------------------------------------------- fields


@cases(
    ("{{.State.Pid}}", "1234"),
    ("{{ .Name }}", "/milk"),
    ("{{.Name}}", "/milk"),
    ("pid={{.State.Pid}} name={{.Name}}\n", "pid=1234 name=/milk\n"),
    ("{{.NetworkSettings.Networks.bridge.IPAddress}}", "172.17.0.2"),
    ("{{.NetworkSettings.Networks.greatwall.Gateway}}", "172.18.0.1"),
    ("{{.Config.Labels.tier}}", "web"),
    ("{{$.Name}}", "/milk"),
    ("{{.Nope}}", "<no value>"),  # missing key
    ("{{.Nope.Deeper.Still}}", "<no value>"),  # fields of a missing value are missing too
    ("{{.name}}", "<no value>"),  # keys match exactly
    ("{{.State.Health}}", "<nil>"),  # explicit null
    ("{{.NetworkSettings.Networks.bridge.Aliases}}", "<nil>"),
    ("no actions at all", "no actions at all"),
    ("}} stray closers are text", "}} stray closers are text"),
    ("", ""),
)
def test_field_paths(text: str, expected: str) -> None:
    assert r(text) == expected


def test_dot_is_the_whole_value() -> None:
    assert r("{{.}}", "just a string") == "just a string"
    assert r("{{.}}", 7) == "7"
    assert r("{{.}}", ROWS[0]) == "map[ID:4f9a1c2b3d4e Image:busybox Names:milk Status:Up 2 minutes]"


def test_field_of_a_parenthesised_value() -> None:
    assert r('{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}}') == "8080"
    assert r("{{(.NetworkSettings.Networks).bridge.Gateway}}") == "172.17.0.1"


# ---------------------------------------------------------------------------- printing


@cases(
    ("{{.Args}}", "[-c sleep 1000]"),
    ("{{.Config.Env}}", "[PATH=/usr/bin TERM=xterm]"),
    ("{{.Mounts}}", "[]"),
    ("{{.Config.Labels}}", "map[com.docker.compose.project:dairy tier:web]"),
    ("{{.Config.ExposedPorts}}", "map[80/tcp:map[]]"),
    ("{{.NetworkSettings.Ports}}", "map[443/tcp:<nil> 80/tcp:[map[HostIp:0.0.0.0 HostPort:8080]]]"),
    ("{{.State.Running}}", "true"),
    ("{{.State.Paused}}", "false"),
    ("{{.State.ExitCode}}", "0"),
    ("{{.Stats.CpuPercent}}", "12.5"),
    ("{{.Stats.Whole}}", "3"),  # integral numbers print as integers, as docker's ints do
    ("{{.Stats.Ratio}}", "1e-07"),  # other floats the way Go's %v does
    ("{{.Stats.Small}}", "0.0001"),
    ("{{.Stats.Big}}", "1.2345675e+06"),
)
def test_values_print_like_go(text: str, expected: str) -> None:
    assert r(text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1234.0, "1234"), (-2.0, "-2"), (0.0, "0"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (0.5, "0.5"), (-0.25, "-0.25"), (123456.5, "123456.5"),
    (0.00001234, "1.234e-05"), (3.14159, "3.14159"), (2 ** 53 + 0.0, "9007199254740992"),
])
def test_float_forms(value: float, expected: str) -> None:
    assert r("{{.V}}", {"V": value}) == expected


# ---------------------------------------------------------------------------- whitespace


@cases(
    ("a  {{- .Name -}}  b", "a/milkb"),
    ("a {{.Name -}}\n\n b", "a /milkb"),
    ("a \n\t{{- .Name}} b", "a/milk b"),
    ("{{.Name   -}}   x", "/milkx"),
    ("x {{-3}} y", "x -3 y"),  # no space after the dash: a negative number, not a trim
    ("x {{- 3}} y", "x3 y"),
    ("x {{3 -}} y", "x 3y"),
    ("{{range .Args -}}\n  <{{.}}>\n{{end -}}\n", "<-c>\n<sleep 1000>\n"),
    ("{{if .State.Running -}}\n    up\n{{- else -}}\n    down\n{{- end}}", "up"),
)
def test_trim_markers(text: str, expected: str) -> None:
    assert r(text) == expected


@cases(
    ("a{{/* a note */}}b", "ab"),
    ("a {{- /* a note */ -}} b", "ab"),
    ("{{/* spans\nlines */}}x", "x"),
    ("{{/* {{.Name}} is not run */}}x", "x"),
)
def test_comments(text: str, expected: str) -> None:
    assert r(text) == expected


# ---------------------------------------------------------------------------- variables


@cases(
    ("{{$name := .Name}}[{{$name}}]", "[/milk]"),
    ("{{$net := .NetworkSettings.Networks.bridge}}{{$net.IPAddress}}/{{$net.IPPrefixLen}}",
     "172.17.0.2/16"),
    ("{{range .Args}}{{$.Name}}:{{.}} {{end}}", "/milk:-c /milk:sleep 1000 "),
    ("{{$n := 0}}{{range .Args}}{{$n = len .}}{{end}}{{$n}}", "10"),
    ("{{$first := true}}{{range .Args}}{{if not $first}}, {{end}}{{.}}{{$first = false}}{{end}}",
     "-c, sleep 1000"),
    ("{{with $p := .State.Pid}}{{$p}}{{end}}", "1234"),
    ("{{if $s := .State.Status}}{{$s}}{{else}}{{$s}}!{{end}}", "running"),
    ("{{$x := .Name | upper}}{{$x}}", "/MILK"),
)
def test_variables(text: str, expected: str) -> None:
    assert r(text) == expected


# ---------------------------------------------------------------------------- range


@cases(
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "172.17.0.2 172.18.0.3 "),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
     "bridge=172.17.0.2 greatwall=172.18.0.3 "),
    ("{{range $i, $a := .Args}}{{$i}}:{{$a}};{{end}}", "0:-c;1:sleep 1000;"),
    ("{{range $a := .Args}}{{$a}};{{end}}", "-c;sleep 1000;"),
    ("{{range .Mounts}}x{{else}}no mounts{{end}}", "no mounts"),
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{range .Nope}}x{{else}}none{{end}}", "none"),
    ("{{range .Mounts}}x{{end}}", ""),
    ("{{range $p, $b := .NetworkSettings.Ports}}{{$p}}{{if $b}}->{{(index $b 0).HostPort}}{{end}} {{end}}",
     "443/tcp 80/tcp->8080 "),
    ("{{range $n, $c := .NetworkSettings.Networks}}{{range $c.Aliases}}{{$n}}:{{.}} {{end}}{{end}}",
     "greatwall:milk greatwall:4f9a1c2b3d4e "),
    ("{{range .Args}}{{.}}{{break}}{{end}}", "-c"),
    ('{{range .Args}}{{if eq . "-c"}}{{continue}}{{end}}[{{.}}]{{end}}', "[sleep 1000]"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range $i, $e := .Args}}{{end}}{{len .Args}}", "2"),
)
def test_range(text: str, expected: str) -> None:
    assert r(text) == expected


def test_range_over_a_network() -> None:
    text = ("{{.Name}} {{range .IPAM.Config}}{{.Subnet}} via {{.Gateway}}{{end}}:"
            "{{range .Containers}} {{.Name}}={{.IPv4Address}}{{end}}")
    # Containers is keyed by id; 4f9a... sorts before 77aa...
    assert r(text, NETWORK) == "greatwall 172.18.0.0/16 via 172.18.0.1: milk=172.18.0.3/16 cheese=172.18.0.4/16"
    assert r('{{index .Options "com.docker.network.bridge.name"}}', NETWORK) == "br-greatwall"
    assert r("{{if .Labels}}labels{{else}}no labels{{end}}", NETWORK) == "no labels"


# ---------------------------------------------------------------------------- if / with


@cases(
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .State.Paused}}paused{{end}}", ""),
    ("{{if .State.Paused}}paused{{else if .State.Running}}running{{else}}stopped{{end}}", "running"),
    ("{{if .State.Paused}}a{{else if .State.ExitCode}}b{{else if .Nope}}c{{else}}d{{end}}", "d"),
    ('{{if and .State.Running (eq .State.ExitCode 0)}}healthy{{end}}', "healthy"),
    ("{{with .Config.Labels.tier}}tier={{.}}{{end}}", "tier=web"),
    ("{{with .Nope}}x{{else}}y{{end}}", "y"),
    ("{{with .Mounts}}x{{end}}", ""),
    ("{{with .Config}}{{.Image}} {{$.Name}}{{end}}", "busybox /milk"),
    ("{{with .Nope}}a{{else with .Config.Hostname}}b={{.}}{{else}}c{{end}}", "b=4f9a1c2b3d4e"),
    ("{{range .Args}}{{if eq . \"-c\"}}flag{{else}}arg{{end}} {{end}}", "flag arg "),
)
def test_if_and_with(text: str, expected: str) -> None:
    assert r(text) == expected


@pytest.mark.parametrize("value", [False, 0, 0.0, "", None, [], {}])
def test_falsy_values(value: object) -> None:
    assert r("{{if .V}}T{{else}}F{{end}}", {"V": value}) == "F"
    assert r("{{if not .V}}T{{else}}F{{end}}", {"V": value}) == "T"


@pytest.mark.parametrize("value", [True, 1, -1, 0.5, "0", "false", [0], {"a": None}])
def test_truthy_values(value: object) -> None:
    assert r("{{if .V}}T{{else}}F{{end}}", {"V": value}) == "T"


def test_missing_key_is_false() -> None:
    assert r("{{if .V}}T{{else}}F{{end}}", {}) == "F"


# ---------------------------------------------------------------------------- functions


@cases(
    ("{{json .Config.Labels}}", '{"com.docker.compose.project":"dairy","tier":"web"}'),
    ("{{json .Args}}", '["-c","sleep 1000"]'),
    ("{{json .Name}}", '"/milk"'),
    ("{{json .State}}",
     '{"Status":"running","Running":true,"Paused":false,"Pid":1234,"ExitCode":0,"Health":null}'),
    ("{{json .Stats}}",
     '{"CpuPercent":12.5,"Ratio":1e-7,"Whole":3,"Big":1234567.5,"Small":0.0001}'),
    ("{{json .Nope}}", "null"),
    ("{{json .Mounts}}", "[]"),
    ("{{json .Config.ExposedPorts}}", '{"80/tcp":{}}'),
    ('{{json "<a&b> \\"q\\" \\t"}}', '"<a&b> \\"q\\" \\t"'),  # no HTML escaping
    ('{{json "é\u2028"}}', '"é\\u2028"'),
    ("{{json 1e21}}", "1e+21"),
)
def test_json(text: str, expected: str) -> None:
    assert r(text) == expected


def test_json_of_everything_is_json_in_dict_order() -> None:
    out = r("{{json .}}")
    assert json.loads(out) == CONTAINER
    assert list(json.loads(out)) == list(CONTAINER)
    assert " " not in out.replace("sleep 1000", "")
    assert r("{{json .}}", NETWORK) == json.dumps(NETWORK, separators=(",", ":"))


@cases(
    ('{{index .Config.Labels "com.docker.compose.project"}}', "dairy"),
    ("{{index .Args 1}}", "sleep 1000"),
    ("{{index .Args 0}}", "-c"),
    ('{{index .NetworkSettings.Ports "80/tcp" 0 "HostPort"}}', "8080"),
    ('{{index (index .NetworkSettings.Networks "greatwall").Aliases 0}}', "milk"),
    ('{{index .Config.Labels "nope"}}', ""),                 # docker: a typed map[string]string
    ("{{index .Args}}", "[-c sleep 1000]"),
    ('{{index "abc" 1}}', "98"),  # a byte, as in Go
    ("{{len .Args}}", "2"),
    ("{{len .Config.Labels}}", "2"),
    ("{{len .Name}}", "5"),
    ('{{len "héllo"}}', "6"),  # bytes, as in Go
    ("{{len .Config.Entrypoint}}", "0"),  # null: docker's nil slice
    ("{{len .Mounts}}", "0"),
    ('{{len (index .Config.Labels "tier")}}', "3"),
    ("{{slice .Name 1}}", "milk"),
    ("{{slice .Name 1 3}}", "mi"),
    ("{{slice .Args 1 2}}", "[sleep 1000]"),
)
def test_index_len_slice(text: str, expected: str) -> None:
    assert r(text) == expected


@cases(
    ('{{eq .State.Status "running"}}', "true"),
    ("{{eq .State.Pid 1234}}", "true"),
    ("{{eq .Stats.CpuPercent 12.5}}", "true"),
    ("{{eq .Stats.Whole 3}}", "true"),  # a JSON number equals an int literal
    ("{{eq 1 2 3 1}}", "true"),  # eq with several: equal to any
    ("{{eq 1 2 3}}", "false"),
    ("{{eq .State.Health nil}}", "true"),
    ("{{eq .Name nil}}", "false"),
    ("{{eq true .State.Running}}", "true"),
    ('{{ne .Name "/milk"}}', "false"),
    ("{{lt 1 2}}", "true"),
    ("{{lt 2.5 2}}", "false"),
    ("{{le 2 2}}", "true"),
    ('{{gt "b" "a"}}', "true"),
    ("{{ge 1 2}}", "false"),
    ("{{ge .State.Pid 1000}}", "true"),
    ("{{and 1 0 2}}", "0"),
    ("{{and 1 2}}", "2"),
    ('{{or 0 "" "x"}}', "x"),
    ('{{or 0 ""}}', ""),
    ("{{or .Nope .Name}}", "/milk"),
    ("{{and .Nope .Name.Foo}}", "<no value>"),  # short-circuit: .Name.Foo is never evaluated
    ("{{or .Name .Name.Foo}}", "/milk"),
    ("{{not 0}}", "true"),
    ("{{not .Args}}", "false"),
    ("{{.State.Running | not}}", "false"),
    ("{{.State.Paused | and true}}", "false"),
)
def test_comparisons_and_logic(text: str, expected: str) -> None:
    assert r(text) == expected


@cases(
    ('{{printf "%s is %d" .Name .State.Pid}}', "/milk is 1234"),
    ('{{printf "%v" .Args}}', "[-c sleep 1000]"),
    ('{{printf "%v" .Config.Labels}}', "map[com.docker.compose.project:dairy tier:web]"),
    ('{{printf "%q" .Name}}', '"/milk"'),
    ('{{printf "%q" "a\\"b\\n"}}', '"a\\"b\\n"'),
    ('{{printf "%q" .Args}}', '["-c" "sleep 1000"]'),
    ('{{printf "%d%%" 50}}', "50%"),
    ('{{printf "%-8s|" "ab"}}', "ab      |"),
    ('{{printf "%8s|" "ab"}}', "      ab|"),
    ('{{printf "%.3s" "abcdef"}}', "abc"),
    ('{{printf "%05d" 42}}', "00042"),
    ('{{printf "%05d" -42}}', "-0042"),
    ('{{printf "%+d" 5}}', "+5"),
    ('{{printf "%.2f" .Stats.CpuPercent}}', "12.50"),
    ('{{printf "%5.1f|%-6v|" 3.14159 true}}', "  3.1|true  |"),
    ('{{printf "%x %X %o %b %c" 255 255 8 5 65}}', "ff FF 10 101 A"),
    ('{{printf "%x" "hi"}}', "6869"),
    ('{{printf "%t" .State.Running}}', "true"),
    ('{{printf "%e" 1234.5678}}', "1.234568e+03"),
    ('{{printf "%g" 0.000001}}', "1e-06"),
    ('{{printf "%v %v" nil .Nope}}', "<nil> <nil>"),
    ('{{printf "%v" .State.Health}}', "<nil>"),
    ('{{printf "%*d|" 4 7}}', "   7|"),
    ('{{printf "%s" 5}}', "%!s(int=5)"),
    ('{{printf "%d" "x"}}', "%!d(string=x)"),
    ('{{printf "%d" .State.Health}}', "%!d(<nil>)"),
    ('{{printf "%d %s" 1}}', "1 %!s(MISSING)"),
    ('{{printf "x" 1 "y"}}', "x%!(EXTRA int=1, string=y)"),
    ('{{printf "%z" 1}}', "%!z(int=1)"),
    ('{{printf "100%"}}', "100%!(NOVERB)"),
    ('{{printf "%d" .Stats.Whole}}', "3"),  # a JSON number that docker would type as int
    ('{{printf "%s:%s" .Name .Config.Image | upper}}', "/MILK:BUSYBOX"),
)
def test_printf(text: str, expected: str) -> None:
    assert r(text) == expected


@cases(
    ('{{print "a" 1 2 "b"}}', "a1 2b"),  # Go's Sprint: spaces only between non-strings
    ("{{print 1 2}}", "1 2"),
    ("{{print .Args}}", "[-c sleep 1000]"),
    ("{{print nil}}", "<nil>"),
    ("{{print}}", ""),
    ('{{println "a" 1}}', "a 1\n"),
    ("{{println}}", "\n"),
)
def test_print_and_println(text: str, expected: str) -> None:
    assert r(text) == expected


@cases(
    ('{{join .Args ","}}', "-c,sleep 1000"),
    ('{{.Args | join " "}}', "-c sleep 1000"),
    ('{{join .Config.Env ";"}}', "PATH=/usr/bin;TERM=xterm"),
    ('{{join .Config.Entrypoint ","}}', ""),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{index (split .Name "/") 1}}', "milk"),
    ('{{len (split "a,b,c" ",")}}', "3"),
    ('{{split "abc" ""}}', "[a b c]"),
    ('{{lower "MiLk"}}', "milk"),
    ("{{upper .State.Status}}", "RUNNING"),
    ("{{.Name | upper}}", "/MILK"),
    ('{{title "hello world"}}', "Hello World"),
    ('{{title "hello_world foo-bar wOW"}}', "Hello_world Foo-Bar WOW"),
    ("{{truncate .Id 12}}", "4f9a1c2b3d4e"),
    ("{{.Id | truncate 12}}", "4f9a1c2b3d4e"),
    ('{{truncate "ab" 5}}', "ab"),
    ('{{truncate "abcdef" 0}}', ""),
)
def test_docker_string_functions(text: str, expected: str) -> None:
    assert r(text) == expected


# ---------------------------------------------------------------------------- pipelines, literals


@cases(
    ("{{.Name | lower}}", "/milk"),
    ('{{.Name | printf "%s!"}}', "/milk!"),
    ('{{.Name | printf "%s-%s" "x"}}', "x-/milk"),  # the piped value is the last argument
    ('{{.Name | len | printf "%03d"}}', "005"),
    ("{{.Config.Labels | len}}", "2"),
    ("{{ .Name|upper }}", "/MILK"),
    ('{{(index .Args 1) | upper}}', "SLEEP 1000"),
    ('{{len (index .Config.Labels "tier")}}', "3"),
    ('{{printf "%d-%d" (len .Args) (len (split "a,b" ","))}}', "2-2"),
    ('{{"quoted"}}', "quoted"),
    ('{{"tab\\there"}}', "tab\there"),
    ('{{"\\u00e9\\x41\\101"}}', "éAA"),
    ("{{`raw\\n{{x}}`}}", "raw\\n{{x}}"),
    ('{{"}}"}}', "}}"),
    ("{{42}}", "42"),
    ("{{-7}}", "-7"),
    ("{{1.5}}", "1.5"),
    ("{{1e3}}", "1000"),
    ("{{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}}", "31 15 15 5 1000"),
    ("{{'a'}} {{'\\n'}}", "97 10"),
    ("{{true}} {{false}}", "true false"),
    ("{{.Name\n}}", "/milk"),  # newlines inside an action are spaces
)
def test_pipelines_and_literals(text: str, expected: str) -> None:
    assert r(text) == expected


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "reason", "line", "col"), [
    ("{{nosuch .Name}}", 'function "nosuch" not defined', 1, 3),
    ("{{.Name | pad 3}}", 'function "pad" not defined', 1, 11),
    ("{{.Name", "unclosed action", 1, 1),
    ("a {{ .Name ", "unclosed action", 1, 3),
    ("a {{ .Name }", "unrecognized character in action: '}'", 1, 12),
    ("ab\n{{if .X}}x", "unexpected EOF: missing {{end}} for {{if}}", 2, 3),
    ("{{range .X}}{{if .Y}}{{end}}", "unexpected EOF: missing {{end}} for {{range}}", 1, 3),
    ("{{with .X}}a{{else}}b", "unexpected EOF: missing {{end}} for {{with}}", 1, 3),
    ("x{{end}}", "unexpected {{end}}", 1, 2),
    ("{{else}}", "unexpected {{else}}", 1, 1),
    ("{{if .X}}a{{else}}b{{else}}c{{end}}", "expected {{end}}; found {{else}}", 1, 20),
    ("{{if .A}}{{else with .B}}{{end}}", "unexpected {{else with}} in {{if}}", 1, 10),
    ("{{$x}}", 'undefined variable "$x"', 1, 3),
    ("{{if true}}{{$x := 1}}{{end}}{{$x}}", 'undefined variable "$x"', 1, 32),
    ("{{$y = 1}}", 'undefined variable "$y"', 1, 3),
    ('{{"unterminated}}', "unterminated quoted string", 1, 3),
    ("{{`raw}}", "unterminated raw quoted string", 1, 3),
    ('{{"\\q"}}', "invalid escape \\q", 1, 3),
    ("{{/* no end", "unclosed comment", 1, 1),
    ("{{/* c */ x}}", "comment ends before closing delimiter", 1, 8),
    ("{{ /* c */ }}", "unrecognized character in action: '/'", 1, 4),
    ("{{.Name | }}", "missing command after |", 1, 9),
    ("{{.Name | | upper}}", "unexpected '|' in command", 1, 11),
    ("{{}}", "missing value for command", 1, 3),
    ("{{ }}", "missing value for command", 1, 4),
    ("{{if}}{{end}}", "missing value for if", 1, 5),
    ("{{(.Name}}", "unclosed left paren", 1, 9),
    ("{{.Name)}}", "unexpected right paren", 1, 8),
    ('{{"a" | "b"}}', "non executable command in pipeline stage 2", 1, 9),
    ("{{break}}", "{{break}} outside {{range}}", 1, 3),
    ("{{continue}}", "{{continue}} outside {{range}}", 1, 3),
    ('{{template "x"}}', "{{template}} is not supported", 1, 3),
    ('{{define "x"}}{{end}}', "{{define}} is not supported", 1, 3),
    ("{{.Name # 1}}", "unrecognized character in action: '#'", 1, 9),
    ("{{1x}}", "bad number syntax", 1, 3),
    ("{{.Name-x}}", "bad character '-'", 1, 8),
    ("{{$x, $y := .A}}", "too many declarations in command", 1, 5),
    ('{{"x".Foo}}', "unexpected . after term", 1, 3),
    ("{{.Name := 1}}", "unexpected ':=' in operand", 1, 9),
    ("{{range $i, 3 := .A}}{{end}}", "range can only initialize variables", 1, 13),
    ("{{.A : 1}}", "expected :=", 1, 6),
])
def test_parse_errors(text: str, reason: str, line: int, col: int) -> None:
    with pytest.raises(TemplateError) as info:
        parse(text)
    err = info.value
    assert reason in err.reason
    assert (err.line, err.col) == (line, col)
    assert str(err) == f"{line}:{col}: {err.reason}"
    assert "\n" not in str(err)


@pytest.mark.parametrize(("text", "message"), [
    ("{{.Name.Foo}}", "1:2: executing at <.Name.Foo>: can't evaluate field Foo in type string"),
    ("{{.State.Pid.X}}", "can't evaluate field X in type int"),
    ("{{.State.Running.X}}", "can't evaluate field X in type bool"),
    ("{{.Args.First}}", "can't evaluate field First in type []interface {}"),
    ("{{.Stats.CpuPercent.X}}", "can't evaluate field X in type float64"),
    ("{{.State.Health.Status}}", "nil pointer evaluating interface {}.Status"),
    ("{{range .Args}}{{.Foo}}{{end}}", "1:17: executing at <.Foo>: can't evaluate field Foo in type string"),
    ("line1\nline2\n  {{.Name.Foo}}", "3:4: executing at <.Name.Foo>"),
    ("{{index .Args 5}}", "executing at <index .Args 5>: error calling index: index out of range: 5"),
    ('{{index .Args "a"}}', "cannot index slice/array with type string"),
    ("{{index .Config.Labels 1}}", "value has type int; should be string"),
    ("{{index .State.Pid 0}}", "can't index item of type int"),
    ('{{index .State.Health "x"}}', "index of nil pointer"),
    ('{{index .Nope "x"}}', "index of untyped nil"),
    ("{{len .State.Pid}}", "error calling len: len of type int"),
    ("{{len .Nope}}", "len of missing value"),
    ("{{len 1 2}}", "wrong number of args for len: want 1 got 2"),
    ("{{printf}}", "wrong number of args for printf: want at least 1 got 0"),
    ("{{.Name | len 1}}", "wrong number of args for len: want 1 got 2"),
    ("{{not}}", "wrong number of args for not: want 1 got 0"),
    ("{{and}}", "wrong number of args for and: want at least 1 got 0"),
    ("{{eq .Name 1}}", "error calling eq: incompatible types for comparison"),
    ("{{eq 1}}", "missing argument for comparison"),
    ("{{eq .Args .Args}}", "non-comparable type"),
    ("{{lt true false}}", "invalid type for comparison"),
    ('{{lt 1 "a"}}', "incompatible types for comparison"),
    ("{{lt .Nope 1}}", "invalid type for comparison"),
    ("{{lower .State.Pid}}", "wrong type for value; expected string; got int"),
    ("{{upper .Nope}}", "invalid value; expected string"),
    ('{{join .Name ","}}', "wrong type for value; expected []string; got string"),
    ('{{truncate .Name "x"}}', "wrong type for value; expected int; got string"),
    ("{{slice .State.Pid 1}}", "can't slice item of type int"),
    ("{{slice .Name 3 9}}", "index out of range"),
    ("{{.Name 1}}", "Name is not a method but has arguments"),
    ('{{"x" 1}}', 'can\'t give argument to non-function "x"'),
    ("{{$n := 1}}{{$n 2}}", "can't give argument to non-function $n"),
    ("{{.Name | .State}}", "State is not a method but has arguments"),
    ("{{nil}}", "nil is not a command"),
    ("{{range .Name}}{{end}}", "range can't iterate over /milk"),
    ("{{range $i, $e := 3}}{{end}}", "can't use 3 to iterate over more than one variable"),
    ("{{json 1e999}}", "json: unsupported value: +Inf"),
])
def test_execution_errors(text: str, message: str) -> None:
    template = parse(text)  # these parse fine; they fail on the data
    with pytest.raises(TemplateError) as info:
        template.render(CONTAINER)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_errors_are_cove_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument) as info:
        render("{{nosuch}}", {})
    assert isinstance(info.value, CoveError)
    assert info.value.message == '1:3: function "nosuch" not defined'


# ---------------------------------------------------------------------------- API, table


def test_parse_once_render_many() -> None:
    template = parse("{{.ID}}\t{{.Names}}")
    assert isinstance(template, Template)
    assert [template.render(row) for row in ROWS] == ["4f9a1c2b3d4e\tmilk", "77aa00000000\tcheese"]
    assert render("{{.Names}}", ROWS[1]) == template.render(ROWS[1]).split("\t")[1]


def test_render_does_not_change_the_data() -> None:
    data = json.loads(json.dumps(CONTAINER))
    r("{{$n := 0}}{{range .Args}}{{$n = .}}{{end}}{{json .}}{{with .State}}{{.Pid}}{{end}}", data)
    assert data == CONTAINER


@pytest.mark.parametrize(("text", "expected"), [
    ("table {{.ID}}\t{{.Name}}", (True, "{{.ID}}\t{{.Name}}")),
    ("table {{.ID}}\\t{{.Name}}", (True, "{{.ID}}\t{{.Name}}")),  # typed on a shell: \t
    ("table", (True, "")),
    ("table   {{.ID}}  ", (True, "{{.ID}}")),
    ("{{.ID}}", (False, "{{.ID}}")),
    ("  {{.ID}} ", (False, "{{.ID}}")),
    ("{{.ID}}\\n", (False, "{{.ID}}\n")),
    ("json", (False, "json")),
])
def test_table_format(text: str, expected: tuple[bool, str]) -> None:
    assert table_format(text) == expected


def test_table_rows() -> None:
    is_table, rest = table_format("table {{.ID}}\\t{{.Image}}\\t{{.Status}}")
    template = parse(rest)
    assert is_table
    assert [template.render(row).split("\t") for row in ROWS] == [
        ["4f9a1c2b3d4e", "busybox", "Up 2 minutes"],
        ["77aa00000000", "alpine", "Exited (0) 1 second ago"],
    ]


def test_import_stays_light() -> None:
    code = ("import sys; import cove.cli.gotemplate as g; g.render('{{.A}}', {'A': 1});"
            "print(sorted(m for m in ('json', 'dataclasses', 'decimal', 'click', 'typing_extensions')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- properties


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text())
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_json_round_trips(value: object) -> None:
    out = r("{{json .}}", value)
    assert json.loads(out) == value
    assert "\n" not in out


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_printed_floats_read_back(value: float) -> None:
    assert float(r("{{.V}}", {"V": value})) == value


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_text_without_actions_is_unchanged(text: str) -> None:
    if "{{" not in text:
        assert r(text, {}) == text


FRAGMENTS = ["{{", "}}", "{{- ", " -}}", "-", " ", "\n", ".Name", ".Args", ".State", ".Pid",
             ".", "$", "$x", "$y", ":=", "=", ",", "|", "(", ")", "if", "else", "end", "range",
             "with", "break", "continue", "define", "nil", "true", '"', '"a"', "`", "'", "'a'",
             "\\", "/*", "*/", "1", "-2", "0x", "1.5e", "printf", "json", "index", "len",
             "eq", "and", "join", "truncate", "%d", "%", "x"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join) | st.text())
def test_any_text_renders_or_raises_template_error(text: str) -> None:
    try:
        out = parse(text).render(CONTAINER)
    except TemplateError as exc:
        assert "\n" not in str(exc)
        # Go's execution errors count the column from 0 (text/template's ErrorContext), so an
        # action at the start of a line after the first is "2:0"
        assert exc.line >= 1 and exc.col >= 0
    else:
        assert isinstance(out, str)


def test_execution_error_at_a_line_start_is_column_0_as_in_go() -> None:
    with pytest.raises(TemplateError, match="^2:0: executing at <printf>: wrong number of args"):
        render("{{\nprintf}}", {})


def test_row_methods_take_arguments_and_stay_out_of_json() -> None:
    from cove.cli.gotemplate import Row

    row = Row({"Name": "web"}, {"Label": lambda key: {"tier": "front"}.get(key, "")})
    assert render('{{.Name}} {{.Label "tier"}} [{{.Label "nope"}}]', row) == "web front []"
    assert render('{{"tier" | .Label}}', row) == "front"
    assert render("{{json .}}", row) == '{"Name":"web"}'
    with pytest.raises(TemplateError, match="wrong number of args for Label: want 1 got 0"):
        render("{{.Label}}", row)


def test_missing_keys_are_errors_as_in_the_docker_cli() -> None:
    data = {"State": {"Pid": 7}}
    assert render("{{.State.Nope}}", data) == "<no value>"
    with pytest.raises(TemplateError, match='1:2: executing at <.State.Nope>: map has no entry for key "Nope"'):
        render("{{.State.Nope}}", data, missing_error=True)


def test_an_element_of_a_string_is_a_byte_as_in_go() -> None:
    # found by comparing error messages with the docker CLI (tests/integration/test_templates_vs_docker.py)
    assert render("{{index .Name 1}}", {"Name": "/x"}) == "120"
    with pytest.raises(TemplateError, match="can't index item of type uint8"):
        render("{{index .Name 1 2}}", {"Name": "/x"})
