"""Confident learning in the queue (``review.queue: confident`` and ``cl``): a label the
rest of the corpus does not back gets a low out-of-fold probability and comes up early.

Real text: every other bundled chatbot question (``tests/data/chatbot_sample.csv``), one
of them posted three more times verbatim, tokenised by the regex baseline, embedded,
clustered and labelled by the real stages in a workspace; the real TF-IDF and logistic
regression learn its labels.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.contracts import LABEL_SOURCES
from weaklabel.errors import WeaklabelError
from weaklabel.review.confident import label_self_confidence, out_of_fold_proba
from weaklabel.review.triage import (
    build_queue,
    load_queue_inputs,
    workspace_self_confidence,
    write_queue,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, chatbot_workspace) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    fx = chatbot_workspace(tmp_path_factory.mktemp("confident"), [(10, 3)])
    ws, rows, extra = fx["ws"], fx["rows"], fx["extra"]
    twin = rows.iloc[10].to_dict()
    return {"ws": ws, "twins": [twin["id"], *extra["id"]],
            "labels": pd.read_parquet(ws.path("post_labels.parquet"))}


def test_a_label_its_identical_twins_contradict_comes_up_early(built) -> None:  # type: ignore[no-untyped-def]
    labels, twins = built["labels"], built["twins"]
    inputs = load_queue_inputs(built["ws"])
    shown = dict(zip(labels["post_id"], labels["label"], strict=True))
    right = shown[twins[0]]
    assert right and all(shown[t] == right for t in twins)  # one text, one label
    wrong = next(lab for lab in sorted(set(labels["label"])) if lab and lab != right)
    # the last twin relabelled with every source agreeing and a wide margin: the queue's
    # own suspicion sees nothing wrong with it, only its twins' captions disagree
    bad = twins[-1]
    is_bad = labels["post_id"] == bad
    mod = labels.copy()
    for col in ["label", "top_label", *(f"label_{s}" for s in LABEL_SOURCES)]:
        mod.loc[is_bad, col] = wrong
    mod.loc[is_bad, ["confidence", "source"]] = [0.95, "knn"]
    mod.loc[is_bad, "evidence"] = f"blend {wrong}:0.95 {right}:0.05"
    p = label_self_confidence(mod, inputs["captions"])
    queued = mod["label"].ne("") | mod["top_label"].ne("")
    assert set(p) == set(mod.loc[queued, "post_id"])  # every post with a label to show
    assert p[bad] < 0.5 < min(p[t] for t in twins[:-1])
    plain = build_queue(mod, random_rate=0.0)
    confident = build_queue(mod, random_rate=0.0, self_confidence=p)
    assert sorted(plain["post_id"]) == sorted(confident["post_id"])  # another order only
    in_plain = plain.loc[plain["label"] == wrong, "post_id"].tolist()
    in_conf = confident.loc[confident["label"] == wrong, "post_id"].tolist()
    # suspicion alone keeps it in the last 40 % of its label; ranked with its
    # out-of-fold probability it moves into the first 40 %
    assert in_conf.index(bad) < 0.4 * len(in_conf) < 0.6 * len(in_plain) < in_plain.index(bad)
    row = confident[confident["post_id"] == bad].iloc[0]
    assert row["why"].startswith(f"out-of-fold p(label) {p[bad]:.2f}")
    # an agreeing twin's label is backed: it waits behind the bad one in its own label
    in_right = confident.loc[confident["label"] == right, "post_id"].tolist()
    assert all(in_right.index(t) > in_conf.index(bad) for t in twins[:-1])


def test_the_confident_order_from_the_config_and_the_option(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from weaklabel.cli import app

    ws = built["ws"]
    inputs = load_queue_inputs(ws)
    want = build_queue(**inputs, self_confidence=workspace_self_confidence(ws, inputs))
    assert write_queue(ws, order="confident").equals(want)
    assert want["post_id"].tolist() != build_queue(**inputs)["post_id"].tolist()
    scored = want[~want["random"]]
    assert scored["why"].str.startswith("out-of-fold p(label) ").all()
    cfg = tmp_path / "review.yaml"
    cfg.write_text("review:\n  queue: confident\n", encoding="utf-8")
    out = tmp_path / "queue.csv"
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-c", str(cfg),
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["post_id"].tolist() == want["post_id"].tolist()
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-o", str(out),
                                 "--order", "confidnet"])
    assert r.exit_code == 1 and "did you mean 'confident'" in r.output + r.stderr


def test_the_confident_order_needs_the_captions(rfx) -> None:  # type: ignore[no-untyped-def]
    from weaklabel.workspace import Workspace

    ws = Workspace(rfx.ws)
    assert len(write_queue(ws, order="confident")) == 63
    ws.path("posts.parquet").unlink()
    with pytest.raises(WeaklabelError, match=r"posts.parquet is missing.*weaklabel tokenize"):
        write_queue(ws, order="confident")


def test_out_of_fold_probabilities_without_anything_to_learn() -> None:
    texts = ["빨간 립스틱", "립스틱 추천", "네일 아트", "네일 추천", "립스틱 색"]
    p, classes, known = out_of_fold_proba(texts, ["lips", "lips", "", "", ""])
    assert classes == ["lips"] and not known.any()  # one label: nothing to tell apart
    p, classes, known = out_of_fold_proba(["가", "나", "다", "라"], ["a", "b", "a", "b"])
    assert not known.any()  # no n-gram in two captions
    p, classes, known = out_of_fold_proba(texts, ["lips", "lips", "nails", "nails", ""])
    # the unlabelled 립스틱 post, scored by the folds' models averaged: lips
    assert known[4] and p[4].argmax() == 0
    assert abs(p[4].sum() - 1.0) < 1e-6  # a probability (float32 features)


def _scored_by_label(q: pd.DataFrame) -> dict[str, list[str]]:
    """Each label's scored (not random-slice) post ids, in queue order."""
    scored = q[~q["random"]]
    return {lab: x["post_id"].tolist() for lab, x in scored.groupby("label", sort=True)}


