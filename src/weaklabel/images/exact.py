"""Exact duplicates (``dedup --exact-only``), lean from the walk to the CSV.

What jdupes does, with the inventory kept as a cache: one walk, an ``lstat`` per entry
(:func:`~weaklabel.images.walk.walk_keys`), files grouped by size in
memory, a partial digest (CRC-32 of the first and last 4 KiB) only where sizes collide
(hard links to one inode count once), a full SHA-1 only where partial digests collide;
every member of a reported group has a full SHA-1. The inventory is read once and
written once, in one transaction of plain tuples (:func:`scan_exact`); an interrupted
run writes nothing, and its re-run does the work again. Rows a later stage relies on
keep their meaning: a new or changed file gets a row without a decode status (purge or
a full dedup judges it then), an unchanged file keeps its status and hashes, and one
found unreadable is looked at again on every run (a ``chmod`` changes neither its size
nor its mtime).

Also the exact half of grouping and the keep policy (compute, group, decide), used by
:mod:`weaklabel.images.dedup` for every run: :func:`one_per_inode`,
:func:`find_exact_duplicates`, :func:`keep_rank`, :func:`choose_keepers`,
:func:`merge_groups`.

Standard library only, and none of pathlib, dataclasses or typing at import time: the
command's fixed cost before the first file is a few tens of milliseconds
(:mod:`weaklabel.cli_fast`), against jdupes' whole run of ~0.06 CPU s on 8,000 files.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections import Counter
from operator import itemgetter

from weaklabel.containment import display_path
from weaklabel.images.inventory_db import (
    bind,
    connect,
    damaged,
    insert_rows,
    inventory_path,
    set_aside,
    set_meta,
)
from weaklabel.images.walk import walk_keys
from weaklabel.wsbase import atomic_target, meta_text, workspace_lock, write_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    import pandas as pd

    FileRow = Mapping[str, Any]
    """One inventory row (:meth:`Inventory.rows`): ``path``, ``size``, ``sha1``,
    ``status``…"""
    DuplicateRow = tuple[int, str, str, str, int, str]
    """``(group, kind, kept, duplicate, distance, reason)``: one row of
    ``duplicates.csv``."""

DUPLICATES_COLUMNS = ("group", "kind", "kept", "duplicate", "distance", "reason")
"""The columns of ``duplicates.csv`` (:data:`weaklabel.images.contracts.DUPLICATES`;
a test holds the two equal)."""
EXCLUDED_COLUMNS = ("path", "reason")
"""The columns of ``dedup_excluded.csv`` (:data:`~weaklabel.images.contracts.
DEDUP_EXCLUDED`)."""
NOT_GROUPED = frozenset(("empty", "not_an_image", "truncated", "decode_error",
                         "decompression_bomb", "unreadable"))
"""Statuses whose files are never grouped: :data:`~weaklabel.images.contracts.
CORRUPT_STATUSES` and ``unreadable`` (a test holds them equal)."""
STORAGE_STATE = "storage/objects.sqlite"
"""A workspace that mirrors a bucket (:data:`weaklabel.contracts.STORAGE_STATE`): its
files are read in place from the store, which only the full inventory scan does."""
OUTPUTS = ("duplicates.csv", "dedup_excluded.csv")




# --- grouping and the keep policy ------------------------------------------------------


def as_rows(files: pd.DataFrame | Iterable[FileRow]) -> list[FileRow]:
    """Inventory rows as a list of mappings, from a DataFrame (:meth:`Inventory.frame`)
    or any iterable of rows (:meth:`Inventory.rows`)."""
    if hasattr(files, "to_dict"):
        return list(files.to_dict("records"))
    return list(files)


def find_exact_duplicates(files: pd.DataFrame | Iterable[FileRow]) -> list[list[str]]:
    """Groups of byte-identical files.

    Args:
        files: one row per inode (hard links already merged): ``path``, ``size``,
            ``sha1`` (None where the funnel proved it unnecessary); a DataFrame or rows.

    Returns:
        Groups (≥ 2 paths, each sorted), sorted by first path. Zero-byte files never
        group.
    """
    groups: dict[tuple[int, str], list[str]] = {}
    for r in as_rows(files):
        s, h = r["size"], r["sha1"]
        if isinstance(h, str) and s is not None and s > 0:
            groups.setdefault((int(s), h), []).append(r["path"])
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


# --- keep policy -------------------------------------------------------------------------


def is_date(part: str) -> bool:
    """Whether a path component is a date ``YYYYMMDD`` from 1900 to 2099: what the
    pattern ``(?:19|20)\\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\\d|3[01])`` matches in full
    (a test holds the two equal; ``\\d`` is any decimal digit, as ``isdecimal``
    says), without importing ``re``."""
    if len(part) != 8 or part[:2] not in ("19", "20") or not part[2:4].isdecimal():
        return False
    m0, m1, d0, d1 = part[4], part[5], part[6], part[7]
    return ((m0 == "0" and "1" <= m1 <= "9") or (m0 == "1" and m1 in "012")) and (
        (d0 == "0" and "1" <= d1 <= "9") or (d0 in "12" and d1.isdecimal())
        or (d0 == "3" and d1 in "01"))


def date_folder(path: str) -> int | None:
    """The first path component that is a date ``YYYYMMDD``, as an int."""
    for part in path.split("/")[:-1]:
        if is_date(part):
            return int(part)
    return None


def keep_rank(engagement: dict[str, float] | None = None) -> Callable[[str], tuple[Any, ...]]:
    """Sort key of the keep policy: the smallest key is the file to keep."""
    eng = engagement or {}

    def rank(path: str) -> tuple[Any, ...]:
        e = eng.get(display_path(path))  # posts name non-UTF-8 bytes as \xNN
        d = date_folder(path)
        return ((0, -e) if e is not None else (1, 0.0),
                (0, d) if d is not None else (1, 0),
                len(path), path)

    return rank


def choose_keepers(
    groups: Sequence[Sequence[str]],
    rank: Callable[[str], Any],
    *,
    distance: Callable[[str, str], int] | None = None,
    threshold: int | None = None,
    linked: Callable[[str, str], bool] | None = None,
) -> list[tuple[str, list[tuple[str, int]]]]:
    """Pick the file to keep in each group; split near groups into stars.

    Args:
        groups: lists of paths (exact groups, or near components).
        rank: keep-policy key (:func:`keep_rank`); the smallest is kept.
        distance, threshold: for near components: every duplicate must be within
            ``threshold`` of its kept file (chaining guard); members too far start new
            groups, kept by the same policy. Omit both for exact groups.
        linked: for near components verified beyond ``threshold``: whether a member
            counts as a copy of the kept file (overrides ``distance <= threshold``).

    Returns:
        ``(kept, [(duplicate, distance), ...])`` per group with ≥ 1 duplicate, sorted by
        kept path; duplicates sorted by path.
    """
    out = []
    for g in groups:
        rest = sorted(set(g), key=rank)
        while len(rest) > 1:
            kept, others = rest[0], rest[1:]
            if distance is None:
                dups = [(p, 0) for p in others]
                rest = []
            else:
                dd = [(p, d, linked(kept, p) if linked is not None
                       else threshold is not None and d <= threshold)
                      for p, d in ((p, distance(kept, p)) for p in others)]
                dups = [(p, d) for p, d, ok in dd if ok]
                rest = [p for p, _, ok in dd if not ok]
            if dups:
                out.append((kept, sorted(dups)))
    return sorted(out, key=lambda t: t[0])


# --- merging exact and near groups ---------------------------------------------------------

def merge_groups(
    exact: Sequence[tuple[str, Sequence[tuple[str, int]]]],
    near: Sequence[tuple[str, Sequence[tuple[str, int]]]],
    aliases: dict[str, list[str]],
    *,
    method: str = "phash",
    verified: Mapping[str, float | tuple[float, bool]] | None = None,
) -> list[DuplicateRow]:
    """One group per finally kept file, each pair named for what it is.

    An exact group whose kept copy is a near duplicate of another file follows it into
    that file's group; its members stay ``exact`` (byte-identical to a member, which
    the reason names), so a user can drop every ``exact`` row without looking and
    review only the ``near`` ones.

    Args:
        exact: ``(kept, [(duplicate, 0), ...])`` per exact group (:func:`choose_keepers`).
        near: ``(kept, [(duplicate, distance), ...])`` per near group, over files that are
            no exact group's duplicate.
        aliases: path → its other hard-linked paths (one inode); every alias of a listed
            file is listed as ``exact`` too.
        method: the perceptual hash's name, for the reasons.
        verified: near duplicate → its thumbnail agreement, or ``(agreement, aligned)``
            (aligned: only once cropped, :func:`aligned_agreement`), for pairs beyond the
            hash threshold that the thumbnails confirmed (named in the reason).

    Returns:
        Rows sorted by group then duplicate; groups numbered from 1 in kept-path order.

    Example:
        >>> rows = merge_groups([("a", [("a2", 0)])], [("k", [("a", 3)])], {})
        >>> [(kind, kept, dup) for _, kind, kept, dup, _, _ in rows]
        [('near', 'k', 'a'), ('exact', 'k', 'a2')]
    """
    final: dict[str, list[tuple[str, str, int, str]]] = {}
    exact_of = {k: [d for d, _ in ds] for k, ds in exact}
    for k, ds in exact:
        final.setdefault(k, []).extend((d, "exact", 0, "same bytes as the kept file")
                                       for d, _ in ds)
    for k, ds in near:
        rows = final.setdefault(k, [])
        for d, dist in ds:
            why = f"{method} distance {dist}"
            if verified and d in verified:
                v = verified[d]
                score, crop = v if isinstance(v, tuple) else (v, False)
                why += (f", thumbnails agree once aligned for a crop ({score:.2f})" if crop
                        else f", thumbnails agree ({score:.2f})")
            rows.append((d, "near", int(dist), why))
            for e in exact_of.pop(d, []):
                rows.append((e, "exact", 0, f"same bytes as {display_path(d)} "
                             "(a near copy of the kept file)"))
            final.pop(d, None)
    for rows in final.values():
        for d, *_ in list(rows):
            for a in aliases.get(d, []):
                rows.append((a, "exact", 0, f"hard link of {display_path(d)}"))
    out: list[DuplicateRow] = []
    for gid, k in enumerate(sorted(final), 1):
        for d, kind, dist, why in sorted(final[k], key=lambda r: r[0]):
            out.append((gid, kind, k, d, dist, why))
    return out




def one_per_inode(files: Sequence[FileRow], rank: Callable[[str], Any]
                  ) -> tuple[list[FileRow], dict[str, list[str]]]:
    """Hard links: one row per inode, represented by its best-ranked path.

    Args:
        files: inventory rows of kind ``file`` (``path``, ``dev``, ``ino``…).
        rank: the keep policy (:func:`keep_rank`).

    Returns:
        The representatives' rows (in the given order) and ``representative → its
        other paths``.
    """
    inode_paths: dict[tuple[int, int], list[str]] = {}
    for r in files:
        inode_paths.setdefault((int(r["dev"]), int(r["ino"])), []).append(r["path"])
    aliases: dict[str, list[str]] = {}
    reps = set()
    for paths in inode_paths.values():
        paths.sort(key=rank)
        reps.add(paths[0])
        if len(paths) > 1:
            aliases[paths[0]] = paths[1:]
    return [r for r in files if r["path"] in reps], aliases




def split_exact(files: pd.DataFrame | Iterable[FileRow], rank: Callable[[str], Any]
                ) -> tuple[list[tuple[str, list[tuple[str, int]]]], dict[str, list[str]],
                           list[FileRow], dict[str, str]]:
    """The exact half of :func:`~weaklabel.images.dedup.find_groups`.

    Returns:
        ``(exact, aliases, candidates, excluded)``: the exact groups with their kept
        files (:func:`choose_keepers`), path → its other hard links, the rows one per
        inode that may be grouped, and path → why it was left out (a bad status).
    """
    items, aliases = one_per_inode(as_rows(files), rank)
    excluded: dict[str, str] = {}
    cand = []
    for r in items:
        if r["status"] in NOT_GROUPED:
            excluded[r["path"]] = f"{r['status']} (see purge)"
        else:
            cand.append(r)
    return choose_keepers(find_exact_duplicates(cand), rank), aliases, cand, excluded


def csv_field(value: str | int) -> str:
    """One CSV cell as ``csv.writer(lineterminator="\\n")`` writes a string or an int
    (a test holds the two equal): quoted, with its quotes doubled, when it holds a
    comma, a quote, a line feed or a carriage return (``csv`` quotes a bare ``\r``
    from Python 3.11.9 on; earlier ones wrote it bare, a row readers split). No ``csv``
    module (it imports ``re``)."""
    text = value if type(value) is str else str(value)
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def write_groups(ws_root: str, rows: Sequence[DuplicateRow], excluded: Mapping[str, str]
                 ) -> None:
    """``duplicates.csv`` and ``dedup_excluded.csv``, each written atomically (UTF-8,
    ``\\n`` line ends, quoted as needed: :func:`csv_field`; paths through
    :func:`display_path`)."""
    for name, header, body in (
            (OUTPUTS[0], DUPLICATES_COLUMNS,
             [(g, kd, display_path(k), display_path(d), dist, why)
              for g, kd, k, d, dist, why in rows]),
            (OUTPUTS[1], EXCLUDED_COLUMNS,
             [(display_path(p), excluded[p]) for p in sorted(excluded)])):
        with atomic_target(os.path.join(ws_root, name)) as tmp, \
                open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write("".join(",".join(map(csv_field, r)) + "\n" for r in (header, *body)))


def exact_params(posts: str | None, apply: bool, comment_weight: float | None
                 ) -> dict[str, Any]:
    """The parameters an exact-only run records in its metas: only what can change its
    output (the hash, the threshold and the decode limits cannot); the engagement's
    comment weight only when some post's engagement ranked the copies."""
    params: dict[str, Any] = {"posts": posts, "apply": apply, "exact_only": True}
    if comment_weight is not None:
        params["comment_weight"] = comment_weight
    return params


