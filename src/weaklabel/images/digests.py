"""Content digests for exact duplicates: a partial digest (first and last 4 KiB) for
files whose size collides, a full SHA-1 only where the partial one collides too."""

from __future__ import annotations

import os
import zlib
from errno import EAGAIN
from itertools import repeat
from operator import itemgetter

from weaklabel.images.walk import open_fd, open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

PARTIAL_BLOCK = 4096  # as jdupes: a page at each end tells most same-size files apart
CHUNK = 1 << 20


def partial_digest(path: str, size: int, rel: str | None = None) -> tuple[str, str | None]:
    """CRC-32 of the first and last 4 KiB, or of the whole file when those cover it.

    A filter, not a verdict: files are only compared with others of their size, and a
    shared partial digest leads to a full SHA-1 of each, which decides. So a checksum
    ten times cheaper than SHA-1 will do, and a small file (most images of a thumbnail
    tree) is read once and hashed once; only when its partial digest collides is it
    read again for its SHA-1. Two ``pread`` calls on a raw descriptor: no file object,
    no seek (a cold run makes one call per same-size file, thousands).

    Returns:
        ``(partial, None)``: the partial digest as hex (the second item is kept for
        callers that take a full digest along).
    """
    fd = open_fd(path, rel)
    try:
        if size <= 2 * PARTIAL_BLOCK:
            crc = zlib.crc32(_read_all(fd, size))
        else:
            crc = zlib.crc32(os.pread(fd, PARTIAL_BLOCK, 0))
            # The walk's size, no fstat: a file changed since differs in mtime, and the
            # next run reads it again anyway.
            crc = zlib.crc32(os.pread(fd, PARTIAL_BLOCK, size - PARTIAL_BLOCK), crc)
    finally:
        os.close(fd)
    return f"{crc:08x}", None


def partial_of_body(body: bytes) -> str:
    """:func:`partial_digest` of a whole body already in memory (an object read in place),
    so a file and an object of the same bytes get the same partial digest."""
    if len(body) <= 2 * PARTIAL_BLOCK:
        crc = zlib.crc32(body)
    else:
        crc = zlib.crc32(body[-PARTIAL_BLOCK:], zlib.crc32(body[:PARTIAL_BLOCK]))
    return f"{crc:08x}"


def _read_all(fd: int, size: int) -> bytes:
    """The whole (small) file, also when it grew since the walk saw ``size``."""
    parts = []
    while block := os.read(fd, max(size, PARTIAL_BLOCK) + 1):
        parts.append(block)
    return b"".join(parts)


SMALL_SHA1 = 1 << 19
"""Bytes to hash below which the interpreter's own SHA-1 is used, not OpenSSL's."""


def sha1_for(total: int) -> Callable[[], Any]:
    """A SHA-1 constructor for hashing ``total`` bytes: the interpreter's built-in one
    (``_sha1``, nothing to load) for up to :data:`SMALL_SHA1`, else OpenSSL's through
    ``hashlib``, whose first import loads libcrypto (~5 ms, the whole SHA-1 of a few
    hundred copies of thumbnails) but hashes ~10x faster. The same digest either way."""
    if total <= SMALL_SHA1:
        try:
            from _sha1 import sha1

            return sha1
        except ImportError:  # an interpreter built without its own hashes
            pass
    try:  # what hashlib.sha1 is, without hashlib's own import (its other constructors)
        from _hashlib import openssl_sha1

        # hashlib's own probe: an OpenSSL whose policy (FIPS) blocks SHA-1 defines the
        # constructor yet raises ValueError from it; hashlib then uses its built-in one.
        openssl_sha1(usedforsecurity=False)
        return openssl_sha1
    except (ImportError, ValueError):  # no OpenSSL, or SHA-1 blocked: hashlib's fallback
        import hashlib

        return hashlib.sha1


