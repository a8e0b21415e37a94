"""Decisions in and out: CSV both ways, SageMaker Ground Truth output manifests in.

The CSV (:data:`DECISIONS_CSV`) has ``post_id`` or ``image`` (or both), ``label``
(empty = "none of the labels") and ``reviewer``; ``action`` (accept, reject, relabel),
``shown`` and ``decision_id`` are optional and written by ``review export``, so an
export imported elsewhere is the same journal. A row without ``decision_id`` gets one
derived from its content: importing the same file twice adds nothing.

A Ground Truth output manifest has one JSON object per line: ``source-ref`` (the image)
and ``<job>-metadata`` with ``class-name``; only lines with ``human-annotated: "yes"`` are
decisions (the others are machine labels, e.g. weaklabel's own export).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN
from weaklabel.errors import WeaklabelError
from weaklabel.review.store import Decision, DecisionStore, effective
from weaklabel.review.triage import in_random_slice

if TYPE_CHECKING:
    from weaklabel.workspace import Workspace

DECISIONS_CSV = ("post_id", "image", "label", "reviewer", "action", "shown", "decision_id")


@dataclass
class Current:
    """What the workspace labels each post and image today (to fill ``shown``)."""

    post_label: dict[str, str]
    image_posts: dict[str, list[str]]
    labels: set[str]
    names: dict[str, str]


def load_current(ws: Workspace, *, labelmap: Path | str | None = None) -> Current:
    """Post labels, image → posts and the known labels of a workspace."""
    import pandas as pd

    post_label: dict[str, str] = {}
    labels: set[str] = set()
    p = ws.path("post_labels.parquet")
    if p.exists():
        df = pd.read_parquet(p, columns=["post_id", "label", "top_label"])
        post_label = dict(zip(df["post_id"], df["label"], strict=True))
        labels = (set(df["label"]) | set(df["top_label"])) - {ABSTAIN}
    image_posts: dict[str, list[str]] = {}
    ip = ws.path("post_images.parquet")
    if ip.exists():
        pi = pd.read_parquet(ip, columns=["post_id", "image"])
        for post, img in zip(pi["post_id"], pi["image"], strict=True):
            image_posts.setdefault(str(img), []).append(str(post))
    names: dict[str, str] = {}
    if labelmap is not None:
        from weaklabel.labels.labelmap import load_labelmap

        lm = load_labelmap(labelmap)
        labels |= set(lm.ids)
        names = {lab.name: lab.id for lab in lm.labels}
    return Current(post_label, image_posts, labels, names)


def _label_of(text: str, cur: Current) -> str:
    """The label id ``text`` names: an id as it is (ids win), else the id of the label
    whose display name it is."""
    return text if text in cur.labels else cur.names.get(text, text)


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _auto_id(*parts: str) -> str:
    return "imp-" + hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def _decide(*, did: str, reviewer: str, post_id: str, image: str, label: str,
            action: str | None, shown: str | None, origin: str, cur: Current) -> Decision:
    if shown is None:
        shown = cur.post_label.get(post_id, ABSTAIN)
    if not action:
        action = "accept" if shown and label == shown else "relabel"
    if action == "accept" and not label:
        label = shown
    # a random-slice item shown with its own label: it counts towards measured precision
    in_slice = bool(shown) and shown == cur.post_label.get(post_id) \
        and in_random_slice(post_id, image)
    return Decision(did, reviewer, post_id, image, shown, action, label, None, origin,
                    in_slice)


def read_decisions_csv(path: Path, cur: Current) -> list[Decision]:
    """Decisions from a CSV; errors name the row and the fix.

    Raises:
        WeaklabelError: a missing column, an unknown label, a row with neither post_id
            nor image, an image of no known post.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except UnicodeDecodeError as exc:
        raise WeaklabelError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except csv.Error as exc:
        raise WeaklabelError(f"{path}: not a readable CSV ({exc})") from exc
    if rows and ("label" not in header or ("post_id" not in header and "image" not in header)):
        raise WeaklabelError(f"{path}: needs columns post_id or image, label and reviewer; "
                             f"found {', '.join(k for k in header if k)}")
    out = []
    source = _file_digest(path)  # the same file again adds nothing, another file does
    for n, r in enumerate(rows, start=2):
        where = f"{path}, line {n}"
        post_id = (r.get("post_id") or "").strip()
        image = (r.get("image") or "").strip()
        label = (r.get("label") or "").strip()
        reviewer = (r.get("reviewer") or "").strip() or "import"
        action = (r.get("action") or "").strip() or None
        shown = r.get("shown")
        if action not in (None, "accept", "reject", "relabel"):
            raise WeaklabelError(f"{where}: action {action!r} must be accept, reject or "
                                 "relabel (or empty)")
        label = _label_of(label, cur)
        if label and cur.labels and label not in cur.labels:
            raise WeaklabelError(f"{where}: label {label!r} is not a label of this workspace; "
                                 f"use one of {', '.join(sorted(cur.labels))} or leave it "
                                 "empty for none of the labels")
        if not post_id and not image:
            raise WeaklabelError(f"{where}: give a post_id or an image")
        posts = [post_id] if post_id else cur.image_posts.get(image, [])
        if not posts:
            raise WeaklabelError(f"{where}: image {image!r} belongs to no post of this "
                                 "workspace; give its post_id or fix the path")
        if post_id and cur.post_label and post_id not in cur.post_label:
            raise WeaklabelError(f"{where}: post_id {post_id!r} is no post of this workspace; "
                                 "fix the id (leading zeros and spaces count)")
        for p in posts:
            did = (r.get("decision_id") or "").strip() or _auto_id(
                source, str(n), reviewer, p, image, label, action or "")
            if len(posts) > 1:
                did = _auto_id(did, p)
            out.append(_decide(did=did, reviewer=reviewer, post_id=p, image=image,
                               label=label, action=action,
                               shown=shown.strip() if isinstance(shown, str) else None,
                               origin="csv", cur=cur))
    return out


