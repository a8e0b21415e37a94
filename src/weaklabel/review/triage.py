"""The review queue (triage): likely-wrong labels first, plus an honest random slice per label.

One item per labelled image (``image_labels.parquet``) and one per post without images
(``image`` empty). An abstained post is queued with its best guess (``top_label``).
Items are ordered by a *priority*: a *suspicion* score times the post's *density*.
Suspicion is the sum of:

- **disagreement** between the labelling sources: the per-source vote columns
  ``label_<source>`` of ``post_labels.parquet`` when present (each source that voted for
  another label adds 1); otherwise the keyword labels (``keyword_labels.parquet``)
  against the final label, keyword hits too weak to seed that name other labels, and the
  KNN vote's runner-up share;
- **uncertainty of the combined label**: ``1 - margin`` between the top two combined
  vote shares recorded in the evidence (margin sampling) when the vote columns are
  there, else ``1 - confidence``;
- **a label conflict inside a duplicate group** (``label_conflicts.csv`` from dedup): 1;
- **an abstained post** (shown with its best guess): 1, since it has no label yet and any
  answer adds one.

With ``self_confidence`` (``review.queue: confident``), the suspicion is replaced by the
mean of its normalized rank and the normalized rank of ``1 - p``, ``p`` the out-of-fold
probability a discriminative model trained on the labels gives the shown label
(confident learning, :mod:`weaklabel.review.confident`): a label the captions like it do
not back comes up even when every source agrees on it. ``review.queue: cl`` takes
``1 - p`` alone as the suspicion (cleanlab's self-confidence score), the rest of the
queue as it is; ``cl-no-density`` leaves density out of the priority as well.

**Density** (when the workspace has tokens, vectors and word clusters,
:func:`post_density`): information density, a post's mean similarity to the corpus
counting only the posts of its own word cluster, scaled to [0, 1]. A correction of a
post with many similar captions moves many neighbours' votes when propagate re-runs; an
isolated one moves few, however suspicious. **Diversity** (when the workspace has tokens
and vectors, ``vectors``): within a label, the next item is the one whose priority times
(1 − its highest caption cosine to an item already taken) is highest, so a label's first
reviews spread over different captions, as random ones do, instead of repeating one
confusion (batch active learning: uncertainty × diversity); without vectors, the n-th
item taken from one word cluster counts 1/n. Fixed rules (Settles & Craven's density
weight 1, a product with 1 − cosine), not tuned on any corpus.

**Same text** (when the workspace has tokens, ``groups``): posts with one token list are
one text to every source, so a decision on one settles them all; the group's first post
is queued with its priority times the group's size, the others at the very end.

The labels take turns by their estimated errors per post (``turns="f1"``): a label's
share of the first reviews is one minus the mean confidence of its labels over its share
of the labelled posts, since macro-F1 weighs every label alike and a correction moves a
small label's F1 more (``turns="equal"``: the same share each). Every item whose stable hash falls
below ``random_rate`` (5 %) is in the *random slice*
whatever its score: one slice item is placed after every ``1 / random_rate - 1`` scored
items, so a reviewer who stops anywhere has reviewed a random 5 % whose accept rate is an
unbiased precision estimate per label. The order is a pure function of the inputs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN, LABEL_SOURCES, POST_LABELS, Schema
from weaklabel.errors import WeaklabelError

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.workspace import Workspace

QUEUE = Schema(
    "review_queue",
    (("post_id", "str"), ("image", "str"), ("label", "str"), ("confidence", "float"),
     ("why", "str")),
    key=("post_id", "image"),
)
"""``queue.csv``: items in review order; ``image`` is empty for a text-only post."""

RANDOM_WHY = "random slice"
VOTE_COLUMNS = tuple(f"label_{s}" for s in LABEL_SOURCES)
"""Per-source votes in ``post_labels.parquet`` when the label stage writes them
(:data:`~weaklabel.contracts.ABSTAIN` = the source abstained)."""
RANDOM_RATE = 0.05
QUEUE_SEED = 9
QUEUE_ORDERS: dict[str, dict[str, Any]] = {
    "default": {},  # likely-wrong first: f1 turns, cosine diversity (the measured best)
    "audit": {"audit": True},  # one seed per disputed label word interleaved at the top
    "coverage": {"coverage": True},  # keyword seeds count as taken in the diversity
    # suspicion ranked together with how little out-of-fold probability the label gets
    "confident": {"self_confidence": "rank-mean"},
    # confident learning alone: suspicion = 1 - out-of-fold p(shown label)
    "cl": {"self_confidence": "alone"},
    # the same with density out of the priority (pure uncertainty, diversity and turns kept)
    "cl-no-density": {"self_confidence": "alone", "density_weight": False},
}
"""``review.queue`` / ``review queue --order``: name → :func:`build_queue` options (the
orderings README "Review" measures); ``self_confidence`` names the rule
(``self_confidence_rule``) by which :func:`write_queue` computes and uses the
out-of-fold probabilities."""


def queue_order(name: str) -> dict[str, Any]:
    """The :func:`build_queue` options of a queue order (:data:`QUEUE_ORDERS`).

    Raises:
        WeaklabelError: an unknown name, with the closest valid one.

    Example:
        >>> queue_order("audit")
        {'audit': True}
    """
    from weaklabel.errors import closest

    name = name.lower()
    if name not in QUEUE_ORDERS:
        close = closest(name, QUEUE_ORDERS)
        hint = f"did you mean {close!r}? " if close else ""
        raise WeaklabelError(f"queue order {name!r} is unknown; {hint}use one of "
                             f"{', '.join(QUEUE_ORDERS)} (review.queue or --order)")
    return dict(QUEUE_ORDERS[name])


def in_random_slice(post_id: str, image: str, *, rate: float = RANDOM_RATE,
                    seed: int = QUEUE_SEED) -> bool:
    """True when the item belongs to the random slice (stable across runs and builds).

    Example:
        >>> sum(in_random_slice(str(i), "") for i in range(10000)) // 100
        5
    """
    h = hashlib.sha1(f"{seed}\x1f{post_id}\x1f{image}".encode()).digest()
    return int.from_bytes(h[:8], "big") < rate * 2**64


def _stable(post_id: str, image: str) -> str:
    return hashlib.sha1(f"{post_id}\x1f{image}".encode()).hexdigest()


_SHARES = re.compile(r"^(?:knn|blend|classifier|vote|weighted|label_model) "
                     r"((?:\S+:[0-9.]+ ?)+)")
"""The vote shares propagate records first in a label's evidence: the KNN's (older
labels) or the chosen combiner's (``blend a:0.60 b:0.30``)."""


