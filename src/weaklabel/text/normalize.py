"""Caption normalisation before tokenising: NFC, repeated jamo, URLs, hashtags."""

from __future__ import annotations

import re
import unicodedata

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"(?<!\w)@[\w.@]+")  # "@a@b" goes whole: idempotent
_JAMO_RUN = re.compile(r"([ㄱ-ㅎㅏ-ㅣ])\1{2,}")
_CHAR_RUN = re.compile(r"([^0-9])\1{3,}")  # not digits: 10000원, DQ30000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\ufeff]")
# A hashtag already followed by its body (normalised before) is not expanded again, so
# normalising twice changes nothing.
_HASHTAG = re.compile(r"#([^\s#]+)(?![^\s#])(?!\s+\1(?![^\s#]))")
_SPACE = re.compile(r"\s+")

NORMALIZER_VERSION = 4
"""Bump when the rules change: it is part of the token cache key."""


def fold(word: str) -> str:
    """The one casing rule for tokens, keywords and stop words: lower case (``G70``,
    ``g70`` and ``G70사진``/``g70사진`` are one word each; Hangul has no case).

    Example:
        >>> fold("G70사진")
        'g70사진'
    """
    return word.lower()


def normalize_caption(text: str) -> str:
    """Normalise one caption for Okt.

    NFC composes decomposed Hangul; runs of a jamo shrink to two (ㅋㅋㅋㅋ → ㅋㅋ) and any
    other character repeated 4+ times to three; URLs and @mentions go; each hashtag is
    kept and followed by its body as plain text, so Okt also finds the nouns inside it
    (``#립스틱추천`` → ``#립스틱추천 립스틱추천`` → 립스틱, 추천).

    Example:
        >>> normalize_caption("존예ㅋㅋㅋㅋㅋ #립스틱추천")
        '존예ㅋㅋ #립스틱추천 립스틱추천'
    """
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _JAMO_RUN.sub(r"\1\1", text)
    text = _CHAR_RUN.sub(r"\1\1\1", text)
    text = _HASHTAG.sub(lambda m: f" #{m.group(1)} {m.group(1)} ", text)
    return _SPACE.sub(" ", text).strip()
