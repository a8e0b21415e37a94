"""Objects read in place: ``storage.read: in_place`` for an ``s3://`` image root.

With the default ``mirror`` every new object is fetched into the workspace and the
stages read that folder, which a remote Dask worker cannot see. In place, the sync only
lists and inventories (key, size, ETag), and the inventory's per-file work opens each
object through fsspec on whichever worker runs it: the task carries the root's URL and
endpoint (credentials come from the worker's own AWS environment), never a path on the
driver's disk.

What one object costs: a small object (up to :data:`HEAD_BYTES`) is one GET; a larger
one is first a ranged GET of its head, and the rest is fetched (one more ranged GET)
only if the check reads past it, so an object whose header already decides (a
decompression bomb, a format not wanted, not an image) costs its head only. A body read
whole serves the decode check, the SHA-1 (the dedup key, so the exact-duplicate funnel
reads nothing again) and, during purge, the perceptual hash dedup needs: one fetch for
all three. Whole bodies go into a bounded :class:`ObjectCache` on the worker, so a fresh
workspace (or a re-run after the inventory was lost) reads them from local disk.

The driver still needs a few files as files: the sampled images that ``export`` links or
copies, and the files ``--apply`` moves (with a duplicate group's kept copy), which are
checked, journalled and restored as on a mirrored root. :func:`materialize` writes just
those into the mirror folder, from the cache when it has them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weaklabel.storage import MIRROR, STATE, ObjectState, open_fs

HEAD_BYTES = 64 * 1024
"""The first ranged read of an object: every header Pillow identifies a format by, and
the whole of most thumbnails."""
TRAILER = 20
"""Bytes after each cached body: its SHA-1, so a torn or altered entry is never served."""
HEAD_ONLY = "head-only:"
"""The ``partial`` digest of an object whose header decided and whose body was never
read: unique per key, so the exact-duplicate funnel never pairs it (a bad status is
never grouped anyway) and never tries to read it from the mirror."""


# --- the bounded cache ----------------------------------------------------------------


class ObjectCache:
    """Whole object bodies on a worker's local disk, at most ``limit`` bytes in all.

    One file per object, named by a digest of (root URL, key, size, ETag), so a changed
    object is a different entry. Each file is the body and its SHA-1: an entry that is
    short, long or altered is removed instead of served. A hit touches the entry (LRU by
    modification time). Inserting and evicting happen under one ``flock`` on the folder,
    evicting first, so the entries never sum to more than ``limit`` even with many
    workers sharing the folder; a reader holding an entry that is evicted meanwhile
    keeps its open file (POSIX unlink).
    """

    def __init__(self, folder: str | os.PathLike[str], limit: int) -> None:
        self.folder = Path(folder)
        self.limit = int(limit)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def ident(url: str, key: str, size: int, etag: str) -> str:
        """The entry name of one version of one object."""
        return hashlib.sha1(json.dumps([url, key, size, etag]).encode()).hexdigest()

    def get(self, ident: str, size: int) -> bytes | None:
        """The body of entry ``ident`` if it is there, whole (``size`` bytes) and intact."""
        path = self.folder / ident
        try:
            with open(path, "rb") as f:
                data = f.read(size + TRAILER + 1)
        except FileNotFoundError:
            return None
        body, tail = data[:-TRAILER], data[-TRAILER:]
        if len(data) != size + TRAILER or hashlib.sha1(body).digest() != tail:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # torn or altered: gone, and read from the store again
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        return body

    def put(self, ident: str, body: bytes, sha1: bytes | None = None) -> bool:
        """Store ``body`` (evicting the least recently used entries to make room).

        Returns:
            False when the body alone is larger than the bound (not cached).
        """
        need = len(body) + TRAILER
        if need > self.limit:
            return False
        digest = sha1 if sha1 is not None else hashlib.sha1(body).digest()
        import fcntl

        with open(self.folder / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries, total = self._entries(ident)
                for _, size, path in sorted(entries):
                    if total + need <= self.limit:
                        break
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    total -= size
                tmp = self.folder / f".{ident}.part"
                with open(tmp, "wb") as f:
                    f.write(body)
                    f.write(digest)
                os.replace(tmp, self.folder / ident)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return True

    def _entries(self, skip: str) -> tuple[list[tuple[int, int, str]], int]:
        """``(mtime_ns, size, path)`` of every entry but ``skip`` (which is replaced), and
        their total size. Partial files are only ever written under the lock, so one
        found here is a dead writer's: removed."""
        out: list[tuple[int, int, str]] = []
        total = 0
        with os.scandir(self.folder) as it:
            for e in it:
                if e.name.endswith(".part"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                    continue
                if e.name.startswith(".") or e.name == skip:
                    if e.name == skip:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(e.path)
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                out.append((st.st_mtime_ns, st.st_size, e.path))
                total += st.st_size
        return out, total

    def total(self) -> int:
        """Bytes held now (every entry, trailers included)."""
        with os.scandir(self.folder) as it:
            return sum(e.stat().st_size for e in it if not e.name.startswith("."))


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/weaklabel/objects`` (``~/.cache/…``): on the worker's own disk."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "weaklabel", "objects")


@functools.lru_cache(maxsize=8)
def _cache(folder: str, limit: int) -> ObjectCache:
    return ObjectCache(folder, limit)


@functools.lru_cache(maxsize=8)
def _fs(url: str, endpoint: str | None) -> tuple[Any, str]:
    # One client per worker process and root, not one per object.
    return open_fs(url, endpoint_url=endpoint)


# --- reading an object ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a worker finds the objects of one image root: sent with every task."""

    url: str
    endpoint: str | None
    cache_dir: str | None
    cache_bytes: int
    hash_spec: tuple[str, int] | None = None
    """The perceptual hash dedup will ask for: computed from the same body during purge."""

    def cache(self) -> ObjectCache | None:
        if self.cache_bytes <= 0:
            return None
        return _cache(self.cache_dir or default_cache_dir(), self.cache_bytes)


class RangedBody(io.RawIOBase):
    """A read-only file over one object: its head fetched at once, the rest on the
    first read past the head (one ranged GET), never twice."""

    def __init__(self, fs: Any, path: str, size: int, head: int = HEAD_BYTES) -> None:
        self.fs, self.path, self.size = fs, path, size
        self.data = fs.cat_file(path) if size <= head else fs.cat_file(path, start=0, end=head)
        self.fetched = len(self.data)
        self.pos = 0

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.size

    def _fill(self) -> None:
        if not self.complete:
            rest = self.fs.cat_file(self.path, start=len(self.data), end=self.size)
            self.fetched += len(rest)
            self.data += rest
            self.size = len(self.data)

    def whole(self) -> bytes:
        self._fill()
        return self.data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self.pos, self.size)[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, b: Any) -> int:
        want = len(b)
        if self.pos + want > len(self.data):
            self._fill()
        chunk = self.data[self.pos:self.pos + want]
        b[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill()
            n = len(self.data) - self.pos
        elif self.pos + n > len(self.data):
            self._fill()
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


@dataclass(frozen=True)
class ObjectTask:
    """One object to examine on a worker: the inventory's task and the object's ETag."""

    source: Source
    task: Any  # weaklabel.images.checks.Task
    etag: str


def _partial(body: bytes, size: int) -> tuple[str, str]:
    """``(partial, full)`` digests of a whole body: the partial one exactly as
    :func:`weaklabel.images.digests.partial_digest` computes it from a file, the SHA-1."""
    from weaklabel.images.digests import partial_of_body

    return partial_of_body(body), hashlib.sha1(body).hexdigest()


def _examine_file(f: Any, task: Any) -> dict[str, Any]:
    """:func:`weaklabel.images.checks.examine` on an open file object."""
    from weaklabel.images.checks import examine_open

    return examine_open(f, task)


def _open_body(ot: ObjectTask) -> tuple[bytes | None, RangedBody | None, OSError | None]:
    """The I/O half of :func:`examine_object`: the body from the cache, or the object's
    head from the store (the rest is fetched when the check reads past it)."""
    src, task = ot.source, ot.task
    cache = src.cache()
    ident = ObjectCache.ident(src.url, task.rel, task.size, ot.etag)
    body = cache.get(ident, task.size) if cache is not None else None
    if body is not None:
        return body, None, None
    try:
        fs, root = _fs(src.url, src.endpoint)
        return None, RangedBody(fs, f"{root}/{task.rel}", task.size), None
    except OSError as exc:
        return None, None, exc


def examine_object(ot: ObjectTask, opened: tuple[bytes | None, RangedBody | None,
                                                 OSError | None] | None = None
                   ) -> dict[str, Any]:
    """Check (and hash) one object where it lies, on the worker running this.

    The body comes from the worker's cache or the store (see :class:`RangedBody`;
    ``opened``: what :func:`_open_body` already got); the result is
    :func:`~weaklabel.images.checks.examine`'s, plus ``partial`` and ``sha1`` of the
    body, ``fetched`` (bytes read from the store) and, during purge, ``extra_hash`` (the
    row dedup would compute, from the same body). Never raises for a bad object.
    """
    from dataclasses import replace

    src, task = ot.source, ot.task
    cache = src.cache()
    ident = ObjectCache.ident(src.url, task.rel, task.size, ot.etag)
    body, reader, err = opened if opened is not None else _open_body(ot)
    fetched = 0
    try:
        if err is not None:
            raise err
        if reader is not None:
            out = _examine_file(reader, task)
            # A check that stopped early on an ok image (data after a JPEG's end marker)
            # still needs every byte for the SHA-1.
            if reader.complete or out["status"] == "ok":
                body = reader.whole()
            fetched = reader.fetched
        else:
            assert body is not None
            out = _examine_file(io.BytesIO(body), task)
    except OSError as exc:
        why = "cannot open: gone from the store" if isinstance(exc, FileNotFoundError) \
            else f"cannot read: {exc}"[:200]
        return {"path": task.rel, "status": "unreadable", "reason": why, "format": None,
                "width": None, "height": None, "hash": None, "degenerate": "unreadable",
                "thumb": None, "fetched": fetched, "partial": HEAD_ONLY + ident, "sha1": None}
    out["fetched"] = fetched
    if body is None:
        out["partial"], out["sha1"] = HEAD_ONLY + ident, None
        return out
    out["partial"], out["sha1"] = _partial(body, len(body))
    if reader is not None and cache is not None:
        cache.put(ident, body, bytes.fromhex(out["sha1"]))
    if src.hash_spec is not None and task.hash_spec is None and out["status"] == "ok":
        # What dedup's scan would store, from these bytes, so it need not read them again;
        # kept only when its verdict agrees (else dedup examines it as it would locally).
        from weaklabel.images.hashes import hash_key

        again = _examine_file(io.BytesIO(body), replace(task, hash_spec=src.hash_spec))
        if again["status"] == out["status"] and (again["hash"] is not None
                                                 or again["degenerate"] is not None):
            out["extra_hash"] = (hash_key(*src.hash_spec), again["hash"],
                                 again["degenerate"], again.get("thumb"))
    return out


READ_THREADS = 8
"""Objects one worker process reads at once: a GET is mostly waiting on the network,
so a process with one thread would leave its core idle between objects."""


def examine_batch(batch: list[ObjectTask]) -> list[dict[str, Any]]:
    """:func:`examine_object` over a batch: the heads fetched :data:`READ_THREADS` at a
    time in threads while this worker examines them one by one, in batch order (Pillow
    and its process-wide settings stay on one thread)."""
    if len(batch) <= 1:
        return [examine_object(t) for t in batch]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(READ_THREADS, len(batch))) as ex:
        return [examine_object(t, opened)
                for t, opened in zip(batch, ex.map(_open_body, batch), strict=True)]


