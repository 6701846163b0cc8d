"""Go ``text/template`` for cove's ``--format``/``-f`` flags, in pure Python.

docker formats ``inspect``, ``ps``, ``ls`` ... output with Go templates such as
``{{.State.Pid}}``, ``{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}`` or
``{{json .}}``; cove accepts the same strings.  This module holds a lexer, a parser and
an evaluator for the part of the language people type, with Go's semantics on
JSON-shaped data (Go's ``map[string]interface{}``), docker's extra functions (``json
split join title lower upper truncate``) and docker's ``table`` prefix.

Where Go on decoded JSON and docker (which decodes into typed structs) differ, we
follow what docker users see: integral numbers print as integers, an explicit JSON
null prints ``<nil>`` (a missing key prints ``<no value>``), ``len`` of null is 0,
ints and floats compare with each other, ``json`` keeps the dict's key order, and
``join``/``truncate`` also accept their arguments the other way round, so that
``{{.Args | join " "}}`` works (Go would reject it).

The CLI imports this module only when a format flag is given, so it stays cheap to
import: ``re`` only (``json`` lazily), and plain ``__slots__`` classes rather than
dataclasses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cove.errors import InvalidArgument

__all__ = ["Template", "TemplateError", "parse", "render", "table_format"]


class TemplateError(InvalidArgument):
    """A template that does not parse or does not execute.

    The message is one line, ``LINE:COL: reason`` (1-based, in the template text), so a
    caller's ``f"template: {exc}"`` reads like Go's ``template: :1:7: ...``.
    """

    def __init__(self, reason: str, line: int = 0, col: int = 0) -> None:
        super().__init__(f"{line}:{col}: {reason}" if line else reason)
        self.reason = reason
        self.line = line
        self.col = col


class _Missing:
    """A map key that is not there (Go's invalid reflect.Value): prints ``<no value>``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class Row(dict):  # type: ignore[type-arg]
    """A row for list ``--format`` templates: a dict of fields plus methods taking arguments,
    as docker's row contexts have (``{{.Label "key"}}``).  Methods are not in the dict, so
    ``{{json .}}`` shows only the fields."""

    __slots__ = ("methods",)

    def __init__(self, fields: Mapping[str, object], methods: dict[str, Callable[..., object]] | None = None) -> None:
        super().__init__(fields)
        self.methods = methods or {}
_NO_FINAL = object()  # no value piped into a command (Go's missingVal)
_SPACE = " \t\r\n"


# --------------------------------------------------------------------------- lexer


class _Tok:
    __slots__ = ("kind", "val", "pos", "end")

    def __init__(self, kind: str, val: object, pos: int, end: int) -> None:
        self.kind, self.val, self.pos, self.end = kind, val, pos, end

    def describe(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind == "right":
            return "}}"
        return repr(str(self.val)) if self.kind != "string" else f'"{self.val}"'


_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define",
             "template", "block"}
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)"
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


