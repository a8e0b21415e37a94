"""A correction teaches more than a confirmation: its own weight
(``propagate.reviewed_weight`` against ``reviewed_confirm_weight``) and its reach to its
look-alikes (``propagate.correction_spread``: ``vote`` cuts their vote for the rejected
label, ``seed`` learns them as weak seeds of the reviewer's label).

Real text: the bundled chatbot questions (``tests/data/chatbot_sample.csv``), tokenised by
the regex baseline, real Word2Vec vectors (gensim), the real sources and propagate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import Config, EmbedConfig, PropagateConfig, load_config, with_overrides
from weaklabel.errors import WeaklabelError
from weaklabel.labels.propagate import Propagation, correction_lookalikes, propagate_labels
from weaklabel.text.embed import train_word2vec
from weaklabel.text.tokenizer import make_tokenizer
from weaklabel.text.userdict import UserDict

CHATBOT = Path(__file__).resolve().parents[1] / "data/chatbot_sample.csv"
KEYWORDS = {"사랑(긍정)": ["좋아해", "사랑"], "이별(부정)": ["헤어졌어", "이별"],
            "일상다반사": ["오늘", "배고파"]}
WORDS = {w: {lab: 1.0} for lab, ws in KEYWORDS.items() for w in ws}
BASE = PropagateConfig()
LOOK = "looks like corrected"


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    toks = make_tokenizer("regex", UserDict((), frozenset())).tokenize(rows["text"].tolist())
    kv = train_word2vec(toks, cfg=EmbedConfig(vector_size=32, min_count=2, epochs=5, seed=1))
    ids = rows["id"].tolist()
    first = propagate_labels(ids, toks, kv, WORDS, cfg=BASE, keywords=KEYWORDS)
    lab = first.labels
    gold = dict(zip(ids, rows["label"], strict=True))
    shown = dict(zip(lab["post_id"], lab["label"], strict=True))
    # 60 propagated labels gold says are wrong (the corrections) and 60 right ones
    wrong = [p for p, s, src in zip(lab["post_id"], lab["label"], lab["source"], strict=True)
             if src == "knn" and s != gold[p]][:60]
    right = [p for p, s, src in zip(lab["post_id"], lab["label"], lab["source"], strict=True)
             if src == "knn" and s == gold[p]][:60]
    assert len(wrong) == len(right) == 60
    return {"ids": ids, "toks": toks, "kv": kv, "gold": gold, "shown": shown,
            "first": first, "wrong": wrong, "right": right}


def run(corpus: dict[str, Any], reviewed: dict[str, str], corrected: dict[str, str],
        **over: Any) -> Propagation:
    """Propagate with these reviews; every reviewed post keeps its reviewed label."""
    cfg = with_overrides(Config(propagate=BASE), {f"propagate.{k}": v for k, v in over.items()})
    prop = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], WORDS,
                            cfg=cfg.propagate, keywords=KEYWORDS, reviewed=reviewed,
                            corrected=corrected)
    got = dict(zip(prop.labels["post_id"], zip(prop.labels["label"], prop.labels["source"],
                                               strict=True), strict=True))
    assert all(got[p] == (lab, "reviewed") for p, lab in reviewed.items())  # never overridden
    return prop


def corrections(corpus: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return ({p: corpus["gold"][p] for p in corpus["wrong"]},
            {p: corpus["shown"][p] for p in corpus["wrong"]})


def touched(prop: Propagation) -> list[int]:
    return [i for i, e in enumerate(prop.labels["evidence"]) if LOOK in e]


def corrector(evidence: str) -> str:
    """The corrected post a look-alike's evidence names."""
    return evidence.split(f"{LOOK} ")[1].split(" ")[0]


