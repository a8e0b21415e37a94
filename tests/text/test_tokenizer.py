"""Tokenizers behind one interface: the regex baseline, real Okt (JVM) and real Kiwi."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.errors import WeaklabelError
from weaklabel.text.tokenizer import (
    TOKENIZERS,
    KiwiTokenizer,
    OktTokenizer,
    RegexTokenizer,
    make_tokenizer,
    tokenizer_version,
)
from weaklabel.text.userdict import UserDict

USER_DICT = UserDict(("꾸안꾸", "데일리룩", "쿠션팩트"), frozenset({"오늘"}))


def test_unknown_tokenizer_lists_the_valid_names() -> None:
    with pytest.raises(WeaklabelError, match=r"unknown tokenizer 'mecab'; valid: kiwi, okt, regex"):
        make_tokenizer("mecab", USER_DICT)
    assert set(TOKENIZERS) == {"okt", "kiwi", "regex"}


def test_regex_baseline_drops_stopwords_short_words_and_repeats() -> None:
    tok = make_tokenizer("regex", USER_DICT, min_length=2)
    assert isinstance(tok, RegexTokenizer)
    out = tok.tokenize(["오늘 Lipstick 립스틱 립스틱 a 7 #데일리룩 https://x.co/y", ""])
    # stop word 오늘, one-letter "a", digits and the URL go; a repeat in a row is kept once;
    # the hashtag and its plain-text copy are one repeat in a row.
    assert out == [["lipstick", "립스틱", "데일리룩"], []]


def test_settings_change_with_the_dictionary() -> None:
    a = make_tokenizer("regex", USER_DICT).settings()
    b = make_tokenizer("regex", UserDict(("립스틱추천",), frozenset())).settings()
    assert a["tokenizer"] == "regex" and a["userdict"] == USER_DICT.digest
    assert a != b


@pytest.fixture(scope="module")
def okt() -> OktTokenizer:
    tok = make_tokenizer("okt", USER_DICT)
    assert isinstance(tok, OktTokenizer)
    return tok


@pytest.mark.jvm
@pytest.mark.slow
def test_okt_keeps_dictionary_words_whole(okt: OktTokenizer) -> None:
    tokens = okt.tokenize(["오늘 데일리룩 쿠션팩트 꾸안꾸 추천"])[0]
    assert tokens == ["데일리룩", "쿠션팩트", "꾸안꾸", "추천"]  # 오늘 is a stop word


@pytest.mark.jvm
def test_okt_hashtags_emoji_urls_and_latin(okt: OktTokenizer) -> None:
    caps = ["#립스틱추천 존예 😍😍 https://x.co/a @friend",
            'NEW Lipstick 쿠션팩트, "인생템"\n줄바꿈', "", "😍😍😍"]
    out = okt.tokenize(caps)
    assert out[0][:3] == ["립스틱추천", "립스틱", "추천"]  # the tag, then the nouns inside
    assert not any("http" in t or "friend" in t or "😍" in t for t in out[0])
    assert "new" in out[1] and "lipstick" in out[1] and "쿠션팩트" in out[1]
    assert out[2] == [] and out[3] == []


@pytest.mark.jvm
def test_okt_is_deterministic(okt: OktTokenizer) -> None:
    caps = ["데일리룩 쿠션팩트 #꾸안꾸 립스틱 발색"] * 2
    a, b = okt.tokenize(caps)
    assert a == b == okt.tokenize(caps[:1])[0]


@pytest.mark.jvm
@pytest.mark.slow
def test_without_the_dictionary_okt_splits_the_words() -> None:
    """A fresh JVM without the user dictionary splits 쿠션팩트: the dictionary does the work."""
    code = (
        "from weaklabel.text.tokenizer import make_tokenizer\n"
        "from weaklabel.text.userdict import UserDict\n"
        "t = make_tokenizer('okt', UserDict((), frozenset()))\n"
        "print('|'.join(t.tokenize(['쿠션팩트 데일리룩'])[0]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    tokens = res.stdout.strip().split("|")
    assert "쿠션팩트" not in tokens and "데일리룩" not in tokens
    assert "쿠션" in tokens and "팩트" in tokens


@pytest.fixture(scope="module")
def kiwi() -> KiwiTokenizer:
    tok = make_tokenizer("kiwi", USER_DICT)
    assert isinstance(tok, KiwiTokenizer)
    return tok


def test_kiwi_keeps_dictionary_words_whole(kiwi: KiwiTokenizer) -> None:
    tokens = kiwi.tokenize(["오늘 데일리룩 쿠션팩트 꾸안꾸 추천"])[0]
    assert tokens == ["데일리룩", "쿠션팩트", "꾸안꾸", "추천"]  # 오늘 is a stop word


def test_without_the_dictionary_kiwi_splits_the_word() -> None:
    """The same model without the user words splits 데일리룩: add_user_word does the work."""
    bare = make_tokenizer("kiwi", UserDict((), frozenset()))
    tokens = bare.tokenize(["오늘 데일리룩 추천"])[0]
    assert "데일리룩" not in tokens and "룩" in tokens


def test_kiwi_hashtags_emoji_urls_latin_and_verbs(kiwi: KiwiTokenizer) -> None:
    caps = ["#립스틱추천 존예 😍😍 https://x.co/a @friend",
            'NEW Lipstick 쿠션팩트, "인생템"\n줄바꿈', "", "😍😍😍", "미니스커트 샀어요"]
    out = kiwi.tokenize(caps)
    assert out[0][:3] == ["립스틱추천", "립스틱", "추천"]  # the tag, then the nouns inside
    assert not any("http" in t or "friend" in t or "😍" in t for t in out[0])
    assert "new" in out[1] and "lipstick" in out[1] and "쿠션팩트" in out[1]
    assert out[2] == [] and out[3] == []
    assert "사다" not in out[4]  # verbs are not kept by default
    verbs = make_tokenizer("kiwi", USER_DICT, keep_pos=("Noun", "Verb")).tokenize(caps[4:])
    assert "사다" in verbs[0]  # stem=True: the dictionary form, as Okt gives it


def test_kiwi_is_deterministic(kiwi: KiwiTokenizer) -> None:
    caps = ["데일리룩 쿠션팩트 #꾸안꾸 립스틱 발색"] * 2
    a, b = kiwi.tokenize(caps)
    assert a == b == kiwi.tokenize(caps[:1])[0]


def test_kiwi_names_a_part_of_speech_it_does_not_know() -> None:
    with pytest.raises(WeaklabelError, match=r"tokenize.keep_pos: 'noun' is not a part of "
                                             r"speech the kiwi tokenizer knows; use Noun"):
        make_tokenizer("kiwi", USER_DICT, keep_pos=("noun",))


def test_the_tokenizer_and_its_version_are_in_the_settings(kiwi: KiwiTokenizer) -> None:
    from importlib import metadata

    s = kiwi.settings()
    assert s["tokenizer"] == "kiwi"
    assert s["version"] == tokenizer_version("kiwi")
    assert metadata.version("kiwipiepy") in s["version"]
    assert "kiwipiepy_model" in s["version"]  # the model decides the output too
    assert make_tokenizer("regex", USER_DICT).settings()["version"] == ""


LATIN_DICT = UserDict(("3CE", "G70", "W컨셉", "iPhone15", "제네시스G70"), frozenset({"ootd"}))
LATIN_CAPS = ["3CE 틴트 G70 시승 iPhone15 케이스 제네시스G70 W컨셉에서 G700 OOTD Ootd"]


@pytest.mark.jvm
@pytest.mark.slow
def test_okt_keeps_user_words_of_latin_letters_and_digits_whole() -> None:
    """Okt's noun dictionary takes Hangul only: without help 3CE is 'ce', G70 'g'."""
    tok = make_tokenizer("okt", LATIN_DICT)
    out = tok.tokenize(LATIN_CAPS)[0]
    for w in ("3ce", "g70", "iphone15", "제네시스g70", "w컨셉", "틴트", "케이스"):
        assert w in out, (w, out)
    assert "ce" not in out and "g" not in out[:3]
    assert "g70" not in out[out.index("w컨셉"):]  # G700 is not G70
    assert "ootd" not in out  # a stop word in any case
    # hashtags stay Okt's: whole, not cut at a user word; so do e-mail addresses
    assert "w컨셉추천" in tok.tokenize(["#W컨셉추천 하울"])[0]
    assert "3ce" not in tok.tokenize(["문의 3ce@shop.kr 로"])[0]


