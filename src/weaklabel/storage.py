"""Inputs straight from object storage: ``s3://…`` (any fsspec URL) for the posts table
and the image root.

An object is known by its key, size and ETag. :func:`sync_tree` lists the image root one
top-level prefix at a time, in parallel threads (date folders ``YYYYMMDD/`` in a real
bucket: never one flat listing of millions of keys), and fetches into the workspace's
mirror only the objects whose (size, ETag) the workspace has not seen; the ETag is a
change signal, not a content hash, so SHA-1 of the fetched bytes stays the dedup key.
With ``since`` only date folders from that day on are listed: the older days are what the
workspace already holds, and every later stage (purge, dedup, propagate) sees old and new
images together.

Each prefix is read one listing page (1,000 keys) at a time and merged in key order with
the rows the workspace knows, read back in chunks: memory follows the pages in flight,
never the number of objects.

With ``storage.read: in_place`` nothing is fetched here: the sync only lists and
inventories, and the workers read each object from the store themselves
(:mod:`weaklabel.storage_inplace`). Otherwise the stages run on the mirror exactly as
on a local tree (the containment checks included). The manifest's ``source-ref``
points at the original objects (``export.source_prefix`` defaults to the image root's
URL); :func:`put_file` uploads the
manifest to a bucket whole or not at all. ``--apply`` on a mirror moves the objects too
(:mod:`weaklabel.storage_quarantine`).

Credentials come the standard way (``AWS_ACCESS_KEY_ID``…, ``AWS_PROFILE``, instance
roles); the endpoint from ``storage.endpoint_url`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import queue
import re
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from weaklabel.contracts import STORAGE_MIRROR, STORAGE_STATE
from weaklabel.errors import WeaklabelError, closest

log = logging.getLogger(__name__)

STATE = STORAGE_STATE
MIRROR = STORAGE_MIRROR
DATE_PREFIX = re.compile(r"^\d{8}$")
READ_BLOCK = 1 << 20
MAX_REJECTS = 1000
"""Rejected keys kept by name in a :class:`SyncReport` (all are counted)."""
QUARANTINE_PREFIX = ".weaklabel-quarantine"
"""The prefix under an image root that holds its quarantined objects; never listed."""


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """One object under a root: its key (POSIX, relative to the root), size and ETag."""

    key: str
    size: int
    etag: str


@dataclass
class SyncReport:
    """What one :func:`sync_tree` did."""

    url: str
    mirror: str
    prefixes: int = 0
    listed: int = 0
    fetched: int = 0
    bytes_fetched: int = 0
    removed: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects: list[tuple[str, str]] = field(default_factory=list)


def is_remote(url: str | os.PathLike[str] | None) -> bool:
    """Whether ``url`` names object storage (``s3://``, ``gs://``…) rather than a local
    path or a ``file://`` URL."""
    if url is None:
        return False
    text = os.fspath(url)
    return "://" in text and not text.startswith("file://")


def local_path(url: str) -> str:
    """A local path or ``file://`` URL as a plain path."""
    return url[len("file://"):] if url.startswith("file://") else url


URL = re.compile(r"^([a-z][a-z0-9+.-]*)://([^/\s]+)(/[^\x00-\x1f\x7f]*)?$")


def check_url(url: str, *, setting: str = "the path") -> None:
    """A storage URL must name a bucket: ``s3://bucket`` or ``s3://bucket/prefix``.

    Raises:
        WeaklabelError: the URL has no bucket, a space or control character in it.
    """
    if not URL.match(url):
        raise WeaklabelError(f"{url!r} is not a storage URL; write {setting} as "
                             "s3://BUCKET/PREFIX (a bucket name, then the key's prefix)")


def storage_error(exc: BaseException, url: str, *, setting: str = "the path"
                  ) -> WeaklabelError | None:
    """The one-line :class:`WeaklabelError` for a storage failure, or None when ``exc`` is
    not one (a bug, left to surface as it is)."""
    name = type(exc).__name__
    text = str(exc).split("\n", 1)[0][:200]
    if name in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError") \
            or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return WeaklabelError(
            f"{url}: no valid AWS credentials ({text}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, for the account that owns the bucket")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                "ConnectionRefusedError", "ServerDisconnectedError"):
        return WeaklabelError(f"{url}: cannot reach the storage endpoint ({text}); check "
                              "storage.endpoint_url or AWS_ENDPOINT_URL and the network")
    if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in text:
        return WeaklabelError(f"{url}: no such bucket, prefix or object; check {setting}")
    if isinstance(exc, PermissionError):
        return WeaklabelError(f"{url}: access denied ({text}); check the AWS credentials "
                              "(AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket's policy")
    return None