class _Lexer:
    """Splits a template into text and action tokens, applying ``{{-``/``-}}`` trims."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[_Tok] = []

    def fail(self, pos: int, reason: str) -> TemplateError:
        return _error(self.text, pos, reason)

    def emit(self, kind: str, val: object, pos: int, end: int) -> None:
        self.toks.append(_Tok(kind, val, pos, end))

    def run(self) -> list[_Tok]:
        text, pos, trim_next = self.text, 0, False
        while True:
            i = text.find("{{", pos)
            end = len(text) if i < 0 else i
            chunk_start, chunk = pos, text[pos:end]
            left_trim = i >= 0 and _left_trim(text, i + 2)
            if trim_next:
                stripped = chunk.lstrip(_SPACE)
                chunk_start += len(chunk) - len(stripped)
                chunk = stripped
            if left_trim:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.emit("text", chunk, chunk_start, chunk_start + len(chunk))
            if i < 0:
                break
            pos, trim_next = self.action(i, left_trim)
        self.emit("eof", None, len(text), len(text))
        return self.toks

    def right_delim(self, pos: int) -> int:
        """Length of the closing delimiter at pos: 2 for ``}}``, 4 for `` -}}``, else 0."""
        text = self.text
        if text.startswith("}}", pos):
            return 2
        if text.startswith("-}}", pos + 1) and text[pos] in _SPACE:
            return 4
        return 0

    def action(self, start: int, left_trim: bool) -> tuple[int, bool]:
        """Lex one ``{{...}}`` starting at start; returns (next pos, trim following text)."""
        text, n = self.text, len(self.text)
        pos = start + (4 if left_trim else 2)
        if text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close < 0:
                raise self.fail(start, "unclosed comment")
            size = self.right_delim(close + 2)
            if not size:
                raise self.fail(close, "comment ends before closing delimiter")
            return close + 2 + size, size == 4
        self.emit("left", left_trim, start, pos)
        depth = 0
        while True:
            if pos >= n:
                raise self.fail(start, "unclosed action")
            size = self.right_delim(pos)
            if size:
                if depth:
                    raise self.fail(pos, "unclosed left paren")
                self.emit("right", "}}", pos, pos + size)
                return pos + size, size == 4
            c = text[pos]
            if c in _SPACE:
                end = pos
                while end < n and text[end] in _SPACE:
                    end += 1
                if text.startswith("-}}", end):
                    end -= 1  # leave one space for the " -}}" trim marker
                self.emit("space", " ", pos, end)
                pos = end
                continue
            if c == "(":
                depth += 1
                self.emit("lparen", c, pos, pos + 1)
                pos += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    raise self.fail(pos, "unexpected right paren")
                self.emit("rparen", c, pos, pos + 1)
                pos += 1
            elif c in "|=,":
                self.emit({"|": "pipe", "=": "assign", ",": "comma"}[c], c, pos, pos + 1)
                pos += 1
            elif c == ":":
                if not text.startswith(":=", pos):
                    raise self.fail(pos, "expected :=")
                self.emit("declare", ":=", pos, pos + 2)
                pos += 2
            elif c == '"':
                pos = self.quoted(pos)
            elif c == "`":
                close = text.find("`", pos + 1)
                if close < 0:
                    raise self.fail(pos, "unterminated raw quoted string")
                self.emit("string", text[pos + 1:close].replace("\r", ""), pos, close + 1)
                pos = close + 1
            elif c == "'":
                pos = self.char(pos)
            elif c == "$":
                end = self.word_end(pos + 1)
                self.emit("var", text[pos:end], pos, end)
                pos = end
            elif c == "." and not text[pos + 1:pos + 2].isdigit():
                end = self.word_end(pos + 1)
                if end == pos + 1:
                    self.emit("dot", ".", pos, end)
                else:
                    self.emit("field", text[pos + 1:end], pos, end)
                pos = end
            elif c in "+-." or c.isdigit():
                pos = self.number(pos)
            elif _is_alnum(c):
                end = self.word_end(pos)
                word = text[pos:end]
                if word in _KEYWORDS:
                    self.emit("keyword", word, pos, end)
                elif word in ("true", "false"):
                    self.emit("const", word == "true", pos, end)
                elif word == "nil":
                    self.emit("nil", None, pos, end)
                else:
                    self.emit("ident", word, pos, end)
                pos = end
            else:
                raise self.fail(pos, f"unrecognized character in action: {c!r}")

    def word_end(self, pos: int) -> int:
        text, n = self.text, len(self.text)
        while pos < n and _is_alnum(text[pos]):
            pos += 1
        if pos < n and not (text[pos] in _SPACE or text[pos] in ".,|:()"
                            or text.startswith("}}", pos)):
            raise self.fail(pos, f"bad character {text[pos]!r}")
        return pos

    def quoted(self, start: int) -> int:
        text, pos = self.text, start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise self.fail(start, "unterminated quoted string")
            if text[pos] == "\\":
                if pos + 1 >= len(text) or text[pos + 1] == "\n":
                    raise self.fail(start, "unterminated quoted string")
                pos += 2
                continue
            if text[pos] == '"':
                break
            pos += 1
        self.emit("string", _unquote(self, text[start + 1:pos], start), start, pos + 1)
        return pos + 1

    def char(self, start: int) -> int:
        text, pos = self.text, start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise self.fail(start, "unterminated character constant")
            if text[pos] == "\\":
                pos += 2
                continue
            if text[pos] == "'":
                break
            pos += 1
        value = _unquote(self, text[start + 1:pos], start)
        if len(value) != 1:
            raise self.fail(start, f"malformed character constant: {text[start:pos + 1]}")
        self.emit("const", ord(value), start, pos + 1)
        return pos + 1

    def number(self, start: int) -> int:
        match = _NUMBER.match(self.text, start)
        end = match.end() if match else start
        source = self.text[start:end]
        if end < len(self.text) and _is_alnum(self.text[end]):
            raise self.fail(start, f"bad number syntax: {self.text[start:end + 1]!r}")
        value = _parse_number(source)
        if value is None:
            raise self.fail(start, f"bad number syntax: {source or self.text[start]!r}")
        self.emit("const", value, start, end)
        return end


def _left_trim(text: str, pos: int) -> bool:
    return text.startswith("-", pos) and text[pos + 1:pos + 2] in tuple(_SPACE)


def _parse_number(source: str) -> int | float | None:
    clean = source.replace("_", "")
    if not clean or clean in "+-":
        return None
    body = clean.lstrip("+-")
    try:
        if len(body) > 1 and body[0] == "0" and body.isdigit():
            return int(clean, 8)
        return int(clean, 0)
    except ValueError:
        pass
    try:
        if body[:2] in ("0x", "0X"):
            return float.fromhex(clean)
        return float(clean)
    except ValueError:
        return None


def _unquote(lexer: _Lexer, body: str, pos: int) -> str:
    """Go's escapes: \\n \\t \\\\ \\" \\xHH \\uHHHH \\UHHHHHHHH \\ooo ..."""
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        esc = body[i + 1:i + 2]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2:i + 2 + size]
            if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise lexer.fail(pos, f"invalid escape \\{esc}{digits} in quoted string")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise lexer.fail(pos, f"invalid escape \\{esc}{digits} in quoted string")
            out.append(chr(code))
            i += 2 + size
        elif esc and esc in "01234567":
            digits = body[i + 1:i + 4]
            if len(digits) != 3 or not all(d in "01234567" for d in digits):
                raise lexer.fail(pos, f"invalid escape \\{digits} in quoted string")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise lexer.fail(pos, f"invalid escape \\{esc} in quoted string")
    return "".join(out)


def _error(text: str, pos: int, reason: str) -> TemplateError:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return TemplateError(reason, line, col)


# --------------------------------------------------------------------------- nodes


class _Node:
    __slots__ = ("pos", "end")

    def __init__(self, pos: int, end: int = 0) -> None:
        self.pos, self.end = pos, end


class _Text(_Node):
    __slots__ = ("text",)
    text: str


class _Action(_Node):
    __slots__ = ("pipe",)
    pipe: _Pipe


