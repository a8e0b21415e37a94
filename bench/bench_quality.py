"""Label quality on every dev corpus, in one table: ``make bench-quality``.

Corpora: the chatbot questions and the petition titles of ../shared/data (real Korean
text with gold labels; the label map is the keyword-seeded draft as it stands, as a new
user would start) and the bundled example (its reviewed ``examples/labelmap.yaml``).
Per corpus, rows:

* keywords alone: the label map's keywords, nothing else (``keyword_labels.parquet``);
* seeds+KNN: the pipeline before the discriminative stage (sources keyword, knn,
  prototype);
* weaklabel: the full pipeline at its defaults;
* weaklabel (logistic): the same with the self-trained logistic regression as the
  classifier (the default before ``nb_em``);
* weaklabel (char only): ``nb_em`` over the char n-grams alone, no keyword expansion
  (the default before the token view and the expansion round);
* supervised ceiling: TF-IDF character 2–4-grams + logistic regression trained on all
  gold labels, 5-fold cross-validated predictions.

* weaklabel p>=0.95: the full pipeline with ``--target-precision 0.95``.

Columns: macro-F1 over all posts (an abstained post counts as a miss), accuracy of the
kept labels (the measured precision), coverage, the expected calibration error of the
kept labels' confidence, and the precision the pipeline estimated for its kept labels
without gold. Below each table, how well the confidence ranks (``ranking``, independent
of where the threshold sits): macro-F1 with every post labelled (its top label), and the
accuracy of the most confident 50 % and 80 % of all posts. Nothing here feeds back into
any setting: gold labels are only scored.

Usage: python bench/bench_quality.py [--corpus chatbot petitions example]
       [--petition-rows N] [--out bench/out/quality]
Writes bench/out/quality/quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared/data"

CORPORA: dict[str, dict[str, Any]] = {
    "chatbot": {"data": SHARED / "chatbot_topics.csv", "config": HERE / "chatbot/config.yaml",
                "keywords": HERE / "chatbot/seed_keywords.yaml"},
    "petitions": {"data": SHARED / "petition_titles.csv",
                  "config": HERE / "petitions/config.yaml",
                  "keywords": SHARED / "petition_keywords.yaml"},
    "example": {"data": ROOT / "examples/data/posts.csv", "gold": ROOT / "examples/data/gold.csv",
                "config": ROOT / "configs/example.yaml",
                "keywords": ROOT / "examples/seed_keywords.yaml",
                "labelmap": ROOT / "examples/labelmap.yaml"},
}

# Pipeline variants scored per corpus: propagate overrides on the corpus's config.
VARIANTS: dict[str, dict[str, Any]] = {
    "seeds+KNN": {"propagate.sources": ("keyword", "knn", "prototype"),
                  "propagate.combine": "blend", "propagate.compounds": False,
                  "propagate.holdout": 0.0},
    "weaklabel": {},
    "weaklabel (logistic)": {"propagate.classifier_model": "logistic"},
    "weaklabel (char only)": {"propagate.classifier_token_weight": 0.0,
                              "propagate.classifier_expand": 0},
    "weaklabel p>=0.95": {"propagate.target_precision": 0.95},
}


def ceiling(texts: list[str], gold: list[str], cache: Path) -> dict[str, Any]:
    """The supervised reference: 5-fold cross-validated TF-IDF char n-gram + LR."""
    import hashlib

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from weaklabel.labels.evaluate import score_labels

    key = hashlib.sha1(json.dumps([texts, gold], ensure_ascii=False).encode()).hexdigest()
    if cache.exists():
        got = json.loads(cache.read_text("utf-8"))
        if got.get("key") == key:
            return dict(got["score"])
    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                        sublinear_tf=True).fit_transform(texts)
    pred = cross_val_predict(LogisticRegression(max_iter=2000, C=4.0), x, gold, cv=5)
    score = score_labels(list(pred), gold)
    score.pop("per_label")
    score["calibration"] = {"ece": None}
    cache.write_text(json.dumps({"key": key, "score": score}), "utf-8")
    return score


def prepare_corpus(name: str, spec: dict[str, Any], out: Path, *,
                   petition_rows: int) -> dict[str, Any]:
    """One corpus up to its label map, as a new user would start: the data (the example
    generated when missing; petitions sampled with seed 7 when ``petition_rows``), gold,
    tokenize, embed and cluster on a workspace under ``out/name``, the label map loaded.

    Returns ``ws``, ``cfg``, ``labelmap``, ``gold``, ``texts_df`` and ``text_s`` (seconds
    of the text stages). Shared by every label benchmark so they score the same posts.
    """
    import pandas as pd

    from weaklabel.config import load_config, with_overrides
    from weaklabel.contracts import WORD_CLUSTERS
    from weaklabel.labels.cluster import run_cluster
    from weaklabel.labels.labelmap import load_labelmap
    from weaklabel.text.embed import run_embed
    from weaklabel.text.tokens import run_tokenize
    from weaklabel.workspace import Workspace

    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    data = Path(spec["data"])
    if name == "example" and not data.exists():
        import subprocess

        subprocess.run([sys.executable, str(ROOT / "examples/generate.py"), str(data.parent),
                        "--posts", "5000", "--workers", "2"], check=True)
    if "gold" in spec:
        gold = pd.read_csv(spec["gold"], dtype=str)
        texts_df = pd.read_csv(data, dtype=str).rename(columns={"caption": "text"})
        texts_df = gold.merge(texts_df[["post_id", "text"]], on="post_id")
    else:
        df = pd.read_csv(data, dtype=str)
        if name == "petitions" and petition_rows and petition_rows < len(df):
            df = df.sample(petition_rows, random_state=7).sort_index()
            data = d / "petitions_sample.csv"
            df.to_csv(data, index=False)
        gold = df.rename(columns={"id": "post_id"})[["post_id", "label"]]
        texts_df = df.rename(columns={"id": "post_id"})
    cfg = with_overrides(load_config(spec["config"]), {
        "workspace": str(d / "ws"), "posts.path": str(data),
        "seed_keywords": str(spec["keywords"]),
        "tokenize.userdict": str(ROOT / "userdict"), "tokenize.workers": 2})
    ws = Workspace(Path(cfg.workspace)).ensure()
    t0 = time.perf_counter()
    run_tokenize(ws, cfg, progress=False)
    run_embed(ws, cfg)
    run_cluster(ws, cfg)
    text_s = time.perf_counter() - t0
    lm_path = Path(spec.get("labelmap") or ws.path("labelmap.draft.yaml"))
    known = set(ws.read("word_clusters.parquet", WORD_CLUSTERS)["cluster"].astype(int))
    labelmap = load_labelmap(lm_path, known_clusters=known)
    return {"ws": ws, "cfg": cfg, "labelmap": labelmap, "gold": gold,
            "texts_df": texts_df, "text_s": text_s}


def run_corpus(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    from weaklabel.config import with_overrides
    from weaklabel.labels.evaluate import evaluate
    from weaklabel.labels.propagate import label_posts

    d = out / name
    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    ws, cfg, labelmap = prep["ws"], prep["cfg"], prep["labelmap"]
    gold, texts_df, text_s = prep["gold"], prep["texts_df"], prep["text_s"]
    rows: dict[str, Any] = {}
    extra_tables: dict[str, Any] = {}
    keyword = None
    for vname, overrides in VARIANTS.items():
        vcfg = with_overrides(cfg, overrides)
        t1 = time.perf_counter()
        prop, keyword = label_posts(ws, labelmap, vcfg)
        m = evaluate(prop.labels, gold, names=labelmap.id_of())
        if vname == "weaklabel":
            extra_tables = offline_tables(prop, gold, labelmap.id_of(), vcfg)
        if not vname.endswith("0.95"):
            extra_tables.setdefault("ranking", {})[vname] = ranking(prop.labels, gold,
                                                                    labelmap.id_of())
        rows[vname] = {**{k: m[k] for k in ("macro_f1", "accuracy", "coverage")},
                       "ece": m["calibration"]["ece"],
                       "estimated_precision": prop.estimates.get("estimated_precision"),
                       "seconds": round(time.perf_counter() - t1, 1),
                       "reliability": m["calibration"]["bins"],
                       "abstained_guess_accuracy": m["abstained_guess_accuracy"],
                       **({"estimates": prop.estimates} if getattr(prop, "estimates", None)
                          else {})}
    assert keyword is not None
    k = evaluate(keyword, gold, names=labelmap.id_of())
    rows = {"keywords alone": {**{x: k[x] for x in ("macro_f1", "accuracy", "coverage")},
                               "ece": k["calibration"]["ece"]}, **rows}
    c = ceiling(texts_df["text"].fillna("").tolist(), texts_df["label"].tolist(),
                d / "ceiling.json")
    rows["supervised ceiling"] = {x: c[x] for x in ("macro_f1", "accuracy", "coverage")}
    rows["supervised ceiling"]["ece"] = None
    return {"posts": len(gold), "labels": len(labelmap.labels), "text_seconds": round(text_s, 1),
            "rows": rows, **extra_tables}


def ranking(labels: Any, gold: Any, names: dict[str, str]) -> dict[str, float]:
    """How well the confidence ranks, wherever the threshold sits: macro-F1 with every
    post labelled (its label, else its top label), and the accuracy of the most confident
    50 % and 80 % of all posts (seeds at their confidence; ties by post id)."""
    import numpy as np

    from weaklabel.labels.evaluate import evaluate

    df = labels.copy()
    df["label"] = np.where(df["label"] != "", df["label"], df["top_label"])
    full = evaluate(df, gold, names=names)["macro_f1"]
    g = gold.rename(columns={"label": "gold"}).astype({"post_id": str})
    m = df.astype({"post_id": str}).merge(g, on="post_id")
    m["gold"] = [names.get(x, x) for x in m["gold"]]
    m = m.sort_values(["confidence", "post_id"], ascending=[False, True], kind="stable")
    right = (m["label"] == m["gold"]).to_numpy()
    out = {"macro_f1_full_coverage": round(float(full), 4)}
    for share in (0.5, 0.8):
        out[f"accuracy_at_{int(share * 100)}"] = round(
            float(right[: max(1, int(len(right) * share))].mean()), 4)
    return out


def offline_tables(prop: Any, gold: Any, names: dict[str, str], cfg: Any) -> dict[str, Any]:
    """From the default run's votes, without re-running anything: every combiner over the
    same final votes (each non-seed post its top label, nothing abstains), and the default
    labels kept at lower confidence thresholds (its ``top_label`` where the confidence
    reaches the threshold)."""
    import numpy as np

    from weaklabel.labels.evaluate import evaluate
    from weaklabel.labels.sources import COMBINERS

    fixed = prop.labels["source"].isin(["seed", "reviewed"]).to_numpy()
    combiners: dict[str, float] = {}
    for cname, combine in COMBINERS.items():
        if not prop.votes:
            break
        post = combine(prop.votes, cfg.propagate)
        top = np.where(post.sum(axis=1) > 0, post.argmax(axis=1), -1)
        lab = np.array([prop.classes[j] if j >= 0 else "" for j in top], dtype=object)
        df = prop.labels.copy()
        df["label"] = np.where(fixed, df["label"].to_numpy(), lab)
        combiners[cname] = evaluate(df, gold, names=names)["macro_f1"]
    sweep: dict[str, Any] = {}
    conf = prop.labels["confidence"].to_numpy()
    for t in (0.0, 0.3, 0.4, 0.5):
        df = prop.labels.copy()
        keep = fixed | ((df["top_label"] != "").to_numpy() & (conf >= t - 1e-9))
        df["label"] = np.where(fixed, df["label"], np.where(keep, df["top_label"], ""))
        m = evaluate(df, gold, names=names)
        sweep[f"{t:.1f}"] = {k: m[k] for k in ("macro_f1", "accuracy", "coverage",
                                              "abstained_guess_accuracy")}
    return {"combiners_full_coverage": combiners, "threshold_sweep": sweep}


def run_corpora(argv: list[str] | None, run: Any, *, description: str, rows: int,
                out: Path, filename: str) -> tuple[dict[str, Any], Path] | None:
    """Every label benchmark's command line: ``--corpus``, ``--petition-rows`` (default
    ``rows``), ``--out``; ``run(name, spec, out, petition_rows=)`` per corpus, the report
    written as JSON to ``out/filename``. None (after saying so) when a corpus has no data."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--corpus", nargs="+", choices=sorted(CORPORA), default=list(CORPORA))
    ap.add_argument("--petition-rows", type=int, default=rows,
                    help="a fixed-seed sample of the petitions (0: all 60,000)")
    ap.add_argument("--out", type=Path, default=out)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    report = {}
    for name in args.corpus:
        spec = CORPORA[name]
        if not Path(spec["data"]).exists() and name != "example":
            print(f"no data at {spec['data']}", file=sys.stderr)
            return None
        report[name] = run(name, spec, args.out, petition_rows=args.petition_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / filename
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
    return report, path


def main(argv: list[str] | None = None) -> int:
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=0,
                       out=HERE / "out/quality", filename="quality.json")
    if done is None:
        return 1
    report, path = done
    print(f"{'corpus (posts)':<18}{'labels':<21}{'macro-F1':>9}{'accuracy':>9}{'coverage':>9}"
          f"{'ECE':>7}{'est.prec':>9}")
    for name, r in report.items():
        for i, (row, v) in enumerate(r["rows"].items()):
            ece = "" if v["ece"] is None else f"{v['ece']:.3f}"
            est = "" if v.get("estimated_precision") is None else \
                f"{v['estimated_precision']:.3f}"
            head = f"{name} ({r['posts']})" if i == 0 else ""
            print(f"{head:<18}{row:<21}{v['macro_f1']:>9.3f}{v['accuracy']:>9.3f}"
                  f"{v['coverage']:>9.1%}{ece:>7}{est:>9}")
    for name, r in report.items():
        for vname, v in r.get("ranking", {}).items():
            print(f"{name}: {vname} ranks: macro-F1 at full coverage "
                  f"{v['macro_f1_full_coverage']:.3f}, accuracy of the most confident 50 % "
                  f"{v['accuracy_at_50']:.3f}, 80 % {v['accuracy_at_80']:.3f}")
    for name, r in report.items():
        combos = ", ".join(f"{k} {v:.3f}" for k, v in r.get("combiners_full_coverage",
                                                             {}).items())
        print(f"{name}: combiners over the final votes, nothing abstaining: {combos}")
        for t, v in r.get("threshold_sweep", {}).items():
            ab = v["abstained_guess_accuracy"]
            print(f"{name}: kept at confidence >= {t}: macro-F1 {v['macro_f1']:.3f}, "
                  f"accuracy {v['accuracy']:.3f}, coverage {v['coverage']:.1%}, abstained "
                  f"best guesses {'n/a' if ab is None else f'{ab:.3f}'} right")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
