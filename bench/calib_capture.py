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
holds on the keyword-held-out seeds (scored by gold; a diagnostic only), and whether those
seeds are as hard as the posts the curve is applied to (:func:`shift_check`: known tokens,
rightness per evidence bin, and what a covariate-shift weight or an evidence input would
make of the estimate).

Usage: python bench/calib_capture.py [--corpus chatbot petitions example chatbot-sample
       petition-sample] [--petition-rows 20000] [--out bench/out/calibration] [--analyse]
       [--unseen-keywords]
Writes OUT/CORPUS/votes.npz. ``--analyse`` also prints issue 12's levers
(:func:`lever_check`); ``--unseen-keywords`` runs lever (2b) instead (:func:`run_unseen`).
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
    orig_run, orig_final, orig_calibrate = P._held_out_run, P._final_votes, P._calibrate
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

    def calibrate(inp, choice, held, grouped, mvecs, mhas, cfg_, *a):  # type: ignore[no-untyped-def]
        final["known"] = known_tokens(inp.tokens)
        final["calibration_rows"] = P._calibration_rows(grouped, cfg_)
        orig_calibrate(inp, choice, held, grouped, mvecs, mhas, cfg_, *a)
        final["seed_right"] = np.array([choice.seed_precision.get(c, 1.0)
                                        for c in inp.classes])

    orig_grouped = P.held_out_by_keyword

    def grouped_by(seed_words, seed, eligible, **k):  # type: ignore[no-untyped-def]
        from weaklabel.labels.calibrate import keyword_groups

        final["group"] = keyword_groups(seed_words, seed, eligible)
        return orig_grouped(seed_words, seed, eligible, **k)

    P._held_out_run, P._final_votes, P._choose = held_run, final_votes, choose
    P._calibrate, P.held_out_by_keyword = calibrate, grouped_by
    t0 = time.process_time()
    try:
        prop, _ = P.label_posts(ws, labelmap, cfg)
    finally:
        P._held_out_run, P._final_votes, P._choose = orig_run, orig_final, orig_choose
        P._calibrate, P.held_out_by_keyword = orig_calibrate, orig_grouped
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


def known_tokens(tokens: Any) -> Any:
    """Per post, how many of the tokens the sources see (seeds' label words masked) are
    in two posts or more: the token view's vocabulary (``min_df=2``), its evidence."""
    from collections import Counter

    import numpy as np

    df = Counter(w for t in tokens for w in set(t))
    return np.array([sum(df[w] >= 2 for w in t) for t in tokens], dtype=int)


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


def _curve(x: Any, agree: Any, p: Any, k: int, w: Any, *, q: float | None = None) -> Any:
    """calibrate_confidence's seed-noise-corrected Platt fit over the columns ``x``, each
    held-out seed weighing ``w``, a wrong label meeting a wrong seed with probability
    ``q`` (chance by default): the levers of :func:`shift_check` and :func:`lever_check`."""
    from weaklabel.labels.calibrate import calibrate_confidence

    return calibrate_confidence(x, agree, seed_right=p, ncls=k, wrong_agree=q, weight=w)


