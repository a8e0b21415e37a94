"""Reviewed corrections weigh more than keyword seeds when propagate learns
(``propagate.reviewed_weight``); a confirmed label weighs like a seed.

Real text: the bundled chatbot questions (``tests/data/chatbot_sample.csv``), tokenised by
the regex baseline, real Word2Vec vectors (gensim), the real KNN and propagate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import Config, EmbedConfig, PropagateConfig, load_config, with_overrides
from weaklabel.errors import WeaklabelError
from weaklabel.labels.knn import CosineKNN
from weaklabel.labels.propagate import post_vectors, propagate_labels
from weaklabel.text.embed import train_word2vec
from weaklabel.text.tokenizer import make_tokenizer
from weaklabel.text.userdict import UserDict

CHATBOT = Path(__file__).resolve().parents[1] / "data/chatbot_sample.csv"
KEYWORDS = {"사랑(긍정)": ["좋아해", "사랑"], "이별(부정)": ["헤어졌어", "이별"],
            "일상다반사": ["오늘", "배고파"]}


@pytest.fixture(scope="module")
def corpus() -> dict:  # type: ignore[type-arg]
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    toks = make_tokenizer("regex", UserDict((), frozenset())).tokenize(rows["text"].tolist())
    kv = train_word2vec(toks, cfg=EmbedConfig(vector_size=32, min_count=2, epochs=5, seed=1))
    return {"ids": rows["id"].tolist(), "gold": rows["label"].tolist(), "toks": toks, "kv": kv}


def _reviewed_run(corpus: dict, words: dict, base: PropagateConfig,  # type: ignore[type-arg]
                  reviewed: dict[str, str], corrected: Any,
                  overrides: dict[str, float]) -> pd.DataFrame:
    """Propagate with ``reviewed`` under ``base`` plus ``overrides``; every reviewed post
    must keep its reviewed label (reviews override all)."""
    cfg = with_overrides(Config(propagate=base), overrides)
    out = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], words,
                           cfg=cfg.propagate, keywords=KEYWORDS, reviewed=reviewed,
                           corrected=corrected).labels
    got = dict(zip(out["post_id"], out["label"], strict=True))
    assert all(got[p] == lab for p, lab in reviewed.items())
    return out


def test_a_weighted_neighbour_counts_its_weight_in_the_vote(corpus) -> None:  # type: ignore[no-untyped-def]
    x, has = post_vectors(corpus["toks"], corpus["kv"])
    rows = np.random.default_rng(3).permutation(np.nonzero(has)[0])  # the file is by label
    x, y, q = x[rows[:1000]], np.asarray(corpus["gold"])[rows[:1000]], x[rows[1000:1300]]
    assert len(set(y.tolist())) == 3
    w = np.ones(len(x))
    w[::7] = 5.0
    plain = CosineKNN(15, balance=False).fit(x, y.tolist())
    weighted = CosineKNN(15, balance=False).fit(x, y.tolist(), weight=w)
    idx, sim = plain.neighbours(q)
    votes = 1.0 / (1.0 - sim.astype(np.float64) + 1e-3) * w[idx]
    ref = np.stack([(votes * (y[idx] == c)).sum(axis=1) for c in plain.classes_], axis=1)
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weighted.predict_proba(q), ref, rtol=1e-9)
    # weight 1 everywhere is the unweighted vote, bit for bit
    ones = CosineKNN(15, balance=False).fit(x, y.tolist(), weight=np.ones(len(x)))
    assert np.array_equal(ones.predict_proba(q), plain.predict_proba(q))
    assert not np.allclose(weighted.predict_proba(q), plain.predict_proba(q))


def test_heavier_reviews_pull_their_neighbours_towards_the_reviewed_label(corpus) -> None:  # type: ignore[no-untyped-def]
    words = {w: {lab: 1.0} for lab, ws in KEYWORDS.items() for w in ws}
    base = PropagateConfig(sources=("keyword", "knn"), combine="blend", holdout=0.2)
    first = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], words, cfg=base,
                             keywords=KEYWORDS).labels
    gold = dict(zip(corpus["ids"], corpus["gold"], strict=True))
    # a reviewer corrects 80 propagated labels that gold says are wrong
    wrong = [p for p, lab, src in zip(first["post_id"], first["label"], first["source"],
                                      strict=True) if src == "knn" and lab != gold[p]][:80]
    assert len(wrong) == 80
    reviewed = {p: gold[p] for p in wrong}
    x, has = post_vectors(corpus["toks"], corpus["kv"])
    pos = {p: i for i, p in enumerate(corpus["ids"])}
    rev_rows = [pos[p] for p in wrong if has[pos[p]]]
    # each reviewed post's five nearest other posts, and the label it was given
    near = CosineKNN(6).fit(x[has], np.asarray(corpus["ids"])[has].tolist())
    nbr_ids = np.asarray(corpus["ids"])[has]
    idx, _ = near.neighbours(x[rev_rows])
    pairs = {(str(nbr_ids[j]), reviewed[corpus["ids"][r]]) for r, row in zip(rev_rows, idx,
                                                                              strict=True)
             for j in row[1:] if str(nbr_ids[j]) not in reviewed}

    def run(weight: float, corrected: set[str]) -> pd.DataFrame:
        return _reviewed_run(corpus, words, base, reviewed, corrected,
                             {"propagate.reviewed_weight": weight})

    def agree(out: pd.DataFrame) -> int:
        knn = dict(zip(out["post_id"], out["label_knn"], strict=True))
        return sum(knn[p] == lab for p, lab in pairs)

    one, five = run(1.0, set(reviewed)), run(5.0, set(reviewed))
    # a heavier neighbour only adds to its label's vote share: more neighbours follow it
    assert agree(five) > agree(one)
    # confirmations (not corrected) weigh 1 whatever the setting: the same labels as 1.0
    assert run(5.0, set()).equals(one)


def test_reviewed_labels_record_what_was_shown_and_which_are_corrections(
        tmp_path: Path) -> None:
    from weaklabel.review.reviewed import corrected_posts, read_reviewed_labels, write_reviewed
    from weaklabel.review.store import Decision, DecisionStore

    with DecisionStore.open(tmp_path) as s:
        s.record(Decision("d1", "ana", "p1", "", "lips", "accept", "lips"))
        s.record(Decision("d2", "ana", "p2", "", "lips", "relabel", "nails"))
        s.record(Decision("d3", "ana", "p3", "", "", "relabel", "nails"))  # was abstained
        s.record(Decision("d4", "ben", "p1", "", "lips", "relabel", "nails"))
    write_reviewed(tmp_path)
    df = read_reviewed_labels(tmp_path)
    assert df is not None
    assert df.to_dict(orient="records") == [
        {"post_id": "p1", "label": "nails", "shown": "lips"},  # a tie: the latest vote
        {"post_id": "p2", "label": "nails", "shown": "lips"},
        {"post_id": "p3", "label": "nails", "shown": ""}]
    assert corrected_posts(tmp_path) == {"p1", "p2", "p3"}
    df.assign(shown=df["label"]).drop(columns="shown").to_parquet(
        tmp_path / "reviewed_labels.parquet")  # a file from before `shown`: no corrections
    assert corrected_posts(tmp_path) == set()


def test_reviewed_weight_below_one_is_refused_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("propagate:\n  reviewed_weight: 0.5\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"c.yaml:2: propagate.reviewed_weight must be"):
        load_config(bad)
    assert load_config(None).propagate.reviewed_weight >= 1.0


# Keywords frequent enough in the 4,000 questions that half the seeds held out choose
# (at least 20 a label, 100 in all): the held-out choice runs, not its default.
CHOOSE_KEYWORDS = {"사랑(긍정)": ["좋아하는", "썸", "좋아", "연애", "선물"],
                   "이별(부정)": ["이별", "헤어진지", "헤어진", "힘드네"],
                   "일상다반사": ["오늘", "먹고", "방법", "혼자"]}


def test_reviews_leave_the_held_out_choice_as_it_was_unless_told(corpus) -> None:  # type: ignore[no-untyped-def]
    words = {w: {lab: 1.0} for lab, ws in CHOOSE_KEYWORDS.items() for w in ws}
    gold = dict(zip(corpus["ids"], corpus["gold"], strict=True))

    def run(reviewed: dict[str, str], *, choose: bool) -> dict:  # type: ignore[type-arg]
        cfg = PropagateConfig(sources=("keyword", "knn", "prototype"), holdout=0.5,
                              reviews_choose=choose)
        out = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], words, cfg=cfg,
                               keywords=CHOOSE_KEYWORDS, reviewed=reviewed,
                               corrected=set(reviewed))
        got = dict(zip(out.labels["post_id"], out.labels["label"], strict=True))
        assert all(got[p] == lab for p, lab in reviewed.items())  # reviews override all
        return {**out.estimates, "labels": out.labels}

    base = run({}, choose=False)
    assert base.get("default_choice") is None and base["heldout_seeds"] >= 100
    assert run({}, choose=True)["trials"] == base["trials"]  # no review: no difference
    lab = base["labels"]
    seeds = lab.loc[lab["source"] == "seed", "post_id"].tolist()
    others = {p: gold[p] for p in lab.loc[lab["source"] != "seed", "post_id"].tolist()[::20]}
    assert len(others) >= 100
    # reviews of posts the keywords missed: the held-out seeds choose exactly as before
    kept = run(others, choose=False)
    assert kept["trials"] == base["trials"] and kept["heldout_seeds"] == base["heldout_seeds"]
    assert (kept["combine"], kept["rounds"]) == (base["combine"], base["rounds"])
    # ... while learnt from during the choice they change what it sees
    assert run(others, choose=True)["trials"] != base["trials"]
    # a reviewed keyword seed only leaves the held-out seeds: none is drawn anew
    some = {**others, **{p: gold[p] for p in seeds[::10]}}
    mixed = run(some, choose=False)
    assert base["heldout_seeds"] - len(seeds[::10]) <= mixed["heldout_seeds"] < \
        base["heldout_seeds"]
    assert load_config(None).propagate.reviews_choose is False


def test_a_correction_takes_its_words_off_the_label_it_was_shown(corpus) -> None:  # type: ignore[no-untyped-def]
    """``propagate.reviewed_against``: the Naive Bayes stage learns a correction for its
    new label and, its words counted against the label the reviewer was shown, moves the
    posts that share its character n-grams away from that label."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from weaklabel.labels.sources import nb_em_proba

    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                        sublinear_tf=True).fit_transform(rows["text"])
    classes = sorted(set(corpus["gold"]))
    y_all = np.array([classes.index(g) for g in corpus["gold"]])
    rng = np.random.default_rng(5)
    labelled = np.sort(rng.choice(len(y_all), 300, replace=False))
    free = np.setdiff1d(np.arange(len(y_all)), labelled)
    # 30 labelled posts are corrections: each was shown the next label round
    wrong = np.full(len(labelled), -1)
    wrong[:30] = (y_all[labelled[:30]] + 1) % len(classes)
    w = np.where(wrong >= 0, 5.0, 1.0)
    y = y_all[labelled]

    def fit(against: float, shown: np.ndarray = wrong) -> np.ndarray:
        p, _ = nb_em_proba(x, labelled, y, len(classes), free=free, weight=w,
                           against=shown, against_weight=against)
        assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
        return p

    plain, off = fit(0.0), fit(1.0)
    # no correction known: the same fit, bit for bit
    assert np.array_equal(fit(1.0, np.full(len(labelled), -1)), plain)
    # the free posts most alike each correction lean less towards its shown label
    sim = (x[free] @ x[labelled[:30]].T).toarray()
    near = sim.argmax(axis=0)
    lean = [(plain[free[j], wrong[k]], off[free[j], wrong[k]]) for k, j in enumerate(near)]
    assert sum(after < before for before, after in lean) >= 25
    # and the corrections' own posts too
    own = [(plain[labelled[k], wrong[k]], off[labelled[k], wrong[k]]) for k in range(30)]
    assert all(after < before for before, after in own)


