"""Labelling sources and the ways their votes combine.

A labelling source looks at every post and returns one probability row over the labels
per post (an all-zero row: the source abstains on that post). Four sources exist:

* ``keyword``: the label map's words (the seeds): one-hot where a post is seeded;
* ``knn``: a cosine KNN over post vectors trained on the seeds (a seed does not vote
  for itself);
* ``prototype``: a softmax of each post's similarity to every label's keyword centroid;
* ``classifier``: a model over TF-IDF character n-grams of the captions: by default a
  multinomial Naive Bayes fitted by EM over every post, the seeds as labelled and the
  rest as unlabelled (:func:`nb_em_proba`), reading the tokenizer's tokens too, with a
  keyword-expansion round (:func:`expansion_seeds`); or (``classifier_model: logistic``) a
  logistic regression self-trained on the pipeline's own confident labels
  (cross-fitted: a post it learns from is predicted by the half that did not see it).

Combiners turn the sources' rows into one posterior per post: ``blend`` (the KNN and
prototype blend of earlier versions, averaged with the classifier when present),
``classifier`` (the classifier's own vote, as in plain self-training),
``vote`` (majority of the sources' top labels), ``weighted`` (probabilities weighted by
each source's agreement with the others) and ``label_model`` (a one-coin Dawid–Skene
model fitted by EM on the sources' top labels). Which one is used — and how many
self-training rounds — is decided by held-out seeds (see :mod:`propagate`), never by
gold labels.

Both are registries: a wrong name lists the valid ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from weaklabel.errors import WeaklabelError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from weaklabel.config import PropagateConfig
    from weaklabel.labels.labelmap import LabelMap


@dataclass
class SourceInput:
    """What every source may look at. Arrays have one row per post."""

    classes: list[str]
    seed: np.ndarray  # int: class index of the post's keyword seed, -1 for none
    train: np.ndarray  # bool: seeds the sources may learn from (held-out seeds are False)
    vecs: np.ndarray  # unit post vectors
    has: np.ndarray  # bool: the post has a vector
    texts: Sequence[str]  # normalised captions, for the classifier
    kv: Any
    keywords: Mapping[str, Sequence[str]]
    cfg: PropagateConfig
    current: np.ndarray | None = None  # int: the pipeline's current label (-1 none)
    current_conf: np.ndarray | None = None
    is_seed: np.ndarray | None = None  # bool: a keyword seed (not a reviewed post)
    seed_texts: Mapping[int, str] | None = None  # seed row → its caption unmasked
    features: Any = None  # the classifier's TF-IDF matrix of ``texts``, made once
    weight: np.ndarray | None = None  # float: how much each post weighs when learnt from
    against: np.ndarray | None = None  # int: a correction's shown (wrong) label, -1 none
    # votes a source may reuse while its training posts stay the same (nb_em: every round)
    cache: dict[Any, Any] = field(default_factory=dict)
    # the tokenizer's tokens, the seeds' label words dropped (as ``texts``), and each
    # ``seed_texts`` row's tokens as written: nb_em's second view (see classifier_features)
    tokens: Sequence[Sequence[str]] | None = None
    seed_tokens: Mapping[int, Sequence[str]] | None = None
    token_cols: int = -1  # first column of that view in ``features`` (-1: none)
    round: int = 1  # the self-training round the classifier votes for


class LabellingSource(Protocol):
    """One labelling source: ``votes`` returns float [n, classes], zero rows abstain."""

    name: str

    def votes(self, inp: SourceInput) -> np.ndarray: ...


def _onehot(idx: np.ndarray, ncls: int) -> np.ndarray:
    import numpy as np

    out = np.zeros((len(idx), ncls))
    ok = idx >= 0
    out[np.nonzero(ok)[0], idx[ok]] = 1.0
    return out


class KeywordSource:
    """The keyword seeds, one-hot."""

    name = "keyword"

    def votes(self, inp: SourceInput) -> np.ndarray:
        import numpy as np

        out = _onehot(np.where(inp.train, inp.seed, -1), len(inp.classes))
        # a weak seed (weight below 1: a corrected post's look-alike) votes weakly
        return out * np.minimum(reviewed_weights(inp), 1.0)[:, None]


class KNNSource:
    """Cosine KNN on post vectors, trained on the (training) seeds."""

    name = "knn"

    def votes(self, inp: SourceInput) -> np.ndarray:
        import numpy as np

        from weaklabel.labels.propagate import CosineKNN

        ncls = len(inp.classes)
        out = np.zeros((len(inp.seed), ncls))
        tr = np.nonzero(inp.train & inp.has)[0]
        if len(set(inp.seed[tr].tolist())) < 2:
            return out
        knn = CosineKNN(inp.cfg.k, balance=inp.cfg.balance).fit(
            inp.vecs[tr], inp.seed[tr].tolist(), weight=reviewed_weights(inp)[tr])
        query = np.nonzero(inp.has)[0]
        pos = np.full(len(inp.seed), -1)
        pos[tr] = np.arange(len(tr))
        proba = knn.predict_proba(inp.vecs[query], self_index=pos[query])
        cols = np.asarray(knn.classes_, dtype=int)
        out[np.ix_(query, cols)] = proba
        return out


class PrototypeSource:
    """Similarity to each label's keyword centroid, as a softmax."""

    name = "prototype"

    def votes(self, inp: SourceInput) -> np.ndarray:
        import numpy as np

        from weaklabel.labels.propagate import label_prototypes, prototype_proba

        out = np.zeros((len(inp.seed), len(inp.classes)))
        tr = np.nonzero(inp.train & inp.has)[0]
        if not len(tr):
            return out
        seed_y = [inp.classes[i] for i in inp.seed[tr]]
        protos = label_prototypes(inp.classes, inp.kv, inp.keywords, inp.vecs[tr], seed_y)
        q = np.nonzero(inp.has)[0]
        out[q] = prototype_proba(inp.vecs[q], protos, temperature=inp.cfg.prototype_temperature)
        return np.nan_to_num(out)


