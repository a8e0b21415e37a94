"""Labelling sources, combiners, calibration, reviewed labels and the target precision."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import Config, PropagateConfig
from weaklabel.contracts import ABSTAIN, POST_LABELS, REVIEWED_LABELS
from weaklabel.errors import WeaklabelError
from weaklabel.labels.propagate import (
    calibrate_confidence,
    compound_words,
    mask_words,
    pick_threshold,
    propagate_labels,
    run_propagate,
)
from weaklabel.labels.sources import (
    COMBINERS,
    SOURCES,
    combine_vote,
    fit_label_model,
    get_combiner,
    get_source,
)
from weaklabel.workspace import Workspace, write_parquet

KEYWORDS = {"립스틱": {"lips": 1.0}, "틴트": {"lips": 1.0}, "염색": {"hair": 1.0},
            "미용실": {"hair": 1.0}, "젤네일": {"nails": 1.0}, "매니큐어": {"nails": 1.0}}


def _with_map(cfg: Config, labelmap: Path | None) -> Config:
    """``cfg`` naming ``labelmap`` (run_propagate reads the map from the config)."""
    import dataclasses

    return dataclasses.replace(cfg, labelmap=None if labelmap is None else str(labelmap))


def test_registries_name_the_valid_choices_on_a_typo() -> None:
    assert set(SOURCES) == {"keyword", "knn", "prototype", "classifier"}
    assert get_source("knn").name == "knn"
    with pytest.raises(WeaklabelError, match="unknown labelling source 'knnn'; valid: keyword, "
                                             "knn, prototype, classifier"):
        get_source("knnn")
    with pytest.raises(WeaklabelError, match="unknown combiner 'mean'; valid: auto, blend"):
        get_combiner("mean")


def test_propagate_rejects_a_source_typo_before_any_work(kv: Any) -> None:
    with pytest.raises(WeaklabelError, match="unknown labelling source 'clasifier'"):
        propagate_labels(["a"], [["립스틱"]], kv, KEYWORDS,
                         cfg=PropagateConfig(sources=("keyword", "clasifier")))


def test_majority_vote_and_label_model_on_known_votes() -> None:
    # three sources over 3 classes: the first is always right, the others right 2 in 3
    truth = np.array([0, 1, 2] * 20)
    eye = np.eye(3)
    good = eye[truth]
    noisy = eye[np.where(np.arange(60) % 3 == 0, (truth + 1) % 3, truth)]
    noisy2 = eye[np.where(np.arange(60) % 3 == 1, (truth + 2) % 3, truth)]
    votes = {"a": good, "b": noisy, "c": noisy2}
    maj = combine_vote(votes, PropagateConfig())
    assert (maj.argmax(axis=1) == truth).mean() == 1.0  # two of three always agree
    post, acc = fit_label_model(votes)
    assert (post.argmax(axis=1) == truth).all()
    assert acc["a"] > acc["b"] and acc["a"] > acc["c"]
    assert abs(acc["b"] - 2 / 3) < 0.1
    none = {"a": np.zeros((2, 3)), "b": np.zeros((2, 3))}
    assert not fit_label_model(none)[0].any()  # nobody votes: no posterior
    for name in COMBINERS:  # every combiner returns rows that sum to 1 or 0
        out = get_combiner(name)({"knn": good, "prototype": noisy, "classifier": noisy2},
                                 PropagateConfig())
        assert np.allclose(out.sum(axis=1), 1.0)


def test_compounds_count_for_their_keyword() -> None:
    words = {"스커트": {"skirt": 1.0}, "nike": {"shoes": 1.0}, "립": {"lips": 1.0},
             "코디": {"skirt": 0.5}}
    vocab = ["미니스커트", "스커트추천", "nikeair", "airnike", "립밤", "코디북", "스커트"]
    out = compound_words(words, vocab)
    assert out["미니스커트"] == {"skirt": 1.0} and out["스커트추천"] == {"skirt": 1.0}
    assert out["nikeair"] == {"shoes": 1.0}
    assert "airnike" not in out  # a Latin keyword must start the token
    assert "립밤" not in out  # one syllable is too short to trust
    assert "코디북" not in out  # only full-weight keywords reach into compounds
    assert out["스커트"] == {"skirt": 1.0}


def test_mask_words_and_pick_threshold() -> None:
    assert mask_words("립스틱 틴트 립스틱추천", ["립스틱", "립스틱추천"]).split() == ["틴트"]
    assert pick_threshold([1.0], [0.9, 0.5, 0.2], target=0.8) == 0.5
    assert pick_threshold([0.5], [0.6, 0.55], target=0.9) == 0.6  # the most precise
    assert pick_threshold([0.9], [0.6, 0.55], target=0.95) > 0.6  # the seeds alone
    assert pick_threshold([], [0.99, 0.97], target=0.95) == 0.97


def test_calibration_is_monotone_and_fits_what_it_saw() -> None:
    raw = np.linspace(0.3, 1.0, 200)
    truth = (np.random.default_rng(0).random(200) < raw * 0.8).astype(float)
    f = calibrate_confidence(raw, truth)
    out = f(np.array([0.3, 0.6, 1.0]))
    assert out[0] <= out[1] <= out[2] and out[2] < 0.95  # a raw 1.0 is right ~0.8 of the time
    assert abs(float(f(raw).mean()) - truth.mean()) < 0.01


def _reviewed(ws: Workspace, rows: dict[str, str]) -> None:
    write_parquet(pd.DataFrame({"post_id": list(rows), "label": list(rows.values())}),
                  ws.path("reviewed_labels.parquet"), REVIEWED_LABELS)


def test_reviewed_labels_override_every_source(
        embedded_workspace: Path, keyword_labelmap: Path) -> None:
    ws = Workspace(embedded_workspace)
    cfg = Config(propagate=PropagateConfig(k=5))
    first = run_propagate(ws, _with_map(cfg, keyword_labelmap))
    before = pd.read_parquet(ws.path("post_labels.parquet")).set_index("post_id")
    seed_post = before.index[before["source"] == "seed"][0]  # a lips/hair/nails seed
    other = "hair" if before.loc[seed_post, "label"] != "hair" else "lips"
    _reviewed(ws, {seed_post: other, "nails0003": ABSTAIN})
    second = run_propagate(ws, _with_map(cfg, keyword_labelmap))
    assert not second.up_to_date  # the review is an input: propagate ran again
    assert first.summary.reviewed == 0 and second.summary.reviewed == 2
    after = pd.read_parquet(ws.path("post_labels.parquet")).set_index("post_id")
    assert after.columns.tolist() == POST_LABELS.names[1:]
    assert (after.loc[seed_post, "label"], after.loc[seed_post, "source"],
            after.loc[seed_post, "confidence"]) == (other, "reviewed", 1.0)
    # "none of the labels" with no background label in the map: abstain
    assert (after.loc["nails0003", "label"], after.loc["nails0003", "source"]) == \
        (ABSTAIN, "reviewed")
    assert run_propagate(ws, _with_map(cfg, keyword_labelmap)).up_to_date is True
    _reviewed(ws, {seed_post: "lipz"})
    with pytest.raises(WeaklabelError, match=r"reviewed_labels.parquet: row 1: label 'lipz' is "
                                             r"not in .*labelmap.yaml"):
        run_propagate(ws, _with_map(cfg, keyword_labelmap))


def test_every_source_alone_is_a_label_table_eval_scores(
        kv: Any, corpus: list[dict[str, Any]], tmp_path: Path,
        write_labelmap: Callable[..., Path]) -> None:
    from weaklabel.contracts import check_frame
    from weaklabel.labels.labelmap import load_labelmap
    from weaklabel.labels.sources import keyword_baseline, source_labels

    ids = [r["post_id"] for r in corpus]
    toks = [r["tokens"] for r in corpus]
    prop = propagate_labels(ids, toks, kv, KEYWORDS, cfg=PropagateConfig(k=5))
    assert set(prop.votes) == set(SOURCES) and prop.posterior is not None
    assert prop.posterior.shape == (len(ids), len(prop.classes))
    for name in SOURCES:
        alone = source_labels(prop.labels, name)
        check_frame(alone, POST_LABELS, f"{name} alone")
        assert alone["label"].tolist() == prop.labels[f"label_{name}"].tolist()
        assert ((alone["label"] == ABSTAIN) == (alone["source"] == "none")).all()
    # the keyword source votes on seeds only; the classifier on every post
    assert (source_labels(prop.labels, "keyword")["label"] != ABSTAIN).sum() == \
        (prop.labels["source"] == "seed").sum()
    assert (source_labels(prop.labels, "classifier")["label"] != ABSTAIN).all()
    with pytest.raises(WeaklabelError,
                       match="no votes of source 'knnn' in these labels; valid: keyword"):
        source_labels(prop.labels, "knnn")
    lm = load_labelmap(write_labelmap("labels:\n  lips:\n    keywords: [립스틱, 틴트]\n"
                                      "  hair:\n    keywords: [염색]\n"))
    base = keyword_baseline(ids, toks, lm, margin=1.0)
    check_frame(base, POST_LABELS, "keywords alone")
    hit = [i for i, t in enumerate(toks) if ("립스틱" in t or "틴트" in t) and "염색" not in t]
    assert hit and (base["label"].iloc[hit] == "lips").all()
    assert set(base["label"]) == {"lips", "hair", ABSTAIN}  # nails has no keyword here


def test_reviewed_none_becomes_the_background_label(
        kv: Any, corpus: list[dict[str, Any]]) -> None:
    ids = [r["post_id"] for r in corpus]
    prop = propagate_labels(ids, [r["tokens"] for r in corpus], kv, KEYWORDS,
                            cfg=PropagateConfig(k=5), reviewed={ids[0]: ABSTAIN},
                            background="nails")
    row = prop.labels.iloc[0]
    assert (row["label"], row["source"], row["confidence"]) == ("nails", "reviewed", 1.0)


def test_target_precision_trades_coverage_for_estimated_precision(
        kv: Any, corpus: list[dict[str, Any]]) -> None:
    ids = [r["post_id"] for r in corpus]
    # a noisy corpus: every third post's words are shuffled across topics
    rng = np.random.default_rng(1)
    toks = [list(r["tokens"]) for r in corpus]
    pool = [w for t in toks for w in t]
    for i in range(0, len(toks), 3):
        toks[i] = [pool[j] for j in rng.integers(0, len(pool), len(toks[i]))]
    loose = propagate_labels(ids, toks, kv, KEYWORDS, cfg=PropagateConfig(k=5,
                                                                         min_confidence=0.0))
    strict = propagate_labels(ids, toks, kv, KEYWORDS,
                              cfg=PropagateConfig(k=5, target_precision=0.97))
    e_loose, e_strict = loose.estimates, strict.estimates
    kept = strict.labels[strict.labels["source"] == "knn"]
    # the kept labels reach the target, or (seeds are never dropped) the threshold keeps
    # the most precise labels there are: more precise than keeping them all
    assert e_strict["estimated_precision"] >= min(0.97, e_loose["estimated_precision"])
    assert e_strict["coverage"] <= e_loose["coverage"]
    assert e_strict["threshold"] >= e_loose["threshold"]
    assert (kept["confidence"] >= e_strict["threshold"] - 1e-6).all()
    mid = propagate_labels(ids, toks, kv, KEYWORDS, cfg=PropagateConfig(k=5,
                                                                        target_precision=0.8))
    assert mid.estimates["estimated_precision"] >= 0.8 - 1e-6
    assert (mid.labels["source"] == "knn").any()
    # the same inputs give the same labels, byte for byte
    again = propagate_labels(ids, toks, kv, KEYWORDS,
                             cfg=PropagateConfig(k=5, target_precision=0.97))
    pd.testing.assert_frame_equal(again.labels, strict.labels)


def test_eval_reports_calibration(tmp_path: Path, write_labelmap: Callable[..., Path]) -> None:
    from weaklabel.labels.evaluate import calibration, evaluate, format_report

    cal = calibration(["a", "a", "b", ""], ["a", "b", "b", "a"], [0.95, 0.95, 0.55, 0.0])
    assert cal["ece"] == 0.45
    assert [b["posts"] for b in cal["bins"]] == [1, 2]
    labels = pd.DataFrame({"post_id": ["1", "2", "3"], "label": ["x", "y", ""],
                           "confidence": [0.9, 0.6, 0.0], "source": ["seed", "knn", "none"],
                           "evidence": [""] * 3, "top_label": ["x", "y", "x"]})
    gold = pd.DataFrame({"post_id": ["1", "2", "3"], "label": ["X/1", "y", "X/1"]})
    m = evaluate(labels, gold, names={"X/1": "x", "x": "x", "y": "y"})
    assert m["accuracy"] == 1.0 and m["calibration"]["ece"] == pytest.approx(0.25)
    assert "reliability (kept labels; ECE 0.250)" in format_report(m)