def read_groundtruth(path: Path, cur: Current) -> tuple[list[Decision], int]:
    """Human decisions of a Ground Truth image-classification output manifest.

    Returns:
        ``(decisions, skipped)``: lines that are not human-annotated are skipped.
    """
    out: list[Decision] = []
    skipped = 0
    images = sorted(cur.image_posts, key=len, reverse=True)
    source = _file_digest(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise WeaklabelError(f"{where}: not JSON ({exc})") from exc
            meta_key = next((k for k, v in obj.items() if k.endswith("-metadata")
                             and isinstance(v, Mapping) and "class-name" in v), None)
            ref = obj.get("source-ref")
            if meta_key is None or not isinstance(ref, str):
                raise WeaklabelError(f"{where}: not a Ground Truth image-classification line "
                                     "(needs source-ref and <job>-metadata.class-name)")
            meta = obj[meta_key]
            if str(meta.get("human-annotated", "no")).lower() != "yes":
                skipped += 1
                continue
            image = _match_image(ref, images)
            if image is None:
                raise WeaklabelError(f"{where}: source-ref {ref!r} matches no image of this "
                                     "workspace")
            name = str(meta["class-name"])
            label = _label_of(name, cur)
            if cur.labels and label not in cur.labels:
                raise WeaklabelError(f"{where}: class-name {name!r} is not a label of this "
                                     f"workspace; known: {', '.join(sorted(cur.labels))}")
            reviewer = "groundtruth:" + str(meta.get("job-name", meta_key[:-9])).split("/")[-1]
            for p in cur.image_posts[image]:
                out.append(_decide(did=_auto_id(source, str(n), reviewer, p, image, label,
                                                ref),
                                   reviewer=reviewer, post_id=p, image=image, label=label,
                                   action=None, shown=None, origin="groundtruth", cur=cur))
    return out, skipped


def _match_image(ref: str, images: list[str]) -> str | None:
    """The workspace image a source-ref names: the same path or the longest path suffix."""
    ref = ref.split("?", 1)[0]
    for img in images:
        if ref == img or ref.endswith("/" + img):
            return img
    return None


def import_decisions(ws: Workspace, path: Path, *, labelmap: Path | str | None = None
               ) -> dict[str, Any]:
    """Import a decisions CSV or a Ground Truth manifest (``.manifest``/``.jsonl``/JSON
    lines) into the workspace's store, then refresh the reviewed artifacts.
    """
    from weaklabel.review.reviewed import write_reviewed

    cur = load_current(ws, labelmap=labelmap)
    with open(path, "rb") as f:
        head = f.read(1).lstrip()
    skipped = 0
    if path.suffix in (".manifest", ".jsonl") or head == b"{":
        decisions, skipped = read_groundtruth(path, cur)
    else:
        decisions = read_decisions_csv(path, cur)
    with DecisionStore.open(ws.root) as store:
        try:
            added, seen = store.record_many(decisions)
        except WeaklabelError as exc:
            raise WeaklabelError(f"{path}: {exc}") from exc
    res = write_reviewed(ws.root)
    return {"read": len(decisions), "added": added, "already": seen, "skipped": skipped,
            "reviewed_posts": res.posts, "reviewed_images": res.images}


def export_decisions(ws: Workspace, output: Path, *, journal: bool = False) -> int:
    """Write the standing decisions (or with ``journal`` every row) as CSV; rows written."""
    from weaklabel.workspace import atomic_path

    with DecisionStore.open(ws.root) as store:
        rows = store.decisions()
    if not journal:
        rows = sorted(effective(rows).values(), key=lambda d: d.seq or 0)
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(DECISIONS_CSV if not journal else (*DECISIONS_CSV, "undoes"))
        for d in rows:
            cells = [d.post_id, d.image, d.label, d.reviewer, d.action, d.shown, d.id]
            w.writerow(cells if not journal else [*cells, d.undoes or ""])
    return len(rows)
