"""The eval stage: any post-label file against a gold file.

Metrics are over **all gold posts**: an abstained (or missing) post counts as a miss for
recall and macro-F1; ``accuracy`` is measured on the covered posts only, and
``coverage`` is the share of gold posts given a label. The same metrics are computed for
the seed and KNN subsets and for the keyword-only baseline when it sits beside the
labels, so propagation's gain is visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN, GOLD, LABELS_CSV, POST_LABELS, check_frame
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.config import Config
    from weaklabel.workspace import Workspace


def score_labels(pred: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    """Precision/recall/F1 per gold label, macro-F1, accuracy on covered, coverage.

    ``pred`` uses :data:`ABSTAIN` for no label. Labels predicted but absent from gold
    count as errors but get no row of their own in the macro average.

    Example:
        >>> m = score_labels(["a", "", "b"], ["a", "a", "b"])
        >>> m["coverage"], m["accuracy"], round(m["macro_f1"], 3)
        (0.667, 1.0, 0.833)
    """
    n = len(gold)
    classes = sorted(set(gold))
    covered = [i for i in range(n) if pred[i] != ABSTAIN]
    correct = sum(1 for i in covered if pred[i] == gold[i])
    per: dict[str, dict[str, float]] = {}
    for c in classes:
        tp = sum(1 for i in covered if pred[i] == c and gold[i] == c)
        npred = sum(1 for i in covered if pred[i] == c)
        ngold = sum(1 for g in gold if g == c)
        p = tp / npred if npred else 0.0
        r = tp / ngold if ngold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per[c] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                  "support": ngold, "predicted": npred}
    macro = sum(v["f1"] for v in per.values()) / len(per) if per else 0.0
    return {
        "macro_f1": round(macro, 4),
        "accuracy": round(correct / len(covered), 4) if covered else 0.0,
        "coverage": round(len(covered) / n, 3) if n else 0.0,
        "covered": len(covered),
        "posts": n,
        "per_label": per,
    }


def confusion(pred: Sequence[str], gold: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold label → predicted label (``"(none)"`` for abstain) → count."""
    out: dict[str, dict[str, int]] = {}
    for p, g in zip(pred, gold, strict=True):
        key = p if p != ABSTAIN else "(none)"
        out.setdefault(g, {}).setdefault(key, 0)
        out[g][key] += 1
    return {g: dict(sorted(v.items())) for g, v in sorted(out.items())}


