"""Calibration without gold (labels/calibrate.py): seed precision, keyword-grouped
held-out seeds, the confidence curve, and what a kept set is estimated to be worth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weaklabel.labels.calibrate import (
    calibrate_confidence,
    class_mass,
    domain_weights,
    estimated_precision,
    f1_thresholds,
    global_f1_threshold,
    held_out_by_keyword,
    informative_sources,
    keyword_groups,
    seed_precision,
    wrong_agreement,
)


def _onehot(idx: list[int], ncls: int) -> np.ndarray:
    return np.eye(ncls)[idx]


def test_a_source_no_better_than_the_commonest_label_is_not_informative() -> None:
    truth = np.array([0] * 60 + [1] * 20 + [2] * 20)
    rng = np.random.default_rng(0)
    always_0 = _onehot([0] * 100, 3)  # right 60 % of the time, and says nothing
    noisy = _onehot([t if rng.random() < 0.8 else (t + 1) % 3 for t in truth], 3)
    abstains = np.zeros((100, 3))
    got = informative_sources({"always": always_0, "noisy": noisy, "none": abstains}, truth)
    assert got == ["noisy"]
    assert informative_sources({"noisy": noisy}, truth[:0]) == []


def test_seed_precision_follows_an_informative_source_that_disagrees() -> None:
    # label a's seeds: a third of them read like b to a source that is otherwise right
    truth = np.array([0] * 90 + [1] * 90 + [2] * 90)
    rng = np.random.default_rng(1)
    real = truth.copy()
    real[rng.choice(90, 30, replace=False)] = 1  # a third of a's seeds are really b
    votes = {s: _onehot([r if rng.random() < 0.9 else (r + 1) % 3 for r in real], 3)
             for s in ("clf", "knn")}
    sp = seed_precision(votes, truth, ["a", "b", "c"])
    assert sp["a"] < 0.8 < min(sp["b"], sp["c"])
    assert abs(sp["a"] - 2 / 3) < 0.1


def test_split_or_flat_votes_are_no_evidence_against_the_seeds() -> None:
    # masked generated captions say nearly nothing: the sources' votes are split
    truth = np.array([0] * 50 + [1] * 50)
    rng = np.random.default_rng(2)
    split = rng.dirichlet([5, 5], size=100) * 0.99  # never more than half, mostly
    split = np.where(split.max(axis=1, keepdims=True) > 0.5, 0.5, split)
    sp = seed_precision({"clf": split}, truth, ["a", "b"])
    assert min(sp.values()) > 0.95
    # the same votes counted as if they had picked a label would doubt every seed
    picked = _onehot(split.argmax(axis=1).tolist(), 2)
    doubted = seed_precision({"clf": picked}, truth, ["a", "b"], min_vote=0.0)
    assert doubted == seed_precision({"clf": picked}, truth, ["a", "b"])  # uninformative
    assert seed_precision({}, truth, ["a", "b", "c"]) == {"a": 1.0, "b": 1.0}


def test_keyword_groups_are_held_out_whole_and_never_a_whole_label() -> None:
    # label 0: keyword x on 50 seeds, y on 20, z on 10, w on 10; label 1: one keyword only
    words = [["x"]] * 50 + [["y"]] * 20 + [["z", "x"]] * 10 + [["w"]] * 10 + [["q"]] * 40
    seed = np.array([0] * 90 + [1] * 40)
    eligible = np.ones(130, dtype=bool)
    held = held_out_by_keyword(words, seed, eligible, share=0.2, seed_value=0)
    again = held_out_by_keyword(words, seed, eligible, share=0.2, seed_value=0)
    assert (held == again).all()  # fixed by the seed
    assert not held[seed == 1].any()  # one keyword: holding it out would hide the label
    rows = np.nonzero(held)[0]
    assert 10 <= len(rows) <= 27  # about 20 % of label 0's 90 seeds, whole groups
    key = {i: ("x" if "x" in words[i] else words[i][0]) for i in range(90)}
    for k in {key[i] for i in rows}:  # a group is held out whole or not at all
        assert all(held[i] for i in range(90) if key[i] == k)
    assert not held[:50].any()  # x, on 60 of 90 seeds, is too big to hold out
    # a seed that is not eligible (a reviewed post) is never held out
    none = held_out_by_keyword(words, seed, np.zeros(130, dtype=bool), share=0.2,
                               seed_value=0)
    assert not none.any()


def test_confidence_curve_is_monotone_and_a_kept_set_is_worth_its_mean() -> None:
    rng = np.random.default_rng(3)
    raw = rng.uniform(0.3, 1.0, 2000)
    right = rng.random(2000) < 0.2 + 0.7 * raw
    f = calibrate_confidence(raw, right)
    grid = f(np.linspace(0.3, 1.0, 50))
    assert (np.diff(grid) >= 0).all()
    for lo in (0.4, 0.6, 0.8):  # a set kept above any threshold: estimated ≈ measured
        keep = raw >= lo
        est = estimated_precision(f(raw[keep]).tolist())
        assert est is not None and abs(est - right[keep].mean()) < 0.03
    assert estimated_precision([]) is None
    # a confidence that says nothing gives every post the base rate, not a slope
    flat = calibrate_confidence(raw, rng.random(2000) < 0.6)
    assert np.ptp(flat(np.array([0.3, 1.0]))) < 0.1


def test_noisy_seeds_are_corrected_for_and_plain_agreement_falls_short() -> None:
    # held-out seeds whose own label is right only p of the time: agreement with them
    # understates how often the propagated label is right
    rng = np.random.default_rng(4)
    n, k = 3000, 3
    raw = rng.uniform(0.34, 1.0, n)
    right = rng.random(n) < 1 / (1 + np.exp(2.5 - 5 * raw))  # the truth to find
    true = rng.integers(0, k, n)
    pred = np.where(right, true, (true + rng.integers(1, k, n)) % k)
    seed_ok = rng.random(n) < 0.8  # the held-out seeds' own labels are 0.8 right
    seed = np.where(seed_ok, true, (true + rng.integers(1, k, n)) % k)
    agree = pred == seed
    plain = calibrate_confidence(raw, agree)
    noisy = calibrate_confidence(raw, agree, seed_right=np.full(n, 0.8), ncls=k)
    for lo in (0.35, 0.6, 0.8):
        keep = raw >= lo
        truth = right[keep].mean()
        assert abs(noisy(raw[keep]).mean() - truth) < 0.03, lo
        assert plain(raw[keep]).mean() < truth - 0.05, lo  # what the correction is for
    grid = noisy(np.linspace(0.34, 1.0, 30))
    assert (np.diff(grid) >= 0).all() and grid.max() <= 1.0
    # seeds that are always right: the correction changes nothing
    exact = calibrate_confidence(raw, right, seed_right=np.ones(n), ncls=k)
    assert np.allclose(exact(raw), calibrate_confidence(raw, right)(raw), atol=0.01)


def _errs_as_the_seed(rng: np.random.Generator, n: int, k: int, q: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Held-out seeds 0.7 right whose label, where both are wrong, repeats the seed's
    error with probability ``q`` (chance is 1/(k − 1)): raw confidence, label, seed, truth."""
    raw = rng.uniform(0.34, 1.0, n)
    right = rng.random(n) < 1 / (1 + np.exp(2.5 - 5 * raw))
    true = rng.integers(0, k, n)
    seed = np.where(rng.random(n) < 0.7, true, (true + rng.integers(1, k, n)) % k)
    other = (true + rng.integers(1, k, n)) % k  # a wrong label at random
    # a wrong label beside a wrong seed: the seed's error with probability q, else another
    alt = np.array([next(j for j in range(k) if j not in (t, s))
                    for t, s in zip(true, seed, strict=True)])
    wrong = np.where(seed != true, np.where(rng.random(n) < q, seed, alt), other)
    return raw, np.where(right, true, wrong), seed, true


