"""The propagate stage: keyword seeds, labelling sources combined, calibrated, to images.

1. **Seed.** Each post's tokens are matched against every label's words (its keywords
   weigh 1, words of its assigned clusters ``cluster_word_weight`` when they lie near
   one of its keywords, tokens containing a keyword as that keyword; excluded words
   nothing). The best label is a seed when it leads the runner-up by ``seed_margin``;
   ties abstain. Reviewed labels (``reviewed_labels.parquet``) override seeds.
2. **Vote.** Every labelling source of ``cfg.sources`` (:mod:`weaklabel.labels.sources`:
   keyword, KNN over post vectors, keyword prototypes, a char n-gram classifier: Naive
   Bayes fitted by EM over every post, or self-trained logistic regression) gives each
   post a probability row.
3. **Choose by held-out seeds.** A stratified share (``holdout``) of the seeds is hidden
   from every source, with its label words masked so it looks like a post the keywords
   missed; the combiner and the number of self-training rounds that recover it best are
   used. Only with enough of them (``MIN_HELDOUT_PER_LABEL`` every label,
   ``MIN_HELDOUT`` in all): fewer choose by noise, so the default stands (``combine:
   auto``: the seeds+KNN blend, no classifier round). With ``MIN_HELDOUT`` in all the
   confidence is calibrated (:mod:`weaklabel.labels.calibrate`): seed precision from the
   held-out seeds, a Platt curve from whole keywords held out. No gold label anywhere.
4. **Keep.** A post is labelled when its calibrated confidence reaches a threshold:
   the one ``target_precision`` picks, else ``min_confidence`` when given, else the one
   expected-macro-F1 threshold (``threshold_scope: global``,
   :func:`~weaklabel.labels.calibrate.global_f1_threshold`; ``per_label``: each label's,
   :func:`~weaklabel.labels.calibrate.f1_thresholds`); the rest abstain. Seeds keep
   their labels; their confidence is the estimated precision of their label's seeds.
5. **Carry to images.** Every image of a post gets the post's label.

Every label records its source (seed / knn / reviewed / none), confidence, evidence and
each source's own vote (``label_<source>``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.config import Config, PropagateConfig, as_dict
from weaklabel.contracts import (
    ABSTAIN,
    IMAGE_LABELS,
    LABEL_SOURCES,
    POST_IMAGES,
    POST_LABELS,
    POSTS,
    TOKENS,
)
from weaklabel.errors import WeaklabelError
from weaklabel.labels.calibrate import (  # importable from here too
    calibrate_confidence,
    class_mass,
    estimated_precision,
    f1_thresholds,
    global_f1_threshold,
    held_out_by_keyword,
    seed_precision,
)
from weaklabel.labels.knn import CosineKNN  # lives in knn.py; importable from here too
from weaklabel.labels.labelmap import (
    LabelMap,
    LabelSpec,
    label_words,
    load_labelmap,
    warn_unseeded,
)
from weaklabel.labels.sources import SourceInput, keyword_baseline
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace, atomic_write_text, file_digest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class Seeds:
    """Result of :func:`seed_labels`, one entry per post."""

    labels: list[str]
    confidence: list[float]
    evidence: list[str]


def seed_labels(
    token_lists: Sequence[Sequence[str]], words: Mapping[str, Mapping[str, float]], *,
    margin: float = 1.0,
) -> Seeds:
    """Label posts whose tokens hit label words, by weighted majority with a margin.

    Each distinct matched word counts once per post. The winner must lead the runner-up
    by at least ``margin``; ties and weaker leads abstain (:data:`ABSTAIN`).
    Confidence is the winner's share of all matched weight.

    Example:
        >>> s = seed_labels([["립스틱", "추천"], []], {"립스틱": {"lips": 1.0}})
        >>> s.labels, s.confidence
        (['lips', ''], [1.0, 0.0])
    """
    labels, conf, evidence = [], [], []
    for toks in token_lists:
        score: dict[str, float] = {}
        hits: dict[str, list[str]] = {}
        for w in dict.fromkeys(toks):
            for lab, wt in words.get(w, {}).items():
                score[lab] = score.get(lab, 0.0) + wt
                hits.setdefault(lab, []).append(w)
        if not score:
            labels.append(ABSTAIN)
            conf.append(0.0)
            evidence.append("")
            continue
        ranked = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))
        top, top_s = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        total = sum(score.values())
        ev = "; ".join(f"{lab}: {','.join(hits[lab])}" for lab, _ in ranked)
        if top_s - second >= margin - 1e-9:
            labels.append(top)
            conf.append(round(top_s / total, 4))
        else:
            labels.append(ABSTAIN)
            conf.append(0.0)
            ev = "tie: " + ev
        evidence.append(ev)
    return Seeds(labels, conf, evidence)


def compound_words(
    words: Mapping[str, Mapping[str, float]], vocab: Sequence[str] | set[str], *,
    min_hangul: int = 2, min_latin: int = 3, labelmap: LabelMap | None = None,
    keep: Callable[[str, LabelSpec], bool] | None = None,
) -> dict[str, dict[str, float]]:
    """``words`` plus every vocabulary token that contains a weight-1 keyword: 미니스커트
    and 스커트추천 count for 스커트, nikeair for nike.

    Okt keeps compounds and brand or model names whole when they are in its dictionary or
    unknown to it, so an exact match misses them. A Hangul keyword needs ``min_hangul``
    syllables and may sit anywhere in the token; a Latin one ``min_latin`` letters and
    must start the token (``s`` inside every English word would be noise). A token that
    is itself a label word, or holds keywords of two labels, is left as it is; with
    ``keep`` (see :func:`near_keywords`) a compound must also lie near the label's
    keywords in the word vectors, as cluster words must: 남자친구 holds 친구 but means
    a boyfriend, not friends.
    """
    keys = [(w, labs) for w, labs in words.items()
            if len(labs) == 1 and next(iter(labs.values())) >= 1.0 and
            (len(w) >= min_latin if w.isascii() else len(w) >= min_hangul)]
    out = {w: dict(v) for w, v in words.items()}
    for tok in vocab:
        if tok in words:
            continue
        hit: dict[str, float] = {}
        for k, labs in keys:
            if len(tok) > len(k) and (tok.startswith(k) if k.isascii() else k in tok):
                for lab, wt in labs.items():
                    hit[lab] = max(hit.get(lab, 0.0), wt)
        if len(hit) == 1:
            lab = next(iter(hit))
            if keep is not None and labelmap is not None and not keep(tok, labelmap.get(lab)):
                continue
            out[tok] = hit
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (an all-zero row stays zero)."""
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def unit_word_vectors(kv: Any, *, center: bool = True) -> np.ndarray:
    """The vocabulary's word vectors as float64 unit rows, after subtracting the mean
    vector when ``center`` (see :func:`post_vectors` for why)."""
    import numpy as np

    words = np.asarray(kv.vectors, dtype=np.float64)
    return unit_rows(words - words.mean(axis=0) if center else words)


