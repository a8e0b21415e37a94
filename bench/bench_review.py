"""Does reviewing the queue first beat reviewing at random? A simulated reviewer on real text.

The real pipeline labels a real corpus of ../shared/data (``--corpus``: the chatbot topics
or the petition titles, as ``bench/bench_quality.py`` defines them; ``--rows N`` a
fixed-seed sample). A simulated reviewer answers from the gold labels:
the shown label when gold agrees, else the gold one. For N = 1 % and 5 % of the posts:

* **queue**: the first N items of ``weaklabel review queue`` (likely-wrong first, its 5 %
  random slice mixed in, exactly as a person would get them; ``--queue-draws K``: K
  queues by the same rules, their random slices seeded 9, 10, …, for the queue's own
  spread: which 5 % is the slice decides which items are scored and in what order);
* **suspicion** (``--queues queue,suspicion``): the same queue without its density and
  diversity (what they add);
* **random**: N posts drawn at random (``--draws`` seeds, 5; the same draws for every
  variant), reported as mean, standard deviation and range;
* **oracle-random** / **oracle-queue** (``--queues queue,oracle-random``): ceilings, not
  queues, since gold picks them: N posts whose shown label is wrong, drawn at random or
  in queue order. What N reviews gain when every one is a correction, which bounds what
  any queue can gain over random with the same propagate.

The answers go through the real path: a decisions CSV → ``review import`` →
``reviewed_labels.parquet`` in a review workspace (every built artifact linked, see
:func:`review_workspace`) → the real ``propagate`` stage, which reads the reviewed labels
itself as gold seeds that override every source and that its classifier learns from.
Gains are measured from propagate re-run with no reviews.

Reported per N, variant and strategy: macro-F1 after, the gain (with its spread over the
draws), the gain from the corrections alone (no re-propagation) and the queue's gain ÷
random's mean (and ÷ random's mean ± one standard error). Also: precision per label
estimated from the random slice among the queue's first 5 % against the true precision
of the labels.

Variants compared in one run, on the same random draws: ``--variants`` (propagate
settings, :data:`VARIANTS`) and ``--queues`` (queue orderings, :data:`QUEUES`).

Usage: python bench/bench_review.py [--corpus chatbot|petitions] [--rows N]
       [--fractions 0.01,0.05] [--variants default,reviews-choose] [--queues queue,suspicion]
       [--draws 5] [--queue-draws 1] [--out bench/out/review_<corpus>] [--tag T]
Writes bench/out/review_<corpus>.json (``--tag`` adds a suffix).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_quality import CORPORA  # noqa: E402  (the corpora, their configs and keywords)


def build(data: Path, out: Path, keywords: Path, config: Path) -> Any:
    """Run the real pipeline up to propagate (the keyword-seeded label map as drafted)."""
    from weaklabel.config import load_config, with_overrides
    from weaklabel.pipeline import build_all

    labelmap = out / "labelmap.yaml"
    cfg = with_overrides(load_config(config), {
        "workspace": str(out / "ws"), "posts.path": str(data), "labelmap": str(labelmap),
        "seed_keywords": str(keywords)})
    res = build_all(cfg, progress=False)
    if res.stopped:  # first run: accept the keyword-seeded draft as it stands
        import re

        draft = (Path(cfg.workspace) / "labelmap.draft.yaml").read_text("utf-8")
        # the label map's ids allow no "/" (petition categories have it): "/" → "_"
        draft = re.sub(r"(?m)^(\s+)(\S[^:\n]*/[^:\n]*):(\s*)$",
                       lambda m: f"{m[1]}{safe_id(m[2])}:{m[3]}", draft)
        labelmap.write_text(draft, encoding="utf-8")
        build_all(cfg, progress=False)
    return cfg


def safe_id(label: str) -> str:
    return label.replace("/", "_")


KEEP_OUT = ("review", "reviewed_labels.parquet", "reviewed_images.parquet")
"""What a review workspace does not share with the built one: its own decisions."""


def review_workspace(base_ws: Path, tmp: Path, name: str) -> Path:
    """A workspace beside the built one: every artifact linked, no decisions yet.

    The stages write atomically (a rename onto the name), so a re-run propagate replaces
    the link with its own file and the built workspace is never changed.
    """
    ws = tmp / name
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    for f in sorted(base_ws.iterdir()):
        if f.name in KEEP_OUT or f.name.endswith(".lock") or f.name.startswith("."):
            continue
        (ws / f.name).symlink_to(f.resolve())
    return ws


def repropagate(ws: Path, cfg: Any) -> Any:
    """The real stage: ``propagate`` reads ``reviewed_labels.parquet`` itself."""
    import pandas as pd

    from weaklabel.labels.propagate import run_propagate
    from weaklabel.workspace import Workspace

    run_propagate(Workspace(ws), cfg, force=True)
    return pd.read_parquet(ws / "post_labels.parquet")


def macro_f1(labels: Any, gold: dict[str, str]) -> float:
    from weaklabel.labels.evaluate import score_labels

    lab = dict(zip(labels["post_id"], labels["label"], strict=True))
    ids = sorted(gold)
    return float(score_labels([lab.get(p, "") for p in ids], [gold[p] for p in ids])["macro_f1"])


def review(items: list[tuple[str, str]], gold: dict[str, str], base_ws: Path, tmp: Path,
           name: str) -> tuple[dict[str, str], Path]:
    """Answer from gold, write a decisions CSV, import it for real into a review workspace.

    Returns the reviewed labels (``reviewed_labels.parquet``) and that workspace.
    """
    import csv

    from weaklabel.review.reviewed import read_reviewed_labels
    from weaklabel.review.transfer import import_decisions
    from weaklabel.workspace import Workspace

    ws = review_workspace(base_ws, tmp, name)
    path = tmp / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "label", "reviewer"])
        for post_id, _shown in items:
            w.writerow([post_id, gold[post_id], "sim"])
    import_decisions(Workspace(ws), path)
    df = read_reviewed_labels(ws)
    assert df is not None
    return dict(zip(df["post_id"], df["label"], strict=True)), ws


QUEUES: dict[str, dict[str, Any]] = {
    "queue": {},  # as `weaklabel review queue`
    "suspicion": {"density": None, "vectors": None},  # suspicion alone: no density, no diversity
    "labelled-first": {"abstained": 0.0},  # abstained posts only as suspicious as others
    "error-turns": {"turns": "error"},  # labels take turns by their estimated error
    "no-groups": {"groups": None},  # every post of a same-text group queued on its own
    "error": {"score": "error"},  # suspicion = 1 - calibrated confidence
    "error-no-groups": {"score": "error", "groups": None},
    "uncertain-density": {"density": "uncertain"},  # neighbours weighed by 1 - confidence
    "error-uncertain-density": {"score": "error", "density": "uncertain"},
    "seed2": {"seed_weight": 2.0},  # a keyword seed's priority doubled
    "seed4": {"seed_weight": 4.0},
    "error-seed2": {"score": "error", "seed_weight": 2.0},
    "audit": {"audit": True},  # one seed per (label, seeding word) interleaved at the top
    "equal-cluster": {"turns": "equal", "vectors": None},  # the queue before f1 + cosine
    "cosine": {"turns": "equal"},  # cosine diversity, equal turns
    "f1-turns": {"vectors": None},  # f1 turns, word-cluster diversity
    "audit-cosine": {"audit": True, "turns": "equal"},
    "coverage": {"coverage": True},  # keyword seeds count as taken: reviews go elsewhere
    # confident learning: suspicion ranked with 1 - out-of-fold p(shown label)
    "confident": {"self_confidence": "compute"},
    # confident learning alone: suspicion = 1 - out-of-fold p(shown label)
    "cl": {"self_confidence": "compute", "self_confidence_rule": "alone"},
    # the same without density in the priority (diversity, turns, groups as they are)
    "cl-no-density": {"self_confidence": "compute", "self_confidence_rule": "alone",
                      "density_weight": False},  # review.queue: cl-no-density
}
"""Queue orderings: name → overrides of the inputs :func:`build_queue` gets from
:func:`load_queue_inputs` (the queue as built: f1 turns, cosine diversity)."""

ORACLES = ("oracle-queue", "oracle-random")
"""Ceilings, not queues (they read gold): the queue's items whose shown label gold says
is wrong, in queue order; and wrong-shown posts drawn at random (seed 0). What reviews
gain when every one is a correction."""


def queue_overrides(sim: Any, over: dict[str, Any]) -> dict[str, Any]:
    """A queue's overrides, ``density: uncertain`` made (each post's neighbours weighed
    by how uncertain their labels are, one minus the calibrated confidence) and
    ``self_confidence: compute`` (the out-of-fold probabilities, as ``review.queue:
    confident`` computes them)."""
    from weaklabel.review.triage import workspace_density
    from weaklabel.workspace import Workspace

    if over.get("self_confidence") == "compute":
        from weaklabel.review.triage import load_queue_inputs, workspace_self_confidence

        ws = Workspace(sim.ws)
        over = {**over, "self_confidence": workspace_self_confidence(ws, load_queue_inputs(ws))}
    if over.get("density") != "uncertain":
        return over

    unc = {p: 1.0 - float(c) for p, c in zip(sim.base["post_id"], sim.base["confidence"],
                                               strict=True)}
    return {**over, "density": workspace_density(Workspace(sim.ws), weight=unc)}


def oracles(sim: Any, queue: Any, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The :data:`ORACLES` asked for (gold picks them: ceilings, never a queue)."""
    out = {}
    if "oracle-queue" in names:
        out["oracle-queue"] = [(p, lab) for p, lab in zip(queue["post_id"], queue["label"],
                                                          strict=True) if sim.gold[p] != lab]
    if "oracle-random" in names:
        wrong = [p for p in sorted(sim.gold) if sim.shown.get(p, "") != sim.gold[p]]
        out["oracle-random"] = [(p, sim.shown.get(p, "")) for p in
                                random.Random(0).sample(wrong, len(wrong))]
    return out


