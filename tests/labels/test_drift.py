"""A reviewed label map keeps what the person meant over a re-cluster (the pin is the
meaning), and the run stops with exit 3 only when that meaning is gone."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.config import Config, PropagateConfig
from weaklabel.contracts import WORD_CLUSTERS
from weaklabel.errors import ReviewNeeded
from weaklabel.labels.drift import drift_lines, first_pin, pinned_clusters
from weaklabel.labels.labelmap import load_labelmap
from weaklabel.labels.propagate import run_propagate
from weaklabel.workspace import Workspace, write_parquet

# cluster words of the test corpus (tests/conftest.py TOPIC_WORDS), as KMeans might group
CLUSTERS = {0: ["립스틱", "틴트", "입술", "립밤", "코랄"],
            1: ["염색", "미용실", "헤어", "펌"],
            2: ["젤네일", "매니큐어", "네일"]}
MAP = ("labels:\n  lips:\n    clusters: [0]\n    keywords: [립스틱]\n"
       "  hair:\n    clusters: [1]\n    keywords: [염색]\n"
       "  nails:\n    clusters: [2]\n    keywords: [젤네일]\n")


def _with_map(cfg: Config, labelmap: Path | None) -> Config:
    """``cfg`` naming ``labelmap`` (run_propagate reads the map from the config)."""
    import dataclasses

    return dataclasses.replace(cfg, labelmap=None if labelmap is None else str(labelmap))


def _write_clusters(ws: Workspace, clusters: dict[int, list[str]]) -> None:
    rows = [{"word": w, "cluster": c, "count": 5, "similarity": 0.9}
            for c, ws_ in clusters.items() for w in ws_]
    write_parquet(pd.DataFrame(rows), ws.path("word_clusters.parquet"), WORD_CLUSTERS)


def test_a_split_cluster_keeps_its_reviewed_words(write_labelmap: Any) -> None:
    lm = load_labelmap(write_labelmap(MAP))
    # lips split over two new clusters, each mostly other words; ids reshuffled
    current = {0: ["염색", "미용실", "헤어", "펌"],
               4: ["립스틱", "틴트", "주말", "데일리", "출근"],
               9: ["입술", "립밤", "코랄", "여름", "휴가", "바다", "캠핑"],
               2: ["젤네일", "매니큐어", "네일"]}
    drift = pinned_clusters(lm, CLUSTERS, current)
    assert drift.clusters[0] == sorted(CLUSTERS[0])  # wherever KMeans put them
    assert drift.clusters[1] == sorted(CLUSTERS[1])  # not the new positional cluster 1
    assert drift.clusters[2] == sorted(CLUSTERS[2])
    # neither lips half is mostly lips words: its other words stay unlabelled
    assert drift.joined == {0: [], 1: [], 2: []}
    assert drift.lost == {0: [], 1: [], 2: []}
    assert drift.clusters[4] == current[4] and drift.clusters[9] == current[9]  # unnamed
    assert drift_lines(lm, drift) == []


def test_a_new_word_joins_by_majority_of_its_new_cluster(write_labelmap: Any) -> None:
    lm = load_labelmap(write_labelmap(MAP))
    current = {3: [*CLUSTERS[0], "글로스"],  # 5 of 6 are lips words: 글로스 joins lips
               5: ["염색", "미용실", "단발", "앞머리", "고데기"],  # 2 of 5: nobody joins
               6: ["헤어", "펌"],
               7: ["네일", "손톱", "큐티클"],  # 1 of 3 is a nails word: nobody joins
               8: ["젤네일", "매니큐어", "파츠", "글리터"]}  # 2 of 4 = half: both join
    drift = pinned_clusters(lm, CLUSTERS, current)
    assert drift.joined == {0: ["글로스"], 1: [], 2: ["글리터", "파츠"]}
    assert drift.clusters[0] == [*sorted(CLUSTERS[0]), "글로스"]
    assert drift.clusters[1] == sorted(CLUSTERS[1])
    assert drift.clusters[2] == [*sorted(CLUSTERS[2]), "글리터", "파츠"]
    assert drift_lines(lm, drift) == ["lips: 1 new word(s) joined (글로스), 0 reviewed "
                                      "word(s) lost",
                                      "nails: 2 new word(s) joined (글리터, 파츠), 0 reviewed "
                                      "word(s) lost"]


def test_a_few_lost_words_are_reported_not_fatal(write_labelmap: Any) -> None:
    lm = load_labelmap(write_labelmap(MAP))
    current = {0: ["립스틱", "틴트", "입술"], 1: CLUSTERS[1], 2: ["젤네일", "매니큐어"]}
    drift = pinned_clusters(lm, CLUSTERS, current)  # lips lost 2 of 5, nails 1 of 3
    assert drift.lost == {0: ["립밤", "코랄"], 1: [], 2: ["네일"]}
    assert drift.clusters[0] == ["립스틱", "입술", "틴트"]
    assert drift_lines(lm, drift)[0] == ("lips: 0 new word(s) joined, 2 reviewed word(s) "
                                         "lost (립밤, 코랄)")


def test_a_vanished_cluster_needs_review(write_labelmap: Any) -> None:
    path = write_labelmap(MAP)
    lm = load_labelmap(path)
    # a user-dictionary change glued the lips words into compounds: 3 of 5 are gone
    current = {0: ["립스틱추천", "틴트발색", "립밤", "코랄"], 1: CLUSTERS[1], 2: CLUSTERS[2],
               3: ["입술보호"]}
    with pytest.raises(ReviewNeeded) as exc:
        pinned_clusters(lm, CLUSTERS, current)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: the clusters it names changed since it was reviewed "
                          "('lips' cluster 0: 3 of its 5 reviewed words are no longer in "
                          "the vocabulary (립스틱, 입술, 틴트))")
    assert "review clusters.csv and the label map's clusters" in msg
    assert "hair" not in msg and "\n" not in msg


def test_a_reclustered_corpus_keeps_the_reviewed_meaning(
        embedded_workspace: Path, write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(MAP)
    cfg = Config(propagate=PropagateConfig(k=5))
    _write_clusters(ws, CLUSTERS)
    first = run_propagate(ws, _with_map(cfg, lm))
    before = pd.read_parquet(ws.path("post_labels.parquet"))
    pin = ws.path("labelmap.pin.json").read_bytes()
    assert first.summary.cluster_drift == ()
    # the grown corpus re-clusters: ids shuffled, hair split, a new word joins lips
    _write_clusters(ws, {7: CLUSTERS[2], 3: [*CLUSTERS[0], "글로스"], 5: CLUSTERS[1][:2],
                         2: [*CLUSTERS[1][2:], "주말", "데일리", "출근"], 0: ["여름"]})
    second = run_propagate(ws, _with_map(cfg, lm))
    assert not second.up_to_date
    assert second.summary.cluster_drift == (
        "lips: 1 new word(s) joined (글로스), 0 reviewed word(s) lost",)
    assert "drift since the map was reviewed: lips: 1 new word(s)" in second.summary.text()
    assert ws.path("labelmap.pin.json").read_bytes() == pin  # the pin stays the meaning
    after = pd.read_parquet(ws.path("post_labels.parquet"))
    seeded = before["source"] == "seed"
    assert seeded.sum() > 0
    assert (after.loc[seeded, "label"] == before.loc[seeded, "label"]).mean() >= 0.9
    # the person reviews the map against today's clusters (a new digest): pinned anew
    lm.write_text(MAP.replace("[0]", "[3]").replace("[1]", "[5]").replace("[2]", "[7]"),
                  "utf-8")
    assert run_propagate(ws, _with_map(cfg, lm)).summary.cluster_drift == ()
    assert ws.path("labelmap.pin.json").read_bytes() != pin


def test_a_vanished_cluster_exits_3_from_the_cli(cli: Any, embedded_workspace: Path,
                                                 write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(MAP)
    _write_clusters(ws, CLUSTERS)
    assert cli("propagate", "-w", embedded_workspace, "--labelmap", lm, "-q").exit_code == 0
    labels = ws.path("post_labels.parquet").read_bytes()
    _write_clusters(ws, {0: ["코랄"], 1: ["펌", "염색", "헤어"], 2: ["네일", "젤네일"]})
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", lm, "-q")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"Error: {lm}: the clusters it names changed since it was "
                                 "reviewed ('lips' cluster 0: 4 of its 5 reviewed words")
    assert res.stderr.count("\n") == 1
    assert ws.path("post_labels.parquet").read_bytes() == labels  # nothing relabelled


# the same map, as saved from a draft: it records what each cluster id meant
RECORDED = MAP + "cluster_words:\n" + "".join(
    f"  {c}: [{', '.join(ws_)}]\n" for c, ws_ in CLUSTERS.items()) + "  8: [주말, 여름]\n"
# another clustering of the same words: ids reshuffled, lips' words split in two
RESHUFFLED = {7: CLUSTERS[2], 3: ["립스틱", "틴트", "입술"], 4: ["립밤", "코랄", "여름"],
              1: ["주말"], 5: CLUSTERS[1]}


def test_a_map_reviewed_on_another_clustering_keeps_its_seeds(
        embedded_workspace: Path, write_labelmap: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    """First use in a workspace clustered otherwise: the map's recorded words are the
    pin, so every seed keeps the label it had on the clustering the map was reviewed on."""
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(RECORDED)
    assert load_labelmap(lm).cluster_words[8] == ("주말", "여름")
    cfg = _with_map(Config(propagate=PropagateConfig(k=5)), lm)
    _write_clusters(ws, CLUSTERS)  # the clustering it was reviewed on: pinned as it is
    first = run_propagate(ws, cfg)
    assert first.summary.cluster_drift == ()
    before = pd.read_parquet(ws.path("post_labels.parquet"))
    # a teammate's fresh workspace, clustered at another K: no pin yet
    ws.path("labelmap.pin.json").unlink()
    _write_clusters(ws, RESHUFFLED)
    with caplog.at_level(logging.WARNING):
        second = run_propagate(ws, cfg)
    # a person who edited the ids against this clustering learns how to say so
    assert any("copy cluster_words from" in r.getMessage()
               and "labelmap.draft.yaml" in r.getMessage() for r in caplog.records)
    assert second.summary.cluster_drift == (
        "lips: reviewed on another clustering, its clusters found by their recorded words "
        "(0 → 3)",
        "hair: reviewed on another clustering, its clusters found by their recorded words "
        "(1 → 5)",
        "nails: reviewed on another clustering, its clusters found by their recorded words "
        "(2 → 7)")
    # the pin is the map's words; 여름 is recorded under unlabelled cluster 8, so it does
    # not join lips although its new cluster is mostly lips words
    pin = json.loads(ws.path("labelmap.pin.json").read_text("utf-8"))["clusters"]
    assert pin == {str(c): sorted(w) for c, w in CLUSTERS.items()}
    after = pd.read_parquet(ws.path("post_labels.parquet"))
    seeded = before["source"] == "seed"
    assert seeded.sum() > 0
    assert (after.loc[seeded, "label"] == before.loc[seeded, "label"]).all()
    assert (after["source"] == "seed").sum() == seeded.sum()


def test_a_map_whose_recorded_words_are_gone_exits_3(
        cli: Any, embedded_workspace: Path, write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(RECORDED)
    # first use, on a vocabulary without most of lips' words (another user dictionary)
    _write_clusters(ws, {0: ["립스틱추천", "코랄"], 1: CLUSTERS[1], 2: CLUSTERS[2]})
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", lm, "-q")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"Error: {lm}: the clusters it names changed since it was "
                                 "reviewed ('lips' cluster 0: 4 of its 5 reviewed words")
    assert res.stderr.count("\n") == 1
    assert not ws.path("post_labels.parquet").exists()
    assert not ws.path("labelmap.pin.json").exists()


def test_an_old_map_without_words_runs_and_warns(
        embedded_workspace: Path, write_labelmap: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(MAP)
    _write_clusters(ws, RESHUFFLED | {0: ["데일리"], 2: ["출근"]})
    with caplog.at_level(logging.WARNING, logger="weaklabel.labels.drift"):
        out = run_propagate(ws, _with_map(Config(propagate=PropagateConfig(k=5)), lm))
    assert out.summary.cluster_drift == ()  # nothing to compare: pinned as it is
    warned = [r.getMessage() for r in caplog.records if "cluster_words" in r.getMessage()]
    assert warned == [f"{lm}: records no cluster_words, so it cannot be checked against "
                      "this clustering (a cluster id means its cluster only in the run the "
                      "map was reviewed on); copy that run's cluster_words from its "
                      "labelmap.draft.yaml into the map"]
    pin = json.loads(ws.path("labelmap.pin.json").read_text("utf-8"))["clusters"]
    assert pin == {"0": ["데일리"], "1": ["주말"], "2": ["출근"]}


def test_first_pin_keeps_a_map_on_its_own_clustering(write_labelmap: Any) -> None:
    lm = load_labelmap(write_labelmap(RECORDED))
    # the same ids, each still holding at least half its recorded words: pinned as now
    same = {0: ["립스틱", "틴트", "입술", "글로스"], 1: ["염색", "미용실"],
            2: ["젤네일", "매니큐어", "네일"], 3: ["립밤", "코랄", "헤어", "펌"]}
    assert first_pin(lm, same) == (None, [])
    # hair keeps only 1 of its 4 words under id 1: the map's words become the pin
    moved = {**same, 1: ["염색"], 4: ["미용실", "헤어", "펌"], 3: ["립밤", "코랄"]}
    pin, lines = first_pin(lm, moved)
    assert pin == {c: list(ws_) for c, ws_ in CLUSTERS.items()}
    assert lines == ["hair: reviewed on another clustering, its clusters found by their "
                     "recorded words (1 → 4)"]


def test_a_long_drift_names_two_labels_and_counts_the_rest() -> None:
    from weaklabel.labels.propagate import PropagateSummary

    lines = tuple(f"label{i}: reviewed on another clustering, its clusters found by their "
                  f"recorded words ({i} → {i + 10})" for i in range(6))
    base: dict[str, Any] = dict(posts=10, seed=5, knn=4, abstain=1, reviewed=0, coverage=0.9,
                keyword_coverage=0.5, images=10, labelled_images=9, cv_accuracy=None)
    text = PropagateSummary(**base, cluster_drift=lines).text()
    assert lines[0] in text and lines[1] in text and lines[2] not in text
    assert "… 4 more label(s), all in post_labels.parquet.meta.json" in text
    short = PropagateSummary(**base, cluster_drift=lines[:3]).text()
    assert all(line in short for line in lines[:3]) and "more label(s)" not in short
