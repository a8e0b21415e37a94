"""The cluster stage: real KMeans on real vectors, and the label-map draft."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import ClusterConfig, Config
from weaklabel.errors import WeaklabelError
from weaklabel.labels.cluster import (
    assign_clusters,
    draft_labelmap,
    fit_clusters,
    load_seed_keywords,
    parse_k_range,
    run_cluster,
    summarize_clusters,
)
from weaklabel.labels.labelmap import load_labelmap
from weaklabel.workspace import Workspace

SEED_KEYWORDS = "lips: [립스틱, 틴트]\nhair: [염색, 미용실]\nnails: [젤네일, 매니큐어]\n"


@pytest.fixture(scope="module")
def words(topic_words: dict[str, tuple[str, ...]]) -> list[str]:
    return [w for ws in topic_words.values() for w in ws]


@pytest.fixture(scope="module")
def clustering(kv: Any, words: list[str]) -> Any:
    return fit_clusters(words, np.stack([kv[w] for w in words]),
                        [kv.get_vecattr(w, "count") for w in words], k=3, seed=1)


def test_parse_k_range() -> None:
    assert parse_k_range("2:5") == (2, 5)
    for bad in ("5", "a:b", "1:4", "6:3"):
        with pytest.raises(WeaklabelError, match="--k-range"):
            parse_k_range(bad)


def test_kmeans_recovers_the_topics(clustering: Any,
                                    topic_words: dict[str, tuple[str, ...]]) -> None:
    df = clustering.words
    assert clustering.k == 3 and len(clustering.centroids) == 3
    for ws in topic_words.values():
        assert df.set_index("word").loc[list(ws), "cluster"].nunique() == 1
    assert df["cluster"].nunique() == 3
    assert ((df["similarity"] > 0) & (df["similarity"] <= 1.0 + 1e-9)).all()
    assert np.allclose(np.linalg.norm(clustering.centroids, axis=1), 1.0)


def test_fit_is_deterministic_for_a_seed(kv: Any, clustering: Any, words: list[str]) -> None:
    again = fit_clusters(words, np.stack([kv[w] for w in words]),
                         [kv.get_vecattr(w, "count") for w in words], k=3, seed=1)
    pd.testing.assert_frame_equal(again.words, clustering.words)


def test_k_range_keeps_the_best_silhouette(kv: Any, words: list[str]) -> None:
    cl = fit_clusters(words, np.stack([kv[w] for w in words]), [1] * len(words),
                      k_range=(2, 5), seed=1, n_init=2)
    assert [s["k"] for s in cl.scores] == [2, 3, 4, 5]
    best = max(cl.scores, key=lambda s: s["silhouette"])
    assert cl.k == best["k"] == 3


def test_too_many_clusters_is_a_user_error() -> None:
    with pytest.raises(WeaklabelError, match="cannot make 5 clusters from 3 words"):
        fit_clusters(["a", "b", "c"], np.eye(3), [1, 1, 1], k=5)


def test_summary_and_assignment(clustering: Any) -> None:
    summary = summarize_clusters(clustering.words, top=3)
    assert summary["size"].tolist() == [10, 10, 10]
    assert all(len(t.split()) == 3 for t in summary["top_words"])
    assigned = assign_clusters(clustering.words, {"lips": ["립스틱", "틴트"], "hair": ["염색"],
                                                  "none": ["없는말"]})
    where = dict(zip(clustering.words["word"], clustering.words["cluster"], strict=True))
    assert assigned == {int(where["립스틱"]): "lips", int(where["염색"]): "hair"}


def test_assignment_tie_is_left_to_a_person() -> None:
    words = pd.DataFrame({"word": ["a", "b"], "cluster": [0, 0], "count": [5, 5],
                          "similarity": [1.0, 1.0]})
    assert assign_clusters(words, {"x": ["a"], "y": ["b"]}) == {}
    words["count"] = [10, 5]
    assert assign_clusters(words, {"x": ["a"], "y": ["b"]}) == {0: "x"}


def test_draft_with_seed_keywords_is_a_valid_labelmap(tmp_path: Path, clustering: Any) -> None:
    summary = summarize_clusters(clustering.words)
    kw = {"lips": ["립스틱"], "no": ["염색"], "other": ["일상"]}
    assigned = assign_clusters(clustering.words, kw)
    text = draft_labelmap(summary, kw, assigned, background="other")
    p = tmp_path / "draft.yaml"
    p.write_text(text, encoding="utf-8")
    lm = load_labelmap(p, known_clusters=set(summary["cluster"]))
    assert lm.ids == ["lips", "no", "other"]  # "no" survives: the draft quotes keys
    assert lm.background == "other"
    assert sorted(c for lab in lm.labels for c in lab.clusters) == sorted(assigned)


def test_draft_without_keywords_lists_every_cluster(clustering: Any) -> None:
    text = draft_labelmap(summarize_clusters(clustering.words))
    for c in range(3):
        assert f"#   {c}: " in text


def test_seed_keywords_file(tmp_path: Path) -> None:
    p = tmp_path / "kw.yaml"
    p.write_text(SEED_KEYWORDS + "other: [Daily, 일상, daily]\n", encoding="utf-8")
    kw = load_seed_keywords(p)
    assert list(kw) == ["lips", "hair", "nails", "other"]
    assert kw["other"] == ["daily", "일상"]  # Latin words lower-cased, repeats dropped
    p.write_text("lips: []\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"kw.yaml:1: label 'lips' has no keywords"):
        load_seed_keywords(p)


def test_run_cluster_writes_table_summary_and_draft(embedded_workspace: Path,
                                                    tmp_path: Path) -> None:
    kw = tmp_path / "kw.yaml"
    kw.write_text(SEED_KEYWORDS, encoding="utf-8")
    ws = Workspace(embedded_workspace)
    cfg = Config(cluster=ClusterConfig(k=4, seed=1, n_init=2), seed_keywords=str(kw))
    r = run_cluster(ws, cfg)
    assert r.summary.k == 4 and r.summary.words == 38 and r.summary.assigned == 3
    assert [s.k for s in r.summary.scores] == [4]
    wc = pd.read_parquet(ws.path("word_clusters.parquet"))
    assert wc[["cluster", "word"]].values.tolist() == \
        wc.sort_values(["cluster", "word"])[["cluster", "word"]].values.tolist()
    clusters = pd.read_csv(ws.path("clusters.csv"))
    assert clusters["cluster"].tolist() == [0, 1, 2, 3] and clusters["size"].sum() == 38
    assert set(clusters["label"].dropna()) == {"lips", "hair", "nails"}
    lm = load_labelmap(ws.path("labelmap.draft.yaml"), known_clusters=set(wc["cluster"]))
    assert lm.ids == ["lips", "hair", "nails"]
    # the draft records every cluster's words as data, most frequent first, so a map
    # saved from it knows what its ids meant (drift.first_pin)
    ranked = wc.sort_values(["cluster", "count", "word"], ascending=[True, False, True])
    assert lm.cluster_words == {int(c): tuple(g["word"]) for c, g in ranked.groupby("cluster")}
    again = run_cluster(ws, cfg)
    assert again.up_to_date and again.summary == r.summary  # scores rebuilt as KScore


def test_a_config_whose_label_map_is_the_draft_keeps_the_edits(
        embedded_workspace: Path) -> None:
    # `labelmap: build/labelmap.draft.yaml`: the next clustering rewrote the edited map
    ws = Workspace(embedded_workspace)
    cfg = Config(cluster=ClusterConfig(k=4, seed=1, n_init=2))
    run_cluster(ws, cfg)
    draft = ws.path("labelmap.draft.yaml")
    draft.write_text("labels:\n  lips: {clusters: [0]}\n", encoding="utf-8")  # edited
    mine = dataclasses.replace(cfg, labelmap=str(draft),
                               cluster=ClusterConfig(k=3, seed=1, n_init=2))
    with pytest.raises(WeaklabelError, match=r"is the draft `weaklabel cluster` rewrites; "
                                             r"your edits would be lost: copy it"):
        run_cluster(ws, mine)
    assert draft.read_text(encoding="utf-8") == "labels:\n  lips: {clusters: [0]}\n"


def test_run_cluster_needs_vectors(token_workspace: Path) -> None:
    with pytest.raises(WeaklabelError, match="run `weaklabel embed` first"):
        run_cluster(Workspace(token_workspace), Config())


def test_a_k_range_past_the_vocabulary_says_it_was_cut(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    import logging

    x = np.random.default_rng(0).normal(size=(6, 4))
    with caplog.at_level(logging.WARNING):
        cl = fit_clusters(list("abcdef"), x, [1] * 6, k_range=(2, 9), seed=1, n_init=1)
    assert [s["k"] for s in cl.scores] == [2, 3, 4, 5]
    assert "--k-range 2:9: only 6 words to cluster, so K is tried up to 5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fit_clusters(list("abcdef"), x, [1] * 6, k_range=(2, 3), seed=1, n_init=1)
    assert "--k-range" not in caplog.text