def self_train_rows(free: np.ndarray, current: np.ndarray, conf: np.ndarray, ncls: int, *,
                    share: float, confidence: float) -> np.ndarray:
    """Which unlabelled posts (``free``) the classifier learns its current label from.

    With ``share`` 0 (the default): every post whose confidence reaches ``confidence``.
    With ``share`` > 0: of every label's posts, the most confident ``share`` (ties at the
    cut all go in). One global threshold lets the labels whose votes run sharpest fill
    the training set: on 5,000 petition titles (16 labels) the 0.7 cut learnt mostly a
    few well-seeded labels and macro-F1 at full coverage fell round after round (0.236 →
    0.206), while the top half of each label held 0.25 over three rounds. Not the
    default: on the chatbot the held-out seeds then chose one round instead of two and the
    pipeline fell from 0.641 to 0.621 (bench_quality), so it helps one real corpus only.

    Example:
        >>> import numpy as np
        >>> self_train_rows(np.ones(4, bool), np.array([0, 0, 1, 1]),
        ...                 np.array([0.9, 0.6, 0.4, 0.3]), 2, share=0.5,
        ...                 confidence=0.7).tolist()
        [True, False, True, False]
    """
    import numpy as np

    if share <= 0:
        return free & (current >= 0) & (conf >= confidence)
    out = np.zeros(len(current), dtype=bool)
    for c in range(ncls):
        rows = np.nonzero(free & (current == c))[0]
        if len(rows):
            cut = float(np.quantile(conf[rows], 1.0 - share))
            out[rows[conf[rows] >= cut - 1e-12]] = True
    return out