def test_labels_that_err_as_their_seeds_are_measured_and_corrected_for() -> None:
    # the chance assumption (a wrong label meets a wrong seed 1/(K - 1) of the time) reads
    # such agreement as rightness; the rate, known, puts the curve back on the truth
    rng = np.random.default_rng(7)
    n, k, q = 8000, 3, 0.85
    raw, label, seed, true = _errs_as_the_seed(rng, n, k, q)
    agree, right = label == seed, label == true
    assert abs(float((label == seed)[(seed != true) & ~right].mean()) - q) < 0.05
    chance = calibrate_confidence(raw, agree, seed_right=np.full(n, 0.7), ncls=k)
    known = calibrate_confidence(raw, agree, seed_right=np.full(n, 0.7), ncls=k,
                                 wrong_agree=q)
    truth = right.mean()
    assert chance(raw).mean() > truth + 0.03  # chance overstates here
    # a noisy estimator (over seeds 7-11: within 0.025, chance 0.04-0.08 high)
    assert abs(known(raw).mean() - truth) < 0.035
    assert abs(known(raw).mean() - truth) < abs(chance(raw).mean() - truth)
    # estimated without gold, from two sources that read the truth 0.9 of the time
    votes = {s: np.eye(k)[np.where(rng.random(n) < 0.9, true, (true + 1) % k)]
             for s in ("a", "b")}
    est = wrong_agreement(votes, seed, label, k)
    assert est is not None and 1 / (k - 1) < est <= 1.0 and abs(est - q) < 0.1
    # at chance it reads chance, and one source is no verdict
    raw, label, seed, true = _errs_as_the_seed(rng, n, k, 0.5)
    votes = {s: np.eye(k)[np.where(rng.random(n) < 0.9, true, (true + 1) % k)]
             for s in ("a", "b")}
    assert abs(wrong_agreement(votes, seed, label, k) - 0.5) < 0.1  # type: ignore[operator]
    assert wrong_agreement({"a": votes["a"]}, seed, label, k) is None


