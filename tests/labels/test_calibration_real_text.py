"""Confidence that means probability, on real Korean text (issue 12).

4,000 real chatbot questions (tests/data/chatbot_sample.csv) with three gold topics, the
five keywords a topic of bench/chatbot/seed_keywords.yaml, and 2,000 petition titles
(tests/data/petition_sample.csv) with 16 author-chosen categories and their keywords as
given; the label map is the keyword-seeded draft. Gold is only scored.

One number decides: the confidence written is the one the keep rule compares, so at the
default (one expected-macro-F1 threshold for every label) a propagated label is kept
exactly when its confidence reaches it, and ``--min-confidence`` / a target precision
keep exactly the labels at or above their cut. On the chatbot questions the precision
propagate estimates for what it keeps (no gold involved) must be near the measured one,
and what a cut keeps must be markedly more often right than what it abstains on. The
bounds leave room for numeric noise across machines, not for an estimator that is off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.contracts import ABSTAIN

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data"  # a bundled sample: CI has no ../shared


def _scored(prop: Any, gold: pd.DataFrame) -> dict[str, np.ndarray]:
    df = prop.labels.merge(gold, on="post_id")
    fixed = (df["source"].isin(["seed", "reviewed"]) & (df["label"] != ABSTAIN)).to_numpy()
    pred = np.where(df["label"] != ABSTAIN, df["label"], df["top_label"])
    return {"conf": df["confidence"].to_numpy(dtype=float), "fixed": fixed,
            "cand": ~fixed & (df["top_label"] != ABSTAIN).to_numpy(),
            "kept": (df["label"] != ABSTAIN).to_numpy(),
            "top": df["top_label"].to_numpy(), "right": pred == df["gold"].to_numpy()}


def _one_number_decides(prop: Any, s: dict[str, np.ndarray]) -> None:
    """The default keeps a propagated label exactly when its written confidence reaches
    the one expected-macro-F1 threshold, the same for every label: every kept label is at
    least as confident as every abstained one."""
    est = prop.estimates
    assert est["rule"] == "expected_macro_f1"
    thr = est["thresholds"]
    assert set(thr) == set(prop.classes) and len(set(thr.values())) == 1
    assert est["threshold"] == pytest.approx(min(thr.values()))
    cand, kept, conf = s["cand"], s["kept"], s["conf"]
    assert (kept[cand] == (conf[cand] >= est["threshold"] - 1e-9)).all()
    if (cand & ~kept).any():
        assert conf[cand & kept].min() >= conf[cand & ~kept].max()
    assert est["estimated_precision"] == pytest.approx(conf[kept].mean(), abs=1e-3)


def _kept_at(s: dict[str, np.ndarray], cut: float) -> np.ndarray:
    return s["fixed"] | (s["cand"] & (s["conf"] >= cut - 1e-9))


@pytest.mark.jvm
@pytest.mark.slow
def test_estimated_precision_is_near_the_measured_one_on_real_text(
        chatbot_draft: Any) -> None:
    from weaklabel.labels.propagate import label_posts, pick_threshold

    ws, cfg, labelmap, gold = chatbot_draft
    prop, _ = label_posts(ws, labelmap, cfg)
    est = prop.estimates
    assert est["calibration_seeds"] >= 100 and est["seed_precision"]  # it calibrated
    s = _scored(prop, gold[["post_id", "gold"]])
    conf, right, kept, cand = s["conf"], s["right"], s["kept"], s["cand"]
    _one_number_decides(prop, s)
    # the default: what propagate wrote, estimated without gold. Agreement with the
    # held-out seeds (uncorrected) understates precision where seeds are wrong and the
    # label right; the correction for seed noise assumes two wrong labels agree by
    # chance, so it overstates where the sources follow the keywords' reading of a
    # wrong seed. On these 4,000 (bench/calib_capture.py): measured 0.54, agreement
    # 0.50, corrected 0.59; with the char-only classifier the corrected ran 0.15 high.
    measured = right[kept].mean()
    assert abs(est["estimated_agreement"] - measured) <= 0.06
    assert est["estimated_precision"] > est["estimated_agreement"]  # seeds are noisy here
    assert abs(est["estimated_precision"] - measured) <= 0.08
    # a fixed cut (--min-confidence X keeps these: the same confidences) abstains on
    # labels markedly less often right than those it keeps; X at the propagated labels'
    # lower quartile (on these 4,000 every one of them is at 0.5 or more)
    half = _kept_at(s, float(np.quantile(conf[cand], 0.25)))
    left = cand & ~half
    assert left.sum() >= 100 and right[half].mean() > right[left].mean() + 0.1
    # precision mode: the threshold each target picks, as propagate picks it
    coverage, measured = [], []
    for target in (0.8, 0.9):
        thr = pick_threshold(conf[s["fixed"]].tolist(), conf[cand].tolist(), target=target)
        k = _kept_at(s, thr)
        assert conf[k].mean() >= min(target, conf[s["fixed"] | cand].mean()) - 1e-6
        left = cand & ~k
        assert left.sum() >= 50 and right[k].mean() > right[left].mean() + 0.1, target
        # what the mode promises is what it keeps (measured 0.709 for 0.697 estimated)
        assert abs(conf[k].mean() - right[k].mean()) <= 0.04, target
        coverage.append(k.mean())
        measured.append(right[k].mean())
    assert coverage[0] >= coverage[1] and measured[0] <= measured[1] + 0.01
    # the more confident propagated labels are the more often right
    hi = cand & (conf >= np.median(conf[cand]))
    lo = cand & ~hi
    assert right[hi].mean() > right[lo].mean() + 0.05


@pytest.mark.jvm
@pytest.mark.slow
def test_one_number_decides_on_noisy_petition_titles(tmp_path: Path,
                                                     draft_workspace: Any) -> None:
    """16 noisy categories, too few held-out seeds to calibrate (71 for 16 labels): the
    fallback, the seeds+KNN blend's own confidence, under the same rule and the same
    number, still ranks. (The estimate is not held to the authors' categories here:
    their keywords and their choice disagree on nearly half the seeds; README,
    "Calibration".)"""
    from weaklabel.labels.propagate import label_posts

    df = pd.read_csv(DATA / "petition_sample.csv", dtype=str)
    data = tmp_path / "petitions.csv"
    df.to_csv(data, index=False)
    gold = df.rename(columns={"id": "post_id", "label": "gold"})[["post_id", "gold"]]
    ws, cfg, labelmap = draft_workspace(data, ROOT / "bench/petitions/config.yaml",
                                        DATA / "petition_keywords.yaml")
    ids = labelmap.id_of()
    gold["gold"] = gold["gold"].map(lambda g: ids.get(g, g))
    prop, _ = label_posts(ws, labelmap, cfg)
    assert "fewer than" in prop.estimates["default_choice"]  # the fallback, uncalibrated
    assert "calibration_seeds" not in prop.estimates
    s = _scored(prop, gold)
    _one_number_decides(prop, s)
    conf, right, kept, cand = s["conf"], s["right"], s["kept"], s["cand"]
    assert conf.min() >= 0.0 and conf.max() <= 1.0
    # the default abstains, on titles less often right than those it keeps (one cut:
    # 0.272 / 0.190 on these 2,000; each label's own cut kept 0.265 and abstained on
    # 0.340: the 16 cuts, on an uncalibrated confidence, did not rank)
    left = cand & ~kept
    assert left.sum() >= 10 and right[kept].mean() > right[left].mean() + 0.03
    # the fallback's confidence ranks: the more confident half of the propagated titles
    # is the more often right (0.248 against 0.190)
    hi = cand & (conf >= np.median(conf[cand]))
    assert right[hi].mean() > right[cand & ~hi].mean() + 0.03
    # a fixed cut over 16 labels abstains more, and what it keeps is the more often right
    k = _kept_at(s, 0.5)
    left = cand & ~k
    assert left.sum() >= 50 and right[k].mean() > right[left].mean() + 0.1
    # each label's own cut, on request: 16 cuts, each label kept exactly at its own
    from weaklabel.config import with_overrides

    per, _ = label_posts(ws, labelmap, with_overrides(cfg, {
        "propagate.threshold_scope": "per_label"}))
    pe, ps = per.estimates, _scored(per, gold)
    assert pe["rule"] == "expected_f1" and len(set(pe["thresholds"].values())) > 1
    cut = np.array([pe["thresholds"].get(t, 2.0) for t in ps["top"]])
    assert (ps["kept"][ps["cand"]] == (ps["conf"] >= cut - 1e-9)[ps["cand"]]).all()