def nb_em_proba(x: Any, labelled: np.ndarray, y: np.ndarray, ncls: int, *,
                free: np.ndarray, weight: np.ndarray | None = None, alpha: float = 0.1,
                max_iter: int = 30, tol: float = 1e-3, against: np.ndarray | None = None,
                against_weight: float = 0.0) -> tuple[np.ndarray, int]:
    """Semi-supervised multinomial Naive Bayes by EM (Nigam, McCallum, Thrun and
    Mitchell 2000): fitted on the ``labelled`` rows of ``x`` (labels ``y``, weights
    ``weight``), then, until fewer than ``tol`` of the ``free`` rows change their top
    label (at most ``max_iter`` times), the free rows' class probabilities (E) and a
    refit on the labelled rows plus the free rows weighted by those probabilities (M).
    Uniform class prior, as the KNN's ``balance`` and the logistic model's balanced
    weights: the seeds' label mix is not the corpus's. ``alpha``: additive smoothing.
    ``against`` (per labelled row: a class it is known not to be, -1 none) takes the
    row's counts, times its weight and ``against_weight``, off that class (a count
    stays at least 0): a reviewer's correction says its words mislead towards it.

    The classic method for few labels and many unlabelled texts: the unlabelled posts
    teach it which n-grams go with the ones the seeds carry. On the chatbot questions it
    labelled the non-seed posts better than three rounds of self-trained logistic
    regression (macro-F1 at full coverage 0.697 against 0.655) at a hundredth of the cost.

    Returns ``(probabilities [rows of x, ncls], iterations)``.

    Example:
        >>> import numpy as np
        >>> from scipy.sparse import csr_matrix
        >>> x = csr_matrix(np.array([[2, 0, 1], [0, 2, 1], [1, 0, 1], [0, 1, 1]], float))
        >>> p, _ = nb_em_proba(x, np.array([0, 1]), np.array([0, 1]), 2,
        ...                    free=np.array([2, 3]))
        >>> p.argmax(axis=1).tolist()
        [0, 1, 0, 1]
    """
    import numpy as np

    w = np.ones(len(labelled)) if weight is None else np.asarray(weight, dtype=np.float64)
    resp = np.zeros((len(labelled), ncls))
    resp[np.arange(len(labelled)), y] = w
    if against is not None and against_weight > 0:
        bad = np.nonzero(np.asarray(against) >= 0)[0]
        resp[bad, np.asarray(against)[bad]] -= w[bad] * against_weight
    xl, xf = x[labelled], x[free]
    base = np.asarray(xl.T @ resp)  # features × classes: the labelled rows' counts
    counts = base
    prev = np.full(len(free), -1)
    it = 0
    while True:
        smoothed = np.maximum(counts, 0.0) + alpha
        log_theta = np.log(smoothed) - np.log(smoothed.sum(axis=0, keepdims=True))
        if it == max_iter:
            break
        p = _softmax(np.asarray(xf @ log_theta))
        top = p.argmax(axis=1)
        changed = float((top != prev).mean()) if len(free) else 0.0
        prev = top
        if changed < tol:
            break
        counts = base + np.asarray(xf.T @ p)
        it += 1
    return _softmax(np.asarray(x @ log_theta)), it


