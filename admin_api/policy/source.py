"""Cedar text as the API takes it: checked against the platform schema, each problem located, cut into statements.

Cedar decides what is valid; this module only says where. cedarpy names the
statement a validation error is about (`policy0`, `policy1`, ... in text order)
but gives no offsets, and a parse error names nothing: each statement is then
parsed on its own, so every broken one is reported with its line and column.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import cedarpy
from cedarpy import pst

from admin_api.policy.catalog import SCHEMA

MAX_SOURCE_LENGTH = 64_000
MAX_PROBLEMS = 100  # reported for one text; a note says when there are more
_POSITIONAL = re.compile(r"^policy(\d+)$")
_POSITIONAL_PREFIX = re.compile(r"^for policy `policy\d+`, ")


@dataclass(frozen=True)
class Problem:
    """Why Cedar text is refused, and where (a 1-based statement number, line and column) when Cedar tells."""

    message: str
    policy: int | None = None
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict:
        location = {"policy": self.policy, "line": self.line, "column": self.column} if self.line else None
        return {"message": self.message, "location": location}

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column} (policy {self.policy}): {self.message}" if self.line else self.message


# Cedar's parser and validator recurse once per nesting level and per operator of a chain: a few KB of
# `((((...` overflow the stack of the worker thread and kill the process (SIGSEGV), which no exception
# handler can catch. So the shape of untrusted text is checked before Cedar sees it. The limits are far
# beyond any policy a person writes, and far below what crashed here (about 700 nested brackets, or a
# chain of about 1,300 `&&` terms, in a gunicorn worker thread): tests/test_policies.py parses the largest
# allowed shapes in a thread to prove it.
MAX_NESTING = 32
MAX_TOKENS_PER_STATEMENT = 1000
# A `//` comment runs to the end of its line, and Cedar ends a line at `\r` as well as `\n`: reading a
# comment any further than Cedar does would hide from the guard text that Cedar parses.
_COMMENT = re.compile(r"//[^\n\r]*")
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"?|' + _COMMENT.pattern + r'|[A-Za-z_][A-Za-z0-9_]*|\d+|&&|\|\||::|[=!<>]=|\S')
_OPENING, _CLOSING = "([{", ")]}"


def _shape_problems(source: str, spans: list[tuple[int, int]]) -> list[Problem]:
    found = []
    for number, (start, end) in enumerate(spans, start=1):
        # Each open bracket is a level, and so is each `if` inside it: `else if ...` nests one deeper, and the
        # ifs end with their bracket. A closing bracket with none open closes nothing (Cedar refuses it anyway).
        ifs_by_level, open_ifs, deepest, tokens = [0], 0, 0, 0
        for token in _TOKEN.findall(source, start, end):
            if token.startswith("//"):
                continue
            tokens += 1
            if token in _OPENING:
                ifs_by_level.append(0)
            elif token == "if":
                ifs_by_level[-1] += 1
                open_ifs += 1
            elif token in _CLOSING and len(ifs_by_level) > 1:
                open_ifs -= ifs_by_level.pop()
            deepest = max(deepest, len(ifs_by_level) - 1 + open_ifs)
        if deepest > MAX_NESTING:
            found.append(_at(source, spans, number, f"Nested more than {MAX_NESTING} levels deep "
                                                    "(brackets and if-then-else): simplify the condition."))
        elif tokens > MAX_TOKENS_PER_STATEMENT:
            found.append(_at(source, spans, number, f"Longer than {MAX_TOKENS_PER_STATEMENT} tokens: split it into "
                                                    "several policies."))
    return found


def problems(source: str) -> list[Problem]:
    """Every problem of Cedar text against the platform schema; empty when it can be registered."""
    spans = statement_spans(source)
    if not spans:
        return [Problem("Contains no policy.")]
    if found := _shape_problems(source, spans):
        return found
    try:
        tree = cedarpy.policies_to_pst(source)
    except ValueError as exc:
        return _parse_problems(source, spans, str(exc))
    if tree.templates:
        return [_at(source, spans, _position(id_), "Templates (?principal or ?resource slots) cannot be registered: "
                                                   "name the entity instead.") for id_ in tree.templates]
    # One statement at a time, stopping once MAX_PROBLEMS are found: Cedar reports a problem per term and per
    # action, so 64 KB of text could make 170,000 of them (seconds of work, megabytes of answer).
    found: list[Problem] = []
    for number, (start, end) in enumerate(spans, start=1):
        errors = sorted(_POSITIONAL_PREFIX.sub("", error.error)
                        for error in cedarpy.validate_policies(source[start:end], SCHEMA).errors)
        found.extend(_at(source, spans, number, message) for message in errors)
        if len(found) > MAX_PROBLEMS:
            return _capped(found)
    return found


def _capped(found: list[Problem]) -> list[Problem]:
    if len(found) <= MAX_PROBLEMS:
        return found
    return [*found[:MAX_PROBLEMS], Problem(f"More problems are not shown: fix these {MAX_PROBLEMS} first.")]


def statements(source: str, policy_id: str) -> list[pst.Template]:
    """The policies of valid Cedar text, each with a Cedar id of ours and `@id` = `policy_id`.

    The first statement's id is `policy_id`, the next ones `policy_id#2`, `#3`, ...: Cedar's answers and its
    evaluation errors then name the registered policy. An `@id` written in the text is replaced.
    """
    tree = cedarpy.policies_to_pst(source)
    ordered = sorted(tree.static_policies.values(), key=lambda template: _position(template.id) or 0)
    return [
        dataclasses.replace(template, id=policy_id if n == 1 else f"{policy_id}#{n}",
                            annotations=pst.FrozenMap({**template.annotations, "id": policy_id}))
        for n, template in enumerate(ordered, start=1)
    ]


def registered_id(cedar_id: str) -> str:
    """The registered policy a Cedar policy id belongs to (`<id>#2` is the second statement of `<id>`)."""
    return cedar_id.split("#", 1)[0]


def _position(policy_id: str) -> int | None:
    match = _POSITIONAL.match(policy_id or "")
    return int(match.group(1)) + 1 if match else None


def _parse_problems(source: str, spans: list[tuple[int, int]], message: str) -> list[Problem]:
    found = []
    for number, (start, end) in enumerate(spans, start=1):
        try:
            cedarpy.PolicySet.from_str(source[start:end])
        except ValueError as exc:
            found.append(_at(source, spans, number, str(exc)))
            if len(found) > MAX_PROBLEMS:
                return _capped(found)
    return found or [Problem(message)]


def _at(source: str, spans: list[tuple[int, int]], number: int | None, message: str) -> Problem:
    if number is None or number > len(spans):
        return Problem(message)
    offset = spans[number - 1][0]
    line_start = source.rfind("\n", 0, offset) + 1
    return Problem(message, number, source.count("\n", 0, offset) + 1, offset - line_start + 1)


def statement_spans(source: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each statement: from its first token (annotations included) to its `;`.

    Strings and `//` comments are skipped, so a `;` inside them ends nothing. Text after the last `;`
    is a statement too (a missing `;` is then reported there).
    """
    spans: list[tuple[int, int]] = []
    start, index, in_string = None, 0, False
    while index < len(source):
        char = source[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif source.startswith("//", index):
            index = _COMMENT.match(source, index).end()
            continue
        elif char == ";":
            spans.append((index if start is None else start, index + 1))
            start = None
        elif not char.isspace():
            start = index if start is None else start
            in_string = char == '"'
        index += 1
    if start is not None:
        spans.append((start, len(source)))
    return spans