def test_kiwi_folds_case_and_strips_hashtag_punctuation() -> None:
    tok = make_tokenizer("kiwi", LATIN_DICT)
    out = tok.tokenize(LATIN_CAPS)[0]
    for w in ("3ce", "g70", "iphone15", "w컨셉"):
        assert w in out, (w, out)
    assert not any(c.isupper() for w in out for c in w)
    assert "ootd" not in out
    tags = tok.tokenize(["#데일리룩~ #꾸안꾸!"])[0]
    assert "데일리룩" in tags and "꾸안꾸" in tags
    assert not any(t.endswith(("~", "!")) for t in tags)


def test_the_token_rules_are_in_the_stage_cache_key() -> None:
    from weaklabel.config import Config
    from weaklabel.text.tokenizer import TOKEN_RULES
    from weaklabel.text.tokens import tokenizer_settings

    key = tokenizer_settings(Config(), USER_DICT)
    assert key["rules"] == TOKEN_RULES
    assert {k: v for k, v in key.items() if k != "normalizer"} == \
        make_tokenizer(key["tokenizer"], USER_DICT).settings()


CODES = "갤럭시 S24 256GB i7 DQ3955-100 5G폰 Y2K #k2024 kim7@mail.com"


# The protection pattern (OktTokenizer's Latin/digit user words) is a character trie;
# the rule before it, one longest-first alternation, is kept here as the reference.
def _alternation(words: tuple[str, ...]) -> re.Pattern[str] | None:
    latin = sorted((w for w in words if re.search(r"[A-Za-z0-9]", w)), key=len, reverse=True)
    if not latin:
        return None
    alt = "|".join(re.escape(w) for w in latin)
    return re.compile(rf"(#[^\s#]+|(?<!\S)[^\s@]+@\S+)|(?<![A-Za-z0-9])({alt})(?![A-Za-z0-9])",
                      re.IGNORECASE)


