"""Image names of any bytes reach every artifact in one text form (issue 7, case 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weaklabel.containment import fs_form, text_form
from weaklabel.errors import WeaklabelError
from weaklabel.posts import normalize_image_path, read_posts

W = Path("posts.csv")


@pytest.mark.parametrize("raw, want", [
    (os.fsdecode(b"a/caf\xe9.jpg"), "a/caf\\xe9.jpg"),        # JSON "\udce9"
    (b"a/caf\xe9.jpg", "a/caf\\xe9.jpg"),                     # a Parquet binary cell
    ("a/caf\\xe9.jpg", "a/caf\\xe9.jpg"),                     # copied from purge.csv
    ("a\\b.jpg", "a/b.jpg"),                                  # a Windows separator
    ("a/new\nline.jpg", "a/new\nline.jpg"),
])
def test_names_become_the_text_form(raw: str | bytes, want: str) -> None:
    got = normalize_image_path(raw, row=1, where=W)
    assert got == want
    assert got.encode("utf-8")  # valid UTF-8: Parquet, JSON and CSV can hold it


def test_text_and_fs_forms_round_trip() -> None:
    for raw in (b"a/\xff\xfe.jpg", b"\xed\xa0\x80.jpg", "한글/사진.jpg".encode(), b"plain"):
        name = os.fsdecode(raw)
        assert os.fsencode(fs_form(text_form(name))) == raw


def test_escaping_paths_are_still_refused() -> None:
    for raw in (b"../x.jpg", "/etc/passwd", "a/../../b.jpg", "C:\\x.jpg"):
        with pytest.raises(WeaklabelError, match=r"posts.csv: row 1: image path"):
            normalize_image_path(raw, row=1, where=W)


def test_a_jsonl_post_with_surrogate_escapes_reads(tmp_path: Path) -> None:
    p = tmp_path / "posts.jsonl"
    p.write_text('{"post_id": "1", "caption": "x", "images": ["a/\\udcff.jpg"]}\n',
                 encoding="utf-8")
    _, images = read_posts(p)
    assert images["image"].tolist() == ["a/\\xff.jpg"]