def corpus(name: str, out: Path, rows: int) -> tuple[Path, Path, Path]:
    """The corpus's data, config and keywords (``bench_quality.CORPORA``); ``rows`` > 0
    takes a fixed-seed sample of that many posts (seed 7, as bench_quality does)."""
    import pandas as pd

    spec = CORPORA[name]
    data = Path(spec["data"])
    if not data.exists():
        raise SystemExit(f"no data at {data}")
    if rows:
        df = pd.read_csv(data, dtype=str, keep_default_na=False)
        if rows < len(df):
            out.mkdir(parents=True, exist_ok=True)
            data = out / f"{name}_sample.csv"
            df.sample(rows, random_state=7).sort_index().to_csv(data, index=False)
    return data, Path(spec["config"]), Path(spec["keywords"])


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},  # the config as it stands
    "reviews-choose": {"propagate.reviews_choose": True},  # reviews move the held-out choice
    "weight1": {"propagate.reviewed_weight": 1.0},  # a correction weighs like a seed
    "weight20": {"propagate.reviewed_weight": 20.0},  # a correction weighs 20 seeds
    "against": {"propagate.reviewed_against": 1.0},  # a correction counts against its shown
    "spread": {"propagate.reviews_spread": "tokens"},  # a review holds for its same text
    "no-spread": {"propagate.reviews_spread": "none"},  # a review holds for its post only
    "keywords": {"propagate.reviewed_keywords": 0.5},  # corrected seeds indict their words
    # lever 1, asymmetric weights: correction c, confirmation k (default c5-k1)
    **{f"c{c}-k{k:g}": {"propagate.reviewed_weight": float(c),
                      "propagate.reviewed_confirm_weight": float(k)}
       for c, k in ((10, 2), (15, 2), (10, 5), (15, 5), (10, 1), (5, 0.5), (10, 0.5))},
    # lever 2, a correction reaches its 8 look-alikes (cosine >= 0.7) that top at the
    # rejected label: their vote for it halved, or they learn the reviewer's label as
    # weak seeds of weight 0.5
    "look-vote": {"propagate.correction_spread": "vote"},
    "look-seed": {"propagate.correction_spread": "seed"},
}
"""Propagate variants compared on the same reviews: name → config overrides."""


