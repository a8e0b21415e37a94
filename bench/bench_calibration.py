"""Does confidence mean probability? Estimated against measured precision on every dev corpus.

For each dev corpus (the chatbot questions and a fixed-seed sample of the petition titles
of ../shared/data, the bundled example; as in ``bench_quality.py``) propagate runs once at
its defaults. Its labels are then kept as ``--target-precision`` would keep them at 0.8,
0.9 and 0.95 — the same :func:`~weaklabel.labels.propagate.pick_threshold` over the same
confidences, so the kept set is the one propagate would write — and at the default
threshold (one expected-macro-F1 threshold for every label) and at
``--min-confidence 0.5``. Per row:
the precision propagate estimates for the kept labels (the mean of their confidences, no
gold involved), the precision measured against gold, macro-F1, the coverage, the expected
calibration error of the kept labels, the measured precision of the abstained posts' best
guesses, and the estimate seen through the seeds' gold agreement (:func:`through_seed_gold`),
and propagate's CPU seconds. Gold labels are only scored here; nothing feeds back into a
setting.

Usage: python bench/bench_calibration.py [--corpus chatbot petitions example chatbot-sample
       petition-sample] [--petition-rows 20000] [--out bench/out/calibration]
       python bench/bench_calibration.py --table OUT/calibration.json [...]
Writes OUT/calibration.json; reuses OUT/CORPUS/ws (tokens, vectors, clusters) when current.
``--table`` prints the README's table from saved reports (the default and every target
row; targets that keep the same set share a row).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_quality import CORPORA, prepare_corpus, run_corpora  # noqa: E402
from calib_capture import SAMPLES  # noqa: E402

TARGETS = (0.8, 0.9, 0.95)


def kept_rows(labels: Any, gold: Any, target: float, *, cut: float = 0.0) -> dict[str, Any]:
    """The labels ``--target-precision target`` would keep (``cut`` > 0: those
    ``--min-confidence cut`` would keep; neither: what propagate wrote, its default),
    their estimated and measured precision, macro-F1, coverage, ECE, the abstained posts'
    best guesses, and the estimate seen through the seeds' gold agreement (below)."""
    import numpy as np

    from weaklabel.labels.evaluate import calibration, score_labels
    from weaklabel.labels.propagate import pick_threshold

    df = labels.merge(gold.rename(columns={"label": "gold"}), on="post_id", how="inner")
    fixed = (df["source"].isin(["seed", "reviewed"]) & (df["label"] != "")).to_numpy()
    cand = (~df["source"].isin(["seed", "reviewed"]) & (df["top_label"] != "")).to_numpy()
    conf = df["confidence"].to_numpy(dtype=float)
    if target:
        thr = pick_threshold(conf[fixed].tolist(), conf[cand].tolist(), target=target)
    else:
        thr = cut
    keep = fixed | (cand & (conf >= thr - 1e-9)) if target or cut else \
        fixed | (df["source"] == "knn").to_numpy()  # what propagate wrote
    if not target and not cut:
        thr = float(conf[keep & ~fixed].min()) if (keep & ~fixed).any() else 1.0
    pred = np.where(fixed, df["label"], np.where(keep, df["top_label"], ""))
    g = df["gold"].to_numpy()
    right = pred == g
    cal = calibration(pred.tolist(), g.tolist(), conf.tolist())
    abst = cand & ~keep
    return {"target": target or None, "min_confidence": cut or None,
            "threshold": round(float(thr), 4),
            "estimated": round(float(conf[keep].mean()), 4),
            "measured": round(float(right[keep].mean()), 4),
            "macro_f1": score_labels(pred.tolist(), g.tolist())["macro_f1"],
            "coverage": round(float(keep.mean()), 4), "ece": cal["ece"],
            "abstained_measured": round(float((df["top_label"] == df["gold"])[abst].mean()), 4)
            if abst.any() else None, "abstained": int(abst.sum()),
            "through_seed_gold": through_seed_gold(df, keep, fixed)}