def full_digest(path: str, rel: str | None = None) -> str:
    """SHA-1 of the whole file, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha1()
    with open_regular(path, rel) as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _open_folder(base: bytes, real: bytes, folder: bytes, flags: int) -> int:
    """A descriptor of the folder ``folder`` under the root, or -1 when it cannot be
    opened or is not where the root's real path says (a folder on the way became a
    symbolic link, or no ``/proc``): then each file is opened and checked on its own."""
    try:
        dfd = os.open(base + folder if folder else base, flags)
    except OSError:
        return -1
    want = real + folder if folder else (real.rstrip(b"/") or b"/")
    try:
        inside = os.readlink(b"/proc/self/fd/%d" % dfd) == want
    except OSError:
        inside = False
    if not inside:
        os.close(dfd)
        return -1
    return dfd


def digest_keys(root: str, rows: Sequence[Sequence[Any]], kind: str,
                errors: dict[bytes, str], later: list[int] | None = None,
                sha1: Callable[[], Any] | None = None) -> list[str | None]:
    """The ``kind`` digest (``partial`` or ``full``) of each ``(path key, size, …)`` under
    ``root``: :func:`partial_digest` or :func:`full_digest` of each, read the same way,
    without a Python object per file beyond its result.

    Paths stay the raw bytes they are in the inventory (no decode, join, encode per
    file). No folder on the way may have become a symlink since the walk: each folder
    (rows come a folder's files in a row, as the walk or a sort by path gives them) is
    opened once and its descriptor's path compared with the root's real path + the
    folder, and its files are opened relative to it without following a symlink, so one
    check covers them all. Where that check fails (or there is no ``/proc``), each file
    is opened by its path and takes :func:`~weaklabel.containment.opened_inside`'s
    verdict. A file that cannot be read gives its error, never raises.

    Returns:
        The digests as hex, in the order of ``rows``, None where a file could not be
        read; ``errors[key]`` says why.

    ``sha1``: the SHA-1 constructor for full digests (:func:`sha1_for` of what the
    whole run reads, chosen once by :func:`read_digests`; by default chosen for
    ``rows``).

    ``later`` (a list, partial digests only): read only what the page
    cache holds (``RWF_NOWAIT``); a file any of whose bytes would come from the disk,
    or whose size is no longer the walk's, is not read but left for a blocking read:
    its digest is None and its index into ``rows`` goes into ``later``
    (:func:`read_digests` hands those to its threads).
    """
    from weaklabel.containment import opened_inside

    base = os.fsencode(root).rstrip(b"/") + b"/"
    real = os.fsencode(os.path.realpath(root)).rstrip(b"/") + b"/"
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0)
    dir_flags = os.O_RDONLY | nofollow | getattr(os, "O_DIRECTORY", 0)
    partial = kind == "partial"
    block, crc32, pread, read, close = PARTIAL_BLOCK, zlib.crc32, os.pread, os.read, os.close
    small = 2 * block
    open_ = os.open
    if not partial and sha1 is None:
        sha1 = sha1_for(sum(r[1] for r in rows))
    nowait_ok = True
    if later is not None:
        preadv, nowait = os.preadv, os.RWF_NOWAIT
        view = memoryview(bytearray(small + 1))
        whole, head = [view], view[:block]  # made once: no object per read
        heads = [head]
    out: list[str | None] = []
    add = out.append
    folder: bytes | None = None
    dfd = -1
    try:
        for row in rows:
            key = row[0]
            here, _, name = key.rpartition(b"/")
            if here != folder:
                if dfd >= 0:
                    close(dfd)
                folder, dfd = here, _open_folder(base, real, here, dir_flags)
            try:
                fd = open_(name, flags, dir_fd=dfd) if dfd >= 0 else open_(base + key, flags)
            except OSError as exc:
                add(None)
                errors[key] = f"cannot read: {exc.strerror or exc}"
                continue
            try:
                if dfd < 0:
                    try:
                        inside = os.readlink(b"/proc/self/fd/%d" % fd) == real + key
                    except OSError:
                        inside = False
                    if not inside and not opened_inside(fd, os.fsdecode(base + key),
                                                        os.fsdecode(key)):
                        add(None)
                        errors[key] = ("cannot read: a folder on the way became a "
                                       "symbolic link")
                        continue
                size = row[1]
                if sha1 is not None:
                    h = sha1()
                    while chunk := read(fd, CHUNK):
                        h.update(chunk)
                    add(h.hexdigest())
                elif later is not None and nowait_ok:
                    try:
                        if size <= small:  # one read: more than it holds, if it grew
                            ok = preadv(fd, whole, 0, nowait) == size
                            crc = crc32(view[:size])
                        else:
                            ok = preadv(fd, heads, 0, nowait) == block
                            crc = crc32(head)
                            ok = ok and preadv(fd, heads, size - block, nowait) == block
                            crc = crc32(head, crc)
                    except OSError as exc:
                        ok = False
                        # Not a cache miss: no no-wait reads on this filesystem
                        # (EOPNOTSUPP on NFS, CIFS, older FUSE). Stop asking: the rest
                        # is read here, blocking, as without threads.
                        nowait_ok = exc.errno == EAGAIN
                    if ok:
                        add(f"{crc:08x}")
                    else:
                        later.append(len(out))
                        add(None)
                elif size <= small:
                    # One read: a short read of a regular file is its end; more than
                    # asked, it grew since the walk and is read to its end.
                    want = size if size > block else block
                    body = read(fd, want + 1)
                    add(f"{crc32(body):08x}" if len(body) <= want else
                        f"{crc32(_read_all(fd, size), crc32(body)):08x}")
                else:
                    add(f"{crc32(pread(fd, block, size - block), crc32(pread(fd, block, 0))):08x}")
            except OSError as exc:
                add(None)
                errors[key] = f"cannot read: {exc.strerror or exc}"
            finally:
                close(fd)
    finally:
        if dfd >= 0:
            close(dfd)
    return out


def read_digests(root: str, rows: Sequence[Sequence[Any]], kind: str, *, workers: int,
                 errors: dict[bytes, str], quiet: bool = True, ordered: bool = False
                 ) -> list[str | None]:
    """:func:`digest_keys` of ``rows``, with ``workers`` threads for what must wait for
    the disk (reading and SHA-1 release the GIL: no process to start), and a progress
    bar on stderr unless ``quiet``.

    Rows are sorted by path first (a folder's files in a row: one folder check for
    them all) unless ``ordered`` says they already come a folder at a time (the walk's
    order); the results are in the order of the rows read, None where a file could not
    be read (``errors[key]`` says why). Full digests take one SHA-1 constructor for the
    whole run (:func:`sha1_for` of every byte to read), whatever the threads' batches.

    Partial digests with more than one worker: this thread reads what
    the page cache holds, without waiting, and hands the files that would wait for the
    disk to the threads as it finds them, so a cold tree's reads overlap and a warm
    one pays nothing for threads (two threads taking turns at the GIL cost ~30 % more
    CPU than one for 100,000 cached 4 KiB reads). Full digests (few files, all of
    each) go to the threads when there is more than 16 MiB to read.
    """
    if not rows:
        return []
    if not ordered:
        rows = sorted(rows)  # type: ignore[type-var]  # tuples of bytes and ints
    sha1 = None if kind == "partial" else sha1_for(sum(map(itemgetter(1), rows)))
    if workers <= 1 or len(rows) <= 1:
        return digest_keys(root, rows, kind, errors, sha1=sha1)
    if kind == "partial" and hasattr(os, "RWF_NOWAIT"):
        return _cached_first(root, rows, workers, quiet, errors)
    # Threads pay off only when there is real reading to share out.
    limit = 16 * CHUNK
    if kind == "partial":
        small = len(rows) * 2 * PARTIAL_BLOCK <= limit or sum(
            map(min, map(itemgetter(1), rows), repeat(2 * PARTIAL_BLOCK))) <= limit
    else:
        small = sum(map(itemgetter(1), rows)) <= limit
    if small:
        return digest_keys(root, rows, kind, errors, sha1=sha1)
    from weaklabel.images.inventory_db import progress_bar

    # One job per file cost more than reading a 4 KiB block: each job digests a batch.
    size = max(1, min(256, len(rows) // (workers * 4)))
    results: list[str | None] = []
    pool = Threads(workers)
    try:
        with progress_bar(quiet, total=len(rows), desc=f"sha1 ({kind})",
                          unit="file") as bar:
            jobs = [pool.submit(digest_keys, root, rows[i:i + size], kind, errors, None,
                                sha1) for i in range(0, len(rows), size)]
            for job in jobs:
                done = job.result()
                results.extend(done)
                bar.update(len(done))
    finally:
        pool.shutdown(cancel=True)  # all done, or stopped: no job left to start
    return results


class Job:
    """One call run by :class:`Threads`: :meth:`result` waits for it."""

    __slots__ = ("args", "done", "error", "fn", "then", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...],
                 then: Callable[[], None] | None) -> None:
        import threading

        self.fn, self.args, self.then = fn, args, then
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def result(self) -> Any:
        """The call's value, once it returned; its exception, raised here, if it raised."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


class Threads:
    """``workers`` threads running :class:`Job` s in the order submitted: what
    ``concurrent.futures.ThreadPoolExecutor`` did here, without its import (~15 CPU ms:
    it loads ``logging``, which loads ``re``), paid by every run whose first file
    missed the page cache. ``threading`` and ``queue`` cost ~0.5 ms."""

    def __init__(self, workers: int) -> None:
        import threading
        from queue import SimpleQueue

        self._jobs: SimpleQueue[Job | None] = SimpleQueue()
        self._cancelled = False
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"weaklabel-digest-{i}")
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self._cancelled:
                    raise RuntimeError("cancelled: the run stopped")
                job.value = job.fn(*job.args)
                if job.then is not None:
                    job.then()  # a failing follow-up (a progress bar on a closed pipe)
                    # is the job's error, never the end of this thread
            except BaseException as exc:  # handed to the caller by Job.result
                job.error = exc
            finally:
                job.done.set()

    def submit(self, fn: Callable[..., Any], *args: Any,
               then: Callable[[], None] | None = None) -> Job:
        """Queue ``fn(*args)``; ``then()`` runs in the thread once it returned."""
        job = Job(fn, args, then)
        self._jobs.put(job)
        return job

    def shutdown(self, *, cancel: bool = False) -> None:
        """Let the threads finish (``cancel``: skip the jobs not started) and join them."""
        self._cancelled = self._cancelled or cancel
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()


