"""``weaklabel build`` refreshes the reviewed artifacts before propagate, and a build
whose decisions did not change finds the later stages up to date."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.config import load_config
from weaklabel.pipeline import build_all
from weaklabel.review.store import Decision, DecisionStore


@pytest.mark.jvm
@pytest.mark.slow
def test_build_materialises_decisions(tmp_path: Path, corpus: list[dict[str, Any]],  # type: ignore[no-untyped-def]
                                      keyword_labelmap: Path) -> None:
    posts = tmp_path / "posts.csv"
    with open(posts, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "caption", "images", "likes", "comments"])
        for i, r in enumerate(corpus):
            w.writerow([r["post_id"], r["caption"], f"d/{r['post_id']}.jpg", i % 50, i % 7])
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(
        f"workspace: {tmp_path / 'ws'}\nlabelmap: {keyword_labelmap}\n"
        f"posts:\n  path: {posts}\ntokenize:\n  workers: 1\n"
        "embed:\n  vector_size: 24\n  epochs: 5\n  min_count: 2\ncluster:\n  k: 6\n",
        encoding="utf-8")
    cfg = load_config(cfg_path)
    first = build_all(cfg, progress=False)
    assert first.stopped is None
    assert "reviewed" not in [r.stage for r in first.stages]  # nobody reviewed: no step
    ws = tmp_path / "ws"
    pid = corpus[0]["post_id"]
    sampled = pd.read_parquet(ws / "sample.parquet")
    assert sampled.loc[sampled["image"] == f"d/{pid}.jpg", "label"].tolist() == ["lips"]
    with DecisionStore.open(ws) as s:
        s.record(Decision("d1", "ana", pid, f"d/{pid}.jpg", "lips", "reject"))
        s.record(Decision("d2", "ana", corpus[1]["post_id"], "", "lips", "relabel", "hair"))
    second = build_all(cfg, progress=False)
    stages = {r.stage: r for r in second.stages}
    assert not stages["reviewed"].up_to_date and stages["reviewed"].summary.posts == 1
    assert list(stages)[list(stages).index("reviewed") + 1] == "propagate"
    assert pd.read_parquet(ws / "reviewed_labels.parquet").to_dict(orient="records") == [
        {"post_id": corpus[1]["post_id"], "label": "hair", "shown": "lips"}]
    assert not stages["sample"].up_to_date  # a rejected image: the sample is redone
    assert f"d/{pid}.jpg" not in set(pd.read_parquet(ws / "sample.parquet")["image"])
    third = build_all(cfg, progress=False)
    again = {r.stage: r for r in third.stages}
    assert all(again[s].up_to_date for s in ("reviewed", "sample", "propagate"))