def _softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class ClassifierSource:
    """A model over TF-IDF char_wb 2–4-grams of the captions (``cfg.classifier_model``).

    Characters reach inside Korean compounds and brand or model codes that the tokenizer
    splits or drops. A training seed is learnt twice: with its label words masked
    (``texts``), so the model learns what else carries the topic, and as written
    (``seed_texts``), so a post holding label words of two labels, or too few to be a
    seed, is read with them (learning masked seeds only, it never saw a label word: on
    the bundled example it labelled the non-seed posts 0.63 right against the KNN's
    0.81). Held-out seeds are never learnt as written.

    ``nb_em`` (the default, :func:`nb_em_proba`): learns from the training seeds and
    every other post as unlabelled, over the char n-grams and the tokenizer's tokens
    (:func:`classifier_features`); it reads nothing of the other sources, so it is fitted
    once per set of training seeds for round 1, and once more for round 2, where the
    posts holding the first fit's most label-specific words join the seeds
    (:func:`expansion_seeds`, ``cfg.classifier_expand``).

    ``logistic``: a logistic regression learning from the training seeds and from the
    posts whose current label reaches ``cfg.self_train_confidence`` (or each label's most
    confident ``cfg.self_train_share``; see :func:`self_train_rows`), at most
    ``cfg.classifier_max_posts`` of them (a fixed-seed sample; the cost stays bounded as
    the corpus grows), cross-fitted in two halves; both copies of a seed sit in the same
    half.
    """

    name = "classifier"

    def votes(self, inp: SourceInput) -> np.ndarray:
        x = classifier_features(inp)
        if inp.cfg.classifier_model == "nb_em":
            return self._nb_em(inp, x)
        return self._logistic(inp, x)

    def _nb_em(self, inp: SourceInput, x: Any) -> np.ndarray:
        import hashlib

        import numpy as np

        n, ncls = len(inp.seed), len(inp.classes)
        sw = reviewed_weights(inp)
        against = inp.against if inp.against is not None else np.full(n, -1)
        expand = inp.round >= 2 and inp.cfg.classifier_expand > 0 and inp.token_cols >= 0
        key = ("nb_em", expand, hashlib.sha1(inp.train.tobytes() + inp.seed.tobytes()
                                             + np.asarray(sw).tobytes() + against.tobytes()
                                             ).hexdigest())
        if key in inp.cache:
            return np.array(inp.cache[key])
        out = np.zeros((n, ncls))
        train = np.nonzero(inp.train)[0]
        if len(set(inp.seed[train].tolist())) < 2:
            return out
        dup = _twin_rows(inp)
        twins = train[dup[train] >= 0]
        rows = np.r_[train, dup[twins]]
        y, w = np.r_[inp.seed[train], inp.seed[twins]], np.r_[sw[train], sw[twins]]
        wrong = np.r_[against[train], np.full(len(twins), -1)]
        free = ~inp.train
        if expand:  # one round of keyword expansion over the first fit's vote
            inp.round = 1
            try:
                first = self._nb_em(inp, x)
            finally:
                inp.round = 2
            is_seed = inp.is_seed if inp.is_seed is not None else inp.train
            tok, cand = x[:n, inp.token_cols:], free & ~is_seed
            weak = expansion_seeds(tok, first, cand, top=inp.cfg.classifier_expand,
                                   min_posts=EXPAND_MIN_POSTS)
            wrows = np.nonzero(weak >= 0)[0]
            rows, y, w = np.r_[rows, wrows], np.r_[y, weak[wrows]], np.r_[w, np.ones(len(wrows))]
            wrong = np.r_[wrong, np.full(len(wrows), -1)]
            free &= weak < 0
            # what the expansion learnt from, for the run's estimates (explainable labels)
            names = inp.cache.get("token_names", [])
            words = {inp.classes[c]: [str(names[j]) for j in cols if j < len(names)]
                     for c, cols in enumerate(expansion_words(
                         tok, first, cand, top=inp.cfg.classifier_expand,
                         min_posts=EXPAND_MIN_POSTS))}
            inp.cache["expansion"] = {"weak_seeds": len(wrows), "words": words}
            log.info("keyword expansion: %d posts learnt as weak seeds; words: %s",
                     len(wrows), words)
        proba, _ = nb_em_proba(x, rows, y, ncls, free=np.nonzero(free)[0], weight=w,
                               against=wrong, against_weight=inp.cfg.reviewed_against)
        # a post without one known n-gram gets the prior, a uniform row: no vote
        out[:] = np.where(np.diff(x[:n].indptr)[:, None] > 0, proba[:n], 0.0)
        inp.cache[key] = out
        return np.array(out)

    def _logistic(self, inp: SourceInput, x: Any) -> np.ndarray:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        n, ncls = len(inp.seed), len(inp.classes)
        out = np.zeros((n, ncls))
        y = np.where(inp.train, inp.seed, -1)
        if inp.current is not None and inp.current_conf is not None:
            extra = self_train_rows(y < 0, inp.current, inp.current_conf, ncls,
                                    share=inp.cfg.self_train_share,
                                    confidence=inp.cfg.self_train_confidence)
            y = np.where(extra, inp.current, y)
        learn = np.nonzero(y >= 0)[0]
        rng = np.random.default_rng(inp.cfg.seed)
        if len(learn) > inp.cfg.classifier_max_posts:
            learn = np.sort(rng.choice(learn, inp.cfg.classifier_max_posts, replace=False))
        if len(set(y[learn].tolist())) < 2:
            return out
        dup = _twin_rows(inp)
        fold = rng.integers(0, 2, size=len(learn))
        seen = np.zeros(n, dtype=bool)
        seen[learn] = True
        rest = np.nonzero(~seen)[0]
        for f in (0, 1):
            fit_rows, held = learn[fold != f], learn[fold == f]
            if len(set(y[fit_rows].tolist())) < 2:
                fit_rows, held = learn, learn[:0]
            twins = fit_rows[(dup[fit_rows] >= 0) & inp.train[fit_rows]]
            model = LogisticRegression(C=inp.cfg.classifier_c, max_iter=300,
                                       class_weight="balanced")
            sw = reviewed_weights(inp)
            model.fit(x[np.r_[fit_rows, dup[twins]]], np.r_[y[fit_rows], y[twins]],
                      sample_weight=np.r_[sw[fit_rows], sw[twins]])
            cols = np.asarray(model.classes_, dtype=int)
            if len(held):
                out[np.ix_(held, cols)] = model.predict_proba(x[held])
            if len(rest):
                out[np.ix_(rest, cols)] += model.predict_proba(x[rest]) / 2
        return out


