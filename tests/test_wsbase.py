"""The workspace primitives' stdlib-free JSON writer: byte for byte what ``json``
writes, so a meta is the same file whichever path wrote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from weaklabel.wsbase import json_string, json_text

TEXT = st.text(st.characters(blacklist_categories=()), max_size=12) | st.sampled_from(
    ["", "a\"b\\c", "\x00\x1f\x7f", "\b\f\n\r\t", "é 데일리룩 😀", "\udcff", "/tmp/x y"])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
VALUES = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20)


@given(VALUES)
def test_json_text_is_what_json_writes(value: Any) -> None:
    assert json_text(value) == json.dumps(value, indent=2, ensure_ascii=False, default=str)


@given(TEXT)
def test_json_string_is_what_json_writes(text: str) -> None:
    assert json_string(text, ascii_only=True) == json.dumps(text)
    assert json_string(text, ascii_only=False) == json.dumps(text, ensure_ascii=False)


def test_what_json_text_does_not_write_itself_json_does() -> None:
    """Non-string keys, NaN, a path (``default=str``): handed to ``json`` whole."""
    for value in ({1: "a", "b": 2}, {"x": float("nan")}, [float("-inf")],
                  {"p": Path("/a/b")}, {"nested": {"k": [Path("c")]}}):
        assert json_text(value) == json.dumps(value, indent=2, ensure_ascii=False,
                                              default=str)