def summary_text(groups: int, exact: int, near: int, excluded: int,
                 quarantined: int | None = None) -> str:
    """dedup's one line for a person (:class:`~weaklabel.images.dedup.DedupSummary`)."""
    out = (f"dedup: {groups} groups, {exact} exact and {near} near duplicates, "
           f"{excluded} excluded")
    if quarantined is not None:
        out += f", {quarantined} quarantined"
    return out


# --- the lean scan -----------------------------------------------------------------------


def _collisions(values: Sequence[Any], inodes: Sequence[tuple[int, int]] | None
                ) -> set[Any]:
    """The values held by two or more inodes: ``values`` one per path, ``inodes`` each
    path's ``(dev, ino)``, or None when no two paths share one (then a path is an
    inode, and values are counted as they come, in C)."""
    counts = Counter(values) if inodes is None else Counter(
        v for v, _ in set(zip(values, inodes, strict=True)))
    return {v for v, n in counts.items() if n > 1}


def scan_exact(db: sqlite3.Connection, root: str, *, skip: Iterable[str] = (),
               workers: int = 1, quiet: bool = True
               ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Bring the inventory's sizes and digests up to date with the tree under ``root``
    and return the rows exact grouping needs.

    One walk; the inventory read once (``path → row``); sizes counted in memory; a
    partial digest for each file of a size held by two or more inodes that has none
    yet; a full SHA-1 for each of a (size, partial digest) held by two or more inodes
    that has none yet; then one transaction writes the new and changed rows
    (plain tuples, a hundred to an ``INSERT``: :func:`~weaklabel.images.inventory_db.
    insert_rows`; a new file's partial digest in its row), the
    digests new to rows already there, the full digests and the unreadable files by
    path, the problems (symlinks, unreadable folders…), and removes rows of paths
    gone. A file that cannot be read is ``unreadable`` with the reason. The rows a
    later stage needs keep their meaning: a new or changed file has no decode status
    or hash (purge or a full dedup gives it one), an unchanged one keeps its own.

    Files stay in the walk's order throughout (a folder's files in a row), so the
    digests need no sort and a new inventory's rows go in in key order; per file, the
    work in Python is a tuple from the walk and a digest string, the counting and
    pairing is done in C (``Counter``, ``map``, ``zip``).

    Returns:
        Counts (``seen`` paths, ``read`` files decoded: always 0, ``removed`` stale rows,
        ``partial`` and ``full`` digests read) and the rows of every file in an exact
        group, sharing an inode with another path, or of a bad status: ``path``,
        ``size``, ``mtime_ns``, ``ino``, ``dev``, ``sha1``, ``status``.
    """
    from weaklabel.images.digests import read_digests
    from weaklabel.images.inventory_db import get_meta

    known = {r[0]: r[1:] for r in db.execute(
        "SELECT path, kind, size, mtime_ns, ino, dev, status, reason, partial, sha1 "
        "FROM files")}
    files: list[tuple[bytes, int, int, int, int]] = []
    problems: list[tuple[bytes, str, str]] = []
    fresh: list[tuple[bytes]] = []
    moved: list[tuple[int, int, bytes]] = []
    partial: dict[bytes, str] = {}
    sha: dict[bytes, str] = {}
    status: dict[bytes, tuple[str, str | None]] = {}
    retry: list[tuple[bytes, int, int, int, int]] = []
    n_problems = 0
    cold = not known  # a new inventory: every file and problem is new
    new = files
    if cold:
        for fs, ps in walk_keys(root, skip=skip):
            files += fs
            problems += ps
        n_problems = len(problems)
    else:
        new = []
        pop = known.pop
        for fs, ps in walk_keys(root, skip=skip):
            files += fs
            for t in fs:
                old = pop(t[0], None)
                # An unreadable file is looked at again, however unchanged: a chmod
                # changes neither its size nor its mtime (and such files are few).
                if (old is not None and old[0] == "file" and old[1] == t[1]
                        and old[2] == t[2] and old[5] != "unreadable"):
                    if old[3] != t[3] or old[4] != t[4]:  # same content, new inode
                        moved.append((t[3], t[4], t[0]))
                    if old[7] is not None:
                        partial[t[0]] = old[7]
                    if old[8] is not None:
                        sha[t[0]] = old[8]
                    if old[5] is not None:
                        status[t[0]] = (old[5], old[6])
                else:
                    new.append(t)
                    if old is not None:  # a changed file's old hashes go
                        fresh.append((t[0],))
                        if old[5] == "unreadable":
                            retry.append(t)
            n_problems += len(ps)
            for p in ps:
                old = pop(p[0], None)
                if old is None or old[0] != "problem" or (old[5], old[6]) != p[1:]:
                    problems.append(p)
    stale = [(k,) for k in known]  # every path the walk did not find again
    changed = bool(new or problems or moved or stale)
    # Nothing came, went or changed since a complete funnel: the digests are all there.
    funnel = changed or get_meta(db, "funnel") != "done"
    key_of, size_of = itemgetter(0), itemgetter(1)
    # Hard links are rare: when no two paths share an inode number, a path is an inode.
    inodes: list[tuple[int, int]] | None = None
    if len(set(map(itemgetter(3), files))) < len(files):
        inodes = list(zip(map(itemgetter(4), files), map(itemgetter(3), files),
                          strict=True))
        if len(set(inodes)) == len(files):
            inodes = None
    linked = inodes is not None
    same_size = _collisions(list(map(size_of, files)), inodes)
    same_size.discard(0)  # zero-byte files are never duplicates
    cand = [t for t in files if t[1] in same_size]
    errors: dict[bytes, str] = {}
    need = (cand if cold else [t for t in cand if t[0] not in partial]) if funnel else []
    got = read_digests(root, need, "partial", workers=workers, quiet=quiet, errors=errors,
                       ordered=True)
    if cold:
        parts: list[str | None] = got
    else:
        partial.update((k, d) for k, d in zip(map(key_of, need), got, strict=True) if d is not None)
        parts = [partial.get(t[0]) for t in cand]
    pairs = list(zip(map(size_of, cand), parts, strict=True))
    same_start = {p for p in _collisions(
        pairs, [(t[4], t[3]) for t in cand] if linked else None) if p[1] is not None}
    same = [t for t, p in zip(cand, pairs, strict=True) if p in same_start]
    need_full = [t for t in same if t[0] not in sha] if funnel else []
    got_sha = read_digests(root, need_full, "full", workers=workers, quiet=quiet,
                           errors=errors, ordered=True)
    sha.update((t[0], d) for t, d in zip(need_full, got_sha, strict=True)
               if d is not None)
    # A file found unreadable before that no digest read now: still unreadable?
    if retry:
        _probe(root, [t[0] for t in retry if t[0] not in errors and t[0] not in sha
                      and t[0] not in partial], errors)
    for k, why in errors.items():
        status[k] = ("unreadable", why)

    db.execute("BEGIN")
    try:
        if problems:
            db.executemany("INSERT OR REPLACE INTO files (path, kind, status, reason) "
                           "VALUES (?, 'problem', ?, ?)", problems)
            db.executemany("DELETE FROM hashes WHERE path=?", [p[:1] for p in problems])
        # Each row binds only the columns it fills: a bound parameter costs about as
        # much as a column's B-tree work (9 instead of 5 made the insert 1.8x).
        if cold:
            plain = [t for t in files if t[1] not in same_size]
            started = list(map(tuple.__add__, cand, zip(parts)))
        else:
            plain, started = [], []
            for t in new:
                d = partial.get(t[0])
                if d is None:
                    plain.append(t)
                else:
                    started.append((*t, d))
        insert_rows(db, "INSERT OR REPLACE INTO files (path, kind, size, mtime_ns, ino, "
                    "dev)", "(?, 'file', ?, ?, ?, ?)", plain)
        insert_rows(db, "INSERT OR REPLACE INTO files (path, kind, size, mtime_ns, ino, "
                    "dev, partial)", "(?, 'file', ?, ?, ?, ?, ?)", started)
        db.executemany("DELETE FROM hashes WHERE path=?", fresh)
        db.executemany("UPDATE files SET ino=?, dev=? WHERE path=?", moved)
        if not cold:  # partial digests new to rows already there
            new_keys = {t[0] for t in new}
            db.executemany("UPDATE files SET partial=? WHERE path=?",
                           [(d, t[0]) for t, d in zip(need, got, strict=True)
                            if d is not None and t[0] not in new_keys])
        # Few rows (copies and their look-alikes, unreadable files): by path.
        db.executemany("UPDATE files SET sha1=? WHERE path=?",
                       [(d, t[0]) for t, d in zip(need_full, got_sha, strict=True)
                        if d is not None])
        db.executemany("UPDATE files SET status='unreadable', reason=? WHERE path=?",
                       [(why, k) for k, why in errors.items()])
        db.executemany("DELETE FROM files WHERE path=?", stale)
        db.executemany("DELETE FROM hashes WHERE path=?", stale)
        set_meta(db, "funnel", "done")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    # The few rows grouping needs: byte copies, hard links, files of a bad status.
    wanted = {t[0] for t in same if t[0] in sha}
    if linked:
        by_inode: dict[tuple[int, int], list[bytes]] = {}
        for t in files:
            by_inode.setdefault((t[4], t[3]), []).append(t[0])
        wanted.update(k for ks in by_inode.values() if len(ks) > 1 for k in ks)
    wanted.update(k for k, (s, _) in status.items() if s != "ok")
    rows = [{"path": os.fsdecode(t[0]), "size": t[1], "mtime_ns": t[2], "ino": t[3],
             "dev": t[4], "sha1": sha.get(t[0]), "status": status.get(t[0], (None,))[0]}
            for t in files if t[0] in wanted]
    counts = {"seen": len(files) + n_problems, "read": 0, "removed": len(stale),
              "partial": len(need), "full": len(need_full)}
    return counts, rows


def _probe(root: str, keys: Iterable[bytes], errors: dict[bytes, str]) -> None:
    """Open each file (no read) and note in ``errors`` why one cannot be opened."""
    from weaklabel.images.walk import open_fd

    base = os.fsencode(root).rstrip(b"/") + b"/"
    for key in keys:
        try:
            os.close(open_fd(os.fsdecode(base + key), os.fsdecode(key)))
        except OSError as exc:
            errors[key] = f"cannot read: {exc.strerror or exc}"


def _scan_inventory(path: str, root_real: str, root: str, ws_root: str, workers: int,
                    progress: bool) -> tuple[dict[str, int], list[dict[str, Any]]]:
    # The scan makes a few tuples a file and no reference cycle: the cyclic garbage
    # collector would only walk them, again and again as they age (5-8 % of a cold
    # run's CPU on 100,000 files; more in a process holding many objects).
    collecting = gc.isenabled()
    gc.disable()
    try:
        db = connect(path)  # inside: a damaged inventory raises here, GC still restored
        try:
            bind(db, root_real, None, None)
            return scan_exact(db, root, skip=(ws_root,), workers=workers,
                              quiet=not progress)
        finally:
            db.close()
    finally:
        if collecting:
            gc.enable()


def dedup_exact(ws_root: str, root: str, *, rank: Callable[[str], Any], workers: int = 1,
              progress: bool = True, params: Mapping[str, Any]
              ) -> tuple[dict[str, Any], dict[str, int], float]:
    """dedup's exact-only stage: under the workspace lock, scan (:func:`scan_exact`),
    group, write ``duplicates.csv`` and ``dedup_excluded.csv`` and their metas as
    :meth:`~weaklabel.workspace.Workspace.stage` writes them (never up to date: the
    tree has no digest before the walk).

    Returns:
        The summary as its meta holds it (:class:`~weaklabel.images.dedup.DedupSummary`'s
        fields), the rows per output and the elapsed seconds.
    """
    t0 = time.perf_counter()
    root_real = os.path.realpath(root)
    with workspace_lock(ws_root, "dedup"):
        for name in OUTPUTS:  # a run stopped half-way is never taken for done
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(ws_root, f"{name}.meta.json"))
        path = inventory_path(ws_root)
        try:
            counts, rows = _scan_inventory(path, root_real, root, ws_root, workers,
                                           progress)
        except Exception as exc:
            if not damaged(exc):
                raise
            # A torn cache (found on opening it or on reading a page) is never
            # trusted: set aside, and every size and digest read again.
            set_aside(path)
            counts, rows = _scan_inventory(path, root_real, root, ws_root, workers,
                                           progress)
        exact, aliases, _, excluded = split_exact(rows, rank)
        out_rows = merge_groups(exact, [], aliases)
        write_groups(ws_root, out_rows, excluded)
        n_exact = sum(1 for r in out_rows if r[1] == "exact")
        summary = {"groups": len({r[0] for r in out_rows}), "exact": n_exact,
                   "near": len(out_rows) - n_exact, "excluded": len(excluded),
                   "scan": counts}
        n_rows = {OUTPUTS[0]: len(out_rows), OUTPUTS[1]: len(excluded)}
        elapsed = time.perf_counter() - t0
        for name in OUTPUTS:
            write_text(os.path.join(ws_root, f"{name}.meta.json"), meta_text(
                stage="dedup", params=params, inputs={"root": root_real},
                rows=n_rows[name], elapsed=elapsed, extra={"summary": summary}))
    return summary, n_rows, time.perf_counter() - t0