class Sim:
    """The built corpus, its gold labels, and what a set of reviews gains."""

    def __init__(self, data: Path, cfg: Any, tmp: Path) -> None:
        import pandas as pd

        self.cfg, self.ws, self.tmp = cfg, Path(cfg.workspace), tmp
        df = pd.read_csv(data, dtype=str, keep_default_na=False)
        self.gold = dict(zip(df["id"], df["label"].map(safe_id), strict=True))
        self.base = pd.read_parquet(self.ws / "post_labels.parquet")
        self.shown = dict(zip(self.base["post_id"], self.base["label"], strict=True))
        self.f1_base = macro_f1(self.base, self.gold)
        self._repro: dict[str, float] = {}

    def variant_cfg(self, variant: str) -> Any:
        from weaklabel.config import with_overrides

        return with_overrides(self.cfg, VARIANTS[variant]) if VARIANTS[variant] else self.cfg

    def repro(self, variant: str = "default") -> float:
        """macro-F1 of propagate re-run with no reviews, every gain's baseline (one run a
        variant; variants that only change what reviews do share the default's)."""
        key = variant if any(k not in REVIEW_ONLY for k in VARIANTS[variant]) else "default"
        if key == "default":  # the build ran this very propagate without reviews
            return self.f1_base
        if key not in self._repro:
            ws = review_workspace(self.ws, self.tmp, f"none-{key}")
            self._repro[key] = macro_f1(repropagate(ws, self.variant_cfg(key)), self.gold)
        return self._repro[key]

    def gain(self, items: list[tuple[str, str]], name: str, variant: str
             ) -> tuple[float, float, float]:
        """(gain re-propagated, gain of the corrections alone, share shown wrong)."""
        reviewed, rws = review(items, self.gold, self.ws, self.tmp, name)
        wrong = sum(self.shown.get(p, "") != self.gold[p] for p, _ in items) / len(items)
        corrected = self.base.assign(label=[reviewed.get(p, lab) for p, lab in zip(
            self.base["post_id"], self.base["label"], strict=True)])
        direct = macro_f1(corrected, self.gold) - self.f1_base
        after = macro_f1(repropagate(rws, self.variant_cfg(variant)), self.gold)
        shutil.rmtree(rws, ignore_errors=True)
        return after - self.repro(variant), direct, wrong