def _found(pattern: re.Pattern[str] | None, text: str) -> list[tuple[object, ...]]:
    assert pattern is not None
    return [(m.span(), m.group(1), m.group(2)) for m in pattern.finditer(text)]


TRICKY_WORDS = ("G7", "G70", "G700", "제네시스G70", "3CE", "3ce립", "iPhone15", "IPHONE15PRO",
                "W컨셉", "C++", "A.B", "K-9", "29CM", "MLBB립", "ſ1", "S1X", "İ3", "ı4", "ß5",
                "ẞ6X", "Σ7", "ς7x", "µ8", "데일리룩")
TRICKY_TEXTS = [
    "G70 시승 G700 G7 G701 1G70 G70. G70G70 g70 xG70 G7-0",  # prefixes, adjacent digits
    "3CE", "3ce립스틱 3CE립 3Ce 3CEx x3CE 3CE3",  # whole string, mixed case, inside runs
    "iphone15pro IPHONE15 iPhone15Pro iPhone15 프로",
    "#3CE추천 #G70 하울 3CE#G70 문의 3ce@shop.kr 로 a@G70 G70@x",  # hashtags and e-mail
    "W컨셉에서 w컨셉 제네시스g70 제네시스G700 C++ c++ C+ A.B AxB K-9 k-9s 29cm",
    "s1 S1 ſ1 s1x S1X i3 I3 İ3 ı3 ı4 I4 i4 ß5 SS5 ẞ6x ß6X σ7 Σ7 ς7X µ8 μ8 Μ8",
    "", " ", "G70", "끝은 G70", "G70 시작",
]


def test_case_classes_are_those_of_ignorecase() -> None:
    from weaklabel.text.tokenizer import _case_classes

    chars = set("aAiIıİsSſkKKßẞσςΣµμΜ3가#.+")
    rep = _case_classes(chars)
    for a in chars:
        for b in chars:
            alike = re.fullmatch(re.escape(a), b, re.IGNORECASE) is not None
            assert (rep[a] == rep[b]) == alike, (a, b)


def test_trie_finds_what_the_alternation_found_on_tricky_cases() -> None:
    from weaklabel.text.tokenizer import _protected, _trie_pattern

    assert _trie_pattern(TRICKY_WORDS) is not None  # the trie, not the fallback
    new, old = _protected(TRICKY_WORDS), _alternation(TRICKY_WORDS)
    for text in TRICKY_TEXTS:
        assert _found(new, text) == _found(old, text), text
    # the cases that decide: longest word first, not inside a run, hashtag and e-mail
    assert [m[2] for m in _found(new, TRICKY_TEXTS[0])] == \
        ["G70", "G700", "G7", "G70", "g70", "G7"]
    assert _found(new, "iPhone15Pros G70") == [((13, 16), None, "G70")]  # no word inside a run
    assert [m[1] for m in _found(new, "#3CE추천 3ce@shop.kr")] == ["#3CE추천", "3ce@shop.kr"]


def test_words_without_latin_letters_or_digits_need_no_pattern() -> None:
    from weaklabel.text.tokenizer import _protected

    assert _protected(("데일리룩", "꾸안꾸")) is None


