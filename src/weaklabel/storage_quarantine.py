"""The quarantine in the bucket: purge and dedup ``--apply`` on an ``s3://`` image root.

The stages examine the workspace's mirror of the bucket (``storage/mirror/<tag>``). When
:mod:`weaklabel.images.quarantine` moves a mirrored file it asks :func:`remote_for`
whether the folder mirrors a bucket; if so the object moves first, inside the bucket, to
``ROOT/.weaklabel-quarantine/<run>/<key>`` (a prefix the listing never returns), and then
the mirrored file moves as on disk. S3 has no rename: a move is a server-side copy, a
check that the copy has the original's size and ETag, and only then the delete of the
original. Nothing is deleted that has no verified copy.

The journal record of the move carries a ``remote`` part (the root's URL, its endpoint
and both keys), so :func:`settle` can finish or undo an interrupted move from what the
bucket holds, and ``restore`` moves the object back the same way (never over an object
that has reappeared at its key). The workspace's object state follows every move, so the
next sync neither fetches a quarantined object nor fetches a restored one again.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weaklabel.storage import QUARANTINE_PREFIX, STATE, ObjectInfo, ObjectState, open_fs

log = logging.getLogger(__name__)

MOVE_WORKERS = 16
"""Bucket moves in flight at once by default (``storage.fetch_workers`` in the stages):
each is four requests that mostly wait on the network."""


@dataclass
class RemoteRoot:
    """An image root in a bucket whose objects the workspace mirrors."""

    url: str
    endpoint: str | None
    ws_root: Path

    def record(self, rel: str, run: str) -> dict[str, Any] | str:
        """The ``remote`` part of the journal record that moves ``rel`` into quarantine,
        or why it must not move (the object changed or went since it was fetched)."""
        state = ObjectState(self.ws_root / STATE)
        try:
            known = state.get(self.url, rel)
        finally:
            state.close()
        if known is None:
            return "the workspace does not know this object; run the stage again"
        now = _info(self.url, self.endpoint, rel)
        if now is None:
            return "gone from the bucket"
        if now != known:
            return "changed in the bucket since it was fetched"
        return {"url": self.url, "endpoint": self.endpoint, "src": rel,
                "dst": f"{QUARANTINE_PREFIX}/{run}/{rel}", "size": known[0],
                "etag": known[1]}


def remote_for(root: Path | str, ws_root: Path | str) -> RemoteRoot | None:
    """The bucket that ``root`` mirrors (a folder ``WORKSPACE/storage/mirror/<tag>`` that
    a sync made), or None for a plain folder."""
    from weaklabel.storage import MIRROR

    mirrors = os.path.realpath(os.path.join(ws_root, MIRROR))
    real = os.path.realpath(root)
    if os.path.dirname(real) != mirrors or not os.path.exists(os.path.join(ws_root, STATE)):
        return None
    state = ObjectState(Path(ws_root) / STATE)
    try:
        found = state.mirror_of(os.path.basename(real))
    finally:
        state.close()
    if found is None:
        return None
    return RemoteRoot(url=found[0], endpoint=found[1], ws_root=Path(ws_root))


@functools.lru_cache(maxsize=8)
def _fs(url: str, endpoint: str | None) -> tuple[Any, str]:
    # One client per root for a whole run of moves, not one per request.
    return open_fs(url, endpoint_url=endpoint)


def _info(url: str, endpoint: str | None, key: str) -> tuple[int, str] | None:
    from weaklabel.storage import _etag

    fs, root = _fs(url, endpoint)
    try:
        info = fs.info(f"{root}/{key}")
    except FileNotFoundError:
        return None
    if info.get("type") == "directory":
        return None
    return int(info.get("size") or 0), _etag(info)


def exists(rem: dict[str, Any], key: str) -> bool:
    """Whether the bucket of a journal record's ``remote`` part holds ``key``."""
    return _info(rem["url"], rem["endpoint"], key) is not None


def _same(got: tuple[int, str] | None, size: int, etag: str) -> bool:
    # A server-side copy keeps a single-part object's ETag (its MD5); a multipart
    # object's ETag ("…-N") depends on the part sizes, so only its size can be compared.
    if got is None or got[0] != size:
        return False
    return "-" in etag or got[1] == etag


