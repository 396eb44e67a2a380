"""Update keys of a YAML document so its comments and layout survive: ruamel.yaml's round trip.

PyYAML drops comments; ruamel.yaml (a DVC dependency, declared here too) keeps them, with key order,
quotes and anchors. A replaced scalar keeps its line's comment; a new mapping or list value is written
in flow style on the key's line (`net: {preset: tiny, width: 96}`), so a merged best-params update
changes one line per key. The result is parsed back and must equal the deep merge, or nothing is
written (an alias shared by two keys, for instance, would change both).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from shd.errors import InputError
from shd.sweep.space import merge


def flow(value: Any) -> str:
    """One-line YAML for a value (`{preset: tiny, width: 96}`, `[64, 64]`, `0.0003`)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _round_trip() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 110  # the project's line length: folds a long flow value as a person would
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), _null)
    return rt


def _null(representer: Any, _: None) -> Any:
    """`null` written out, as params.yaml spells it (ruamel writes nothing)."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _flow_node(value: Any) -> Any:
    """A new value as a ruamel node written in flow style when it is a mapping or a list."""
    if isinstance(value, Mapping):
        node = CommentedMap((k, _flow_node(v)) for k, v in value.items())
    elif isinstance(value, list | tuple):
        node = CommentedSeq(_flow_node(v) for v in value)
    else:
        return value
    node.fa.set_flow_style()
    return node


def _plain(node: Any) -> Any:
    """A ruamel node as plain Python values (what `merge` expects)."""
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _update(node: CommentedMap, update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        current = node.get(key)
        block = isinstance(current, CommentedMap) and not current.fa.flow_style()
        if block and isinstance(value, Mapping):
            _update(current, value)  # descend: the block's own comments stay where they are
        else:
            trailing = _last_comment(current) if block else None
            node[key] = _flow_node(merge(_plain(current), value))
            if trailing is not None:  # comments after a replaced block belong after its new value
                node.ca.items[key] = [None, None, trailing, None]


def _last_comment(block: CommentedMap) -> Any:
    """The comment token after a block mapping's last line (ruamel keeps it on the deepest last key)."""
    while len(block):
        last = list(block)[-1]
        if isinstance(block[last], CommentedMap) and not block[last].fa.flow_style():
            block = block[last]
            continue
        item = block.ca.items.get(last)
        return item[2] if item and len(item) > 2 else None
    return None


def update_text(text: str, update: Mapping[str, Any], where: str) -> str:
    """`text` with `update` deep-merged into it (see module doc); InputError if that cannot be done
    faithfully."""
    try:
        before = yaml.safe_load(text)
        doc = _round_trip().load(text)
    except (yaml.YAMLError, YAMLError) as exc:
        raise InputError(where, f"not valid YAML ({exc})") from None
    if not isinstance(before, dict) or not isinstance(doc, CommentedMap):
        raise InputError(where, "expected a mapping of sections at the top level")
    _update(doc, update)
    out = io.StringIO()
    _round_trip().dump(doc, out)
    new = out.getvalue()
    try:
        ok = yaml.safe_load(new) == merge(before, update)
    except yaml.YAMLError:
        ok = False
    if not ok:
        raise InputError(
            where,
            "could not merge the update faithfully (an alias or unusual layout); nothing written, "
            f"merge by hand: {flow(dict(update))}",
        )
    return new
