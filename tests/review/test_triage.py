"""The review queue: likely-wrong first, a stable random slice, decided items left out."""

from __future__ import annotations

import pandas as pd

from weaklabel.review.store import Decision, DecisionStore
from weaklabel.review.triage import (
    RANDOM_WHY,
    build_queue,
    in_random_slice,
    keyword_hits,
    knn_votes,
    run_queue,
)
from weaklabel.workspace import Workspace


def test_evidence_parsers() -> None:
    assert knn_votes("knn lips:0.60 nails:0.30 | nails: 네일") == [("lips", 0.6), ("nails", 0.3)]
    assert knn_votes("lips: 립스틱") == []
    assert keyword_hits("knn lips:0.60 | tie: lips: 립스틱; nails: 네일") == ["lips", "nails"]
    assert keyword_hits("lips: 립스틱,틴트") == ["lips"]


def test_queue_puts_disagreement_and_low_confidence_first(rfx) -> None:  # type: ignore[no-untyped-def]
    q = run_queue(Workspace(rfx.ws), random_rate=0.0)
    assert list(q.columns[:5]) == ["post_id", "image", "label", "confidence", "why"]
    # labels take turns, each in suspicion order: lips (k1: keywords disagree), then nails
    # (t2: abstained, no label yet, so any answer adds one)
    assert q.loc[0, "post_id"] == "k1" and "keywords say nails" in q.loc[0, "why"]
    assert q.loc[1, "post_id"] == "t2"
    assert q["label"].head(20).tolist() == ["lips", "nails"] * 10
    assert not q["random"].any()
    # t2 abstained: queued with its best guess; t1 has no image: a text item
    t2 = q[q["post_id"] == "t2"].iloc[0]
    assert t2["label"] == "nails" and "abstained" in t2["why"]
    t1 = q[q["post_id"] == "t1"].iloc[0]
    assert t1["image"] == "" and t1["caption"] == "네일 글만"
    # among the plain posts, lower confidence comes first
    plain = q[q["post_id"].str.startswith("p")]
    for _, g in plain.groupby("label"):
        assert g["confidence"].is_monotonic_increasing
    assert len(q) == 63


def test_random_slice_is_stable_and_spread_through_the_queue() -> None:
    n = 4000
    pl = pd.DataFrame({"post_id": [f"x{i}" for i in range(n)],
                       "label": ["a" if i % 3 else "b" for i in range(n)],
                       "confidence": [(i % 97) / 97 for i in range(n)],
                       "source": "knn", "evidence": "", "top_label": ""})
    q1 = build_queue(pl)
    q2 = build_queue(pl.sample(frac=1.0, random_state=1))  # row order does not matter
    assert q1.equals(q2)
    rnd = q1[q1["random"]]
    assert 0.035 < len(rnd) / n < 0.065
    assert set(rnd["why"]) == {RANDOM_WHY}
    assert all(in_random_slice(p, "") for p in rnd["post_id"])
    for lab in ("a", "b"):  # each label gets its share
        share = (rnd["label"] == lab).sum() / (pl["label"] == lab).sum()
        assert 0.03 < share < 0.07
    first = q1.head(400)  # a reviewer who stops early has still seen random items
    assert 12 <= int(first["random"].sum()) <= 28


def test_decided_items_leave_the_queue(rfx, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(rfx.ws)
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("d1", "ana", "k1", "d/k1.jpg", "lips", "accept", "lips"))
    out = tmp_path / "queue.csv"
    q = run_queue(ws, limit=10, output=out)
    assert "k1" not in set(q["post_id"]) and len(q) == 10
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "post_id,image,label,confidence,why"
    assert len(text.splitlines()) == 11
    run_queue(ws, limit=10, output=tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == out.read_bytes()
    assert len(run_queue(ws, include_decided=True)) == 63


def test_weak_keyword_hits_vote_for_or_against_the_label() -> None:
    from weaklabel.review.triage import suspicion

    row = {"label": "lips", "confidence": 0.6, "top_label": "lips"}
    against, why = suspicion({**row, "evidence": "knn lips:0.60 nails:0.40 | tie: nails: 네일"},
                             keyword_label=None, conflict=False)
    agree, why2 = suspicion({**row, "evidence": "knn lips:0.60 nails:0.40 | tie: lips: 립밤"},
                            keyword_label=None, conflict=False)
    split, why3 = suspicion({**row, "evidence": "knn lips:0.60 nails:0.40 | tie: lips: 립밤; "
                                                 "nails: 네일"}, keyword_label=None,
                            conflict=False)
    assert "keywords point to nails" in why and not any("keywords" in w for w in why2)
    assert "keywords of lips, nails" in why3
    assert against > split > agree
