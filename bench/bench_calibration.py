"""Does confidence mean probability? Estimated against measured precision on every dev corpus.

For each dev corpus (the chatbot questions and a fixed-seed sample of the petition titles
of ../shared/data, the bundled example; as in ``bench_quality.py``) propagate runs once at
its defaults. Its labels are then kept as ``--target-precision`` would keep them at 0.8,
0.9 and 0.95 — the same :func:`~weaklabel.labels.propagate.pick_threshold` over the same
confidences, so the kept set is the one propagate would write — and at the default
threshold (``min_confidence``). Per row: the precision propagate estimates for the kept
labels (the mean of their confidences, no gold involved), the precision measured against
gold, the coverage, the expected calibration error of the kept labels, and at the default
threshold the measured precision of the labels kept against the abstained posts' best
guesses. Gold labels are only scored here; nothing feeds back into a setting.

Usage: python bench/bench_calibration.py [--corpus chatbot petitions example]
       [--petition-rows 20000] [--out bench/out/calibration]
Writes OUT/calibration.json; reuses OUT/CORPUS/ws (tokens, vectors, clusters) when current.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_quality import prepare_corpus, run_corpora  # noqa: E402

TARGETS = (0.8, 0.9, 0.95)


def kept_rows(labels: Any, gold: Any, target: float, *, default: float) -> dict[str, Any]:
    """The labels ``--target-precision target`` would keep (0: those kept at the
    default, confidence ``default`` and up), their estimated and measured precision,
    coverage and ECE."""
    import numpy as np

    from weaklabel.labels.evaluate import calibration
    from weaklabel.labels.propagate import pick_threshold

    df = labels.merge(gold.rename(columns={"label": "gold"}), on="post_id", how="inner")
    fixed = df["source"].isin(["seed", "reviewed"]) & (df["label"] != "")
    cand = ~df["source"].isin(["seed", "reviewed"]) & (df["top_label"] != "")
    conf = df["confidence"].to_numpy(dtype=float)
    thr = default if not target else pick_threshold(
        conf[fixed.to_numpy()].tolist(), conf[cand.to_numpy()].tolist(), target=target)
    keep = fixed | (cand & (df["confidence"] >= thr - 1e-9)) if target else \
        fixed | (df["source"] == "knn")  # what propagate wrote
    pred = np.where(fixed, df["label"], np.where(keep, df["top_label"], ""))
    right = pred == df["gold"].to_numpy()
    cal = calibration(pred.tolist(), df["gold"].tolist(), conf.tolist())
    abst = cand & ~keep
    return {"target": target or None, "threshold": round(float(thr), 4),
            "estimated": round(float(conf[keep].mean()), 4),
            "measured": round(float(right[keep].mean()), 4),
            "coverage": round(float(keep.mean()), 4), "ece": cal["ece"],
            "abstained_measured": round(float((df["top_label"] == df["gold"])[abst].mean()), 4)
            if abst.any() else None, "abstained": int(abst.sum())}


def run_corpus(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    from weaklabel.labels.propagate import label_posts

    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    ws, cfg, labelmap, gold = prep["ws"], prep["cfg"], prep["labelmap"], prep["gold"]
    t0 = time.perf_counter()
    prop, _ = label_posts(ws, labelmap, cfg)
    seconds = round(time.perf_counter() - t0, 1)
    ids = labelmap.id_of()
    gold = gold.assign(label=gold["label"].map(lambda g: ids.get(g, g)))
    rows = [kept_rows(prop.labels, gold, t, default=prop.estimates["threshold"])
            for t in (0.0, *TARGETS)]
    est = {k: v for k, v in prop.estimates.items() if k != "trials"}
    return {"posts": len(gold), "labels": len(labelmap.labels), "seconds": seconds,
            "estimates": est, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=20_000,
                       out=HERE / "out/calibration", filename="calibration.json")
    if done is None:
        return 1
    report, path = done
    print("| corpus | kept by | estimated | measured | coverage | ECE | abstained: measured |")
    print("|---|---|---|---|---|---|---|")
    for name, r in report.items():
        for i, v in enumerate(r["rows"]):
            by = f"`--target-precision {v['target']}`" if v["target"] else \
                f"default (confidence >= {v['threshold']:.2f})"
            ab = "" if v["abstained_measured"] is None or v["target"] else \
                f"{v['abstained_measured']:.3f} ({v['abstained']} posts)"
            head = f"{name} ({r['posts']})" if i == 0 else ""
            print(f"| {head} | {by} | {v['estimated']:.3f} | {v['measured']:.3f} | "
                  f"{v['coverage']:.1%} | {v['ece']:.3f} | {ab} |")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
