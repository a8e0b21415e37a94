"""Label quality on real Korean text: the chatbot topics data set in ../shared/data.

Runs the real pipeline (Okt tokenize → Word2Vec → KMeans → keyword seeds → KNN) with
three to five keywords per topic written before looking at the data
(bench/chatbot/seed_keywords.yaml), and reports eval beside two references measured in
the same run:

* floor: keyword matching alone (the keyword-only baseline);
* ceiling: a supervised classifier trained on all gold labels (TF-IDF character 2–4-grams
  + logistic regression, 5-fold cross-validated predictions).

Usage: python bench/bench_chatbot.py [--data PATH] [--out bench/out/chatbot]
Writes bench/out/chatbot.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/chatbot_topics.csv")
    ap.add_argument("--out", type=Path, default=HERE / "out/chatbot")
    args = ap.parse_args(argv)
    import pandas as pd

    from weaklabel.config import load_config, with_overrides
    from weaklabel.labels.evaluate import score_labels
    from weaklabel.pipeline import run_build

    if not args.data.exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    gold_path = args.out / "gold.csv"
    df = pd.read_csv(args.data)
    df.rename(columns={"id": "post_id"})[["post_id", "label"]].to_csv(gold_path, index=False)
    labelmap = args.out / "labelmap.yaml"
    cfg = with_overrides(load_config(HERE / "chatbot/config.yaml"), {
        "workspace": str(args.out / "ws"), "posts.path": str(args.data),
        "labelmap": str(labelmap), "gold": str(gold_path),
        "seed_keywords": str(HERE / "chatbot/seed_keywords.yaml")})
    t0 = time.perf_counter()
    res = run_build(cfg, progress=False)
    if res.stopped:  # first run: accept the keyword-seeded draft as it stands
        labelmap.write_text((Path(cfg.workspace) / "labelmap.draft.yaml").read_text("utf-8"),
                            encoding="utf-8")
        res = run_build(cfg, progress=False)
    elapsed = time.perf_counter() - t0
    m = next(r.summary for r in res.stages if r.stage == "eval")

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                        sublinear_tf=True).fit_transform(df["text"].fillna(""))
    pred = cross_val_predict(LogisticRegression(max_iter=2000, C=4.0), x, df["label"], cv=5)
    ceiling = score_labels(list(pred), df["label"].tolist())
    ceiling.pop("per_label")
    report = {
        "posts": m["posts"],
        "weaklabel": {k: m[k] for k in ("macro_f1", "accuracy", "coverage")},
        "seed": m["subsets"]["seed"],
        "knn": m["subsets"]["knn"],
        "floor_keywords": m["subsets"].get("keyword_baseline"),
        "ceiling_supervised": ceiling,
        "abstained_guess_accuracy": m["abstained_guess_accuracy"],
        "confidence_bins": m["confidence_bins"],
        "pipeline_seconds": round(elapsed, 1),
    }
    out = HERE / "out/chatbot.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{'':<22}{'macro-F1':>9}{'accuracy':>10}{'coverage':>10}")
    rows = [("keywords alone", report["floor_keywords"]), ("seeds (label map)", report["seed"]),
            ("weaklabel (seed+KNN)", report["weaklabel"]),
            ("supervised ceiling", report["ceiling_supervised"])]
    for name, r in rows:
        if r:
            print(f"{name:<22}{r['macro_f1']:>9.3f}{r['accuracy']:>10.3f}{r['coverage']:>10.1%}")
    print(f"abstained posts' best-guess accuracy: {report['abstained_guess_accuracy']} "
          f"(kept labels: {report['weaklabel']['accuracy']})")
    print(f"pipeline {elapsed:.1f}s → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
