"""A reviewed label map survives a re-cluster, or the run stops with exit 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.config import Config, PropagateConfig
from weaklabel.contracts import WORD_CLUSTERS
from weaklabel.errors import ReviewNeeded
from weaklabel.labels.drift import map_clusters
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


def test_a_reclustered_corpus_keeps_the_reviewed_meaning(
        embedded_workspace: Path, write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(MAP)
    cfg = Config(propagate=PropagateConfig(k=5))
    _write_clusters(ws, CLUSTERS)
    first = run_propagate(ws, _with_map(cfg, lm))
    before = pd.read_parquet(ws.path("post_labels.parquet"))
    assert ws.path("labelmap.pin.json").is_file() and first.summary.cluster_drift == ()
    # the grown corpus re-clusters: the same topics under other ids, a new word joins
    _write_clusters(ws, {7: CLUSTERS[2], 3: [*CLUSTERS[0], "글로스"], 5: CLUSTERS[1][:3],
                         0: ["주말", "데일리"]})
    second = run_propagate(ws, _with_map(cfg, lm))
    assert not second.up_to_date
    assert sorted(second.summary.cluster_drift) == [
        "hair cluster 1 → 5 (75% of its words)", "lips cluster 0 → 3 (100% of its words)",
        "nails cluster 2 → 7 (100% of its words)"]
    after = pd.read_parquet(ws.path("post_labels.parquet"))
    seeded = before["source"] == "seed"
    same = (after.loc[seeded, "label"] == before.loc[seeded, "label"]).mean()
    assert same >= 0.9
    # a scrambled clustering cannot keep the meaning: exit 3, naming the map
    _write_clusters(ws, {0: ["립스틱", "염색", "젤네일"], 1: ["틴트", "미용실", "매니큐어"],
                         2: ["입술", "헤어", "네일", "립밤", "코랄", "펌"]})
    with pytest.raises(ReviewNeeded, match=rf"{lm}: the clusters it names changed since it "
                                           r"was reviewed \('hair' cluster 1: its words are "
                                           r"split over clusters"):
        run_propagate(ws, _with_map(cfg, lm))
    # the person reviews the map again (a new digest): it is pinned anew and runs
    lm.write_text(MAP.replace("keywords: [립스틱]", "keywords: [립스틱, 틴트]"), "utf-8")
    assert run_propagate(ws, _with_map(cfg, lm)).summary.cluster_drift == ()


def test_two_labels_landing_in_one_cluster_need_review(write_labelmap: Any) -> None:
    lm = load_labelmap(write_labelmap(MAP))
    with pytest.raises(ReviewNeeded, match="'nails' cluster 2 and 'hair' both landed in "
                                           "cluster 9"):
        map_clusters(lm, CLUSTERS, {9: CLUSTERS[1] + CLUSTERS[2], 4: CLUSTERS[0]})


def test_drift_exits_3_from_the_cli(cli: Any, embedded_workspace: Path,
                                    write_labelmap: Callable[..., Path]) -> None:
    ws = Workspace(embedded_workspace)
    lm = write_labelmap(MAP)
    _write_clusters(ws, CLUSTERS)
    assert cli("propagate", "-w", embedded_workspace, "--labelmap", lm, "-q").exit_code == 0
    _write_clusters(ws, {0: ["코랄"], 1: ["펌"], 2: ["네일"]})
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", lm, "-q")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"Error: {lm}: the clusters it names changed")
    assert res.stderr.count("\n") == 1