def shift_check(z: dict[str, Any], bins: tuple[int, ...] = (0, 1, 2, 3, 4)
                ) -> dict[str, Any]:
    """Are the keyword-held-out seeds as hard as the posts the curve is applied to? Per
    known-token bin (:func:`known_tokens`, 4 = 4 or more): the held-out seeds' count,
    agreement with their seeds and rightness by gold, the targets' (non-seed posts')
    count and rightness by gold; then the kept propagated labels' estimate by the curve
    as it is, (a) with the held-out seeds importance-weighted to the targets' bins,
    (c) over [confidence, log(1 + known tokens)], and fitted on gold (the best any
    reweighting of these seeds can do), beside the measured. Gold is scored only."""
    import numpy as np

    runs = sorted(int(k[3:].split("_")[0]) for k in z if k.startswith("run") and
                  k.endswith("_held"))
    held, post = z[f"run{runs[-1]}_held"], z[f"run{runs[-1]}_post"]
    rows = z["calibration_rows"][held]
    ph = post[held]
    ok = ph.sum(axis=1) > 0
    rows, ph = rows[ok], ph[ok]
    raw, top, seed, gold = ph.max(axis=1), ph.argmax(axis=1), z["seed"][rows], z["gold"]
    known, k = z["known"], len(z["cls"])
    kept = z["source"] == "knn"
    target = ~z["is_seed"] & (z["source"] != "reviewed") & (z["top"] >= 0)
    bh = np.digitize(known[rows], bins[1:])
    bt = np.digitize(known[target], bins[1:])
    share_h = np.bincount(bh, minlength=len(bins)) / len(bh)
    share_t = np.bincount(bt, minlength=len(bins)) / max(len(bt), 1)
    table = {}
    for j, b in enumerate(bins):
        h, t = bh == j, bt == j
        table[b] = {"held": int(h.sum()),
                    "held_agree": round(float((top == seed)[h].mean()), 3) if h.any() else None,
                    "held_right": round(float((top == gold[rows])[h].mean()), 3)
                    if h.any() else None, "targets": int(t.sum()),
                    "target_right": round(float((z["top"] == gold)[target][t].mean()), 3)
                    if t.any() else None}
    agree, p = top == seed, z["seed_right"][seed]
    w = share_t[bh] / np.maximum(share_h[bh], 1e-9)
    final = z["post"][kept]
    x1, e1 = final.max(axis=1)[:, None], np.log1p(known[kept])[:, None]
    est = {
        "curve": _curve(raw[:, None], agree, p, k, np.ones(len(raw)))(x1),
        "a_weighted": _curve(raw[:, None], agree, p, k, w / w.mean())(x1),
        "c_evidence": _curve(np.c_[raw, np.log1p(known[rows])], agree, p, k,
                             np.ones(len(raw)))(np.c_[x1, e1]),
        "gold_fit": _curve(raw[:, None], top == gold[rows], np.ones(len(raw)), k,
                           np.ones(len(raw)))(x1)}
    return {"known_held": round(float(known[rows].mean()), 2),
            "known_targets": round(float(known[target].mean()), 2), "bins": table,
            "kept_propagated": {**{n: round(float(v.mean()), 3) for n, v in est.items()},
                                "measured": round(float((z["top"] == gold)[kept].mean()),
                                                  3)}}


def _rekept(z: dict[str, Any], f: Any) -> dict[str, float]:
    """Every propagated label's confidence from the curve ``f`` (of the combined
    confidence), kept again by the default rule (one expected-macro-F1 cut): the kept
    set's estimated and measured precision, coverage and macro-F1."""
    import numpy as np

    from weaklabel.labels.calibrate import class_mass, global_f1_threshold
    from weaklabel.labels.evaluate import score_labels

    top, fixed = z["top"], z["fixed"]
    cand = ~fixed & (top >= 0)
    conf = z["conf"].copy()
    conf[cand] = f(z["post"][cand].max(axis=1)[:, None])
    c0 = np.where(top >= 0, conf, 0.0)
    t, _ = global_f1_threshold(top, c0, fixed, class_mass(top, c0, z["post"]))
    keep = fixed | (cand & (conf >= t - 1e-9))
    names = np.array([*z["cls"], ""], dtype=object)
    g = np.array([z["cls"][j] if j >= 0 else "?" for j in z["gold"]], dtype=object)
    pred = np.where(keep, names[top], "")
    return {"estimated": round(float(conf[keep].mean()), 3),
            "measured": round(float((pred == g)[keep].mean()), 3),
            "coverage": round(float(keep.mean()), 3),
            "macro_f1": round(score_labels(pred.tolist(), g.tolist())["macro_f1"], 3)}


def shift_features(votes: list[Any], post: Any, known: Any) -> Any:
    """What a domain classifier (held-out seed or target?) reads for lever (2a): the
    combined confidence and runner-up, log(1 + known tokens), each source's top share and
    whether it voted, and the share of sources agreeing with the combined label."""
    import numpy as np

    cols = [post.max(axis=1), np.sort(post, axis=1)[:, -2], np.log1p(known)]
    tops = []
    for v in votes:
        s = v.sum(axis=1, keepdims=True)
        vn = np.where(s > 0, v / np.maximum(s, 1e-12), 0.0)
        cols += [vn.max(axis=1), (s[:, 0] > 0).astype(float)]
        tops.append(np.where(s[:, 0] > 0, vn.argmax(axis=1), -1))
    cols.append(np.mean([t == post.argmax(axis=1) for t in tops], axis=0))
    return np.column_stack(cols)