def test_the_curve_takes_columns_and_weights_as_the_bench_levers_use_it() -> None:
    rng = np.random.default_rng(4)
    raw = rng.uniform(0, 1, 600)
    right = rng.uniform(0, 1, 600) < raw
    grid = np.linspace(0.05, 0.95, 7)
    vector = calibrate_confidence(raw, right)(grid)
    # one column is the vector
    assert np.allclose(calibrate_confidence(raw[:, None], right)(grid[:, None]), vector)
    # a seed of weight 0 is a seed left out
    w = (np.arange(600) % 2).astype(float)
    kept = w > 0
    assert np.allclose(calibrate_confidence(raw, right, weight=w)(grid),
                       calibrate_confidence(raw[kept], right[kept])(grid), atol=1e-3)
    # a second column the rightness depends on moves the curve
    extra = rng.uniform(0, 1, 600)
    right2 = rng.uniform(0, 1, 600) < (raw + extra) / 2
    f = calibrate_confidence(np.c_[raw, extra], right2)
    assert f(np.array([[0.5, 0.9]]))[0] > f(np.array([[0.5, 0.1]]))[0] + 0.2


def test_keyword_groups_are_the_groups_held_out_whole() -> None:
    words = [["x"]] * 6 + [["y"]] * 3 + [["z", "x"]] * 2 + [["q"]] * 5 + [[]]
    seed = np.array([0] * 11 + [1] * 5 + [-1])
    groups = keyword_groups(words, seed, np.ones(17, dtype=bool))
    assert groups[-1] == -1 and len(set(groups[:-1].tolist())) == 3  # x (with z), y, q
    assert len(set(groups[:6].tolist() + groups[9:11].tolist())) == 1
    held = held_out_by_keyword(words, seed, np.ones(17, dtype=bool), share=0.3,
                               seed_value=1)
    for g in set(groups[held].tolist()):
        assert held[groups == g].all()  # what is held out is whole groups


def test_domain_weights_undo_a_known_shift() -> None:
    # seeds' feature ~ N(0, 1), targets' ~ N(0.5, 1): the true ratio is exp(0.5x - 0.125);
    # a weighted mean over the seeds of anything then estimates its mean over the targets
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, (3000, 1))
    t = rng.normal(0.5, 1.0, (3000, 1))
    w, ess = domain_weights(x, t, clip=1.0)
    y = (x[:, 0] > 0.5).astype(float)
    assert abs(float((w * y).mean()) - float((t[:, 0] > 0.5).mean())) < 0.03
    assert abs(y.mean() - float((t[:, 0] > 0.5).mean())) > 0.15  # unweighted: far off
    assert 0.5 * 3000 < ess < 3000
    same, ess_same = domain_weights(x, rng.normal(0.0, 1.0, (3000, 1)))
    assert ess_same > 0.95 * 3000 and abs(float(same.mean()) - 1.0) < 1e-9


