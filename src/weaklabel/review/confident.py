"""Confident learning for the review queue: how little out-of-fold probability a post's
shown label gets (Northcutt, Jiang & Chuang 2021; cleanlab's self-confidence).

A cheap discriminative model, propagate's logistic kind (TF-IDF char_wb 2–4-grams of the
captions, a balanced logistic regression), learns the pipeline's own labels
(``post_labels.parquet``) in :data:`FOLDS` folds; each labelled post is scored by the
model that did not learn it, an abstained post (queued with its best guess) by the
folds' models averaged. A label the rest of the corpus does not back (near-identical
captions labelled otherwise) gets a low probability.

The folds go by same-text group, not by row: a post's fold is a stable hash of its
same-text key (its token list, or its whitespace-collapsed caption) modulo
:data:`FOLDS`, so identical copies share a fold (none of them is learnt by the model
that scores another, which would make the score partly in-sample) and adding or
removing posts leaves every other post in its fold. The folds are not stratified: a
label the training folds of a post never saw gives that post no probability (never 0),
nor does an abstained post's best guess that no labelled post holds. The fits run on
one BLAS thread (the same probabilities however many cores there are, and faster on
shared ones). When nothing can be learnt (one label, no n-gram in two captions, every
text in one fold) a warning on the log says why and no post gets a probability.

``review.queue: confident`` orders by the mean of its rank and the queue's suspicion's,
``review.queue: cl`` by the probability alone (``bench/bench_confident.py``, README
"Review").
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FOLDS = 5
FOLD_SEED = 0


def text_fold(key: str, *, folds: int = FOLDS, seed: int = FOLD_SEED) -> int:
    """The fold of a same-text key: a stable hash (BLAKE2b) of it modulo ``folds``, the
    same for every copy of a text and whatever other posts the corpus has.

    Example:
        >>> text_fold("립스틱 추천") == text_fold("립스틱 추천") and 0 <= text_fold("x") < 5
        True
    """
    h = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % folds


def out_of_fold_proba(texts: list[str], labels: list[str], *, folds: int = FOLDS,
                      seed: int = FOLD_SEED, c: float = 1.0,
                      keys: Sequence[str] | None = None) -> tuple[Any, list[str], Any]:
    """Out-of-fold class probabilities of every text.

    Args:
        texts: the captions.
        labels: each text's label, :data:`~weaklabel.contracts.ABSTAIN` for none (not
            learnt from; scored by every fold's model, averaged).
        folds: how many folds (:func:`text_fold` of each text's key).
        seed: salts the folds' hash.
        c: the logistic regression's inverse regularisation.
        keys: each text's same-text key (identical copies share a fold); default the
            text with its whitespace collapsed.

    Returns:
        ``(proba [n, classes], classes, known)``: ``proba`` is NaN for a class the
        models that scored a row never learnt (a label no training fold of it holds);
        ``known`` marks the rows with any probability (none when fewer than two labels,
        no n-gram occurs twice, or every labelled text falls in one fold: a warning on
        the log says which).

    Example:
        >>> p, classes, known = out_of_fold_proba(
        ...     ["빨간 립스틱", "립스틱 추천", "립스틱 색", "네일 아트", "네일 추천", "네일 색",
        ...      "립스틱 발색"], ["lips", "lips", "lips", "nails", "nails", "nails", ""],
        ...     folds=3)
        >>> classes, bool(known.all()), bool(p[6, 0] > p[6, 1])
        (['lips', 'nails'], True, True)
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    classes = sorted({lab for lab in labels if lab != ABSTAIN})
    n = len(texts)
    out, known = np.full((n, len(classes)), np.nan), np.zeros(n, dtype=bool)
    idx = {k: i for i, k in enumerate(classes)}
    y = np.array([idx.get(lab, -1) for lab in labels], dtype=np.int64)
    lab_rows, free = np.nonzero(y >= 0)[0], np.nonzero(y < 0)[0]
    fold = np.array([text_fold(k, folds=folds, seed=seed) for k in (
        keys if keys is not None else [" ".join(t.split()) for t in texts])], dtype=np.int64)
    used = sorted(set(fold[lab_rows].tolist()))
    if len(classes) < 2:
        log.warning("confident learning cannot run: %s; no post gets an out-of-fold "
                    "probability", f"only one label ({classes[0]})" if classes
                    else "no labelled post")
        return out, classes, known
    if len(used) < 2:
        log.warning("confident learning cannot run: the %d labelled posts are all one "
                    "fold's (too few different texts); no post gets an out-of-fold "
                    "probability", len(lab_rows))
        return out, classes, known
    try:
        x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                            sublinear_tf=True, max_features=200_000,
                            dtype=np.float32).fit_transform(texts)
    except ValueError:  # no n-gram in two texts: nothing to learn from
        log.warning("confident learning cannot run: no character n-gram occurs in two "
                    "captions; no post gets an out-of-fold probability")
        return out, classes, known
    log.info("fitting %d folds on %d posts for the confident-learning queue order",
             len(used), len(lab_rows))
    total, seen = np.zeros((n, len(classes))), np.zeros((n, len(classes)))
    with threadpool_limits(1):  # one thread: the same p on any machine, no spinning
        for f in used:
            fit, held = lab_rows[fold[lab_rows] != f], lab_rows[fold[lab_rows] == f]
            if len(set(y[fit].tolist())) < 2:
                continue  # its training folds hold one label: its posts get none
            model = LogisticRegression(C=c, max_iter=300, class_weight="balanced")
            model.fit(x[fit], y[fit])
            cols = np.asarray(model.classes_, dtype=int)
            out[np.ix_(held, cols)] = model.predict_proba(x[held])
            known[held] = True
            if len(free):
                total[np.ix_(free, cols)] += model.predict_proba(x[free])
                seen[np.ix_(free, cols)] += 1
    if len(free):
        # each class averaged over the models that learnt it; NaN where none did
        with np.errstate(invalid="ignore", divide="ignore"):
            out[free] = np.where(seen[free] > 0, total[free] / seen[free], np.nan)
        known[free] = (seen[free] > 0).any(axis=1)
    return out, classes, known


def label_self_confidence(post_labels: pd.DataFrame, captions: Mapping[str, str], *,
                          folds: int = FOLDS, seed: int = FOLD_SEED,
                          keys: Mapping[str, str] | None = None) -> dict[str, float]:
    """Each post's out-of-fold probability of the label the queue shows (its label, or
    an abstained post's ``top_label``): low = the rest of the corpus does not back it.

    ``keys``: post_id → its same-text key (a post without one: its caption, whitespace
    collapsed), which decides its fold (:func:`text_fold`).

    Posts without a shown label, or that got no probability for it (the models that
    scored them never learnt it), are left out.
    """
    import math

    recs = post_labels.to_dict(orient="records")
    texts = [str(captions.get(r["post_id"], "")) for r in recs]
    proba, classes, known = out_of_fold_proba(
        texts, [str(r["label"] or ABSTAIN) for r in recs], folds=folds, seed=seed,
        keys=[(keys or {}).get(str(r["post_id"])) or " ".join(t.split())
              for r, t in zip(recs, texts, strict=True)])
    col = {k: j for j, k in enumerate(classes)}
    out: dict[str, float] = {}
    for i, r in enumerate(recs):
        shown = r["label"] or r.get("top_label") or ABSTAIN
        if known[i] and shown in col and not math.isnan(proba[i, col[shown]]):
            out[str(r["post_id"])] = float(proba[i, col[shown]])
    return out
