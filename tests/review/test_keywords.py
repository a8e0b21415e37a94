"""A correction indicts its keyword (``propagate.reviewed_keywords``), and the queue audits
keywords early (``build_queue(audit=True)``).

Real text: the bundled chatbot questions (``tests/data/chatbot_sample.csv``), tokenised by
the regex baseline, real Word2Vec vectors (gensim), the real propagate.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from weaklabel.config import EmbedConfig, PropagateConfig, load_config
from weaklabel.errors import WeaklabelError
from weaklabel.labels.propagate import propagate_labels
from weaklabel.review.reviewed import audit_keywords
from weaklabel.review.triage import build_queue, seed_words
from weaklabel.text.embed import train_word2vec
from weaklabel.text.tokenizer import make_tokenizer
from weaklabel.text.userdict import UserDict

CHATBOT = Path(__file__).resolve().parents[1] / "data/chatbot_sample.csv"
# 친구 (friends) seeds daily-life questions, but many friend questions are about love
KEYWORDS = {"사랑(긍정)": ["좋아하는", "썸", "연애"], "이별(부정)": ["이별", "헤어진지"],
            "일상다반사": ["오늘", "먹고", "친구"]}
WORDS = {w: {lab: 1.0} for lab, ws in KEYWORDS.items() for w in ws}


@pytest.fixture(scope="module")
def corpus() -> dict:  # type: ignore[type-arg]
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    toks = make_tokenizer("regex", UserDict((), frozenset())).tokenize(rows["text"].tolist())
    kv = train_word2vec(toks, cfg=EmbedConfig(vector_size=32, min_count=2, epochs=5, seed=1))
    return {"ids": rows["id"].tolist(), "gold": dict(zip(rows["id"], rows["label"],
                                                         strict=True)),
            "toks": toks, "kv": kv}


def run(corpus: dict, reviewed: dict[str, str], bar: float) -> pd.DataFrame:  # type: ignore[type-arg]
    cfg = PropagateConfig(sources=("keyword", "knn", "prototype"), combine="blend",
                          reviewed_keywords=bar)
    out = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], WORDS, cfg=cfg,
                           keywords=KEYWORDS, reviewed=reviewed,
                           corrected=set(reviewed)).labels
    got = dict(zip(out["post_id"], out["label"], strict=True))
    assert all(got[p] == lab for p, lab in reviewed.items())  # reviews override all
    return out


def test_corrections_indict_a_word_and_confirmations_clear_it() -> None:
    toks = [["술", "오늘"], ["술"], ["술"], ["술"], ["오늘"]]
    seeds = ["daily"] * 5
    words = {"술": {"daily": 1.0}, "오늘": {"daily": 1.0}}
    ids = ["a", "b", "c", "d", "e"]
    # one correction: the prior (2:1) holds, nothing stops seeding
    kept, ev = audit_keywords(ids, toks, seeds, words, {"a": "love"}, bar=0.5)
    assert kept == words and ev == {("술", "daily"): (0, 1), ("오늘", "daily"): (0, 1)}
    # two: both words of post a share the blame, 술 takes the second one alone
    kept, ev = audit_keywords(ids, toks, seeds, words, {"a": "love", "b": "love"}, bar=0.5)
    assert kept == {"오늘": {"daily": 1.0}} and ev[("술", "daily")] == (0, 2)
    # a confirmation outweighs a correction
    kept, _ = audit_keywords(ids, toks, seeds, words, {"a": "love", "b": "love", "c": "daily"},
                             bar=0.5)
    assert kept == words
    # "none of the labels" is the background label when the map has one: a confirmation
    kept, ev = audit_keywords(ids, toks, seeds, words, {"b": "", "c": ""}, bar=0.5,
                              background="daily")
    assert kept == words and ev[("술", "daily")] == (2, 0)
    # a word that seeds two labels loses only the one its seeds were corrected for
    both = {"술": {"daily": 1.0, "love": 0.5}}
    kept, _ = audit_keywords(ids[:3], toks[:3], ["daily", "daily", "love"], both,
                             {"a": "love", "b": "love"}, bar=0.5)
    assert kept == {"술": {"love": 0.5}}


def test_a_corrected_keyword_stops_seeding_and_its_posts_change(corpus) -> None:  # type: ignore[no-untyped-def]
    base = run(corpus, {}, 0.0)
    assert run(corpus, {}, 0.5).equals(base)  # no review: on and off are the same labels
    seeded = base[(base["source"] == "seed") & (base["label"] == "일상다반사")
                  & (base["evidence"] == "일상다반사: 친구")]
    wrong = [p for p in seeded["post_id"] if corpus["gold"][p] != "일상다반사"]
    assert len(seeded) >= 10 and len(wrong) >= 3, (len(seeded), len(wrong))
    reviewed = {p: corpus["gold"][p] for p in wrong[:3]}
    off, on = run(corpus, reviewed, 0.0), run(corpus, reviewed, 0.5)
    rest = seeded[~seeded["post_id"].isin(list(reviewed))]["post_id"]
    src_off = dict(zip(off["post_id"], off["source"], strict=True))
    src_on = dict(zip(on["post_id"], on["source"], strict=True))
    # off: 친구's other seeds stay seeds; on: none is a seed any more
    assert all(src_off[p] == "seed" for p in rest)
    assert not any(src_on[p] == "seed" for p in rest)
    # the other sources now label them, and some of them move off 일상다반사
    lab_on = dict(zip(on["post_id"], on["label"], strict=True))
    assert sum(lab_on[p] != "일상다반사" for p in rest) >= 3
    # seeds of the other keywords are untouched
    others = base[(base["source"] == "seed") & ~base["evidence"].str.contains("친구")]
    assert all(src_on[p] == "seed" for p in others["post_id"])


def test_confirmed_keyword_seeds_keep_seeding(corpus) -> None:  # type: ignore[no-untyped-def]
    base = run(corpus, {}, 0.0)
    seeded = base[(base["source"] == "seed") & (base["evidence"] == "이별(부정): 이별")]
    right = [p for p in seeded["post_id"] if corpus["gold"][p] == "이별(부정)"][:3]
    wrong = {p: "사랑(긍정)" for p in right[:2]}  # a careless reviewer: 2 corrections …
    on = run(corpus, {**wrong, right[2]: "이별(부정)"}, 0.5)  # … and one confirmation
    src = dict(zip(on["post_id"], on["source"], strict=True))
    assert all(src[p] == "seed" for p in seeded["post_id"] if p not in right)


def test_reviewed_keywords_is_off_by_default_and_checked(tmp_path: Path) -> None:
    assert load_config(None).propagate.reviewed_keywords == 0.0
    c = tmp_path / "c.yaml"
    # 2 is no share; above 0.5 one correction alone would indict a word (posterior 2/4)
    for value, error in (("2", True), ("0.6", True), ("0.5", False)):
        c.write_text(f"propagate:\n  reviewed_keywords: {value}\n", encoding="utf-8")
        if error:
            with pytest.raises(WeaklabelError,
                               match=r"c.yaml:2: propagate.reviewed_keywords must be"):
                load_config(c)
        else:
            assert load_config(c).propagate.reviewed_keywords == 0.5


def test_the_audit_puts_one_seed_per_disputed_keyword_at_the_top(corpus) -> None:  # type: ignore[no-untyped-def]
    labels = run(corpus, {}, 0.0)
    plain = build_queue(labels, random_rate=0.0)
    audit = build_queue(labels, random_rate=0.0, audit=True)
    assert sorted(audit["post_id"]) == sorted(plain["post_id"])  # the same items, reordered
    reps = audit[audit["why"].str.startswith("audits keyword")]
    pairs = [tuple(w.split(" of ")) for w in
             reps["why"].str.extract(r"^audits keyword (\S+ of \S+)")[0]]
    assert len(pairs) == len(set(pairs)) >= 5  # one item per (word, label)
    # every audited item is a seed of the word and label it audits, with a dispute
    seeds = labels.set_index("post_id")
    for (w, lab), pid in zip(pairs, reps["post_id"], strict=True):
        assert seeds.loc[pid, "source"] == "seed" and seeds.loc[pid, "label"] == lab
        assert w in seed_words(seeds.loc[pid, "evidence"], lab)
    # interleaved at the top: every other item of the first 2 × audits
    assert audit["why"].head(2 * len(reps)).iloc[::2].str.startswith("audits keyword").all()
    # keywords holding the most disputed seeds come first
    counts = reps["why"].str.extract(r"\((\d+) seeds, (\d+) disputed\)").astype(int)
    assert counts[1].is_monotonic_decreasing
    # 친구's seeds are disputed: it is audited
    assert ("친구", "일상다반사") in pairs


def test_cosine_diversity_spreads_each_labels_first_reviews(corpus) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from weaklabel.labels.propagate import post_vectors

    labels = run(corpus, {}, 0.0)
    x, has = post_vectors(corpus["toks"], corpus["kv"])
    vectors = {p: x[i] for i, p in enumerate(corpus["ids"]) if has[i]}
    plain = build_queue(labels, random_rate=0.0)
    diverse = build_queue(labels, random_rate=0.0, vectors=vectors)
    assert sorted(diverse["post_id"]) == sorted(plain["post_id"])
    assert diverse.equals(build_queue(labels, random_rate=0.0, vectors=vectors))  # stable
    # labels still take turns
    assert diverse["label"].head(30).tolist() == plain["label"].head(30).tolist()

    def nearest(q: pd.DataFrame, lab: str, k: int = 40) -> float:
        """Mean cosine of each of a label's first k items to its nearest other one."""
        ids = [p for p in q.loc[q["label"] == lab, "post_id"] if p in vectors][:k]
        m = np.stack([vectors[p] for p in ids])
        sim = m @ m.T
        np.fill_diagonal(sim, -1.0)
        return float(sim.max(axis=1).mean())

    for lab in sorted(set(labels["label"]) - {""}):
        assert nearest(diverse, lab) < nearest(plain, lab) - 0.02, lab
    # the most suspicious item of each label still comes first
    for lab in sorted(set(labels["label"]) - {""}):
        assert diverse.loc[diverse["label"] == lab, "post_id"].iloc[0] == \
            plain.loc[plain["label"] == lab, "post_id"].iloc[0]