def test_the_f1_threshold_sits_at_half_the_f1_it_achieves() -> None:
    # Lipton, Elkan & Naryanaswamy (2014): a label kept at probability c raises its F1
    # exactly when c > F/2, so the best cut keeps every c above F*/2 and none below
    rng = np.random.default_rng(5)
    n, k = 2000, 4
    post = rng.dirichlet(np.ones(k) * 0.7, n)
    top = post.argmax(axis=1)
    conf = post.max(axis=1)
    fixed = rng.random(n) < 0.2
    conf[fixed] = 0.95
    mass = class_mass(top, conf, post)
    assert np.allclose(mass.sum(axis=1), 1.0) and (mass >= 0).all()
    best = f1_thresholds(top, conf, fixed, mass)
    for c in range(k):
        t, f1 = best[c]
        cand = conf[~fixed & (top == c)]
        assert t >= f1 / 2 - 1e-9  # every kept label is right at least F*/2 of the time
        below = cand[cand < t - 1e-12]
        assert not len(below) or below.max() <= f1 / 2 + 1e-9  # none left out that is
        # and no other cut does better in expectation
        pos = mass[:, c].sum()
        tp0, kept0 = conf[fixed & (top == c)].sum(), (fixed & (top == c)).sum()
        for other in np.quantile(cand, [0.1, 0.5, 0.9]):
            keep = cand >= other
            other_f1 = 2 * (tp0 + cand[keep].sum()) / (kept0 + keep.sum() + pos)
            assert other_f1 <= f1 + 1e-9
    # a label whose candidates are all hopeless keeps none of them
    top2 = np.array([0, 0, 1, 1, 1])
    conf2 = np.array([1.0, 0.01, 1.0, 0.9, 0.8])
    fixed2 = np.array([True, False, True, False, False])
    got = f1_thresholds(top2, conf2, fixed2, class_mass(top2, conf2, np.eye(2)[top2]))
    assert got[0][0] == 1.0 and got[1][0] == 0.8


def test_one_threshold_for_all_labels_maximises_expected_macro_f1_and_ranks() -> None:
    # an easy label whose candidates are mostly sure and a hard one whose best are 0.3:
    # each label's own cut keeps the hard one's 0.3s and abstains on the easy one's 0.5s
    rng = np.random.default_rng(6)
    n, k = 3000, 3
    top = rng.integers(0, k, n)
    conf = np.where(top == 0, rng.uniform(0.45, 1.0, n), rng.uniform(0.2, 0.6, n))
    fixed = rng.random(n) < 0.15
    conf[fixed] = 0.9
    post = np.full((n, k), 0.0)
    post[np.arange(n), top] = conf
    mass = class_mass(top, conf, post)
    t, f1 = global_f1_threshold(top, conf, fixed, mass)
    assert f1.shape == (k,) and 0.0 < t < 1.0
    cand = ~fixed

    def macro(cut: float) -> float:
        out = []
        for c in range(k):
            keep = (fixed | (cand & (conf >= cut - 1e-12))) & (top == c)
            out.append(2 * conf[keep].sum() / (keep.sum() + mass[:, c].sum()))
        return float(np.mean(out))

    assert macro(t) == pytest.approx(float(f1.mean()))
    for other in np.quantile(conf[cand], [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]):
        assert macro(float(other)) <= f1.mean() + 1e-9  # no other single cut does better
    kept = cand & (conf >= t - 1e-12)
    assert conf[kept].min() >= conf[cand & ~kept].max()  # the kept outrank the abstained
    per = f1_thresholds(top, conf, fixed, mass)
    assert max(c for c, _ in per.values()) > t > min(c for c, _ in per.values())
    # nothing worth keeping: the threshold is 1.0 and the fixed labels' F1 is reported
    t0, f0 = global_f1_threshold(np.array([0, 1, 0]), np.array([1.0, 1.0, 0.01]),
                                 np.array([True, True, False]), np.eye(2)[[0, 1, 1]] * 1.0)
    assert t0 == 1.0 and f0.tolist() == pytest.approx([1.0, 2 / 3])
    # a tie keeps all of its posts or none
    tie_t, _ = global_f1_threshold(np.array([0, 0, 0]), np.array([0.5, 0.5, 0.5]),
                                   np.zeros(3, bool), np.eye(2)[[0, 0, 1]] * 1.0)
    assert tie_t == 0.5


def test_the_keep_scope_is_checked_once_and_named(tmp_path: Path) -> None:
    from weaklabel.config import load_config
    from weaklabel.errors import WeaklabelError

    assert load_config(None).propagate.threshold_scope == "global"  # the default
    bad = tmp_path / "cfg.yaml"
    bad.write_text("propagate:\n  threshold_scope: everywhere\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"cfg.yaml:2: propagate.threshold_scope must "
                                             r"be one of global, per_label"):
        load_config(bad)