def move(rem: dict[str, Any]) -> None:
    """Move ``rem["src"]`` to ``rem["dst"]`` inside the bucket: copy, verify, delete.

    Raises:
        OSError: the copy failed or does not verify (the original is left in place), or
            an object already sits at the destination.
    """
    fs, root = _fs(rem["url"], rem["endpoint"])
    src, dst = f"{root}/{rem['src']}", f"{root}/{rem['dst']}"
    if _info(rem["url"], rem["endpoint"], rem["dst"]) is not None:
        raise OSError(errno.EEXIST, f"an object already exists at {rem['url']}/{rem['dst']}")
    try:
        fs.copy(src, dst)
    except FileNotFoundError as exc:
        raise OSError(errno.ENOENT, f"{rem['url']}/{rem['src']} is gone") from exc
    if not _same(_info(rem["url"], rem["endpoint"], rem["dst"]), rem["size"], rem["etag"]):
        fs.rm(dst)  # our own copy, and a wrong one: the original stays
        raise OSError(errno.EIO, f"the copy of {rem['url']}/{rem['src']} does not verify")
    fs.rm(src)


def reverse(rem: dict[str, Any]) -> dict[str, Any]:
    """The same move the other way (restore, or undoing a move)."""
    return {**rem, "src": rem["dst"], "dst": rem["src"]}


def settle(rem: dict[str, Any]) -> bool | None:
    """Finish an interrupted bucket move from what the bucket holds.

    Returns:
        True when the object is (now) at ``dst`` (its original at ``src`` deleted, or
        ``src`` holding another object uploaded since, which is left alone), False when
        it is still at ``src`` only (the move never happened), None when neither holds
        or both hold and the copy does not verify (both are left; nothing is deleted).
    """
    has_src = _info(rem["url"], rem["endpoint"], rem["src"])
    has_dst = _info(rem["url"], rem["endpoint"], rem["dst"])
    if has_dst is not None and has_src is None:
        return True
    if has_src is not None and has_dst is None:
        return False
    if has_src is not None and _same(has_dst, rem["size"], rem["etag"]):
        if _same(has_src, rem["size"], rem["etag"]):
            fs, root = _fs(rem["url"], rem["endpoint"])
            fs.rm(f"{root}/{rem['src']}")  # a verified copy sits at dst: finish the move
        # else the move finished and someone uploaded a new object at src since: the
        # new object is not ours to delete
        return True
    return None


def record_state(ws_root: Path | str, rem: dict[str, Any], *, quarantined: bool) -> None:
    """Keep the workspace's object state in step with a finished move: a quarantined
    object is no longer the root's, a restored one is again (with its size and ETag)."""
    state = ObjectState(Path(ws_root) / STATE)
    try:
        key = rem["src"] if quarantined else rem["dst"]
        if quarantined:
            state.drop(rem["url"], [key])
        else:
            got = _info(rem["url"], rem["endpoint"], key)
            if got is not None:
                state.put(rem["url"], [ObjectInfo(key, got[0], got[1])])
    finally:
        state.close()


def move_many(rems: list[dict[str, Any]], *, workers: int,
              before: Any = None, after: Any = None,
              pause: float = 0.0) -> list[BaseException | None]:
    """Bucket moves (:func:`move`) ``workers`` at a time, each journalled before it starts.

    A move is four requests (a HEAD of the destination, the server-side copy, a HEAD of
    the copy, the delete), network-bound: a bounded pool of threads keeps that many in
    flight. ``before(i)`` is called (under one lock, so a journal sees whole records)
    before move ``i`` starts, ``after(i, exc)`` once it is verified done (``exc`` None)
    or has failed; a crash leaves at most ``workers`` intents open, each settled from
    what the bucket holds (:func:`settle`) by the next run, as a single one is.
    ``pause`` seconds pass between a move's ``before`` and its start, outside the lock
    (tests use it to ``kill -9`` a run with several intents open).

    Returns:
        Per move, None or the exception it failed with (the original then stays).
    """
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()
    out: list[BaseException | None] = [None] * len(rems)

    def one(i: int) -> None:
        with lock:
            if before is not None:
                before(i)
        if pause:
            time.sleep(pause)
        try:
            move(rems[i])
        except Exception as exc:  # the store's own errors too: reported per move
            out[i] = exc
        with lock:
            if after is not None:
                after(i, out[i])

    with ThreadPoolExecutor(max(1, workers)) as ex:
        list(ex.map(one, range(len(rems))))
    return out
