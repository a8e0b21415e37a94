"""Hostile YAML in hand-edited files: alias bombs, recursion, depth, size (issue 7, case 4).

Every hand-edited YAML file (label map, config, seed keywords) goes through
``weaklabel.yamlio.load_yaml``; each case is tried through the real loaders.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from weaklabel.config import load_config
from weaklabel.errors import WeaklabelError
from weaklabel.labels.cluster import load_seed_keywords
from weaklabel.labels.labelmap import load_labelmap
from weaklabel.yamlio import MAX_CHARS, load_yaml


def bomb(levels: int = 9, width: int = 9) -> str:
    """``a0: &a0 [x]`` then each level a list of ``width`` aliases of the one before."""
    lines = ["    bomb0: &a0 [립밤]"]
    for i in range(1, levels + 1):
        refs = ", ".join(f"*a{i - 1}" for _ in range(width))
        lines.append(f"    bomb{i}: &a{i} [{refs}]")
    return "\n".join(lines)


def labelmap_with_bomb() -> str:
    refs = ", ".join("*a8" for _ in range(9))
    return ("version: 1\nx-anchors:\n" + "\n".join(
        f"  b{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9)) if i else '립밤'}]"
        for i in range(9)) + f"\nlabels:\n  lips:\n    keywords: [립스틱]\n"
        f"    exclude: [{refs}]\n")


def test_an_alias_bomb_in_a_label_map_is_refused_at_once(tmp_path: Path) -> None:
    p = tmp_path / "labelmap.yaml"
    p.write_text(labelmap_with_bomb(), encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(WeaklabelError, match=r"labelmap.yaml:\d+: this YAML expands to more "
                                             r"than 1,000,000 values"):
        load_labelmap(p)
    assert time.perf_counter() - t0 < 5  # the bomb is measured, never expanded


@pytest.mark.parametrize("load, name", [(load_config, "config.yaml"),
                                        (load_seed_keywords, "keywords.yaml")])
def test_every_hand_edited_yaml_refuses_the_bomb(tmp_path: Path, load, name) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / name
    p.write_text("sample:\n  quotas:\n" + bomb().replace("    ", "    ") + "\n",
                 encoding="utf-8")
    with pytest.raises(WeaklabelError, match=rf"{name}:\d+: this YAML expands"):
        load(p)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text("a: &x [1, *x]\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"x.yaml:1: a YAML alias refers to itself"):
        load_yaml(p)


def test_deep_nesting_and_a_huge_file_are_one_line_errors(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"deep.yaml: YAML nested too deeply"):
        load_yaml(p)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_CHARS + "\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"big.yaml is [\d,]+ characters"):
        load_yaml(big)


def test_a_few_plain_aliases_still_work(tmp_path: Path) -> None:
    p = tmp_path / "ok.yaml"
    p.write_text("base: &b [a, b]\nlist: [*b, *b]\n", encoding="utf-8")
    assert load_yaml(p) == {"base": ["a", "b"], "list": [["a", "b"], ["a", "b"]]}