def knn_votes(evidence: str) -> list[tuple[str, float]]:
    """The combined vote shares recorded in a post label's evidence (``knn a:0.60 b:0.30``,
    ``blend a:0.60 b:0.30``), best first."""
    m = _SHARES.match(evidence or "")
    if not m:
        return []
    out = []
    for part in m.group(1).split():
        lab, _, share = part.rpartition(":")
        try:
            out.append((lab, float(share)))
        except ValueError:
            continue
    return out


def keyword_hits(evidence: str) -> list[str]:
    """Labels whose keywords the caption matched (``lips: 립스틱; nails: 네일``)."""
    text = (evidence or "").split(" | ", 1)[-1] if _SHARES.match(evidence or "") \
        else (evidence or "")
    text = text.removeprefix("tie: ")
    return [p.split(": ", 1)[0] for p in text.split("; ") if ": " in p]


def suspicion(row: Mapping[str, Any], *, keyword_label: str | None,
              conflict: bool, abstained: float = 1.0) -> tuple[float, list[str]]:
    """Score one post label (higher = more likely wrong) and say why; an abstained post
    adds ``abstained``."""
    label = row["label"] or row.get("top_label") or ABSTAIN
    why: list[str] = []
    score = 0.0
    # An older post_labels (or a hand-made one) reads with every vote column empty: then
    # the evidence and the keyword-only labels are the second opinion.
    votes = {c: row.get(c) for c in VOTE_COLUMNS
             if isinstance(row.get(c), str) and row.get(c) != ABSTAIN}
    if votes:
        against = {c.removeprefix("label_"): v for c, v in votes.items()
                   if v != ABSTAIN and v != label}
        if against:
            score += len(against)
            why.append("sources disagree (" + ", ".join(f"{k}: {v}" for k, v in
                                                     sorted(against.items())) + ")")
        shares = knn_votes(str(row.get("evidence") or ""))
        if shares:
            # margin sampling: how far the combined label leads its runner-up
            second = shares[1][1] if len(shares) > 1 else 0.0
            margin = max(0.0, shares[0][1] - second)
            score += 1.0 - margin
            if margin < 0.2 and len(shares) > 1:
                why.append(f"margin {margin:.2f} over {shares[1][0]}")
    else:
        ev = str(row.get("evidence") or "")
        if keyword_label and keyword_label != label:
            score += 1
            why.append(f"keywords say {keyword_label}")
        # Keyword hits too weak to seed are still a vote: against the label when they
        # name only other labels, split when they name it and others.
        hits = set(keyword_hits(ev)) - ({keyword_label} if keyword_label else set())
        if hits and label not in hits:
            score += 1
            why.append("keywords point to " + ", ".join(sorted(hits)))
        elif len(hits) > 1:
            score += 0.5
            why.append("keywords of " + ", ".join(sorted(hits)))
        votes_knn = knn_votes(ev)
        if len(votes_knn) > 1:
            score += votes_knn[1][1]
            why.append(f"knn runner-up {votes_knn[1][0]} {votes_knn[1][1]:.2f}")
    conf = float(row.get("confidence") or 0.0)
    if not (votes and knn_votes(str(row.get("evidence") or ""))):
        score += 1.0 - conf
    if conf < 0.6:
        why.append(f"low confidence {conf:.2f}")
    if not row["label"]:
        # No source was sure enough: whatever the answer, the item has no label yet, so
        # a review of it always adds one (a kept label is right about half the time).
        score += abstained
        why.append("abstained, best guess shown")
    if conflict:
        score += 1.0
        why.append("duplicate group has other labels")
    return score, why