def lever_check(z: dict[str, Any]) -> dict[str, Any]:
    """Issue 12's levers on the keyword-held-out seeds, each curve's labels kept again by
    the default rule (:func:`_rekept`): (1a) the wrong-agreement rate q estimated
    (:func:`~weaklabel.labels.calibrate.wrong_agreement`) in place of chance, (1b) the
    seed precision per keyword group (the label model's posterior belief in that
    group's seeds) in place of per label, both, and both read off gold (the correction's
    own ceiling); (1b') that belief read off the random held-out run instead; (2a) the
    held-out seeds weighted by a discriminative density ratio
    (:func:`~weaklabel.labels.calibrate.domain_weights` over :func:`shift_features`,
    held-out seeds against the same run's non-seed posts, clipped at the 99th
    percentile; ESS reported); (1b') with (2a); and the curve fitted on gold. Gold is
    scored only."""
    import numpy as np

    from weaklabel.labels.calibrate import (
        MIN_VOTE,
        _seed_posterior,
        domain_weights,
        wrong_agreement,
    )

    k = len(z["cls"])
    r = sorted(int(x[3:].split("_")[0]) for x in z if x.startswith("run") and
               x.endswith("_held"))[-1]
    held, post = z[f"run{r}_held"], z[f"run{r}_post"]
    rows = z["calibration_rows"]
    ok = post[held].sum(axis=1) > 0
    hr, ph = rows[held][ok], post[held][ok]
    raw, lab, seed, gold = ph.max(axis=1), ph.argmax(axis=1), z["seed"][hr], z["gold"][hr]
    srcs = [s for s in ("knn", "prototype", "classifier") if f"run{r}_v_{s}" in z]
    votes = {s: z[f"run{r}_v_{s}"][held][ok] for s in srcs}
    agree, p_label = lab == seed, z["seed_right"][seed]
    chance = 1.0 / (k - 1)
    q = wrong_agreement(votes, seed, lab, k)
    lm = _seed_posterior(votes, seed, k, min_vote=MIN_VOTE)
    belief = lm[np.arange(len(seed)), seed] if lm is not None else np.ones(len(seed))
    grp = z["group"][hr]
    p_group = np.array([belief[grp == g].mean() for g in grp])
    right_seed = seed == gold
    q_gold = float(agree[~right_seed & (lab != gold)].mean())
    p_gold = np.array([right_seed[grp == g].mean() for g in grp])
    # (1b') the same per group, but read off the random held-out run (other seeds of the
    # keyword learnt from, so not the votes the calibration label is made of); a group
    # with no seed held out there keeps its label's
    if "choose_held" in z:
        ch, cv = z["choose_held"], {s: z[f"cv_{s}"] for s in srcs}
    else:  # no choosing pass: the calibration's own random held-out run, run0
        ch, cv = z["run0_held"], {s: z[f"run0_v_{s}"] for s in srcs}
    lm_r = _seed_posterior({s: v[ch] for s, v in cv.items()}, z["seed"][ch], k,
                           min_vote=MIN_VOTE)
    p_random = p_label.copy()
    if lm_r is not None:
        bel_r, g_r = lm_r[np.arange(int(ch.sum())), z["seed"][ch]], z["group"][ch]
        p_random = np.array([bel_r[g_r == g].mean() if (g_r == g).any() else pl
                             for g, pl in zip(grp, p_label, strict=True)])
    target = ~z["is_seed"][rows] & (post.sum(axis=1) > 0)
    w, ess = domain_weights(
        shift_features(list(votes.values()), ph, z["known"][hr]),
        shift_features([z[f"run{r}_v_{s}"][target] for s in srcs], post[target],
                       z["known"][rows][target]))
    x = raw[:, None]
    one = np.ones(len(raw))
    qe = chance if q is None else q
    out: dict[str, Any] = {
        "q": {"estimated": None if q is None else round(q, 3), "gold": round(q_gold, 3),
              "chance": round(chance, 3)},
        "p_group": {"estimated": round(float(p_group.mean()), 3),
                    "gold": round(float(right_seed.mean()), 3),
                    "per_label": round(float(p_label.mean()), 3),
                    "random_run": round(float(p_random.mean()), 3)},
        "ess": f"{ess:.0f}/{len(w)}"}
    for name, pp, qq, ww in (("default", p_label, chance, one), ("1a_q", p_label, qe, one),
                             ("1b_p_group", p_group, chance, one),
                             ("1ab_both", p_group, qe, one),
                             ("1ab_gold", p_gold, q_gold, one),
                             ("1b_p_group_random_run", p_random, chance, one),
                             ("2a_density_ratio", p_label, chance, w),
                             ("1b_random_run_2a", p_random, chance, w)):
        out[name] = _rekept(z, _curve(x, agree, pp, k, ww, q=qq))
    out["gold_curve"] = _rekept(z, _curve(x, lab == gold, one, k, one))
    return out


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
        if "known" in z:
            print("  shift:", json.dumps(shift_check(z), ensure_ascii=False))
        if "group" in z and "known" in z:
            print("  levers:", json.dumps(lever_check(z), ensure_ascii=False))
    return 0