def classifier_features(inp: SourceInput) -> Any:
    """The classifier's TF-IDF char_wb 2–4-gram matrix: one row per post (``texts``, the
    seeds' label words masked), then one per seed as written (``seed_texts``, in post
    order). Fitted once and kept in ``inp.features``: the texts never change between
    rounds and passes (choosing, calibrating, the final vote), so every fit reuses it.

    For ``nb_em`` with ``cfg.classifier_token_weight`` > 0 and ``inp.tokens`` given, the
    tokenizer's tokens follow as a second view (TF-IDF over whole tokens, the same rows,
    each row scaled to ``classifier_token_weight`` of the char view's unit length; its
    first column is ``inp.token_cols``). Character n-grams cut across words; the
    tokenizer's nouns, brand names and model codes are whole words, evidence the n-grams
    inside them carry only in pieces. Half weight, since the char view already holds each
    token's pieces: on every dev corpus each weight from 0.25 to 1 helped or held (the
    chatbot's macro-F1 at full coverage 0.697 → 0.703 at 0.5, the example 0.912 → 0.923,
    5,000 petitions 0.232 → 0.241, README "Label quality")."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    if inp.features is None:
        extra_rows = sorted((inp.seed_texts or {}).items())
        chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True,
            max_features=200_000, dtype=np.float32,
        ).fit_transform(list(inp.texts) + [t for _, t in extra_rows])
        wt = inp.cfg.classifier_token_weight
        if inp.cfg.classifier_model == "nb_em" and wt > 0 and inp.tokens is not None:
            from scipy.sparse import hstack

            seed_tokens = inp.seed_tokens or {}
            docs = [list(t) for t in inp.tokens] + [
                list(seed_tokens.get(i, inp.tokens[i])) for i, _ in extra_rows]
            vec = TfidfVectorizer(analyzer=list, min_df=2, sublinear_tf=True,
                                  dtype=np.float32)
            toks = vec.fit_transform(docs)
            inp.cache["token_names"] = vec.get_feature_names_out().tolist()
            inp.token_cols = chars.shape[1]
            chars = hstack([chars, toks * np.float32(wt)], format="csr")
        inp.features = chars
    return inp.features


# keyword expansion (nb_em's second round): at most ``classifier_expand`` words a label,
# each held by this many posts at least (a word in a handful of posts is no keyword)
EXPAND_MIN_POSTS = 10


def expansion_words(tokens: Any, proba: np.ndarray, free: np.ndarray, *, top: int,
                    min_posts: int) -> list[np.ndarray]:
    """Each label's expansion words as columns of ``tokens``, purest first (see
    :func:`expansion_seeds`)."""
    import numpy as np

    rows = np.nonzero(free)[0]
    present = (tokens[rows] > 0).astype(np.float64)
    mass = np.asarray(present.T @ proba[rows]) + 0.5  # tokens × labels, smoothed
    share = mass / mass.sum(axis=1, keepdims=True)
    support = np.asarray(present.sum(axis=0)).ravel()
    best = share.argmax(axis=1)
    out = []
    for c in range(proba.shape[1]):
        cand = np.nonzero((best == c) & (share[:, c] > 0.5) & (support >= min_posts))[0]
        out.append(cand[np.argsort(-share[cand, c], kind="stable")][:top])
    return out


def expansion_seeds(tokens: Any, proba: np.ndarray, free: np.ndarray, *, top: int,
                    min_posts: int) -> np.ndarray:
    """Weak seeds from the words a first fit finds most label-specific: for every token
    (a column of ``tokens``, rows = posts) in at least ``min_posts`` of the ``free`` posts,
    the share of those posts' probability mass (``proba``) each label holds; each label's
    ``top`` purest tokens where it holds most of the mass (over half) become its
    expansion words, and every free post holding expansion words of exactly one label is
    that label's weak seed.

    The keyword idea of the label map, grown by the model's own reading of the corpus
    (the label words' neighbours in the captions rather than in Word2Vec): one round,
    capped, and only where the held-out seeds score it above the plain fit (the
    ``nb_em`` classifier's round 2, see :func:`propagate._run_sources`).

    Returns each row's weak label (-1: none).

    Example:
        >>> import numpy as np
        >>> from scipy.sparse import csr_matrix
        >>> tok = csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], float))
        >>> p = np.array([[.9, .1], [.8, .2], [.2, .8], [.1, .9], [.5, .5]])
        >>> expansion_seeds(tok, p, np.ones(5, bool), top=1, min_posts=2).tolist()
        [0, 0, 1, 1, -1]
    """
    import numpy as np

    rows = np.nonzero(free)[0]
    present = (tokens[rows] > 0).astype(np.float64)
    ncls = proba.shape[1]
    hits = np.zeros((len(rows), ncls))
    for c, cand in enumerate(expansion_words(tokens, proba, free, top=top,
                                             min_posts=min_posts)):
        if len(cand):
            hits[:, c] = np.asarray(present[:, cand].sum(axis=1)).ravel()
    out = np.full(len(free), -1)
    one = (hits > 0).sum(axis=1) == 1
    out[rows[one]] = hits[one].argmax(axis=1)
    return out


def _twin_rows(inp: SourceInput) -> np.ndarray:
    """Each post's row of its unmasked copy in :func:`classifier_features` (-1: none)."""
    import numpy as np

    n = len(inp.seed)
    dup = np.full(n, -1)
    extra = sorted((inp.seed_texts or {}).items())
    if extra:
        dup[[i for i, _ in extra]] = n + np.arange(len(extra))
    return dup


