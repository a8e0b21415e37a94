"""The growth scenario: a day of posts appended, the same reviewed label map, a rebuild.

The bundled generator makes the first corpus and the new day (another seed, its own post
ids); Okt, Word2Vec and KMeans re-run on the grown corpus, so cluster ids change. The
reviewed map must keep at least 90 % of the earlier seeds with the same label, or the
build must stop with exit 3 naming the label map (issue 12).
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from weaklabel.config import load_config, with_overrides
from weaklabel.errors import ReviewNeeded
from weaklabel.pipeline import run_build

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # examples/ is not a package
    spec = importlib.util.spec_from_file_location("generate", ROOT / "examples/generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.jvm
@pytest.mark.slow
def test_a_grown_corpus_keeps_the_reviewed_map_or_stops(tmp_path: Path) -> None:
    gen = _generator()
    gen.generate(tmp_path / "day1", posts=600, seed=7, images=False)
    gen.generate(tmp_path / "day2", posts=150, seed=11, images=False)
    posts = tmp_path / "posts.csv"
    rows = list(csv.DictReader((tmp_path / "day1/posts.csv").open(encoding="utf-8")))
    header = list(rows[0])
    with posts.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(rows)
    base = load_config(ROOT / "configs/example.yaml")
    # with_overrides ignores None, so the example's image roots, gold file and output are
    # cleared here: this corpus has no images and no gold (and examples/data may not exist)
    base = replace(base, gold=None, output=None,
                   posts=replace(base.posts, image_root=None),
                   images=replace(base.images, root=None))
    cfg = with_overrides(base, {
        "workspace": str(tmp_path / "ws"), "posts.path": str(posts),
        "labelmap": str(tmp_path / "labelmap.yaml"), "cluster.k": 12,
        "seed_keywords": str(ROOT / "examples/seed_keywords.yaml"),
        "tokenize.userdict": str(ROOT / "userdict"), "tokenize.workers": 1})
    first = run_build(cfg, progress=False)
    assert first.stopped  # no label map yet: the person reviews the draft
    (tmp_path / "labelmap.yaml").write_text(
        (tmp_path / "ws/labelmap.draft.yaml").read_text("utf-8"), "utf-8")
    assert run_build(cfg, progress=False).stopped is None
    before = pd.read_parquet(tmp_path / "ws/post_labels.parquet")
    # the next day arrives: its posts are appended under new ids
    new = list(csv.DictReader((tmp_path / "day2/posts.csv").open(encoding="utf-8")))
    with posts.open("a", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, header)
        for r in new:
            w.writerow({**r, "post_id": "n" + r["post_id"][1:]})
    try:
        grown = run_build(cfg, progress=False)
    except ReviewNeeded as exc:  # the meaning could not be kept: the map is named
        assert str(tmp_path / "labelmap.yaml") in str(exc)
        return
    assert grown.stopped is None
    cluster = next(r for r in grown.stages if r.stage == "cluster")
    assert not cluster.up_to_date  # the clusters really were made again
    after = pd.read_parquet(tmp_path / "ws/post_labels.parquet").set_index("post_id")
    seeds = before[before["source"] == "seed"].set_index("post_id")
    kept = (after.loc[seeds.index, "label"] == seeds["label"]).mean()
    assert kept >= 0.9
