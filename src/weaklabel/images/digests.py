"""Content digests for exact duplicates: a partial digest (first and last 4 KiB) for
files whose size collides, a full SHA-1 only where the partial one collides too."""

from __future__ import annotations

import hashlib
import os
import zlib

from weaklabel.images.walk import open_fd, open_regular

PARTIAL_BLOCK = 4096  # as jdupes: a page at each end tells most same-size files apart
CHUNK = 1 << 20

DigestJob = tuple[str, str, int, str]
"""``(rel, abspath, size, kind)``; ``kind`` is ``partial`` or ``full``."""
DigestResult = tuple[str, str | None, str | None, str]
"""``(rel, partial, full, error)``: digests as hex (None: not computed), or why not."""


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


def full_digest(path: str, rel: str | None = None) -> str:
    """SHA-1 of the whole file, read in 1 MiB chunks."""
    h = hashlib.sha1()
    with open_regular(path, rel) as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def digest_job(job: DigestJob) -> DigestResult:
    """One :data:`DigestJob`; a file that cannot be read gives the error, never raises."""
    rel, abspath, size, kind = job
    try:
        if kind == "partial":
            part, full = partial_digest(abspath, size, rel)
            return rel, part, full, ""
        return rel, None, full_digest(abspath, rel), ""
    except OSError as exc:
        return rel, None, None, f"cannot read: {exc.strerror or exc}"


def digest_batch(jobs: list[DigestJob]) -> list[DigestResult]:
    """:func:`digest_job` over a batch (one thread-pool task)."""
    return [digest_job(j) for j in jobs]


def bytes_to_read(jobs: list[DigestJob]) -> int:
    """How many bytes the jobs read at most."""
    return sum(min(size, 2 * PARTIAL_BLOCK) if kind == "partial" else size
               for _, _, size, kind in jobs)