class _Control(_Node):
    """``if``, ``with`` or ``range``: a pipeline, a body and an optional else body."""

    __slots__ = ("word", "pipe", "body", "alt")
    word: str
    pipe: _Pipe
    body: list[_Node]
    alt: list[_Node] | None


class _Loop(_Node):
    """``{{break}}`` or ``{{continue}}``."""

    __slots__ = ("word",)
    word: str


class _Pipe(_Node):
    __slots__ = ("decl", "assign", "cmds")
    decl: list[str]
    assign: bool
    cmds: list[_Cmd]


class _Cmd(_Node):
    __slots__ = ("args", "end_tok")  # end_tok: index of the token that ended it
    args: list[_Node]
    end_tok: int


class _Field(_Node):
    __slots__ = ("names",)
    names: list[str]


class _Var(_Node):
    __slots__ = ("name", "names")
    name: str
    names: list[str]


class _Chain(_Node):
    """``(pipeline).Field`` or ``func.Field``."""

    __slots__ = ("node", "names")
    node: _Node
    names: list[str]


class _Func(_Node):
    __slots__ = ("name",)
    name: str


class _Const(_Node):
    __slots__ = ("value",)
    value: object


class _Dot(_Node):
    __slots__ = ()


class _Nil(_Node):
    __slots__ = ()


class _Stop:
    """An ``{{end}}`` or ``{{else}}`` (``then``: the ``if``/``with`` of ``else if``)."""

    __slots__ = ("word", "pos", "then")

    def __init__(self, word: str, pos: int, then: _Tok | None = None) -> None:
        self.word, self.pos, self.then = word, pos, then


_N = TypeVar("_N", bound=_Node)