def test_cosine_diversity_orders_only_a_labels_first_items() -> None:
    import numpy as np

    from weaklabel.review.triage import _cosine_diverse

    rng = np.random.default_rng(4)
    v = rng.normal(size=(300, 8))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rows = [{"post_id": f"p{i}", "_s": -1.0 + i / 1000, "_t": 0.0, "_k": f"{i:04d}",
             "why": "check"} for i in range(300)]
    vectors = {f"p{i}": v[i] for i in range(300)}
    full = _cosine_diverse(rows, vectors, first=300)
    capped = _cosine_diverse(rows, vectors, first=50)
    assert [r["post_id"] for r in capped[:50]] == [r["post_id"] for r in full[:50]]
    assert sorted(r["post_id"] for r in capped) == sorted(r["post_id"] for r in rows)
    rest = [int(r["post_id"][1:]) for r in capped[50:]]
    assert rest == sorted(rest)  # after the cap: priority order
    assert [r["post_id"] for r in full] != [r["post_id"] for r in rows]  # it does reorder


def test_coverage_sends_the_first_reviews_away_from_the_seeds(corpus) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from weaklabel.labels.propagate import post_vectors

    labels = run(corpus, {}, 0.0)
    x, has = post_vectors(corpus["toks"], corpus["kv"])
    vectors = {p: x[i] for i, p in enumerate(corpus["ids"]) if has[i]}
    seeds = np.stack([vectors[p] for p, s in zip(labels["post_id"], labels["source"],
                                                 strict=True) if s == "seed" and p in vectors])
    diverse = build_queue(labels, random_rate=0.0, vectors=vectors)
    covering = build_queue(labels, random_rate=0.0, vectors=vectors, coverage=True)
    assert sorted(covering["post_id"]) == sorted(diverse["post_id"])
    assert build_queue(labels, random_rate=0.0, coverage=True).equals(
        build_queue(labels, random_rate=0.0))  # without vectors: nothing to cover by

    def to_seeds(q: pd.DataFrame) -> float:
        """Mean cosine of the first 60 non-seed items to their nearest keyword seed."""
        src = dict(zip(labels["post_id"], labels["source"], strict=True))
        ids = [p for p in q["post_id"] if p in vectors and src[p] != "seed"][:60]
        return float((np.stack([vectors[p] for p in ids]) @ seeds.T).max(axis=1).mean())

    assert to_seeds(covering) < to_seeds(diverse) - 0.02
