"""Turn the decisions journal into the artifacts the next build reads.

- ``WORKSPACE/reviewed_labels.parquet`` (:data:`REVIEWED_LABELS`): one row per reviewed
  post, its label (:data:`~weaklabel.contracts.ABSTAIN` = "none of the labels") and the
  label the reviewer was shown (``shown``, of the latest vote). ``propagate`` takes these
  as gold seeds that override every other source; a correction (label ≠ shown) weighs
  ``propagate.reviewed_weight`` when its sources learn (:func:`corrected_posts`).
- ``WORKSPACE/reviewed_images.parquet`` (:data:`REVIEWED_IMAGES`): per reviewed image
  and label the verdict ``accept`` or ``reject``. ``sample`` drops a rejected
  (image, label); ``export`` marks an accepted one ``human-annotated: "yes"``.

How decisions combine: each reviewer's standing decision per item counts (an undone one
does not). A post's label is the majority of its ``accept`` (the shown label) and
``relabel`` (the new label) votes over its items and reviewers; a tie goes to the latest
vote. A ``reject`` says only what the label is not, so it votes at image level only
(a ``relabel`` there is a reject of the shown label plus an accept of the new one). An
image's verdict on a label is the majority, a tie rejects.

Both files are rewritten only when their content changes, so a build whose decisions
did not change finds every later stage up to date.
"""

from __future__ import annotations

import io
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from weaklabel.contracts import ABSTAIN, Schema, conform
from weaklabel.review.store import DECISIONS_DB, Decision, DecisionStore, effective

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

REVIEWED_LABELS = Schema(
    "reviewed_labels", (("post_id", "str"), ("label", "str"), ("shown", "str")),
    key=("post_id",), sort=("post_id",),
)
REVIEWED_IMAGES = Schema(
    "reviewed_images",
    (("image", "str"), ("post_id", "str"), ("label", "str"), ("verdict", "str")),
    key=("image", "post_id", "label"), sort=("image", "post_id", "label"),
)
VERDICTS = ("accept", "reject")