def _make(cls: type[_N], pos: int, end: int, **attrs: object) -> _N:
    node = cls(pos, end)
    for name, value in attrs.items():
        setattr(node, name, value)
    return node


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, toks: list[_Tok]) -> None:
        self.text, self.toks, self.i = text, toks, 0
        self.vars = ["$"]
        self.loops = 0

    def fail(self, pos: int, reason: str) -> TemplateError:
        return _error(self.text, pos, reason)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def peek_non_space(self) -> _Tok:
        while self.toks[self.i].kind == "space":
            self.i += 1
        return self.toks[self.i]

    def next_non_space(self) -> _Tok:
        tok = self.peek_non_space()
        self.i += 1
        return tok

    def parse(self) -> list[_Node]:
        body, stop = self.items()
        if stop is not None:
            raise self.fail(stop.pos, f"unexpected {{{{{stop.word}}}}}")
        return body

    def items(self) -> tuple[list[_Node], _Stop | None]:
        nodes: list[_Node] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                return nodes, None
            if tok.kind == "text":
                nodes.append(_make(_Text, tok.pos, tok.end, text=tok.val))
                continue
            node = self.action(tok)
            if isinstance(node, _Stop):
                return nodes, node
            nodes.append(node)

    def expect_right(self, context: str) -> None:
        tok = self.next_non_space()
        if tok.kind != "right":
            raise self.fail(tok.pos, f"unexpected {tok.describe()} in {context}")

    def action(self, left: _Tok) -> _Node | _Stop:
        tok = self.peek_non_space()
        if tok.kind != "keyword":
            pipe = self.pipeline("command", "right")
            return _make(_Action, left.pos, pipe.end, pipe=pipe)
        self.next()
        word = str(tok.val)
        if word in ("if", "with", "range"):
            return self.control(tok)
        if word == "end":
            self.expect_right("end")
            return _Stop("end", left.pos)
        if word == "else":
            after = self.peek_non_space()
            if after.kind == "keyword" and after.val in ("if", "with"):
                self.next()
                return _Stop("else", left.pos, after)
            self.expect_right("else")
            return _Stop("else", left.pos)
        if word in ("break", "continue"):
            if not self.loops:
                raise self.fail(tok.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
            self.expect_right(word)
            return _make(_Loop, left.pos, tok.end, word=word)
        raise self.fail(tok.pos, f"{{{{{word}}}}} is not supported by cove's templates")

    def control(self, keyword: _Tok) -> _Node:
        word = str(keyword.val)
        mark = len(self.vars)
        pipe = self.pipeline(word, "right")
        self.loops += word == "range"
        body, stop = self.items()
        self.loops -= word == "range"
        if stop is None:
            raise self.fail(keyword.pos, f"unexpected EOF: missing {{{{end}}}} for {{{{{word}}}}}")
        alt: list[_Node] | None = None
        if stop.word == "else":
            if stop.then is not None:
                if stop.then.val != word:
                    raise self.fail(stop.pos, f"unexpected {{{{else {stop.then.val}}}}} "
                                              f"in {{{{{word}}}}}")
                alt = [self.control(stop.then)]
            else:
                alt, stop2 = self.items()
                if stop2 is None:
                    raise self.fail(keyword.pos,
                                    f"unexpected EOF: missing {{{{end}}}} for {{{{{word}}}}}")
                if stop2.word != "end":
                    raise self.fail(stop2.pos, "expected {{end}}; found {{else}}")
        del self.vars[mark:]
        return _make(_Control, keyword.pos, pipe.end, word=word, pipe=pipe, body=body, alt=alt)

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_non_space().pos
        decl: list[str] = []
        assign = False
        tok = self.peek_non_space()
        if tok.kind == "var":
            save = self.i
            self.next()
            after = self.peek_non_space()
            if after.kind in ("declare", "assign"):
                self.next()
                decl, assign = [str(tok.val)], after.kind == "assign"
            elif after.kind == "comma":
                if context != "range":
                    raise self.fail(after.pos, f"too many declarations in {context}")
                self.next()
                second = self.next_non_space()
                if second.kind != "var":
                    raise self.fail(second.pos, "range can only initialize variables")
                op = self.next_non_space()
                if op.kind not in ("declare", "assign"):
                    raise self.fail(op.pos, f"unexpected {op.describe()} in range; expected :=")
                decl, assign = [str(tok.val), str(second.val)], op.kind == "assign"
            else:
                self.i = save
            for name in decl:
                if assign and name not in self.vars:
                    raise self.fail(tok.pos, f'undefined variable "{name}"')
                if not assign:
                    self.vars.append(name)
        cmds: list[_Cmd] = []
        while True:
            tok = self.peek_non_space()
            if tok.kind == end:
                if cmds and self.toks[cmds[-1].end_tok].kind == "pipe":
                    raise self.fail(self.toks[cmds[-1].end_tok].pos, "missing command after |")
                self.next()
                break
            if tok.kind in ("right", "rparen", "pipe"):
                raise self.fail(tok.pos, f"unexpected {tok.describe()} in {context}")
            cmds.append(self.command())
        if not cmds:
            raise self.fail(start, f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (_Const, _Dot, _Nil)):
                raise self.fail(cmd.pos, f"non executable command in pipeline stage {stage}")
        return _make(_Pipe, start, self.toks[self.i - 1].pos, decl=decl, assign=assign,
                     cmds=cmds)

    def command(self) -> _Cmd:
        args: list[_Node] = []
        start = self.peek_non_space().pos
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", "rparen"):
                self.i -= 1
                break
            if tok.kind == "pipe":
                break
            raise self.fail(tok.pos, f"unexpected {tok.describe()} in operand")
        if not args:
            raise self.fail(start, "empty command")
        return _make(_Cmd, start, args[-1].end, args=args, end_tok=self.i - 1)

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        names: list[str] = []
        while self.peek().kind == "field":
            names.append(str(self.next().val))
        end = self.toks[self.i - 1].end
        if isinstance(node, _Field):
            return _make(_Field, node.pos, end, names=node.names + names)
        if isinstance(node, _Var):
            return _make(_Var, node.pos, end, name=node.name, names=node.names + names)
        if isinstance(node, (_Const, _Dot, _Nil)):
            raise self.fail(node.pos, f"unexpected . after term {self.text[node.pos:node.end]!r}")
        return _make(_Chain, node.pos, end, node=node, names=names)

    def term(self) -> _Node | None:
        tok = self.peek()
        kind = tok.kind
        if kind == "lparen":
            self.next()
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            pipe.pos, pipe.end = tok.pos, self.toks[self.i - 1].end
            return pipe
        if kind not in ("ident", "dot", "nil", "var", "field", "const", "string"):
            return None
        self.next()
        if kind == "ident":
            if tok.val not in _FUNCS:
                raise self.fail(tok.pos, f'function "{tok.val}" not defined')
            return _make(_Func, tok.pos, tok.end, name=tok.val)
        if kind == "dot":
            return _Dot(tok.pos, tok.end)
        if kind == "nil":
            return _Nil(tok.pos, tok.end)
        if kind == "var":
            if tok.val not in self.vars:
                raise self.fail(tok.pos, f'undefined variable "{tok.val}"')
            return _make(_Var, tok.pos, tok.end, name=tok.val, names=[])
        if kind == "field":
            return _make(_Field, tok.pos, tok.end, names=[tok.val])
        return _make(_Const, tok.pos, tok.end, value=tok.val)


# --------------------------------------------------------------------------- values


def _go_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a positive finite float and the decimal point."""
    mant, _, exp = repr(value).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    stripped = digits.lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(digits) - len(stripped))
    return stripped.rstrip("0") or "0", point


def _go_float(value: float, integral_as_int: bool = True, json: bool = False) -> str:
    """Go's %v (strconv 'g', shortest) or, with json, encoding/json's float form."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    if integral_as_int and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    sign = "-" if value < 0 else ""
    digits, point = _digits(abs(value))
    exp = point - 1
    if json:  # encoding/json: exponent form outside [1e-6, 1e21), "e-7" not "e-07"
        scientific = abs(value) < 1e-6 or abs(value) >= 1e21
        exp_text = str(abs(exp)) if exp < 0 else f"{exp:02d}"
    else:  # fmt %v: exponent form when the exponent is < -4 or >= 6
        scientific = exp < -4 or exp >= 6
        exp_text = f"{abs(exp):02d}"
    if scientific:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{exp_text}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _fmt(value: object) -> str:
    """Go's fmt %v of a JSON-shaped value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is MISSING:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_fmt(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{_fmt(k)}:{_fmt(value[k])}" for k in _sorted_keys(value)) + "]"
    return str(value)


def _sorted_keys(mapping: dict[Any, object]) -> list[Any]:
    try:
        return sorted(mapping)
    except TypeError:
        return sorted(mapping, key=str)


def _truth(value: object) -> bool:
    """Go's isTrue: false, 0, "", nil and empty collections are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _json(value: object) -> str:
    """json.Marshal without HTML escaping, keys in the dict's order."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _FuncError(f"json: unsupported value: {_go_float(value)}")
        return _go_float(value, json=True)
    if isinstance(value, str):
        import json

        text = json.dumps(value, ensure_ascii=False)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    return _json(str(value))


# --------------------------------------------------------------------------- printf


_MAX_WIDTH = 1_000_000  # Go's fmt refuses wider widths and precisions
_SPEC = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.?)", re.S)


def _quote(text: str, quote: str = '"', ascii_only: bool = False) -> str:
    """Go's strconv.Quote (or QuoteToASCII)."""
    out = [quote]
    for c in text:
        code = ord(c)
        if c == quote or c == "\\":
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(c)])
        elif (code < 0x80 or not ascii_only) and c.isprintable():
            out.append(c)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _bad_verb(verb: str, value: object) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(value)}={_fmt(value)})"


