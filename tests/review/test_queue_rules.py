"""Queue rules on real text: the bundled chatbot questions (``tests/data/chatbot_sample.csv``)
labelled by the real propagate (regex tokens, real Word2Vec, KNN and prototype sources),
then queued by :func:`build_queue` with each rule.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from weaklabel.config import EmbedConfig, PropagateConfig
from weaklabel.errors import WeaklabelError
from weaklabel.labels.propagate import propagate_labels
from weaklabel.review.triage import build_queue
from weaklabel.text.embed import train_word2vec
from weaklabel.text.tokenizer import make_tokenizer
from weaklabel.text.userdict import UserDict

CHATBOT = Path(__file__).resolve().parents[1] / "data/chatbot_sample.csv"
KEYWORDS = {"사랑(긍정)": ["좋아하는", "썸", "연애"], "이별(부정)": ["이별", "헤어진지"],
            "일상다반사": ["오늘", "먹고"]}


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    toks = make_tokenizer("regex", UserDict((), frozenset())).tokenize(rows["text"].tolist())
    kv = train_word2vec(toks, cfg=EmbedConfig(vector_size=32, min_count=2, epochs=5, seed=1))
    words = {w: {lab: 1.0} for lab, ws in KEYWORDS.items() for w in ws}
    # a fixed cut, so enough posts abstain for the abstained rule to show
    cfg = PropagateConfig(sources=("keyword", "knn", "prototype"), combine="blend",
                          min_confidence=0.5)
    return propagate_labels(rows["id"].tolist(), toks, kv, words, cfg=cfg,
                            keywords=KEYWORDS).labels


def test_error_turns_give_the_least_confident_label_the_most_reviews(labelled) -> None:  # type: ignore[no-untyped-def]
    kept = labelled[labelled["label"] != ""]
    err = (1 - kept.groupby("label")["confidence"].mean()).sort_values()
    assert err.iloc[-1] > err.iloc[0] * 1.05  # labels that differ enough to tell apart
    equal = build_queue(labelled, random_rate=0.0, turns="equal").head(300)
    by_error = build_queue(labelled, random_rate=0.0, turns="error").head(300)
    counts = by_error["label"].value_counts()
    # equal turns: every label the same share; by error: in the order of the estimates
    assert equal["label"].value_counts().max() - equal["label"].value_counts().min() <= 1
    assert counts[err.index[-1]] > counts[err.index[0]]
    shares = counts / counts.sum()
    expect = err / err.sum()
    assert (shares - expect[shares.index]).abs().max() < 0.02
    # the same items, another order
    assert set(build_queue(labelled, turns="error")["post_id"]) == \
        set(build_queue(labelled)["post_id"])
    with pytest.raises(WeaklabelError, match="queue turns 'most': use equal, error or f1"):
        build_queue(labelled, turns="most")


def test_f1_turns_give_a_label_turns_by_its_error_over_its_size(labelled) -> None:  # type: ignore[no-untyped-def]
    kept = labelled[labelled["label"] != ""]
    err = 1 - kept.groupby("label")["confidence"].mean()
    size = kept["label"].value_counts(normalize=True)
    weight = (err / size[err.index]).sort_values()
    assert weight.iloc[-1] > weight.iloc[0] * 1.2  # labels that differ enough to tell apart
    counts = build_queue(labelled, random_rate=0.0, turns="f1").head(300)["label"]\
        .value_counts()
    shares = counts / counts.sum()
    expect = weight / weight.sum()
    assert (shares - expect[shares.index]).abs().max() < 0.02
    assert counts[weight.index[-1]] > counts[weight.index[0]]


def test_abstained_weight_decides_how_soon_abstained_posts_come(labelled) -> None:  # type: ignore[no-untyped-def]
    abstained = set(labelled.loc[labelled["label"] == "", "post_id"])
    assert 50 < len(abstained) < len(labelled) / 2
    first = build_queue(labelled, random_rate=0.0).head(200)
    later = build_queue(labelled, random_rate=0.0, abstained=0.0).head(200)
    n_first, n_later = first["post_id"].isin(abstained).sum(), later["post_id"].isin(
        abstained).sum()
    assert n_later < n_first
    assert all("abstained" in w for w in first.loc[first["post_id"].isin(abstained), "why"])


def test_error_score_orders_each_label_by_its_chance_of_being_wrong(labelled) -> None:  # type: ignore[no-untyped-def]
    by_error = build_queue(labelled, random_rate=0.0, score="error")
    by_suspicion = build_queue(labelled, random_rate=0.0)
    for _lab, items in by_error.groupby("label", sort=False):
        conf = items["confidence"].tolist()  # within a label: least confident first
        assert conf == sorted(conf)
    assert by_error["post_id"].tolist() != by_suspicion["post_id"].tolist()
    assert set(by_error["post_id"]) == set(by_suspicion["post_id"])
    with pytest.raises(WeaklabelError, match="queue score 'loud': use suspicion or error"):
        build_queue(labelled, score="loud")