def test_reviewed_against_is_off_by_default_and_refused_below_zero(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("propagate:\n  reviewed_against: -1\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"c.yaml:2: propagate.reviewed_against must be"):
        load_config(bad)
    assert load_config(None).propagate.reviewed_against == 0.0
    assert load_config(None).propagate.reviews_spread == "none"


def test_propagate_counts_corrections_against_their_shown_label_only_when_told(corpus) -> None:  # type: ignore[no-untyped-def]
    words = {w: {lab: 1.0} for lab, ws in KEYWORDS.items() for w in ws}
    base = PropagateConfig(sources=("keyword", "knn", "classifier"), combine="classifier",
                           rounds=1)
    first = propagate_labels(corpus["ids"], corpus["toks"], corpus["kv"], words, cfg=base,
                             keywords=KEYWORDS).labels
    gold = dict(zip(corpus["ids"], corpus["gold"], strict=True))
    shown = {p: lab for p, lab, src in zip(first["post_id"], first["label"], first["source"],
                                           strict=True) if src == "knn" and lab != gold[p]}
    shown = dict(list(shown.items())[:80])
    assert len(shown) == 80
    reviewed = {p: gold[p] for p in shown}

    def run(against: float, corrected: Any) -> pd.DataFrame:
        return _reviewed_run(corpus, words, base, reviewed, corrected,
                             {"propagate.reviewed_against": against})

    off, on = run(0.0, shown), run(1.0, shown)
    # the classifier's votes move on posts nobody reviewed
    rest = ~on["post_id"].isin(list(reviewed))
    assert (on.loc[rest, "label_classifier"] != off.loc[rest, "label_classifier"]).sum() > 0
    # without the shown labels (a set of post ids) nothing is counted against
    assert run(1.0, set(shown)).equals(off)
