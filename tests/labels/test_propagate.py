"""Seeding and KNN propagation on real word vectors; carrying labels to images."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, PropagateConfig, with_overrides
from weaklabel.contracts import ABSTAIN, IMAGE_LABELS, POST_LABELS, SOURCES
from weaklabel.errors import WeaklabelError
from weaklabel.labels.propagate import (
    CosineKNN,
    idf_weights,
    image_labels,
    post_vectors,
    propagate_labels,
    run_propagate,
    seed_labels,
    unknown_keyword_fix,
)
from weaklabel.labels.sources import COMBINERS
from weaklabel.workspace import Workspace

KEYWORDS = {"립스틱": {"lips": 1.0}, "틴트": {"lips": 1.0}, "염색": {"hair": 1.0},
            "미용실": {"hair": 1.0}, "젤네일": {"nails": 1.0}, "매니큐어": {"nails": 1.0}}


def _with_map(cfg: Config, labelmap: Path | None) -> Config:
    """``cfg`` naming ``labelmap`` (run_propagate reads the map from the config)."""
    import dataclasses

    return dataclasses.replace(cfg, labelmap=None if labelmap is None else str(labelmap))


def test_seed_labels_margin_ties_and_evidence() -> None:
    words = {"립스틱": {"lips": 1.0}, "틴트": {"lips": 1.0}, "염색": {"hair": 1.0},
             "글로스": {"lips": 0.5}}
    s = seed_labels([["립스틱", "립스틱", "틴트", "염색"], ["립스틱", "염색"], ["글로스", "염색"],
                     ["무관"], []], words, margin=1.0)
    assert s.labels == ["lips", ABSTAIN, ABSTAIN, ABSTAIN, ABSTAIN]
    assert s.confidence == [round(2 / 3, 4), 0.0, 0.0, 0.0, 0.0]  # a repeated word counts once
    assert s.evidence[0] == "lips: 립스틱,틴트; hair: 염색"
    assert s.evidence[1].startswith("tie: ")
    assert s.evidence[3] == ""
    assert seed_labels([["글로스", "염색"]], words, margin=0.5).labels == ["hair"]
    assert seed_labels([["글로스"]], words, margin=1.0).labels == [ABSTAIN]  # 0.5 < margin


def test_idf_rarer_words_weigh_more() -> None:
    idf = idf_weights([["a", "b"], ["a"], ["a", "a"]])
    assert idf["b"] > idf["a"] >= 1.0


@pytest.mark.parametrize("center", [False, True])
def test_post_vectors_are_unit_or_flagged(kv: Any, center: bool) -> None:
    vecs, has = post_vectors([["립스틱", "틴트"], ["없는말"], [], ["립스틱"]], kv,
                             idf={"립스틱": 2.0}, center=center)
    assert has.tolist() == [True, False, False, True]
    assert np.allclose(np.linalg.norm(vecs[has], axis=1), 1.0, atol=1e-5)
    assert not vecs[~has].any()
    word = kv["립스틱"] - (kv.vectors.mean(axis=0) if center else 0.0)
    assert np.allclose(vecs[3], word / np.linalg.norm(word), atol=1e-5)


def _brute_force_proba(xq: np.ndarray, xs: np.ndarray, ys: list[str], k: int, balance: bool,
                       eps: float = 1e-3) -> tuple[list[str], np.ndarray]:
    classes = sorted(set(ys))
    out = np.zeros((len(xq), len(classes)))
    for i, q in enumerate(xq):
        sims = xs @ q
        for j in np.argsort(-sims, kind="stable")[:k]:
            vote = 1.0 / (1.0 - sims[j] + eps)
            out[i, classes.index(ys[j])] += vote / (ys.count(ys[j]) if balance else 1)
    return classes, out / out.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k, chunk, balance", [(1, 4096, False), (3, 2, False), (50, 3, False),
                                               (4, 3, True), (50, 4096, True)])
def test_cosine_knn_matches_a_brute_force_vote(k: int, chunk: int, balance: bool) -> None:
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(12, 5)).astype(np.float32)
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    xq = rng.normal(size=(7, 5)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    ys = ["b", "a", "c"] * 3 + ["a"] * 3  # unequal class sizes, so balancing matters
    knn = CosineKNN(k, balance=balance, chunk=chunk).fit(xs, ys)
    classes, expected = _brute_force_proba(xq, xs, ys, k, balance)
    assert knn.classes_.tolist() == classes
    proba = knn.predict_proba(xq)
    assert np.allclose(proba, expected, atol=1e-5)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert knn.predict(xq).tolist() == [classes[i] for i in expected.argmax(axis=1)]


def test_propagation_labels_the_corpus(kv: Any, corpus: list[dict[str, Any]]) -> None:
    ids = [r["post_id"] for r in corpus]
    toks = [r["tokens"] for r in corpus]
    prop = propagate_labels(ids, toks, kv, KEYWORDS, cfg=PropagateConfig(k=5, cv_folds=3))
    df = prop.labels
    gold = [r["topic"] for r in corpus]
    seeds = (df["source"] == "seed").sum()
    knn = (df["source"] == "knn").sum()
    assert seeds > 0 and knn > 0
    labelled = df["label"] != ABSTAIN
    assert labelled.mean() > 0.95
    assert (df["label"][labelled] == pd.Series(gold)[labelled]).mean() > 0.95
    assert prop.cv_accuracy is not None and prop.cv_accuracy > 0.9
    assert set(prop.seed_counts) == {"lips", "hair", "nails"}
    knn_rows = df[df["source"] == "knn"]
    combiners = tuple(f"{c} " for c in COMBINERS)
    assert knn_rows["evidence"].map(lambda e: e.startswith(combiners)).all()
    # every source's own vote is kept beside the combined label
    assert (df.loc[df["source"] == "seed", "label_keyword"] ==
            df.loc[df["source"] == "seed", "label"]).all()
    assert (df.loc[df["source"] == "knn", "label_keyword"] == ABSTAIN).all()
    for s in ("knn", "prototype", "classifier"):
        agree = (df[f"label_{s}"] == pd.Series(gold)).mean()
        assert agree > 0.8, s
    assert prop.estimates["combine"] in COMBINERS


def test_one_seeded_label_means_no_knn(kv: Any, corpus: list[dict[str, Any]],
                                       caplog: pytest.LogCaptureFixture) -> None:
    toks = [r["tokens"] for r in corpus]
    with caplog.at_level(logging.WARNING, logger="weaklabel.labels.propagate"):
        prop = propagate_labels([r["post_id"] for r in corpus], toks, kv,
                                {"립스틱": {"lips": 1.0}}, cfg=PropagateConfig())
    assert set(prop.labels["source"]) == {"seed", "none"}
    assert prop.cv_accuracy is None
    assert "only one label has seed posts" in caplog.text


@st.composite
def _problem(draw: st.DrawFn, vocab: list[str]) -> tuple[list[list[str]], dict[str, Any],
                                                        PropagateConfig]:
    words_pool = [*vocab[:30], "없는말", "모르는말"]
    token_lists = draw(st.lists(st.lists(st.sampled_from(words_pool), max_size=6),
                                min_size=1, max_size=40))
    labelled = draw(st.dictionaries(
        st.sampled_from(words_pool),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from([0.5, 1.0]),
                        min_size=1, max_size=2),
        max_size=8))
    cfg = PropagateConfig(k=draw(st.integers(1, 8)),
                          min_confidence=draw(st.floats(0.0, 1.0)),
                          seed_margin=draw(st.sampled_from([0.5, 1.0])),
                          idf=draw(st.booleans()), cv_folds=draw(st.integers(2, 4)))
    return token_lists, labelled, cfg


@pytest.fixture(scope="module")
def vocab(kv: Any) -> list[str]:
    return list(kv.index_to_key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_propagation_never_changes_a_seed_label(kv: Any, vocab: list[str],
                                                data: st.DataObject) -> None:
    token_lists, words, cfg = data.draw(_problem(vocab))
    ids = [f"p{i}" for i in range(len(token_lists))]
    seeds = seed_labels(token_lists, words, margin=cfg.seed_margin)
    df = propagate_labels(ids, token_lists, kv, words, cfg=cfg).labels
    assert df["post_id"].tolist() == ids
    for i, lab in enumerate(seeds.labels):
        row = df.iloc[i]
        if lab != ABSTAIN:
            assert (row["label"], row["source"]) == (lab, "seed")
        else:
            assert row["source"] in ("knn", "none")
        assert row["source"] in SOURCES
        assert (row["label"] == ABSTAIN) == (row["source"] == "none")
        assert 0.0 <= row["confidence"] <= 1.0
        if row["source"] == "knn":
            assert row["label"] in set(seeds.labels) - {ABSTAIN}
            assert row["confidence"] >= cfg.min_confidence - 1e-4


def test_image_labels_carry_the_post_label() -> None:
    labels = pd.DataFrame({"post_id": ["a", "b"], "label": ["lips", ""],
                           "confidence": [0.9, 0.0]})
    images = pd.DataFrame({"post_id": ["a", "a", "b", "c"],
                           "image": ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]})
    posts = pd.DataFrame({"post_id": ["a", "b", "c"],
                          "likes": pd.array([5, None, 1], dtype="Int64"),
                          "comments": pd.array([0, 1, 2], dtype="Int64")})
    out = image_labels(labels, images, posts)
    assert out["label"].tolist() == ["lips", "lips", "", ""]  # c has no label row: abstain
    assert out["confidence"].tolist() == [0.9, 0.9, 0.0, 0.0]
    assert out["likes"].tolist()[0] == 5


# --- run_propagate -----------------------------------------------------------------------


def test_run_propagate_writes_labels_baseline_and_images(
        embedded_workspace: Path, keyword_labelmap: Path) -> None:
    ws = Workspace(embedded_workspace)
    cfg = Config(propagate=PropagateConfig(k=5, cv_folds=3))
    s = run_propagate(ws, _with_map(cfg, keyword_labelmap))
    post = pd.read_parquet(ws.path("post_labels.parquet"))
    kw = pd.read_parquet(ws.path("keyword_labels.parquet"))
    img = pd.read_parquet(ws.path("image_labels.parquet"))
    assert post.columns.tolist() == POST_LABELS.names
    assert img.columns.tolist() == IMAGE_LABELS.names
    assert post["post_id"].is_monotonic_increasing
    assert s.summary.posts == len(post) == 450 and s.summary.images == len(img) == 460
    assert s.summary.seed + s.summary.knn + s.summary.abstain == 450
    assert s.summary.coverage > s.summary.keyword_coverage > 0
    assert set(kw["source"]) <= {"seed", "none"}
    seeded = kw["label"] != ABSTAIN  # with no clusters, keyword seeds are the post seeds
    assert (post.loc[seeded, "label"] == kw.loc[seeded, "label"]).all()
    assert run_propagate(ws, _with_map(cfg, keyword_labelmap)).up_to_date is True


def test_run_propagate_reruns_when_the_labelmap_changes(
        embedded_workspace: Path, write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap("labels:\n  lips:\n    keywords: [립스틱]\n"
                        "  hair:\n    keywords: [염색]\n")
    first = run_propagate(ws, _with_map(Config(), lm))
    lm.write_text("labels:\n  lips:\n    keywords: [립스틱, 틴트]\n"
                  "  hair:\n    keywords: [염색]\n", encoding="utf-8")
    second = run_propagate(ws, _with_map(Config(), lm))
    assert not second.up_to_date
    assert second.summary.seed > first.summary.seed


def test_run_propagate_errors(embedded_workspace: Path, token_workspace: Path,
                              write_labelmap: Callable[..., Path],
                              keyword_labelmap: Path) -> None:
    ws = Workspace(embedded_workspace)
    with pytest.raises(WeaklabelError, match="no label map given; pass --labelmap"):
        run_propagate(ws, _with_map(Config(), None))
    with pytest.raises(WeaklabelError, match="missing.yaml does not exist"):
        run_propagate(ws, _with_map(Config(), embedded_workspace / "missing.yaml"))
    with pytest.raises(WeaklabelError, match="run `weaklabel embed` first"):
        run_propagate(Workspace(token_workspace), _with_map(Config(), keyword_labelmap))
    lm = write_labelmap("labels:\n  lips:\n    clusters: [0]\n", name="clusters.yaml")
    with pytest.raises(WeaklabelError, match="cluster 0 of 'lips' does not exist: no clusters "
                                             "yet; run `weaklabel cluster` first"):
        # no word_clusters.parquet: no cluster exists yet
        run_propagate(ws, _with_map(Config(), lm))
    assert not ws.path("post_labels.parquet").exists()


def test_run_propagate_warns_about_keywords_that_never_occur(
        embedded_workspace: Path, write_labelmap: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    lm = write_labelmap("labels:\n  lips:\n    keywords: [립스틱, 립스틱추천]\n"
                        "  hair:\n    keywords: [염색]\n  eyes:\n    keywords: [아이라이너]\n")
    with caplog.at_level(logging.WARNING):
        s = run_propagate(Workspace(embedded_workspace), _with_map(Config(), lm))
    assert "keyword '립스틱추천' of 'lips' never occurs as a token" in caplog.text
    assert "label 'eyes' has no seed posts" in caplog.text
    assert "eyes" not in s.summary.labels


def test_a_keyword_no_user_dictionary_can_save_gets_the_right_fix(
        embedded_workspace: Path, write_labelmap: Callable[..., Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    userdict = tmp_path / "dict"
    userdict.mkdir()
    (userdict / "stopwords.txt").write_text("것\n", encoding="utf-8")
    lm = write_labelmap("labels:\n  lips:\n    keywords: [립스틱, 것, '#틴트', 립 글로스]\n"
                        "  hair:\n    keywords: [염색]\n")
    cfg = with_overrides(_with_map(Config(), lm), {"tokenize.userdict": str(userdict)})
    with caplog.at_level(logging.WARNING):
        run_propagate(Workspace(embedded_workspace), cfg)
    lines = {line.split("keyword ", 1)[1] for line in caplog.text.splitlines()
             if "never occurs as a token" in line}
    assert any(t.startswith("'것' of 'lips'") and "it is a stop word" in t for t in lines)
    assert any(t.startswith("'#틴트' of 'lips'") and "write the keyword without it, '틴트'"
               in t for t in lines)
    assert any(t.startswith("'립 글로스' of 'lips'") and "holds no space" in t for t in lines)
    assert "min_length (3)" in unknown_keyword_fix("립", min_length=3)


def test_near_keywords_filters_cluster_words(kv: Any, write_labelmap: Callable[..., Path]) -> None:
    from weaklabel.labels.labelmap import label_words, load_labelmap
    from weaklabel.labels.propagate import near_keywords

    lm = load_labelmap(write_labelmap("labels:\n  lips:\n    clusters: [0]\n"
                                      "    keywords: [립스틱]\n  hair:\n    clusters: [1]\n"))
    cluster_words = {0: ["립스틱", "틴트", "염색"], 1: ["헤어", "펌"]}
    keep_all = label_words(lm, cluster_words, cluster_weight=0.5,
                           keep=near_keywords(kv, threshold=-1.0))
    assert set(keep_all) == {"립스틱", "틴트", "염색", "헤어", "펌"}
    strict = label_words(lm, cluster_words, cluster_weight=0.5,
                         keep=near_keywords(kv, threshold=0.1))
    assert strict["립스틱"] == {"lips": 1.0}  # a keyword is always kept
    assert "틴트" in strict and "염색" not in strict  # near vs far from 립스틱
    assert {"헤어", "펌"} <= set(strict)  # a label without keywords keeps all its words
    nothing = label_words(lm, cluster_words, cluster_weight=0.5,
                          keep=near_keywords(kv, threshold=1.01))
    assert set(nothing) == {"립스틱", "헤어", "펌"}
