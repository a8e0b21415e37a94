"""Confident learning for the review queue: how little out-of-fold probability a post's
shown label gets (Northcutt, Jiang & Chuang 2021; cleanlab's self-confidence).

A cheap discriminative model, propagate's logistic kind (TF-IDF char_wb 2–4-grams of the
captions, a balanced logistic regression), learns the pipeline's own labels
(``post_labels.parquet``) in :data:`FOLDS` stratified folds; each labelled post is scored
by the model that did not learn it, an abstained post (queued with its best guess) by the
folds' models averaged. A label the rest of the corpus does not back (near-identical
captions labelled otherwise) gets a low probability. It finds wrong labels with AUC 0.75
on the chatbot topics and 0.65 on 10,000 petitions, against 0.62 and 0.63 for the queue's
suspicion; the mean of the two ranks, which ``review.queue: confident`` orders by, 0.72
and 0.67 (``bench/bench_confident.py``, README "Review"). ``review.queue: cl`` orders by
the probability alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN

if TYPE_CHECKING:
    import pandas as pd

FOLDS = 5
FOLD_SEED = 0


def out_of_fold_proba(texts: list[str], labels: list[str], *, folds: int = FOLDS,
                      seed: int = FOLD_SEED, c: float = 1.0) -> tuple[Any, list[str], Any]:
    """Out-of-fold class probabilities of every text.

    Args:
        texts: the captions.
        labels: each text's label, :data:`~weaklabel.contracts.ABSTAIN` for none (not
            learnt from; scored by every fold's model, averaged).
        folds: stratified folds (fewer when no label has that many posts).
        seed: the folds' shuffle seed.
        c: the logistic regression's inverse regularisation.

    Returns:
        ``(proba [n, classes], classes, known)``: ``known`` marks the rows that got a
        probability (none when fewer than two labels, or no n-gram occurs twice).

    Example:
        >>> p, classes, known = out_of_fold_proba(
        ...     ["빨간 립스틱", "립스틱 추천", "립스틱 색", "네일 아트", "네일 추천", "네일 색",
        ...      "립스틱 발색"], ["lips", "lips", "lips", "nails", "nails", "nails", ""],
        ...     folds=3)
        >>> classes, bool(known.all()), bool(p[6, 0] > p[6, 1])
        (['lips', 'nails'], True, True)
    """
    import warnings

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    classes = sorted({lab for lab in labels if lab != ABSTAIN})
    n = len(texts)
    out, known = np.zeros((n, len(classes))), np.zeros(n, dtype=bool)
    idx = {k: i for i, k in enumerate(classes)}
    y = np.array([idx.get(lab, -1) for lab in labels], dtype=np.int64)
    lab_rows, free = np.nonzero(y >= 0)[0], np.nonzero(y < 0)[0]
    most = int(np.bincount(y[lab_rows]).max()) if len(lab_rows) else 0
    k = min(folds, most)
    if len(classes) < 2 or k < 2:
        return out, classes, known
    try:
        x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                            sublinear_tf=True, max_features=200_000,
                            dtype=np.float32).fit_transform(texts)
    except ValueError:  # no n-gram in two texts: nothing to learn from
        return out, classes, known
    with warnings.catch_warnings():
        # a label with fewer posts than folds is left out of some folds: that is fine
        warnings.simplefilter("ignore", UserWarning)
        splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                      .split(lab_rows, y[lab_rows]))
    fitted = 0
    for fit, held in splits:
        fit, held = lab_rows[fit], lab_rows[held]
        if len(set(y[fit].tolist())) < 2:
            continue
        model = LogisticRegression(C=c, max_iter=300, class_weight="balanced")
        model.fit(x[fit], y[fit])
        cols = np.asarray(model.classes_, dtype=int)
        out[np.ix_(held, cols)] = model.predict_proba(x[held])
        known[held] = True
        if len(free):
            out[np.ix_(free, cols)] += model.predict_proba(x[free])
        fitted += 1
    if fitted and len(free):
        out[free] /= fitted
        known[free] = True
    return out, classes, known


def label_self_confidence(post_labels: pd.DataFrame, captions: Mapping[str, str], *,
                          folds: int = FOLDS, seed: int = FOLD_SEED) -> dict[str, float]:
    """Each post's out-of-fold probability of the label the queue shows (its label, or
    an abstained post's ``top_label``): low = the rest of the corpus does not back it.

    Posts without a shown label, or that got no probability, are left out.
    """
    recs = post_labels.to_dict(orient="records")
    proba, classes, known = out_of_fold_proba(
        [str(captions.get(r["post_id"], "")) for r in recs],
        [str(r["label"] or ABSTAIN) for r in recs], folds=folds, seed=seed)
    col = {k: j for j, k in enumerate(classes)}
    out: dict[str, float] = {}
    for i, r in enumerate(recs):
        shown = r["label"] or r.get("top_label") or ABSTAIN
        if known[i] and shown:
            out[str(r["post_id"])] = float(proba[i, col[shown]]) if shown in col else 0.0
    return out