def run_unseen(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    """Lever (2b): the calibration run's sources never see the held-out keywords — they
    are taken out of the label prototypes too (the one source that reads the keywords
    themselves; every seed's text is masked already) — and the default run's kept labels
    are scored: estimated against measured. Gold is scored only."""
    from collections import Counter

    import numpy as np

    from weaklabel.labels import propagate as P

    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    words: set[tuple[int, str]] = set()
    orig_grouped, orig_calibrate = P.held_out_by_keyword, P._calibrate

    def grouped_by(seed_words, seed, eligible, **k):  # type: ignore[no-untyped-def]
        held = orig_grouped(seed_words, seed, eligible, **k)
        for ci in set(seed[held].tolist()):
            rows = [i for i in np.nonzero(eligible & (seed == ci))[0] if seed_words[i]]
            freq = Counter(w for i in rows for w in seed_words[i])
            words.update((ci, max(seed_words[i], key=lambda w: (freq[w], w)))
                         for i in np.nonzero(held & (seed == ci))[0])
        return held

    def calibrate(inp, *a, **k):  # type: ignore[no-untyped-def]
        kw, drop = inp.keywords, {(inp.classes[ci], w) for ci, w in words}
        inp.keywords = {c: [w for w in ws if (c, w) not in drop] or list(ws)
                        for c, ws in kw.items()}
        try:
            orig_calibrate(inp, *a, **k)
        finally:
            inp.keywords = kw

    P.held_out_by_keyword, P._calibrate = grouped_by, calibrate
    try:
        prop, _ = P.label_posts(prep["ws"], prep["labelmap"], prep["cfg"])
    finally:
        P.held_out_by_keyword, P._calibrate = orig_grouped, orig_calibrate
    ids = prep["labelmap"].id_of()
    gold = prep["gold"].assign(label=prep["gold"]["label"].map(lambda g: ids.get(g, g)))
    df = prop.labels.merge(gold.rename(columns={"label": "gold"}), on="post_id")
    keep = (df["label"] != "").to_numpy()
    right = (df["label"] == df["gold"]).to_numpy()
    conf = df["confidence"].to_numpy(dtype=float)
    row = {"held_out_keywords": len(words), "estimated": round(float(conf[keep].mean()), 3),
           "measured": round(float(right[keep].mean()), 3),
           "coverage": round(float(keep.mean()), 3)}
    print(name, "keywords unseen by the calibration run:", row)
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--analyse" in argv:
        return analyse([a for a in argv if a != "--analyse"])
    CORPORA.update(SAMPLES)
    if "--unseen-keywords" in argv:  # lever (2b), scored on its own
        done = run_corpora([a for a in argv if a != "--unseen-keywords"], run_unseen,
                           description=__doc__.splitlines()[0], rows=20_000,
                           out=HERE / "out/calibration", filename="unseen.json")
        return 0 if done else 1
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=20_000,
                       out=HERE / "out/calibration", filename="capture.json")
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
