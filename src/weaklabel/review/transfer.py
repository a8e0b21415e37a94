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


def _open_decisions(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and header of a decisions CSV: its encoding detected as for a posts
    table (UTF-8 with or without BOM, CP949, UTF-16), its separator the one of ``,``
    ``;`` tab ``|`` whose header holds a ``label`` column.

    Raises:
        WeaklabelError: an empty file, an encoding no reading decodes, a broken CSV.
    """
    from weaklabel.posts import detect_encoding

    enc = detect_encoding(path, columns=["label"])
    try:
        with open(path, encoding=enc, newline="") as f:
            first = ""
            while not first.strip():
                first = f.readline(1 << 16)
                if not first:
                    raise WeaklabelError(
                        f"{path}: the file is empty; a decisions CSV starts with the header "
                        "post_id,label,reviewer")
            sep = next((c for c in (",", ";", "\t", "|")
                        if "label" in next(csv.reader([first.lstrip("\ufeff")],
                                                      delimiter=c), [])), ",")
            f.seek(0)
            reader = csv.DictReader(f, delimiter=sep)
            rows = list(reader)
            header = [h.lstrip("\ufeff").strip() for h in (reader.fieldnames or [])]
    except UnicodeDecodeError as exc:
        raise WeaklabelError(f"{path}: cannot decode as {enc} ({exc.reason}); save it as "
                             "UTF-8") from exc
    except csv.Error as exc:
        raise WeaklabelError(f"{path}: not a readable CSV ({exc})") from exc
    names = reader.fieldnames or []
    if header != names:  # " label" or a BOM the codec kept: the name is what counts
        rows = [{h: r.get(k) for h, k in zip(header, names, strict=True)} for r in rows]
    return rows, header


def _missing_columns(path: Path, header: list[str]) -> WeaklabelError:
    from weaklabel.errors import closest

    hints = [f"{h!r} → {c!r}" for h in header if h and h not in DECISIONS_CSV
             for c in [closest(h, DECISIONS_CSV)] if c]
    return WeaklabelError(
        f"{path}: needs columns post_id or image, label and reviewer; found "
        f"{', '.join(repr(k) for k in header if k) or 'no header'}"
        + (f"; rename {', '.join(hints)}" if hints else ""))


def _known_label(label: str, cur: Current, where: str, column: str = "label") -> str:
    """``label`` as a label id of the workspace (a display name is its id)."""
    from weaklabel.errors import closest

    if label not in cur.labels:  # an id first: it is never another label's name
        label = cur.names.get(label, label)
    if not label or not cur.labels or label in cur.labels:
        return label
    folded = {lab.casefold(): lab for lab in cur.labels}
    hint = folded.get(label.casefold()) or closest(label, sorted(cur.labels))
    raise WeaklabelError(f"{where}: {column} {label!r} is not a label of this workspace"
                         + (f"; did you mean {hint!r}? Use" if hint else "; use")
                         + f" one of {', '.join(sorted(cur.labels))}"
                         + (" (display names with --labelmap)" if not cur.names else "")
                         + " or leave it empty for none of the labels")


def read_decisions_csv(path: Path, cur: Current) -> list[Decision]:
    """Decisions from a CSV; errors name the row and the fix.

    Raises:
        WeaklabelError: a missing column, an unknown label, post or image, a row with
            neither post_id nor image, one reviewer giving one item two answers.
    """
    rows, header = _open_decisions(path)
    if "label" not in header or ("post_id" not in header and "image" not in header):
        raise _missing_columns(path, header)
    if {"confidence", "why"} <= set(header) and "reviewer" not in header:
        # `review queue -o`'s own file: every row would become an accept of its label
        raise WeaklabelError(
            f"{path}: this is a review queue (columns confidence, why), not decisions: "
            "importing it would accept every row's label; keep the rows you reviewed, "
            "with your label and a reviewer column, and import that")
    out = []
    said: dict[tuple[str, str, str], tuple[int, str, str | None]] = {}
    for n, r in enumerate(rows, start=2):
        where = f"{path}, line {n}"
        post_id = (r.get("post_id") or "").strip()
        image = (r.get("image") or "").strip()
        if image and image not in cur.image_posts:  # "d\\p01.jpg", "./d/p01.jpg"
            from weaklabel.posts import normalize_image_path

            image = normalize_image_path(image, row=n - 1, where=path)
        label = (r.get("label") or "").strip()
        reviewer = (r.get("reviewer") or "").strip() or "import"
        action = (r.get("action") or "").strip().lower() or None  # "Accept" from a sheet
        shown = r.get("shown")
        if action not in (None, "accept", "reject", "relabel"):
            raise WeaklabelError(f"{where}: action {action!r} must be accept, reject or "
                                 "relabel (or empty)")
        label = _known_label(label, cur, where)
        if not post_id and not image:
            raise WeaklabelError(f"{where}: give a post_id or an image")
        if post_id and cur.post_label and post_id not in cur.post_label:
            raise WeaklabelError(
                f"{where}: post_id {post_id!r} is not a post of this workspace; fix the id "
                "(ids are text: '007' is not '7') or drop the row")
        posts = [post_id] if post_id else cur.image_posts.get(image, [])
        if not posts:
            raise WeaklabelError(f"{where}: image {image!r} belongs to no post of this "
                                 "workspace; give its post_id or fix the path")
        if post_id and image and cur.image_posts \
                and post_id not in cur.image_posts.get(image, []):
            raise WeaklabelError(f"{where}: image {image!r} is not an image of post "
                                 f"{post_id!r}; fix one of the two or give only one")
        given_id = (r.get("decision_id") or "").strip()
        for p in posts:
            # a journal (decision ids given) may change its mind; a hand-made file not
            first = said.setdefault((reviewer, p, image), (n, label, action))
            if not given_id and first[1:] != (label, action):
                raise WeaklabelError(
                    f"{where}: {reviewer} decided {p!r}{f' ({image})' if image else ''} "
                    f"differently on line {first[0]} ({first[1] or 'none'!s} against "
                    f"{label or 'none'}); keep one of the two lines")
            # a row as imported before adds nothing, from any file: a re-saved or grown
            # file never undoes what was decided since (a changed mind: give decision_id)
            did = given_id or _auto_id(reviewer, p, image, label, action or "")
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
    from weaklabel.posts import detect_encoding

    out: list[Decision] = []
    skipped = 0
    images = set(cur.image_posts)
    enc = detect_encoding(path)
    try:
        with open(path, encoding=enc) as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    got = _groundtruth_line(line, f"{path}, line {n}", images, cur)
                    skipped += got is None
                    out += got or []
    except UnicodeDecodeError as exc:
        raise WeaklabelError(f"{path}: cannot decode as {enc} ({exc.reason}); save it as "
                             "UTF-8") from exc
    return out, skipped


def _groundtruth_line(line: str, where: str, images: set[str], cur: Current
                      ) -> list[Decision] | None:
    """The decisions of one manifest line; ``None`` for a machine label."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise WeaklabelError(f"{where}: not JSON ({exc}); a manifest holds one JSON object "
                             "per line") from exc
    if not isinstance(obj, dict):
        raise WeaklabelError(f"{where}: expected a JSON object, got {type(obj).__name__}; a "
                             "manifest holds one JSON object per line")
    ref = obj.get("source-ref")
    if not isinstance(ref, str) or not ref.strip():
        raise WeaklabelError(f"{where}: no source-ref (the image's path or s3:// URL); "
                             "not a Ground Truth image-classification line")
    metas = [k for k, v in obj.items() if k.endswith("-metadata") and isinstance(v, Mapping)]
    # a chained job holds several: the one that names a class
    meta_key = next((k for k in metas if "class-name" in obj[k]), metas[0] if metas else None)
    if meta_key is None:
        raise WeaklabelError(f"{where}: no <job>-metadata object; not a Ground Truth "
                             "image-classification line")
    meta = obj[meta_key]
    if str(meta.get("human-annotated", "no")).lower() != "yes":
        return None
    name = meta.get("class-name")
    if name is None:
        # a class index under the job's name, its text in the metadata's class-map
        job, cmap = obj.get(meta_key[:-len("-metadata")]), meta.get("class-map")
        if not isinstance(cmap, Mapping) or isinstance(job, bool) \
                or not isinstance(job, int):
            raise WeaklabelError(f"{where}: {meta_key} has no class-name (nor a class-map "
                                 "and a class index); not an image-classification line")
        if str(job) not in cmap:
            raise WeaklabelError(
                f"{where}: class index {job} is not in {meta_key}.class-map "
                f"({', '.join(sorted(map(str, cmap)))}); fix the index or the class-map")
        name = cmap[str(job)]
    image = _match_image(ref, images)
    if image is None:
        raise WeaklabelError(f"{where}: source-ref {ref!r} matches no image of this "
                             "workspace; its path must end with the image's path under the "
                             "image root (e.g. s3://bucket/root/20190301/a.jpg)")
    label = _known_label(str(name), cur, where, "class-name")
    reviewer = "groundtruth:" + str(meta.get("job-name", meta_key[:-9])).split("/")[-1]
    return [_decide(did=_auto_id(reviewer, p, image, label, ref), reviewer=reviewer,
                    post_id=p, image=image, label=label, action=None, shown=None,
                    origin="groundtruth", cur=cur)
            for p in cur.image_posts[image]]


def _match_image(ref: str, images: set[str]) -> str | None:
    """The workspace image a source-ref names: the same path or the longest path suffix
    (one set look-up per ``/`` of the ref, not a scan of every image)."""
    ref = ref.split("?", 1)[0]
    if ref in images:
        return ref
    parts = ref.split("/")
    for i in range(1, len(parts)):
        tail = "/".join(parts[i:])
        if tail in images:
            return tail
    return None


def import_decisions(ws: Workspace, path: Path, *, labelmap: Path | str | None = None
               ) -> dict[str, Any]:
    """Import a decisions CSV or a Ground Truth manifest (``.manifest``/``.jsonl``/JSON
    lines) into the workspace's store, then refresh the reviewed artifacts.
    """
    from weaklabel.posts import check_table_file
    from weaklabel.review.reviewed import write_reviewed

    check_table_file(Path(path), "decisions file")  # a FIFO would hang, /dev/zero never end
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
