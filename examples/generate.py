"""Deterministic generator of a realistic Korean fashion/beauty community dump.

Usage::

    python examples/generate.py OUT_DIR [--posts 5000] [--seed 7] [--no-images]
                                        [--image-size 160] [--workers 1]

or ``generate(Path(out), posts=..., seed=..., images=..., image_size=...,
workers=...)`` which returns a summary dict of counts.

Outputs in ``OUT_DIR`` (every file is written as ``name.tmp`` and then
``os.replace``-d into place; the same arguments give byte-identical files):

``posts.csv``
    ``post_id,caption,images,likes,comments,created_at`` (UTF-8, no BOM,
    ``\\n`` line ends, csv-module quoting).  ``post_id`` is ``p0000001``-style
    (``p`` + 7 digits), ascending.  ``caption`` is a Korean SNS caption
    (slang, emoji, hashtags, commas, quotes and newlines; ~4 % are 1-3 tokens,
    ~1.5 % are empty; ~8 % mention a second topic).  ``images`` holds 0-4
    ``|``-separated POSIX paths relative to ``OUT_DIR/images`` such as
    ``20190303/p0000001_1.jpg`` (~3 % of posts have none; the column is filled
    even with ``--no-images``).  ``likes`` / ``comments`` are heavy-tailed
    integers, both blank for ~2 % of posts (unknown).  ``created_at`` is an
    ISO date between 2019-03-01 and 2019-04-29, non-decreasing with post_id;
    the image folder is that date as ``YYYYMMDD``.
``gold.csv``
    ``post_id,label`` with labels ``eye_makeup, lips, face_makeup, hair,
    cosmetics, swatches, nails, other`` (~45 % ``other``).
``images/YYYYMMDD/<post_id>_<n>.jpg|.png``
    Small Pillow drawings (about ``--image-size`` px, 0.8-1.25x, varying aspect
    ratio) whose palette and motif depend on the post's topic; ~15 % PNG.
    Not written with ``--no-images``.
``image_faults.csv``
    ``path,fault,original`` sorted by path (only when images are written) for
    the planted faults: ``exact_duplicate`` (~3 % of posts: byte copy of
    another post's image, ``original`` = its path), ``near_duplicate`` (~2 %:
    the same drawing resized / re-encoded / brightened), ``truncated``
    (~0.5 %: JPEG cut to 40-70 %), ``not_an_image`` (~0.3 %: HTML error page or
    S3 AccessDenied XML under a ``.jpg`` name), ``empty`` (~0.1 %: zero bytes)
    and ``wrong_extension`` (~0.2 %: a valid JPEG under a ``.png`` name, not
    corrupt); ``original`` is empty for the last four.  Duplicate sources are
    clean images of another (usually earlier, 70 % same-topic) post.

Captions: each post has a topic (the 7 beauty labels, or one of 6 ``other``
sub-topics: outfit, food, travel, daily, pets, workout) and is drawn from
shared + topic templates filled with Zipf-weighted words.  A per-topic share
of posts (tuned so that ~40 % of every beauty label's posts contain a seed
keyword of ``seed_keywords.yaml``) shows the topic's obvious keywords; the rest
use related words only, which co-occur with the obvious ones elsewhere.

Vocabulary and templates live in ``examples/vocab.py``; the words Okt needs a
user dictionary for are listed in ``userdict/community.txt`` and the
hand-written seed keywords in ``examples/seed_keywords.yaml``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import math
import os
import re
import sys
import time
from bisect import bisect_right
from datetime import date, timedelta
from pathlib import Path

import numpy as np


def _load_vocab():
    """``examples/vocab.py`` both when imported as ``examples.generate`` and
    when run as a script / loaded by path (then this folder joins sys.path,
    which spawn-started worker processes inherit)."""
    if __package__:
        return importlib.import_module(".vocab", __package__)
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("vocab")


V = _load_vocab()

__all__ = ["generate", "main", "LABELS"]

LABELS = V.LABELS
TOPICS = V.TOPIC_NAMES  # 7 beauty labels followed by the 6 "other" sub-topics
START_DATE = date(2019, 3, 1)
N_DAYS = 60
CHUNK = 50_000  # posts per CSV chunk (also the caption RNG unit)
U_COLS = 40  # uniforms pre-drawn per caption
IMAGE_BATCH = 128  # images per worker task

# Independent RNG streams: every generator is PCG64(SeedSequence([seed, stream, ...])).
_S_TOPIC, _S_DATES, _S_META, _S_IMGPLAN, _S_FAULTS, _S_CAPTION, _S_DRAW, _S_FAULTDRAW = range(1, 9)

SHARE_EMPTY = 0.015
SHARE_SHORT = 0.04
SHARE_TWO_TOPICS = 0.08
SHARE_NO_SPACE = 0.06  # one space dropped (typical SNS spacing errors)
IMAGES_PER_POST_P = (0.03, 0.60, 0.20, 0.10, 0.07)  # 0..4 images
SHARE_PNG = 0.15
SHARE_UNKNOWN_COUNTS = 0.02

# fault codes (index into FAULT_NAMES) and per-post probabilities
FAULT_NAMES = (
    "",
    "exact_duplicate",
    "near_duplicate",
    "truncated",
    "not_an_image",
    "empty",
    "wrong_extension",
)
FAULT_P = (0.0, 0.03, 0.02, 0.005, 0.003, 0.001, 0.002)
F_NONE, F_EXACT, F_NEAR, F_TRUNC, F_NOTIMG, F_EMPTY, F_WRONGEXT = range(7)

JPEG_QUALITY = 85


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *map(int, key)])))


# ---------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------


def _atomic_write_bytes(path: Path | str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class _AtomicTextFile:
    """``with _AtomicTextFile(path) as fh:`` writes ``path.tmp`` then renames."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = Path(f"{path}.tmp")

    def __enter__(self):
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="")
        return self.fh

    def __exit__(self, exc_type, exc, tb):
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
        return False