def test_the_cl_order_ranks_by_the_out_of_fold_probability_alone(built) -> None:  # type: ignore[no-untyped-def]
    inputs = load_queue_inputs(built["ws"])
    # three posts abstained, queued with their best guess (the label they had)
    labels = inputs["post_labels"].copy()
    abstained = labels["post_id"].iloc[[3, 30, 300]].tolist()
    labels.loc[labels["post_id"].isin(abstained), ["label", "confidence"]] = ["", 0.3]
    p = label_self_confidence(labels, inputs["captions"])
    assert set(abstained) <= set(p)  # scored by the folds' models for their best guess
    plain = {"post_labels": labels, "captions": inputs["captions"]}
    cl = build_queue(**plain, self_confidence=p, self_confidence_rule="alone")
    mean = build_queue(**plain, self_confidence=p)
    assert sorted(cl["post_id"]) == sorted(mean["post_id"])  # another order only
    # without density or groups a label's items come in rising p(label), the queue's own
    # suspicion no part of it (the rank mean orders them otherwise)
    for ids in _scored_by_label(cl).values():
        assert [p[i] for i in ids] == sorted(p[i] for i in ids)
    assert _scored_by_label(cl) != _scored_by_label(mean)
    assert set(abstained) <= set(cl.loc[~cl["random"], "post_id"])
    # with density, a label's first item is its most suspicious post times density;
    # without density in the priority, its least backed label
    dens = inputs["density"]
    for weight in (True, False):
        q = build_queue(**plain, density=dens, self_confidence=p,
                        self_confidence_rule="alone", density_weight=weight)
        for lab, ids in _scored_by_label(q).items():
            def prio(i: str, weight: bool = weight) -> float:
                return (1.0 - p[i]) * (dens[i][1] if weight else 1.0)
            assert prio(ids[0]) == max(prio(i) for i in ids), (weight, lab)
        assert q["why"].str.contains("; density ").sum() == (len(q) - q["random"].sum()
                                                              if weight else 0)
    # a post the model gave no probability (its label unseen by its fold) has no p on
    # the 1 - p scale: it comes after every post of its label that has one
    gone = cl[~cl["random"]]["post_id"].iloc[0]
    fewer = build_queue(**plain, self_confidence={k: v for k, v in p.items() if k != gone},
                        self_confidence_rule="alone")
    ids = _scored_by_label(fewer)[fewer.loc[fewer["post_id"] == gone, "label"].iloc[0]]
    assert len(ids) > 2 and ids[-1] == gone
    row = fewer[fewer["post_id"] == gone].iloc[0]
    assert row["why"].startswith("no out-of-fold p(label): after the items with one")
    with pytest.raises(WeaklabelError, match="rank-mean or alone"):
        build_queue(**plain, self_confidence=p, self_confidence_rule="only")


