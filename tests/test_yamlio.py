"""Line-aware YAML loading: line numbers, no silent duplicate keys or boolean keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from weaklabel.errors import WeaklabelError
from weaklabel.yamlio import LineDict, load_yaml


def _write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "f.yaml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_mappings_remember_their_lines(tmp_path: Path) -> None:
    data = load_yaml(_write(tmp_path, "# comment\nversion: 1\nlabels:\n  lips:\n    keywords: [a]\n"
                                      "  3:\n    name: three\n"))
    assert isinstance(data, LineDict)
    assert data.key_lines == {"version": 2, "labels": 3}
    labels = data["labels"]
    assert labels.line == 4
    assert labels.key_lines == {"lips": 4, 3: 6}  # integer keys are allowed
    assert labels["lips"]["keywords"] == ["a"]


@pytest.mark.parametrize("key, shown", [("no", "False"), ("yes", "True"), ("off", "False"),
                                        ("null", "None"), ("~", "None"), ("1.5", "1.5")])
def test_keys_yaml_coerces_are_rejected_with_the_line(tmp_path: Path, key: str,
                                                      shown: str) -> None:
    p = _write(tmp_path, f"labels:\n  lips: 1\n  {key}: 2\n")
    with pytest.raises(WeaklabelError) as e:
        load_yaml(p)
    assert str(e.value) == (f"{p}:3: key {key!r} is read by YAML as {shown}; "
                            f"quote it: '{key}':")


def test_quoted_no_is_a_string_key(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "'no': 1\n")) == {"no": 1}


def test_duplicate_keys_name_both_lines(tmp_path: Path) -> None:
    p = _write(tmp_path, "labels:\n  lips:\n    name: a\n  hair: {}\n  lips:\n    name: b\n")
    with pytest.raises(WeaklabelError, match=r"f.yaml:5: duplicate key 'lips' \(first on line 2\)"):
        load_yaml(p)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "labels:\n  lips:\n    keywords: [a, b\n  hair: 1\n")
    with pytest.raises(WeaklabelError, match=r"f.yaml:\d+: invalid YAML"):
        load_yaml(p)


def test_a_tab_in_the_indentation_says_to_use_spaces(tmp_path: Path) -> None:
    p = tmp_path / "lm.yaml"
    p.write_text("labels:\n  lips:\n\tkeywords: [x]\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"lm.yaml:3: invalid YAML: .*'\\t'.*; YAML "
                                              r"indents with spaces, never tabs"):
        load_yaml(p)


def test_bom_is_accepted(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "\ufeffa: 입술\n".encode())) == {"a": "입술"}


def test_not_utf8_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match="is not UTF-8 text"):
        load_yaml(_write(tmp_path, "a: 입술\n".encode("cp949")))
    with pytest.raises(WeaklabelError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(WeaklabelError, match="cannot read"):
        load_yaml(tmp_path)


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, "a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(WeaklabelError, match="invalid YAML"):
        load_yaml(p)


def test_empty_file_is_none(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "# nothing\n")) is None


@pytest.mark.parametrize("value, message", [
    ("010", "010 is read by YAML as the octal number 8; write 10 for the number 10, or "
            "quote it ('010') for text"),
    ("-010", "write -10 for the number -10"),
])
def test_octal_numbers_are_named(tmp_path: Path, value: str, message: str
                                             ) -> None:
    # `k: 010` was k 8, `clusters: [010]` claimed cluster 8
    for text in (f"cluster:\n  k: {value}\n", f"labels:\n  lips:\n    clusters: [{value}]\n"):
        p = _write(tmp_path, text)
        with pytest.raises(WeaklabelError) as e:
            load_yaml(p)
        line = text.count("\n")
        assert str(e.value).startswith(f"{p}:{line}: {value} is read") and message in str(
            e.value)


def test_numbers_that_read_the_same_either_way_stay_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path, "a: 007\nb: 10_000\nc: 0x1f\nd: '010'\ne: 0\n")
    assert load_yaml(p) == {"a": 7, "b": 10000, "c": 31, "d": "010", "e": 0}