def _pad(text: str, flags: str, width: int | None, zero_ok: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and zero_ok:
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        return sign + text[len(sign):].rjust(width - len(sign), "0")
    return text.rjust(width)


def _format_one(value: object, verb: str, flags: str, width: int | None,
                prec: int | None) -> str:
    """One printf operand: Go applies the verb to each element of a list or map."""
    if value is MISSING:
        value = None
    if isinstance(value, (list, tuple)) and verb in "vsdqtxXfeEgGob":
        return "[" + " ".join(_format_one(v, verb, flags, width, prec) for v in value) + "]"
    if isinstance(value, dict) and verb in "vsdqtxXfeEgGob":
        parts = (f"{_format_one(k, verb, flags, width, prec)}:"
                 f"{_format_one(value[k], verb, flags, width, prec)}"
                 for k in _sorted_keys(value))
        return "map[" + " ".join(parts) + "]"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer() and verb in "dxXobc":
        value, is_int = int(value), True  # typed ints arrive as JSON numbers
    if verb == "v":
        if isinstance(value, float) and prec is not None:
            verb = "g"
        elif is_int:
            verb = "d"
        else:
            text = _fmt(value)
            if isinstance(value, str) and prec is not None:
                text = text[:prec]
            return _pad(text, flags, width, isinstance(value, (int, float)))
    if verb == "s":
        if not isinstance(value, str):
            return _bad_verb(verb, value)
        return _pad(value if prec is None else value[:prec], flags, width, False)
    if verb == "q":
        if isinstance(value, str):
            text = value if prec is None else value[:prec]
            return _pad(_quote(text, '"', "+" in flags), flags, width, False)
        if is_int and isinstance(value, int) and 0 <= value <= 0x10FFFF:
            return _pad(_quote(chr(value), "'", "+" in flags), flags, width, False)
        return _bad_verb(verb, value)
    if verb == "t":
        if not isinstance(value, bool):
            return _bad_verb(verb, value)
        return _pad("true" if value else "false", flags, width, False)
    if verb == "c" and is_int and isinstance(value, int):
        return _pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", flags, width, False)
    if verb in "dxXob" and is_int:
        spec = "".join(f for f in "+ #" if f in flags)
        if verb == "b":
            text = format(value, spec + "b")
        else:
            text = ("%" + spec + (f".{prec}" if prec is not None else "") + verb) % value
        return _pad(text, flags, width, prec is None)
    if verb in "xX" and isinstance(value, str):
        data = value.encode()
        if prec is not None:
            data = data[:prec]
        sep = " " if " " in flags else ""
        prefix = ("0x" if verb == "x" else "0X") if "#" in flags else ""
        text = sep.join(prefix + f"{b:02{verb}}" for b in data)
        return _pad(text, flags, width, False)
    if verb in "feEgG" and isinstance(value, (int, float)) and (is_int or isinstance(value, float)):
        number = float(value)
        spec = "".join(f for f in "+ #" if f in flags)
        if verb in "gG" and prec is None:
            text = _go_float(number, integral_as_int=False)
            if verb == "G":
                text = text.upper()
            if "+" in flags and number >= 0:
                text = "+" + text
        else:
            text = ("%" + spec + f".{6 if prec is None else prec}" + verb) % number
        return _pad(text, flags, width, True)
    return _bad_verb(verb, value)


def _star(args: list[object], i: int) -> tuple[int | None, int]:
    """The int argument a ``*`` width or precision takes, and the next argument's index."""
    arg = args[i] if i < len(args) else None
    return (arg if isinstance(arg, int) and not isinstance(arg, bool) else None), i + 1


def _sprintf(fmt: str, args: list[object]) -> str:
    """Go's fmt.Sprintf for the verbs templates use (v s d q t c x X o b e f g)."""
    out: list[str] = []
    pos, argi = 0, 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:i])
        match = _SPEC.match(fmt, i)
        assert match is not None
        flags, width_s, prec_s, verb = match.groups()
        pos = match.end()
        if verb == "%":  # Go: %% takes no operand and ignores flags and width
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            continue
        width: int | None = int(width_s) if width_s and width_s != "*" else None
        prec: int | None = int(prec_s or 0) if prec_s is not None and prec_s != "*" else None
        if width_s == "*":
            width, argi = _star(args, argi)
            if width is None:
                out.append("%!(BADWIDTH)")
            elif width < 0:
                flags, width = flags + "-", -width
        if prec_s == "*":
            prec, argi = _star(args, argi)
            if prec is None:
                out.append("%!(BADPREC)")
            elif prec < 0:
                prec = None
        if width is not None and width > _MAX_WIDTH:
            out.append("%!(BADWIDTH)")
            width = None
        if prec is not None and prec > _MAX_WIDTH:
            out.append("%!(BADPREC)")
            prec = None
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(args[argi], verb, flags, width, prec))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None or a is MISSING else f"{_go_type(a)}={_fmt(a)}"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _sprint(args: list[object]) -> str:
    """Go's fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    prev_string = True
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i and not is_string and not prev_string:
            out.append(" ")
        out.append(_fmt(None if arg is MISSING else arg))
        prev_string = is_string
    return "".join(out)


# --------------------------------------------------------------------------- functions


class _FuncError(Exception):
    """A function's failure; ``call`` says whether Go would prefix "error calling NAME"."""

    def __init__(self, message: str, call: bool = True) -> None:
        super().__init__(message)
        self.message, self.call = message, call