def test_the_cl_order_from_the_config_the_option_and_serve(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from weaklabel.cli import app
    from weaklabel.review.server import prepare
    from weaklabel.review.store import DecisionStore

    ws = built["ws"]
    inputs = load_queue_inputs(ws)
    sc = workspace_self_confidence(ws, inputs)
    want = build_queue(**inputs, self_confidence=sc, self_confidence_rule="alone")
    assert write_queue(ws, order="cl").equals(want)
    assert want["post_id"].tolist() != write_queue(ws, order="confident")["post_id"].tolist()
    flat = write_queue(ws, order="cl-no-density")
    assert flat.equals(build_queue(**inputs, self_confidence=sc, self_confidence_rule="alone",
                                   density_weight=False))
    assert flat["post_id"].tolist() != want["post_id"].tolist()
    out = tmp_path / "queue.csv"
    cfg = tmp_path / "review.yaml"
    cfg.write_text("review:\n  queue: cl\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-c", str(cfg),
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["post_id"].tolist() == want["post_id"].tolist()
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-o", str(out),
                                 "--order", "cll"])
    assert r.exit_code == 1 and "did you mean 'cl'" in r.output + r.stderr
    # the review server's queue, in the SQLite store, is the same order
    root = tmp_path / "served"
    shutil.copytree(ws.root, root, symlinks=True)
    prepare(root, ["ana"], order="cl")
    with DecisionStore.open(root) as store:
        served = [(i["post_id"], i["image"]) for i in store.items()]
    assert served == list(zip(want["post_id"], want["image"], strict=True))


def test_identical_copies_share_a_fold_so_none_is_scored_in_sample(built) -> None:  # type: ignore[no-untyped-def]
    from weaklabel.review.confident import text_fold

    inputs = load_queue_inputs(built["ws"])
    labels, twins = built["labels"].copy(), built["twins"]
    right = labels.loc[labels["post_id"] == twins[0], "label"].iloc[0]
    wrong = next(lab for lab in sorted(set(labels["label"])) if lab and lab != right)
    # two of the four copies relabelled: were a wrong copy learnt by the model scoring
    # the other, that one's p(wrong) would be partly its own label coming back
    labels.loc[labels["post_id"].isin(twins[2:]), "label"] = wrong
    p = label_self_confidence(labels, inputs["captions"])
    assert p[twins[2]] == p[twins[3]] < 0.5  # one model, one text: one probability
    assert p[twins[0]] == p[twins[1]] > 0.5
    # a post's fold is its text's alone: dropping other posts moves no one
    keys = [str(c) for c in inputs["captions"].values()]
    assert [text_fold(k) for k in keys[::3]] == [text_fold(k) for k in keys][::3]
    assert {text_fold(k) for k in keys} == set(range(5))


def test_the_fits_say_so_on_the_log(built, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    import logging

    inputs = load_queue_inputs(built["ws"])
    with caplog.at_level(logging.INFO, logger="weaklabel.review.confident"):
        label_self_confidence(inputs["post_labels"], inputs["captions"])
    n = int(inputs["post_labels"]["label"].ne("").sum())
    assert [r.getMessage() for r in caplog.records] == [
        f"fitting 5 folds on {n} posts for the confident-learning queue order"]


def test_when_confident_learning_cannot_run_the_log_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    texts = ["빨간 립스틱", "립스틱 추천", "네일 아트", "네일 추천", "립스틱 색"]
    cases = [(texts, ["lips", "lips", "", "", ""], None, "only one label (lips)"),
             (["가", "나", "다", "라"], ["a", "b", "a", "b"], None,
              "no character n-gram occurs in two captions"),
             (texts, ["lips", "lips", "nails", "nails", ""], ["same"] * 5,
              "the 4 labelled posts are all one fold's")]
    for t, labs, keys, why in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="weaklabel.review.confident"):
            _, _, known = out_of_fold_proba(t, labs, keys=keys)
        assert not known.any()
        msgs = [r.getMessage() for r in caplog.records]
        assert len(msgs) == 1 and msgs[0].startswith(f"confident learning cannot run: {why}")


