"""The tokenizer's protection step with a large user dictionary of Latin/digit words.

``OktTokenizer`` cuts user words holding a Latin letter or a digit (3CE, G70, iPhone15)
out of each caption before Okt sees it, with one regex over those words
(``tokenizer._protected``). A user dictionary of brand and model names (product titles)
holds thousands of them. This times that regex's ``finditer`` over generated captions,
built as the plain longest-first alternation it was (``alternation``) and as the
character trie it is (``trie``), and checks the two find the same matches.

Dictionary: ``--words`` (5,000) generated brand and model words (``3CE``-, ``G70``-,
``iPhone15``- and ``W컨셉``-like, some a prefix of another), plus the bundled
``userdict/``. Captions: ``--captions`` (400) of about 50 characters (product titles)
and as many of about 500 (long captions): Hangul words of the bundled example's
vocabulary, Latin words, numbers, a hashtag or an e-mail address now and then, and
dictionary words in a tenth of the slots. Seeded, so every run measures the same text.

CPU time (``resource.getrusage``, this process), best of ``--repeat`` (5) passes; the
load average is printed beside it, since the machine is shared. Okt is not started.

Usage: python bench/bench_protect.py [--words 5000] [--captions 400] [--repeat 5]
Writes bench/out/protect.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import string
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_LATIN = re.compile(r"[A-Za-z0-9]")


def alternation(words: Sequence[str]) -> re.Pattern[str] | None:
    """The rule before the trie: every Latin/digit word in one alternation, longest
    first (kept here as the reference the trie is timed and checked against)."""
    latin = sorted((w for w in words if _LATIN.search(w)), key=len, reverse=True)
    if not latin:
        return None
    alt = "|".join(re.escape(w) for w in latin)
    return re.compile(rf"(#[^\s#]+|(?<!\S)[^\s@]+@\S+)|(?<![A-Za-z0-9])({alt})(?![A-Za-z0-9])",
                      re.IGNORECASE)


def brand_words(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct brand and model words of Latin letters, digits and some Hangul."""
    up, low, dig = string.ascii_uppercase, string.ascii_lowercase, string.digits
    hangul = "컨셉스킨립글로우마켓하우스몰샵뷰티랩"
    makers: list[Callable[[], str]] = [
        lambda: rng.choice(dig) + "".join(rng.choices(up, k=rng.randint(2, 3))),  # 3CE
        lambda: "".join(rng.choices(up, k=rng.randint(1, 3))) + str(rng.randint(1, 999)),
        lambda: (rng.choice(low) + rng.choice(up) + "".join(rng.choices(low, k=4))
                 + str(rng.randint(1, 20))),  # iPhone15
        lambda: rng.choice(up) + "".join(rng.choices(low, k=rng.randint(3, 8))),  # Brand
        lambda: "".join(rng.choices(up, k=rng.randint(2, 5))),  # MLBB
        lambda: (rng.choice(up) + "".join(rng.choices(hangul, k=rng.randint(1, 3)))),  # W컨셉
        lambda: "".join(rng.choices(hangul, k=2)) + rng.choice(up) + str(rng.randint(1, 99)),
    ]
    out: set[str] = set()
    while len(out) < n:
        w = rng.choice(makers)()
        out.add(w)
        if rng.random() < 0.1 and len(out) < n:
            out.add(w + rng.choice(dig + up))  # G70 and G700
    return sorted(out)


def captions(n: int, length: int, dictionary: Sequence[str],
             rng: random.Random) -> list[str]:
    """``n`` captions of about ``length`` characters."""
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    import vocab

    hangul = list(vocab.BEAUTY_GENERAL) + list(vocab.OTHER_GENERAL) + list(
        vocab.GENERIC_ADJECTIVES)
    latin = ["NEW", "Lipstick", "sale", "OOTD", "daily", "free", "best", "Pro", "Max"]
    out = []
    for _ in range(n):
        parts: list[str] = []
        size = 0
        while size < length:
            r = rng.random()
            if r < 0.10:
                w = rng.choice(dictionary)
            elif r < 0.20:
                w = rng.choice(latin)
            elif r < 0.25:
                w = str(rng.randint(1, 2024))
            elif r < 0.28:
                w = "#" + rng.choice(hangul) + rng.choice(["", rng.choice(dictionary)])
            elif r < 0.29:
                w = f"{rng.choice(dictionary).lower()}@shop.kr"
            else:
                w = rng.choice(hangul)
            parts.append(w)
            size += len(w) + 1
        out.append(" ".join(parts)[:length])
    return out


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_scan(pattern: re.Pattern[str], caps: Sequence[str], repeat: int) -> float:
    """Best CPU ms per caption of finding every match, as ``OktTokenizer.words`` does."""
    best = float("inf")
    for _ in range(repeat):
        t0 = cpu()
        for c in caps:
            for _m in pattern.finditer(c):
                pass
        best = min(best, cpu() - t0)
    return best / len(caps) * 1000


def matches(pattern: re.Pattern[str], caps: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    return [[(m.span(), m.group(1), m.group(2)) for m in pattern.finditer(c)] for c in caps]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=5000)
    ap.add_argument("--captions", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)

    from weaklabel.text.tokenizer import _protected
    from weaklabel.text.userdict import load_userdict

    rng = random.Random(12)
    bundled = load_userdict(ROOT / "userdict").words
    words = sorted(set(brand_words(args.words, rng)) | set(bundled))
    latin = [w for w in words if _LATIN.search(w)]
    corpora = {"title 50": captions(args.captions, 50, latin, rng),
               "caption 500": captions(args.captions, 500, latin, rng)}
    res: dict[str, Any] = {"words": len(words), "latin_words": len(latin),
                           "captions": args.captions, "repeat": args.repeat}
    builders = {"alternation": alternation, "trie": _protected}
    pats = {}
    for name, build in builders.items():
        t0 = cpu()
        pat = build(words)
        res[f"{name}_compile_cpu_s"] = round(cpu() - t0, 3)
        assert pat is not None
        pats[name] = pat
        res[f"{name}_pattern_chars"] = len(pat.pattern)
    for cname, caps in corpora.items():
        same = matches(pats["alternation"], caps) == matches(pats["trie"], caps)
        if not same:
            print(f"{cname}: the trie's matches differ from the alternation's", file=sys.stderr)
            return 1
        row = {name: round(time_scan(p, caps, args.repeat), 4) for name, p in pats.items()}
        row["speed-up"] = round(row["alternation"] / row["trie"], 1)
        row["matches"] = sum(len(m) for m in matches(pats["trie"], caps))
        res[cname] = row
    res["load_average"] = [round(x, 2) for x in os.getloadavg()]

    print(f"{res['latin_words']} Latin/digit user words of {res['words']}; pattern built in "
          f"{res['alternation_compile_cpu_s']} CPU s (alternation), "
          f"{res['trie_compile_cpu_s']} (trie)")
    print(f"{'CPU ms per caption':<22}{'alternation':>12}{'trie':>9}{'speed-up':>10}")
    for cname in corpora:
        r = res[cname]
        print(f"{cname:<22}{r['alternation']:>12.3f}{r['trie']:>9.3f}{r['speed-up']:>9.1f}×")
    print("matches identical; load average " + ", ".join(map(str, res["load_average"])))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "protect.json"
    path.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