def test_lookalikes_are_the_near_candidates_that_top_at_the_rejected_label() -> None:
    v = np.array([[1.0, 0.0], [0.99, 0.141], [0.98, 0.199], [0.6, 0.8], [0.0, 1.0]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cand = np.array([False, True, True, True, True])
    top = np.array([1, 1, 1, 1, 1])
    # k = 2 nearest of row 0: rows 1 and 2; row 3 is third, row 4 under the floor
    assert sorted(correction_lookalikes(v, [(0, 1)], cand, top, k=2, similarity=0.5)) == [1, 2]
    assert sorted(correction_lookalikes(v, [(0, 1)], cand, top, k=9, similarity=0.5)) == [1, 2, 3]
    # a post that does not top at the rejected label is no look-alike of that correction
    top2 = np.array([1, 0, 1, 1, 1])
    assert sorted(correction_lookalikes(v, [(0, 1)], cand, top2, k=2, similarity=0.5)) == [2]
    # two corrections reach one post: the nearer one claims it
    hits = correction_lookalikes(v, [(0, 1), (4, 1)], cand, top, k=4, similarity=0.5)
    assert hits[3][0] == 1 and hits[1][0] == 0
    assert correction_lookalikes(v, [(0, 1)], cand, top, k=0, similarity=0.5) == {}


def test_a_correction_cuts_its_lookalikes_vote_and_nothing_else(corpus) -> None:  # type: ignore[no-untyped-def]
    reviewed, shown = corrections(corpus)
    off = run(corpus, reviewed, shown)
    on = run(corpus, reviewed, shown, correction_spread="vote")
    rows = touched(on)
    assert len(rows) >= 5 and not touched(off)
    assert off.posterior is not None and on.posterior is not None
    cls = {c: j for j, c in enumerate(on.classes)}
    src = on.labels["source"].tolist()
    assert all(src[i] not in ("seed", "reviewed") for i in rows)  # unreviewed, unseeded only
    # each look-alike topped at a corrected post's shown label: its share is cut by half
    lost = [off.posterior[i].max() - on.posterior[i, off.posterior[i].argmax()] for i in rows]
    assert all(x > 0.05 for x in lost)
    ev = on.labels["evidence"].tolist()
    for i in rows:
        pid = corrector(ev[i])
        assert pid in shown and cls[shown[pid]] == off.posterior[i].argmax()
    # every other post's combined vote is the same as without the spread
    rest = np.setdiff1d(np.arange(len(src)), rows)
    np.testing.assert_array_equal(on.posterior[rest], off.posterior[rest])


def test_a_correction_teaches_its_lookalikes_as_weak_seeds(corpus) -> None:  # type: ignore[no-untyped-def]
    reviewed, shown = corrections(corpus)
    off = run(corpus, reviewed, shown)
    on = run(corpus, reviewed, shown, correction_spread="seed")
    rows = touched(on)
    assert len(rows) >= 5
    assert off.posterior is not None and on.posterior is not None
    cls = {c: j for j, c in enumerate(on.classes)}
    ev = on.labels["evidence"].tolist()
    target = [cls[reviewed[corrector(ev[i])]] for i in rows]
    before = np.array([off.posterior[i, j] for i, j in zip(rows, target, strict=True)])
    after = np.array([on.posterior[i, j] for i, j in zip(rows, target, strict=True)])
    # the reviewer's label gains on the look-alikes, and they are still propagated labels
    assert (after > before).mean() > 0.9
    assert all(on.labels["source"].iloc[i] in ("knn", "none") for i in rows)


def test_a_confirmation_reaches_no_lookalike(corpus) -> None:  # type: ignore[no-untyped-def]
    confirmed = {p: corpus["shown"][p] for p in corpus["right"]}
    for mode in ("vote", "seed"):
        on = run(corpus, confirmed, {}, correction_spread=mode)
        assert not touched(on)
        assert on.labels.equals(run(corpus, confirmed, {}).labels)


def test_no_reviews_leave_the_labels_as_they_were(corpus) -> None:  # type: ignore[no-untyped-def]
    for over in ({"correction_spread": "vote"}, {"correction_spread": "seed"},
                 {"reviewed_confirm_weight": 3.0, "reviewed_weight": 15.0}):
        assert run(corpus, {}, {}, **over).labels.equals(corpus["first"].labels)


def test_the_confirmation_weight_moves_only_what_confirmations_teach(corpus) -> None:  # type: ignore[no-untyped-def]
    reviewed, shown = corrections(corpus)
    # corrections only: the confirmation weight changes nothing
    assert run(corpus, reviewed, shown, reviewed_confirm_weight=3.0).labels.equals(
        run(corpus, reviewed, shown).labels)
    # confirmations: a heavier one pulls more neighbours' KNN votes to its label
    confirmed = {p: corpus["shown"][p] for p in corpus["right"]}
    one = run(corpus, confirmed, {}).labels
    three = run(corpus, confirmed, {}, reviewed_confirm_weight=3.0).labels
    assert not one.equals(three)


def test_the_new_settings_are_checked(tmp_path: Path) -> None:
    d = PropagateConfig()
    assert (d.correction_spread, d.reviewed_confirm_weight) == ("none", 1.0)
    for text, bit in (("correction_spread: votes", "correction_spread"),
                      ("correction_spread_weight: 2", "correction_spread_weight"),
                      ("reviewed_confirm_weight: 0", "reviewed_confirm_weight")):
        p = tmp_path / "c.yaml"
        p.write_text(f"propagate:\n  {text}\n", encoding="utf-8")
        with pytest.raises(WeaklabelError, match=f"c.yaml:2: propagate.{bit}"):
            load_config(p)
