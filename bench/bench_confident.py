"""Does confident learning find wrong labels better than the queue's suspicion? (issue 9)

Builds a corpus as ``bench/bench_review.py`` does (the same workspace, so its runs reuse
it) and scores every post with a shown label (its label, or an abstained post's best
guess ``top_label``) three ways, then measures each score's AUC for "the shown label is
wrong" (gold used only to measure):

* **suspicion**: the queue's own score (:func:`weaklabel.review.triage.suspicion`: sources
  that disagree, the margin, a duplicate conflict, abstained);
* **oof**: confident learning's self-confidence (Northcutt et al., cleanlab): one minus
  the out-of-fold probability of the shown label under a cheap discriminative model
  trained on the pipeline's own labels (``post_labels.parquet``; abstained posts are not
  learnt from, each fold's model scores them and the folds' probabilities are averaged),
  exactly as ``review.queue: confident`` computes it
  (:func:`weaklabel.review.triage.workspace_self_confidence`). The model is propagate's
  logistic kind: TF-IDF char_wb 2–4-grams of the captions (min_df 2, sublinear tf) and a
  balanced logistic regression (C 1, 300 iterations), 5 folds by same-text group (a
  stable hash of the token list), one BLAS thread; a post without a probability (its
  label unseen by its training folds) scores 0 here and is counted;
* **rank-mean**: the mean of the two scores' normalized ranks (the one combination,
  fixed before any AUC was seen).

AUC is reported over every scored post and over the labelled posts alone, with the share
shown wrong among each score's top 1 % and 5 % of the posts; the CPU seconds
of the out-of-fold fit (``resource.getrusage``, this process and its threads) beside it.

Usage: python bench/bench_confident.py [--corpus chatbot|petitions] [--rows N]
Writes bench/out/confident_<corpus>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_review import build, corpus, safe_id  # noqa: E402


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def auc(wrong: list[bool], score: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(wrong, score)), 4)


def analyse(name: str, rows: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from scipy.stats import rankdata

    from weaklabel.review.triage import load_queue_inputs, suspicion, workspace_self_confidence
    from weaklabel.workspace import Workspace

    out = HERE / f"out/review_{name}"
    data, config, keywords = corpus(name, out, rows)
    cfg = build(data, out, keywords, config)
    ws = Path(cfg.workspace)
    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    gold = dict(zip(df["id"], df["label"].map(safe_id), strict=True))
    inp = load_queue_inputs(Workspace(ws))
    pl = inp["post_labels"]
    kw = dict(zip(inp["keyword_labels"]["post_id"], inp["keyword_labels"]["label"],
                  strict=True)) if "keyword_labels" in inp else {}
    conflict_images = set(inp["conflicts"]["image"]) if "conflicts" in inp else set()
    posts_images: dict[str, set[str]] = {}
    if "image_labels" in inp:
        for p, im in zip(inp["image_labels"]["post_id"], inp["image_labels"]["image"],
                         strict=True):
            posts_images.setdefault(p, set()).add(im)

    recs = pl.to_dict(orient="records")
    shown = [r["label"] or r.get("top_label") or "" for r in recs]
    keep = [i for i, s in enumerate(shown) if s]
    susp = [suspicion(recs[i], keyword_label=kw.get(recs[i]["post_id"]) or None,
                      conflict=bool(posts_images.get(recs[i]["post_id"], set())
                                    & conflict_images))[0] for i in keep]

    c0, t0 = cpu_seconds(), time.perf_counter()
    p_label = workspace_self_confidence(Workspace(ws), inp)  # what the queue computes
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - t0
    oof = [1.0 - p_label.get(recs[i]["post_id"], 1.0) for i in keep]
    mean_rank = list((rankdata(susp) / len(susp) + rankdata(oof) / len(oof)) / 2)

    wrong = [gold[recs[i]["post_id"]] != shown[i] for i in keep]
    labelled = np.array([bool(recs[i]["label"]) for i in keep])
    res: dict[str, Any] = {"posts": len(recs), "scored": len(keep),
                           "labelled": int(labelled.sum()),
                           "no_probability": sum(recs[i]["post_id"] not in p_label
                                                  for i in keep),
                           "shown_wrong": round(float(np.mean(wrong)), 4),
                           "shown_wrong_labelled": round(float(np.mean(
                               np.array(wrong)[labelled])), 4),
                           "oof_cpu_seconds": round(cpu, 1), "oof_wall_seconds": round(wall, 1),
                           "load_average": [round(x, 2) for x in os.getloadavg()],
                           "auc": {}, "auc_labelled": {}}
    for key, score in (("suspicion", susp), ("oof", oof), ("rank-mean", mean_rank)):
        s = np.array(score)
        res["auc"][key] = auc(wrong, list(s))
        res["auc_labelled"][key] = auc(list(np.array(wrong)[labelled]), list(s[labelled]))
        # the share shown wrong among the top 1 % / 5 % of the posts by the score (ties
        # broken by post order): what a queue of that score alone would put first
        top = np.argsort(-s, kind="stable")
        res.setdefault("wrong_in_top", {})[key] = {
            f"{f:.0%}": round(float(np.mean(np.array(wrong)[top[:round(f * len(recs))]])), 4)
            for f in (0.01, 0.05)}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=("chatbot", "petitions"), default="chatbot")
    ap.add_argument("--rows", type=int, default=0,
                    help="a fixed-seed sample of this many posts (0: all), as bench_review")
    args = ap.parse_args(argv)
    res = analyse(args.corpus, args.rows)
    path = HERE / f"out/confident_{args.corpus}.json"
    path.write_text(json.dumps(res, indent=2), encoding="utf-8")
    print(f"{args.corpus}: {res['scored']} posts scored ({res['labelled']} labelled), "
          f"{res['shown_wrong']:.1%} shown wrong ({res['shown_wrong_labelled']:.1%} of "
          f"the labelled), {res['no_probability']} without an out-of-fold probability")
    for key in res["auc"]:
        top = ", ".join(f"{v:.1%} in the top {k}" for k, v in res["wrong_in_top"][key].items())
        print(f"  AUC {key:<10} all {res['auc'][key]:.4f}   labelled "
              f"{res['auc_labelled'][key]:.4f}   shown wrong: {top}")
    print(f"  out-of-fold fit: {res['oof_cpu_seconds']} CPU s ({res['oof_wall_seconds']} s "
          f"wall, load {res['load_average']}) → {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
