"""Corrections flow back: sample drops rejected images, export marks reviewed ones,
the report measures precision on the random slice, build refreshes the reviewed files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from weaklabel.config import Config, with_overrides
from weaklabel.dataset.export import run_export
from weaklabel.dataset.report import run_report
from weaklabel.dataset.sample import run_sample
from weaklabel.images.purge import image_stage, run_purge
from weaklabel.review.reviewed import write_reviewed
from weaklabel.review.store import Decision, DecisionStore
from weaklabel.review.summary import cohen_kappa, summarize, wilson
from weaklabel.review.triage import in_random_slice
from weaklabel.workspace import Workspace


def cfg_for(rfx, **sample) -> Config:  # type: ignore[no-untyped-def]
    return with_overrides(Config(), {"workspace": str(rfx.ws), "labelmap": str(rfx.labelmap),
                                     **{f"sample.{k}": v for k, v in sample.items()}})


def test_sample_drops_what_a_reviewer_rejected_and_reruns_only_then(rfx) -> None:  # type: ignore[no-untyped-def]
    ws, cfg = Workspace(rfx.ws), cfg_for(rfx)
    first = run_sample(ws, cfg)
    assert first.summary.sampled == 61 and not first.up_to_date
    assert run_sample(ws, cfg).up_to_date
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("r1", "ana", "p00", "d/p00.jpg", "lips", "reject"))
        s.record(Decision("r2", "ana", "p01", "d/p01.jpg", "nails", "accept", "nails"))
    write_reviewed(rfx.ws)
    again = run_sample(ws, cfg)
    assert not again.up_to_date and again.summary.sampled == 60
    import pandas as pd

    assert "d/p00.jpg" not in set(pd.read_parquet(rfx.ws / "sample.parquet")["image"])
    write_reviewed(rfx.ws)  # nothing new decided: the sample stays up to date
    assert run_sample(ws, cfg).up_to_date


def test_export_marks_reviewed_images_human_annotated(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws, cfg = Workspace(rfx.ws), cfg_for(rfx)
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("r2", "ana", "p01", "d/p01.jpg", "nails", "accept", "nails"))
        s.record(Decision("r3", "ana", "t1", "", "nails", "accept", "nails"))
    write_reviewed(rfx.ws)
    run_purge(*image_stage(rfx.root, rfx.ws))  # export links only files the inventory checked
    run_sample(ws, cfg)
    out = tmp_path / "out"
    run_export(ws, with_overrides(cfg, {"output": str(out), "images.root": str(rfx.root)}))
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    human = {x["source-ref"].rsplit("/", 1)[-1]: x["weaklabel-metadata"]["human-annotated"]
             for x in lines}
    assert human["d_p01.jpg"] == "yes"
    assert sum(v == "yes" for v in human.values()) == 1
    with open(out / "dataset.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    flags = {r["source"]: r["human_annotated"] for r in rows}
    assert flags["d/p01.jpg"] == "yes" and flags["d/p02.jpg"] == "no"


def test_precision_comes_from_the_random_slice_only() -> None:
    items = [f"x{i}" for i in range(3000)]
    ds = []
    for seq, p in enumerate(items, start=1):
        in_slice = in_random_slice(p, "")
        right = in_slice and seq % 4 != 0  # 75 % right inside the slice
        ds.append(Decision(f"d{seq}", "ana", p, "", "lips",
                           "accept" if right else "reject",
                           "lips" if right else "", slice=in_slice, seq=seq))
    s = summarize(ds, posts=6000)
    lab = s["labels"]["lips"]
    n = sum(in_random_slice(p, "") for p in items)
    assert lab["slice_reviewed"] == n and lab["reviewed"] == 3000
    assert 0.6 < lab["precision"] < 0.9  # the reviewed rest (all rejected) does not count
    assert lab["interval"][0] < lab["precision"] < lab["interval"][1]
    assert s["reviewed_share"] == 0.5


def test_agreement_kappa() -> None:
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "a"]) == 0.5
    assert cohen_kappa([], []) is None
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi
    ds = [Decision("1", "ana", "p1", "", "lips", "accept", "lips", seq=1),
          Decision("2", "ben", "p1", "", "lips", "accept", "lips", seq=2),
          Decision("3", "ana", "p2", "", "lips", "reject", seq=3),
          Decision("4", "ben", "p2", "", "lips", "accept", "lips", seq=4)]
    s = summarize(ds)
    assert s["double_reviewed"] == 2 and s["labels"]["lips"]["kappa"] == 0.0


def test_report_shows_the_review_section(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws, cfg = Workspace(rfx.ws), cfg_for(rfx)
    out = tmp_path / "r.html"
    run_report(ws, with_overrides(cfg, {"report.output": str(out)}))
    assert "nobody has reviewed labels yet" in out.read_text(encoding="utf-8")
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("r2", "ana", "p01", "d/p01.jpg", "nails", "accept", "nails"))
    run_report(ws, with_overrides(cfg, {"report.output": str(out)}))
    page = out.read_text(encoding="utf-8")
    assert 'id="review"' in page and "1 standing decisions by 1 reviewer(s) on 1 posts" in page
    assert "(1.6% of posts)" in page