def _want_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        raise _FuncError("invalid value; expected string", call=False)
    raise _FuncError(f"wrong type for value; expected string; got {_go_type(value)}", call=False)


def _want_int(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _FuncError(f"wrong type for value; expected int; got {_go_type(value)}", call=False)


def _kind(value: object) -> str:
    if value is None or value is MISSING:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "complex"


def _eq(args: list[object]) -> bool:
    first, others = args[0], args[1:]
    if not others:
        raise _FuncError("missing argument for comparison")
    kind = _kind(first)
    for other in others:
        other_kind = _kind(other)
        if kind == "nil" or other_kind == "nil":
            if kind == other_kind:
                return True
            continue
        if kind != other_kind:
            raise _FuncError("incompatible types for comparison")
        if kind == "complex":
            raise _FuncError(f"non-comparable type {_fmt(first)}: {_go_type(first)}")
        if first == other:
            return True
    return False


def _lt(args: list[object]) -> bool:
    a, b = args
    kind = _kind(a)
    if kind in ("nil", "bool", "complex") or _kind(b) in ("nil", "bool", "complex"):
        raise _FuncError("invalid type for comparison")
    if kind != _kind(b):
        raise _FuncError("incompatible types for comparison")
    return bool(a < b)  # type: ignore[operator]


def _index(args: list[object]) -> object:
    item, byte = args[0], False
    for key in args[1:]:
        if item is MISSING:
            raise _FuncError("index of untyped nil")
        if item is None:
            raise _FuncError("index of nil pointer")
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise _FuncError(f"value has type {_go_type(key)}; should be string")
            if key in item:
                item = item[key]
            elif item and all(isinstance(v, str) for v in item.values()) or not item:
                # docker's typed maps of strings (Labels, Options): the zero value, ""
                item = ""
            else:
                item = MISSING
        elif isinstance(item, (list, tuple, str)):
            if not (isinstance(key, int) and not isinstance(key, bool)):
                raise _FuncError(f"cannot index slice/array with type {_go_type(key)}")
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise _FuncError(f"index out of range: {key}")
            byte = isinstance(item, str)
            item = seq[key]
        else:
            # an element of a string is a Go byte: `index "ab" 1 0` fails on a uint8, not an int
            raise _FuncError(f"can't index item of type {'uint8' if byte else _go_type(item)}")
        if not isinstance(item, int):
            byte = False
    return item


def _slice(args: list[object]) -> object:
    item, bounds = args[0], args[1:]
    if not isinstance(item, (str, list, tuple)):
        raise _FuncError(f"can't slice item of type {_go_type(item)}")
    if len(bounds) > 2:
        raise _FuncError("too many slice indexes: " + str(len(bounds)))
    idx = []
    for bound in bounds:
        if not (isinstance(bound, int) and not isinstance(bound, bool)):
            raise _FuncError(f"cannot index slice/array with type {_go_type(bound)}")
        idx.append(bound)
    size = len(item.encode()) if isinstance(item, str) else len(item)
    low = idx[0] if idx else 0
    high = idx[1] if len(idx) > 1 else size
    if not 0 <= low <= high <= size:
        raise _FuncError(f"invalid slice index: {low} > {high}" if low > high
                         else f"index out of range: {max(low, high)}")
    if isinstance(item, str):
        return item.encode()[low:high].decode(errors="replace")
    return list(item[low:high])


def _len(args: list[object]) -> int:
    item = args[0]
    if item is None:
        return 0  # docker: a nil slice or map
    if item is MISSING:
        raise _FuncError("len of missing value")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise _FuncError(f"len of type {_go_type(item)}")


def _join(args: list[object]) -> str:
    elems, sep = args
    if isinstance(elems, str) and isinstance(sep, (list, tuple)):
        elems, sep = sep, elems  # {{.Args | join ","}}
    if elems is None:
        elems = []  # docker: a nil []string
    if elems is MISSING:
        raise _FuncError("invalid value; expected []string", call=False)
    if not isinstance(elems, (list, tuple)):
        raise _FuncError(f"wrong type for value; expected []string; got {_go_type(elems)}",
                         call=False)
    return _want_str(sep).join(_fmt(e) for e in elems)


def _split(args: list[object]) -> list[str]:
    text, sep = _want_str(args[0]), _want_str(args[1])
    if sep == "":
        return list(text)
    return text.split(sep)


def _title(args: list[object]) -> str:
    """Go's strings.Title: upper-case the first letter of each word, keep the rest."""
    out, prev = [], " "
    for c in _want_str(args[0]):
        if _separator(prev):
            up = c.title()
            out.append(up if len(up) == 1 else c)
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _separator(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


def _truncate(args: list[object]) -> str:
    text, length = args
    if isinstance(length, str) and not isinstance(text, str):
        text, length = length, text  # {{.ID | truncate 12}}
    source, size = _want_str(text), _want_int(length)
    return source if len(source) < size else source[:max(size, 0)]


def _printf(args: list[object]) -> str:
    return _sprintf(_want_str(args[0]), [None if a is MISSING else a for a in args[1:]])


# name -> (function, minimum args, maximum args or None for any)
_FUNCS: dict[str, tuple[Callable[[list[object]], object], int, int | None]] = {
    "and": (lambda a: a[-1], 1, None),  # evaluated lazily by the executor
    "or": (lambda a: a[-1], 1, None),
    "not": (lambda a: not _truth(a[0]), 1, 1),
    "len": (_len, 1, 1),
    "index": (_index, 1, None),
    "slice": (_slice, 1, None),
    "eq": (_eq, 1, None),
    "ne": (lambda a: not _eq(a), 2, 2),
    "lt": (_lt, 2, 2),
    "le": (lambda a: _lt(a) or _eq(a), 2, 2),
    "gt": (lambda a: not (_lt(a) or _eq(a)), 2, 2),
    "ge": (lambda a: not _lt(a), 2, 2),
    "print": (_sprint, 0, None),
    "println": (lambda a: " ".join(_fmt(None if x is MISSING else x) for x in a) + "\n", 0, None),
    "printf": (_printf, 1, None),
    "json": (lambda a: _json(a[0]), 1, 1),
    "join": (_join, 2, 2),
    "split": (_split, 2, 2),
    "lower": (lambda a: _want_str(a[0]).lower(), 1, 1),
    "upper": (lambda a: _want_str(a[0]).upper(), 1, 1),
    "title": (_title, 1, 1),
    "truncate": (_truncate, 2, 2),
}


# --------------------------------------------------------------------------- executor


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Exec:
    """One rendering: the output so far and the variable stack (``$`` is the data)."""

    def __init__(self, text: str, root: object, missing_error: bool = False) -> None:
        self.text = text
        self.vars: list[list[object]] = [["$", root]]
        self.out: list[str] = []
        self.missing_error = missing_error

    def fail(self, node: _Node, reason: str) -> TemplateError:
        src = self.text[node.pos:node.end].strip()
        # Go's ErrorContext: the line, then the byte offset in it counted from 0
        line = self.text.count("\n", 0, node.pos) + 1
        col = node.pos - (self.text.rfind("\n", 0, node.pos) + 1)
        return TemplateError(f"executing at <{src}>: {reason}", line, col)

    def walk(self, dot: object, nodes: list[_Node]) -> None:
        for node in nodes:
            kind = type(node)
            if kind is _Text:
                self.out.append(node.text)  # type: ignore[attr-defined]
            elif kind is _Action:
                pipe = node.pipe  # type: ignore[attr-defined]
                value = self.pipeline(dot, pipe)
                if not pipe.decl:
                    self.out.append(_fmt(value))
            elif kind is _Control:
                if node.word == "range":  # type: ignore[attr-defined]
                    self.range(dot, node)  # type: ignore[arg-type]
                else:
                    self.if_with(dot, node)  # type: ignore[arg-type]
            elif kind is _Loop:
                raise _Break() if node.word == "break" else _Continue()  # type: ignore[attr-defined]

    def if_with(self, dot: object, node: _Control) -> None:
        mark = len(self.vars)
        value = self.pipeline(dot, node.pipe)
        if _truth(value):
            self.walk(value if node.word == "with" else dot, node.body)
        elif node.alt is not None:
            self.walk(dot, node.alt)
        del self.vars[mark:]

    def range(self, dot: object, node: _Control) -> None:
        mark0 = len(self.vars)
        pipe = node.pipe
        value = self.pipeline(dot, pipe)
        mark = len(self.vars)
        items: list[tuple[object, object]]
        if isinstance(value, dict):
            items = [(k, value[k]) for k in _sorted_keys(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(pipe.decl) > 1:
                raise self.fail(pipe, f"can't use {value} to iterate over more than one variable")
            items = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            items = []
        else:
            raise self.fail(pipe, f"range can't iterate over {_fmt(value)}")
        if not items:
            if node.alt is not None:
                self.walk(dot, node.alt)
            del self.vars[mark0:]
            return
        for key, elem in items:
            if pipe.decl:
                if pipe.assign:
                    self.set_var(pipe, pipe.decl[0], key if len(pipe.decl) > 1 else elem)
                    if len(pipe.decl) > 1:
                        self.set_var(pipe, pipe.decl[1], elem)
                else:
                    self.vars[mark - 1][1] = elem
                    if len(pipe.decl) > 1:
                        self.vars[mark - 2][1] = key
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]
        del self.vars[mark0:]

    def set_var(self, node: _Node, name: str, value: object) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        raise self.fail(node, f"undefined variable: {name}")

    def var(self, node: _Var) -> object:
        for name, value in reversed(self.vars):
            if name == node.name:
                return value
        raise self.fail(node, f"undefined variable: {node.name}")

    def pipeline(self, dot: object, pipe: _Pipe) -> object:
        value: object = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.assign:
                self.set_var(pipe, name, value)
            else:
                self.vars.append([name, value])
        return value

    def command(self, dot: object, cmd: _Cmd, final: object) -> object:
        first = cmd.args[0]
        has_args = len(cmd.args) > 1 or final is not _NO_FINAL
        if isinstance(first, _Func):
            return self.call(dot, first, cmd.args[1:], final, cmd)
        if isinstance(first, (_Field, _Chain)) or (isinstance(first, _Var) and first.names):
            method = self.method(dot, first)
            if method is not None:
                args = [self.arg(dot, node) for node in cmd.args[1:]]
                if final is not _NO_FINAL:
                    args.append(final)
                return self.invoke(first, method, args)
            if has_args:
                raise self.fail(first, f"{first.names[-1]} is not a method but has arguments")
            return self.arg(dot, first)
        if isinstance(first, _Nil):
            raise self.fail(first, "nil is not a command")
        if has_args:
            src = self.text[first.pos:first.end]
            raise self.fail(first, f"can't give argument to non-function {src}")
        return self.arg(dot, first)

    def arg(self, dot: object, node: _Node) -> object:
        kind = type(node)
        if kind is _Field:
            return self.fields(dot, node.names, node)  # type: ignore[attr-defined]
        if kind is _Const:
            return node.value  # type: ignore[attr-defined]
        if kind is _Dot:
            return dot
        if kind is _Var:
            return self.fields(self.var(node), node.names, node)  # type: ignore[arg-type,attr-defined]
        if kind is _Nil:
            return None
        if kind is _Pipe:
            return self.pipeline(dot, node)  # type: ignore[arg-type]
        if kind is _Chain:
            base = self.arg(dot, node.node)  # type: ignore[attr-defined]
            return self.fields(base, node.names, node)  # type: ignore[attr-defined]
        if kind is _Func:
            return self.call(dot, node, [], _NO_FINAL, node)  # type: ignore[arg-type]
        raise self.fail(node, "can't evaluate this operand")

    def method(self, dot: object, node: _Node) -> Callable[..., object] | None:
        """The method a field chain names (``.Label`` of a Row), or None for a plain field."""
        names: list[str] = node.names  # type: ignore[attr-defined]
        kind = type(node)
        if kind is _Field:
            base = dot
        elif kind is _Var:
            base = self.var(node)  # type: ignore[arg-type]
        else:
            base = self.arg(dot, node.node)  # type: ignore[attr-defined]
        receiver = self.fields(base, names[:-1], node) if len(names) > 1 else base
        if isinstance(receiver, Row):
            return receiver.methods.get(names[-1])
        return None

    def invoke(self, node: _Node, method: Callable[..., object], args: list[object]) -> object:
        want = method.__code__.co_argcount - len(method.__defaults__ or ())
        if len(args) != want:
            name = node.names[-1]  # type: ignore[attr-defined]
            raise self.fail(node, f"wrong number of args for {name}: want {want} got {len(args)}")
        return method(*args)

    def fields(self, receiver: object, names: list[str], node: _Node) -> object:
        for name in names:
            if receiver is MISSING:
                return MISSING
            if isinstance(receiver, Row) and name in receiver.methods:
                receiver = self.invoke(node, receiver.methods[name], [])
                continue
            if isinstance(receiver, dict):
                if self.missing_error and name not in receiver:
                    raise self.fail(node, f"map has no entry for key {name!r}".replace("'", '"'))
                receiver = receiver.get(name, MISSING)
            elif receiver is None:
                raise self.fail(node, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(node, f"can't evaluate field {name} in type {_go_type(receiver)}")
        return receiver

    def call(self, dot: object, func: _Func, nodes: list[_Node], final: object,
             at: _Node) -> object:
        """Call func with the operands in nodes, then the piped-in value (final)."""
        name = func.name
        fn, least, most = _FUNCS[name]
        count = len(nodes) + (final is not _NO_FINAL)
        if count < least or (most is not None and count > most):
            want = f"at least {least}" if most is None else str(least)
            raise self.fail(at, f"wrong number of args for {name}: want {want} got {count}")
        if name in ("and", "or"):
            value: object = MISSING
            for node in nodes:
                value = self.arg(dot, node)
                if _truth(value) != (name == "and"):
                    return value
            return final if final is not _NO_FINAL else value
        args = [self.arg(dot, node) for node in nodes]
        if final is not _NO_FINAL:
            args.append(final)
        try:
            return fn(args)
        except _FuncError as exc:
            reason = f"error calling {name}: {exc.message}" if exc.call else exc.message
            raise self.fail(at, reason) from None


# --------------------------------------------------------------------------- API


class Template:
    """A parsed template; render it once per object (container, network, row)."""

    __slots__ = ("text", "_nodes")

    def __init__(self, text: str, nodes: list[_Node]) -> None:
        self.text = text
        self._nodes = nodes

    def render(self, data: object, missing_error: bool = False) -> str:
        """The template applied to data; raises TemplateError (unknown field use etc.).

        ``missing_error``: a map key that is not there is an error, as in the docker CLI
        (Go's ``missingkey=error``); False prints ``<no value>`` as plain Go templates do.
        """
        state = _Exec(self.text, data, missing_error)
        try:
            state.walk(data, self._nodes)
        except RecursionError:
            raise TemplateError("template too deeply nested") from None
        return "".join(state.out)


def parse(text: str) -> Template:
    """Parse a Go template; raises TemplateError naming the problem and its position."""
    try:
        toks = _Lexer(text).run()
        return Template(text, _Parser(text, toks).parse())
    except RecursionError:
        raise TemplateError("template too deeply nested") from None


def render(text: str, data: object, missing_error: bool = False) -> str:
    """Parse text and apply it to data."""
    return parse(text).render(data, missing_error)


def table_format(text: str) -> tuple[bool, str]:
    """docker's format prefix rule: ("table {{.ID}}\\t{{.Name}}") -> (True, "{{.ID}}\t{{.Name}}").

    Like docker's CLI, the rest is trimmed of spaces and the two-character escapes
    ``\\t`` and ``\\n`` typed on a shell become a tab and a newline (for both kinds).
    """
    is_table = text.startswith("table")
    rest = text[len("table"):] if is_table else text
    rest = rest.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return is_table, rest