# --- the inventory's side -------------------------------------------------------------

_TABLE = ("CREATE TABLE IF NOT EXISTS in_place (tag TEXT PRIMARY KEY, url TEXT, "
          "endpoint TEXT, cache_dir TEXT, cache_bytes INTEGER, hash_method TEXT, "
          "hash_size INTEGER)")


def surrogate_mtime(etag: str) -> int:
    """A modification time (ns) standing for one version of an object: the inventory's
    change signal, as the ETag is the sync's."""
    return int(hashlib.sha1(etag.encode()).hexdigest()[:15], 16)


def _surrogate_ino(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:15], 16)


def mark_in_place(ws_root: Path, tag: str, source: Source) -> None:
    """Record that the mirror folder ``tag`` is read in place (see :func:`source_for`)."""
    state = ObjectState(Path(ws_root) / STATE)
    try:
        state.db.execute(_TABLE)
        spec = source.hash_spec or (None, None)
        state.db.execute("INSERT OR REPLACE INTO in_place VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (tag, source.url, source.endpoint, source.cache_dir,
                          source.cache_bytes, spec[0], spec[1]))
    finally:
        state.close()


def unmark_in_place(ws_root: Path, tag: str) -> None:
    """The mirror folder ``tag`` holds its objects again (``storage.read: mirror``)."""
    if not (Path(ws_root) / STATE).exists():
        return
    state = ObjectState(Path(ws_root) / STATE)
    try:
        state.db.execute(_TABLE)
        state.db.execute("DELETE FROM in_place WHERE tag=?", (tag,))
    finally:
        state.close()


