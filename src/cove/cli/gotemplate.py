"""A small Go text/template engine for ``--format``/``-f``, as the docker CLI takes them.

Supported: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming; field paths
(``.State.Pid``, ``.``, ``$``, ``$var.Field``); ``{{$x := ...}}``; ``range`` (lists;
maps in sorted key order; ``$k, $v :=``), ``if``/``else if``/``else``, ``with``,
``end``; functions ``json``, ``index``, ``len``, ``join``, ``split``, ``lower``,
``upper``, ``title``, ``truncate``, ``printf``, ``print``, ``println``, ``eq``,
``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``and``, ``or``, ``not``; pipelines with
``|``; parentheses; string, number and ``true``/``false``/``nil`` literals;
comments.  Values print as Go prints them (integers without ``.0``, lists as
``[a b]``, maps as ``map[k:v]``, a missing key as ``<no value>``).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["Template", "TemplateError", "parse", "render", "table_format"]


class TemplateError(Exception):
    """Bad template syntax, or a field or function that does not exist."""


_MISSING = object()
_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||:=|,|[$.\w][\w.$]*|-?\d+(?:\.\d+)?|\S')


def table_format(text: str) -> tuple[bool, str]:
    """Docker's ``table ...`` prefix: (is a table, the rest)."""
    if text.startswith("table"):
        return True, text[5:].lstrip()
    return False, text