@contextlib.contextmanager
def storage_errors(url: str, *, setting: str = "the path") -> Iterator[None]:
    """Turn a storage failure inside the block into one :class:`WeaklabelError` line."""
    try:
        yield
    except WeaklabelError:
        raise
    except Exception as exc:
        err = storage_error(exc, url, setting=setting)
        if err is None:
            raise
        raise err from None


def open_fs(url: str, *, endpoint_url: str | None = None) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it.

    Raises:
        WeaklabelError: fsspec (or the protocol's driver, e.g. s3fs) is not installed,
            or the URL names no bucket.
    """
    check_url(url)
    try:
        import fsspec
    except ImportError:
        raise WeaklabelError(f"{url}: reading object storage needs fsspec and s3fs; install "
                             "them with: pip install 'weaklabel[s3]'") from None
    protocol = url.split("://", 1)[0]
    opts: dict[str, Any] = {"skip_instance_cache": True}
    if protocol in ("s3", "s3a"):
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        opts["use_listings_cache"] = False
        # Objects are fetched many at a time already; one GET each, no HEAD for its size.
        opts["max_concurrency"] = 1
    try:
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except ImportError as exc:
        raise WeaklabelError(f"{url}: no driver for {protocol}:// ({exc}); for s3:// install: "
                             "pip install 'weaklabel[s3]'") from None
    except ValueError as exc:
        # "s4://" typed for "s3://": name the scheme it most likely means
        near = closest(protocol, ["s3", "gs", "gcs", "az", "abfs", "file"], cutoff=0.5)
        hint = f"did you mean {near}://?" if near else "use s3://BUCKET/PREFIX"
        raise WeaklabelError(f"{url}: {protocol}:// is not a storage scheme fsspec knows "
                             f"({exc}); {hint}") from None
    return fs, path.rstrip("/")


def _etag(info: dict[str, Any]) -> str:
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if tag:
        return str(tag).strip('"')
    # A store without ETags: the modification time is the change signal.
    return f"mtime:{info.get('mtime') or info.get('LastModified') or info.get('updated') or ''}"


def _safe_key(key: str) -> str | None:
    """Why ``key`` cannot become a path under the mirror, or None when it can."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\x00" in key:
        return "empty, '.' or '..' path segment"
    if any("\\" in p for p in parts):
        return "backslash in the key"
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_SEGMENT for p in parts):
        return f"a path segment longer than {MAX_SEGMENT} bytes (no file system takes it)"
    return None


MAX_SEGMENT = 249
"""The longest key segment mirrored: file systems take 255 bytes a name, and the
temporary ``.NAME.part`` beside a file needs 6 more."""


def _synced_prefix(prefix: str, since: str | None) -> bool:
    """Whether a sync covers the top-level ``prefix``: not a date folder before ``since``
    (not asked for), not the quarantine (its objects are not images of the root)."""
    if since and DATE_PREFIX.match(prefix) and prefix < since:
        return False
    return prefix != QUARANTINE_PREFIX


def list_top(fs: Any, root: str, *, since: str | None = None
             ) -> tuple[list[ObjectInfo], list[str]]:
    """One delimiter listing of ``root``: the objects right under it and its top-level
    prefixes (sorted). ``since`` (``YYYYMMDD``): date prefixes before that day are left
    out (other prefixes never are).

    Raises:
        WeaklabelError: no such bucket or prefix, or access denied.
    """
    try:
        top = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise WeaklabelError(f"{root}: no such bucket or prefix; check images.root") from None
    except Exception as exc:
        err = storage_error(exc, root, setting="images.root")
        if err is None:
            raise
        raise err from None
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    base = root.rstrip("/") + "/"
    for info in top:
        name = str(info["name"]).rstrip("/")
        rel = name[len(base):] if name.startswith(base) else name.rsplit("/", 1)[-1]
        if info.get("type") == "directory":
            if not _synced_prefix(rel, since):
                continue
            prefixes.append(rel)
        elif rel:
            objects.append(ObjectInfo(rel, int(info.get("size") or 0), _etag(info)))
    return sorted(objects), sorted(prefixes)