class InPlace:
    """An image root read in place, as the inventory sees it: entries from the object
    state instead of a walk, and :func:`examine_object` instead of opening files."""

    def __init__(self, ws_root: Path, mirror: Path, source: Source) -> None:
        self.ws_root, self.mirror, self.source = Path(ws_root), Path(mirror), source

    def imap(self, pool: Any, tasks: list[Any]) -> Iterator[dict[str, Any]]:
        """The results of the inventory's ``tasks`` in order, read and examined on
        ``pool``'s workers (or the Dask engine's) in batches of objects read at once."""
        items = self.tasks(tasks)
        size = 2 * READ_THREADS
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        return (r for done in pool.imap(examine_batch, batches) for r in done)

    def entries(self) -> Iterator[Any]:
        """One :class:`~weaklabel.images.walk.Entry` per object, in key order. A file
        :func:`materialize` wrote stands in with its own inode, so export sees the file
        the inventory describes."""
        from weaklabel.images.walk import Entry

        db = sqlite3.connect(Path(self.ws_root) / STATE)
        try:
            cur = db.execute("SELECT key, size, etag FROM objects WHERE url=? ORDER BY key",
                             (self.source.url,))
            while rows := cur.fetchmany(1000):
                for key, size, etag in rows:
                    mtime = surrogate_mtime(etag)
                    path = os.path.join(self.mirror, key)
                    ino, dev = _surrogate_ino(key), 0
                    with contextlib.suppress(OSError):
                        st = os.lstat(path)
                        if st.st_size == size and st.st_mtime_ns == mtime:
                            ino, dev = st.st_ino, st.st_dev
                    yield Entry(key, path, "file", int(size), mtime, ino, dev)
        finally:
            db.close()

    def tasks(self, tasks: list[Any]) -> list[ObjectTask]:
        """The inventory's tasks with each object's ETag."""
        etags: dict[str, str] = {}
        db = sqlite3.connect(Path(self.ws_root) / STATE)
        try:
            for i in range(0, len(tasks), 500):
                part = [t.rel for t in tasks[i:i + 500]]
                marks = ",".join("?" * len(part))
                etags.update(db.execute(
                    f"SELECT key, etag FROM objects WHERE url=? AND key IN ({marks})",  # noqa: S608
                    [self.source.url, *part]).fetchall())
        finally:
            db.close()
        return [ObjectTask(self.source, t, etags.get(t.rel, "")) for t in tasks]


