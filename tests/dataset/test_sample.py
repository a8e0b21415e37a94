"""Sampling: the filters, select_top's invariants, run_sample's artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, SampleConfig, with_overrides
from weaklabel.contracts import IMAGE_LABELS
from weaklabel.dataset.contracts import LABEL_CONFLICTS, SAMPLE, SAMPLE_FUNNEL
from weaklabel.dataset.sample import (
    check_quotas,
    drop_duplicates,
    engagement,
    format_funnel,
    label_caps,
    resolve_images,
    run_sample,
    sample_images,
    select_top,
)
from weaklabel.errors import MissingArtifactError, WeaklabelError
from weaklabel.workspace import Workspace


def cfg_for(fx, **sample) -> Config:  # type: ignore[no-untyped-def]
    cfg = with_overrides(Config(), {"workspace": str(fx.ws), "labelmap": str(fx.labelmap)})
    return with_overrides(cfg, {f"sample.{k}": v for k, v in sample.items()})


# --- pure functions ------------------------------------------------------------------------


def test_engagement_reads_missing_counts_as_zero() -> None:
    df = pd.DataFrame({"likes": pd.array([10, None, None], dtype="Int64"),
                       "comments": pd.array([1, 3, None], dtype="Int64")})
    assert engagement(df, comment_weight=2.0).tolist() == [12.0, 6.0, 0.0]


def test_resolve_images_majority_label_then_confidence() -> None:
    df = pd.DataFrame({
        "image": ["a", "a", "a", "b", "b", "c"],
        "post_id": ["1", "2", "3", "4", "5", "6"],
        "label": ["x", "y", "y", "x", "y", ""],
        "confidence": [0.99, 0.5, 0.6, 0.7, 0.8, 0.0],
        "likes": pd.array([1, 5, 9, 1, 1, 100], dtype="Int64"),
        "comments": pd.array([0, 0, 0, 0, 0, 0], dtype="Int64"),
    })
    out = resolve_images(df, comment_weight=2.0).set_index("image")
    assert list(out.index) == ["a", "b"]  # c abstained
    assert out.loc["a", "label"] == "y" and out.loc["a", "post_id"] == "3"  # 2 votes; best score
    assert out.loc["b", "label"] == "y"  # one vote each: higher confidence wins


def test_drop_duplicates_prefers_kept_file_else_best() -> None:
    df = pd.DataFrame({"image": ["k", "d1", "d2", "e1", "e2", "solo"],
                       "label": ["a"] * 6, "post_id": list("123456"),
                       "confidence": [0.5] * 6, "score": [1.0, 9.0, 3.0, 2.0, 7.0, 0.0]})
    dups = pd.DataFrame({"group": [1, 1, 2, 2], "kept": ["k", "k", "e0", "e0"],
                         "duplicate": ["d1", "d2", "e1", "e2"]})
    out, conflicts = drop_duplicates(df, dups)
    assert sorted(out["image"]) == ["e2", "k", "solo"]  # e0 (kept) unlabelled: best of e*
    assert conflicts.empty and list(conflicts.columns) == LABEL_CONFLICTS.names


def test_drop_duplicates_takes_the_group_majority_label_and_reports_conflicts() -> None:
    df = pd.DataFrame({"image": ["k", "d1", "d2", "d3", "x1", "x2"],
                       "label": ["a", "b", "b", "a", "c", "c"], "post_id": list("123456"),
                       "confidence": [0.9, 0.6, 0.7, 0.5, 0.5, 0.5],
                       "score": [100.0, 1.0, 2.0, 50.0, 1.0, 2.0]})
    dups = pd.DataFrame({"group": [1, 1, 1, 2], "kept": ["k", "k", "k", "x1"],
                         "duplicate": ["d1", "d2", "d3", "x2"]})
    out, conflicts = drop_duplicates(df, dups)
    # two 'a' votes against two 'b': the tie goes to the higher best confidence (a, 0.9),
    # and the kept file carries 'a'
    assert sorted(out["image"]) == ["k", "x1"]
    assert out.set_index("image").loc["x1", "label"] == "c"
    assert conflicts["group"].unique().tolist() == [1]
    assert conflicts["image"].tolist() == ["d1", "d2", "d3", "k"]


def test_drop_duplicates_majority_beats_the_kept_file() -> None:
    df = pd.DataFrame({"image": ["k", "d1", "d2"], "label": ["a", "b", "b"],
                       "post_id": list("123"), "confidence": [0.9, 0.6, 0.7],
                       "score": [100.0, 1.0, 2.0]})
    dups = pd.DataFrame({"group": [1, 1], "kept": ["k", "k"], "duplicate": ["d1", "d2"]})
    out, conflicts = drop_duplicates(df, dups)
    assert out[["image", "label"]].values.tolist() == [["d2", "b"]]  # the best 'b' copy
    assert set(conflicts["label"]) == {"a", "b"}


def test_label_caps_quota_and_balance() -> None:
    assert label_caps({"a": 10, "b": 3, "c": 0}, per_label=5) == {"a": 5, "b": 5, "c": 5}
    assert label_caps({"a": 10, "b": 3}, per_label=5, quotas={"a": 2}) == {"a": 2, "b": 5}
    assert label_caps({"a": 10, "b": 3, "c": 0}, per_label=5, balance=True) == \
        {"a": 3, "b": 3, "c": 3}
    assert label_caps({"a": 10, "b": 3}, per_label=5, quotas={"b": 0}, balance=True) == \
        {"a": 5, "b": 0}


def test_check_quotas_names_the_label_and_lists_valid() -> None:
    with pytest.raises(WeaklabelError, match=r"unknown label 'lipz'; valid labels: lips, nails"):
        check_quotas({"lipz": 3}, ["lips", "nails"])


def test_format_funnel_aligns_hangul() -> None:
    funnel = pd.DataFrame([{"label": "입술", "labelled": 3, "after_purge": 2, "after_dedup": 2,
                            "after_confidence": 2, "after_per_post": 1, "sampled": 1,
                            "quota": 5}])
    lines = format_funnel(funnel).splitlines()
    assert lines[0].startswith("label") and lines[1].startswith("입술 ")


# --- select_top: properties ----------------------------------------------------------------

rows = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]),        # label
              st.integers(0, 5),                        # post
              st.integers(0, 4),                        # score (ties on purpose)
              st.sampled_from([0.2, 0.5, 0.9])),         # confidence
    max_size=40,
)


def _frame(items: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame({
        "image": [f"img{i:03d}.jpg" for i in range(len(items))],
        "label": [t[0] for t in items], "post_id": [f"p{t[1]}" for t in items],
        "score": [float(t[2]) for t in items], "confidence": [t[3] for t in items],
    })


def _key(r: pd.Series) -> tuple[float, float, str]:
    return (-r["score"], -r["confidence"], r["image"])


@settings(max_examples=50, deadline=None)
@given(rows, st.integers(0, 6), st.integers(0, 3),
       st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 4), max_size=2))
def test_select_top_properties(items, k, per_post, quotas) -> None:  # type: ignore[no-untyped-def]
    df = _frame(items)
    out = select_top(df, per_label=k, quotas=quotas, per_post=per_post)
    for lab, g in out.groupby("label"):
        cap = quotas.get(lab, k)
        assert len(g) <= cap
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
        keys = [_key(r) for _, r in g.iterrows()]
        assert keys == sorted(keys)  # engagement order, tie-breaks included
        if per_post > 0:
            assert g["post_id"].value_counts().max() <= per_post
    chosen = set(out["image"])
    for lab in set(df["label"]):
        cap = quotas.get(lab, k)
        d = df[df["label"] == lab]
        g = out[out["label"] == lab]
        per = d["post_id"].value_counts()
        eligible = int(per.clip(upper=per_post).sum()) if per_post > 0 else len(d)
        assert len(g) == min(cap, eligible)
        worst = max((_key(r) for _, r in g.iterrows()), default=None)
        for _, r in d[~d["image"].isin(chosen)].iterrows():
            better = [x for _, x in d[d["post_id"] == r["post_id"]].iterrows()
                      if _key(x) < _key(r)]
            cut_by_post = per_post > 0 and len(better) >= per_post
            assert cut_by_post or cap == 0 or (worst is not None and _key(r) > worst)


@settings(max_examples=40, deadline=None)
@given(rows)
def test_select_top_balance_equalises(items) -> None:  # type: ignore[no-untyped-def]
    df = _frame(items)
    out = select_top(df, per_label=100, per_post=0, balance=True)
    if len(df):
        counts = out["label"].value_counts()
        assert counts.nunique() == 1 and counts.iloc[0] == df["label"].value_counts().min()


# --- run_sample ----------------------------------------------------------------------------


def test_run_sample_funnel_and_artifact(fx) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(fx.ws)
    res = run_sample(ws, cfg_for(fx, min_confidence=0.5))
    df = pd.read_parquet(fx.ws / "sample.parquet")
    assert list(df.columns) == SAMPLE.names
    lips = df[df["label"] == "lips"]
    # p05 is truncated and p04's file missing (purge never saw it), p01's second image is
    # cut by per_post, p03 beats p02 on confidence, =cmd last.
    assert lips["image"].tolist() == ["20190301/p01_a.jpg", "20190302/p03.jpg",
                                      "20190302/p02.jpg", "misc/evil.jpg"]
    assert lips["rank"].tolist() == [1, 2, 3, 4]
    assert df.loc[df["label"] == "nails", "image"].tolist() == ["20190304/p06.jpg"]
    funnel = pd.read_csv(fx.ws / "sample_funnel.csv", keep_default_na=False)
    assert list(funnel.columns) == SAMPLE_FUNNEL.names
    f = funnel.set_index("label")
    assert f.loc["lips"].tolist()[:6] == [7, 5, 5, 5, 4, 4]
    assert f.loc["nails"].tolist()[:6] == [4, 4, 2, 1, 1, 1]
    assert f.loc["(total)", "sampled"] == len(df)
    assert res.summary.funnel[-1].label == "(total)"
    assert res.summary.sampled == len(df) == res.rows["sample.parquet"]
    meta = json.loads((fx.ws / "sample.parquet.meta.json").read_text())
    assert meta["stage"] == "sample" and meta["rows"] == len(df)
    assert meta["funnel"][-1]["sampled"] == len(df)  # the meta keeps its pre-contract keys
    again = run_sample(ws, cfg_for(fx, min_confidence=0.5))  # up to date: the same summary
    assert again.up_to_date and again.summary == res.summary


def test_run_sample_is_up_to_date_then_byte_identical_when_forced(fx) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(fx.ws)
    run_sample(ws, cfg_for(fx))
    first = (fx.ws / "sample.parquet").read_bytes()
    assert run_sample(ws, cfg_for(fx)).up_to_date is True
    assert run_sample(ws, cfg_for(fx), force=True).up_to_date is False
    assert (fx.ws / "sample.parquet").read_bytes() == first
    assert run_sample(ws, cfg_for(fx, per_label=1)).up_to_date is False


def test_run_sample_quotas_balance_background(fx) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(fx.ws)
    run_sample(ws, cfg_for(fx, quotas={"lips": 2}, include_background=False), force=True)
    df = pd.read_parquet(fx.ws / "sample.parquet")
    assert df["label"].value_counts().to_dict() == {"lips": 2, "nails": 2}
    run_sample(ws, cfg_for(fx, balance=True), force=True)
    counts = pd.read_parquet(fx.ws / "sample.parquet")["label"].value_counts()
    assert set(counts) == {1}  # other has one image: everyone capped at one


def test_run_sample_unknown_quota_label(fx) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WeaklabelError, match="unknown label 'lipz'; valid labels: lips, nails, "
                                             "other"):
        run_sample(Workspace(fx.ws), cfg_for(fx, quotas={"lipz": 1}))


def test_run_sample_without_purge_or_dedup(fx_bare) -> None:  # type: ignore[no-untyped-def]
    res = run_sample(Workspace(fx_bare.ws), cfg_for(fx_bare))
    assert any("purge.csv not found" in n for n in res.summary.notes)
    df = pd.read_parquet(fx_bare.ws / "sample.parquet")
    assert "20190303/p05.jpg" in set(df["image"])  # truncated, but nobody said so
    assert {"20190304/p06.jpg", "20190305/p07.jpg"} <= set(df["image"])


def test_run_sample_owns_the_label_choice_and_the_conflict_report(fx) -> None:  # type: ignore[no-untyped-def]
    """p06's group (p06 kept, p07 exact, p08 near): p07 and p08 say 'other', so the group
    is 'other'; the conflict report names the group; decided by content, not mtimes."""
    ws = Workspace(fx.ws)
    il = pd.read_parquet(fx.ws / "image_labels.parquet")
    il.loc[il["image"].isin(["20190305/p07.jpg", "20190305/p08.jpg"]), "label"] = "other"
    ws.write("image_labels.parquet", il, IMAGE_LABELS)
    res = run_sample(ws, cfg_for(fx))
    df = pd.read_parquet(fx.ws / "sample.parquet").set_index("image")
    group = df.index.intersection(["20190304/p06.jpg", "20190305/p07.jpg", "20190305/p08.jpg"])
    assert len(group) == 1 and df.loc[group[0], "label"] == "other"
    conflicts = pd.read_csv(fx.ws / "label_conflicts.csv", keep_default_na=False)
    assert list(conflicts.columns) == LABEL_CONFLICTS.names
    assert set(conflicts["image"]) >= {"20190304/p06.jpg", "20190305/p07.jpg"}
    assert conflicts["group"].nunique() == 1 and res.summary.label_conflicts == 1
    assert not (fx.ws / "image_labels_dedup.parquet").exists()
    # new label content (same mtime or not) makes the stage run again
    assert run_sample(ws, cfg_for(fx)).up_to_date is True
    il.loc[il["image"] == "20190305/p08.jpg", "label"] = "nails"
    ws.write("image_labels.parquet", il, IMAGE_LABELS)
    assert run_sample(ws, cfg_for(fx)).up_to_date is False


def test_run_sample_before_propagate(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    with pytest.raises(MissingArtifactError, match="run `weaklabel propagate` first"):
        run_sample(ws, Config(workspace=str(ws.root), sample=SampleConfig()))


def test_run_sample_rejects_broken_purge_csv(fx) -> None:  # type: ignore[no-untyped-def]
    (fx.ws / "purge.csv").write_text("path,state\na.jpg,ok\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match="purge.csv: purge lacks column"):
        run_sample(Workspace(fx.ws), cfg_for(fx))


def test_a_labelled_image_purge_never_saw_is_named_not_lost_among_the_corrupt(  # type: ignore[no-untyped-def]
        fx, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.WARNING, logger="weaklabel.dataset.sample"):
        res = run_sample(Workspace(fx.ws), cfg_for(fx))
    note = ("1 labelled image(s) are not in purge.csv (no such file under the image root, "
            "or one reached through a symlink), e.g. '20190303/p04.jpg'; check "
            "posts.image_root")
    assert any(n.startswith(note) for n in res.summary.notes)
    assert note in caplog.text  # a warning: -q hides info, not this
    # a path spelt in another case than the file's is named as such
    labels = pd.read_parquet(fx.ws / "image_labels.parquet")
    labels.loc[labels["image"] == "20190302/p02.jpg", "image"] = "20190302/P02.JPG"
    purge = pd.read_csv(fx.ws / "purge.csv", keep_default_na=False, dtype=str)
    out = sample_images(labels, purge=purge)
    assert any("e.g. '20190302/P02.JPG'" in n and "the root has '20190302/p02.jpg': paths "
               "differ only in case" in n for n in out.warnings)