PAGE = 1000
"""Objects per listing page (S3's own page size) and per chunk of known rows read."""


def iter_prefix(fs: Any, root: str, prefix: str) -> Iterator[list[ObjectInfo]]:
    """The objects under ``root/prefix/``, one listing page at a time, in key order.

    On S3 the pages come straight from ``ListObjectsV2`` (1,000 keys each), so a prefix
    of any size is never held whole; other stores are listed by ``fs.find``.
    """
    base = root.rstrip("/") + "/"
    if hasattr(fs, "call_s3"):  # s3fs: its own client, region and retries
        bucket, _, inner = base.partition("/")
        cut = len(inner)
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": inner + prefix + "/",
                                "MaxKeys": PAGE}
        while True:
            page = fs.call_s3("list_objects_v2", **args)
            yield [ObjectInfo(str(o["Key"])[cut:], int(o.get("Size") or 0),
                              str(o.get("ETag") or "").strip('"'))
                   for o in page.get("Contents", []) if not str(o["Key"]).endswith("/")]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token
    found = fs.find(base + prefix, detail=True)
    yield sorted(ObjectInfo(str(n)[len(base):], int(i.get("size") or 0), _etag(i))
                 for n, i in found.items() if i.get("type") != "directory")


def list_prefix(fs: Any, root: str, prefix: str) -> list[ObjectInfo]:
    """Every object under ``root/prefix/``, sorted by key (a small prefix only: see
    :func:`iter_prefix`)."""
    return [o for page in iter_prefix(fs, root, prefix) for o in page]


_DONE = object()


