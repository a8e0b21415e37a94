"""Confidence that means probability, estimated without gold labels.

propagate keeps a label when its confidence reaches a threshold, and ``--target-precision``
picks the threshold whose kept labels have a mean confidence — their estimated precision —
of at least the target. Both are only as honest as the confidence, so every confidence is
an estimated probability of being right, from the held-out seeds (a share of the seeds
hidden from every source, their label words masked):

* **a propagated label** gets ``P(right | combined confidence)``: a logistic (Platt) curve
  over the combined confidence, fitted to whether each held-out seed's combined label
  agrees with its seed label, corrected for the seeds' own errors
  (:func:`calibrate_confidence`). Any combiner's confidence will do; the curve only
  needs it to rank.
* **a seed** gets its label's estimated seed precision (:func:`seed_precision`): a one-coin
  label model over the seed label and the other sources' votes on the masked held-out
  seeds. Two rules keep it honest when the masked caption says little (generated captions
  carry their topic in their keywords, so a masked one is nearly empty): a source whose
  held-out votes agree with the seed label no more often than always answering the most
  common label would (:func:`informative_sources`) says nothing about the seeds and is
  left out, and a vote counts only where it gives one label more than half of its
  probability (``min_vote``); a split vote has not picked a label, so it is no evidence
  against the seed. And the model needs **two** informative sources beside the seed: with
  one, a disagreement is as much that source's error as the seed's (a one-coin model over
  two voters is not identifiable, it splits the blame by its starting point), so the seeds
  are taken as right, as with none.

The estimated precision of a kept set is the mean of its confidences
(:func:`estimated_precision`), and the default keeps, per label, what maximises its
expected F1 (:func:`f1_thresholds` over :func:`class_mass`). Pure functions on arrays:
propagate calls them, gold never enters. The figures are in the README, "Calibration".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# A source's vote counts as evidence only when one label gets more than this share of it.
MIN_VOTE = 0.5


def calibrate_confidence(raw: np.ndarray, correct: np.ndarray, *,
                         seed_right: np.ndarray | None = None, ncls: int = 0,
                         wrong_agree: float | None = None, weight: np.ndarray | None = None,
                         iterations: int = 30) -> Callable[[np.ndarray], np.ndarray]:
    """A monotone map from raw combined confidence to the probability of being right:
    Platt scaling (a logistic curve over ``raw``) fitted on held-out seeds; ``correct``
    may be soft (the estimated probability that each label is right). Two parameters:
    smooth, and never a certainty drawn from a few posts the way isotonic steps at the
    ends are. With fewer than 10 posts, or all of them right (or wrong), the identity;
    when the curve would fall with ``raw``, the mean of ``correct`` everywhere.

    With ``seed_right`` (per held-out seed, the probability that its seed label is
    itself right) ``correct`` is agreement with a noisy seed label, and the curve is
    that of being right: a label right with probability c agrees with a seed right
    with probability p at ``a = c·p + (1 − c)(1 − p)·q`` (``K = ncls``; a wrong label
    meets a wrong seed with probability ``q = wrong_agree``, by default by chance,
    ``1/(K − 1)``; :func:`wrong_agreement` estimates it). EM: each held-out seed's
    chance that the label is right given that it agrees (``c·p/a``) or not
    (``c(1 − p)/(1 − a)``) is the soft target of the next fit. Without it a seed that
    the keywords got wrong counts against the sources that got it right: on the chatbot
    questions (seeds 0.84 right) the curve put the propagated labels at 0.56 where 0.62
    were right.

    ``raw`` may also be a matrix (one row per post, the curve logistic over its columns;
    the returned map then takes rows of the same columns), and ``weight`` weighs each
    held-out seed (the bench's measured levers use both; propagate uses neither).

    Example:
        >>> import numpy as np
        >>> f = calibrate_confidence(np.linspace(0, 1, 40), np.linspace(0, 1, 40) > 0.5)
        >>> bool(f(np.array([0.2]))[0] < 0.5 < f(np.array([0.8]))[0])
        True
    """
    import numpy as np

    raw = np.asarray(raw, dtype=float)
    correct = np.asarray(correct, dtype=float)
    w = np.ones(len(raw)) if weight is None else np.asarray(weight, dtype=float)
    f = _platt(raw, correct, w)
    if seed_right is None or ncls < 2 or len(raw) < 10:
        return f
    p = np.clip(np.asarray(seed_right, dtype=float), 1e-4, 1 - 1e-4)
    q = 1.0 / (ncls - 1) if wrong_agree is None else float(wrong_agree)
    for _ in range(iterations):
        c = np.clip(f(raw), 1e-4, 1 - 1e-4)
        a = c * p + (1 - c) * (1 - p) * q
        target = np.where(correct > 0.5, c * p / a, c * (1 - p) / (1 - a))
        f = _platt(raw, target, w)
    return f


def domain_weights(held: np.ndarray, target: np.ndarray, *, clip: float = 0.99
                   ) -> tuple[np.ndarray, float]:
    """Covariate-shift weights for the held-out seeds: a discriminative density ratio.
    A logistic domain classifier (features standardised on ``target``, the two sets
    weighed equally) tells a held-out seed's feature row (``held``) from a target's;
    each held-out seed weighs ``p(target | x) / p(seed | x)``, clipped at the ``clip``
    quantile, scaled to mean 1. Returns the weights and their effective sample size
    ``(Σw)² / Σw²`` (as many as there are seeds when nothing shifts).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(0, 1, (400, 1))  # the seeds sit left of the targets
        >>> w, ess = domain_weights(x, rng.normal(1, 1, (400, 1)))
        >>> bool(w[x[:, 0] > 1].mean() > w[x[:, 0] < 0].mean()), bool(ess < 400)
        (True, True)
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    held = np.asarray(held, dtype=float)
    target = np.asarray(target, dtype=float)
    mu, sd = target.mean(axis=0), target.std(axis=0) + 1e-9
    x = np.vstack([held, target])
    y = np.r_[np.zeros(len(held)), np.ones(len(target))]
    model = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    model.fit((x - mu) / sd, y)
    p = np.clip(model.predict_proba((held - mu) / sd)[:, 1], 1e-6, 1 - 1e-6)
    w = p / (1 - p)
    if clip < 1:
        w = np.minimum(w, np.quantile(w, clip))
    w = w / w.mean()
    return w, float(w.sum() ** 2 / (w ** 2).sum())


def _platt(raw: np.ndarray, correct: np.ndarray, weight: np.ndarray
           ) -> Callable[[np.ndarray], np.ndarray]:
    """One Platt fit of :func:`calibrate_confidence` (soft ``correct`` allowed; ``raw``
    a vector, or a matrix of columns)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if len(raw) < 10 or float(np.ptp(correct)) == 0.0:
        return lambda x: np.asarray(x, dtype=float)
    cols = raw.ndim == 2

    def design(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return x if cols else np.atleast_1d(x)[:, None]

    z = design(raw)
    model = LogisticRegression(C=100.0)
    model.fit(np.vstack([z, z]), np.r_[np.ones(len(z)), np.zeros(len(z))],
              sample_weight=np.r_[correct * weight, (1 - correct) * weight])
    if model.coef_[0, 0] <= 0:  # no signal in the raw confidence: its mean for every post
        mean = float(np.average(correct, weights=weight))
        return lambda x: np.full(len(design(x)), mean)
    return lambda x: np.asarray(model.predict_proba(design(x))[:, 1], dtype=float)


def _tops(v: np.ndarray, *, min_vote: float) -> np.ndarray:
    """A vote's top label, -1 where it abstains or gives no label more than ``min_vote``."""
    import numpy as np

    top = v.argmax(axis=1)
    return np.where((v.sum(axis=1) > 0) & (v.max(axis=1) > min_vote), top, -1)


def informative_sources(votes: Mapping[str, np.ndarray], truth: np.ndarray) -> list[str]:
    """The sources whose top labels on the held-out seeds agree with the seed labels
    (``truth``, class indices) more often than always answering the most common seed
    label would. A source at or below that rate sees nothing on a masked caption.

    Example:
        >>> import numpy as np
        >>> truth = np.array([0, 0, 0, 1])
        >>> informative_sources({"good": np.eye(2)[truth], "flat": np.eye(2)[[0, 1, 1, 0]]},
        ...                     truth)
        ['good']
    """
    import numpy as np

    truth = np.asarray(truth, dtype=int)
    if not len(truth):
        return []
    base = float(np.bincount(truth).max()) / len(truth)
    out = []
    for name, v in votes.items():
        top = np.where(v.sum(axis=1) > 0, v.argmax(axis=1), -1)
        if float((top == truth).mean()) > base + 1e-12:
            out.append(name)
    return out


def seed_precision(votes: Mapping[str, np.ndarray], truth: np.ndarray,
                   classes: Sequence[str], *, min_vote: float = MIN_VOTE
                   ) -> dict[str, float]:
    """Each label's estimated seed precision: the mean belief in the seed label of a
    one-coin label model over the seed (``truth``, class indices of the held-out seeds)
    and the informative sources' votes on them (``votes``: source → [held-out, classes],
    computed on the masked captions). See the module docstring for the two rules.

    A label with no held-out seed is left out; with fewer than two informative sources
    every seed label is taken as right (nothing contradicts it, or nothing can tell the
    seed's error from the one source's).

    Example:
        >>> import numpy as np
        >>> truth = np.array([0] * 8 + [1] * 8)
        >>> clf = np.eye(2)[[0] * 7 + [1] + [1] * 8]  # one seed of label a looks like b
        >>> knn = np.eye(2)[[0] * 8 + [1] * 8]
        >>> seed_precision({"clf": clf, "knn": knn}, truth, ["a", "b"])["b"] > 0.9
        True
        >>> seed_precision({"clf": clf}, truth, ["a", "b"])["a"]  # one voter: no verdict
        1.0
    """
    import numpy as np

    truth = np.asarray(truth, dtype=int)
    post = _seed_posterior(votes, truth, len(classes), min_vote=min_vote)
    if post is None:
        post = np.eye(len(classes))[truth]
    return {c: round(float(post[truth == ci, ci].mean()), 4)
            for ci, c in enumerate(classes) if (truth == ci).any()}


def _seed_posterior(votes: Mapping[str, np.ndarray], truth: np.ndarray, ncls: int, *,
                    min_vote: float) -> np.ndarray | None:
    """The one-coin label model's posterior [held-out, classes] over the seed label and
    the informative sources' votes (:func:`seed_precision`), None with fewer than two
    informative sources beside the seed."""
    import numpy as np

    from weaklabel.labels.sources import fit_label_model

    lm_votes = {}
    for s in informative_sources(votes, truth):
        top = _tops(votes[s], min_vote=min_vote)
        if (top >= 0).any():  # a source with no vote left has nothing to say
            lm_votes[s] = np.eye(ncls)[np.maximum(top, 0)] * (top >= 0)[:, None]
    if len(lm_votes) < 2:
        return None
    lm_votes["keyword"] = np.eye(ncls)[truth]
    return fit_label_model(lm_votes)[0]


def wrong_agreement(votes: Mapping[str, np.ndarray], truth: np.ndarray, label: np.ndarray,
                    ncls: int, *, min_vote: float = MIN_VOTE) -> float | None:
    """How often a wrong label agrees with a wrong seed (the ``q`` of
    :func:`calibrate_confidence`), estimated without gold from the held-out seeds: the
    label model of :func:`seed_precision` gives each one's posterior r over its true
    class; where the label (``label``, class indices) agrees with the seed (``truth``)
    both are wrong with probability ``1 − r[seed]``, where they differ with ``1 − r[seed]
    − r[label]``; q is the first mass over both. None when fewer than two sources are
    informative. Chance is ``1/(K − 1)``; labels that err the way their seeds do (both
    reading the same words) push it up: on the chatbot questions' keyword-held-out seeds
    it reads 0.69 where gold says 0.70 (README, "Calibration").

    Example:
        >>> import numpy as np
        >>> truth = np.array([0] * 40 + [1] * 40 + [2] * 40)  # seed labels
        >>> real = truth.copy(); real[:10] = 1  # ten seeds of 0 are really 1
        >>> label = truth.copy(); label[8:10] = 2  # 8 of those 10 labels err as the seed
        >>> round(wrong_agreement({"a": np.eye(3)[real], "b": np.eye(3)[real]},
        ...                       truth, label, 3), 2)
        0.8
    """
    import numpy as np

    truth = np.asarray(truth, dtype=int)
    label = np.asarray(label, dtype=int)
    post = _seed_posterior(votes, truth, ncls, min_vote=min_vote)
    if post is None:
        return None
    rows = np.arange(len(truth))
    both = np.where(label == truth, 1 - post[rows, truth],
                    np.clip(1 - post[rows, truth] - post[rows, np.maximum(label, 0)], 0, 1))
    both = np.where(label >= 0, both, 0.0)
    total = float(both.sum())
    if total < 1e-9:
        return None
    return float(both[label == truth].sum()) / total


def estimated_precision(confidence: Sequence[float]) -> float | None:
    """The estimated precision of a set of kept labels: the mean of their confidences
    (each one an estimated probability of being right); None for an empty set.

    Example:
        >>> estimated_precision([1.0, 0.5])
        0.75
    """
    if not len(confidence):
        return None
    return float(sum(confidence)) / len(confidence)


def held_out_by_keyword(seed_words: Sequence[Sequence[str]], seed: np.ndarray,
                        eligible: np.ndarray, *, share: float, seed_value: int
                        ) -> np.ndarray:
    """Held-out seeds for the confidence curve, whole keywords at a time: for each label,
    the seeds are grouped by their most common label word (``seed_words[i]``: the label
    words that seeded post i), and whole groups, in a fixed-seed random order, are held
    out until about ``share`` of the label's seeds are. ``eligible`` marks the keyword
    seeds that may be held out; a label whose seeds all share one word holds none out.

    A random masked seed is easier than a post the keywords missed: other seeds of its
    keyword taught every source what else such posts say. A post the keywords missed
    holds words nobody listed, and a seed whose keyword no source learnt from is the
    closest thing to it the seeds offer. On the chatbot questions a curve fitted on
    random held-out seeds put the kept labels' precision 0.09 above the measured one at
    every threshold; fitted on keyword groups it was within 0.03 with the char-only
    classifier (with the token view it runs low on the chatbot's default and the
    example: README, "Calibration").

    Example:
        >>> import numpy as np
        >>> words = [["a"]] * 6 + [["b"]] * 2 + [["c"]] * 2
        >>> held = held_out_by_keyword(words, np.zeros(10, int), np.ones(10, bool),
        ...                            share=0.2, seed_value=0)
        >>> int(held.sum()), len({words[i][0] for i in np.nonzero(held)[0]})
        (2, 1)
    """
    import numpy as np

    seed = np.asarray(seed, dtype=int)
    held = np.zeros(len(seed), dtype=bool)
    rng = np.random.default_rng(seed_value)
    for groups in _label_groups(seed_words, seed, eligible).values():
        rows = [i for g in groups.values() for i in g]
        if len(rows) < 5:
            continue
        names = sorted(groups)
        target, got = share * len(rows), 0
        for j in rng.permutation(len(names)):
            g = groups[names[j]]
            if got + len(g) <= 1.5 * target:
                held[g] = True
                got += len(g)
            if got >= target:
                break
        smallest = min(groups.values(), key=len)
        if not got and len(smallest) <= len(rows) / 2:  # only big groups: the smallest
            held[smallest] = True
    return held


def _label_groups(seed_words: Sequence[Sequence[str]], seed: np.ndarray,
                  eligible: np.ndarray) -> dict[int, dict[str, list[int]]]:
    """Per label, its eligible seeds grouped by their most common label word."""
    from collections import Counter

    import numpy as np

    seed = np.asarray(seed, dtype=int)
    out: dict[int, dict[str, list[int]]] = {}
    for ci in sorted(set(seed[eligible & (seed >= 0)].tolist())):
        rows = [i for i in np.nonzero(eligible & (seed == ci))[0].tolist() if seed_words[i]]
        freq = Counter(w for i in rows for w in seed_words[i])
        groups: dict[str, list[int]] = {}
        for i in rows:
            groups.setdefault(max(seed_words[i], key=lambda w: (freq[w], w)), []).append(i)
        out[ci] = groups
    return out


def keyword_groups(seed_words: Sequence[Sequence[str]], seed: np.ndarray,
                   eligible: np.ndarray) -> np.ndarray:
    """The keyword group of every post, as :func:`held_out_by_keyword` groups them: an
    integer id per (label, most common label word), -1 for a post in no group.

    Example:
        >>> import numpy as np
        >>> keyword_groups([["a"], ["b"], ["a"], []], np.array([0, 0, 0, -1]),
        ...                np.ones(4, bool)).tolist()
        [0, 1, 0, -1]
    """
    import numpy as np

    out = np.full(len(seed), -1, dtype=int)
    gid = 0
    for _, groups in sorted(_label_groups(seed_words, seed, eligible).items()):
        for name in sorted(groups):
            out[groups[name]] = gid
            gid += 1
    return out


def f1_thresholds(top: np.ndarray, conf: np.ndarray, fixed: np.ndarray,
                  mass: np.ndarray) -> dict[int, tuple[float, float]]:
    """Each label's confidence threshold that maximises its expected F1, from calibrated
    probabilities alone (no gold).

    ``top`` (class index, -1: no label) and ``conf`` (its calibrated probability of being
    right) per post; ``fixed`` marks the posts kept whatever the threshold (seeds,
    reviewed labels); ``mass`` [posts, classes] is each post's probability of truly
    being each class (its rows sum to 1), so that ``mass[:, c].sum()`` is the expected
    number of posts of class c. For class c, keeping its candidates (not fixed, top c)
    of confidence t and up has expected F1 ``2 E[TP] / (kept + E[positives])`` with
    ``E[TP]`` the sum of the kept confidences. The best cut sits where a label's
    confidence equals half the F1 it achieves (Lipton, Elkan & Naryanaswamy 2014):
    a label only added where it is right at least F*/2 of the time.

    Returns class index → (threshold, expected F1); a class with no candidate gets the
    threshold 1.0 (nothing to keep) and the expected F1 of its fixed posts.

    Example:
        >>> import numpy as np
        >>> top = np.array([0, 0, 0, 0, 1, 1])
        >>> conf = np.array([1.0, 0.9, 0.6, 0.1, 1.0, 0.2])
        >>> fixed = np.array([True, False, False, False, True, False])
        >>> mass = np.eye(2)[[0, 0, 0, 1, 1, 0]] * 1.0
        >>> {c: round(t, 2) for c, (t, _) in f1_thresholds(top, conf, fixed, mass).items()}
        {0: 0.6, 1: 1.0}
    """
    import numpy as np

    top = np.asarray(top, dtype=int)
    conf = np.asarray(conf, dtype=float)
    fixed = np.asarray(fixed, dtype=bool)
    out: dict[int, tuple[float, float]] = {}
    for c in range(mass.shape[1]):
        positives = float(mass[:, c].sum())
        tp = float(conf[fixed & (top == c)].sum())
        kept = int((fixed & (top == c)).sum())
        best_f1 = 2 * tp / (kept + positives) if kept + positives > 0 else 0.0
        best_t = 1.0
        cand = np.sort(conf[~fixed & (top == c)])[::-1]
        gain = np.cumsum(cand)
        f1 = 2 * (tp + gain) / (kept + np.arange(1, len(cand) + 1) + positives)
        if len(cand):
            j = int(np.argmax(f1))
            if f1[j] > best_f1 + 1e-12:
                best_f1, best_t = float(f1[j]), float(cand[j])
        out[c] = (best_t, best_f1)
    return out


def global_f1_threshold(top: np.ndarray, conf: np.ndarray, fixed: np.ndarray,
                        mass: np.ndarray) -> tuple[float, np.ndarray]:
    """The one confidence threshold, the same for every label, that maximises the
    expected macro-F1 (the mean over classes of :func:`f1_thresholds`' expected F1),
    from calibrated probabilities alone (no gold). Same arguments as
    :func:`f1_thresholds`.

    One cut for all labels keeps what it keeps in the confidence's own order: every
    kept label is at least as confident as every abstained one, so the kept are the
    more often right wherever the confidence ranks. Per-label cuts may keep one label
    at 0.2 while another abstains at 0.5.

    Returns the threshold (1.0 when keeping no candidate is best) and each class's
    expected F1 there (their mean is the expected macro-F1).

    Example:
        >>> import numpy as np
        >>> top = np.array([0, 0, 0, 1, 1, 1])
        >>> conf = np.array([1.0, 0.9, 0.2, 1.0, 0.6, 0.3])
        >>> fixed = np.array([True, False, False, True, False, False])
        >>> mass = np.eye(2)[[0, 0, 1, 1, 1, 0]] * 1.0
        >>> t, f1 = global_f1_threshold(top, conf, fixed, mass)
        >>> round(t, 2), round(float(f1.mean()), 3)
        (0.6, 0.7)
    """
    import numpy as np

    top = np.asarray(top, dtype=int)
    conf = np.asarray(conf, dtype=float)
    fixed = np.asarray(fixed, dtype=bool)
    ncls = mass.shape[1]
    positives = np.asarray(mass, dtype=float).sum(axis=0)
    onehot = np.eye(ncls)[np.maximum(top, 0)] * (top >= 0)[:, None]
    tp0 = (onehot * (conf * fixed)[:, None]).sum(axis=0)
    kept0 = (onehot * fixed[:, None]).sum(axis=0)
    base = 2 * tp0 / np.maximum(kept0 + positives, 1e-12)
    cand = np.nonzero(~fixed & (top >= 0))[0]
    if not len(cand):
        return 1.0, base
    order = cand[np.lexsort((cand, -conf[cand]))]
    tp = tp0 + np.cumsum(onehot[order] * conf[order][:, None], axis=0)
    kept = kept0 + np.cumsum(onehot[order], axis=0)
    f1 = 2 * tp / np.maximum(kept + positives, 1e-12)
    # a tie in confidence keeps all of its posts or none: score only each tie's last row
    last = np.r_[conf[order][1:] != conf[order][:-1], True]
    macro = np.where(last, f1.mean(axis=1), -np.inf)
    j = int(np.argmax(macro))
    if macro[j] <= base.mean() + 1e-12:
        return 1.0, base
    return float(conf[order][j]), f1[j]


def class_mass(top: np.ndarray, conf: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """Each post's probability of truly being each class, for :func:`f1_thresholds`:
    ``conf`` on its top label ``top``, the rest ``1 − conf`` shared among the other
    classes as the combined ``posterior`` shares them (evenly where it gives them
    nothing); a post with no top label (-1) is spread evenly over all classes.

    Example:
        >>> import numpy as np
        >>> class_mass(np.array([0, -1]), np.array([0.7, 0.0]),
        ...            np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])).round(2).tolist()
        [[0.7, 0.3, 0.0], [0.33, 0.33, 0.33]]
    """
    import numpy as np

    top = np.asarray(top, dtype=int)
    conf = np.asarray(conf, dtype=float)
    n, ncls = posterior.shape
    rows = np.arange(n)
    t = np.maximum(top, 0)
    rest = np.asarray(posterior, dtype=float).copy()
    rest[rows, t] = 0.0
    total = rest.sum(axis=1, keepdims=True)
    even = (1.0 - np.eye(ncls)[t]) / max(ncls - 1, 1)
    rest = np.where(total > 0, rest / np.maximum(total, 1e-12), even)
    mass = rest * (1.0 - conf)[:, None]
    mass[rows, t] += conf
    mass[top < 0] = 1.0 / ncls
    return mass
