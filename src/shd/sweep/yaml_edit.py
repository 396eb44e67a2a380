"""Update keys of a YAML document in place, line by line, so its comments survive.

PyYAML drops comments on a round trip and ruamel.yaml is not a dependency; params.yaml is a plain
block-mapping document, so the touched keys are edited as lines: a scalar or flow value is replaced
on its own line (its trailing comment kept), a block mapping is descended into, a missing key is
added at the end of its block. The result is parsed back and must equal the deep merge, or nothing
is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from shd.errors import InputError
from shd.sweep.space import merge


def flow(value: Any) -> str:
    """One-line YAML for a value (`{preset: tiny, width: 96}`, `[64, 64]`, `0.0003`)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _content(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split(line: str, key: str) -> tuple[str, str, str]:
    """A `key: value  # comment` line -> (`    key:`, ` value  `, `# comment`)."""
    body = line.rstrip("\n")
    head_len = body.index(":", _indent(body) + len(key)) + 1
    head, rest = body[:head_len], body[head_len:]
    quote = None
    for j, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (j == 0 or rest[j - 1].isspace()):
            return head, rest[:j], rest[j:]
    return head, rest, ""


def _line(head: str, old_value: str, value: Any, comment: str) -> str:
    text = f"{head} {flow(value)}"
    if comment:  # keep the comment's column when the new value fits before it
        column = len(head) + len(old_value)
        text = text.ljust(column) if len(text) < column else text + "  "
        text += comment
    return text + "\n"


def _find(lines: list[str], start: int, end: int, indent: int, key: str) -> int | None:
    pattern = re.compile(rf"^ {{{indent}}}{re.escape(key)}\s*:(\s|$)")
    return next((i for i in range(start, end) if pattern.match(lines[i])), None)


def _children_end(lines: list[str], i: int, end: int, indent: int) -> int:
    """One past the last content line deeper than `indent` that follows line i without interruption."""
    last = i
    for j in range(i + 1, end):
        if _content(lines[j]):
            if _indent(lines[j]) <= indent:
                break
            last = j
    return last + 1


def _update_block(lines: list[str], start: int, end: int, update: Mapping[str, Any]) -> int:
    """Apply `update` to the mapping in lines[start:end]; returns the block's new end."""
    for key, value in update.items():
        content = [i for i in range(start, end) if _content(lines[i])]
        indent = _indent(lines[content[0]]) if content else 0
        i = _find(lines, start, end, indent, str(key))
        if i is None:  # a new key: last in its block
            at = content[-1] + 1 if content else start
            lines.insert(at, f"{' ' * indent}{key}: {flow(value)}\n")
            end += 1
            continue
        head, old, comment = _split(lines[i], str(key))
        child_end = _children_end(lines, i, end, indent)
        if old.strip() == "" and child_end > i + 1:  # a block mapping
            if isinstance(value, Mapping):
                new_end = _update_block(lines, i + 1, child_end, value)
                end += new_end - child_end
                continue
            del lines[i + 1 : child_end]  # replaced by a scalar: its children go
            end -= child_end - i - 1
            lines[i] = _line(head, old, value, comment)
            continue
        current = yaml.safe_load(old) if old.strip() else None
        lines[i] = _line(head, old, merge(current, value), comment)
    return end


def update_text(text: str, update: Mapping[str, Any], where: str) -> str:
    """`text` with `update` deep-merged into it (see module doc); InputError if that cannot be done
    faithfully line by line."""
    try:
        before = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(where, f"not valid YAML ({exc})") from None
    if not isinstance(before, dict):
        raise InputError(where, "expected a mapping of sections at the top level")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    _update_block(lines, 0, len(lines), update)
    new = "".join(lines)
    try:
        ok = yaml.safe_load(new) == merge(before, update)
    except yaml.YAMLError:
        ok = False
    if not ok:
        raise InputError(
            where,
            "could not merge the update line by line (unusual layout); nothing written, "
            f"merge by hand: {flow(dict(update))}",
        )
    return new
