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
    write_queue,
)
from weaklabel.workspace import Workspace


def test_evidence_parsers() -> None:
    assert knn_votes("knn lips:0.60 nails:0.30 | nails: 네일") == [("lips", 0.6), ("nails", 0.3)]
    assert knn_votes("lips: 립스틱") == []
    assert keyword_hits("knn lips:0.60 | tie: lips: 립스틱; nails: 네일") == ["lips", "nails"]
    assert keyword_hits("lips: 립스틱,틴트") == ["lips"]


def test_queue_puts_disagreement_and_low_confidence_first(rfx) -> None:  # type: ignore[no-untyped-def]
    q = write_queue(Workspace(rfx.ws), random_rate=0.0)
    assert list(q.columns[:5]) == ["post_id", "image", "label", "confidence", "why"]
    # labels take turns, each in suspicion order: lips (k1: keywords disagree), nails
    # (t2: abstained, no label yet, so any answer adds one)
    first = {lab: g.iloc[0] for lab, g in q.groupby("label")}
    assert first["lips"]["post_id"] == "k1" and "keywords say nails" in first["lips"]["why"]
    assert first["nails"]["post_id"] == "t2"
    assert set(q["label"].head(2)) == {"lips", "nails"}
    assert 8 <= (q["label"].head(20) == "lips").sum() <= 12  # two labels alike in size
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
    q = write_queue(ws, limit=10, output=out)
    assert "k1" not in set(q["post_id"]) and len(q) == 10
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "post_id,image,label,confidence,why"
    assert len(text.splitlines()) == 11
    write_queue(ws, limit=10, output=tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == out.read_bytes()
    assert len(write_queue(ws, include_decided=True)) == 63


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


def test_density_and_diversity_change_the_order() -> None:
    """Suspicion alone: a4 (least confident) first. With density and diversity: the dense
    a1 first, then a3 from another group before a1's near twin a2, the isolated a4 last."""
    pl = pd.DataFrame({"post_id": ["a1", "a2", "a3", "a4"], "label": "a",
                       "confidence": [0.2, 0.25, 0.4, 0.1], "source": "knn", "evidence": "",
                       "top_label": "a"})
    plain = build_queue(pl, random_rate=0.0)
    assert plain["post_id"].tolist() == ["a4", "a1", "a2", "a3"]
    density = {"a1": ("cluster 0", 1.0), "a2": ("cluster 0", 1.0), "a3": ("cluster 1", 1.0),
               "a4": ("post a4", 0.1)}
    q = build_queue(pl, random_rate=0.0, density=density)
    assert q["post_id"].tolist() == ["a1", "a3", "a2", "a4"]
    why = dict(zip(q["post_id"], q["why"], strict=True))
    assert "density 1.00 (cluster 0)" in why["a1"] and "item 2 of its group" in why["a2"]
    assert "density 0.10" in why["a4"] and "item" not in why["a3"]
    # without the diversity rule a2 (0.75) would come before a3 (0.6): the rule decides
    assert q.loc[1, "confidence"] > q.loc[2, "confidence"]


def test_margin_of_the_combined_label_ranks_uncertain_posts_first() -> None:
    votes = {"label_keyword": "", "label_knn": "a", "label_prototype": "a",
             "label_classifier": "a"}
    pl = pd.DataFrame([
        {"post_id": "sure", "label": "a", "confidence": 0.5, "source": "knn",
         "evidence": "blend a:0.90 b:0.10", "top_label": "a", **votes},
        {"post_id": "close", "label": "a", "confidence": 0.5, "source": "knn",
         "evidence": "blend a:0.52 b:0.48", "top_label": "a", **votes}])
    q = build_queue(pl, random_rate=0.0)
    assert q["post_id"].tolist() == ["close", "sure"]
    assert "margin 0.04 over b" in q.loc[0, "why"]
    assert knn_votes("blend a:0.52 b:0.48 | a: 말") == [("a", 0.52), ("b", 0.48)]


def test_workspace_density_from_real_vectors(rfx) -> None:  # type: ignore[no-untyped-def]
    """Real gensim vectors and word clusters in the workspace: the queue reads them; a
    post alone in its cluster has density 0, posts with many similar ones the most."""
    import numpy as np
    from gensim.models import KeyedVectors

    from weaklabel.contracts import TOKENS, WORD_CLUSTERS
    from weaklabel.review.triage import workspace_density
    from weaklabel.text.embed import save_vectors

    ws = Workspace(rfx.ws)
    pl = pd.read_parquet(rfx.ws / "post_labels.parquet")
    ids = pl["post_id"].tolist()
    # p00…p59 share 립스틱 + one of two near words; t2 alone uses 애매
    toks = [["애매"] if p == "t2" else ["립스틱", "색" if i % 2 else "빛"]
            for i, p in enumerate(ids)]
    ws.write("tokens.parquet", pd.DataFrame({"post_id": ids, "tokens": toks,
                                             "caption_hash": ids}), TOKENS)
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["립스틱", "색", "빛", "애매"],
                   np.array([[1, 0, 0], [0.9, 0.1, 0], [0.9, 0, 0.1], [0, 0, 1]], dtype=float))
    save_vectors(kv, rfx.ws / "vectors.kv")
    ws.write("word_clusters.parquet", pd.DataFrame(
        {"word": ["립스틱", "색", "빛", "애매"], "cluster": [0, 0, 0, 1], "count": 1,
         "similarity": 1.0}), WORD_CLUSTERS)
    dens = workspace_density(ws)
    assert dens is not None
    assert dens["t2"] == ("cluster 1", 0.0)
    assert max(d for _, d in dens.values()) == 1.0 and dens["p00"][0] == "cluster 0"
    assert dens["p00"][1] > 0.9
    q = write_queue(ws, random_rate=0.0)
    # t2 (abstained, isolated) no longer leads nails' turn; the dense posts do
    assert q.loc[1, "post_id"] != "t2" and "density" in q.loc[1, "why"]
    assert len(q) == 63


def test_weighted_density_counts_the_uncertain_neighbours() -> None:
    """Three posts of one cluster: a and b alike, c apart. Weighing c alone as a
    neighbour makes c's nearest (b, turned towards c) the densest; weight 1 everywhere is
    the plain density."""
    import numpy as np

    from weaklabel.review.triage import post_density

    v = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    args = (["a", "b", "c"], [["x"], ["x"], ["x"]], {"x": 0}, v, np.array([True] * 3))
    plain = post_density(*args)
    assert post_density(*args, weight=[1.0, 1.0, 1.0]) == plain
    assert max(plain, key=lambda p: plain[p][1]) == "b"
    only_c = post_density(*args, weight=[0.0, 0.0, 1.0])
    assert only_c["b"][1] == 1.0 and only_c["a"][1] == 0.0
    assert only_c["c"][1] == 0.0  # a post is never its own neighbour
