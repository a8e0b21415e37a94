"""Save one default propagate run's votes per dev corpus, for offline calibration work.

Runs ``label_posts`` once per corpus (the workspaces of ``bench_calibration.py``) and
saves, beside gold, everything the calibration sees: the seed labels, every held-out run
(its mask, every source's votes and the chosen combination on it) and the final votes,
posterior and written labels. An estimator can then be tried in seconds against gold
without re-running the sources. Gold is only saved for scoring.

``--analyse`` reads the saved votes instead and prints, per corpus: the keep rules side
by side (each label's expected-F1 threshold, one expected-macro-F1 threshold for all,
per-label cuts floored by the global one, 0.5), a one-coin Dawid–Skene estimate over the
non-seed posts' sources (keyword absent), and how the seed-noise correction's assumption
holds on the keyword-held-out seeds (scored by gold; a diagnostic only).

Usage: python bench/calib_capture.py [--corpus chatbot petitions example chatbot-sample
       petition-sample] [--petition-rows 20000] [--out bench/out/calibration] [--analyse]
Writes OUT/CORPUS/votes.npz.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_quality import CORPORA, ROOT, prepare_corpus, run_corpora  # noqa: E402

# The tests' bundled samples, as corpora of their own: what the tests see, at full size
# of the sample (small corpora are where the held-out seeds run short).
SAMPLES: dict[str, dict[str, Any]] = {
    "chatbot-sample": {"data": ROOT / "tests/data/chatbot_sample.csv",
                       "config": HERE / "chatbot/config.yaml",
                       "keywords": HERE / "chatbot/seed_keywords.yaml"},
    "petition-sample": {"data": ROOT / "tests/data/petition_sample.csv",
                        "config": HERE / "petitions/config.yaml",
                        "keywords": ROOT / "tests/data/petition_keywords.yaml"},
}


def run_corpus(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    import numpy as np

    from weaklabel.labels import propagate as P

    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    ws, cfg, labelmap, gold = prep["ws"], prep["cfg"], prep["labelmap"], prep["gold"]
    runs: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    orig_run, orig_final, orig_input = P._held_out_run, P._final_votes, P._source_input
    orig_choose = P._choose

    def held_run(inp, held, *a, **k):  # type: ignore[no-untyped-def]
        votes, post = orig_run(inp, held, *a, **k)
        runs.append({"held": held.copy(), "post": post.copy(),
                     **{f"v_{s}": v.copy() for s, v in votes.items()}})
        return votes, post

    def choose(inp, held, *a, **k):  # type: ignore[no-untyped-def]
        choice, votes = orig_choose(inp, held, *a, **k)
        final["choose_held"] = held.copy()
        for s, v in votes.items():
            final[f"cv_{s}"] = v.copy()
        return choice, votes

    def final_votes(inp, choice, cfg_):  # type: ignore[no-untyped-def]
        votes, post = orig_final(inp, choice, cfg_)
        final.update({"post": post.copy(), "seed": inp.seed.copy(),
                      "is_seed": np.asarray(inp.is_seed).copy(),
                      "combine": choice.combine, "rounds": choice.rounds,
                      "keep_by_blend": choice.keep_by_blend,
                      **{f"v_{s}": v.copy() for s, v in votes.items()}})
        return votes, post

    P._held_out_run, P._final_votes, P._choose = held_run, final_votes, choose
    t0 = time.process_time()
    try:
        prop, _ = P.label_posts(ws, labelmap, cfg)
    finally:
        P._held_out_run, P._final_votes, P._choose = orig_run, orig_final, orig_choose
        del orig_input
    cpu = time.process_time() - t0
    ids = labelmap.id_of()
    g = dict(zip(gold["post_id"], gold["label"].map(lambda x: ids.get(x, x)), strict=True))
    cidx = {c: j for j, c in enumerate(prop.classes)}
    gold_idx = np.array([cidx.get(g.get(p, ""), -1) for p in prop.labels["post_id"]])
    save: dict[str, Any] = {"classes": np.array(prop.classes), "gold": gold_idx,
                            "source": prop.labels["source"].to_numpy().astype(str),
                            "label": prop.labels["label"].to_numpy().astype(str),
                            "top_label": prop.labels["top_label"].to_numpy().astype(str),
                            "confidence": prop.labels["confidence"].to_numpy(float),
                            "evidence": prop.labels["evidence"].to_numpy().astype(str),
                            **{k: np.asarray(v) for k, v in final.items()}}
    for i, r in enumerate(runs):
        for k, v in r.items():
            save[f"run{i}_{k}"] = v
    path = out / name / "votes.npz"
    np.savez_compressed(path, **save)
    est = {k: v for k, v in prop.estimates.items() if k != "trials"}
    print(name, f"cpu {cpu:.1f} s", est, file=sys.stderr)
    return {"cpu_seconds": round(cpu, 1), "runs": len(runs), "estimates": est}


def _load(path: Path) -> dict[str, Any]:
    import numpy as np

    z = dict(np.load(path, allow_pickle=True))
    cls = [str(c) for c in z["classes"]]
    cidx = {c: j for j, c in enumerate(cls)}
    fixed = np.isin(z["source"], ["seed", "reviewed"]) & (z["label"] != "")
    top = np.array([cidx.get(str(t), -1)
                    for t in np.where(fixed, z["label"], z["top_label"])])
    return {**z, "cls": cls, "fixed": fixed, "top": top,
            "conf": z["confidence"].astype(float)}


def keep_rules(z: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The same confidences kept by each rule: macro-F1, coverage, estimated and
    measured precision, ECE, and the measured precision of the kept and abstained."""
    import numpy as np

    from weaklabel.labels.calibrate import class_mass, f1_thresholds, global_f1_threshold
    from weaklabel.labels.evaluate import calibration, score_labels

    cls, fixed, top, conf, gold = z["cls"], z["fixed"], z["top"], z["conf"], z["gold"]
    k = len(cls)
    c0 = np.where(top >= 0, conf, 0.0)
    mass = class_mass(top, c0, z["post"])
    best = f1_thresholds(top, c0, fixed, mass)
    per = np.array([best[j][0] for j in range(k)])
    glob = global_f1_threshold(top, c0, fixed, mass)[0]
    cand = ~fixed & (top >= 0)
    names = np.array([*cls, ""], dtype=object)
    g = np.array([cls[j] if j >= 0 else "?" for j in gold], dtype=object)
    out = {}
    for rule, cut in (("per_label", per), ("global", np.full(k, glob)),
                      ("floored", np.maximum(per, glob)), ("0.5", np.full(k, 0.5))):
        keep = fixed | (cand & (conf >= cut[np.maximum(top, 0)] - 1e-9))
        pred = np.where(keep, names[top], "")
        ab = cand & ~keep
        out[rule] = {"threshold": float(cut.min()), "estimated": float(conf[keep].mean()),
                     "measured": float((pred == g)[keep].mean()),
                     "coverage": float(keep.mean()),
                     "macro_f1": score_labels(pred.tolist(), g.tolist())["macro_f1"],
                     "ece": calibration(pred.tolist(), g.tolist(), conf.tolist())["ece"],
                     "abstained_measured": float((names[top] == g)[ab].mean())
                     if ab.any() else float("nan"), "abstained": int(ab.sum())}
    return out