def through_seed_gold(df: Any, keep: Any, fixed: Any) -> float | None:
    """What the estimate predicts gold will say, if it is right about what the keywords
    mean: a seed of label y is right by gold as often as y's seeds are (measured), a
    propagated label y of confidence c with probability ``c·S[y,y] + (1 − c)·o[y]``
    (``S``: the seeds' gold confusion, ``o[y]``: the mean of S's column y off the
    diagonal). Where gold agrees with the keywords it equals the plain estimate; where
    the gold is the authors' own choice against their words (the petitions), it shows
    whether the estimate is off or the gold is. A diagnostic: gold, scored only."""
    import numpy as np

    seeds = df[df["source"] == "seed"]
    labels = sorted(set(seeds["label"]))
    if len(labels) < 2:
        return None
    s = {y: {x: float(((seeds["label"] == y) & (seeds["gold"] == x)).sum()) /
             max(int((seeds["label"] == y).sum()), 1) for x in labels} for y in labels}
    off = {x: float(np.mean([s[y][x] for y in labels if y != x])) for x in labels}
    y = np.where(fixed, df["label"], df["top_label"])
    c = df["confidence"].to_numpy(dtype=float)
    vals = [s[y[i]][y[i]] if fixed[i] else c[i] * s[y[i]][y[i]] + (1 - c[i]) * off[y[i]]
            for i in np.nonzero(keep)[0].tolist() if y[i] in s]
    return round(float(np.mean(vals)), 4) if vals else None


def run_corpus(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    from weaklabel.labels.propagate import label_posts

    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    ws, cfg, labelmap, gold = prep["ws"], prep["cfg"], prep["labelmap"], prep["gold"]
    t0, c0 = time.perf_counter(), time.process_time()
    prop, _ = label_posts(ws, labelmap, cfg)
    seconds = round(time.perf_counter() - t0, 1)
    cpu = round(time.process_time() - c0, 1)
    ids = labelmap.id_of()
    gold = gold.assign(label=gold["label"].map(lambda g: ids.get(g, g)))
    rows = [kept_rows(prop.labels, gold, 0.0), kept_rows(prop.labels, gold, 0.0, cut=0.5),
            *(kept_rows(prop.labels, gold, t) for t in TARGETS)]
    est = {k: v for k, v in prop.estimates.items() if k != "trials"}
    return {"posts": len(gold), "labels": len(labelmap.labels), "seconds": seconds,
            "cpu_seconds": cpu, "estimates": est, "rows": rows}


def readme_table(paths: list[Path]) -> str:
    """The README "Calibration" table from saved reports, one line a distinct kept set."""
    import json

    lines = ["| corpus | rows | `--target-precision` | estimated | measured | coverage | "
             "macro-F1 | ECE | kept / abstained |", "|---|---|---|---|---|---|---|---|---|"]
    for path in paths:
        for name, r in json.loads(path.read_text("utf-8")).items():
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for v in r["rows"]:
                if not v["min_confidence"]:
                    key = (v["estimated"], v["measured"], v["coverage"], v["target"] is None)
                    groups.setdefault(key, []).append(v)
            for i, rows in enumerate(groups.values()):
                v = rows[0]
                tg = ", ".join(str(x["target"]) for x in rows) if v["target"] else \
                    "**default**"
                ab = "(none)" if v["abstained_measured"] is None else \
                    f"{v['abstained_measured']:.3f}"
                head = f"| {name} | {r['posts']:,} |" if i == 0 else "| | |"
                lines.append(f"{head} {tg} | {v['estimated']:.3f} | {v['measured']:.3f} | "
                             f"{v['coverage'] * 100:.1f} % | {v['macro_f1']:.3f} | "
                             f"{v['ece']:.3f} | {v['measured']:.3f} / {ab} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--table"]:
        print(readme_table([Path(a) for a in argv[1:]]))
        return 0
    CORPORA.update(SAMPLES)  # the tests' bundled samples too, on request
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=20_000,
                       out=HERE / "out/calibration", filename="calibration.json")
    if done is None:
        return 1
    report, path = done
    print("| corpus | kept by | estimated | measured | macro-F1 | coverage | ECE | "
          "abstained: measured | est. through seeds' gold |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in report.items():
        for i, v in enumerate(r["rows"]):
            by = f"`--target-precision {v['target']}`" if v["target"] else \
                f"`--min-confidence {v['min_confidence']}`" if v["min_confidence"] else \
                f"default (expected macro-F1, cut {v['threshold']:.2f})"
            ab = "" if v["abstained_measured"] is None else \
                f"{v['abstained_measured']:.3f} ({v['abstained']} posts)"
            head = f"{name} ({r['posts']})" if i == 0 else ""
            tg = "" if v["through_seed_gold"] is None else f"{v['through_seed_gold']:.3f}"
            print(f"| {head} | {by} | {v['estimated']:.3f} | {v['measured']:.3f} | "
                  f"{v['macro_f1']:.3f} | {v['coverage']:.1%} | {v['ece']:.3f} | {ab} | {tg} |")
    for name, r in report.items():
        print(f"{name}: propagate {r['cpu_seconds']} CPU s ({r['seconds']} s wall)")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