def test_a_label_its_folds_never_saw_gets_no_probability(built) -> None:  # type: ignore[no-untyped-def]
    inputs = load_queue_inputs(built["ws"])
    labels = inputs["post_labels"].copy()
    ids = labels["post_id"].tolist()
    # one post holds a label no other post has: the model scoring it never learnt it;
    # an abstained post's best guess that no post holds: no model learnt it
    labels.loc[labels["post_id"] == ids[5], "label"] = "solo"
    labels.loc[labels["post_id"] == ids[6], ["label", "top_label"]] = ["", "ghost"]
    before = label_self_confidence(inputs["post_labels"], inputs["captions"])
    p = label_self_confidence(labels, inputs["captions"])
    assert {ids[5], ids[6]} <= set(before)
    assert set(p) == set(before) - {ids[5], ids[6]}  # no probability, not 0.00
    q = build_queue(labels, self_confidence=p, self_confidence_rule="alone",
                    random_rate=0.0)
    solo = q[q["label"] == "solo"].iloc[0]
    assert solo["why"].startswith("no out-of-fold p(label)")


def test_an_images_own_suspicion_counts_in_the_rank_mean(built) -> None:  # type: ignore[no-untyped-def]
    from weaklabel.review.triage import _stable

    inputs = load_queue_inputs(built["ws"])
    labels = inputs["post_labels"]
    p = label_self_confidence(labels, inputs["captions"])
    post = labels.loc[labels["label"].ne(""), "post_id"].iloc[len(labels) // 2]
    # two images of one post, the second (by the items' tie-break too) in a duplicate
    # group whose other members have other labels
    first, second = sorted(["a.jpg", "b.jpg"], key=lambda im: _stable(post, im))
    lab = labels.loc[labels["post_id"] == post, "label"].iloc[0]
    images = pd.DataFrame({"image": [first, second], "post_id": [post, post],
                           "label": [lab, lab], "confidence": [0.9, 0.9],
                           "likes": pd.array([0, 0], dtype="Int64"),
                           "comments": pd.array([0, 0], dtype="Int64")})
    q = build_queue(labels, image_labels=images, conflicts=pd.DataFrame({"image": [second]}),
                    self_confidence=p, random_rate=0.0)
    mine = q[q["post_id"] == post]
    assert mine["image"].tolist() == [second, first]
    assert "duplicate group has other labels" in mine["why"].iloc[0]


def test_under_cl_the_why_names_the_suspicion_after_also(built) -> None:  # type: ignore[no-untyped-def]
    inputs = load_queue_inputs(built["ws"])
    p = label_self_confidence(inputs["post_labels"], inputs["captions"])
    q = build_queue(**inputs, self_confidence=p, self_confidence_rule="alone")
    scored = q[~q["random"]]
    reasons = ("sources disagree", "margin ", "low confidence", "abstained", "keywords")
    lead = scored["why"].str.split("also: ").str[0]
    assert not any(r in w for w in lead for r in reasons)
    assert scored["why"].str.contains("; also: ").sum() > len(scored) // 10
    mean = build_queue(**inputs, self_confidence=p)  # the rank mean is made of them
    assert not mean["why"].str.contains("also: ").any()


def test_a_queue_order_in_any_case(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from weaklabel.cli import app
    from weaklabel.review.triage import queue_order

    assert queue_order("CL") == queue_order("cl")
    with pytest.raises(WeaklabelError, match="did you mean 'confident'"):
        queue_order("Confidnet")
    ws = built["ws"]
    cfg = tmp_path / "review.yaml"
    cfg.write_text("review:\n  queue: Cl-No-Density\n", encoding="utf-8")
    out = tmp_path / "queue.csv"
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-c", str(cfg),
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["post_id"].tolist() == write_queue(ws, order="cl-no-density")["post_id"].tolist()
    cfg.write_text("review:\n  queue: CLL\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(ws.root), "-c", str(cfg),
                                 "-o", str(out)])
    assert r.exit_code == 1 and "did you mean 'cl'" in r.output + r.stderr