def build_queue(
    post_labels: pd.DataFrame, *, image_labels: pd.DataFrame | None = None,
    keyword_labels: pd.DataFrame | None = None, conflicts: pd.DataFrame | None = None,
    captions: Mapping[str, str] | None = None, random_rate: float = RANDOM_RATE,
    seed: int = QUEUE_SEED, exclude: set[tuple[str, str]] | None = None,
    density: Mapping[str, tuple[str, float]] | None = None, abstained: float = 1.0,
    turns: str = "f1", groups: Mapping[str, str] | None = None, score: str = "suspicion",
    seed_weight: float = 1.0, audit: bool = False, vectors: Mapping[str, Any] | None = None,
    coverage: bool = False, self_confidence: Mapping[str, float] | None = None,
    self_confidence_rule: str = "rank-mean", density_weight: bool = True,
) -> pd.DataFrame:
    """Order every reviewable item, likely-wrong first, with the random slice mixed in.

    Args:
        post_labels: the post labels (:data:`~weaklabel.contracts.POST_LABELS`, maybe with
            the per-source vote columns).
        image_labels: image → post rows; posts absent from it are queued as text items.
        keyword_labels: keyword-only labels (a second opinion when vote columns lack).
        conflicts: ``label_conflicts.csv`` rows (``image`` column used).
        captions: post_id → caption, shown for text items.
        random_rate: share of items in the random slice.
        seed: seed of the slice's hash.
        exclude: (post_id, image) items already decided: left out.
        density: post_id → (group, density in [0, 1]) from :func:`post_density`; when
            given, an item's priority is its suspicion times its density, and within a
            label the n-th item taken from one group counts 1/n (diversity).
        abstained: what an abstained post adds to its suspicion.
        turns: ``equal`` (every label the same share of the first reviews) or ``error``
            (a label's share in proportion to its estimated error, one minus the mean
            confidence of its labelled posts), or ``f1`` (in proportion to that error
            over the label's share of the labelled posts: macro-F1 weighs every label
            alike, so a correction in a small label moves it more).
        groups: post_id → its same-text group
            (:func:`~weaklabel.review.reviewed.same_text_groups`); when given, an item's
            priority is multiplied by its group's size (the posts its decision settles),
            and only the group's first post is queued in order: the others, and every
            post of a group with a decided member, come after all the rest.
        score: ``suspicion`` (the sum above) or ``error`` (one minus the calibrated
            confidence: the probability that the shown label is wrong).
        seed_weight: what a keyword seed's priority is multiplied by: the sources learn
            from seeds, so a wrong one misleads them on every post like it, and its
            correction takes a wrong training post away as well as adding a right one.
        audit: put one keyword seed per (label, seeding word) near the top
            (:func:`_audit_first`), so a few reviews test the words that seed many posts
            and that the other sources dispute (``propagate.reviewed_keywords`` then
            stops a word whose seeds were corrected).
        vectors: post_id → unit caption vector (:func:`workspace_vectors`); when given,
            each label's order is diverse by cosine (:func:`_cosine_diverse`) instead of
            by word cluster.
        coverage: with ``vectors``, the keyword seeds count as taken already, so the
            first reviews go to captions unlike any seed (an experiment, off).
        self_confidence: post_id → the out-of-fold probability of its shown label
            (:func:`~weaklabel.review.confident.label_self_confidence`, confident
            learning); when given, an item's suspicion becomes the mean of its
            suspicion's and its ``1 - probability``'s normalized ranks over the scored
            items (a post without a probability counts its suspicion's rank twice).
        self_confidence_rule: how ``self_confidence`` makes the suspicion: ``rank-mean``
            (above, ``review.queue: confident``) or ``alone`` (``review.queue: cl``):
            ``1 - probability`` itself, an abstained post's for its best guess, the
            suspicion's reasons named after ``also:`` in ``why``; a post without a
            probability comes after those with one in its label, by its suspicion.
        density_weight: False leaves density out of the priority (pure uncertainty);
            its groups still order a label's items when there are no vectors.

    Returns:
        A frame with the :data:`QUEUE` columns plus ``caption``, ``evidence`` and
        ``random`` (bool), in review order.
    """
    import pandas as pd

    kw = dict(zip(keyword_labels["post_id"], keyword_labels["label"], strict=True)) \
        if keyword_labels is not None else {}
    conflict_images = set(conflicts["image"]) if conflicts is not None else set()
    by_post = {r["post_id"]: r for r in post_labels.to_dict(orient="records")}
    size: dict[str, int] = {}
    for key in (groups or {}).values():
        size[key] = size.get(key, 0) + 1
    settled = {(groups or {})[p] for p, _ in exclude or set() if p in (groups or {})}
    if self_confidence_rule not in ("rank-mean", "alone"):
        raise WeaklabelError(f"self-confidence rule {self_confidence_rule!r}: use "
                             "rank-mean or alone")
    alone = self_confidence is not None and self_confidence_rule == "alone"
    scored, randoms = [], []
    for post_id, image in _items(by_post, image_labels):
        if (post_id, image) in (exclude or set()):
            continue
        row = by_post[post_id]
        label = row["label"] or row.get("top_label") or ABSTAIN
        if not label:
            continue  # nothing to confirm: no source had a guess
        item = {"post_id": post_id, "image": image, "label": label,
                "confidence": float(row.get("confidence") or 0.0),
                "caption": str((captions or {}).get(post_id, "")),
                "evidence": str(row["evidence"]), "_k": _stable(post_id, image)}
        if row["label"] and in_random_slice(post_id, image, rate=random_rate, seed=seed):
            randoms.append({**item, "why": RANDOM_WHY, "random": True})
            continue
        s, why = suspicion(row, keyword_label=kw.get(post_id) or None,
                           conflict=image in conflict_images, abstained=abstained)
        if score == "error":
            s = 1.0 - float(row.get("confidence") or 0.0)
        # under "alone" 1 - p sets the priority: the suspicion's reasons come after
        # "also:"; a post without p is ordered by its suspicion after the scored ones
        p_label = (self_confidence or {}).get(post_id)
        has_p = p_label is not None
        also = why if alone and has_p else []
        if p_label is not None:
            why = [f"out-of-fold p(label) {p_label:.2f}"] + ([] if alone else why)
        elif alone:
            why = ["no out-of-fold p(label): after the items with one", *why]
        group, dens = f"post {post_id}", 1.0
        if density is not None:
            group, dens = density.get(post_id, (f"post {post_id}", 0.0))
            if density_weight:  # the why names what made the priority
                why.append(f"density {dens:.2f}" + (f" ({group})"
                                                    if group.startswith("cluster") else ""))
        n_same = size.get((groups or {}).get(post_id, ""), 1)
        if n_same > 1:
            why.append(f"settles {n_same} posts of the same text")
        teach = seed_weight if row.get("source") == "seed" else 1.0
        if teach != 1.0:
            why.append("a keyword seed, learnt from")
        if also:
            why.append("also: " + " and ".join(also))
        scored.append({**item, "why": "; ".join(why) or "check", "random": False,
                       "_raw": s, "_f": (dens if density_weight else 1.0, n_same, teach),
                       "_g": group, "_after": alone and not has_p,
                       "_seed": row.get("source") == "seed",
                       "_dis": any(isinstance(row.get(c), str) and row.get(c) not in
                                   (ABSTAIN, label) for c in VOTE_COLUMNS)})
    if self_confidence is not None:
        _rank_with_self_confidence(scored, self_confidence, alone=alone)
    for r in scored:
        dens, n_same, teach = r["_f"]
        r["_s"], r["_t"] = -round(r["_raw"] * dens * n_same * teach, 6), -round(r["_raw"], 6)
    scored.sort(key=lambda r: (r["_s"], r["_t"], r["_k"]))
    scored, later = _one_per_group(scored, groups or {}, settled)
    randoms.sort(key=lambda r: r["_k"])
    if score not in ("suspicion", "error"):
        raise WeaklabelError(f"queue score {score!r}: use suspicion or error")
    if turns not in ("equal", "error", "f1"):
        raise WeaklabelError(f"queue turns {turns!r}: use equal, error or f1")
    share = _label_error(post_labels, per_post=turns == "f1") \
        if turns in ("error", "f1") else None
    covered = _seed_cover(post_labels, vectors) if coverage and vectors is not None \
        else None
    order = _round_robin(scored, diverse=density is not None, share=share,
                         vectors=vectors, covered=covered)
    if audit:
        order = _audit_first(order)
    out = _with_slice(order, randoms, random_rate=random_rate) + later
    cols = [*QUEUE.names, "caption", "evidence", "random"]
    return pd.DataFrame(out, columns=[*cols, "_s", "_k"])[cols].reset_index(drop=True)