def test_a_long_chain_of_prefixes_falls_back_to_the_alternation() -> None:
    from weaklabel.text.tokenizer import _MAX_NESTING, _protected, _trie_pattern

    words = tuple("A1" + "b" * i for i in range(_MAX_NESTING + 50))
    assert _trie_pattern(words) is None
    text = " ".join(words[::7]) + " A1bbbbX " + words[-1] + "b"
    assert _found(_protected(words), text) == _found(_alternation(words), text)


_ALPHABET = "aAbB1290Gg가나컨셉iIıİsSſkKKßẞ-.+#@"
_word = st.text(_ALPHABET, min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(base=st.lists(_word, min_size=1, max_size=12, unique=True), data=st.data())
def test_trie_finds_what_the_alternation_found(base: list[str], data: st.DataObject) -> None:
    from weaklabel.text.tokenizer import _protected

    # words that extend others, in the same or the other case: where the order matters
    longer = data.draw(st.lists(st.tuples(st.sampled_from(base), st.booleans(),
                                          st.text(_ALPHABET, max_size=3)), max_size=12))
    words = tuple(sorted(set(base) | {(w.swapcase() if flip else w) + tail
                                      for w, flip, tail in longer}))
    old = _alternation(words)
    if old is None:
        assert _protected(words) is None
        return
    pieces = st.one_of(st.sampled_from(words), st.sampled_from(words).map(str.swapcase),
                       st.text(_ALPHABET + " ", max_size=4))
    text = "".join(data.draw(st.lists(pieces, max_size=12)))
    assert _found(_protected(words), text) == _found(old, text)


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.parametrize("name", ["okt", "kiwi", "regex"])
def test_codes_of_letters_and_digits_stay_whole(name: str) -> None:
    """Okt and Kiwi split S24 into a letter and a dropped number; every tokenizer keeps
    the whole run instead, and never cuts one out of a hashtag or an e-mail address."""
    tokens = make_tokenizer(name, USER_DICT).tokenize([CODES])[0]
    for code in ("s24", "256gb", "i7", "dq3955", "5g", "y2k"):
        assert code in tokens, (code, tokens)
    assert "k2024" in tokens  # the hashtag, whole
    if name != "regex":  # the baseline splits hashtags and addresses on non-letters
        assert not {"s", "i", "g", "dq", "gb", "y", "k"} & set(tokens), tokens
        assert "kim7" not in tokens and "폰" in tokens, tokens


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.parametrize("name", ["okt", "kiwi"])
def test_codes_are_latin_words_and_follow_keep_pos(name: str) -> None:
    tokens = make_tokenizer(name, USER_DICT, keep_pos=("Noun",)).tokenize([CODES])[0]
    assert "갤럭시" in tokens and not [t for t in tokens if t.isascii()], tokens


@pytest.mark.jvm
@pytest.mark.slow
def test_okt_tokens_are_those_of_the_alternation() -> None:
    """Byte-identical tokens through real Okt, so the token cache key may stay."""
    words = LATIN_DICT.words + TRICKY_WORDS
    tok = make_tokenizer("okt", UserDict(tuple(sorted(set(words))), LATIN_DICT.stopwords))
    assert isinstance(tok, OktTokenizer)
    caps = [*LATIN_CAPS, *TRICKY_TEXTS, "#W컨셉추천 하울", "문의 3ce@shop.kr 로"]
    new = tok.tokenize(caps)
    tok._protect = _alternation(tok.userdict.words)
    assert tok.tokenize(caps) == new
    assert "g70" in new[0] and "iphone15" in new[0]


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.parametrize("name", ["okt", "kiwi"])
def test_codes_leave_particles_numbers_and_user_words_as_they_were(name: str) -> None:
    words = UserDict(("제네시스G70", "3CE"), frozenset())
    tok = make_tokenizer(name, words)
    # the particle after a code stays a particle (Kiwi read pieces: 를 became 르)
    assert tok.tokenize(["S24를 샀어요"])[0] == ["s24"]
    # a user word holding a code stays whole; a dictionary code is a noun, kept
    # without Alpha
    assert "제네시스g70" in tok.tokenize(["제네시스G70 시승"])[0]
    assert "3ce" in make_tokenizer(name, words, keep_pos=("Noun",)).tokenize(["3CE 틴트"])[0]
    # not the tail of a decimal, a thousands group or a time; a counter's number
    # belongs to the counter; digits are not shortened as repeated letters are
    got = tok.tokenize(["3.5mm 1,600cc 10:30AM sbs8시뉴스 보조배터리 10000mAh"])[0]
    assert not {"5mm", "600cc", "30am", "sbs8"} & set(got), got
    assert "10000mah" in got and "sbs" in got, got