def dawid_skene(z: dict[str, Any]) -> dict[str, float]:
    """A one-coin Dawid–Skene label model over the non-seed posts' sources (KNN,
    prototype, classifier; no keyword fires there): its estimate of the kept propagated
    labels' precision beside the calibrated one and the measured one."""
    import numpy as np

    from weaklabel.labels.sources import fit_label_model

    k, ns = len(z["cls"]), ~z["fixed"]
    kept = (z["source"] == "knn")[ns]
    votes = {}
    for s in ("knn", "prototype", "classifier"):
        v = z.get(f"v_{s}")
        if v is not None:
            t = np.where(v[ns].sum(axis=1) > 0, v[ns].argmax(axis=1), -1)
            votes[s] = np.eye(k)[np.maximum(t, 0)] * (t >= 0)[:, None]
    post, acc = fit_label_model(votes)
    top = z["top"][ns]
    ds = post[np.arange(len(top)), np.maximum(top, 0)]
    return {"dawid_skene": float(ds[kept].mean()),
            "calibrated": float(z["conf"][ns][kept].mean()),
            "measured": float((top == z["gold"][ns])[kept].mean()),
            **{f"accuracy_{s}": a for s, a in acc.items()}}


def correction_check(z: dict[str, Any]) -> dict[str, float]:
    """On the keyword-held-out seeds (the calibration run), by gold: the seed-noise
    correction assumes a wrong seed leaves the label's chance of being right alone and
    meets a wrong label by chance (1/(K − 1)); and the estimate each curve gives."""
    import numpy as np

    from weaklabel.labels.calibrate import calibrate_confidence

    k = len(z["cls"])
    held, post = z["run0_held"], z["run0_post"]
    ph, seed, gold = post[held], z["seed"][held], z["gold"][held]
    ok = ph.sum(axis=1) > 0
    raw, lab, seed, gold = ph[ok].max(axis=1), ph[ok].argmax(axis=1), seed[ok], gold[ok]
    sw, lw = seed != gold, lab != gold
    kept = z["source"] == "knn"
    final = z["post"][kept].max(axis=1)
    sp = {j: float((gold[seed == j] == j).mean()) for j in set(seed.tolist())}
    return {"heldout": int(ok.sum()), "seed_right": float((~sw).mean()),
            "label_wrong_if_seed_wrong": float(lw[sw].mean()),
            "label_wrong_if_seed_right": float(lw[~sw].mean()),
            "agree_if_both_wrong": float((lab == seed)[sw & lw].mean()),
            "chance": 1.0 / (k - 1),
            "curve_agreement": float(calibrate_confidence(raw, lab == seed)(final).mean()),
            "curve_gold_seed_precision": float(calibrate_confidence(
                raw, lab == seed, seed_right=np.array([sp[j] for j in seed]),
                ncls=k)(final).mean()),
            "curve_gold": float(calibrate_confidence(raw, ~lw)(final).mean())}


def analyse(argv: list[str]) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", nargs="+", default=["chatbot", "example", "petitions"])
    ap.add_argument("--out", type=Path, default=HERE / "out/calibration")
    args, _ = ap.parse_known_args(argv)
    for name in args.corpus:
        z = _load(args.out / name / "votes.npz")
        print(f"{name} ({len(z['gold'])} posts)")
        for rule, v in keep_rules(z).items():
            print(f"  {rule:<9} cut {v['threshold']:.3f}  est {v['estimated']:.3f}  meas "
                  f"{v['measured']:.3f}  cov {v['coverage']:.1%}  F1 {v['macro_f1']:.3f}  ECE "
                  f"{v['ece']:.3f}  kept/abstained {v['measured']:.3f} / "
                  f"{v['abstained_measured']:.3f} ({v['abstained']})")
        print("  non-seed kept:", json.dumps({k: round(v, 3) for k, v in
                                             dawid_skene(z).items()}))
        if "run0_held" in z:  # a calibration run happened
            print("  correction:", json.dumps({k: round(v, 3) for k, v in
                                              correction_check(z).items()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--analyse" in argv:
        return analyse([a for a in argv if a != "--analyse"])
    CORPORA.update(SAMPLES)
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=20_000,
                       out=HERE / "out/calibration", filename="capture.json")
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
