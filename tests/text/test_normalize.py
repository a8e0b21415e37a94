"""Caption normalisation: the rules, and that normalising twice changes nothing."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from weaklabel.text.normalize import normalize_caption


@pytest.mark.parametrize("raw, expected", [
    ("존예ㅋㅋㅋㅋㅋ #립스틱추천", "존예ㅋㅋ #립스틱추천 립스틱추천"),
    ("대박!!!!!!", "대박!!!"),
    ("좋아요 😍😍😍😍😍", "좋아요 😍😍😍"),
    ("링크 https://shop.example.com/a?b=1 와 www.x.co 끝", "링크 와 끝"),
    ("@friend 같이 가요 me@mail.com", "같이 가요 me@mail.com"),
    ("줄\n바꿈\t\t탭\u200b제로폭\x00널", "줄 바꿈 탭 제로폭 널"),
    ("#데일리룩#꾸안꾸", "#데일리룩 데일리룩 #꾸안꾸 꾸안꾸"),
    ("  ", ""),
    ("", ""),
])
def test_rules(raw: str, expected: str) -> None:
    assert normalize_caption(raw) == expected


def test_decomposed_hangul_is_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "데일리룩")
    assert decomposed != "데일리룩"
    assert normalize_caption(decomposed) == "데일리룩"


_pieces = st.sampled_from([
    "가", "룩", "ㅋ", "ㅎ", "ㅏ", "#", "@", " ", "\n", "\t", "a", "B", ".", ":", "/", "1", "!",
    "http://", "www.", "\u200b", "\x00", "\ufeff", "\u1100", "\u1161", "e\u0301", "😍",
    "#데일리룩", "데일리룩", "@me",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_pieces, max_size=25).map("".join), st.text(max_size=30)))
@example("#립스틱추천")
@example("@가@가")
@example("#a #a")
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalize_caption(text)
    assert normalize_caption(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_output_is_single_spaced_nfc_without_controls(text: str) -> None:
    out = normalize_caption(text)
    assert out == out.strip()
    assert "  " not in out and "\n" not in out and "\t" not in out
    assert unicodedata.is_normalized("NFC", out)
    assert not any(c in out for c in "\x00\u200b\ufeff")