def reviewed_weights(inp: SourceInput) -> np.ndarray:
    """Each post's weight when a source learns from it: ``inp.weight`` (a reviewed
    correction weighs ``cfg.reviewed_weight``, a confirmation
    ``cfg.reviewed_confirm_weight``, a corrected post's look-alike learnt as a weak seed
    ``cfg.correction_spread_weight``), else 1."""
    import numpy as np

    return inp.weight if inp.weight is not None else np.ones(len(inp.seed))


SOURCES: dict[str, Callable[[], LabellingSource]] = {
    "keyword": KeywordSource, "knn": KNNSource, "prototype": PrototypeSource,
    "classifier": ClassifierSource,
}
"""name → labelling source."""


def keyword_baseline(post_ids: Sequence[str], token_lists: Sequence[Sequence[str]],
                     labelmap: LabelMap, *, margin: float) -> pd.DataFrame:
    """The floor every source is compared with: the label map's keywords alone (no
    cluster words, no compounds), as a ``POST_LABELS`` table."""
    import pandas as pd

    from weaklabel.contracts import ABSTAIN, LABEL_SOURCES
    from weaklabel.labels.labelmap import label_words
    from weaklabel.labels.propagate import seed_labels

    ks = seed_labels(token_lists, label_words(labelmap, {}, cluster_weight=0.0),
                     margin=margin)
    return pd.DataFrame({
        "post_id": list(post_ids), "label": ks.labels, "confidence": ks.confidence,
        "source": ["seed" if lab else "none" for lab in ks.labels],
        "evidence": ks.evidence, "top_label": ks.labels,
        **{f"label_{s}": ks.labels if s == "keyword" else [ABSTAIN] * len(ks.labels)
           for s in LABEL_SOURCES}})