def _csv_writer(fh):
    return csv.writer(fh, lineterminator="\n")


# ---------------------------------------------------------------------------
# Korean particles
# ---------------------------------------------------------------------------

_JOSA = {
    "을": ("을", "를"),
    "이": ("이", "가"),
    "은": ("은", "는"),
    "과": ("과", "와"),
    "이랑": ("이랑", "랑"),
    "이에요": ("이에요", "예요"),
    "으로": ("으로", "로"),
}
_DIGIT_JONG = {"0": 21, "1": 8, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": 8, "8": 8, "9": 0}
_LATIN_JONG = {"L": 8, "M": 16, "N": 4, "R": 8}


def _jong(word: str) -> int:
    """Final-consonant index of the last syllable as pronounced (0 = none)."""
    ch = word[-1]
    if "가" <= ch <= "힣":
        return (ord(ch) - 0xAC00) % 28
    if ch in _DIGIT_JONG:
        return _DIGIT_JONG[ch]
    return _LATIN_JONG.get(ch.upper(), 0)


_JOSA_CACHE: dict[tuple[str, str], str] = {}


def attach_josa(word: str, josa: str) -> str:
    key = (word, josa)
    out = _JOSA_CACHE.get(key)
    if out is None:
        pair = _JOSA.get(josa)
        if pair is None:
            out = word + josa
        else:
            jong = _jong(word)
            if josa == "으로":
                out = word + ("로" if jong in (0, 8) else "으로")
            else:
                out = word + (pair[0] if jong else pair[1])
        _JOSA_CACHE[key] = out
    return out


# ---------------------------------------------------------------------------
# captions
# ---------------------------------------------------------------------------


def _pool(words, s: float = 0.9):
    """(words, cdf) with Zipf weights 1/(rank+1)**s."""
    words = tuple(words)
    w = 1.0 / np.arange(1, len(words) + 1, dtype=float) ** s
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return words, cdf.tolist()


def _uniform_pool(words):
    return tuple(words), _uniform_cdf(len(words))


def _mix(main, extra, share: float):
    """One pool drawing from ``extra`` with probability ``share``."""
    words = main[0] + tuple(w for w in extra[0] if w not in main[0])
    probs = np.diff([0.0, *main[1]]) * (1.0 - share)
    extra_words = words[len(main[0]) :]
    probs = np.concatenate([probs, np.full(len(extra_words), share / max(len(extra_words), 1))])
    cdf = np.cumsum(probs) / probs.sum()
    cdf[-1] = 1.0
    return words, cdf.tolist()


def _pick(pool, x: float) -> str:
    return pool[0][bisect_right(pool[1], x)]


_SLOT = re.compile(r"\{([A-Z])(\d?)(?::([^}]+))?\}")


def _compile(template: str):
    """Template string -> list of literals and (key, kind, josa) slots."""
    parts: list = []
    last = 0
    for m in _SLOT.finditer(template):
        if m.start() > last:
            parts.append(template[last : m.start()])
        kind, num, josa = m.group(1), m.group(2) or "", m.group(3) or ""
        parts.append((kind + num, kind, josa))
        last = m.end()
    if last < len(template):
        parts.append(template[last:])
    return tuple(parts)


class _TopicPools:
    __slots__ = (
        "obvious",
        "related",
        "general",
        "brand",
        "verb",
        "conn",
        "adj",
        "emoji",
        "tags",
        "domain_tags",
        "suffixes",
        "templates",
        "p_obvious",
        "label",
    )

    def __init__(self, name: str):
        spec = V.TOPICS[name]
        beauty = spec["label"] != "other"
        self.label = spec["label"]
        self.p_obvious = float(spec["p_obvious"])
        self.obvious = _pool(spec["obvious"], 1.0)
        self.related = _pool(spec["related"], 0.8)
        if spec.get("shared"):
            self.related = _mix(self.related, _uniform_pool(spec["shared"]), V.SHARED_SHARE)
        self.general = _pool(V.BEAUTY_GENERAL if beauty else V.OTHER_GENERAL, 0.9)
        self.brand = _pool(spec["brands"], 0.9)
        self.verb = _pool(spec["verbs"], 0.8)
        self.conn = _pool(spec["connectives"], 0.8)
        self.adj = _pool(spec["adjectives"], 0.7)
        self.emoji = _pool(spec["emoji"], 0.9)
        self.tags = _pool(spec["tags"], 0.9)
        self.domain_tags = _pool(V.BEAUTY_TAGS if beauty else V.OTHER_TAGS, 0.9)
        self.suffixes = V.HASHTAG_SUFFIX_BEAUTY if beauty else V.HASHTAG_SUFFIX_OTHER
        templates = [(1.0, t) for t in V.COMMON_TEMPLATES]
        if beauty:
            templates += [(1.0, t) for t in V.BEAUTY_TEMPLATES]
        if name in V.MAKEUP_LABELS:
            templates += [(1.0, t) for t in V.MAKEUP_TEMPLATES]
        templates += [(2.0, t) for t in spec.get("templates", ())]
        weights = np.array([0.4 if t == "{H}" else w for w, t in templates])
        cdf = np.cumsum(weights) / weights.sum()
        cdf[-1] = 1.0
        self.templates = (tuple(_compile(t) for _, t in templates), cdf.tolist())


def _uniform_cdf(n: int):
    cdf = (np.arange(1, n + 1) / n).tolist()
    cdf[-1] = 1.0
    return cdf


class CaptionModel:
    """Fills templates from per-topic pools with pre-drawn uniforms."""

    KIND_NORMAL, KIND_SHORT, KIND_EMPTY, KIND_TWO = range(4)

    def __init__(self):
        self.pools = [_TopicPools(name) for name in TOPICS]
        self.p_obvious = np.array([p.p_obvious for p in self.pools])
        self.generic_adj = _pool(V.GENERIC_ADJECTIVES, 0.8)
        self.generic_emoji = _pool(V.GENERIC_EMOJI, 0.9)
        self.laugh = _pool(V.LAUGHS, 1.0)
        self.intens = _pool(V.INTENSIFIERS, 0.9)
        self.situ = _pool(V.SITUATIONS, 0.9)
        self.short = (
            tuple(_compile(t) for t in V.SHORT_TEMPLATES),
            _uniform_cdf(len(V.SHORT_TEMPLATES)),
        )
        self.sec_append = (
            tuple(_compile(t) for t in V.SECONDARY_APPEND),
            _uniform_cdf(len(V.SECONDARY_APPEND)),
        )
        self.sec_prepend = (
            tuple(_compile(t) for t in V.SECONDARY_PREPEND),
            _uniform_cdf(len(V.SECONDARY_PREPEND)),
        )

    # -- slot drawing -------------------------------------------------------
    def _emoji(self, tp, u, pos):
        n = len(u)
        x = u[pos % n]
        k = 1 if x < 0.6 else (2 if x < 0.9 else 3)
        pos += 1
        y = u[pos % n]
        pos += 1
        if y < 0.12:  # same emoji repeated: 🔥🔥🔥
            e = _pick(tp.emoji, y / 0.12)
            return e * (k + 1), pos
        out = []
        for _ in range(k):
            z = u[pos % n]
            pos += 1
            out.append(
                _pick(tp.emoji, z / 0.7) if z < 0.7 else _pick(self.generic_emoji, (z - 0.7) / 0.3)
            )
        return "".join(out), pos

    def _hashtags(self, tp, flag, u, pos):
        n = len(u)
        x = u[pos % n]
        pos += 1
        k = 1 if x < 0.25 else 2 if x < 0.55 else 3 if x < 0.8 else 4 if x < 0.92 else 5
        tags = []
        for _ in range(k):
            a = u[pos % n]
            b = u[(pos + 1) % n]
            pos += 2
            if a < 0.45:
                a /= 0.45
                if flag and a < 0.4:
                    word = _pick(tp.obvious, a / 0.4)
                else:
                    word = _pick(tp.related, (a - 0.4) / 0.6 if flag else a)
                if b < 0.25:
                    word += tp.suffixes[int(b / 0.25 * len(tp.suffixes))]
            elif a < 0.6:
                word = _pick(tp.tags, (a - 0.45) / 0.15)
            else:
                word = _pick(tp.domain_tags, (a - 0.6) / 0.4)
            tag = "#" + word
            if tag not in tags:
                tags.append(tag)
        return " ".join(tags), pos

    def _draw(self, kind, key, tp, flag, u, pos):
        n = len(u)
        x = u[pos % n]
        pos += 1
        if kind == "T":
            if flag and (key == "T" or x < 0.5):
                if key != "T":
                    x /= 0.5
                return _pick(tp.obvious, x), pos
            return _pick(tp.related, x), pos
        if kind == "R":
            return _pick(tp.related, x), pos
        if kind == "A":
            if x < 0.4:
                return _pick(tp.adj, x / 0.4), pos
            return _pick(self.generic_adj, (x - 0.4) / 0.6), pos
        if kind == "E":
            return self._emoji(tp, u, pos - 1)
        if kind == "H":
            return self._hashtags(tp, flag, u, pos - 1)
        if kind == "B":
            return _pick(tp.brand, x), pos
        if kind == "V":
            return _pick(tp.verb, x), pos
        if kind == "C":
            return _pick(tp.conn, x), pos
        if kind == "G":
            return _pick(tp.general, x), pos
        if kind == "L":
            return _pick(self.laugh, x), pos
        if kind == "S":
            return _pick(self.situ, x), pos
        if kind == "F":
            return _pick(self.intens, x), pos
        raise ValueError(f"unknown slot kind {kind!r}")

    def _fill(self, parts, tp, flag, u, pos):
        out = []
        cache = {}
        for part in parts:
            if part.__class__ is str:
                out.append(part)
                continue
            key, kind, josa = part
            word = cache.get(key)
            if word is None:
                for _attempt in range(3):  # distinct words for R / R2 / R3 ...
                    word, pos = self._draw(kind, key, tp, flag, u, pos)
                    if kind not in "TRB" or word not in cache.values():
                        break
                cache[key] = word
            out.append(attach_josa(word, josa) if josa else word)
        return "".join(out), pos

    # -- public -------------------------------------------------------------
    def chunk(self, rng: np.random.Generator, topics: np.ndarray):
        """Captions for one chunk of posts with the given topic ids.

        All randomness is drawn from ``rng`` as whole-chunk arrays first;
        the Python loop only maps uniforms to words.
        Returns (captions, kinds).
        """
        n = len(topics)
        kx = rng.random(n)
        kinds = np.full(n, self.KIND_NORMAL, dtype=np.int8)
        kinds[kx < SHARE_EMPTY + SHARE_SHORT + SHARE_TWO_TOPICS] = self.KIND_TWO
        kinds[kx < SHARE_EMPTY + SHARE_SHORT] = self.KIND_SHORT
        kinds[kx < SHARE_EMPTY] = self.KIND_EMPTY
        flags = rng.random(n) < self.p_obvious[topics]
        tmpl_x = rng.random(n)
        topic_p = _topic_probs()
        sec = rng.choice(len(TOPICS), size=n, p=topic_p)
        shift = rng.integers(1, len(TOPICS), size=n)
        sec = np.where(sec == topics, (sec + shift) % len(TOPICS), sec)
        sec_flags = rng.random(n) < self.p_obvious[sec]
        sec_x = rng.random(n)
        space_x = rng.random(n)
        fix_x = rng.random(n)
        umat = rng.random((n, U_COLS))

        pools = self.pools
        out = []
        for i in range(n):
            kind = kinds[i]
            if kind == self.KIND_EMPTY:
                out.append("")
                continue
            tp = pools[topics[i]]
            u = umat[i].tolist()
            flag = bool(flags[i])
            if kind == self.KIND_SHORT:
                parts = self.short[0][bisect_right(self.short[1], tmpl_x[i])]
                text, _ = self._fill(parts, tp, flag, u, 0)
                out.append(text.strip())
                continue
            parts = tp.templates[0][bisect_right(tp.templates[1], tmpl_x[i])]
            text, pos = self._fill(parts, tp, flag, u, 0)
            if kind == self.KIND_TWO:
                stp = pools[sec[i]]
                sx = float(sec_x[i])
                if sx < 0.25:
                    table, sx = self.sec_prepend, sx / 0.25
                    clause, _ = self._fill(
                        table[0][bisect_right(table[1], sx)], stp, bool(sec_flags[i]), u, pos
                    )
                    text = clause + text
                else:
                    table, sx = self.sec_append, (sx - 0.25) / 0.75
                    clause, _ = self._fill(
                        table[0][bisect_right(table[1], sx)], stp, bool(sec_flags[i]), u, pos
                    )
                    text = text + clause
            if flag:
                # a flagged post always shows one of its obvious words; when the
                # template had no {T} slot it goes into a trailing hashtag
                obvious = tp.obvious[0]
                if not any(w in text for w in obvious):
                    text = text.rstrip() + " #" + _pick(tp.obvious, float(fix_x[i]))
            text = text.strip()
            sp = space_x[i]
            if sp < SHARE_NO_SPACE:
                idx = text.find(" ", int(sp / SHARE_NO_SPACE * len(text)))
                if idx > 0:
                    text = text[:idx] + text[idx + 1 :]
            out.append(text)
        return out, kinds


def _topic_probs() -> np.ndarray:
    shares = []
    for name in TOPICS:
        label = V.TOPICS[name]["label"]
        if label == "other":
            shares.append(V.LABEL_SHARES["other"] * V.OTHER_SUBTOPIC_SHARES[name])
        else:
            shares.append(V.LABEL_SHARES[label])
    p = np.array(shares, dtype=float)
    return p / p.sum()


# ---------------------------------------------------------------------------
# post-level plan (vectorised over all posts)
# ---------------------------------------------------------------------------


class _Plan:
    """Per-post and per-image arrays for the whole dump (no strings)."""

    def __init__(self, posts: int, seed: int):
        self.posts = posts
        self.topic = (
            _rng(seed, _S_TOPIC).choice(len(TOPICS), size=posts, p=_topic_probs()).astype(np.int8)
        )
        topic_label = np.array([LABELS.index(V.TOPICS[t]["label"]) for t in TOPICS], dtype=np.int8)
        self.label = topic_label[self.topic]
        self.day = self._days(posts, seed)
        self._meta(posts, seed)
        self._images(posts, seed)

    @staticmethod
    def _days(posts: int, seed: int) -> np.ndarray:
        rng = _rng(seed, _S_DATES)
        d = np.arange(N_DAYS)
        weekday = (START_DATE.weekday() + d) % 7
        w = 1.0 + 0.35 * (weekday >= 5) + 0.006 * d + rng.normal(0.0, 0.08, N_DAYS)
        w = np.clip(w, 0.3, None)
        bounds = np.round(np.cumsum(w) / w.sum() * posts).astype(np.int64)
        bounds[-1] = posts
        return np.searchsorted(bounds, np.arange(posts), side="right").astype(np.int16)

    def _meta(self, posts: int, seed: int) -> None:
        rng = _rng(seed, _S_META)
        likes = np.exp(rng.normal(math.log(30.0), 1.2, posts))
        viral = rng.random(posts) < 0.008
        likes[viral] *= 4.0 + 6.0 * rng.pareto(1.5, int(viral.sum()))
        likes = np.minimum(np.floor(likes), 30_000).astype(np.int64)
        noise = np.exp(rng.normal(0.0, 0.6, posts))
        comments = rng.poisson(likes * 0.1 * noise).astype(np.int64)
        self.likes, self.comments = likes, comments
        self.unknown = rng.random(posts) < SHARE_UNKNOWN_COUNTS

    def _images(self, posts: int, seed: int) -> None:
        rng = _rng(seed, _S_IMGPLAN)
        n_img = rng.choice(len(IMAGES_PER_POST_P), size=posts, p=IMAGES_PER_POST_P).astype(np.int8)
        total = int(n_img.sum())
        offsets = np.zeros(posts, dtype=np.int64)
        np.cumsum(n_img[:-1], out=offsets[1:])
        img_post = np.repeat(np.arange(posts, dtype=np.int64), n_img)
        img_k = (np.arange(total, dtype=np.int64) - offsets[img_post] + 1).astype(np.int8)
        png = rng.random(total) < SHARE_PNG

        # faults: at most one per post, on one random image of that post
        frng = _rng(seed, _S_FAULTS)
        cat = frng.choice(len(FAULT_P), size=posts, p=_fault_probs())
        tk = np.floor(frng.random(posts) * np.maximum(n_img, 1)).astype(np.int64)
        src_x = frng.random(posts)
        same_x = frng.random(posts)
        cat[n_img == 0] = F_NONE
        fault = np.zeros(total, dtype=np.int8)
        hit = np.flatnonzero(cat != F_NONE)
        fault[offsets[hit] + tk[hit]] = cat[hit]

        # duplicate sources: a clean image of another (preferably earlier) post;
        # 70 % of the time a post of the same topic (the same user re-posting)
        source = np.full(total, -1, dtype=np.int64)
        dup = np.flatnonzero((fault == F_EXACT) | (fault == F_NEAR))
        clean = np.flatnonzero(fault == F_NONE)
        if len(dup):
            p = img_post[dup]
            x = src_x[p]
            same = same_x[p] < 0.7
            source[dup] = _pick_sources(p, x, clean, img_post[clean])
            clean_topic = self.topic[img_post[clean]]
            for t in range(len(TOPICS)):
                sel = np.flatnonzero(same & (self.topic[p] == t))
                if len(sel):
                    ct = clean[clean_topic == t]
                    picked = _pick_sources(p[sel], x[sel], ct, img_post[ct])
                    ok = picked >= 0
                    source[dup[sel[ok]]] = picked[ok]
            fault[dup[source[dup] < 0]] = F_NONE  # tiny dumps: nothing to copy from

        # extensions follow the fault
        exact = fault == F_EXACT
        png[exact] = png[source[exact]]
        png[(fault == F_NEAR) | (fault == F_TRUNC) | (fault == F_NOTIMG)] = False
        png[fault == F_WRONGEXT] = True

        self.n_img, self.offsets = n_img, offsets
        self.img_post, self.img_k, self.png = img_post, img_k, png
        self.fault, self.source = fault, source

    # -- strings -------------------------------------------------------------
    def day_strings(self):
        days = [START_DATE + timedelta(days=int(d)) for d in range(N_DAYS)]
        return [d.isoformat() for d in days], [d.strftime("%Y%m%d") for d in days]

    def image_path(self, j: int, ymd: list[str]) -> str:
        p = int(self.img_post[j])
        ext = "png" if self.png[j] else "jpg"
        return f"{ymd[self.day[p]]}/{post_id(p)}_{int(self.img_k[j])}.{ext}"


def _pick_sources(
    post: np.ndarray, x: np.ndarray, cand: np.ndarray, cand_post: np.ndarray
) -> np.ndarray:
    """For each target post, a candidate image (index into the image arrays)
    from an earlier post, else from a later one, else -1.  ``cand`` is sorted
    and ``cand_post`` holds the post of each candidate."""
    before = np.searchsorted(cand_post, post, side="left")
    after = np.searchsorted(cand_post, post, side="right")
    n_after = len(cand) - after
    pick = np.where(
        before > 0,
        np.floor(x * before).astype(np.int64),
        after + np.floor(x * n_after).astype(np.int64),
    )
    ok = (before > 0) | (n_after > 0)
    out = np.full(len(post), -1, dtype=np.int64)
    out[ok] = cand[pick[ok]]
    return out


def _fault_probs() -> np.ndarray:
    p = np.array(FAULT_P, dtype=float)
    p[F_NONE] = 1.0 - p.sum()
    return p


def post_id(i: int) -> str:
    return f"p{i + 1:07d}"


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------

_PALETTES = {
    "lips": [
        (200, 30, 60),
        (230, 80, 110),
        (160, 20, 40),
        (240, 150, 160),
        (255, 210, 215),
        (190, 90, 80),
    ],
    "eye_makeup": [
        (120, 80, 60),
        (180, 140, 110),
        (90, 60, 90),
        (210, 180, 140),
        (60, 40, 40),
        (200, 170, 60),
    ],
    "face_makeup": [
        (240, 210, 190),
        (225, 190, 165),
        (250, 230, 215),
        (210, 170, 140),
        (255, 240, 230),
        (235, 200, 185),
    ],
    "hair": [
        (60, 40, 30),
        (110, 80, 60),
        (150, 120, 100),
        (30, 30, 30),
        (180, 150, 120),
        (140, 130, 140),
    ],
    "cosmetics": [
        (250, 250, 250),
        (210, 235, 220),
        (200, 220, 240),
        (235, 225, 245),
        (180, 210, 190),
        (245, 245, 235),
    ],
    "swatches": [
        (200, 40, 70),
        (230, 120, 90),
        (250, 170, 150),
        (150, 60, 80),
        (220, 90, 120),
        (180, 110, 90),
        (240, 200, 180),
    ],
    "nails": [
        (250, 200, 215),
        (230, 150, 180),
        (255, 235, 240),
        (200, 160, 220),
        (250, 250, 255),
        (220, 60, 100),
    ],
    "outfit": [
        (40, 60, 110),
        (90, 120, 170),
        (200, 200, 195),
        (30, 30, 35),
        (180, 160, 130),
        (240, 240, 235),
    ],
    "food": [
        (150, 100, 60),
        (230, 210, 170),
        (250, 240, 220),
        (190, 60, 40),
        (110, 70, 40),
        (240, 190, 120),
    ],
    "travel": [
        (80, 160, 220),
        (30, 100, 170),
        (240, 220, 170),
        (250, 250, 255),
        (40, 150, 140),
        (250, 160, 90),
    ],
    "daily": [
        (220, 220, 210),
        (170, 190, 200),
        (240, 200, 200),
        (200, 220, 170),
        (120, 120, 130),
        (250, 240, 220),
    ],
    "pets": [
        (200, 160, 110),
        (240, 230, 210),
        (120, 90, 60),
        (60, 50, 45),
        (230, 200, 160),
        (170, 170, 170),
    ],
    "workout": [
        (40, 40, 45),
        (120, 120, 130),
        (200, 255, 60),
        (240, 240, 240),
        (230, 60, 60),
        (60, 120, 220),
    ],
}


def _color(rng, pal, jitter=18.0):
    c = np.asarray(pal[int(rng.integers(len(pal)))], dtype=float) + rng.normal(0.0, jitter, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _box(rng, w, h, min_frac=0.1, max_frac=0.5):
    bw = int(w * rng.uniform(min_frac, max_frac)) + 2
    bh = int(h * rng.uniform(min_frac, max_frac)) + 2
    x0 = int(rng.integers(-bw // 3, max(1, w - bw // 2)))
    y0 = int(rng.integers(-bh // 3, max(1, h - bh // 2)))
    return [x0, y0, x0 + bw, y0 + bh]


def _motif(name, d, rng, w, h, pal):
    cx, cy = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7)
    s = min(w, h) * rng.uniform(0.25, 0.45)
    if name == "lips":
        d.ellipse([cx - s, cy - s * 0.35, cx + s, cy + s * 0.35], fill=_color(rng, pal[:3]))
        d.line([cx - s * 0.9, cy, cx + s * 0.9, cy], fill=_color(rng, [(90, 10, 25)]), width=2)
        d.ellipse([cx - s * 0.4, cy - s * 0.3, cx - s * 0.1, cy - s * 0.15], fill=(255, 230, 235))
    elif name == "eye_makeup":
        d.ellipse(
            [cx - s, cy - s * 0.45, cx + s, cy + s * 0.45],
            fill=_color(rng, pal),
            outline=(40, 30, 30),
            width=2,
        )
        d.ellipse([cx - s * 0.55, cy - s * 0.3, cx + s * 0.55, cy + s * 0.3], fill=(250, 245, 240))
        d.ellipse(
            [cx - s * 0.25, cy - s * 0.25, cx + s * 0.25, cy + s * 0.25], fill=_color(rng, pal[:2])
        )
        for i in range(int(rng.integers(5, 10))):
            x = cx - s * 0.8 + i * s * 0.18
            d.line([x, cy - s * 0.4, x - s * 0.05, cy - s * 0.7], fill=(20, 15, 15), width=2)
    elif name == "face_makeup":
        d.ellipse([cx - s, cy - s * 1.25, cx + s, cy + s * 1.25], fill=_color(rng, pal))
        for sx in (-0.5, 0.5):
            d.ellipse(
                [cx + sx * s - s * 0.2, cy + s * 0.2, cx + sx * s + s * 0.2, cy + s * 0.45],
                fill=_color(rng, [(240, 160, 160)]),
            )
    elif name == "hair":
        col = _color(rng, pal)
        for _ in range(int(rng.integers(6, 14))):
            x0 = int(rng.integers(-w // 4, w))
            d.arc(
                [x0, -h // 4, x0 + w // 2, h + h // 4],
                200,
                340,
                fill=col,
                width=int(rng.integers(2, 6)),
            )
    elif name == "cosmetics":
        for _ in range(int(rng.integers(2, 5))):
            bw, bh = s * rng.uniform(0.3, 0.6), s * rng.uniform(0.8, 1.8)
            x0, y1 = rng.uniform(0, w - bw), h * rng.uniform(0.75, 0.98)
            d.rounded_rectangle(
                [x0, y1 - bh, x0 + bw, y1],
                radius=int(bw / 4),
                fill=_color(rng, pal),
                outline=(150, 150, 150),
            )
            d.rectangle(
                [x0 + bw * 0.25, y1 - bh - bw * 0.5, x0 + bw * 0.75, y1 - bh], fill=_color(rng, pal)
            )
    elif name == "swatches":
        n = int(rng.integers(3, 8))
        tilt = rng.uniform(-0.4, 0.4) * h
        for i in range(n):
            x = w * (0.1 + 0.8 * i / max(n - 1, 1))
            d.line(
                [x, h * 0.15, x + tilt * 0.2, h * 0.85],
                fill=_color(rng, pal, 30.0),
                width=int(rng.integers(6, 16)),
            )
    elif name == "nails":
        for i in range(5):
            x = w * (0.12 + 0.18 * i) + rng.uniform(-3, 3)
            y = cy + abs(i - 2) * s * 0.15
            d.ellipse(
                [x - s * 0.12, y - s * 0.3, x + s * 0.12, y + s * 0.3],
                fill=_color(rng, pal),
                outline=(200, 170, 160),
            )
    elif name == "outfit":
        col = _color(rng, pal)
        d.polygon(
            [
                (cx - s, cy - s * 0.6),
                (cx - s * 0.4, cy - s * 0.9),
                (cx + s * 0.4, cy - s * 0.9),
                (cx + s, cy - s * 0.6),
                (cx + s * 0.7, cy - s * 0.2),
                (cx + s * 0.5, cy - s * 0.35),
                (cx + s * 0.5, cy + s),
                (cx - s * 0.5, cy + s),
                (cx - s * 0.5, cy - s * 0.35),
                (cx - s * 0.7, cy - s * 0.2),
            ],
            fill=col,
        )
    elif name == "food":
        d.ellipse([cx - s, cy - s, cx + s, cy + s], fill=(248, 248, 245), outline=(200, 200, 200))
        r = s * rng.uniform(0.4, 0.7)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_color(rng, pal))
    elif name == "travel":
        horizon = int(h * rng.uniform(0.4, 0.7))
        d.rectangle([0, horizon, w, h], fill=_color(rng, pal[:2] + pal[4:5]))
        r = s * rng.uniform(0.2, 0.4)
        d.ellipse(
            [cx - r, horizon * 0.4 - r, cx + r, horizon * 0.4 + r],
            fill=_color(rng, [(255, 200, 90)]),
        )
    elif name == "pets":
        col = _color(rng, pal)
        d.ellipse([cx - s, cy - s * 0.5, cx + s, cy + s * 0.6], fill=col)
        hx, hy, hr = cx + s * 0.7, cy - s * 0.5, s * 0.45
        d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=col)
        d.polygon(
            [
                (hx - hr, hy - hr * 0.3),
                (hx - hr * 0.6, hy - hr * 1.5),
                (hx - hr * 0.1, hy - hr * 0.8),
            ],
            fill=col,
        )
        d.polygon(
            [
                (hx + hr, hy - hr * 0.3),
                (hx + hr * 0.6, hy - hr * 1.5),
                (hx + hr * 0.1, hy - hr * 0.8),
            ],
            fill=col,
        )
    elif name == "workout":
        col = _color(rng, pal)
        d.line([cx - s, cy, cx + s, cy], fill=(90, 90, 95), width=max(3, int(s * 0.1)))
        for sx in (-1, 1):
            d.rectangle(
                [cx + sx * s - s * 0.15, cy - s * 0.4, cx + sx * s + s * 0.15, cy + s * 0.4],
                fill=col,
            )
    else:  # daily: windows / books
        for _ in range(int(rng.integers(2, 6))):
            d.rectangle(_box(rng, w, h, 0.08, 0.3), fill=_color(rng, pal), outline=(80, 80, 80))


def draw_image(seed: int, post: int, k: int, topic: int, base_size: int):
    """The drawing of image ``k`` of post index ``post`` (a PIL RGB image)."""
    from PIL import Image, ImageDraw

    rng = _rng(seed, _S_DRAW, post, k)
    name = TOPICS[topic]
    pal = _PALETTES[name]
    scale = rng.uniform(0.8, 1.25)
    aspect = math.exp(rng.uniform(-0.3, 0.3))
    w = max(24, int(round(base_size * scale * math.sqrt(aspect))))
    h = max(24, int(round(base_size * scale / math.sqrt(aspect))))
    c1 = np.asarray(_color(rng, pal, 25.0), dtype=np.float32)
    c2 = np.asarray(_color(rng, pal, 25.0), dtype=np.float32)
    ang = rng.uniform(0.0, 2.0 * math.pi)
    yy, xx = np.ogrid[0:h, 0:w]
    t = (xx * math.cos(ang) + yy * math.sin(ang)).astype(np.float32)
    t -= t.min()
    t /= max(float(t.max()), 1.0)
    arr = c1 + (c2 - c1) * t[..., None]
    arr += np.float32(rng.uniform(2.0, 9.0)) * rng.standard_normal((h, w, 1), dtype=np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        shape = int(rng.integers(4))
        box = _box(rng, w, h)
        col = (
            _color(rng, pal)
            if rng.random() < 0.8
            else tuple(int(v) for v in rng.integers(0, 256, 3))
        )
        if shape == 0:
            d.ellipse(box, fill=col)
        elif shape == 1:
            d.rectangle(box, fill=col)
        elif shape == 2:
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(3)]
            d.polygon(pts, fill=col)
        else:
            d.line(box, fill=col, width=int(rng.integers(2, 8)))
    _motif(name, d, rng, w, h, pal)
    return img


def _encode(img, fmt: str, quality: int = JPEG_QUALITY) -> bytes:
    import io

    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def _not_an_image(rng) -> bytes:
    hexid = "".join("0123456789ABCDEF"[int(v)] for v in rng.integers(0, 16, 16))
    host = "".join(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[int(v)]
        for v in rng.integers(0, 64, 56)
    )
    variant = int(rng.integers(4))
    if variant == 0:
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>Access Denied</Message><RequestId>{hexid}</RequestId>"
            f"<HostId>{host}=</HostId></Error>"
        )
    elif variant == 1:
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            "<Message>The specified key does not exist.</Message>"
            f"<Key>upload/{hexid.lower()}.jpg</Key><RequestId>{hexid}</RequestId>"
            f"<HostId>{host}=</HostId></Error>"
        )
    elif variant == 2:
        text = (
            "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
            "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
    else:
        text = (
            '<!DOCTYPE html>\n<html lang="ko"><head><meta charset="utf-8">'
            "<title>403 Forbidden</title></head><body><h1>접근이 거부되었습니다</h1>"
            f"<p>요청 ID: {hexid.lower()}</p></body></html>\n"
        )
    return text.encode("utf-8")


def _render_task(seed: int, base_size: int, task) -> bytes:
    _path, fault, post, k, topic, src_post, src_k, src_topic = task
    if fault == F_NONE:
        img = draw_image(seed, post, k, topic, base_size)
        return _encode(img, "PNG" if _path.endswith(".png") else "JPEG")
    rng = _rng(seed, _S_FAULTDRAW, post, k)
    if fault == F_NEAR:
        from PIL import Image, ImageEnhance

        img = draw_image(seed, src_post, src_k, src_topic, base_size)
        mode = int(rng.integers(4))
        quality = JPEG_QUALITY
        if mode in (0, 3):  # resized
            f = rng.uniform(0.85, 0.95)
            img = img.resize(
                (max(8, int(img.width * f)), max(8, int(img.height * f))), Image.Resampling.BILINEAR
            )
            quality = int(rng.integers(70, 81))
        if mode == 1:  # re-encoded only
            quality = int(rng.integers(55, 71))
        if mode in (2, 3):  # slightly brightened
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(1.05, 1.15))
        return _encode(img, "JPEG", quality)
    if fault == F_TRUNC:
        data = _encode(draw_image(seed, post, k, topic, base_size), "JPEG")
        return data[: int(len(data) * rng.uniform(0.4, 0.7))]
    if fault == F_NOTIMG:
        return _not_an_image(rng)
    if fault == F_EMPTY:
        return b""
    if fault == F_WRONGEXT:
        return _encode(draw_image(seed, post, k, topic, base_size), "JPEG")
    raise ValueError(f"fault {fault} is not rendered")


def _render_batch(args) -> int:
    """Worker entry point (top-level so that it pickles under spawn)."""
    seed, root, base_size, tasks = args
    for task in tasks:
        _atomic_write_bytes(os.path.join(root, task[0]), _render_task(seed, base_size, task))
    return len(tasks)


def _write_images(plan: _Plan, out_dir: Path, seed: int, image_size: int, workers: int) -> dict:
    iso, ymd = plan.day_strings()
    root = out_dir / "images"
    for d in np.unique(plan.day[plan.img_post]).tolist():
        (root / ymd[int(d)]).mkdir(parents=True, exist_ok=True)

    tasks, copies, rows = [], [], []
    for j in range(len(plan.img_post)):
        fault = int(plan.fault[j])
        path = plan.image_path(j, ymd)
        post, k = int(plan.img_post[j]), int(plan.img_k[j])
        src = int(plan.source[j])
        src_path = plan.image_path(src, ymd) if src >= 0 else ""
        if fault == F_EXACT:
            copies.append((path, src_path))
        elif fault == F_NEAR:
            tasks.append(
                (
                    path,
                    fault,
                    post,
                    k,
                    int(plan.topic[post]),
                    int(plan.img_post[src]),
                    int(plan.img_k[src]),
                    int(plan.topic[plan.img_post[src]]),
                )
            )
        else:
            tasks.append((path, fault, post, k, int(plan.topic[post]), -1, -1, -1))
        if fault != F_NONE:
            rows.append((path, FAULT_NAMES[fault], src_path))

    batches = [
        (seed, str(root), image_size, tasks[i : i + IMAGE_BATCH])
        for i in range(0, len(tasks), IMAGE_BATCH)
    ]
    if workers > 1 and len(batches) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(batches))) as pool:
            for _ in pool.imap_unordered(_render_batch, batches):
                pass
    else:
        for batch in batches:
            _render_batch(batch)
    for path, src_path in copies:  # byte-identical copies of already written files
        _atomic_write_bytes(root / path, (root / src_path).read_bytes())

    rows.sort()
    with _AtomicTextFile(out_dir / "image_faults.csv") as fh:
        w = _csv_writer(fh)
        w.writerow(["path", "fault", "original"])
        w.writerows(rows)
    counts = {name: 0 for name in FAULT_NAMES[1:]}
    for _path, name, _src in rows:
        counts[name] += 1
    return {"images_written": len(tasks) + len(copies), "faults": counts}


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _write_posts(plan: _Plan, out_dir: Path, seed: int) -> dict:
    model = CaptionModel()
    iso, ymd = plan.day_strings()
    kinds_total = np.zeros(4, dtype=np.int64)
    with (
        _AtomicTextFile(out_dir / "posts.csv") as pfh,
        _AtomicTextFile(out_dir / "gold.csv") as gfh,
    ):
        pw, gw = _csv_writer(pfh), _csv_writer(gfh)
        pw.writerow(["post_id", "caption", "images", "likes", "comments", "created_at"])
        gw.writerow(["post_id", "label"])
        for chunk_idx, c0 in enumerate(range(0, plan.posts, CHUNK)):
            c1 = min(c0 + CHUNK, plan.posts)
            captions, kinds = model.chunk(_rng(seed, _S_CAPTION, chunk_idx), plan.topic[c0:c1])
            kinds_total += np.bincount(kinds, minlength=4)
            likes = plan.likes[c0:c1].tolist()
            comments = plan.comments[c0:c1].tolist()
            unknown = plan.unknown[c0:c1].tolist()
            days = plan.day[c0:c1].tolist()
            labels = plan.label[c0:c1].tolist()
            n_img = plan.n_img[c0:c1].tolist()
            offs = plan.offsets[c0:c1].tolist()
            png = plan.png
            prow, grow = [], []
            for i in range(c1 - c0):
                p = c0 + i
                pid = post_id(p)
                folder = ymd[days[i]]
                imgs = "|".join(
                    f"{folder}/{pid}_{k + 1}.{'png' if png[offs[i] + k] else 'jpg'}"
                    for k in range(n_img[i])
                )
                if unknown[i]:
                    lk = cm = ""
                else:
                    lk, cm = likes[i], comments[i]
                prow.append((pid, captions[i], imgs, lk, cm, iso[days[i]]))
                grow.append((pid, LABELS[labels[i]]))
            pw.writerows(prow)
            gw.writerows(grow)
    return {
        "normal_captions": int(kinds_total[CaptionModel.KIND_NORMAL]),
        "two_topic_captions": int(kinds_total[CaptionModel.KIND_TWO]),
        "short_captions": int(kinds_total[CaptionModel.KIND_SHORT]),
        "empty_captions": int(kinds_total[CaptionModel.KIND_EMPTY]),
    }


def generate(
    out_dir: Path,
    *,
    posts: int = 5000,
    seed: int = 7,
    images: bool = True,
    image_size: int = 160,
    workers: int = 1,
) -> dict:
    """Write the synthetic dump into ``out_dir`` and return a summary of counts."""
    if not 1 <= posts <= 9_999_999:
        raise ValueError("posts must be between 1 and 9,999,999")
    if image_size < 16:
        raise ValueError("image_size must be >= 16")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = _Plan(posts, seed)
    summary = {
        "posts": posts,
        "seed": seed,
        "labels": {
            label: int(c)
            for label, c in zip(LABELS, np.bincount(plan.label, minlength=len(LABELS)), strict=True)
        },
        "image_paths": int(plan.n_img.sum()),
        "posts_without_images": int((plan.n_img == 0).sum()),
        "posts_with_unknown_counts": int(plan.unknown.sum()),
    }
    summary.update(_write_posts(plan, out_dir, seed))
    if images:
        summary.update(_write_images(plan, out_dir, seed, image_size, max(1, int(workers))))
    else:
        summary["images_written"] = 0
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="output folder (created if missing)")
    ap.add_argument("--posts", type=int, default=5000, help="number of posts (default 5000)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument(
        "--no-images", dest="images", action="store_false", help="do not write image files"
    )
    ap.add_argument(
        "--image-size", type=int, default=160, help="typical image side in px (default 160)"
    )
    ap.add_argument("--workers", type=int, default=1, help="processes used to draw images")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    summary = generate(
        args.out_dir,
        posts=args.posts,
        seed=args.seed,
        images=args.images,
        image_size=args.image_size,
        workers=args.workers,
    )
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"done in {time.perf_counter() - t0:.1f}s -> {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