def source_for(root: Path | str, ws_root: Path | str) -> InPlace | None:
    """The in-place view of ``root`` when it is a mirror folder read in place, else None
    (a plain folder, or a mirror that holds its files)."""
    mirrors = os.path.realpath(os.path.join(ws_root, MIRROR))
    real = os.path.realpath(root)
    state = os.path.join(ws_root, STATE)
    if os.path.dirname(real) != mirrors or not os.path.exists(state):
        return None
    db = sqlite3.connect(state)
    try:
        db.execute(_TABLE)
        row = db.execute("SELECT url, endpoint, cache_dir, cache_bytes, hash_method, "
                         "hash_size FROM in_place WHERE tag=?",
                         (os.path.basename(real),)).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    spec = None if row[4] is None else (str(row[4]), int(row[5]))
    return InPlace(Path(ws_root), Path(real),
                   Source(row[0], row[1], row[2], int(row[3]), spec))


# --- files the driver needs -----------------------------------------------------------


def materialize(ws_root: Path | str, root: Path | str, images: list[str], *,
                workers: int = 16, any_status: bool = False) -> int:
    """Write the objects ``images`` (keys under an in-place root) into the mirror folder
    as files, for export to link or copy; each gets the modification time the inventory
    recorded, and the inventory row takes the file's inode. Files already there (same
    size and time) are kept. A no-op for a root that is not read in place.

    Only images the inventory found ok are written, unless ``any_status`` (the
    quarantine's moves: a corrupt object too is checked and moved as a file, and
    ``restore`` puts that file back beside the object).

    Returns:
        How many of the files are in the mirror now.
    """
    src = source_for(root, ws_root)
    if src is None or not images:
        return 0
    from concurrent.futures import ThreadPoolExecutor

    inv_path = os.path.join(ws_root, "inventory.sqlite")
    if not os.path.exists(inv_path):
        return 0
    want: list[tuple[str, int, int, str | None]] = []
    ok = "" if any_status else "status='ok' AND"
    db = sqlite3.connect(inv_path)
    try:
        for i in range(0, len(images), 500):
            part = images[i:i + 500]
            marks = ",".join("?" * len(part))
            for p, size, mtime, sha1 in db.execute(
                    f"SELECT path, size, mtime_ns, sha1 FROM files WHERE kind='file' AND "  # noqa: S608
                    f"{ok} path IN ({marks})", [os.fsencode(x) for x in part]):
                want.append((os.fsdecode(p), int(size), int(mtime), sha1))
    finally:
        db.close()
    etags = {t.task.rel: t.etag for t in src.tasks([_Rel(k) for k, _, _, _ in want])}

    def one(item: tuple[str, int, int, str | None]) -> tuple[str, int, int] | None:
        key, size, mtime, sha1 = item
        dest = src.mirror / key
        with contextlib.suppress(OSError):
            st = os.lstat(dest)
            if st.st_size == size and st.st_mtime_ns == mtime:
                return key, st.st_ino, st.st_dev
        cache = src.source.cache()
        ident = ObjectCache.ident(src.source.url, key, size, etags.get(key, ""))
        body = cache.get(ident, size) if cache is not None else None
        if body is None:
            fs, base = _fs(src.source.url, src.source.endpoint)
            body = fs.cat_file(f"{base}/{key}")
            if cache is not None:
                cache.put(ident, body)
        if len(body) != size or (sha1 and hashlib.sha1(body).hexdigest() != sha1):
            # changed since the inventory examined it (same size is no proof: the
            # bytes are compared by their SHA-1): export reports it as not inventoried
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        tmp.write_bytes(body)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, dest)
        st = os.lstat(dest)
        return key, st.st_ino, st.st_dev

    with ThreadPoolExecutor(max(1, workers)) as ex:
        done = [r for r in ex.map(one, want) if r is not None]
    db = sqlite3.connect(inv_path)
    try:
        with db:
            db.executemany("UPDATE files SET ino=?, dev=? WHERE path=?",
                           [(ino, dev, os.fsencode(k)) for k, ino, dev in done])
    finally:
        db.close()
    return len(done)


@dataclass(frozen=True)
class _Rel:
    rel: str


def materialize_sample(ws_root: Path | str, root: Path | str | None) -> int:
    """:func:`materialize` the images of the workspace's ``sample.parquet`` (what export
    links and the report shows); a no-op unless ``root`` is read in place."""
    if root is None or source_for(root, ws_root) is None:
        return 0
    sample = Path(ws_root) / "sample.parquet"
    if not sample.exists():
        return 0
    import pyarrow.parquet as pq

    images = sorted(set(pq.read_table(sample, columns=["image"]).column("image").to_pylist()))
    from weaklabel.containment import fs_form

    return materialize(ws_root, root, [fs_form(i) for i in images])