def _rank_with_self_confidence(scored: list[dict[str, Any]],
                               self_confidence: Mapping[str, float], *,
                               alone: bool = False) -> None:
    """Replace each item's suspicion (``_raw``) by the mean of the normalized ranks (rank
    over queue items, ties averaged) of its suspicion and of ``1 - self_confidence``,
    the rule fixed before it was measured (``bench/bench_confident.py``). Items, not
    posts: each image keeps its own suspicion (a label conflict of its duplicate group).
    A post without a probability counts its suspicion's rank twice (one scale).

    ``alone``: by ``1 - self_confidence`` itself (confident learning's own score, in
    [0, 1]); a post without a probability keeps its suspicion, and ``_after`` puts it
    after the items with one in its label (:func:`_round_robin`)."""
    import pandas as pd

    if alone:
        for r in scored:
            p = self_confidence.get(r["post_id"])
            if p is not None:
                r["_raw"] = 1.0 - float(p)
        return

    items = pd.DataFrame({"s": [r["_raw"] for r in scored],
                          "oof": [1.0 - self_confidence[r["post_id"]]
                                  if r["post_id"] in self_confidence else None
                                  for r in scored]})
    rs = items["s"].rank(pct=True)
    has = items["oof"].notna()
    ro = rs.copy()
    ro[has] = items.loc[has, "oof"].astype(float).rank(pct=True)
    for r, m in zip(scored, (rs + ro) / 2, strict=True):
        r["_raw"] = float(m)


def _items(by_post: Mapping[str, Any], image_labels: pd.DataFrame | None
           ) -> list[tuple[str, str]]:
    """(post_id, image) of every labelled image of a known post, then ``(post_id, "")``
    of every post without one, each once."""
    pairs: list[tuple[str, str]] = []
    if image_labels is not None and len(image_labels):
        pairs = [(str(p), str(i)) for p, i in zip(image_labels["post_id"],
                                                  image_labels["image"], strict=True)
                 if p in by_post]
    with_images = {p for p, _ in pairs}
    pairs += [(p, "") for p in by_post if p not in with_images]
    return list(dict.fromkeys(pairs))


