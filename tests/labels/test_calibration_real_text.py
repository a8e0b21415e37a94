"""Confidence that means probability, on real Korean text (issue 12).

4,000 real chatbot questions (tests/data/chatbot_sample.csv) with three gold topics, the
five keywords a topic of bench/chatbot/seed_keywords.yaml and the keyword-seeded draft
as the label map. Gold is only scored: the precision propagate estimates for the labels
it keeps (no gold involved) must be near the measured one, at the default threshold and
at every target precision, and what it keeps must be more often right than what it
abstains on. On these 4,000 posts the default keeps nearly every post, so kept against
abstained is checked at the target precisions. The bounds leave room for numeric noise
across machines, not for an estimator that is off.
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


def _kept(labels: pd.DataFrame, threshold: float) -> pd.Series:
    fixed = labels["source"].isin(["seed", "reviewed"]) & (labels["label"] != ABSTAIN)
    cand = ~labels["source"].isin(["seed", "reviewed"]) & (labels["top_label"] != ABSTAIN)
    return fixed | (cand & (labels["confidence"] >= threshold - 1e-9))


@pytest.mark.jvm
@pytest.mark.slow
def test_estimated_precision_is_near_the_measured_one_on_real_text(
        draft_workspace: Any) -> None:
    from weaklabel.labels.propagate import label_posts, pick_threshold

    data = DATA / "chatbot_sample.csv"
    gold = pd.read_csv(data, dtype=str).rename(columns={"id": "post_id", "label": "gold"})
    ws, cfg, labelmap = draft_workspace(data, ROOT / "bench/chatbot/config.yaml",
                                        ROOT / "bench/chatbot/seed_keywords.yaml")
    prop, _ = label_posts(ws, labelmap, cfg)
    est = prop.estimates
    assert est["calibration_seeds"] >= 100 and est["seed_precision"]  # it calibrated
    df = prop.labels.merge(gold[["post_id", "gold"]], on="post_id")
    conf = df["confidence"].to_numpy(dtype=float)
    pred = np.where(df["label"] != ABSTAIN, df["label"], df["top_label"])
    right = pred == df["gold"].to_numpy()

    # the default threshold: what propagate wrote, and what it estimated for it
    kept = (df["label"] != ABSTAIN).to_numpy()
    assert kept.tolist() == _kept(df, est["threshold"]).tolist()
    assert est["estimated_precision"] == pytest.approx(conf[kept].mean(), abs=1e-3)
    assert abs(conf[kept].mean() - right[kept].mean()) < 0.06
    abstained = ~kept & (df["top_label"] != ABSTAIN).to_numpy()
    if abstained.sum() >= 50:  # on 4,000 posts the default keeps nearly every one
        assert right[kept].mean() > right[abstained].mean() + 0.1

    # precision mode: the threshold each target picks, as propagate picks it
    fixed = df["source"].isin(["seed", "reviewed"]).to_numpy() & kept
    cand = ~df["source"].isin(["seed", "reviewed"]).to_numpy() & \
        (df["top_label"] != ABSTAIN).to_numpy()
    coverage, measured = [], []
    for target in (0.8, 0.9):
        thr = pick_threshold(conf[fixed].tolist(), conf[cand].tolist(), target=target)
        k = _kept(df, thr).to_numpy()
        assert abs(conf[k].mean() - right[k].mean()) < 0.06, target
        left = cand & ~k  # what the target abstains on is markedly less often right
        assert left.sum() >= 50 and right[k].mean() > right[left].mean() + 0.1, target
        coverage.append(k.mean())
        measured.append(right[k].mean())
    assert coverage[0] >= coverage[1] and measured[0] <= measured[1] + 0.01
    # the more confident propagated labels are the more often right
    hi = cand & kept & (conf >= np.median(conf[cand & kept]))
    lo = cand & kept & ~hi
    assert right[hi].mean() > right[lo].mean() + 0.05
