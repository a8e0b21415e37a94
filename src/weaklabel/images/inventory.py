"""The image inventory: walk a tree once, remember what every file is.

One SQLite database per workspace (``inventory.sqlite``) holds a row per path found
under the image root: size, mtime, inode, content digests, dimensions, format and the
decode status. It is a cache: a file whose size and mtime are unchanged is not read
again, so a re-run over an unchanged million-file tree only walks and stats it.

The work it caches lives beside it: :mod:`~weaklabel.images.walk` (the tree walk, paths),
:mod:`~weaklabel.images.checks` (what a file is, whether it decodes),
:mod:`~weaklabel.images.hashes` (perceptual hash methods),
:mod:`~weaklabel.images.digests` (SHA-1 digests) and :mod:`~weaklabel.images.pool`
(where per-file work runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.images import inventory_db
from weaklabel.images.digests import read_digests
from weaklabel.images.inventory_db import INVENTORY, SCHEMA_VERSION
from weaklabel.images.walk import Entry, display_path, walk

if TYPE_CHECKING:
    import sqlite3

    from weaklabel.images.pool import WorkerPool

__all__ = ["INVENTORY", "SCHEMA_VERSION", "Inventory", "open_inventory",
           # where other modules have always found them
           "display_path"]  # check_formats too, through __getattr__


def __getattr__(name: str) -> Any:
    # ``check_formats`` has always been importable from here; it lives in checks, which
    # imports what deciding a file needs, so it loads only when asked for.
    if name == "check_formats":
        from weaklabel.images.checks import check_formats

        return check_formats
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the SQLite inventory ----------------------------------------------------------------


class Inventory:
    """The SQLite inventory of one workspace (WAL mode, batched transactions)."""

    def __init__(self, path: Path, *, root: Path, max_pixels: int,
                 formats: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.formats = tuple(formats)
        self._changed = False
        self._source: Any = None
        db: sqlite3.Connection | None = None
        try:
            db = inventory_db.connect(os.fspath(self.path))
            if not inventory_db.is_whole(db):
                db.close()
                db = None
        except Exception as exc:
            if db is not None:
                db.close()
            if not inventory_db.damaged(exc):
                raise
            db = None
        if db is None:
            # A torn cache is never trusted: set aside, and every file judged again.
            inventory_db.set_aside(os.fspath(self.path))
            db = inventory_db.connect(os.fspath(self.path))
        self.db = db
        self._bind(os.path.realpath(root), max_pixels)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> str | None:
        return inventory_db.get_meta(self.db, key)

    def _set_meta(self, key: str, value: str) -> None:
        inventory_db.set_meta(self.db, key, value)

    def _bind(self, root_real: str, max_pixels: int) -> None:
        """Reset what no longer holds: another root, schema or decode limit."""
        inventory_db.bind(self.db, root_real, max_pixels, self.formats)

    # -- reads ------------------------------------------------------------------------

    def rows(self, hash_key: str | None = None, *, duplicates_only: bool = False
             ) -> Iterator[dict[str, Any]]:
        """Every row (sorted by path), joined with one hash flavour when given.

        ``duplicates_only``: only rows that are in an exact duplicate group (another
        path has the same size and SHA-1, or shares the inode) or that dedup excludes
        (a known bad status): the few rows ``dedup --exact-only`` needs.
        """
        where = ""
        if duplicates_only:
            where = ("WHERE f.kind = 'file' AND ((f.status IS NOT NULL AND f.status != 'ok') "
                     "OR (f.size, f.sha1) IN (SELECT size, sha1 FROM files WHERE sha1 IS NOT "
                     "NULL GROUP BY size, sha1 HAVING COUNT(*) > 1) "
                     "OR (f.dev, f.ino) IN (SELECT dev, ino FROM files "
                     "WHERE kind = 'file' GROUP BY dev, ino HAVING COUNT(*) > 1)) ")
        cur = self.db.execute(
            "SELECT f.path, f.kind, f.size, f.mtime_ns, f.ino, f.dev, f.sha1, f.partial, "
            "f.width, f.height, f.format, f.status, f.reason, h.hash, h.degenerate, h.thumb "
            "FROM files f LEFT JOIN hashes h ON h.path = f.path AND h.method = ? "
            f"{where}ORDER BY f.path",
            (hash_key or "",),
        )
        names = ("path", "kind", "size", "mtime_ns", "ino", "dev", "sha1", "partial", "width",
                 "height", "format", "status", "reason", "hash", "degenerate", "thumb")
        for r in cur:
            d = dict(zip(names, r, strict=False))
            d["path"] = os.fsdecode(d["path"])
            yield d

    def frame(self, hash_key: str | None = None, *, duplicates_only: bool = False) -> Any:
        """The inventory as a pandas DataFrame (paths as ``str``); see :meth:`rows`."""
        import pandas as pd

        names = ["path", "kind", "size", "mtime_ns", "ino", "dev", "sha1", "partial", "width",
                 "height", "format", "status", "reason", "hash", "degenerate", "thumb"]
        cols: dict[str, list[Any]] = {n: [] for n in names}
        for r in self.rows(hash_key, duplicates_only=duplicates_only):
            for n in names:
                cols[n].append(r[n])
        # object dtype: a surrogate-escaped (non-UTF-8) name cannot live in an Arrow string
        return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in cols.items()})

    # -- scanning ---------------------------------------------------------------------

    def scan(
        self,
        root: Path,
        *,
        check: bool,
        hash_spec: tuple[str, int] | None,
        max_pixels: int,
        workers: int,
        quiet: bool = True,
        skip: Iterable[Path] = (),
        batch: int = 4096,
    ) -> dict[str, int]:
        """Bring the inventory up to date with the tree under ``root``.

        Only new or changed files (size or mtime differ) and files lacking what is asked
        for (a decode status when ``check``, a hash of ``hash_spec``) are read, by
        ``workers`` processes. Rows of paths no longer present are deleted. An unchanged
        file costs one ``lstat`` and a dictionary look-up: nothing is written for it.

        Returns:
            Counts: ``seen`` paths, ``read`` files examined, ``removed`` stale rows.
        """
        from weaklabel.contracts import STORAGE_STATE
        from weaklabel.images.hashes import hash_key
        from weaklabel.images.pool import WorkerPool

        key = None if hash_spec is None else hash_key(*hash_spec)
        # A bucket's mirror read in place: entries from the object state, and each worker
        # reads its objects from the store (weaklabel.storage_inplace). A workspace that
        # never synced a bucket has no object state, and a local run imports no storage.
        self._source = None
        if os.path.exists(os.path.join(self.path.parent, STORAGE_STATE)):
            from weaklabel.storage_inplace import source_for

            self._source = source_for(root, self.path.parent)
        known = self._known(key)
        self._changed = False
        counts = {"seen": 0, "read": 0, "removed": 0}
        bar = inventory_db.progress_bar(quiet, desc="inventory", unit="file", dynamic_ncols=True)
        pool = WorkerPool(workers)
        try:
            buf: list[Entry] = []
            entries = walk(root, skip=skip) if self._source is None else self._source.entries()
            for entry in entries:
                buf.append(entry)
                if len(buf) >= batch:
                    self._scan_batch(buf, known, check, hash_spec, key, max_pixels, pool,
                                     counts, bar)
                    buf = []
            if buf:
                self._scan_batch(buf, known, check, hash_spec, key, max_pixels, pool, counts,
                                 bar)
        except BaseException:
            pool.terminate()  # a Ctrl-C or an error: no result is coming, nothing to wait for
            raise
        finally:
            pool.close()  # the normal end (after terminate, nothing is left to close)
            bar.close()
        # ``_scan_batch`` pops every path it sees: what is left is gone from the tree.
        if known:
            self._changed = True
            self.db.execute("BEGIN")
            stale = [(k,) for k in known]
            self.db.executemany("DELETE FROM files WHERE path=?", stale)
            self.db.executemany("DELETE FROM hashes WHERE path=?", stale)
            self.db.execute("COMMIT")
        counts["removed"] = len(known)
        if self._changed:
            self._set_meta("funnel", "stale")
        return counts

    def _known(self, key: str | None) -> dict[bytes, tuple[Any, ...]]:
        """Every row as ``path -> (kind, size, mtime_ns, ino, dev, status, has_hash,
        reason)``."""
        if key is None:
            cur = self.db.execute("SELECT path, kind, size, mtime_ns, ino, dev, status, 0, "
                                  "reason FROM files")
        else:
            cur = self.db.execute(
                "SELECT f.path, f.kind, f.size, f.mtime_ns, f.ino, f.dev, f.status, "
                "h.path IS NOT NULL, f.reason FROM files f LEFT JOIN hashes h "
                "ON h.path = f.path AND h.method = ?", (key,))
        return {r[0]: r[1:] for r in cur}

    def _scan_batch(self, entries: list[Entry], known: dict[bytes, tuple[Any, ...]],
                    check: bool, hash_spec: tuple[str, int] | None, key: str | None,
                    max_pixels: int, pool: WorkerPool, counts: dict[str, int], bar: Any) -> None:
        from weaklabel.images.checks import Task, examine

        tasks: list[Task] = []
        problems, new, moved, fresh = [], [], [], []
        for e in entries:
            counts["seen"] += 1
            k = os.fsencode(e.rel)
            old = known.pop(k, None)
            if e.kind != "file":
                if old is None or old[0] != "problem" or old[5:8:2] != (e.status, e.reason):
                    problems.append((k, e.status, e.reason))
                continue
            # An unreadable file is judged again, however unchanged: a chmod changes
            # neither its size nor its mtime (and such files are few).
            if (old is not None and old[0] == "file" and old[1] == e.size
                    and old[2] == e.mtime_ns and old[5] != "unreadable"):
                status, has_hash = old[5], old[6]
                if (old[3], old[4]) != (e.ino, e.dev):  # same content, new inode (copied back)
                    moved.append((e.ino, e.dev, k))
            else:
                status, has_hash = None, 0
                new.append((k, e.size, e.mtime_ns, e.ino, e.dev))
                if old is not None:  # a changed file's old hashes go; a new one has none
                    fresh.append((k,))
            need_check = check and status is None
            need_hash = key is not None and not has_hash and status in (None, "ok")
            if need_check or need_hash:
                tasks.append(Task(e.abspath, e.rel, e.size, True,
                                  hash_spec if need_hash else None, max_pixels, self.formats))
            else:
                bar.update(1)
        if problems or new or moved:
            self._changed = True
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO files (path, kind, status, reason) "
                "VALUES (?, 'problem', ?, ?)", problems)
            self.db.executemany("DELETE FROM hashes WHERE path=?", [p[:1] for p in problems])
            self.db.executemany(
                "INSERT OR REPLACE INTO files (path, kind, size, mtime_ns, ino, dev)"
                " VALUES (?, 'file', ?, ?, ?, ?)", new)
            self.db.executemany("DELETE FROM hashes WHERE path=?", fresh)
            self.db.executemany("UPDATE files SET ino=?, dev=? WHERE path=?", moved)
            self.db.execute("COMMIT")
        if not tasks:
            return
        results: list[dict[str, Any]] = []
        work = pool.imap(examine, tasks) if self._source is None else \
            self._source.imap(pool, tasks)
        for res in work:
            results.append(res)
            bar.update(1)
            if len(results) >= 1000:
                self._store(results, key)
                results = []
        self._store(results, key)
        counts["read"] += len(tasks)

    def _store(self, results: list[dict[str, Any]], key: str | None) -> None:
        if not results:
            return
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE files SET status=?, reason=?, format=?, width=?, height=? WHERE path=?",
            [(r["status"], r["reason"], r["format"], r["width"], r["height"],
              os.fsencode(r["path"])) for r in results])
        if key is not None:
            self.db.executemany(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                [(os.fsencode(r["path"]), key, r["hash"], r["degenerate"], r.get("thumb"))
                 for r in results
                 if r["hash"] is not None or r["degenerate"] is not None])
        # Read in place: the digests and dedup's hash came from the same body.
        self.db.executemany("UPDATE files SET partial=?, sha1=? WHERE path=?",
                            [(r["partial"], r["sha1"], os.fsencode(r["path"]))
                             for r in results if r.get("partial")])
        self.db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                            [(os.fsencode(r["path"]), *r["extra_hash"])
                             for r in results if r.get("extra_hash")])
        self.db.execute("COMMIT")

    # -- the exact-duplicate funnel ----------------------------------------------------

    def digest_collisions(self, root: Path, *, workers: int, quiet: bool = True) -> dict[str, int]:
        """Fill ``partial`` then ``sha1`` only where needed to find exact duplicates.

        Files of a unique size (counting hard links to one inode once) are never read;
        same-size files get a partial digest (CRC-32 of the first and last 4 KiB); only
        files whose size and partial digest collide get a full, chunked SHA-1. Zero-byte
        files are skipped.
        Reading and SHA-1 release the GIL, so ``workers`` threads share the work with no
        process to start.
        """
        counts = {"partial": 0, "full": 0}
        if self._meta("funnel") == "done":
            return counts  # no file came, went or changed since the last complete funnel
        for stage in ("partial", "full"):
            if stage == "partial":
                # sizes held by more than one inode (DISTINCT rows, not a string key)
                sql = ("SELECT path, size FROM files WHERE kind='file' AND size > 0 "
                       "AND partial IS NULL AND size IN (SELECT size FROM (SELECT DISTINCT "
                       "size, dev, ino FROM files WHERE kind='file' AND size > 0) "
                       "GROUP BY size HAVING COUNT(*) > 1)")
            else:
                sql = ("SELECT path, size FROM files WHERE kind='file' AND size > 0 "
                       "AND sha1 IS NULL AND partial IS NOT NULL AND (size, partial) IN "
                       "(SELECT size, partial FROM (SELECT DISTINCT size, partial, dev, ino "
                       "FROM files WHERE kind='file' AND partial IS NOT NULL) "
                       "GROUP BY size, partial HAVING COUNT(*) > 1)")
            rows = self.db.execute(sql).fetchall()
            counts[stage] = len(rows)
            self._run_digests(os.fspath(root), rows, workers, quiet, stage)
        self._set_meta("funnel", "done")
        return counts

    def _run_digests(self, root: str, rows: list[tuple[bytes, int]], workers: int,
                     quiet: bool, stage: str) -> None:
        if not rows:
            return
        errors: dict[bytes, str] = {}
        rows = sorted(rows)  # a folder's files in a row: one folder check for them all
        digests = read_digests(root, rows, stage, workers=workers, quiet=quiet,
                               errors=errors, ordered=True)
        self.db.execute("BEGIN")
        self.db.executemany("UPDATE files SET status='unreadable', reason=? WHERE path=?",
                            [(why, key) for key, why in errors.items()])
        # One statement per file: only the digest this stage computed.
        column = "partial" if stage == "partial" else "sha1"
        self.db.executemany(f"UPDATE files SET {column}=? WHERE path=?",
                            [(d, r[0]) for d, r in zip(digests, rows, strict=True)
                             if d is not None])
        self.db.execute("COMMIT")


def open_inventory(ws_root: Path, *, root: Path, max_pixels: int,
                   formats: tuple[str, ...] = ()) -> Inventory:
    """Open (create) ``WORKSPACE/inventory.sqlite`` bound to the image ``root``; statuses
    are reset when ``max_pixels`` or the wanted ``formats`` change."""
    Path(ws_root).mkdir(parents=True, exist_ok=True)
    return Inventory(Path(ws_root) / INVENTORY, root=root, max_pixels=max_pixels,
                     formats=formats)