STEP = 512
"""Files this thread reads from the page cache between hand-overs to the threads."""
HAND_OVER = 64
"""Files that wait for the disk gathered before a thread takes them (fewer, at the
end, are read here when no thread was needed)."""


def _cached_first(root: str, rows: Sequence[Sequence[Any]], workers: int, quiet: bool,
                  errors: dict[bytes, str]) -> list[str | None]:
    """Partial digests: the page cache's files here, the others by ``workers`` threads
    (:func:`read_digests`)."""
    from weaklabel.images.inventory_db import progress_bar

    results: list[str | None] = []
    handed: list[tuple[list[int], Job]] = []
    pending: list[int] = []
    ex: Threads | None = None
    bar = progress_bar(quiet, total=len(rows), desc="sha1 (partial)", unit="file")

    def hand_over(idx: list[int]) -> None:
        nonlocal ex
        if ex is None:
            ex = Threads(workers)
        n = len(idx)
        job = ex.submit(digest_keys, root, [rows[i] for i in idx], "partial", errors,
                        then=lambda: bar.update(n))
        handed.append((idx, job))

    try:
        for start in range(0, len(rows), STEP):
            chunk = rows[start:start + STEP]
            later: list[int] = []
            results += digest_keys(root, chunk, "partial", errors, later)
            bar.update(len(chunk) - len(later))
            pending += [start + i for i in later]
            if len(pending) >= HAND_OVER:
                hand_over(pending)
                pending = []
        if pending and ex is not None:
            hand_over(pending)
        elif pending:
            for i, d in zip(pending, digest_keys(root, [rows[i] for i in pending],
                                                 "partial", errors), strict=True):
                results[i] = d
            bar.update(len(pending))
        for idx, job in handed:
            for i, d in zip(idx, job.result(), strict=True):
                results[i] = d
    finally:
        if ex is not None:
            ex.shutdown(cancel=True)  # all done, or stopped: no job left to start
        bar.close()
    return results