AUDIT_MIN_SEEDS = 3
"""A word is audited when it seeds at least this many queued posts of one label: then a
correction of one of them can move the others."""


def seed_words(evidence: str, label: str) -> list[str]:
    """The words that matched ``label`` in a keyword seed's evidence (``a: w1,w2; b: w3``).

    Example:
        >>> seed_words("lips: 립스틱,틴트; nails: 네일", "lips")
        ['립스틱', '틴트']
    """
    text = (evidence or "").removeprefix("reviewed | ").removeprefix("tie: ")
    for part in text.split("; "):
        lab, sep, ws = part.partition(": ")
        if sep and lab == label:
            return [w for w in ws.split(",") if w]
    return []


def _audit_first(order: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Interleave one representative seed per (label, seeding word) with ``order``: an
    audit item, then a queue item, while audit items last.

    Words qualify when they seed :data:`AUDIT_MIN_SEEDS` queued posts of the label and
    the other sources dispute at least one; words come by the disputed seeds they hold
    (the posts a correction may free), most first. A word's representative is its seed
    that comes first in ``order`` (the most suspicious), one item per word.
    """
    pairs: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(order):
        if r.get("_seed"):
            for w in seed_words(r["evidence"], r["label"]):
                pairs.setdefault((r["label"], w), []).append(i)
    ranked = sorted(((sum(order[i]["_dis"] for i in rows), len(rows), key)
                     for key, rows in pairs.items() if len(rows) >= AUDIT_MIN_SEEDS),
                    key=lambda t: (-t[0], -t[1], t[2]))
    reps: list[int] = []
    taken: set[int] = set()
    for dis, n, (label, w) in ranked:
        if dis == 0:
            break
        rep = next((i for i in pairs[(label, w)] if i not in taken), None)
        if rep is not None:
            taken.add(rep)
            order[rep] = {**order[rep], "why": f"audits keyword {w} of {label} ({n} seeds, "
                                               f"{dis} disputed); {order[rep]['why']}"}
            reps.append(rep)
    rest = [r for i, r in enumerate(order) if i not in taken]
    out: list[dict[str, Any]] = []
    for k in range(max(len(reps), len(rest))):
        if k < len(reps):
            out.append(order[reps[k]])
        if k < len(rest):
            out.append(rest[k])
    return out


def _one_per_group(scored: list[dict[str, Any]], groups: Mapping[str, str],
                   settled: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split items in priority order into the queue proper (the first post of each
    same-text group, every item of it) and those that come last (the group's other
    posts, which its decision settles, and every post of a ``settled`` group)."""
    first: dict[str, str] = {}
    keep, later = [], []
    for r in scored:
        key = groups.get(r["post_id"])
        if key is None or (key not in settled
                           and first.setdefault(key, r["post_id"]) == r["post_id"]):
            keep.append(r)
        else:
            rep = first.get(key, "a decided post")
            later.append({**r, "why": f"{r['why']}; same text as {rep}"})
    return keep, later


def _with_slice(scored: list[dict[str, Any]], randoms: list[dict[str, Any]], *,
                random_rate: float) -> list[dict[str, Any]]:
    """One random-slice item after every ``1 / random_rate - 1`` scored ones, the rest
    of the slice at the end: wherever a reviewer stops, a random 5 % is reviewed."""
    every = max(1, round(1 / random_rate) - 1) if random_rate > 0 else len(scored) + 1
    out: list[dict[str, Any]] = []
    ri = 0
    for i, r in enumerate(scored):
        if i and i % every == 0 and ri < len(randoms):
            out.append(randoms[ri])
            ri += 1
        out.append(r)
    out.extend(randoms[ri:])
    return out


def _diverse(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-order one label's items (in priority order) so that the n-th item taken from
    one group counts 1/n of its priority: a page is not spent on near-identical posts
    while another group has items nearly as suspicious (greedy, diminishing returns)."""
    import heapq

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["_g"], []).append(r)
    heap = [(g[0]["_s"], g[0]["_t"], g[0]["_k"], name, 0) for name, g in groups.items()]
    heapq.heapify(heap)
    out: list[dict[str, Any]] = []
    while heap:
        _, _, _, name, i = heapq.heappop(heap)
        r = groups[name][i]
        if i:
            r = {**r, "why": f"{r['why']}; item {i + 1} of its group"}
        out.append(r)
        if i + 1 < len(groups[name]):
            nxt = groups[name][i + 1]
            heapq.heappush(heap, (nxt["_s"] / (i + 2), nxt["_t"], nxt["_k"], name, i + 1))
    return out


def _label_error(post_labels: pd.DataFrame, *, per_post: bool = False) -> dict[str, float]:
    """Each label's estimated error: one minus the mean confidence of its labelled posts
    (calibrated confidence: the share of them expected wrong), at least 0.01; with
    ``per_post`` divided by the label's share of the labelled posts."""
    lab = post_labels[post_labels["label"] != ABSTAIN]
    conf = lab.groupby("label")["confidence"].mean()
    err = {str(k): max(0.01, 1.0 - float(v)) for k, v in conf.items()}
    if per_post:
        share = lab["label"].value_counts(normalize=True)
        err = {k: v / float(share[k]) for k, v in err.items()}
    return err


DIVERSE_FIRST = 2_000
"""How many of a label's items the cosine diversity orders (the reviews a team does
first); the rest follow in priority order, so a label of a million posts costs no more
than one of two thousand (each pick compares with every item already taken)."""


def _cosine_diverse(rows: list[dict[str, Any]], vectors: Mapping[str, Any], *,
                    first: int = DIVERSE_FIRST, covered: Mapping[str, float] | None = None
                    ) -> list[dict[str, Any]]:
    """Re-order one label's items (in priority order) greedily: next comes the item whose
    priority times (1 − its highest cosine to an item already taken) is highest, so the
    first reviews of a label spread over different captions (uncertainty × diversity,
    batch active learning); an item without a vector is far from every other.

    Lazy greedy: a value only falls as items are taken, so an item popped with its value
    still up to date is the best one. Only the first ``first`` picks are made this way.
    ``covered``: post → its highest cosine to a keyword seed, counted as if the seeds
    were taken already (coverage: reviews go where the sources have no training post).
    """
    import heapq

    import numpy as np

    heap = [(r["_s"], r["_t"], r["_k"], i) for i, r in enumerate(rows)]
    heapq.heapify(heap)
    dim = next((len(v) for v in vectors.values()), 0)
    taken = np.zeros((min(len(rows), first), dim), dtype=np.float32)
    n_taken = 0
    out: list[dict[str, Any]] = []
    while heap and len(out) < first:
        s, t, k, i = heapq.heappop(heap)
        r = rows[i]
        v = vectors.get(r["post_id"])
        near = float((taken[:n_taken] @ v).max()) if v is not None and n_taken else 0.0
        near = max(near, (covered or {}).get(r["post_id"], 0.0))
        fresh = r["_s"] * (1.0 - max(0.0, near))
        if heap and fresh > heap[0][0] + 1e-12:  # stale: worth less than the next one
            heapq.heappush(heap, (fresh, t, k, i))
            continue
        if near > 0.5:
            r = {**r, "why": f"{r['why']}; cosine {near:.2f} to an earlier item"}
        out.append(r)
        if v is not None:
            taken[n_taken] = v
            n_taken += 1
    # the rest in priority order (re-pushed items carry a discounted value: re-sort)
    rest = sorted((i for *_, i in heap),
                  key=lambda i: (rows[i]["_s"], rows[i]["_t"], rows[i]["_k"]))
    return out + [rows[i] for i in rest]


def _seed_cover(post_labels: pd.DataFrame, vectors: Mapping[str, Any]) -> dict[str, float]:
    """Each post's highest cosine to a keyword seed other than itself (chunked)."""
    import numpy as np

    seeds = [p for p, src in zip(post_labels["post_id"], post_labels["source"], strict=True)
             if src == "seed" and p in vectors]
    ids = [p for p in post_labels["post_id"] if p in vectors]
    if not seeds or not ids:
        return {}
    s = np.stack([vectors[p] for p in seeds]).astype(np.float32)
    pos = {p: j for j, p in enumerate(seeds)}
    out: dict[str, float] = {}
    for a in range(0, len(ids), 4096):
        chunk = ids[a:a + 4096]
        sim = np.stack([vectors[p] for p in chunk]).astype(np.float32) @ s.T
        for r, p in enumerate(chunk):
            if p in pos:
                sim[r, pos[p]] = -1.0
        out.update(zip(chunk, (float(x) for x in sim.max(axis=1)), strict=True))
    return out


def workspace_vectors(ws: Workspace, *, post_vecs: Any = None) -> dict[str, Any] | None:
    """Each post's unit caption vector (``post_vectors``, IDF-weighted, centred) by post
    id, posts without a known word left out; None without tokens or vectors."""
    pv = post_vecs if post_vecs is not None else _workspace_post_vectors(ws)
    if pv is None:
        return None
    ids, _, vecs, has = pv
    return {p: vecs[i] for i, p in enumerate(ids) if has[i]}


def _round_robin(rows: list[dict[str, Any]], *, diverse: bool = False,
                 share: Mapping[str, float] | None = None,
                 vectors: Mapping[str, Any] | None = None,
                 covered: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Interleave the labels (in id order), each in its own priority order.

    Without ``share`` every label gets the same share of the first reviews however
    many posts it has (macro-averaged quality and a data set's smallest class depend on
    each label alike, and the review page shows one label at a time); with it (the
    default queue's F1 turns) each label's share of the first reviews is its ``share``.
    With ``diverse`` each label's order spreads over the groups first (:func:`_diverse`).
    Items marked ``_after`` (no out-of-fold probability under ``cl``) follow the rest of
    their label, ordered among themselves the same way.
    """
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)

    def spread(xs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return (_cosine_diverse(xs, vectors, covered=covered) if vectors is not None
                else _diverse(xs) if diverse else xs)

    lists = [spread([r for r in by_label[k] if not r.get("_after")])
             + spread([r for r in by_label[k] if r.get("_after")]) for k in sorted(by_label)]
    out: list[dict[str, Any]] = []
    if share is None:
        for i in range(max((len(x) for x in lists), default=0)):
            out.extend(x[i] for x in lists if i < len(x))
        return out
    # stride scheduling: a label's next item comes due 1/share after its last one
    weights = [share.get(k, max(share.values(), default=1.0)) for k in sorted(by_label)]
    due = [0.5 / w for w in weights]
    pos = [0] * len(lists)
    while True:
        open_ = [j for j in range(len(lists)) if pos[j] < len(lists[j])]
        if not open_:
            return out
        j = min(open_, key=lambda j: (due[j], j))
        out.append(lists[j][pos[j]])
        pos[j] += 1
        due[j] += 1.0 / weights[j]


def post_density(post_ids: list[str], token_lists: list[list[str]],
                 word_cluster: Mapping[str, int], vecs: Any, has: Any,
                 weight: Any = None) -> dict[str, tuple[str, float]]:
    """Each post's group (its dominant word cluster) and information density in [0, 1].

    Information density (Settles & Craven 2008, weight 1): a post's mean similarity to
    every post, here with posts outside its group counted as 0, so
    ``density = (sum of cosines to the other posts of its group) / posts``, scaled so the
    densest post has 1. A correction of a dense post moves many similar neighbours'
    votes; an isolated post (alone in its group, or without a known word) has 0.

    Args:
        post_ids: the posts, in the rows' order.
        token_lists: their tokens.
        word_cluster: word → its cluster (``word_clusters.parquet``).
        vecs: unit post vectors ``[n, d]`` (``post_vectors``); rows without ``has`` are 0.
        has: which posts have a vector.
        weight: each post's weight as a neighbour (e.g. how uncertain its label is:
            then density counts the uncertain posts a correction may move); default 1.

    Example:
        >>> import numpy as np
        >>> v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> d = post_density(["a", "b", "c"], [["x"], ["x"], ["y"]], {"x": 0, "y": 1},
        ...                  v, np.array([True, True, True]))
        >>> d["a"], d["c"]
        (('cluster 0', 1.0), ('cluster 1', 0.0))
    """
    import numpy as np

    n = len(post_ids)
    group = np.full(n, -1, dtype=np.int64)
    for i, toks in enumerate(token_lists):
        counts: dict[int, int] = {}
        for w in toks:
            c = word_cluster.get(w)
            if c is not None:
                counts[c] = counts.get(c, 0) + 1
        if counts:
            group[i] = min(counts, key=lambda c: (-counts[c], c))
    x = np.where(np.asarray(has)[:, None], np.asarray(vecs, dtype=np.float64), 0.0)
    wt = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    raw = np.zeros(n)
    for c in np.unique(group[group >= 0]):
        rows = np.nonzero(group == c)[0]
        total = (x[rows] * wt[rows, None]).sum(axis=0)
        # without itself
        raw[rows] = x[rows] @ total - wt[rows] * (x[rows] * x[rows]).sum(axis=1)
    raw = np.maximum(raw, 0.0) / max(n, 1)
    top = float(raw.max()) if n else 0.0
    dens = raw / top if top > 0 else raw
    return {p: (f"cluster {int(group[i])}" if group[i] >= 0 else f"post {p}",
                round(float(dens[i]), 4)) for i, p in enumerate(post_ids)}


def _workspace_post_vectors(ws: Workspace) -> tuple[list[str], list[list[str]], Any, Any] | None:
    """``(post ids, token lists, unit post vectors, has a vector)`` of a workspace (IDF
    weights, centred, as propagate's); None without tokens or vectors."""
    from weaklabel.contracts import TOKENS

    if not (ws.path("tokens.parquet").exists() and ws.path("vectors.kv").exists()):
        return None
    from weaklabel.labels.propagate import idf_weights, post_vectors
    from weaklabel.text.embed import load_vectors

    tokens = ws.read("tokens.parquet", TOKENS)
    token_lists = [list(t) for t in tokens["tokens"]]
    vecs, has = post_vectors(token_lists, load_vectors(ws.path("vectors.kv")),
                             idf=idf_weights(token_lists))
    return tokens["post_id"].tolist(), token_lists, vecs, has


def workspace_density(ws: Workspace, weight: Mapping[str, float] | None = None, *,
                      post_vecs: Any = None) -> dict[str, tuple[str, float]] | None:
    """:func:`post_density` of a workspace's posts (None without tokens, vectors or word
    clusters: the queue is then ordered by suspicion alone); ``weight``: post → its
    weight as a neighbour (default 1); ``post_vecs``: :func:`_workspace_post_vectors`
    when already computed."""
    from weaklabel.contracts import WORD_CLUSTERS

    if not ws.path("word_clusters.parquet").exists():
        return None
    pv = post_vecs if post_vecs is not None else _workspace_post_vectors(ws)
    if pv is None:
        return None
    ids, token_lists, vecs, has = pv
    wc = ws.read("word_clusters.parquet", WORD_CLUSTERS)
    return post_density(ids, token_lists,
                        dict(zip(wc["word"], wc["cluster"].astype(int), strict=True)),
                        vecs, has,
                        None if weight is None else [weight.get(p, 0.0) for p in ids])


def load_queue_inputs(ws: Workspace) -> dict[str, Any]:
    """Read what the queue needs from a workspace (post labels required)."""
    import pandas as pd

    from weaklabel.contracts import IMAGE_LABELS, POSTS
    from weaklabel.workspace import read_parquet

    p = ws.require("post_labels.parquet")
    post_labels = pd.read_parquet(p)
    from weaklabel.contracts import check_frame

    check_frame(post_labels, POST_LABELS, p)
    out: dict[str, Any] = {"post_labels": post_labels}
    if ws.path("image_labels.parquet").exists():
        out["image_labels"] = read_parquet(ws.path("image_labels.parquet"), IMAGE_LABELS)
    if ws.path("keyword_labels.parquet").exists():
        out["keyword_labels"] = read_parquet(ws.path("keyword_labels.parquet"), POST_LABELS)
    lc = ws.path("label_conflicts.csv")
    if lc.exists():
        try:
            out["conflicts"] = pd.read_csv(lc, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise WeaklabelError(f"{lc}: cannot read ({exc}); re-run weaklabel dedup") from exc
        if "image" not in out["conflicts"].columns:
            raise WeaklabelError(f"{lc}: lacks column image; re-run weaklabel dedup")
    if ws.path("posts.parquet").exists():
        posts = read_parquet(ws.path("posts.parquet"), POSTS)
        out["captions"] = dict(zip(posts["post_id"], posts["caption"], strict=True))
    pv = _workspace_post_vectors(ws)  # once, for density and diversity
    dens = workspace_density(ws, post_vecs=pv)
    if dens is not None:
        out["density"] = dens
    vectors = workspace_vectors(ws, post_vecs=pv)
    if vectors is not None:
        out["vectors"] = vectors
    if ws.path("tokens.parquet").exists():
        from weaklabel.contracts import TOKENS
        from weaklabel.review.reviewed import same_text_groups

        tokens = ws.read("tokens.parquet", TOKENS)
        out["groups"] = same_text_groups(tokens["post_id"].tolist(),
                                         [list(t) for t in tokens["tokens"]])
    return out


def workspace_self_confidence(ws: Workspace, inputs: Mapping[str, Any], *,
                              order: str = "confident") -> dict[str, float]:
    """:func:`~weaklabel.review.confident.label_self_confidence` of a workspace's post
    labels over its captions (``inputs`` from :func:`load_queue_inputs`), each post's
    fold decided by its token list (``tokens.parquet``; its caption where it has none),
    so posts of one text share a fold.

    Raises:
        WeaklabelError: no captions (``posts.parquet``) to learn from.
    """
    from weaklabel.review.confident import label_self_confidence

    if "captions" not in inputs:
        raise WeaklabelError(f"{ws.path('posts.parquet')} is missing: queue order "
                             f"{order!r} learns from the captions; run weaklabel tokenize")
    keys: dict[str, str] = {}
    if ws.path("tokens.parquet").exists():
        from weaklabel.contracts import TOKENS

        tokens = ws.read("tokens.parquet", TOKENS)
        keys = {str(p): "\x1f".join(t) for p, t in zip(tokens["post_id"], tokens["tokens"],
                                                       strict=True) if len(t)}
    return label_self_confidence(inputs["post_labels"], inputs["captions"], keys=keys)


def decided_items(ws_root: Path) -> set[tuple[str, str]]:
    """(post_id, image) of every item with a standing decision in the workspace's store."""
    from weaklabel.review.store import DECISIONS_DB, DecisionStore, effective

    if not (ws_root / DECISIONS_DB).exists():
        return set()
    with DecisionStore.open(ws_root) as store:
        return {(p, i) for (_, p, i) in effective(store.decisions())}


def write_queue(ws: Workspace, *, limit: int | None = None, output: Path | None = None,
                random_rate: float = RANDOM_RATE, include_decided: bool = False,
                order: str = "default") -> pd.DataFrame:
    """Build the queue of a workspace in ``order`` (:data:`QUEUE_ORDERS`); write the
    first ``limit`` items to ``output``.

    Raises:
        MissingArtifactError: no ``post_labels.parquet`` (run ``weaklabel propagate``).
        WeaklabelError: an unknown ``order`` or a random rate outside [0, 1).
    """
    how = queue_order(order)
    if not 0.0 <= random_rate < 1.0:
        raise WeaklabelError(f"random rate {random_rate} must be in [0, 1)")
    inputs = load_queue_inputs(ws)
    rule = how.pop("self_confidence", None)
    if rule is not None:
        inputs["self_confidence"] = workspace_self_confidence(ws, inputs, order=order)
        how["self_confidence_rule"] = rule
    q = build_queue(**inputs, random_rate=random_rate,
                    exclude=None if include_decided else decided_items(ws.root), **how)
    if limit is not None:
        q = q.head(limit).reset_index(drop=True)
    if output is not None:
        write_csv(q[QUEUE.names], output)
    return q


def write_csv(df: pd.DataFrame, target: Path) -> None:
    """Write a small CSV atomically (UTF-8, ``\\n`` line ends, same bytes each time)."""
    from weaklabel.workspace import atomic_path

    with atomic_path(Path(target)) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.4f")
