"""A small GraphQL reader for the queries Weaviate's ``Get`` takes: one operation
(``{ ... }`` or ``query Name($v: Type) { ... }``), fields with aliases, arguments and
nested selections; values: strings (block strings too), numbers, booleans, null, enums,
lists, objects and ``$variables``. No fragments, directives or mutations: those answer a
400 saying so. Hand-written (about a hundred lines) rather than a GraphQL dependency in
the Lambda layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pixdex.errors import BadRequestError


@dataclass(frozen=True)
class Enum:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Field] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alias or self.name


_TOKEN = re.compile(r'''
    (?P<skip>[\s,\ufeff]+|\#[^\n]*)
  | (?P<block>"""(?:\\"""|[^"]|"(?!""))*""")
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<punct>\.\.\.|[!$():=@\[\]{}|&])
''', re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _error(f"unexpected character {text[position]!r} at offset {position}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "skip":
            out.append((kind, match.group()))
    return out


def _error(message: str) -> BadRequestError:
    return BadRequestError(f"GraphQL query: {message}", field="query")


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise _error(f"unexpected end of query{f', expected {expected!r}' if expected else ''}")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise _error(f"expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def name(self) -> str:
        kind, text = self.take()
        if kind != "name":
            raise _error(f"expected a name, found {text!r}")
        return text

    def document(self) -> list[Field]:
        if self.peek() in ("mutation", "subscription", "fragment"):
            raise _error(f"only queries are supported, not {self.peek()}")
        if self.peek() == "query":
            self.take()
            if self.peek() not in ("{", "("):
                self.name()
            if self.peek() == "(":  # variable definitions: their values come from variables
                while self.take()[1] != ")":
                    pass
        selections = self.selection_set()
        if self.peek() is not None:
            raise _error(f"one operation per request; unexpected {self.peek()!r}")
        return selections

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while self.peek() != "}":
            if self.peek() in ("...", "@"):
                raise _error("fragments and directives are not supported")
            name = self.name()
            alias = None
            if self.peek() == ":":
                self.take()
                alias, name = name, self.name()
            args = self.arguments() if self.peek() == "(" else {}
            selections = self.selection_set() if self.peek() == "{" else []
            fields.append(Field(name, alias, args, selections))
        self.take("}")
        return fields

    def arguments(self) -> dict[str, Any]:
        self.take("(")
        args: dict[str, Any] = {}
        while self.peek() != ")":
            key = self.name()
            self.take(":")
            args[key] = self.value()
        self.take(")")
        return args

    def value(self) -> Any:
        kind, text = self.take()
        if text == "$":
            name = self.name()
            if name not in self.variables:
                raise _error(f"variable ${name} is not given in 'variables'")
            return self.variables[name]
        if text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        if text == "{":
            fields: dict[str, Any] = {}
            while self.peek() != "}":
                key = self.name()
                self.take(":")
                fields[key] = self.value()
            self.take("}")
            return fields
        if kind == "string":
            return json.loads(text)
        if kind == "block":
            return text[3:-3].replace('\\"""', '"""')
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, Enum(text))
        raise _error(f"unexpected {text!r}")


def parse(text: str, variables: Mapping[str, Any] | None = None) -> list[Field]:
    """The top-level fields of the query's one operation."""
    return _Parser(text, variables or {}).document()
