"""The user dictionary: words, stop words, comments, NFC, digest, errors."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from weaklabel.errors import WeaklabelError
from weaklabel.text.userdict import load_userdict


def test_words_and_stopwords(userdict_dir: Path) -> None:
    (userdict_dir / "brands.txt").write_text(
        "\ufeff# brands\n롬앤  # a comment after a word\n\n클리오\n데일리룩\n", encoding="utf-8")
    (userdict_dir / "notes.md").write_text("무시\n", encoding="utf-8")  # only *.txt count
    ud = load_userdict(userdict_dir)
    assert ud.words == ("꾸안꾸", "데일리룩", "롬앤", "쿠션팩트", "클리오")  # sorted, de-duplicated
    assert ud.stopwords == frozenset({"오늘"})


def test_words_are_nfc(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text(unicodedata.normalize("NFD", "쿠션팩트") + "\n",
                                    encoding="utf-8")
    assert load_userdict(tmp_path).words == ("쿠션팩트",)


def test_digest_tracks_words_and_stopwords(userdict_dir: Path) -> None:
    d1 = load_userdict(userdict_dir).digest
    assert load_userdict(userdict_dir).digest == d1  # stable
    (userdict_dir / "more.txt").write_text("립스틱추천\n", encoding="utf-8")
    d2 = load_userdict(userdict_dir).digest
    (userdict_dir / "stopwords.txt").write_text("오늘\n진짜\n", encoding="utf-8")
    d3 = load_userdict(userdict_dir).digest
    assert len({d1, d2, d3}) == 3


def test_a_word_moving_to_stopwords_changes_the_digest(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("가\n", encoding="utf-8")
    a = load_userdict(tmp_path).digest
    (tmp_path / "w.txt").unlink()
    (tmp_path / "stopwords.txt").write_text("가\n", encoding="utf-8")
    assert load_userdict(tmp_path).digest != a


def test_none_is_empty() -> None:
    ud = load_userdict(None)
    assert ud.words == () and ud.stopwords == frozenset()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match="user dictionary folder .* does not exist"):
        load_userdict(tmp_path / "missing")
    (tmp_path / "w.txt").write_text("좋은 말\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"w.txt:1: '좋은 말' contains a space"):
        load_userdict(tmp_path)
    (tmp_path / "w.txt").write_bytes(b"\xff\xff\n")
    with pytest.raises(WeaklabelError, match=r"w.txt is not UTF-8 \(nor CP949 or UTF-16\) "
                                              r"text; save the dictionary as UTF-8"):
        load_userdict(tmp_path)


@pytest.mark.parametrize("encoding", ["cp949", "utf-16", "utf-8-sig"])
def test_a_dictionary_saved_by_notepad_is_read(tmp_path: Path, encoding: str) -> None:
    # Notepad's "ANSI" on a Korean Windows (CP949) was "w.txt is not UTF-8"
    (tmp_path / "w.txt").write_bytes("립스틱추천\n# 브랜드\n데일리룩\n".encode(encoding))
    assert load_userdict(tmp_path).words == ("데일리룩", "립스틱추천")


def test_a_hash_inside_a_word_is_no_comment_and_a_pasted_hashtag_is_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "w.txt").write_text("C#\nF#마이너  # a note\n#데일리룩\n# a comment\n",
                                    encoding="utf-8")
    (tmp_path / "stopwords.txt").write_text("OOTD\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        ud = load_userdict(tmp_path)
    assert ud.words == ("C#", "F#마이너")
    assert ud.stopwords == frozenset({"ootd"})  # tokens are folded; so are stop words
    assert "w.txt:3: '#데일리룩' is read as a comment" in caplog.text
    assert caplog.text.count("is read as a comment") == 1  # not the "# a comment" line