def source_labels(post_labels: pd.DataFrame, source: str) -> pd.DataFrame:
    """One labelling source alone, as a ``POST_LABELS`` table that ``eval`` scores like
    any other: its own top label (``label_<source>``) on every post it votes on.
    Confidence is 1.0 where it votes: a source alone has no calibrated confidence."""
    from weaklabel.contracts import ABSTAIN, LABEL_SOURCES

    col = f"label_{source}"
    if source not in LABEL_SOURCES or col not in post_labels:
        raise WeaklabelError(f"no votes of source {source!r} in these labels; valid: "
                             f"{', '.join(LABEL_SOURCES)}")
    out = post_labels.copy()
    lab = out[col].fillna(ABSTAIN)
    out["label"], out["top_label"] = lab, lab
    out["confidence"] = (lab != ABSTAIN).astype(float)
    out["source"] = ["seed" if s == "seed" and x != ABSTAIN else "knn" if x != ABSTAIN
                     else "none" for s, x in zip(out["source"], lab, strict=True)]
    out["evidence"] = source
    return out


def get_source(name: str) -> LabellingSource:
    """The source called ``name``; a wrong name lists the valid ones."""
    try:
        return SOURCES[name]()
    except KeyError:
        raise WeaklabelError(
            f"unknown labelling source {name!r}; valid: {', '.join(SOURCES)}") from None


# ---- combiners: votes of every source → one posterior per post -------------------------

Votes = Mapping[str, "np.ndarray"]


def _normalise(p: np.ndarray) -> np.ndarray:
    import numpy as np

    s = p.sum(axis=1, keepdims=True)
    return np.divide(p, s, out=np.zeros_like(p), where=s > 0)


def combine_blend(votes: Votes, cfg: PropagateConfig) -> np.ndarray:
    """The blend of earlier versions: ``(1 - a) · knn + a · prototype`` (a =
    ``prototype_weight``), averaged with the classifier when it votes."""
    import numpy as np

    any_v = next(iter(votes.values()))
    a = cfg.prototype_weight
    knn, proto = votes.get("knn"), votes.get("prototype")
    if knn is not None and proto is not None:
        base = np.where(knn.sum(axis=1, keepdims=True) > 0, (1 - a) * knn + a * proto, proto)
    else:
        base = knn if knn is not None else proto if proto is not None else np.zeros_like(any_v)
    clf = votes.get("classifier")
    if clf is not None:
        both = (base.sum(axis=1) > 0) & (clf.sum(axis=1) > 0)
        base = np.where(both[:, None], (base + clf) / 2, np.maximum(base, clf))
    return _normalise(base)