def read_labels(path: Path) -> pd.DataFrame:
    """A post-labels artifact (Parquet) or a CSV with at least ``post_id,label``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise WeaklabelError(f"labels file {path} does not exist; run weaklabel propagate")
    if path.suffix == ".parquet":
        from weaklabel.workspace import read_parquet

        # read_parquet turns a damaged file into a WeaklabelError and checks the schema.
        return read_parquet(path, POST_LABELS, made_by="propagate")
    from weaklabel.posts import read_table_csv

    df = read_table_csv(path, what="labels file", columns=("post_id", "label"))
    check_frame(df, LABELS_CSV, path)
    for col, default in (("source", "seed"), ("confidence", "1.0"), ("top_label", None)):
        if col not in df.columns:
            df[col] = df["label"] if default is None else default
    conf = pd.to_numeric(df["confidence"].replace("", "0"), errors="coerce")
    bad = df.index[conf.isna()].tolist()
    if bad:
        raise WeaklabelError(
            f"{path}: row {bad[0] + 1}: confidence must be a number, got "
            f"{df.loc[bad[0], 'confidence']!r}"
        )
    df["confidence"] = conf.astype(float)
    return df


def read_gold(path: Path) -> pd.DataFrame:
    """Gold CSV ``post_id,label``; every post needs a non-empty label."""

    from weaklabel.posts import read_table_csv

    df = read_table_csv(Path(path), what="gold file", columns=("post_id", "label"))
    check_frame(df, GOLD, path)
    empty = df.index[df["label"].str.strip() == ""].tolist()
    if empty:
        raise WeaklabelError(f"{path}: row {empty[0] + 1} has an empty gold label")
    return df


def evaluate(labels: pd.DataFrame, gold: pd.DataFrame, *,
             baseline: pd.DataFrame | None = None,
             names: dict[str, str] | None = None) -> dict[str, Any]:
    """All metrics as one JSON-able dict (see the module docstring).

    ``names`` (a label map's :meth:`~weaklabel.labels.labelmap.LabelMap.id_of`) lets a
    gold file name labels by their display names (교통/건축/국토) instead of their ids.
    """
    if names:
        gold = gold.assign(label=gold["label"].map(lambda g: names.get(g, g)))
    merged = gold.merge(labels, on="post_id", how="left", suffixes=("_gold", ""))
    g = merged["label_gold"].tolist()
    pred = merged["label"].fillna(ABSTAIN).tolist()
    source = merged["source"].fillna("none").tolist()
    conf = merged["confidence"].fillna(0.0).tolist()
    top = merged["top_label"].fillna(ABSTAIN).tolist()
    out = score_labels(pred, g)
    out["confusion"] = confusion(pred, g)
    # A misspelt label on either side silently scores 0: name the strays.
    predicted = {p for p in pred if p != ABSTAIN}
    out["gold_labels_never_predicted"] = sorted(set(g) - predicted)
    out["predicted_labels_not_in_gold"] = sorted(predicted - set(g))
    out["missing_posts"] = int(merged["source"].isna().sum())
    out["subsets"] = {}
    for s in ("seed", "knn"):
        sub = [p if src == s else ABSTAIN for p, src in zip(pred, source, strict=True)]
        m = score_labels(sub, g)
        m.pop("per_label")
        out["subsets"][s] = m
    # Honest confidence: how right would the abstained posts' best guesses have been?
    abst = [i for i in range(len(g)) if pred[i] == ABSTAIN and top[i] != ABSTAIN]
    out["abstained_guess_accuracy"] = (
        round(sum(top[i] == g[i] for i in abst) / len(abst), 4) if abst else None)
    out["abstained_with_guess"] = len(abst)
    out["confidence_bins"] = _bins(pred, g, conf)
    out["calibration"] = calibration(pred, g, conf)
    if baseline is not None:
        b = gold.merge(baseline, on="post_id", how="left", suffixes=("_gold", ""))
        m = score_labels(b["label"].fillna(ABSTAIN).tolist(), b["label_gold"].tolist())
        m.pop("per_label")
        out["subsets"]["keyword_baseline"] = m
    return out


def _bins(pred: list[str], gold: list[str], conf: list[float]) -> list[dict[str, Any]]:
    edges = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]
    rows = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        idx = [i for i in range(len(gold)) if pred[i] != ABSTAIN and lo <= conf[i] < hi]
        if idx:
            acc = sum(pred[i] == gold[i] for i in idx) / len(idx)
            rows.append({"from": lo, "to": min(hi, 1.0), "posts": len(idx),
                         "accuracy": round(acc, 4)})
    return rows


def calibration(pred: Sequence[str], gold: Sequence[str], conf: Sequence[float], *,
                bins: int = 10) -> dict[str, Any]:
    """Reliability table and expected calibration error of the labels kept.

    Kept labels are put in ``bins`` equal-width confidence bins; each bin's mean
    confidence is set beside its accuracy. ECE is the post-weighted mean absolute gap
    (0 when a label kept at confidence c is right c of the time).

    Example:
        >>> calibration(["a", "a", "b", ""], ["a", "b", "b", "a"], [0.95, 0.95, 0.55, 0.0])["ece"]
        0.45
    """
    kept = [i for i in range(len(gold)) if pred[i] != ABSTAIN]
    table = []
    gap = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i in kept if lo <= conf[i] < hi or (b == bins - 1 and conf[i] >= hi)]
        if not idx:
            continue
        acc = sum(pred[i] == gold[i] for i in idx) / len(idx)
        mean_c = sum(conf[i] for i in idx) / len(idx)
        gap += len(idx) * abs(acc - mean_c)
        table.append({"from": round(lo, 2), "to": round(hi, 2), "posts": len(idx),
                      "confidence": round(mean_c, 4), "accuracy": round(acc, 4)})
    return {"ece": round(gap / len(kept), 4) if kept else None, "bins": table}


def eval_files(labels_path: Path, gold_path: Path, *, baseline: Path | None = None,
               labelmap: Path | str | None = None) -> dict[str, Any]:
    """Read the files and :func:`evaluate`. A ``keyword_labels.parquet`` beside a
    ``post_labels.parquet`` is used as the baseline unless one is given; with a
    ``labelmap`` gold labels may be display names."""
    labels = read_labels(labels_path)
    gold = read_gold(gold_path)
    if baseline is None:
        beside = Path(labels_path).with_name("keyword_labels.parquet")
        if beside.exists() and Path(labels_path).name == "post_labels.parquet":
            baseline = beside
    base = read_labels(baseline) if baseline else None
    overlap = len(set(gold["post_id"]) & set(labels["post_id"]))
    if overlap == 0:
        raise WeaklabelError(
            f"no post_id of {gold_path} occurs in {labels_path}; are they the same data set?"
        )
    names = None
    if labelmap is not None:
        from weaklabel.labels.labelmap import load_labelmap

        names = load_labelmap(labelmap).id_of()
    return evaluate(labels, gold, baseline=base, names=names)


@dataclass(frozen=True)
class EvalSummary(Summary):
    """The headline of :func:`evaluate` and, in ``metrics``, all of it (what
    ``weaklabel eval --json`` prints)."""

    macro_f1: float
    accuracy: float
    coverage: float
    posts: int
    gold: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def text(self) -> str:
        return (f"macro-F1 {self.macro_f1:.3f}, accuracy {self.accuracy:.3f} on "
                f"{self.coverage:.1%} of {self.posts} gold posts labelled")


def run_eval(ws: Workspace, cfg: Config, *, force: bool = False,
             progress: bool = True) -> StageReport[EvalSummary]:
    """Score ``cfg.eval.labels`` (default: the workspace's ``post_labels.parquet``)
    against ``cfg.gold``, beside ``cfg.eval.baseline`` (default: the
    ``keyword_labels.parquet`` beside the labels); ``cfg.labelmap`` lets gold name
    labels by display name.

    eval writes nothing, so it is never up to date: it scores every time (``force`` and
    ``progress`` are the contract's and change nothing).

    Raises:
        WeaklabelError: no ``gold`` in the config; a missing or broken labels or gold
            file; no post of gold among the labels.
    """
    if not cfg.gold:
        raise WeaklabelError("no gold file: pass GOLD or set gold in the config")
    labels = Path(cfg.eval.labels) if cfg.eval.labels else ws.path("post_labels.parquet")
    gold = Path(cfg.gold)
    baseline = Path(cfg.eval.baseline) if cfg.eval.baseline else None
    if not labels.exists():
        raise WeaklabelError(f"labels file {labels} does not exist; run weaklabel propagate")
    for key, given in (("gold", gold), ("eval.baseline", baseline)):
        if given is not None and not given.is_file():
            raise WeaklabelError(f"{key} file {given} does not exist; fix {key} in the config")
    inputs: dict[str, Path | str] = {"labels": labels, "gold": gold}
    if baseline is not None:
        inputs["baseline"] = baseline
    with ws.stage("eval", outputs=(), params={}, inputs=inputs, summary=EvalSummary,
                  force=force) as st:
        m = eval_files(labels, gold, baseline=baseline, labelmap=cfg.labelmap)
        st.done(EvalSummary(macro_f1=float(m["macro_f1"]), accuracy=float(m["accuracy"]),
                            coverage=float(m["coverage"]), posts=int(m["posts"]),
                            gold=str(gold), metrics=m))
    return st.report


def format_report(m: dict[str, Any]) -> str:
    """Plain-text table of :func:`evaluate`'s result."""
    lines = [f"posts {m['posts']}  coverage {m['coverage']:.1%}  accuracy(covered) "
             f"{m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}", "",
             f"{'label':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}{'pred':>7}"]
    for lab, v in m["per_label"].items():
        lines.append(f"{lab:<16}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1']:>8.3f}"
                     f"{v['support']:>9}{v['predicted']:>7}")
    lines += ["", f"{'subset':<18}{'coverage':>9}{'accuracy':>9}{'macro-F1':>9}"]
    for name, s in m["subsets"].items():
        lines.append(f"{name:<18}{s['coverage']:>9.1%}{s['accuracy']:>9.3f}{s['macro_f1']:>9.3f}")
    if m.get("abstained_guess_accuracy") is not None:
        lines.append(f"\nabstained posts with a best guess: {m['abstained_with_guess']}, "
                     f"guess accuracy {m['abstained_guess_accuracy']:.3f} "
                     f"(kept labels: {m['accuracy']:.3f})")
    if m.get("confidence_bins"):
        lines.append("confidence  " + "  ".join(
            f"[{b['from']:.1f},{b['to']:.1f}) n={b['posts']} acc={b['accuracy']:.2f}"
            for b in m["confidence_bins"]))
    cal = m.get("calibration") or {}
    if cal.get("bins"):
        lines.append(f"\nreliability (kept labels; ECE {cal['ece']:.3f}):")
        lines.append(f"  {'confidence':<12}{'posts':>7}{'mean conf':>11}{'accuracy':>10}")
        for b in cal["bins"]:
            lines.append(f"  [{b['from']:.1f},{b['to']:.1f}){'':<3}{b['posts']:>7}"
                         f"{b['confidence']:>11.3f}{b['accuracy']:>10.3f}")
    for key, text in (("predicted_labels_not_in_gold", "predicted labels absent from gold"),
                      ("gold_labels_never_predicted", "gold labels never predicted")):
        if m.get(key):
            lines.append(f"note: {text}: {', '.join(m[key])} (a misspelt label id?)")
    lines.append("\nconfusion (gold → predicted):")
    for g, row in m["confusion"].items():
        lines.append(f"  {g:<14} " + "  ".join(f"{p}:{c}" for p, c in row.items()))
    return "\n".join(lines)