def _pump(pages: Iterator[list[ObjectInfo]], q: queue.Queue[Any], stop: threading.Event
          ) -> None:
    """Feed a prefix's pages into its bounded queue (a listing thread's whole job)."""
    try:
        for page in pages:
            while not stop.is_set():
                try:
                    q.put(page, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        q.put(_DONE)
    except BaseException as exc:  # handed to the consumer, raised there
        q.put(exc)


def _drain(q: queue.Queue[Any]) -> Iterator[list[ObjectInfo]]:
    while True:
        item = q.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def iter_partitions(fs: Any, root: str, *, since: str | None = None, workers: int = 16
                    ) -> Iterator[tuple[str, Iterator[list[ObjectInfo]]]]:
    """``(prefix, pages)`` for the root's own objects (prefix ``""``) and then each
    top-level prefix in order. ``workers`` prefixes are listed at once in threads, each
    at most two pages ahead of the consumer: memory follows ``workers`` pages, not the
    bucket. Each prefix's pages must be consumed before the next prefix is asked for."""
    own, prefixes = list_top(fs, root, since=since)
    yield "", iter([own])
    if not prefixes:
        return
    stop = threading.Event()
    with ThreadPoolExecutor(max(1, min(workers, len(prefixes)))) as ex:
        ahead: deque[tuple[str, queue.Queue[Any]]] = deque()
        todo = iter(prefixes)

        def start(p: str) -> None:
            q: queue.Queue[Any] = queue.Queue(maxsize=2)
            ex.submit(_pump, iter_prefix(fs, root, p), q, stop)
            ahead.append((p, q))

        try:
            for p in itertools.islice(todo, workers):
                start(p)
            while ahead:
                p, q = ahead.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    start(nxt)
                yield p, _drain(q)
        finally:
            stop.set()


def list_objects(fs: Any, root: str, *, since: str | None = None, workers: int = 16
                 ) -> list[ObjectInfo]:
    """Every object under ``root`` (see :func:`iter_partitions`), sorted by key; for
    tests and small roots, since it holds the whole listing."""
    return sorted(o for _, pages in iter_partitions(fs, root, since=since, workers=workers)
                  for page in pages for o in page)


class ObjectState:
    """``WORKSPACE/storage/objects.sqlite``: the (size, ETag) of every object mirrored."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (url TEXT, key TEXT, size INTEGER,"
                        " etag TEXT, PRIMARY KEY (url, key))")
        # Which URL a mirror folder holds, so purge --apply on a mirror moves the objects.
        self.db.execute("CREATE TABLE IF NOT EXISTS mirrors (tag TEXT PRIMARY KEY, url TEXT,"
                        " endpoint TEXT)")

    def add_mirror(self, tag: str, url: str, endpoint: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO mirrors VALUES (?, ?, ?)", (tag, url, endpoint))

    def mirror_of(self, tag: str) -> tuple[str, str | None] | None:
        row = self.db.execute("SELECT url, endpoint FROM mirrors WHERE tag=?", (tag,)).fetchone()
        return None if row is None else (row[0], row[1])

    def iter_known(self, url: str, prefix: str) -> Iterator[tuple[str, int, str]]:
        """``(key, size, etag)`` of ``url``'s objects under ``prefix`` (``""``: right
        under the root) in key order, read :data:`PAGE` rows at a time on a connection
        of its own: a snapshot, unchanged by the writes a sync makes meanwhile."""
        db = sqlite3.connect(self.path)
        try:
            if prefix == "":
                cur = db.execute("SELECT key, size, etag FROM objects WHERE url=? AND "
                                 "instr(key, '/') = 0 ORDER BY key", (url,))
            else:
                cur = db.execute("SELECT key, size, etag FROM objects WHERE url=? AND key >= ?"
                                 " AND key < ? ORDER BY key", (url, prefix + "/", prefix + "0"))
            while rows := cur.fetchmany(PAGE):
                yield from rows
        finally:
            db.close()

    def known(self, url: str, prefix: str | None = None) -> dict[str, tuple[int, str]]:
        """``key -> (size, etag)`` of ``url``'s objects; with ``prefix``, only those under
        it (``""``: only the objects right under the root)."""
        if prefix is None:
            cur = self.db.execute("SELECT key, size, etag FROM objects WHERE url=?", (url,))
        elif prefix == "":
            cur = self.db.execute("SELECT key, size, etag FROM objects WHERE url=? AND "
                                  "instr(key, '/') = 0", (url,))
        else:  # keys in [prefix/, prefix0): '0' sorts right after '/'
            cur = self.db.execute("SELECT key, size, etag FROM objects WHERE url=? AND "
                                  "key >= ? AND key < ?", (url, prefix + "/", prefix + "0"))
        return {k: (s, e) for k, s, e in cur}

    def known_prefixes(self, url: str) -> list[str]:
        """The top-level prefixes (first key segment) of ``url``'s known objects."""
        cur = self.db.execute("SELECT DISTINCT substr(key, 1, instr(key, '/') - 1) FROM "
                              "objects WHERE url=? AND instr(key, '/') > 0", (url,))
        return sorted(str(p) for (p,) in cur)

    def get(self, url: str, key: str) -> tuple[int, str] | None:
        """``(size, etag)`` of one object, or None when it is not known."""
        row = self.db.execute("SELECT size, etag FROM objects WHERE url=? AND key=?",
                              (url, key)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def put(self, url: str, objs: list[ObjectInfo]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                            [(url, o.key, o.size, o.etag) for o in objs])
        self.db.execute("COMMIT")

    def drop(self, url: str, keys: list[str]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("DELETE FROM objects WHERE url=? AND key=?",
                            [(url, k) for k in keys])
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def mirror_dir(ws_root: Path, url: str) -> Path:
    """The workspace folder that mirrors ``url`` (named by a digest of the URL)."""
    tag = hashlib.sha1(url.rstrip("/").encode()).hexdigest()[:12]
    return Path(ws_root) / MIRROR / tag


def _fetch(fs: Any, src: str, dest: Path, *, whole: bool = True) -> int:
    """Copy one object to ``dest`` atomically (temporary file beside it, then rename).

    ``whole``: one GET of the whole object (an image: a few MB at most, and no HEAD
    request first); otherwise streamed in blocks (a posts table of any size).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    n = 0
    if whole:
        data = fs.cat_file(src)
        tmp.write_bytes(data)
        n = len(data)
    else:
        with fs.open(src, "rb", block_size=READ_BLOCK) as r, open(tmp, "wb") as w:
            while True:
                block = r.read(READ_BLOCK)
                if not block:
                    break
                w.write(block)
                n += len(block)
    try:
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)  # a folder in the way: no stray .part left behind
        raise
    return n


def sync_tree(url: str, ws_root: Path, *, endpoint_url: str | None = None,
              since: str | None = None, workers: int = 16, progress: bool = False,
              on_fetch: Callable[[str], None] | None = None, fetch: bool = True
              ) -> SyncReport:
    """Bring the workspace's mirror of the image root ``url`` up to date.

    Prefix by prefix (see :func:`iter_partitions`): only objects new or changed (size or
    ETag differ) since the last sync are fetched, ``workers`` at a time; objects gone
    from a listed prefix are removed from the mirror; prefixes not listed (before
    ``since``) keep what the workspace holds; a prefix deleted whole is removed like an
    object gone. Keys that cannot be a path (``..``, empty
    segments) are not fetched and are reported in ``rejects``. ``fetch=False`` only
    inventories (key, size, ETag): a later sync still fetches what the mirror lacks.

    Raises:
        WeaklabelError: the bucket or prefix does not exist, or access is denied.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    url = url.rstrip("/")
    fs, root = open_fs(url, endpoint_url=endpoint_url)
    mirror = mirror_dir(ws_root, url)
    rep = SyncReport(url=url, mirror=str(mirror))
    state = ObjectState(Path(ws_root) / STATE)
    state.add_mirror(mirror.name, url, endpoint_url)
    bar = tqdm(desc="fetch", unit="obj", file=sys.stderr,
               disable=None if progress else True, leave=False)

    def get(o: ObjectInfo) -> int | str:
        """The bytes fetched, or why the key cannot be written (a reject, not a stop)."""
        try:
            n = _fetch(fs, f"{root}/{o.key}", mirror / o.key)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            return f"cannot be a file under the mirror: {exc.strerror}"  # a folder there
        if on_fetch is not None:
            on_fetch(o.key)
        return n

    try:
        with storage_errors(url, setting="images.root"), ThreadPoolExecutor(max(1, workers)) as ex:
            listed: set[str] = set()
            for prefix, pages in iter_partitions(fs, root, since=since, workers=workers):
                rep.prefixes += prefix != ""
                listed.add(prefix)
                _sync_partition(state, url, prefix, pages, mirror, rep, ex,
                                get if fetch else None, bar)
            # A folder deleted whole is not listed at all: its known objects are gone
            # too (date folders before ``since`` were not asked for, and stay).
            for prefix in state.known_prefixes(url):
                if prefix in listed or not _synced_prefix(prefix, since):
                    continue
                _sync_partition(state, url, prefix, iter(()), mirror, rep, ex,
                                get if fetch else None, bar)
    finally:
        bar.close()
        state.close()
    rep.seconds = time.perf_counter() - t0
    return rep


def _sync_partition(state: ObjectState, url: str, prefix: str,
                    pages: Iterator[list[ObjectInfo]], mirror: Path, rep: SyncReport,
                    ex: ThreadPoolExecutor, get: Callable[[ObjectInfo], int | str] | None, bar: Any
                    ) -> None:
    """One prefix: its listing pages merged, in key order, with the rows the workspace
    knows (read in chunks), so neither side is ever held whole. Per page: the objects
    gone are removed, the new or changed ones fetched and recorded."""
    known = state.iter_known(url, prefix)
    k = next(known, None)
    chain: list[str] = []  # keys that are string prefixes of the next: folder clashes
    for page in pages:
        rep.listed += len(page)
        todo: list[ObjectInfo] = []
        gone: list[str] = []
        for o in page:
            while k is not None and k[0] < o.key:
                gone.append(k[0])
                k = next(known, None)
            was = None
            if k is not None and k[0] == o.key:
                was = (k[1], k[2])
                k = next(known, None)
            why = _safe_key(o.key)
            if why is None:
                while chain and not o.key.startswith(chain[-1]):
                    chain.pop()
                if any(o.key.startswith(c + "/") for c in chain):
                    why = "a key is also a folder of another key"
            if why is not None:
                rep.rejected += 1
                if len(rep.rejects) < MAX_REJECTS:
                    rep.rejects.append((o.key, why))
                if was is not None:
                    gone.append(o.key)
                continue
            chain.append(o.key)
            # Inventory only (objects read in place): a mirror without the file is right.
            if was != (o.size, o.etag) or (get is not None and not (mirror / o.key).is_file()):
                todo.append(o)
        _apply_page(state, url, mirror, rep, ex, get, bar, todo, gone)
    rest = []
    while k is not None:  # known rows after the last listed key: gone
        rest.append(k[0])
        if len(rest) >= PAGE:
            _apply_page(state, url, mirror, rep, ex, get, bar, [], rest)
            rest = []
        k = next(known, None)
    _apply_page(state, url, mirror, rep, ex, get, bar, [], rest)


def _apply_page(state: ObjectState, url: str, mirror: Path, rep: SyncReport,
                ex: ThreadPoolExecutor, get: Callable[[ObjectInfo], int | str] | None, bar: Any,
                todo: list[ObjectInfo], gone: list[str]) -> None:
    for key in gone:
        (mirror / key).unlink(missing_ok=True)
        for parent in reversed(_parents(key)):  # folders the object alone kept
            with contextlib.suppress(OSError):
                (mirror / parent).rmdir()
    if gone:
        state.drop(url, gone)
    rep.removed += len(gone)
    if not todo:
        return
    if get is None:  # inventory only
        state.put(url, todo)
        return
    bar.total = (bar.total or 0) + len(todo)
    done: list[ObjectInfo] = []
    try:
        for o, n in zip(todo, ex.map(get, todo), strict=True):
            bar.update(1)
            if isinstance(n, str):
                rep.rejected += 1
                if len(rep.rejects) < MAX_REJECTS:
                    rep.rejects.append((o.key, n))
                continue
            rep.fetched += 1
            rep.bytes_fetched += n
            done.append(o)
    finally:
        state.put(url, done)  # what was fetched before a failure stays known


def _parents(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def fetch_file(url: str, ws_root: Path, *, endpoint_url: str | None = None,
               setting: str = "posts.path") -> Path:
    """A local copy of one object (the posts table), fetched again only when its size or
    ETag changed.

    Raises:
        WeaklabelError: the object does not exist.
    """
    fs, path = open_fs(url, endpoint_url=endpoint_url)
    with storage_errors(url, setting=setting):
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise WeaklabelError(f"{url}: no such object; check {setting}") from None
        if info.get("type") == "directory":
            raise WeaklabelError(f"{url} is a prefix, not an object; {setting} names one "
                                 "table, e.g. s3://bucket/tables/posts.csv")
        obj = ObjectInfo(path.rsplit("/", 1)[-1], int(info.get("size") or 0), _etag(info))
        parent = url.rsplit("/", 1)[0]
        dest = mirror_dir(ws_root, parent) / obj.key
        state = ObjectState(Path(ws_root) / STATE)
        try:
            if state.get(parent, obj.key) != (obj.size, obj.etag) or not dest.is_file():
                _fetch(fs, path, dest, whole=False)
                state.put(parent, [obj])
        finally:
            state.close()
    return dest


def put_file(local: Path, url: str, *, endpoint_url: str | None = None,
             setting: str = "the target") -> ObjectInfo:
    """Upload ``local`` to the object ``url`` so that it exists whole or not at all.

    On S3 one PUT (or a completed multipart upload) makes the object appear at once,
    never in part; on other stores the bytes go to a temporary key that is then moved.
    The uploaded size is checked against the file's.

    Raises:
        WeaklabelError: no bucket, no credentials, access denied, or a size mismatch.
    """
    fs, path = open_fs(url, endpoint_url=endpoint_url)
    if path.count("/") < 1 or path.endswith("/"):
        raise WeaklabelError(f"{url}: {setting} must name an object under a bucket, e.g. "
                             "s3://bucket/exports/manifest.jsonl")
    size = Path(local).stat().st_size
    with storage_errors(url, setting=setting):
        bucket = path.split("/", 1)[0]
        if not fs.exists(bucket):
            raise WeaklabelError(f"{url}: no such bucket {bucket!r}; create it or fix "
                                 f"{setting}")
        protocol = url.split("://", 1)[0]
        if protocol in ("s3", "s3a"):
            fs.put_file(os.fspath(local), path)
        else:
            tmp = f"{path}.weaklabel-part"
            fs.put_file(os.fspath(local), tmp)
            fs.mv(tmp, path)
        info = fs.info(path)
    if int(info.get("size") or 0) != size:
        raise WeaklabelError(f"{url}: uploaded {info.get('size')} bytes of {size}; run the "
                             "export again")
    return ObjectInfo(path, size, _etag(info))


def local_images(url: str, ws_root: Path, storage: Any, *, progress: bool = False,
                 hash_spec: tuple[str, int] | None = None) -> SyncReport:
    """Sync the image root ``url`` into the workspace mirror (see :func:`sync_tree`) with
    the config's ``storage`` settings, logging the keys that were not fetched.

    ``storage.read: in_place`` lists and inventories only: the mirror folder is marked
    as read in place (:mod:`weaklabel.storage_inplace`), so the inventory's workers read
    each object from the store (and ``hash_spec``, dedup's hash, from the same bytes).
    """
    from weaklabel import storage_inplace as sip

    in_place = getattr(storage, "read", "mirror") == "in_place"
    rep = sync_tree(url, ws_root, endpoint_url=storage.endpoint_url, since=storage.since,
                    workers=storage.fetch_workers, progress=progress, fetch=not in_place)
    tag = Path(rep.mirror).name
    if in_place:
        Path(rep.mirror).mkdir(parents=True, exist_ok=True)
        sip.mark_in_place(ws_root, tag, sip.Source(
            rep.url, storage.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
            storage.cache_dir, storage.cache_bytes, hash_spec))
    else:
        sip.unmark_in_place(ws_root, tag)
    for key, why in rep.rejects[:20]:
        log.warning("%s/%s: not fetched (%s)", rep.url, key, why)
    return rep


def local_input(value: str | None, ws_root: Path, storage: Any, *,
                setting: str = "posts.path") -> str | None:
    """A local path for one input table: an object fetched into the workspace (when it
    changed), a ``file://`` URL as a path, a path as it is."""
    if value is None:
        return None
    if is_remote(value):
        scheme, _, rest = value.partition("://")
        bucket, _, key = rest.partition("/")
        if bucket and (not key or key.endswith("/")):
            # said before any request: credentials or a listing cannot make it a table
            raise WeaklabelError(
                f"{setting} {value} names a {'folder' if key else 'bucket'}, not a table; "
                f"give the object's key, e.g. {scheme}://{bucket}/{key}posts.csv")
        return str(fetch_file(value, ws_root, endpoint_url=storage.endpoint_url,
                              setting=setting))
    return local_path(value)


def stage_inputs(cfg: Any, *, progress: bool = False, posts: bool = True,
                 images: bool = True) -> tuple[Any, dict[str, Any] | None]:
    """The config with every remote input replaced by its workspace mirror.

    The posts table (and link table) is fetched when changed; the image root is synced
    with :func:`sync_tree` (``storage.since`` limits the listing). ``export.source_prefix``
    defaults to the image root's URL, so the manifest names the original objects. A
    single-stage command stages only what it reads (``posts``, ``images``).

    Returns:
        ``(config, summary)``; the summary is None when nothing is remote.
    """
    ws_root = Path(cfg.workspace)
    st = cfg.storage
    summary: dict[str, Any] = {}
    pcfg = cfg.posts
    if posts:
        for name in ("path", "links"):
            value = getattr(pcfg, name)
            if value is not None:
                pcfg = replace(pcfg, **{name: local_input(value, ws_root, st,
                                                            setting=f"posts.{name}")})
                if is_remote(value):
                    summary[f"posts_{name}"] = value
    icfg = cfg.images
    export = cfg.export
    root_url = icfg.root or pcfg.image_root
    if images and is_remote(root_url):
        assert root_url is not None
        rep = local_images(root_url, ws_root, st, progress=progress,
                           hash_spec=(icfg.hash_method, icfg.hash_size))
        icfg = replace(icfg, root=rep.mirror)
        pcfg = replace(pcfg, image_root=rep.mirror if pcfg.image_root else None)
        if export.source_prefix is None:
            export = replace(export, source_prefix=rep.url)
        summary.update(prefixes=rep.prefixes, listed=rep.listed, fetched=rep.fetched,
                       bytes=rep.bytes_fetched, removed=rep.removed, rejected=rep.rejected)
    elif images and st.since and root_url:
        # a local tree has no listing to limit: said, not silently a full run
        log.warning("storage.since %s limits the listing of an s3:// image root only; the "
                    "local root %s is checked whole (files unchanged since the last run are "
                    "not read again)", st.since, root_url)
    if root_url and root_url.startswith("file://") and not is_remote(root_url):
        icfg = replace(icfg, root=local_path(root_url))
        if pcfg.image_root:
            pcfg = replace(pcfg, image_root=local_path(pcfg.image_root))
    if not summary:
        return replace(cfg, posts=pcfg, images=icfg), None
    return replace(cfg, posts=pcfg, images=icfg, export=export), summary