def _tops(votes: Votes, *, skip: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
    """Each voting source's top label per post (-1 where it abstains)."""
    import numpy as np

    names = [s for s in votes if s not in skip]
    cols = []
    for s in names:
        v = votes[s]
        cols.append(np.where(v.sum(axis=1) > 0, v.argmax(axis=1), -1))
    return names, np.stack(cols, axis=1) if cols else np.zeros((0, 0), dtype=int)


def combine_vote(votes: Votes, cfg: PropagateConfig) -> np.ndarray:
    """Majority vote of the sources' top labels; ties split by summed probability."""
    import numpy as np

    n, ncls = next(iter(votes.values())).shape
    _, tops = _tops(votes)
    out = np.zeros((n, ncls))
    for j in range(tops.shape[1]):
        ok = tops[:, j] >= 0
        out[np.nonzero(ok)[0], tops[ok, j]] += 1.0
    tie = 1e-3 * sum(votes.values())
    return _normalise(out + np.where(out.sum(axis=1, keepdims=True) > 0, tie, 0.0))


def source_agreement(votes: Votes) -> dict[str, float]:
    """Each source's agreement with the majority of the other sources, on the posts where
    both vote: an estimate of its accuracy that needs no gold."""

    names, tops = _tops(votes)
    out = {}
    for j, s in enumerate(names):
        others = {t: votes[t] for t in names if t != s}
        if not others:
            out[s] = 1.0
            continue
        maj = combine_vote(others, None)  # type: ignore[arg-type]
        ok = (tops[:, j] >= 0) & (maj.sum(axis=1) > 0)
        out[s] = float((maj[ok].argmax(axis=1) == tops[ok, j]).mean()) if ok.any() else 0.5
    return out


def combine_weighted(votes: Votes, cfg: PropagateConfig) -> np.ndarray:
    """Probabilities weighted by each source's log-odds of agreeing with the others."""
    import math

    agree = source_agreement(votes)
    ncls = next(iter(votes.values())).shape[1]
    chance = 1.0 / ncls
    total = None
    for s, v in votes.items():
        a = min(max(agree[s], chance + 1e-3), 0.99)
        w = math.log(a / (1 - a)) - math.log(chance / (1 - chance))
        total = w * v if total is None else total + w * v
    assert total is not None
    return _normalise(total)


def fit_label_model(votes: Votes, *, iterations: int = 50) -> tuple[np.ndarray, dict[str, float]]:
    """One-coin Dawid–Skene by EM on the sources' top labels.

    Each source s is right with probability ``acc_s`` and otherwise picks one of the other
    labels uniformly; the label prior is learnt too. Returns the posterior [n, classes]
    (zero rows where no source votes) and every source's estimated accuracy.
    """
    import numpy as np

    names, tops = _tops(votes)
    n, ncls = next(iter(votes.values())).shape
    acc = np.full(len(names), 0.7)
    prior = np.full(ncls, 1.0 / ncls)
    voted = (tops >= 0).any(axis=1)
    post = np.zeros((n, ncls))
    for _ in range(iterations):
        logp = np.tile(np.log(prior), (n, 1))
        for j in range(len(names)):
            ok = tops[:, j] >= 0
            wrong = math_log((1 - acc[j]) / max(ncls - 1, 1))
            logp[ok] += wrong
            logp[np.nonzero(ok)[0], tops[ok, j]] += math_log(acc[j]) - wrong
        logp -= logp.max(axis=1, keepdims=True)
        post = np.exp(logp)
        post /= post.sum(axis=1, keepdims=True)
        new = np.array([post[tops[:, j] >= 0, tops[tops[:, j] >= 0, j]].mean()
                        if (tops[:, j] >= 0).any() else 0.5 for j in range(len(names))])
        new = np.clip(new, 1.0 / ncls + 1e-3, 0.995)
        prior = np.clip(post[voted].mean(axis=0), 1e-4, None) if voted.any() else prior
        prior /= prior.sum()
        if np.abs(new - acc).max() < 1e-5:
            acc = new
            break
        acc = new
    post[~voted] = 0.0
    return post, {s: round(float(a), 4) for s, a in zip(names, acc, strict=True)}


def math_log(x: float) -> float:
    import math

    return math.log(max(x, 1e-12))


def combine_label_model(votes: Votes, cfg: PropagateConfig) -> np.ndarray:
    """The label model's posterior (see :func:`fit_label_model`)."""
    return fit_label_model(votes)[0]


def combine_classifier(votes: Votes, cfg: PropagateConfig) -> np.ndarray:
    """The self-trained classifier's own vote (the blend where it abstains or has not
    run yet). It learnt from what the other sources agreed on; its next round learns
    from another combiner, never from this one."""
    import numpy as np

    clf = votes.get("classifier")
    base = combine_blend(votes, cfg)
    if clf is None:
        return base
    return _normalise(np.where(clf.sum(axis=1, keepdims=True) > 0, clf, base))


COMBINERS: dict[str, Callable[[Votes, PropagateConfig], np.ndarray]] = {
    "blend": combine_blend, "classifier": combine_classifier, "vote": combine_vote,
    "weighted": combine_weighted, "label_model": combine_label_model,
}
"""name → combiner; ``auto`` (the default) picks one by held-out seeds."""


def get_combiner(name: str) -> Callable[[Votes, PropagateConfig], np.ndarray]:
    """The combiner called ``name``; a wrong name lists the valid ones."""
    try:
        return COMBINERS[name]
    except KeyError:
        raise WeaklabelError(
            f"unknown combiner {name!r}; valid: auto, {', '.join(COMBINERS)}") from None