def _fmt(v: Any) -> str:
    if v is _MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return "[" + " ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_fmt(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _truth(v: Any) -> bool:
    return not (v is _MISSING or v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def sub(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        v = next(it, _MISSING)
        if verb == "d":
            return str(int(v))
        if verb == "q":
            return json.dumps(_fmt(v))
        return _fmt(v)

    return re.sub(r"%([sdvq%])", sub, fmt)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, _MISSING) if k in v else _MISSING
        elif isinstance(v, (list, str)):
            try:
                v = v[int(k)]
            except (IndexError, ValueError) as exc:
                raise TemplateError(f"error calling index: {exc}") from None
        else:
            raise TemplateError(f"can't index item of type {type(v).__name__}")
    return v


FUNCS: dict[str, Any] = {
    "json": lambda v: json.dumps(None if v is _MISSING else v, separators=(",", ":")),
    "index": _index,
    "len": lambda v: len(v),
    "join": lambda v, sep: sep.join(_fmt(x) for x in v),
    "split": lambda s, sep: s.split(sep),
    "lower": lambda s: _fmt(s).lower(),
    "upper": lambda s: _fmt(s).upper(),
    "title": lambda s: _fmt(s).title(),
    "truncate": lambda s, n: _fmt(s)[: int(n)],
    "printf": _printf,
    "print": lambda *a: "".join(_fmt(x) for x in a),
    "println": lambda *a: " ".join(_fmt(x) for x in a) + "\n",
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
    "not": lambda a: not _truth(a),
}


# --- parsing: text -> nodes -----------------------------------------------------------------
def _split(text: str) -> list[tuple[str, str, int]]:
    """("text"|"action", content, position), trimming whitespace around ``{{-``/``-}}``."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(("text", text[pos:], pos))
            return out
        end = text.find("}}", start)
        if end < 0:
            raise TemplateError(f"unclosed action at position {start}")
        body = text[start + 2:end]
        chunk = text[pos:start]
        if body.startswith("-") and (len(body) == 1 or body[1] in " \t\n"):
            chunk = chunk.rstrip()
            body = body[1:]
        trim_after = body.endswith("-") and (len(body) == 1 or body[-2] in " \t\n")
        if trim_after:
            body = body[:-1]
        out.append(("text", chunk, pos))
        out.append(("action", body.strip(), start))
        pos = end + 2
        if trim_after:
            while pos < len(text) and text[pos] in " \t\n\r":
                pos += 1


def _tokens(expr: str, pos: int) -> list[str]:
    toks = [t for t in _TOKEN.findall(expr) if not t.isspace()]
    if "".join(toks).replace(" ", "") != re.sub(r"\s+", "", expr):
        raise TemplateError(f"bad syntax in {{{{{expr}}}}} at position {pos}")
    return toks


class Template:
    def __init__(self, nodes: list[Any]) -> None:
        self.nodes = nodes

    def render(self, data: Any) -> str:
        out: list[str] = []
        _exec(self.nodes, data, {"$": data}, out)
        return "".join(out)


def parse(text: str) -> Template:
    parts = _split(text)
    stack: list[tuple[str, list[Any], Any]] = [("root", [], None)]
    for kind, content, pos in parts:
        nodes = stack[-1][1]
        if kind == "text":
            if content:
                nodes.append(("text", content))
            continue
        if content.startswith("/*"):
            continue
        word = content.split(None, 1)[0] if content else ""
        rest = content[len(word):].strip()
        if word in ("if", "range", "with"):
            node = [word, _tokens(rest, pos), [], [], pos]   # kind, pipeline, body, else, pos
            nodes.append(node)
            stack.append((word, node[2], node))
        elif word == "else":
            if len(stack) < 2:
                raise TemplateError(f"unexpected {{{{else}}}} at position {pos}")
            _, _, node = stack.pop()
            if rest.startswith("if"):
                inner = ["if", _tokens(rest[2:].strip(), pos), [], [], pos]
                node[3].append(inner)
                stack.append(("if", inner[2], inner))
            else:
                stack.append(("else", node[3], node))
        elif word == "end":
            # one pop closes the block: an {{else}} or {{else if}} already replaced its if's frame
            if len(stack) < 2:
                raise TemplateError(f"unexpected {{{{end}}}} at position {pos}")
            stack.pop()
        elif not content:
            raise TemplateError(f"empty action at position {pos}")
        else:
            nodes.append(("expr", _tokens(content, pos), pos))
    if len(stack) != 1:
        raise TemplateError(f"unexpected end of template: missing {{{{end}}}} for {stack[-1][0]}")
    return Template(stack[0][1])


def render(text: str, data: Any) -> str:
    return parse(text).render(data)


# --- evaluation -----------------------------------------------------------------------------
def _field(v: Any, path: list[str], full: str) -> Any:
    for name in path:
        if v is _MISSING:
            return _MISSING
        if isinstance(v, dict):
            v = v.get(name, _MISSING)
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(v)} ({full})")
    return v


def _go_type(v: Any) -> str:
    return {str: "string", bool: "bool", int: "int", float: "float64", list: "[]interface {}",
            type(None): "<nil>"}.get(type(v), type(v).__name__)


def _operand(tok: str, dot: Any, vars: dict[str, Any]) -> Any:
    if tok.startswith('"'):
        return json.loads(tok)
    if tok.startswith("`"):
        return tok[1:-1]
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if re.fullmatch(r"-?\d+\.\d+", tok):
        return float(tok)
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    if tok == ".":
        return dot
    if tok.startswith("."):
        return _field(dot, tok[1:].split("."), tok)
    if tok.startswith("$"):
        name, _, path = tok.partition(".")
        if name not in vars:
            raise TemplateError(f"undefined variable: {name}")
        return _field(vars[name], path.split("."), tok) if path else vars[name]
    raise TemplateError(f'function "{tok}" not defined')


def _eval(toks: list[str], dot: Any, vars: dict[str, Any]) -> Any:
    # split into pipeline commands at top-level "|"
    cmds: list[list[Any]] = [[]]
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "(":
            depth += 1
            j, d = i + 1, 1
            while j < len(toks) and d:
                d += {"(": 1, ")": -1}.get(toks[j], 0)
                j += 1
            if d:
                raise TemplateError("unclosed parenthesis")
            cmds[-1].append(("sub", toks[i + 1:j - 1]))
            i = j
            depth -= 1
            continue
        if t == "|":
            cmds.append([])
        else:
            cmds[-1].append(t)
        i += 1
    value: Any = _MISSING
    first = True
    for cmd in cmds:
        if not cmd:
            raise TemplateError("missing command in pipeline")
        args = [(_eval(a[1], dot, vars) if isinstance(a, tuple) else a) for a in cmd]
        head = cmd[0]
        if isinstance(head, str) and head in FUNCS:
            vals = [_operand(a, dot, vars) if isinstance(a, str) and not isinstance(c, tuple) else a
                    for a, c in zip(args[1:], cmd[1:])]
            if not first:
                vals.append(value)
            try:
                value = FUNCS[head](*vals)
            except TemplateError:
                raise
            except Exception as exc:  # noqa: BLE001 - a template error, in one line
                raise TemplateError(f"error calling {head}: {exc}") from None
        else:
            if len(cmd) > 1 or not first:
                raise TemplateError(f'function "{head}" not defined' if isinstance(head, str) else "bad pipeline")
            value = args[0] if isinstance(cmd[0], tuple) else _operand(head, dot, vars)
        first = False
    return value


def _exec(nodes: list[Any], dot: Any, vars: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            toks = node[1]
            if len(toks) > 2 and toks[1] == ":=" and toks[0].startswith("$"):
                vars[toks[0]] = _eval(toks[2:], dot, vars)
                continue
            out.append(_fmt(_eval(toks, dot, vars)))
        else:
            kind, toks, body, els, _pos = node
            names: list[str] = []
            if ":=" in toks:
                k = toks.index(":=")
                names = [t for t in toks[:k] if t != ","]
                toks = toks[k + 1:]
            value = _eval(toks, dot, vars)
            if kind == "if":
                _exec(body if _truth(value) else els, dot, vars, out)
            elif kind == "with":
                _exec(body if _truth(value) else els, value if _truth(value) else dot, vars, out)
            else:
                items: list[tuple[Any, Any]]
                if isinstance(value, dict):
                    items = [(k, value[k]) for k in sorted(value)]
                elif isinstance(value, list):
                    items = list(enumerate(value))
                elif value is _MISSING or value is None:
                    items = []
                else:
                    raise TemplateError(f"range can't iterate over {_fmt(value)}")
                if not items:
                    _exec(els, dot, vars, out)
                for k, v in items:
                    scope = dict(vars)
                    if len(names) == 1:
                        scope[names[0]] = v
                    elif len(names) == 2:
                        scope[names[0]], scope[names[1]] = k, v
                    _exec(body, v, scope, out)
