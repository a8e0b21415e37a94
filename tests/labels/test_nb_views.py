"""The Naive Bayes stage's second view (the tokenizer's tokens beside the char n-grams)
and its keyword-expansion round (the first fit's most label-specific words as weak seeds,
taken only when the held-out seeds score it higher)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from weaklabel.config import PropagateConfig, with_overrides
from weaklabel.labels.sources import (
    ClassifierSource,
    SourceInput,
    classifier_features,
    expansion_seeds,
)


def test_expansion_takes_each_labels_purest_words_with_support() -> None:
    # tokens: 0 a pure word of label 0 (5 posts), 1 of label 1 (5 posts), 2 pure for label
    # 0 but in 2 posts only, 3 in the free posts of both labels alike (4 and 4)
    rows = [[0, 3]] * 5 + [[1, 3]] * 4 + [[1]] + [[2]] * 2 + [[0, 1]]
    dense = np.zeros((len(rows), 4))
    for i, toks in enumerate(rows):
        dense[i, toks] = 1.0
    proba = np.array([[0.9, 0.1]] * 5 + [[0.1, 0.9]] * 5 + [[0.95, 0.05]] * 2 + [[0.5, 0.5]])
    free = np.ones(len(rows), dtype=bool)
    free[0] = False  # a training seed is never a weak seed
    weak = expansion_seeds(csr_matrix(dense), proba, free, top=5, min_posts=3)
    assert weak[0] == -1
    assert weak[1:5].tolist() == [0] * 4 and weak[5:10].tolist() == [1] * 5
    assert weak[10:12].tolist() == [-1, -1]  # word 2: fewer posts than min_posts
    assert weak[12] == -1  # words of two labels: no weak seed
    # the cap: one word a label, the purest; word 3 leans to neither and never makes it
    one = expansion_seeds(csr_matrix(dense), proba, free, top=1, min_posts=3)
    assert one.tolist() == weak.tolist()
    assert (expansion_seeds(csr_matrix(dense), proba, free, top=0, min_posts=3) == -1).all()


def _inp(cfg: PropagateConfig, *, tokens: bool = True) -> SourceInput:
    texts = ["빨간 립스틱 추천", "파란 염색약 추천", "빨간 틴트 립스틱", "파란 염색 미용실",
             "빨간 틴트", "파란 미용실", ""] * 4
    seed = [0, 1, -1, -1, -1, -1, -1] * 4
    n = len(texts)
    return SourceInput(classes=["a", "b"], seed=np.array(seed), train=np.array(seed) >= 0,
                       vecs=np.zeros((n, 2), dtype=np.float32), has=np.ones(n, bool),
                       texts=texts, kv=None, keywords={}, cfg=cfg,
                       is_seed=np.array(seed) >= 0,
                       tokens=[t.split() for t in texts] if tokens else None)


def test_token_view_sits_beside_the_char_ngrams_at_its_weight() -> None:
    plain = _inp(PropagateConfig(classifier_token_weight=0.0))
    chars = classifier_features(plain)
    assert plain.token_cols == -1
    both = _inp(PropagateConfig(classifier_token_weight=0.5))
    x = classifier_features(both)
    assert both.token_cols == chars.shape[1] and x.shape[1] > chars.shape[1]
    assert x.shape[0] == chars.shape[0]
    # each row of the token view is half a unit long (TF-IDF rows are unit rows)
    tok = x[:, both.token_cols:]
    lengths = np.sqrt(np.asarray(tok.multiply(tok).sum(axis=1)).ravel())
    assert lengths[lengths > 0] == pytest.approx(0.5, abs=1e-5)
    # the logistic model and a caller without tokens read the char n-grams only
    lr = _inp(PropagateConfig(classifier_model="logistic"))
    assert classifier_features(lr).shape == chars.shape and lr.token_cols == -1
    none = _inp(PropagateConfig(), tokens=False)
    assert classifier_features(none).shape == chars.shape


def test_expansion_round_reuses_the_first_fit_and_is_its_own_vote() -> None:
    inp = _inp(PropagateConfig())
    src = ClassifierSource()
    def fits() -> int:
        return sum(isinstance(k, tuple) and k[0] == "nb_em" for k in inp.cache)

    first = src.votes(inp)
    assert fits() == 1
    inp.round = 2
    second = src.votes(inp)
    assert fits() == 2  # the first fit came from the cache, the second is new
    assert inp.cache["expansion"]["weak_seeds"] >= 0
    assert second.shape == first.shape
    assert second[6].sum() == 0.0  # an empty caption still abstains
    off = _inp(PropagateConfig(classifier_expand=0))
    off.round = 2
    assert np.array_equal(src.votes(off), first)  # off: round 2 is round 1


@pytest.mark.jvm
@pytest.mark.slow
def test_token_view_and_expansion_beat_char_ngrams_alone_on_real_text(
        chatbot_draft: Any) -> None:
    from weaklabel.labels.evaluate import evaluate
    from weaklabel.labels.propagate import label_posts

    ws, cfg, labelmap, gold = chatbot_draft
    g = gold.rename(columns={"gold": "label"})[["post_id", "label"]]
    score, runs, rounds = {}, {}, {}
    for name, over in (("chars", {"propagate.classifier_token_weight": 0.0,
                                  "propagate.classifier_expand": 0}),
                       ("default", {}), ("again", {})):
        prop, _ = label_posts(ws, labelmap, with_overrides(cfg, over))
        df = prop.labels.copy()
        runs[name] = df
        full = df.assign(label=np.where(df["label"] != "", df["label"], df["top_label"]))
        score[name] = evaluate(full, g, names=labelmap.id_of())["macro_f1"]
        rounds[name] = prop.estimates["rounds"]
        if rounds[name] == 2:  # the words the expansion learnt from are on record
            exp = prop.estimates["expansion"]
            assert exp["weak_seeds"] > 0
            assert set(exp["words"]) == set(prop.classes)
            assert all(0 < len(w) <= cfg.propagate.classifier_expand
                       for w in exp["words"].values())
        else:
            assert "expansion" not in prop.estimates
        # seeds keep their keyword label whatever the classifier votes
        seeds = df["source"] == "seed"
        assert seeds.sum() > 500
        assert (df.loc[seeds, "label"] == df.loc[seeds, "label_keyword"]).all()
    # measured when written, macro-F1 with every post its top label: 0.531 (char n-grams
    # alone) → 0.541, the held-out seeds taking the expansion round
    assert score["default"] > score["chars"] + 0.005
    assert rounds["chars"] == 1 and rounds["default"] in (1, 2)
    assert runs["default"].equals(runs["again"])  # same inputs, same labels
