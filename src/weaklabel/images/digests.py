"""Content digests for exact duplicates: a partial SHA-1 (first and last 4 KiB) for
files whose size collides, a full SHA-1 only where the partial one collides too."""

from __future__ import annotations

import hashlib
import os

from weaklabel.images.walk import open_regular

PARTIAL_BLOCK = 4096  # as jdupes: a page at each end tells most same-size files apart
CHUNK = 1 << 20

DigestJob = tuple[str, str, int, str]
"""``(rel, abspath, size, kind)``; ``kind`` is ``partial`` or ``full``."""
DigestResult = tuple[str, str | None, str | None, str]
"""``(rel, partial, full, error)``: digests as hex (None: not computed), or why not."""


def partial_digest(path: str, size: int, rel: str | None = None) -> tuple[str, str | None]:
    """SHA-1 of the first and last 4 KiB (and the size); also the full SHA-1 when those
    cover the whole file, so a small file is read once."""
    h = hashlib.sha1(str(size).encode())
    with open_regular(path, rel) as f:
        if size <= 2 * PARTIAL_BLOCK:
            data = f.read()
            h.update(data)
            return h.hexdigest(), hashlib.sha1(data).hexdigest()
        h.update(f.read(PARTIAL_BLOCK))
        f.seek(-PARTIAL_BLOCK, os.SEEK_END)
        h.update(f.read(PARTIAL_BLOCK))
    return h.hexdigest(), None


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


def bytes_to_read(jobs: list[DigestJob]) -> int:
    """How many bytes the jobs read at most."""
    return sum(min(size, 2 * PARTIAL_BLOCK) if kind == "partial" else size
               for _, _, size, kind in jobs)
