"""Evaluation: metric bounds, abstain counts as a miss, reading label and gold files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, with_overrides
from weaklabel.contracts import ABSTAIN, POST_LABELS
from weaklabel.errors import WeaklabelError
from weaklabel.labels.evaluate import (
    confusion,
    eval_files,
    evaluate,
    format_report,
    read_gold,
    read_labels,
    run_eval,
    score_labels,
)
from weaklabel.workspace import Workspace, write_parquet

LABELS = ["lips", "hair", "nails"]
_gold = st.lists(st.sampled_from(LABELS), min_size=1, max_size=30)


@st.composite
def _pred_gold(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    gold = draw(_gold)
    pred = draw(st.lists(st.sampled_from([*LABELS, "extra", ABSTAIN]), min_size=len(gold),
                         max_size=len(gold)))
    return pred, gold


def test_docstring_example() -> None:
    m = score_labels(["a", "", "b"], ["a", "a", "b"])
    assert (m["coverage"], m["accuracy"], round(m["macro_f1"], 3)) == (0.667, 1.0, 0.833)
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2,
                                   "predicted": 1}


@settings(max_examples=150, deadline=None)
@given(_pred_gold())
def test_metrics_stay_in_bounds(pg: tuple[list[str], list[str]]) -> None:
    pred, gold = pg
    m = score_labels(pred, gold)
    for key in ("macro_f1", "accuracy", "coverage"):
        assert 0.0 <= m[key] <= 1.0
    assert m["covered"] == sum(p != ABSTAIN for p in pred)
    assert m["posts"] == len(gold)
    assert set(m["per_label"]) == set(gold)  # predicted-only labels get no row
    for c, v in m["per_label"].items():
        assert 0.0 <= v["precision"] <= 1.0 and 0.0 <= v["recall"] <= 1.0
        assert v["support"] == gold.count(c)


@settings(max_examples=150, deadline=None)
@given(_pred_gold())
def test_an_abstain_always_counts_as_a_miss(pg: tuple[list[str], list[str]]) -> None:
    pred, gold = pg
    m = score_labels(pred, gold)
    for c, v in m["per_label"].items():
        hits = sum(p == g == c for p, g in zip(pred, gold, strict=True))
        assert v["recall"] == round(hits / gold.count(c), 4)  # abstains are in the denominator
    right = [i for i, (p, g) in enumerate(zip(pred, gold, strict=True)) if p == g]
    assume(right)
    worse = list(pred)
    worse[right[0]] = ABSTAIN  # a correct label replaced by "no label"
    w = score_labels(worse, gold)
    c = gold[right[0]]
    assert w["per_label"][c]["recall"] < m["per_label"][c]["recall"]
    assert w["macro_f1"] <= m["macro_f1"]
    assert w["coverage"] <= m["coverage"]


@settings(max_examples=50, deadline=None)
@given(_pred_gold())
def test_a_post_missing_from_the_labels_is_an_abstain(pg: tuple[list[str], list[str]]) -> None:
    pred, gold = pg
    ids = [f"p{i}" for i in range(len(gold))]
    gold_df = pd.DataFrame({"post_id": ids, "label": gold})
    full = pd.DataFrame({"post_id": ids, "label": pred, "confidence": 0.9,
                         "source": ["seed" if p else "none" for p in pred], "evidence": "",
                         "top_label": pred})
    dropped = full[full["label"] != ABSTAIN]  # abstains left out of the file entirely
    a, b = evaluate(full, gold_df), evaluate(dropped, gold_df)
    for key in ("macro_f1", "accuracy", "coverage", "per_label", "confusion"):
        assert a[key] == b[key]
    assert b["missing_posts"] == len(full) - len(dropped)


def test_confusion_names_abstains() -> None:
    assert confusion(["a", "", "b", "a"], ["a", "a", "a", "b"]) == {
        "a": {"(none)": 1, "a": 1, "b": 1}, "b": {"a": 1}}


def test_subsets_guess_accuracy_and_bins() -> None:
    gold = pd.DataFrame({"post_id": ["1", "2", "3", "4"], "label": ["a", "a", "b", "b"]})
    labels = pd.DataFrame({
        "post_id": ["1", "2", "3", "4"], "label": ["a", "a", "", "a"],
        "confidence": [1.0, 0.55, 0.3, 0.95], "source": ["seed", "knn", "none", "knn"],
        "evidence": "", "top_label": ["a", "a", "b", "a"]})
    m = evaluate(labels, gold)
    assert m["subsets"]["seed"]["covered"] == 1 and m["subsets"]["seed"]["accuracy"] == 1.0
    assert m["subsets"]["knn"]["covered"] == 2 and m["subsets"]["knn"]["accuracy"] == 0.5
    assert m["abstained_with_guess"] == 1 and m["abstained_guess_accuracy"] == 1.0
    assert m["confidence_bins"] == [
        {"from": 0.5, "to": 0.6, "posts": 1, "accuracy": 1.0},
        {"from": 0.9, "to": 1.0, "posts": 2, "accuracy": 0.5}]
    report = format_report(m)
    assert "coverage 75.0%" in report and "(none)" not in report.split("confusion")[0]
    assert "  b              (none):1  a:1" in report


def _labels_parquet(path: Path, ids: list[str], labels: list[str]) -> Path:
    write_parquet(pd.DataFrame({
        "post_id": ids, "label": labels, "confidence": [0.9] * len(ids),
        "source": ["seed" if lab else "none" for lab in labels], "evidence": [""] * len(ids),
        "top_label": labels}), path, POST_LABELS)
    return path


def test_run_eval_uses_the_keyword_baseline_beside_the_labels(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("post_id,label\n1,a\n2,b\n3,b\n", encoding="utf-8")
    _labels_parquet(tmp_path / "post_labels.parquet", ["1", "2", "3"], ["a", "b", "a"])
    _labels_parquet(tmp_path / "keyword_labels.parquet", ["1", "2", "3"], ["a", "", ""])
    r = run_eval(Workspace(tmp_path), Config(workspace=str(tmp_path), gold=str(gold)))
    m = r.summary.metrics
    assert m["accuracy"] == 0.6667 and m["coverage"] == 1.0
    assert m["subsets"]["keyword_baseline"]["coverage"] == 0.333
    assert (r.stage, r.outputs, r.up_to_date) == ("eval", (), False)
    assert r.summary.text() == "macro-F1 0.667, accuracy 0.667 on 100.0% of 3 gold posts labelled"
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # eval writes nothing, no lock
        "gold.csv", "keyword_labels.parquet", "post_labels.parquet"]


def test_run_eval_takes_labels_and_baseline_from_the_config(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("post_id,label\n1,a\n2,b\n3,b\n", encoding="utf-8")
    labels = _labels_parquet(tmp_path / "mine.parquet", ["1", "2", "3"], ["a", "b", "b"])
    base = _labels_parquet(tmp_path / "base.parquet", ["1", "2", "3"], ["a", "", ""])
    cfg = with_overrides(Config(), {"workspace": str(tmp_path / "nowhere"), "gold": str(gold),
                                    "eval.labels": str(labels), "eval.baseline": str(base)})
    m = run_eval(Workspace(tmp_path / "nowhere"), cfg).summary.metrics
    assert m["macro_f1"] == 1.0 and m["subsets"]["keyword_baseline"]["coverage"] == 0.333
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(WeaklabelError, match="no gold file"):
        run_eval(Workspace(tmp_path), Config(workspace=str(tmp_path)))
    with pytest.raises(WeaklabelError, match=r"gold file .*missing.csv does not exist; fix "
                                             r"gold in the config"):
        run_eval(Workspace(tmp_path), with_overrides(cfg, {"gold": str(tmp_path / "missing.csv")}))


def test_read_labels_csv_defaults_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "labels.csv"
    p.write_text("post_id,label\n1,입술\n2,\n", encoding="cp949")
    df = read_labels(p)
    assert df["label"].tolist() == ["입술", ""]
    assert df["confidence"].tolist() == [1.0, 1.0] and df["top_label"].tolist() == ["입술", ""]
    p.write_text("post_id,label,confidence\n1,a,0.5\n2,b,high\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"row 2: confidence must be a number, got 'high'"):
        read_labels(p)
    p.write_text("id,label\n1,a\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match="lacks column"):
        read_labels(p)


def test_read_labels_damaged_parquet_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "post_labels.parquet"
    p.write_bytes(b"garbage")
    with pytest.raises(WeaklabelError, match="cannot read Parquet"):
        read_labels(p)
    with pytest.raises(WeaklabelError, match="does not exist; run weaklabel propagate"):
        read_labels(tmp_path / "nope.parquet")


def test_gold_errors(tmp_path: Path) -> None:
    p = tmp_path / "gold.csv"
    p.write_text("post_id,label\n1,a\n2, \n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match="row 2 has an empty gold label"):
        read_gold(p)
    p.write_text("post_id,label\n1,a\n1,b\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"key post_id of gold repeats at rows 1, 2"):
        read_gold(p)
    labels = _labels_parquet(tmp_path / "l.parquet", ["9"], ["a"])
    p.write_text("post_id,label\n1,a\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match="no post_id of .* occurs in"):
        eval_files(labels, p)


def test_stray_label_ids_are_named() -> None:
    import pandas as pd

    from weaklabel.labels.evaluate import evaluate, format_report

    gold = pd.DataFrame({"post_id": ["1", "2", "3"], "label": ["eye_makeup", "lips", "lips"]})
    labels = pd.DataFrame({"post_id": ["1", "2", "3"], "label": ["eye_makup", "lips", ""],
                           "confidence": [1.0, 1.0, 0.0], "source": ["seed", "seed", "none"],
                           "evidence": ["", "", ""], "top_label": ["eye_makup", "lips", ""]})
    m = evaluate(labels, gold)
    assert m["predicted_labels_not_in_gold"] == ["eye_makup"]
    assert m["gold_labels_never_predicted"] == ["eye_makeup"]
    text = format_report(m)
    assert "predicted labels absent from gold: eye_makup (a misspelt label id?)" in text


def test_gold_and_labels_in_semicolon_or_tab_csv_are_read(tmp_path: Path) -> None:
    for sep in (";", "\t"):
        p = tmp_path / "gold.csv"
        p.write_text(f"post_id{sep}label\n1{sep}a\n2{sep}b\n", encoding="utf-8")
        assert read_gold(p)["label"].tolist() == ["a", "b"]
        q = tmp_path / "labels.csv"
        q.write_text(f"post_id{sep}label\n1{sep}a\n", encoding="utf-8")
        assert read_labels(q)["label"].tolist() == ["a"]