def reviewed_frames(decisions: Iterable[Decision]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(reviewed_labels, reviewed_images)`` from a journal (see the module docstring)."""
    import pandas as pd

    standing = sorted(effective(decisions).values(), key=lambda d: d.seq or 0)
    post_votes: dict[str, list[tuple[str, int]]] = defaultdict(list)
    shown: dict[str, str] = {}  # post → the label shown at its latest vote
    image_votes: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for d in standing:
        seq = d.seq or 0
        if d.action in ("accept", "relabel") and d.post_id:
            shown[d.post_id] = d.shown or ""
        if d.action == "accept":
            if d.post_id:
                post_votes[d.post_id].append((d.shown, seq))
            if d.image and d.shown:
                image_votes[(d.image, d.post_id, d.shown)]["accept"] += 1
        elif d.action == "relabel":
            if d.post_id:
                post_votes[d.post_id].append((d.label, seq))
            if d.image:
                if d.shown and d.shown != d.label:
                    image_votes[(d.image, d.post_id, d.shown)]["reject"] += 1
                if d.label:
                    image_votes[(d.image, d.post_id, d.label)]["accept"] += 1
        elif d.action == "reject" and d.image and d.shown:
            image_votes[(d.image, d.post_id, d.shown)]["reject"] += 1
    labels = []
    for post_id, votes in post_votes.items():
        count = Counter(lab for lab, _ in votes)
        last = {lab: seq for lab, seq in votes}
        best = max(count, key=lambda lab: (count[lab], last[lab]))
        labels.append({"post_id": post_id, "label": best, "shown": shown.get(post_id, "")})
    images = [{"image": i, "post_id": p, "label": lab,
               "verdict": "accept" if c["accept"] > c["reject"] else "reject"}
              for (i, p, lab), c in image_votes.items()]
    lf = pd.DataFrame(labels, columns=REVIEWED_LABELS.names)
    imf = pd.DataFrame(images, columns=REVIEWED_IMAGES.names)
    return (conform(lf, REVIEWED_LABELS, "reviewed_labels.parquet"),
            conform(imf, REVIEWED_IMAGES, "reviewed_images.parquet"))


@dataclass
class ReviewedResult:
    """What :func:`write_reviewed` found and wrote."""

    posts: int
    images: int
    decisions: int
    changed: list[str]
    up_to_date: bool = False


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def write_reviewed(ws_root: Path | str) -> ReviewedResult:
    """Materialise ``reviewed_labels.parquet`` and ``reviewed_images.parquet`` from the
    workspace's decisions, atomically, only where the content changed.

    A workspace without a decisions database gets no files (and nothing is removed).
    """
    from weaklabel.workspace import atomic_path

    root = Path(ws_root)
    if not (root / DECISIONS_DB).exists():
        return ReviewedResult(0, 0, 0, [], up_to_date=True)
    with DecisionStore.open(root) as store:
        decisions = store.decisions()
    lf, imf = reviewed_frames(decisions)
    changed = []
    for name, df in (("reviewed_labels.parquet", lf), ("reviewed_images.parquet", imf)):
        data = _parquet_bytes(df)
        target = root / name
        if target.exists() and target.read_bytes() == data:
            continue
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        changed.append(name)
    if changed:
        log.info("reviewed labels: %d posts, %d image verdicts from %d decisions",
                 len(lf), len(imf), len(decisions))
    return ReviewedResult(len(lf), len(imf), len(decisions), changed,
                          up_to_date=not changed)


def read_reviewed_images(ws_root: Path | str) -> pd.DataFrame | None:
    """``reviewed_images.parquet`` of a workspace, checked, or None when absent."""
    from weaklabel.workspace import read_parquet

    p = Path(ws_root) / "reviewed_images.parquet"
    return read_parquet(p, REVIEWED_IMAGES) if p.exists() else None


@overload
def corrected_posts(ws_root: Path | str) -> set[str]: ...
@overload
def corrected_posts(ws_root: Path | str, *, shown: bool) -> dict[str, str]: ...
def corrected_posts(ws_root: Path | str, *, shown: bool = False
                    ) -> set[str] | dict[str, str]:
    """Reviewed posts whose label is not the one the reviewer was shown: corrections,
    which sit where the pipeline was wrong (``shown``: post → the label it was shown).
    Empty for a file without ``shown`` (written before it was recorded): then every
    reviewed post weighs like a seed."""
    import pandas as pd

    p = Path(ws_root) / "reviewed_labels.parquet"
    if not p.exists():
        return {} if shown else set()
    df = pd.read_parquet(p)
    if "shown" not in df.columns:
        return {} if shown else set()
    out = {str(x): str(sh) for x, lab, sh in zip(df["post_id"], df["label"], df["shown"],
                                                 strict=True) if lab != sh}
    return out if shown else set(out)


def read_reviewed_labels(ws_root: Path | str) -> pd.DataFrame | None:
    """``reviewed_labels.parquet`` of a workspace, checked, or None when absent."""
    from weaklabel.workspace import read_parquet

    p = Path(ws_root) / "reviewed_labels.parquet"
    return read_parquet(p, REVIEWED_LABELS) if p.exists() else None


def drop_rejected(labels: pd.DataFrame, reviewed: pd.DataFrame | None) -> pd.DataFrame:
    """Image-label rows without the (image, label) pairs a reviewer rejected."""
    if reviewed is None or not len(reviewed) or not len(labels):
        return labels
    rej = reviewed[reviewed["verdict"] == "reject"]
    bad = set(zip(rej["image"], rej["label"], strict=True))
    keep = [(i, lab) not in bad for i, lab in zip(labels["image"], labels["label"],
                                                   strict=True)]
    return labels[keep].reset_index(drop=True)


def human_annotated(images: Iterable[str], labels: Iterable[str], post_ids: Iterable[str],
                    ws_root: Path | str) -> list[bool]:
    """Per exported row: did a reviewer confirm this image's label (or its post's)?"""
    imf = read_reviewed_images(ws_root)
    lf = read_reviewed_labels(ws_root)
    ok_img = set() if imf is None else {
        (i, lab) for i, lab, v in zip(imf["image"], imf["label"], imf["verdict"], strict=True)
        if v == "accept"}
    ok_post = {} if lf is None else dict(zip(lf["post_id"], lf["label"], strict=True))
    return [(i, lab) in ok_img or (ok_post.get(p, None) == lab and lab != ABSTAIN)
            for i, lab, p in zip(images, labels, post_ids, strict=True)]


def same_text_groups(post_ids: Sequence[str], token_lists: Sequence[Sequence[str]]
                     ) -> dict[str, str]:
    """Posts that share their exact, non-empty token list with another post: post id →
    its group's key (the group's smallest post id). Singletons are left out.

    Such posts are the same text to every source (tokens, vectors, the classifier's
    words), so one decision settles them all: a review spreads over the group
    (:func:`spread_reviews`) and the queue shows one of them (``review/triage.py``).

    Example:
        >>> same_text_groups(["b", "a", "c", "d"], [["x", "y"], ["x", "y"], ["y", "x"], []])
        {'b': 'a', 'a': 'a'}
    """
    members: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for pid, toks in zip(post_ids, token_lists, strict=True):
        if len(toks):
            members[tuple(toks)].append(str(pid))
    out: dict[str, str] = {}
    for group in members.values():
        if len(group) > 1:
            key = min(group)
            out.update((p, key) for p in group)
    return out


def spread_reviews(reviewed: Mapping[str, str], groups: Mapping[str, str]
                   ) -> dict[str, str]:
    """The reviewed labels plus, for every unreviewed post of a same-text group
    (:func:`same_text_groups`) with reviewed members, their majority label (a tie
    spreads nothing). A reviewed post keeps its own label.

    Example:
        >>> spread_reviews({"a": "lips"}, {"a": "a", "b": "a", "c": "c", "d": "c"})
        {'a': 'lips', 'b': 'lips'}
    """
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for pid, lab in reviewed.items():
        if pid in groups:
            votes[groups[pid]][lab] += 1
    label: dict[str, str] = {}
    for key, count in votes.items():
        top = count.most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            label[key] = top[0][0]
    out = dict(reviewed)
    for pid, key in groups.items():
        if pid not in out and key in label:
            out[pid] = label[key]
    return out


KEYWORD_PRIOR = (2.0, 1.0)
"""Beta prior of a label word's precision as a seed (mean 2/3: the keywords a person
wrote seed mostly right posts), so one correction alone never indicts a word."""


def audit_keywords(
    post_ids: Sequence[str], token_lists: Sequence[Sequence[str]], seeds: Sequence[str],
    words: Mapping[str, Mapping[str, float]], reviewed: Mapping[str, str], *,
    bar: float, background: str | None = None,
    prior: tuple[float, float] = KEYWORD_PRIOR,
) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], tuple[int, int]]]:
    """The label words that still seed after the reviews, and the evidence on each.

    A reviewed post that a word seeded for label A is evidence on the word's precision
    for A: confirmed when the reviewer kept A, corrected otherwise (every word that
    seeded it for A shares the blame). A word's posterior precision for A is the Beta
    ``prior`` updated by those counts; below ``bar`` it stops seeding A, so the other
    posts it seeded are labelled by the other sources instead of being held at A.

    Args:
        post_ids: the posts, in the rows' order.
        token_lists: their tokens.
        seeds: each post's keyword seed label before reviews (ABSTAIN: none).
        words: word → {label: weight}, the seeding words.
        reviewed: post id → reviewed label (ABSTAIN: none of the labels, which is
            ``background`` when the map has one).
        bar: the posterior precision a word must keep to go on seeding a label.
        prior: (α, β) of the Beta prior.

    Returns:
        ``(words kept, {(word, label): (confirmed, corrected)})`` for every word and
        label a review touched.

    Example:
        >>> kept, ev = audit_keywords(["a", "b", "c"], [["술"], ["술"], ["술"]],
        ...                           ["daily", "daily", "daily"], {"술": {"daily": 1.0}},
        ...                           {"a": "love", "b": "love"}, bar=0.5)
        >>> kept, ev
        ({}, {('술', 'daily'): (0, 2)})
    """
    counts: dict[tuple[str, str], list[int]] = {}
    for pid, toks, lab in zip(post_ids, token_lists, seeds, strict=True):
        if lab == ABSTAIN or pid not in reviewed:
            continue
        ok = (reviewed[pid] or background or ABSTAIN) == lab
        for w in dict.fromkeys(toks):
            if lab in words.get(w, {}):
                counts.setdefault((w, lab), [0, 0])[0 if ok else 1] += 1
    a, b = prior
    drop = {k for k, (c, x) in counts.items() if (a + c) / (a + b + c + x) < bar}
    if drop:
        log.info("reviews indict %d label word(s): %s", len(drop), ", ".join(
            f"{w} ({lab}: {counts[(w, lab)][0]} kept, {counts[(w, lab)][1]} corrected)"
            for w, lab in sorted(drop)))
    kept = {w: {lab: wt for lab, wt in labs.items() if (w, lab) not in drop}
            for w, labs in words.items()}
    return ({w: labs for w, labs in kept.items() if labs},
            {k: (v[0], v[1]) for k, v in sorted(counts.items())})