def idf_weights(token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency of every token."""
    df: Counter[str] = Counter()
    for toks in token_lists:
        df.update(set(toks))
    n = len(token_lists)
    return {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}


def post_vectors(
    token_lists: Sequence[Sequence[str]], kv: Any, *, idf: Mapping[str, float] | None = None,
    center: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each post's in-vocabulary unit word vectors (IDF-weighted), L2-normalised.

    With ``center`` the mean word vector is subtracted first: Word2Vec vectors of a
    small corpus share a common direction that makes every post look alike (on the
    chatbot benchmark centring moved macro-F1 from 0.52 to 0.53 and coverage up 2 points).

    Returns ``(vectors float32 [n, d], has_vector bool [n])``; a post with no known word
    gets a zero vector and ``False``.
    """
    import numpy as np

    units = unit_word_vectors(kv, center=center)
    index = kv.key_to_index
    rows, cols, vals = [], [], []
    for i, toks in enumerate(token_lists):
        for w in toks:
            j = index.get(w)
            if j is not None:
                rows.append(i)
                cols.append(j)
                vals.append(idf.get(w, 1.0) if idf else 1.0)
    from scipy.sparse import csr_matrix

    m = csr_matrix((vals, (rows, cols)), shape=(len(token_lists), len(units)), dtype=np.float32)
    out = np.asarray(m @ units, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1)
    has = norms > 1e-9
    out[has] /= norms[has, None]
    return out, has


def cross_val_accuracy(
    x: np.ndarray, y: Sequence[str], *, k: int, folds: int, seed: int, balance: bool = True,
    max_posts: int = 20_000,
) -> float | None:
    """Stratified k-fold accuracy of :class:`CosineKNN` on the seed posts.

    A diagnostic, so it runs on a stratified sample of at most ``max_posts`` seeds: its
    cost grows with the square of the number of seeds.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, train_test_split

    y_arr = np.asarray(y, dtype=object)
    if len(y_arr) > max_posts:
        keep, _ = train_test_split(np.arange(len(y_arr)), train_size=max_posts,
                                   random_state=seed, stratify=y_arr)
        x, y_arr = x[np.sort(keep)], y_arr[np.sort(keep)]
    _, counts = np.unique(y_arr, return_counts=True)
    folds = min(folds, int(counts.min())) if len(counts) else 0
    if folds < 2 or len(counts) < 2:
        return None
    correct = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y_arr):
        pred = CosineKNN(k, balance=balance).fit(x[train], y_arr[train]).predict(x[test])
        correct += int((pred == y_arr[test]).sum())
    return correct / len(y_arr)


def label_prototypes(
    classes: Sequence[str], kv: Any, keywords: Mapping[str, Sequence[str]],
    seed_vectors: np.ndarray, seed_y: Sequence[str],
) -> np.ndarray:
    """One unit vector per class: the centroid of its keywords' (centred, unit) word
    vectors; a class none of whose keywords is in the vocabulary falls back to the
    centroid of its seed posts."""
    import numpy as np

    w = unit_word_vectors(kv)
    y = np.asarray(seed_y, dtype=object)
    rows = []
    for c in classes:
        idx = [kv.key_to_index[k] for k in keywords.get(c, ()) if k in kv.key_to_index]
        rows.append(w[idx].mean(axis=0) if idx else seed_vectors[y == c].mean(axis=0))
    return unit_rows(np.stack(rows))


def prototype_proba(x: np.ndarray, protos: np.ndarray, *, temperature: float) -> np.ndarray:
    """Softmax over classes of each post's cosine similarity to the class prototypes."""
    import numpy as np

    s = (np.asarray(x, dtype=np.float64) @ protos.T) / temperature
    s -= s.max(axis=1, keepdims=True)
    z = np.exp(s)
    return z / z.sum(axis=1, keepdims=True)


@dataclass
class Propagation:
    """Post labels plus what the run decided and estimated (no gold involved).

    ``votes`` (every source's probability rows) and ``posterior`` (the combined one)
    follow ``classes``; they stay in memory for ``eval`` and benchmarks, never written.
    """

    labels: pd.DataFrame  # POST_LABELS
    cv_accuracy: float | None
    seed_counts: dict[str, int]
    estimates: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    votes: dict[str, np.ndarray] = field(default_factory=dict)
    posterior: np.ndarray | None = None


def _macro_f1(pred: np.ndarray, true: np.ndarray, ncls: int) -> float:
    """Macro-F1 of class indices (-1: abstained, a miss) over the classes present."""
    import numpy as np

    f1s = []
    for c in np.unique(true):
        tp = float(((pred == c) & (true == c)).sum())
        npred, ntrue = float((pred == c).sum()), float((true == c).sum())
        p = tp / npred if npred else 0.0
        r = tp / ntrue if ntrue else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


@dataclass
class _Best:
    """The best (round, combiner) seen by a held-out run, with what it saw then."""

    score: float = -1.0
    round: int = 0
    combine: str = ""
    votes: dict[str, np.ndarray] = field(default_factory=dict)
    posterior: np.ndarray | None = None


def _run_sources(inp: SourceInput, *, sources: Sequence[str], combiners: Sequence[str],
                 rounds: int, cfg: PropagateConfig,
                 score: Callable[[np.ndarray], float] | None = None,
                 trials: list[dict[str, Any]] | None = None,
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, _Best]:
    """The sources' votes and the combined posterior after ``rounds`` self-training
    rounds. Every round's classifier learns from the blend of the round before: graded
    probabilities, so ranking each label's posts by confidence means something (a vote
    or the label model is near 0 or 1 everywhere and lets nearly every post through; fed
    by the held-out seeds' favourite it recovered more of them and labelled the chatbot's
    non-seed posts worse, 0.52 against 0.59 right), and never from its own vote, which
    would only confirm it (fed its own vote, the chatbot's non-seed posts fell from 0.60
    to 0.51 right in three rounds while the held-out seeds rose from 0.76 to 0.79).
    With ``score`` (a held-out criterion) every combiner is scored after every round and
    the best (round, combiner) is returned with the votes it saw; the rounds stop when a
    round raised no combiner's score (each round costs a classifier fit, and on the
    chatbot and the bundled example the score was within 0.01 of its last best after
    the first). The ``nb_em`` classifier reads no other source, so its rounds are two
    fixed fits: round 1 the seeds' EM, round 2 the same with keyword expansion's weak
    seeds (:func:`~weaklabel.labels.sources.expansion_seeds`), taken only when the held-out
    seeds score it higher (chatbot: 0.732 → 0.736, taken; example: 0.558 → 0.540, left).

    Returns ``(votes, posterior of combiners[0], best)``.
    """
    import numpy as np

    from weaklabel.labels.sources import get_combiner, get_source

    votes = {s: get_source(s).votes(inp) for s in sources if s != "classifier"}
    best = _Best()
    post = np.zeros(0)
    if "classifier" not in sources:
        rounds = 0
    elif cfg.classifier_model == "nb_em":  # reads no other source: one fit, and the
        rounds = min(rounds, 2 if cfg.classifier_expand > 0 else 1)  # keyword expansion
    for r in range(rounds + 1):
        if score is not None and r > 1 and best.round < r - 1:
            break  # the last round raised no combiner's held-out score: stop
        if r:
            feed = get_combiner("blend")(votes, cfg)
            cur = np.where(feed.sum(axis=1) > 0, feed.argmax(axis=1), -1)
            inp.current = np.where(inp.train, inp.seed, cur)
            inp.current_conf = np.where(inp.train, 1.0, feed.max(axis=1))
            inp.round = r
            votes["classifier"] = get_source("classifier").votes(inp)
        for name in combiners if score is not None else combiners[:1]:
            p = get_combiner(name)(votes, cfg)
            post = p if name == combiners[0] else post
            if score is None:
                continue
            s = score(p)
            if trials is not None:
                trials.append({"round": r, "combine": name, "score": round(s, 4)})
            if s > best.score + 1e-12:
                best = _Best(s, r, name, dict(votes), p)
    return votes, post, best


@dataclass
class _Posts:
    """Every post's label while propagate works: label, confidence, source, why."""

    ids: list[str]
    label: list[str]
    conf: list[float]
    source: list[str]
    evidence: list[str]
    top_label: list[str]
    per_source: dict[str, list[str]]
    agree: dict[int, float] = field(default_factory=dict)  # uncorrected curve, propagated
    keyword_seed: list[str] = field(default_factory=list)  # the seed label before reviews

    def frame(self) -> pd.DataFrame:
        import pandas as pd


        return pd.DataFrame({
            "post_id": self.ids, "label": self.label, "confidence": self.conf,
            "source": self.source, "evidence": self.evidence, "top_label": self.top_label,
            **{f"label_{s}": self.per_source[s] for s in LABEL_SOURCES}})


def _seeded(post_ids: Sequence[str], token_lists: Sequence[Sequence[str]],
            words: Mapping[str, Mapping[str, float]], *, margin: float,
            reviewed: Mapping[str, str], background: str | None,
            audit: float = 0.0, audit_reviews: Mapping[str, str] | None = None) -> _Posts:
    """Keyword seeds, then reviewed labels over them (``""``: none of the labels, which
    is the background label when the map has one). ``audit_reviews`` (default
    ``reviewed``): the reviews as made, what the keyword audit counts."""

    seeds = seed_labels(token_lists, words, margin=margin)
    before = list(seeds.labels)
    if audit > 0 and reviewed:
        # review weight: a word whose reviewed seeds were mostly corrected stops seeding
        from weaklabel.review.reviewed import audit_keywords

        # one decision is one piece of evidence: not once per post it spread to
        made = reviewed if audit_reviews is None else audit_reviews
        kept, _ = audit_keywords(post_ids, token_lists, before, words, made,
                                 bar=audit, background=background)
        seeds = seed_labels(token_lists, kept, margin=margin)
    n = len(post_ids)
    st = _Posts(list(post_ids), list(seeds.labels), [float(c) for c in seeds.confidence],
                ["seed" if lab != ABSTAIN else "none" for lab in seeds.labels],
                list(seeds.evidence), [], {s: [ABSTAIN] * n for s in LABEL_SOURCES})
    for i, pid in enumerate(post_ids):
        if pid in reviewed:
            st.label[i] = reviewed[pid] or (background or ABSTAIN)
            st.conf[i], st.source[i] = 1.0, "reviewed"
            st.evidence[i] = "reviewed" + (f" | {st.evidence[i]}" if st.evidence[i] else "")
    st.top_label, st.keyword_seed = list(st.label), before
    st.per_source["keyword"] = [lab if src == "seed" else ABSTAIN
                                for lab, src in zip(seeds.labels, st.source, strict=True)]
    return st


def _source_input(st: _Posts, token_lists: Sequence[Sequence[str]], kv: Any,
                  words: Mapping[str, Mapping[str, float]], classes: list[str], *,
                  cfg: PropagateConfig, keywords: Mapping[str, Sequence[str]],
                  texts: Sequence[str] | None) -> tuple[SourceInput, np.ndarray, np.ndarray]:
    """What the sources see, plus the masked post vectors ``(vecs, has)`` of seeds.

    A seed post without its label words is what a post the keywords missed looks like.
    Non-seed posts hold no label word, so the classifier learns from seeds with those
    words masked (else it learns only the keywords), and held-out seeds are recognised
    with them masked (else recovering them is trivial).
    """
    import numpy as np

    n = len(st.ids)
    idf = idf_weights(token_lists) if cfg.idf else None
    vecs, has = post_vectors(token_lists, kv, idf=idf, center=cfg.center)
    cidx = {c: j for j, c in enumerate(classes)}
    seed = np.array([cidx[lab] if lab != ABSTAIN else -1 for lab in st.label], dtype=int)
    is_seed = np.array([s == "seed" for s in st.source])
    masked_toks = [[w for w in toks if w not in words] if is_seed[i] else list(toks)
                   for i, toks in enumerate(token_lists)]
    mvecs, mhas = post_vectors(masked_toks, kv, idf=idf, center=cfg.center)
    raw_texts = list(texts) if texts is not None else [" ".join(t) for t in token_lists]
    clf_texts = [mask_words(raw_texts[i], [w for w in token_lists[i] if w in words])
                 if is_seed[i] else raw_texts[i] for i in range(n)]
    inp = SourceInput(classes=classes, seed=seed, train=seed >= 0, vecs=vecs, has=has,
                      texts=clf_texts, kv=kv, keywords=dict(keywords), cfg=cfg,
                      is_seed=is_seed,
                      seed_texts={i: raw_texts[i] for i in range(n)
                                  if is_seed[i] and clf_texts[i] != raw_texts[i]},
                      tokens=masked_toks)
    inp.seed_tokens = {i: list(token_lists[i]) for i in inp.seed_texts or {}}
    return inp, mvecs, mhas


def _held_out(inp: SourceInput, cfg: PropagateConfig, seeds: np.ndarray | None = None
              ) -> np.ndarray:
    """A stratified share (``cfg.holdout``) of each label's keyword seeds, fixed by
    ``cfg.seed``; reviewed posts are never held out. ``seeds`` (class index of each
    post's keyword seed before reviews) draws them as if nothing were reviewed."""
    import numpy as np

    rng = np.random.default_rng(cfg.seed)
    held = np.zeros(len(inp.seed), dtype=bool)
    for ci in range(len(inp.classes)):
        rows = np.nonzero(inp.is_seed & (inp.seed == ci) if seeds is None else seeds == ci)[0]
        if len(rows) >= 5:
            held[rng.choice(rows, int(round(len(rows) * cfg.holdout)), replace=False)] = True
    return held & np.asarray(inp.is_seed)


# The held-out seeds may pick the combiner and the rounds, and calibrate the confidence,
# only when every seeded label has MIN_HELDOUT_PER_LABEL of them and there are
# MIN_HELDOUT in all; below that the default stands (the combiner given, every
# round of a chosen combiner; with ``auto`` the seeds+KNN blend and no classifier round,
# the raw confidence at min_confidence). A macro-F1 over a handful of held-out
# posts per label is mostly noise: on 5,000 petition titles (14 seeded labels, 221
# held-out seeds, one label none) it picked the label model with no classifier round and
# a calibration that abstained on all but the seeds, macro-F1 0.138 at 22 % coverage
# against 0.198 for seeds+KNN; the classifier's blend, uncalibrated, then kept 18 % of
# 2,000 titles: 16 near-flat classes leave its top vote below min_confidence. With 20 a
# label one label's F1 still moves by about 0.1 from chance alone, but averaged over the
# labels the choice is a fair one.
MIN_HELDOUT_PER_LABEL = 20
MIN_HELDOUT = 100
# Below that, with ``combine: auto``, the classifier names the label after one round and
# the seeds+KNN blend still decides, with its own uncalibrated confidence, which posts are
# labelled: nothing can calibrate the classifier's probabilities, and over 16 labels they
# run flat (on 5,000 petition titles 7 % of the non-seed posts reach 0.2), so its own
# confidence would abstain on nearly everything. One round, not more: with no held-out
# seeds to stop it, more rounds drifted on the petitions (macro-F1 at full coverage 0.251
# after one round, 0.249 after three) and helped the chatbot little (0.634 → 0.656).
# Same coverage as seeds+KNN, the classifier's labels: petitions 5,000 0.203 → 0.230.
FALLBACK_ROUNDS = 1


def heldout_shortfall(truth: np.ndarray, classes: Sequence[str], *,
                      per_label: int = MIN_HELDOUT_PER_LABEL,
                      total: int = MIN_HELDOUT) -> str | None:
    """Why the held-out seeds (``truth``: their class indices) are too few to choose the
    combiner, the rounds and the calibration by, or None when they are enough.

    Example:
        >>> import numpy as np
        >>> heldout_shortfall(np.array([0] * 60 + [1] * 50), ["a", "b"])
        >>> heldout_shortfall(np.array([0] * 120 + [1] * 5), ["a", "b"])
        'label b has 5 held-out seeds, fewer than 20'
    """
    import numpy as np

    counts = np.bincount(np.asarray(truth, dtype=int), minlength=len(classes))
    if len(truth) < total:
        return f"{len(truth)} held-out seeds, fewer than {total}"
    j = int(counts.argmin())
    if counts[j] < per_label:
        return f"label {classes[j]} has {int(counts[j])} held-out seeds, fewer than {per_label}"
    return None


@dataclass
class _Choice:
    """What the held-out seeds decided: combiner, rounds, calibration."""

    combine: str
    rounds: int
    calib: Callable[[np.ndarray], np.ndarray] | None = None
    agree: Callable[[np.ndarray], np.ndarray] | None = None  # agreement with the seeds
    seed_precision: dict[str, float] = field(default_factory=dict)
    agreement: float | None = None
    estimates: dict[str, Any] = field(default_factory=dict)
    keep_by_blend: bool = False  # confidence from the seeds+KNN blend (see FALLBACK_ROUNDS)


def _choose(inp: SourceInput, held: np.ndarray, mvecs: np.ndarray, mhas: np.ndarray,
            combiners: Sequence[str], cfg: PropagateConfig
            ) -> tuple[_Choice, dict[str, np.ndarray]]:
    """Hide ``held`` (masked) from every source; the combiner and round that recover it
    best are chosen. Returns the choice and the votes it saw."""
    import numpy as np

    fixed, vecs, has = inp.train, inp.vecs, inp.has
    inp.train = fixed & ~held
    inp.vecs = np.where(held[:, None], mvecs, vecs)
    inp.has = np.where(held, mhas, has)
    truth = inp.seed[held]
    ncls = len(inp.classes)

    def score(post: np.ndarray) -> float:
        p = post[held]
        return _macro_f1(np.where(p.sum(axis=1) > 0, p.argmax(axis=1), -1), truth, ncls)

    trials: list[dict[str, Any]] = []
    _, _, best = _run_sources(inp, sources=cfg.sources, combiners=combiners,
                              rounds=cfg.rounds, cfg=cfg, score=score, trials=trials)
    inp.train, inp.vecs, inp.has = fixed, vecs, has
    inp.current = inp.current_conf = None
    assert best.posterior is not None
    ph = best.posterior[held]
    ok = ph.sum(axis=1) > 0
    cv = float(np.mean(np.where(ok, ph.argmax(axis=1), -1) == truth))
    return _Choice(best.combine, best.round, None, None, {}, cv,
                   {"trials": trials, "heldout_seeds": int(held.sum()),
                    "heldout_agreement": round(cv, 4)}), best.votes


def _held_out_run(inp: SourceInput, held: np.ndarray, mvecs: np.ndarray, mhas: np.ndarray,
                  choice: _Choice, cfg: PropagateConfig
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The votes and the chosen combination with ``held`` hidden (masked) from every
    source."""
    import numpy as np

    fixed, vecs, has = inp.train, inp.vecs, inp.has
    inp.train = fixed & ~held
    inp.vecs = np.where(held[:, None], mvecs, vecs)
    inp.has = np.where(held, mhas, has)
    try:
        votes, post, _ = _run_sources(inp, sources=cfg.sources, combiners=[choice.combine],
                                      rounds=choice.rounds, cfg=cfg)
    finally:
        inp.train, inp.vecs, inp.has = fixed, vecs, has
        inp.current = inp.current_conf = None
    return votes, post


def _calibrate(inp: SourceInput, choice: _Choice, held: np.ndarray, grouped: np.ndarray,
               mvecs: np.ndarray, mhas: np.ndarray, cfg: PropagateConfig,
               votes: Mapping[str, np.ndarray] | None = None) -> None:
    """Fill ``choice``'s calibration (see calibrate.py): each label's seed precision from
    the sources' votes on the held-out seeds (``votes``, else a run of the chosen
    setting), the confidence curve, corrected for seed noise, from a run with whole
    keywords held out, on a bounded sample of the posts (:func:`_calibration_rows`)."""
    import numpy as np

    if votes is None:
        votes, _ = _held_out_run(inp, held, mvecs, mhas, choice, cfg)
    choice.seed_precision = seed_precision(
        {s: v[held] for s, v in votes.items() if s != "keyword"}, inp.seed[held], inp.classes)
    if grouped.sum() >= MIN_HELDOUT:
        rows = _calibration_rows(grouped, cfg)
        sub = _subset(inp, rows)
        _, post = _held_out_run(sub, grouped[rows], mvecs[rows], mhas[rows], choice, cfg)
        ph, truth = post[grouped[rows]], sub.seed[grouped[rows]]
        ok = ph.sum(axis=1) > 0
        right = [choice.seed_precision.get(inp.classes[j], 1.0) for j in truth[ok]]
        choice.agree = calibrate_confidence(ph[ok].max(axis=1),
                                            ph[ok].argmax(axis=1) == truth[ok])
        choice.calib = calibrate_confidence(ph[ok].max(axis=1), ph[ok].argmax(axis=1) ==
                                            truth[ok], seed_right=np.array(right),
                                            ncls=len(inp.classes))
    choice.estimates.update({"seed_precision": choice.seed_precision,
                             "calibration_seeds": int(grouped.sum())})


def _calibration_rows(grouped: np.ndarray, cfg: PropagateConfig) -> np.ndarray:
    """The posts the calibration run sees: every keyword-held-out seed and a fixed-seed
    sample of the rest, ``cfg.calibration_max_posts`` in all. The curve needs the
    held-out seeds and sources about as strong as the final ones, not every post: at
    100,000 posts a second pass of every source over all of them is what made the
    calibration costly."""
    import numpy as np

    rest = np.nonzero(~grouped)[0]
    room = max(cfg.calibration_max_posts - int(grouped.sum()), 0)
    if len(rest) > room:
        rest = np.random.default_rng(cfg.seed).choice(rest, room, replace=False)
    return np.sort(np.r_[np.nonzero(grouped)[0], rest])


def _subset(inp: SourceInput, rows: np.ndarray) -> SourceInput:
    """``inp`` restricted to ``rows`` (sorted), its TF-IDF features reused when made."""
    import dataclasses

    pos = {int(i): j for j, i in enumerate(rows.tolist())}
    extra = sorted((inp.seed_texts or {}).items())
    keep = [(pos[i], t, len(inp.seed) + k) for k, (i, t) in enumerate(extra) if i in pos]
    features = None
    if inp.features is not None:
        from scipy.sparse import vstack

        features = vstack([inp.features[rows], inp.features[[k for _, _, k in keep]]]
                          ).tocsr()
    return dataclasses.replace(
        inp, seed=inp.seed[rows], train=inp.train[rows], vecs=inp.vecs[rows],
        has=inp.has[rows], texts=[inp.texts[i] for i in rows.tolist()],
        is_seed=None if inp.is_seed is None else inp.is_seed[rows],
        seed_texts={j: t for j, t, _ in keep}, features=features,
        tokens=None if inp.tokens is None else [inp.tokens[i] for i in rows.tolist()],
        seed_tokens={pos[i]: t for i, t in (inp.seed_tokens or {}).items() if i in pos},
        weight=None if inp.weight is None else inp.weight[rows],
        against=None if inp.against is None else inp.against[rows],
        current=None, current_conf=None)


def _final_votes(inp: SourceInput, choice: _Choice, cfg: PropagateConfig
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every source's votes and the chosen combination, learnt from all seeds; the
    classifier always votes, for review."""
    import numpy as np

    from weaklabel.labels.sources import get_source

    votes, post, _ = _run_sources(inp, sources=cfg.sources, combiners=[choice.combine],
                                  rounds=choice.rounds, cfg=cfg)
    if "classifier" in cfg.sources and "classifier" not in votes:
        cur = np.where(post.sum(axis=1) > 0, post.argmax(axis=1), -1)
        inp.current = np.where(inp.train, inp.seed, cur)
        inp.current_conf = np.where(inp.train, 1.0, post.max(axis=1))
        inp.round = 1
        votes = {**votes, "classifier": get_source("classifier").votes(inp)}
    return votes, post


def correction_lookalikes(vecs: np.ndarray, fixes: Sequence[tuple[int, int]],
                          candidates: np.ndarray, top: np.ndarray, *, k: int,
                          similarity: float) -> dict[int, tuple[int, float]]:
    """The look-alikes of corrected posts: for each ``(row, shown)`` of ``fixes`` (a
    corrected post and the class index it was shown), its ``k`` nearest ``candidates``
    (bool per row) by cosine of the unit ``vecs``, at least ``similarity``, whose
    current top label ``top`` is that shown class. Returns look-alike row → (the
    correction's index in ``fixes``, cosine), the most similar correction when several
    reach one post.

    Example:
        >>> import numpy as np
        >>> v = np.array([[1, 0], [0.99, 0.141], [0.98, 0.199], [0, 1]])
        >>> hits = correction_lookalikes(v, [(0, 1)], np.array([0, 1, 1, 1], bool),
        ...                              np.array([1, 1, 0, 1]), k=2, similarity=0.5)
        >>> sorted(hits)
        [1]
    """
    import numpy as np

    out: dict[int, tuple[int, float]] = {}
    cand = np.nonzero(candidates)[0]
    if not len(cand) or not len(fixes) or k <= 0:
        return out
    cv = vecs[cand]
    for start in range(0, len(fixes), 256):  # bounded memory: 256 corrections at a time
        chunk = fixes[start:start + 256]
        sims = vecs[[r for r, _ in chunk]] @ cv.T
        for j, (_, shown) in enumerate(chunk):
            row = sims[j]
            near = np.argsort(-row, kind="stable")[:k]
            for c in near.tolist():
                i, cos = int(cand[c]), float(row[c])
                if cos < similarity or top[i] != shown:
                    continue
                if i not in out or cos > out[i][1] + 1e-12:
                    out[i] = (start + j, cos)
    return out


def _spread_corrections(st: _Posts, inp: SourceInput, choice: _Choice, cfg: PropagateConfig,
                        votes: dict[str, np.ndarray], post: np.ndarray,
                        corrected: Mapping[str, str], classes: list[str]
                        ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A correction carries past its own post (``cfg.correction_spread``): its
    look-alikes (:func:`correction_lookalikes`: unreviewed, non-seed posts near it whose
    vote tops at the label the reviewer rejected) lose that label's support — ``vote``:
    their vote for it cut by the share ``correction_spread_weight`` in the posterior and
    every source's row (the rest of the row as it was, so the confidence falls);
    ``seed``: they are learnt from as weak seeds of the reviewer's label (weight
    ``correction_spread_weight``) and every source votes again. A confirmation changes
    nothing here, and a reviewed post keeps its label: only unreviewed posts are
    touched, and their labels stay propagated ones, kept or abstained by the same
    threshold. Each touched post's evidence names the correction."""
    import numpy as np

    cidx = {c: j for j, c in enumerate(classes)}
    fixes, why = [], []
    for i, (pid, src) in enumerate(zip(st.ids, st.source, strict=True)):
        if src == "reviewed" and pid in corrected and corrected[pid] in cidx and inp.has[i]:
            fixes.append((i, cidx[corrected[pid]]))
            why.append((pid, cidx.get(st.label[i], -1)))
    assert inp.is_seed is not None
    free = inp.has & ~inp.is_seed & np.array([s != "reviewed" for s in st.source])
    top = np.where(post.sum(axis=1) > 0, post.argmax(axis=1), -1)
    hits = correction_lookalikes(inp.vecs, fixes, free, top, k=cfg.correction_spread_k,
                                 similarity=cfg.correction_spread_similarity)
    w = cfg.correction_spread_weight
    if cfg.correction_spread == "seed":
        hits = {i: h for i, h in hits.items() if why[h[0]][1] >= 0}
    if not hits:
        return votes, post
    rows = np.array(sorted(hits))
    shown = np.array([fixes[hits[i][0]][1] for i in rows.tolist()])
    if cfg.correction_spread == "vote":
        def cut(m: np.ndarray) -> np.ndarray:
            # not renormalised: a row all for the rejected label would get it back whole
            m = np.array(m, dtype=float)
            m[rows, shown] *= 1.0 - w
            return m
        votes, post = {s: cut(v) for s, v in votes.items()}, cut(post)
    else:
        assert inp.weight is not None
        inp.seed = inp.seed.copy()
        inp.train, inp.weight = inp.train.copy(), inp.weight.copy()
        inp.seed[rows] = [why[hits[i][0]][1] for i in rows.tolist()]
        inp.train[rows], inp.weight[rows] = True, w
        inp.cache.pop("expansion", None)
        votes, post = _final_votes(inp, choice, cfg)
    for i in rows.tolist():
        pid = why[hits[i][0]][0]
        note = f"looks like corrected {pid} ({hits[i][1]:.2f})"
        st.evidence[i] = note + (f" | {st.evidence[i]}" if st.evidence[i] else "")
    log.info("%d correction(s) reached %d look-alike post(s) (%s)", len(fixes), len(rows),
             cfg.correction_spread)
    return votes, post


def _assign(st: _Posts, votes: Mapping[str, np.ndarray], post: np.ndarray,
            seed: np.ndarray, classes: list[str], choice: _Choice,
            raw_conf: np.ndarray | None = None) -> dict[str, Any]:
    """Each post's top label, calibrated confidence and evidence from the posterior;
    seeds keep their labels, with their label's estimated seed precision as confidence
    (the label model's belief in it when nothing was held out). ``raw_conf``, when
    given, is every post's confidence in place of the posterior's top share."""
    import numpy as np

    from weaklabel.labels.sources import fit_label_model

    for s, v in votes.items():
        if s in st.per_source:
            top_s = np.where(v.sum(axis=1) > 0, v.argmax(axis=1), -1)
            st.per_source[s] = [classes[j] if j >= 0 else ABSTAIN for j in top_s]
    lm_post, accuracy = fit_label_model(votes)
    best_j, raw = post.argmax(axis=1), post.max(axis=1) if raw_conf is None else raw_conf
    cal = choice.calib(raw) if choice.calib is not None else raw
    agree = choice.agree(raw) if choice.agree is not None else None
    order = np.argsort(-post, axis=1)[:, :3]
    for i in range(len(st.ids)):
        if st.source[i] == "seed":
            st.conf[i] = choice.seed_precision.get(st.label[i]) or round(
                float(lm_post[i, seed[i]]) if lm_post[i].sum() > 0 else 1.0, 4)
            continue
        if st.source[i] == "reviewed" or raw[i] <= 0:
            continue
        st.top_label[i] = classes[best_j[i]]
        st.conf[i] = round(float(cal[i]), 4)
        if agree is not None:
            st.agree[i] = float(agree[i])
        votes_txt = " ".join(f"{classes[j]}:{post[i, j]:.2f}" for j in order[i]
                             if post[i, j] > 0)
        st.evidence[i] = f"{choice.combine} {votes_txt}" + \
            (f" | {st.evidence[i]}" if st.evidence[i] else "")
    return {"combine": choice.combine, "rounds": choice.rounds, "source_accuracy": accuracy}


def _keep(st: _Posts, cfg: PropagateConfig, post: np.ndarray,
          classes: list[str]) -> dict[str, Any]:
    """Label the propagated posts whose confidence — the calibrated probability of being
    right, the same number written — reaches the threshold: ``target_precision``'s,
    else ``min_confidence`` when set, else the expected-F1 threshold: one for every
    label (``threshold_scope: global``, the default) or each label's own. The kept
    labels' mean confidence is their estimated precision; ``threshold`` is the lowest a
    kept label may have.

    Why expected F1 by default: a data set is judged by how well each label is found;
    0.5 for every label, the "more likely right than wrong" cut, abstained on a third of
    the chatbot's posts and cost its macro-F1 0.05 (0.641 → 0.590). Why one cut: then
    every kept label is at least as confident as every abstained one; per-label cuts
    kept 5,000 petition titles at 0.313 right and abstained on titles 0.341 right
    (one cut: 0.334 / 0.146, macro-F1 0.219 → 0.234)."""
    import numpy as np

    n = len(st.ids)
    prop_rows = [i for i in range(n) if st.source[i] == "none" and st.top_label[i] != ABSTAIN]
    fixed = np.array([st.source[i] in ("seed", "reviewed") and st.label[i] != ABSTAIN
                      for i in range(n)], dtype=bool)
    fixed_conf = [st.conf[i] for i in np.nonzero(fixed)[0].tolist()]
    conf = np.asarray(st.conf, dtype=float)
    cidx = {c: j for j, c in enumerate(classes)}
    out: dict[str, Any] = {}
    if cfg.target_precision > 0:
        rule = "target_precision"
        threshold = pick_threshold(fixed_conf, [st.conf[i] for i in prop_rows],
                                   target=cfg.target_precision)
        cut = np.full(len(classes), threshold)
        kept_c = fixed_conf + [st.conf[i] for i in prop_rows if st.conf[i] >= threshold - 1e-9]
        if kept_c and float(np.mean(kept_c)) < cfg.target_precision - 1e-9:
            log.warning("no confidence threshold reaches the target precision %.2f (the "
                        "seeds alone are estimated %.3f precise); kept the most precise "
                        "labels, estimated %.3f; review the label map's keywords or lower "
                        "the target", cfg.target_precision,
                        float(np.mean(fixed_conf)) if fixed_conf else 0.0,
                        float(np.mean(kept_c)))
    elif cfg.min_confidence is not None:
        rule, cut = "min_confidence", np.full(len(classes), float(cfg.min_confidence))
    else:
        rule = "expected_f1"
        top = np.full(n, -1)
        for i in np.nonzero(fixed)[0].tolist():
            top[i] = cidx[st.label[i]]
        for i in prop_rows:
            top[i] = cidx[st.top_label[i]]
        c0 = np.where(top >= 0, conf, 0.0)
        mass = class_mass(top, c0, post)
        if cfg.threshold_scope == "global":  # one cut: the kept outrank the abstained
            t, f1 = global_f1_threshold(top, c0, fixed, mass)
            rule, cut = "expected_macro_f1", np.full(len(classes), t)
        else:
            best = f1_thresholds(top, c0, fixed, mass)
            cut = np.array([best[j][0] for j in range(len(classes))])
            f1 = np.array([best[j][1] for j in range(len(classes))])
        out["thresholds"] = {c: round(float(cut[j]), 4) for j, c in enumerate(classes)}
        out["expected_f1"] = {c: round(float(f1[j]), 4) for j, c in enumerate(classes)}
    for i in prop_rows:
        if st.conf[i] >= cut[cidx[st.top_label[i]]] - 1e-9:
            st.label[i], st.source[i] = st.top_label[i], "knn"
    kept = fixed_conf + [st.conf[i] for i in prop_rows if st.source[i] == "knn"]
    if st.agree:  # the same kept labels, held to agreement with the seeds, uncorrected
        agreed = fixed_conf + [st.agree[i] for i in prop_rows if st.source[i] == "knn"]
        out["estimated_agreement"] = round(float(estimated_precision(agreed) or 0.0), 4)
    return {"rule": rule, "threshold": round(float(cut.min()), 4) if len(cut) else None,
            **out,
            "estimated_precision": None if not kept else round(float(estimated_precision(kept)
                                                                     or 0.0), 4),
            "coverage": round(sum(lab != ABSTAIN for lab in st.label) / n, 4) if n else 0.0}


def propagate_labels(
    post_ids: Sequence[str], token_lists: Sequence[Sequence[str]], kv: Any,
    words: Mapping[str, Mapping[str, float]], *, cfg: PropagateConfig,
    keywords: Mapping[str, Sequence[str]] | None = None,
    texts: Sequence[str] | None = None, reviewed: Mapping[str, str] | None = None,
    background: str | None = None, corrected: Collection[str] = (),
    reviews_made: Mapping[str, str] | None = None,
) -> Propagation:
    """Seed, embed, let every labelling source vote, combine; see the module docstring.

    ``texts`` are the captions the classifier reads (default: the tokens joined);
    ``reviewed`` maps post id → a person's label (:data:`ABSTAIN`: none of the labels,
    which becomes ``background`` when the map has one); a reviewed post in
    ``corrected`` (a person changed its label) weighs ``cfg.reviewed_weight`` when the
    sources learn. ``reviews_made`` (default ``reviewed``): the reviews as a person made
    them, before any spread to same-text posts; the keyword audit counts these.
    """
    import numpy as np

    from weaklabel.labels.sources import COMBINERS, get_combiner, get_source

    for s in cfg.sources:
        get_source(s)  # a typo fails before any work
    combiners = list(COMBINERS) if cfg.combine == "auto" else [cfg.combine]
    for c in combiners:
        get_combiner(c)
    st = _seeded(post_ids, token_lists, words, margin=cfg.seed_margin,
                 reviewed=dict(reviewed or {}), background=background,
                 audit=cfg.reviewed_keywords, audit_reviews=reviews_made)
    seed_counts = dict(Counter(lab for lab, src in zip(st.label, st.source, strict=True)
                               if lab != ABSTAIN and src == "seed"))
    classes = sorted({lab for lab in st.label if lab != ABSTAIN})
    if len(classes) < 2 or set(cfg.sources) <= {"keyword"}:
        if len(classes) == 1:
            log.warning("only one label has seed posts; propagation needs two or more, so "
                        "only seeds are labelled")
        return Propagation(st.frame(), None, seed_counts, {}, classes)
    inp, mvecs, mhas = _source_input(st, token_lists, kv, words, classes, cfg=cfg,
                                     keywords=keywords or {}, texts=texts)
    fixes = set(corrected)
    # review weight: a correction marks where the sources were wrong, a confirmation is
    # one more right seed; each weighs its own
    inp.weight = np.array([(cfg.reviewed_weight if pid in fixes else
                            cfg.reviewed_confirm_weight) if src == "reviewed" else 1.0
                           for pid, src in zip(st.ids, st.source, strict=True)])
    # review weight: with reviews_choose off, reviews never move what the held-out seeds
    # choose (combiner, rounds, calibration, so the kept share): the same held-out seeds
    # as without reviews, and no reviewed post learnt from while they choose
    cidx = {c: j for j, c in enumerate(classes)}
    if cfg.reviewed_against > 0 and isinstance(corrected, Mapping):
        # review weight: a correction is evidence against the label it was shown
        inp.against = np.array([cidx.get(corrected.get(pid, ""), -1) if src == "reviewed"
                                else -1 for pid, src in zip(st.ids, st.source, strict=True)])
    kw_seed = np.array([cidx.get(lab, -1) for lab in st.keyword_seed], dtype=int)
    held = _held_out(inp, cfg, None if cfg.reviews_choose else kw_seed)
    full_train = inp.train
    if not cfg.reviews_choose:
        inp.train = inp.train & np.asarray(inp.is_seed)
    choice = _Choice(combiners[0], cfg.rounds)
    short = heldout_shortfall(inp.seed[held], classes) if cfg.holdout > 0 else "no holdout"
    grouped = None
    if cfg.holdout > 0 and held.sum() >= MIN_HELDOUT:  # enough to calibrate by, pooled
        seed_words = [[w for w in dict.fromkeys(toks) if st.label[i] in words.get(w, {})]
                      for i, toks in enumerate(token_lists)]
        assert inp.is_seed is not None
        grouped = held_out_by_keyword(seed_words, inp.seed, inp.is_seed,
                                      share=cfg.holdout, seed_value=cfg.seed)
    held_votes = None
    if short is None:
        choice, held_votes = _choose(inp, held, mvecs, mhas, combiners, cfg)
    else:
        if cfg.combine == "auto" and "classifier" in cfg.sources and cfg.rounds > 0:
            choice = _Choice("classifier", min(FALLBACK_ROUNDS, cfg.rounds),
                             keep_by_blend=True)
        elif cfg.combine == "auto":  # no second stage: seeds+KNN
            choice.rounds = 0
        log.info("held-out seeds too few to choose by (%s): %s after %d round(s)", short,
                 choice.combine, choice.rounds)
        choice.estimates = {"heldout_seeds": int(held.sum()), "default_choice": short}
        # a diagnostic only: how well the KNN recovers seeds, k-fold
        rows = inp.is_seed & inp.has
        choice.agreement = cross_val_accuracy(
            inp.vecs[rows], [classes[j] for j in inp.seed[rows]], k=cfg.k,
            folds=cfg.cv_folds, seed=cfg.seed, balance=cfg.balance)
    if grouped is not None:
        _calibrate(inp, choice, held, grouped, mvecs, mhas, cfg, held_votes)
    inp.train = full_train
    inp.cache.pop("expansion", None)
    votes, post = _final_votes(inp, choice, cfg)
    if cfg.correction_spread != "none" and cfg.correction_spread_k > 0 and fixes \
            and isinstance(corrected, Mapping):
        votes, post = _spread_corrections(st, inp, choice, cfg, votes, post, corrected,
                                          classes)
    if "expansion" in inp.cache and choice.rounds >= 2:  # the final vote learnt from them
        choice.estimates["expansion"] = inp.cache["expansion"]
    raw_conf = None
    # the curve was fitted on the chosen combination's own confidence: apply it to that
    # (a curve of the classifier's confidence read off the blend's put the petitions'
    # propagated labels at 0.89 where 0.33 were right)
    if choice.keep_by_blend and choice.calib is None:
        from weaklabel.labels.sources import combine_blend

        raw_conf = combine_blend({s: v for s, v in votes.items() if s != "classifier"},
                                 cfg).max(axis=1)
    estimates = {**choice.estimates,
                 **_assign(st, votes, post, inp.seed, classes, choice, raw_conf)}
    estimates.update(_keep(st, cfg, post, classes))
    return Propagation(st.frame(), choice.agreement, seed_counts, estimates, classes,
                       dict(votes), post)


def mask_words(text: str, words: Sequence[str]) -> str:
    """``text`` with every occurrence of ``words`` (longest first) blanked out, in any
    case: words are folded to lower case (``normalize.fold``), captions are not.

    Example:
        >>> mask_words("3CE 립스틱 G70사진", ["3ce", "g70", "립스틱"])
        '      사진'
    """
    import re

    for w in sorted(set(words), key=lambda w: (-len(w), w)):
        if w.lower() == w.upper():  # no letter with a case (Hangul): as it is
            text = text.replace(w, " ")
        else:
            text = re.sub(re.escape(w), " ", text, flags=re.IGNORECASE)
    return text


def pick_threshold(fixed: Sequence[float], candidates: Sequence[float], *,
                   target: float) -> float:
    """The lowest confidence threshold whose kept labels (the fixed ones plus every
    candidate at or above it) have a mean confidence — their estimated precision — of at
    least ``target``. When no threshold reaches it, the one with the highest estimated
    precision (above every candidate if the fixed labels alone are best).

    Example:
        >>> pick_threshold([1.0], [0.9, 0.5, 0.2], target=0.8)
        0.5
    """
    total, count = float(sum(fixed)), len(fixed)
    above = max(candidates, default=1.0) + 1e-6
    reached, best, best_mean = None, above, total / count if count else -1.0
    for c in sorted(candidates, reverse=True):
        total += c
        count += 1
        mean = total / count
        if mean >= target - 1e-12:
            reached = c
        if mean > best_mean + 1e-12:
            best, best_mean = c, mean
    return reached if reached is not None else best


def image_labels(
    post_labels: pd.DataFrame, post_images: pd.DataFrame, posts: pd.DataFrame
) -> pd.DataFrame:
    """Carry each post's label onto its images, with the post's likes and comments."""
    df = post_images.merge(post_labels[["post_id", "label", "confidence"]], on="post_id",
                           how="left")
    df = df.merge(posts[["post_id", "likes", "comments"]], on="post_id", how="left")
    df["label"] = df["label"].fillna(ABSTAIN)
    df["confidence"] = df["confidence"].fillna(0.0).astype(float)
    return df


def near_keywords(kv: Any, *, threshold: float) -> Callable[[str, LabelSpec], bool]:
    """A filter for cluster words: keep a word only when its cosine similarity (centred
    vectors) to one of the label's keywords reaches ``threshold``.

    Whole KMeans clusters mix a topic's words with whatever else co-occurs; on the chatbot
    benchmark counting every cluster word cut seed accuracy from 0.84 to 0.65 and
    macro-F1 from 0.52 to 0.45, while keeping only words near the keywords (0.5) lifted
    macro-F1 to 0.53. A label without keywords in the vocabulary keeps all its words.
    """

    w = unit_word_vectors(kv)
    index = kv.key_to_index
    anchors: dict[str, np.ndarray | None] = {}

    def keep(word: str, label: LabelSpec) -> bool:
        if label.id not in anchors:
            rows = [index[k] for k in label.keywords if k in index]
            anchors[label.id] = w[rows] if rows else None
        a = anchors[label.id]
        if a is None:
            return True
        j = index.get(word)
        return j is not None and float((a @ w[j]).max()) >= threshold

    return keep


def unknown_keywords(labelmap: LabelMap, vocab: set[str]) -> list[tuple[str, str]]:
    """(label, keyword) pairs that never occur as a token: likely split by the tokenizer."""
    return [(lab.id, w) for lab in labelmap.labels for w in lab.keywords if w not in vocab]


def unknown_keyword_fix(word: str, stopwords: frozenset[str] = frozenset(), *,
                        min_length: int = 1) -> str:
    """What to do about a keyword that is no token (:func:`unknown_keywords`): a stop word
    is dropped from every caption and a token holds no space or '#', so the user
    dictionary helps only a word the tokenizer split."""
    if word in stopwords:
        return ("it is a stop word (stopwords.txt of the user dictionary), dropped from "
                "every caption; remove it from the keywords or from the stop words")
    if any(c.isspace() for c in word):
        return ("a token is one word and holds no space; write it as one word (and add "
                "that to the user dictionary) or as separate keywords")
    if word.startswith("#"):
        return f"tokens hold no '#'; write the keyword without it, {word.lstrip('#')!r}"
    if len(word) < min_length:
        return (f"it is shorter than tokenize.min_length ({min_length}), so no token is; "
                "lower the setting or use a longer keyword")
    return "if the tokenizer splits it, add it to the user dictionary"


def _stopwords(cfg: Config) -> frozenset[str]:
    """The stop words of the user dictionary this config tokenizes with (none when it
    cannot be read: they only refine a warning)."""
    from weaklabel.text.userdict import load_userdict

    folder = cfg.tokenize.userdict or ("userdict" if Path("userdict").is_dir() else None)
    try:
        return load_userdict(folder).stopwords
    except (WeaklabelError, OSError):
        return frozenset()


def read_reviewed(ws: Workspace, labelmap: LabelMap) -> dict[str, str]:
    """``reviewed_labels.parquet`` as post id → label ({} when absent). A label the map
    does not have is an error naming the file and the row."""
    from weaklabel.contracts import REVIEWED_LABELS

    path = ws.path("reviewed_labels.parquet")
    if not path.exists():
        return {}
    df = ws.read("reviewed_labels.parquet", REVIEWED_LABELS)
    ids = set(labelmap.ids)
    bad = [i for i, lab in enumerate(df["label"]) if lab != ABSTAIN and lab not in ids]
    if bad:
        raise WeaklabelError(
            f"{path}: row {bad[0] + 1}: label {df['label'].iloc[bad[0]]!r} is not in "
            f"{labelmap.path} (labels: {', '.join(labelmap.ids)}); fix the review or the map")
    return dict(zip(df["post_id"], df["label"], strict=True))


def label_posts(
    ws: Workspace, labelmap: LabelMap, cfg: Config, *,
    clusters: dict[int, list[str]] | None = None,
) -> tuple[Propagation, pd.DataFrame]:
    """The labels of every post of the workspace (nothing written): the propagation and
    the keyword-only baseline (``keyword_labels.parquet``). ``clusters`` (cluster id →
    words, e.g. the reviewed words carried over a re-cluster) replaces the workspace's
    ``word_clusters.parquet`` when given; when not, a map read from a file labels with
    its reviewed words as ``propagate`` does (a map reviewed on another clustering
    finds its clusters by their recorded ``cluster_words:``)."""

    from weaklabel.contracts import WORD_CLUSTERS
    from weaklabel.review.reviewed import corrected_posts, same_text_groups, spread_reviews
    from weaklabel.text.embed import load_vectors

    if clusters is None and labelmap.path and Path(labelmap.path).is_file():
        labelmap, clusters, _, _ = _current_labelmap(ws, labelmap.path,
                                                     file_digest(Path(labelmap.path)))
    word_clusters = None
    if clusters is None and ws.path("word_clusters.parquet").exists():
        word_clusters = ws.read("word_clusters.parquet", WORD_CLUSTERS)
    tokens = ws.read("tokens.parquet", TOKENS)
    token_lists = [list(t) for t in tokens["tokens"]]
    kv = load_vectors(ws.require("vectors.kv"))
    cluster_words: dict[int, list[str]] = dict(clusters or {})
    if word_clusters is not None:
        for c, g in word_clusters.groupby("cluster"):
            cluster_words[int(c)] = g["word"].tolist()
    keep = near_keywords(kv, threshold=cfg.propagate.cluster_word_similarity) \
        if cfg.propagate.cluster_word_similarity > 0 else None
    words = label_words(labelmap, cluster_words,
                        cluster_weight=cfg.propagate.cluster_word_weight, keep=keep)
    vocab = {w for t in token_lists for w in t}
    if cfg.propagate.compounds:
        words = compound_words(words, sorted(vocab), labelmap=labelmap, keep=keep)
    unknown = unknown_keywords(labelmap, vocab)
    stop = _stopwords(cfg) if unknown else frozenset()
    for lab, w in unknown:
        log.warning("%s: keyword %r of %r never occurs as a token; %s", labelmap.path, w, lab,
                    unknown_keyword_fix(w, stop, min_length=cfg.tokenize.min_length))
    texts = None
    if "classifier" in cfg.propagate.sources:
        from weaklabel.text.normalize import normalize_caption

        posts = ws.read("posts.parquet", POSTS)[["post_id", "caption"]]
        cap = tokens[["post_id"]].merge(posts, on="post_id", how="left")["caption"]
        texts = [normalize_caption(c) if isinstance(c, str) else "" for c in cap]
    reviewed = read_reviewed(ws, labelmap)
    spread: dict[str, str] = {}
    made = reviewed
    if cfg.propagate.reviews_spread == "tokens" and reviewed:
        # review weight: a reviewed label holds for the posts of the same token list
        groups = same_text_groups(tokens["post_id"].tolist(), token_lists)
        full = spread_reviews(reviewed, groups)
        spread, reviewed = {p: groups[p] for p in full if p not in reviewed}, full
    prop = propagate_labels(tokens["post_id"].tolist(), token_lists, kv, words,
                            cfg=cfg.propagate,
                            keywords={lab.id: lab.keywords for lab in labelmap.labels},
                            texts=texts, reviewed=reviewed,
                            background=labelmap.background,
                            corrected=corrected_posts(ws.root, shown=True),
                            reviews_made=made)
    if spread:
        ev = prop.labels["evidence"].tolist()
        prop.labels["evidence"] = [f"same text as reviewed {spread[p]}"
                                   f"{e.removeprefix('reviewed')}" if p in spread else e
                                   for p, e in zip(prop.labels["post_id"], ev, strict=True)]
    warn_unseeded(labelmap, prop.seed_counts)
    keyword = keyword_baseline(tokens["post_id"].tolist(), token_lists, labelmap,
                               margin=cfg.propagate.seed_margin)
    return prop, keyword


def _propagate_inputs(ws: Workspace, labelmap_path: Any, cfg: Config) -> dict[str, str]:
    """Content digests of everything propagate reads (its up-to-date key)."""
    inputs = {"tokens.parquet": ws.input_digest("tokens.parquet"),
              "vectors.kv": ws.input_digest("vectors.kv"),
              "labelmap": file_digest(labelmap_path) if Path(labelmap_path).is_file() else ""}
    for name, needed in (("word_clusters.parquet", True),
                         # the classifier reads the captions
                         ("posts.parquet", "classifier" in cfg.propagate.sources),
                         ("reviewed_labels.parquet", True)):
        if needed and ws.path(name).exists():
            inputs[name] = ws.input_digest(name)
    return inputs


def _current_labelmap(ws: Workspace, labelmap_path: Any, digest: str
                      ) -> tuple[LabelMap, dict[int, list[str]] | None,
                                 dict[int, list[str]] | None, list[str]]:
    """The label map, validated, and the cluster words to label with: the reviewed
    (pinned) words of every cluster it names, carried over any re-cluster since (see
    drift.py). Returns ``(labelmap, cluster words, pin to write or None, drift lines)``;
    on a map's first use the pin is its recorded words when the clustering differs from
    the one it was reviewed on (``first_pin``), else the current words."""
    from weaklabel.contracts import WORD_CLUSTERS
    from weaklabel.labels.drift import (
        drift_digest,
        drift_lines,
        first_pin,
        pinned_clusters,
        read_pin,
    )

    if not ws.path("word_clusters.parquet").exists():
        return load_labelmap(labelmap_path, known_clusters=set()), None, None, []
    current: dict[int, list[str]] = {}
    for c, g in ws.read("word_clusters.parquet", WORD_CLUSTERS).groupby("cluster"):
        current[int(c)] = g["word"].tolist()
    # a reviewed map names clusters of the run it was reviewed against
    pinned = read_pin(ws.path("labelmap.pin.json"), digest)
    labelmap = load_labelmap(labelmap_path, known_clusters=set(current) | set(pinned or {}))
    new_pin: dict[int, list[str]] | None = None
    lines: list[str] = []
    if pinned is None:
        pinned, lines = first_pin(labelmap, current)
        if pinned is None:  # the clustering the map was reviewed on: pin it as it is
            return labelmap, current, current, []
        new_pin = pinned
    drift = pinned_clusters(labelmap, pinned, current)
    lines += drift_lines(labelmap, drift)
    if lines:
        shown = drift_digest(lines, "the propagate summary")
        # a map whose ids were edited against this run's clusters while its cluster_words
        # stayed those of an older draft reads, here, like a map reviewed elsewhere
        stale = (f"; if its cluster ids were edited against this run's clusters, copy "
                 f"cluster_words from {ws.path('labelmap.draft.yaml')} into it"
                 if new_pin is not None else "")
        log.warning("%s: clusters re-made since review, labelling with the reviewed words: "
                    "%s%s", labelmap.path, shown, stale)
    return labelmap, drift.clusters, new_pin, lines


@dataclass(frozen=True)
class PropagateSummary(Summary):
    """What ``propagate`` labelled, how, and what it estimated (no gold involved)."""

    posts: int
    seed: int
    knn: int
    abstain: int
    reviewed: int
    coverage: float
    keyword_coverage: float
    images: int
    labelled_images: int
    cv_accuracy: float | None = None
    combine: str | None = None
    rounds: int | None = None
    threshold: float | None = None
    # what set the threshold: expected_macro_f1, expected_f1, min_confidence, target
    rule: str | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    estimated_precision: float | None = None
    labels: Mapping[str, int] = field(default_factory=dict)
    seed_counts: Mapping[str, int] = field(default_factory=dict)
    source_accuracy: Mapping[str, float] = field(default_factory=dict)
    cluster_drift: tuple[str, ...] = ()

    def text(self) -> str:
        cv = "n/a" if self.cv_accuracy is None else f"{self.cv_accuracy:.3f}"
        out = (f"{self.posts} posts: {self.seed} seeded, {self.knn} propagated, "
               f"{self.abstain} abstained (coverage {self.coverage:.1%}; keywords alone "
               f"{self.keyword_coverage:.1%}); held-out seeds recovered {cv}")
        if self.estimated_precision is not None:
            how = {"expected_macro_f1": "the expected-macro-F1 threshold",
                   "expected_f1": "each label's expected-F1 threshold, lowest",
                   "target_precision": "the target precision's threshold",
                   }.get(self.rule or "", "confidence")
            out += (f"; combined by {self.combine} after {self.rounds} self-training "
                    f"round(s), kept at {how} >= {self.threshold:.2f}: estimated "
                    f"precision {self.estimated_precision:.3f}")
        labels = ", ".join(f"{k or '(none)'} {v}" for k, v in self.labels.items())
        if self.cluster_drift:
            from weaklabel.labels.drift import drift_digest

            out += ("; drift since the map was reviewed: "
                    + drift_digest(self.cluster_drift, "post_labels.parquet.meta.json"))
        return f"{out}; labels: {labels}; {self.labelled_images}/{self.images} images labelled"


def _summary(written: pd.DataFrame, keyword: pd.DataFrame, imgs: pd.DataFrame,
             prop: Propagation, moved: list[str]) -> PropagateSummary:
    src = Counter(written["source"])
    est = prop.estimates
    return PropagateSummary(
        posts=len(written), seed=src.get("seed", 0), knn=src.get("knn", 0),
        abstain=src.get("none", 0), reviewed=src.get("reviewed", 0),
        coverage=round(float((written["label"] != ABSTAIN).mean()), 4),
        keyword_coverage=round(float((keyword["label"] != ABSTAIN).mean()), 4),
        images=len(imgs), labelled_images=int((imgs["label"] != ABSTAIN).sum()),
        cv_accuracy=None if prop.cv_accuracy is None else round(prop.cv_accuracy, 4),
        combine=est.get("combine"), rounds=est.get("rounds"), threshold=est.get("threshold"),
        rule=est.get("rule"), thresholds=dict(est.get("thresholds") or {}),
        estimated_precision=est.get("estimated_precision"),
        labels=dict(sorted(Counter(written["label"]).items())),
        seed_counts=dict(sorted(prop.seed_counts.items())),
        source_accuracy=dict(est.get("source_accuracy") or {}), cluster_drift=tuple(moved))


PROPAGATE_OUTPUTS = ("post_labels.parquet", "keyword_labels.parquet", "image_labels.parquet")


def run_propagate(ws: Workspace, cfg: Config, *, force: bool = False,
                  progress: bool = True) -> StageReport[PropagateSummary]:
    """Validate ``cfg.labelmap``, seed, propagate; write post, keyword and image labels.

    Raises:
        WeaklabelError: no label map, or one that does not validate.
        MissingArtifactError: no vectors yet (run ``weaklabel embed``).
        ReviewNeeded: most reviewed words of a cluster the map names left the vocabulary.
    """
    from weaklabel.labels.drift import pin_text

    labelmap_path = cfg.labelmap
    if labelmap_path is None:
        raise WeaklabelError(
            "no label map given; pass --labelmap FILE (start from "
            f"{ws.path('labelmap.draft.yaml')}, written by weaklabel cluster)"
        )
    ws.require("vectors.kv")
    inputs = _propagate_inputs(ws, labelmap_path, cfg)
    labelmap, current, new_pin, moved = _current_labelmap(ws, labelmap_path,
                                                          inputs["labelmap"])
    with ws.stage("propagate", outputs=PROPAGATE_OUTPUTS, params=as_dict(cfg.propagate),
                  inputs=inputs, summary=PropagateSummary, force=force) as st:
        if st.todo:
            prop, keyword = label_posts(ws, labelmap, cfg, clusters=current)
            posts = ws.read("posts.parquet", POSTS)
            post_images = ws.read("post_images.parquet", POST_IMAGES)
            written = ws.write("post_labels.parquet", prop.labels, POST_LABELS)
            ws.write("keyword_labels.parquet", keyword, POST_LABELS)
            imgs = ws.write("image_labels.parquet", image_labels(written, post_images, posts),
                            IMAGE_LABELS)
            st.done(_summary(written, keyword, imgs, prop, moved),
                    rows={"post_labels.parquet": len(written),
                          "keyword_labels.parquet": len(keyword),
                          "image_labels.parquet": len(imgs)})
            if new_pin is not None:
                atomic_write_text(ws.path("labelmap.pin.json"),
                                  pin_text(labelmap, inputs["labelmap"], new_pin))
    return st.report