REVIEW_ONLY = ("propagate.reviews_choose", "propagate.reviewed_weight",
               "propagate.reviews_spread", "propagate.reviewed_against",
               "propagate.reviewed_keywords", "propagate.reviewed_confirm_weight",
               "propagate.correction_spread", "propagate.correction_spread_k",
               "propagate.correction_spread_similarity", "propagate.correction_spread_weight")
"""Settings that change nothing when nothing is reviewed."""


def spread(xs: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, standard error, min and max."""
    import statistics

    m = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"mean": round(m, 4), "sd": round(sd, 4), "se": round(sd / len(xs) ** 0.5, 4),
            "min": round(min(xs), 4), "max": round(max(xs), 4)}


def compare(sim: Sim, orders: dict[str, list[list[tuple[str, str]]]], *,
            fractions: list[float],
            variants: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """Every queue ordering (each of its draws: the queue with another random-slice
    seed) and a random draw per seed (the same draws for every variant), at every
    fraction and propagate variant."""
    n_posts = len(sim.base)
    ids = sorted(sim.gold)
    rows: list[dict[str, Any]] = []
    for frac in fractions:
        n = round(frac * n_posts)
        runs = {name: [order[:n] for order in draws] for name, draws in orders.items()}
        if seeds:
            runs["random"] = [[(p, sim.shown.get(p, ""))
                               for p in random.Random(seed).sample(ids, n)]
                              for seed in seeds]
        for v in variants:
            for strategy, picks in runs.items():
                res = []
                for k, items in enumerate(picks):
                    res.append(sim.gain(items, f"{strategy}-{n}-{v}-{k}", v))
                    print(f"{strategy} {n} {v} draw {k}: gain {res[-1][0]:+.4f}", flush=True)
                gains = [r[0] for r in res]
                rows.append({"fraction": frac, "reviews": n, "strategy": strategy,
                             "variant": v,
                             "shown_wrong": round(sum(r[2] for r in res) / len(res), 4),
                             "gain_corrections_only": round(sum(r[1] for r in res) / len(res),
                                                            4),
                             "gain": spread(gains)["mean"], "spread": spread(gains),
                             "gains": [round(g, 4) for g in gains],
                             "macro_f1_after": round(sim.repro(v) + spread(gains)["mean"], 4)})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    add_ratios(rows)
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's gain over the random rows' mean gain of the same reviews and variant
    (``vs_random``), and over that mean ± one standard error (``vs_random_range``)."""
    for r in rows:
        rnd = next((x for x in rows if x["strategy"] == "random" and
                    x["reviews"] == r["reviews"] and x["variant"] == r["variant"]), None)
        if rnd is not None and r is not rnd and rnd["gain"] > 0:
            hi, lo = rnd["gain"] + rnd["spread"]["se"], rnd["gain"] - rnd["spread"]["se"]
            r["vs_random"] = round(r["gain"] / rnd["gain"], 3)
            r["vs_random_range"] = [round(r["gain"] / hi, 3),
                                    round(r["gain"] / lo, 3) if lo > 0 else None]


def merge_reports(paths: list[Path], target: Path) -> int:
    """Join the reports of runs split by ``--seeds``/``--queues``: the random rows' gains
    are pooled per (reviews, variant), every ratio is recomputed."""
    reports = [json.loads(p.read_text("utf-8")) for p in paths]
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rep in reports:
        for r in rep["runs"]:
            key = (r["fraction"], r["reviews"], r["strategy"], r["variant"])
            if key in rows and r["strategy"] == "random":
                old, k = rows[key], len(rows[key]["gains"])
                m = len(r["gains"])
                for f in ("shown_wrong", "gain_corrections_only"):
                    old[f] = round((old[f] * k + r[f] * m) / (k + m), 4)
                old["gains"] = old["gains"] + r["gains"]
            elif key not in rows:
                rows[key] = {k: v for k, v in r.items() if not k.startswith("vs_random")}
    base = reports[0]["macro_f1_repropagated_without_reviews"]
    out = []
    for r in rows.values():
        sp = spread(r["gains"])
        out.append({**r, "gain": sp["mean"], "spread": sp,
                    "macro_f1_after": round(base + sp["mean"], 4)})
    add_ratios(out)
    slices = next((rep["precision_from_random_slice"] for rep in reports
                   if rep["precision_from_random_slice"]), {})
    merged = {**reports[0], "runs": sorted(out, key=lambda r: (r["fraction"], r["variant"],
                                                               r["strategy"])),
              "precision_from_random_slice": slices, "merged_from": [p.name for p in paths],
              "seconds": round(sum(rep["seconds"] for rep in reports), 1)}
    target.write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")
    for r in merged["runs"]:
        ratio = f"{r['vs_random']:.2f}x {r['vs_random_range']}" if "vs_random" in r else ""
        print(f"{r['reviews']:>6} {r['variant']:<14} {r['strategy']:<14} "
              f"{r['shown_wrong']:>7.1%} {r['gain_corrections_only']:>+8.4f} "
              f"{r['gain']:>+8.4f} sd {r['spread']['sd']:.4f} "
              f"[{r['spread']['min']:+.4f}, {r['spread']['max']:+.4f}] {ratio}")
    print(f"→ {target}")
    return 0


def slice_precision(sim: Sim, queue: Any) -> dict[str, Any]:
    """Precision per label from the random slice of the queue's first 5 % vs the truth."""
    from weaklabel.review.store import Decision
    from weaklabel.review.summary import summarize

    n5 = round(0.05 * len(sim.base))
    order = list(zip(queue["post_id"], queue["label"], strict=True))[:n5]
    rnd = queue["random"].tolist()
    g = sim.gold
    ds = [Decision(f"d{i}", "sim", p, "", lab, "accept" if g[p] == lab else "relabel", g[p],
                   slice=rnd[i], seq=i + 1) for i, (p, lab) in enumerate(order)]
    est = summarize(ds, posts=len(sim.base))["labels"]
    base = sim.base.assign(gold=sim.base["post_id"].map(g))
    true = {lab: round(float((x["label"] == x["gold"]).mean()), 4)
            for lab, x in base.groupby("label") if lab}
    return {lab: {"true": true.get(lab), "slice_estimate": v["precision"],
                  "interval": v["interval"], "slice_reviewed": v["slice_reviewed"]}
            for lab, v in est.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=("chatbot", "petitions"), default="chatbot")
    ap.add_argument("--rows", type=int, default=0,
                    help="a fixed-seed sample of this many posts (0: all)")
    ap.add_argument("--out", type=Path, default=None,
                    help="scratch folder (default bench/out/review_<corpus>)")
    ap.add_argument("--fractions", default="0.01,0.05")
    ap.add_argument("--variants", default="default",
                    help=f"propagate variants to compare: {', '.join(VARIANTS)}")
    ap.add_argument("--queues", default="queue",
                    help=f"orderings of {', '.join([*QUEUES, *ORACLES])}")
    ap.add_argument("--draws", type=int, default=5,
                    help="random draws per fraction (0: queues only, to add to a run)")
    ap.add_argument("--queue-draws", type=int, default=1,
                    help="draws of each queue: its random slice seeded 9, 10, … (1: the "
                         "queue as `weaklabel review queue` builds it)")
    ap.add_argument("--seeds", default="",
                    help="random draws' seeds, e.g. 3,4 (default: 0 … draws-1), to split "
                         "a run over processes; --merge joins their reports")
    ap.add_argument("--merge", default="",
                    help="comma-separated reports of split runs to join (nothing is run)")
    ap.add_argument("--tag", default="",
                    help="suffix of the report and scratch names (runs side by side)")
    args = ap.parse_args(argv)
    if args.merge:
        return merge_reports([Path(p) for p in args.merge.split(",")],
                             HERE / f"out/review_{args.corpus}{'-' + args.tag if args.tag else ''}"
                             ".json")
    from weaklabel.review.triage import build_queue, load_queue_inputs
    from weaklabel.workspace import Workspace

    out = args.out or HERE / f"out/review_{args.corpus}"
    t0 = time.perf_counter()
    data, config, keywords = corpus(args.corpus, out, args.rows)
    cfg = build(data, out, keywords, config)
    sim = Sim(data, cfg, out / ("tmp" + (f"-{args.tag}" if args.tag else "")))
    inputs = load_queue_inputs(Workspace(sim.ws))
    from weaklabel.review.triage import QUEUE_SEED

    # draw j of a queue: the same rules with random-slice seed QUEUE_SEED + j, so the
    # queue's own spread shows beside random's (the slice decides which items are scored)
    names = [q for q in args.queues.split(",") if q and q not in ORACLES]
    over = {q: queue_overrides(sim, QUEUES[q]) for q in names}
    queues = {q: build_queue(**{**inputs, **over[q]}) for q in names}
    orders = {q: [list(zip(v["post_id"], v["label"], strict=True))] for q, v in queues.items()}
    for q in names:
        for j in range(1, args.queue_draws):
            v = build_queue(**{**inputs, **over[q], "seed": QUEUE_SEED + j})
            orders[q].append(list(zip(v["post_id"], v["label"], strict=True)))
    orders.update({k: [v] for k, v in oracles(
        sim, build_queue(**inputs), [q for q in args.queues.split(",") if q in ORACLES]
    ).items()})
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v}: {', '.join(VARIANTS)}")
    print(f"macro-F1 {sim.f1_base:.4f} built, {sim.repro():.4f} re-propagated without "
          "reviews", flush=True)
    rows = compare(sim, orders, fractions=[float(x) for x in args.fractions.split(",")],
                   variants=variants,
                   seeds=[int(x) for x in args.seeds.split(",")] if args.seeds else
                   list(range(args.draws)))
    report = {"data": data.name, "posts": len(sim.base), "rows_sampled": args.rows,
              "macro_f1_base": round(sim.f1_base, 4),
              "macro_f1_repropagated_without_reviews": round(sim.repro(), 4), "runs": rows,
              "precision_from_random_slice": slice_precision(sim, queues["queue"])
              if "queue" in queues else {},
              "seconds": round(time.perf_counter() - t0, 1)}
    path = out.parent / f"{out.name}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{data.name}: {len(sim.base)} posts, macro-F1 {sim.f1_base:.3f} before review")
    print(f"{'reviews':>8} {'variant':<14} {'strategy':<12} {'wrong shown':>11} "
          f"{'gain (fix only)':>16} {'gain re-propagated (sd)':>24} {'÷ random':>9}")
    for r in rows:
        ratio = f"{r['vs_random']:.2f}x" if r.get("vs_random") is not None else ""
        print(f"{r['reviews']:>8} {r['variant'][:14]:<14} {r['strategy'][:12]:<12} "
              f"{r['shown_wrong']:>11.1%} {r['gain_corrections_only']:>+16.4f} "
              f"{r['gain']:>+15.4f} ({r['spread']['sd']:.4f}) {ratio:>9}")
    for lab, v in report["precision_from_random_slice"].items():
        print(f"precision {lab}: true {v['true']}, random-slice estimate {v['slice_estimate']} "
              f"{v['interval']} from {v['slice_reviewed']} items")
    print(f"{report['seconds']}s → {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
