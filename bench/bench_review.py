"""Does reviewing the queue first beat reviewing at random? A simulated reviewer on real text.

The real pipeline labels a real corpus (default: the chatbot topics of ../shared/data,
built like bench/bench_chatbot.py). A simulated reviewer answers from the gold labels:
the shown label when gold agrees, else the gold one. For N = 1 % and 5 % of the posts:

* **queue**: the first N items of ``weaklabel review queue`` (likely-wrong first, its 5 %
  random slice mixed in, exactly as a person would get them);
* **queue, suspicion only**: the same queue without its density and diversity (what they
  add);
* **random**: N posts drawn at random (the mean of three seeds).

The answers go through the real path: a decisions CSV → ``review import`` →
``reviewed_labels.parquet`` in a review workspace (every built artifact linked, see
:func:`review_workspace`) → the real ``propagate`` stage, which reads the reviewed labels
itself as gold seeds that override every source and that its classifier learns from.
Gains are measured from propagate re-run with no reviews.

Reported per N and strategy: macro-F1 before/after and the gain, plus the gain from the
corrections alone (no re-propagation). Also: precision per label estimated from the
random slice among the queue's first 5 % against the true precision of the labels.

Usage: python bench/bench_review.py [--data PATH] [--out bench/out/review]
Writes bench/out/review.json.
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


def build(data: Path, out: Path, keywords: Path, config: Path) -> Any:
    """Run the real pipeline up to propagate (the keyword-seeded label map as drafted)."""
    from weaklabel.config import load_config, with_overrides
    from weaklabel.pipeline import run_build

    labelmap = out / "labelmap.yaml"
    cfg = with_overrides(load_config(config), {
        "workspace": str(out / "ws"), "posts.path": str(data), "labelmap": str(labelmap),
        "seed_keywords": str(keywords)})
    res = run_build(cfg, progress=False)
    if res.stopped:  # first run: accept the keyword-seeded draft as it stands
        import re

        draft = (Path(cfg.workspace) / "labelmap.draft.yaml").read_text("utf-8")
        # the label map's ids allow no "/" (petition categories have it): "/" → "_"
        draft = re.sub(r"(?m)^(\s+)(\S[^:\n]*/[^:\n]*):(\s*)$",
                       lambda m: f"{m[1]}{safe_id(m[2])}:{m[3]}", draft)
        labelmap.write_text(draft, encoding="utf-8")
        run_build(cfg, progress=False)
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
    from weaklabel.review.transfer import run_import
    from weaklabel.workspace import Workspace

    ws = review_workspace(base_ws, tmp, name)
    path = tmp / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "label", "reviewer"])
        for post_id, _shown in items:
            w.writerow([post_id, gold[post_id], "sim"])
    run_import(Workspace(ws), path)
    df = read_reviewed_labels(ws)
    assert df is not None
    return dict(zip(df["post_id"], df["label"], strict=True)), ws


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/chatbot_topics.csv")
    ap.add_argument("--config", type=Path, default=HERE / "chatbot/config.yaml")
    ap.add_argument("--keywords", type=Path, default=HERE / "chatbot/seed_keywords.yaml")
    ap.add_argument("--out", type=Path, default=HERE / "out/review")
    ap.add_argument("--fractions", default="0.01,0.05")
    ap.add_argument("--tag", default="",
                    help="suffix of the report and scratch names (runs side by side)")
    ap.add_argument("--no-plain", dest="plain", action="store_false",
                    help="skip the queue ranked by suspicion alone (two more propagates)")
    ap.add_argument("--no-rounds", dest="rounds", action="store_false",
                    help="skip the review-rebuild-review workflow (five more propagates)")
    args = ap.parse_args(argv)
    import pandas as pd

    from weaklabel.review.store import Decision
    from weaklabel.review.summary import summarize
    from weaklabel.review.triage import build_queue, load_queue_inputs
    from weaklabel.workspace import Workspace

    if not args.data.exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = build(args.data, args.out, args.keywords, args.config)
    ws = Path(cfg.workspace)
    df = pd.read_csv(args.data, dtype=str, keep_default_na=False)
    gold = dict(zip(df["id"], df["label"].map(safe_id), strict=True))
    base = pd.read_parquet(ws / "post_labels.parquet")
    f1_base = macro_f1(base, gold)
    tmp = args.out / ("tmp" + (f"-{args.tag}" if args.tag else ""))
    inputs = load_queue_inputs(Workspace(ws))
    queue = build_queue(**inputs)  # as `weaklabel review queue`
    order = list(zip(queue["post_id"], queue["label"], strict=True))
    # the same queue ranked by suspicion alone (no density, no diversity): what it adds
    plain = build_queue(**{k: v for k, v in inputs.items() if k != "density"})
    plain_order = list(zip(plain["post_id"], plain["label"], strict=True))
    # propagate re-run with no reviews: the baseline every gain is measured from
    f1_repro = macro_f1(repropagate(review_workspace(ws, tmp, "none"), cfg), gold)
    print(f"macro-F1 {f1_base:.4f} built, {f1_repro:.4f} re-propagated without reviews",
          flush=True)
    shown = dict(zip(base["post_id"], base["label"], strict=True))
    n_posts = len(base)
    rows: list[dict[str, Any]] = []
    for frac in (float(x) for x in args.fractions.split(",")):
        n = round(frac * n_posts)
        runs = {"queue": [order[:n]]}
        if args.plain:
            runs["queue, suspicion only"] = [plain_order[:n]]
        ids = sorted(gold)
        runs["random"] = [[(p, shown.get(p, "")) for p in random.Random(seed).sample(ids, n)]
                          for seed in (0, 1, 2)]
        for strategy, picks in runs.items():
            gains, direct, wrong = [], [], []
            for k, items in enumerate(picks):
                reviewed, rws = review(items, gold, ws, tmp, f"{strategy}-{n}-{k}")
                wrong.append(sum(shown.get(p, "") != gold[p] for p, _ in items) / n)
                corrected = base.assign(label=[reviewed.get(p, lab) for p, lab in
                                               zip(base["post_id"], base["label"],
                                                   strict=True)])
                direct.append(macro_f1(corrected, gold) - f1_base)
                gains.append(macro_f1(repropagate(rws, cfg), gold) - f1_repro)
            rows.append({"fraction": frac, "reviews": n, "strategy": strategy,
                         "shown_wrong": round(sum(wrong) / len(wrong), 4),
                         "gain_corrections_only": round(sum(direct) / len(direct), 4),
                         "gain": round(sum(gains) / len(gains), 4),
                         "macro_f1_after": round(f1_repro + sum(gains) / len(gains), 4)})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    # the workflow the product invites: review 1 %, rebuild, review the new queue's top
    n1 = round(0.01 * n_posts)
    rounds = max(1, round(max(float(x) for x in args.fractions.split(",")) / 0.01)) \
        if args.rounds else 0
    reviewed: dict[str, str] = {}
    labels, items_all, rws = base, [], ws
    for r in range(rounds):
        q = build_queue(**load_queue_inputs(Workspace(rws)),
                        exclude={(p, "") for p in reviewed})
        items = list(zip(q["post_id"], q["label"], strict=True))[:n1]
        items_all += items
        reviewed, rws = review(items_all, gold, ws, tmp, f"rounds-{r}")
        labels = repropagate(rws, cfg)
    if rounds:
        n = len(items_all)
        corrected = base.assign(label=[reviewed.get(p, lab) for p, lab in
                                       zip(base["post_id"], base["label"], strict=True)])
        gain = macro_f1(labels, gold) - f1_repro
        rows.append({"fraction": round(n / n_posts, 4), "reviews": n,
                     "strategy": f"queue, {rounds} rounds of 1 % with a rebuild between",
                     "shown_wrong": round(sum(shown.get(p, "") != gold[p]
                                              for p in reviewed) / n, 4),
                     "gain_corrections_only": round(macro_f1(corrected, gold) - f1_base, 4),
                     "gain": round(gain, 4), "macro_f1_after": round(f1_repro + gain, 4)})
    # precision from the random slice of the first 5 % of the queue vs the truth
    n5 = round(0.05 * n_posts)
    rnd = queue["random"].tolist()
    ds = [Decision(f"d{i}", "sim", p, "", lab, "accept" if gold[p] == lab else "relabel",
                   gold[p], slice=rnd[i], seq=i + 1) for i, (p, lab) in enumerate(order[:n5])]
    est = summarize(ds, posts=n_posts)["labels"]
    true = {lab: round(float((g["label"] == g["gold"]).mean()), 4) for lab, g in
            base.assign(gold=base["post_id"].map(gold)).groupby("label") if lab}
    precision = {lab: {"true": true.get(lab), "slice_estimate": v["precision"],
                       "interval": v["interval"], "slice_reviewed": v["slice_reviewed"]}
                 for lab, v in est.items()}
    report = {"data": args.data.name, "posts": n_posts, "macro_f1_base": round(f1_base, 4),
              "macro_f1_repropagated_without_reviews": round(f1_repro, 4), "runs": rows,
              "precision_from_random_slice": precision,
              "seconds": round(time.perf_counter() - t0, 1)}
    out = args.out.parent / f"{args.out.name}{'-' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{args.data.name}: {n_posts} posts, macro-F1 {f1_base:.3f} before review")
    print(f"{'reviews':>8} {'strategy':<22} {'wrong shown':>11} {'gain (fix only)':>16} "
          f"{'gain (re-propagated)':>21} {'macro-F1':>9}")
    for r in rows:
        print(f"{r['reviews']:>8} {r['strategy'][:22]:<22} {r['shown_wrong']:>11.1%} "
              f"{r['gain_corrections_only']:>+16.4f} {r['gain']:>+21.4f} "
              f"{r['macro_f1_after']:>9.3f}")
    for q in rows:
        rnd = next((r for r in rows if abs(r["reviews"] - q["reviews"]) <= q["reviews"] / 100
                    and r["strategy"] == "random"), None)
        if rnd is None or q is rnd:
            continue
        ratio = q["gain"] / rnd["gain"] if rnd["gain"] > 0 else float("inf")
        print(f"{q['reviews']} reviews, {q['strategy']}: gain / random gain = {ratio:.2f}")
    for lab, v in precision.items():
        print(f"precision {lab}: true {v['true']}, random-slice estimate {v['slice_estimate']} "
              f"{v['interval']} from {v['slice_reviewed']} items")
    print(f"{report['seconds']}s → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
