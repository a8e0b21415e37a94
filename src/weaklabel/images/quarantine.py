"""Moving files out of the way without ever losing one.

Nothing is deleted. ``--apply`` moves each planned file to
``WORKSPACE/quarantine/<run_id>/<relative path>`` and appends to the journal
``WORKSPACE/quarantine/journal.jsonl``, one fsync'd JSON line per step::

    {"op": "intent", "id": "purge-20240101T120000:3", "action": "quarantine",
     "run": "purge-20240101T120000", "src": "/abs/orig", "dst": "/abs/quarantine/…",
     "rel": "20190303/a.jpg", "size": 1234, "mtime_ns": …, "sha1": "…"}
    {"op": "done", "id": "purge-20240101T120000:3"}
    {"op": "abort", "id": "…", "why": "…"}          (the move did not happen)

``restore`` writes the same pair with ``"action": "restore"`` and ``"of": <move id>``.

The invariant: after any interruption (Ctrl-C, ``kill -9``, power loss) each file is in
its original place or in quarantine, and an intent without its ``done``/``abort`` is
settled by :func:`recover` at the start of the next run, from what is on disk. Within
one file system a move is one ``os.rename`` (atomic). Across file systems the file is
copied to ``dst.weaklabel-part``, fsync'd, verified by SHA-1, renamed to ``dst`` and only
then is the source unlinked; recovery finishes or undoes that sequence.

Right before each move the file is checked again (size, mtime, SHA-1 when the plan
knows it) and, for a duplicate, its group's kept copy too: a group whose kept copy has
changed or gone is cancelled, so every group keeps at least one file in place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.containment import is_inside, stays_inside
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace

if TYPE_CHECKING:
    from weaklabel.config import Config

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
JOURNAL = "journal.jsonl"
PART = ".weaklabel-part"
DELAY_ENV = "WEAKLABEL_MOVE_DELAY"
"""Seconds to sleep inside each move (tests use it to ``kill -9`` a run mid-way)."""


@dataclass(frozen=True)
class Move:
    """One planned move of ``src`` (relative to the image root) into quarantine.

    ``kept`` and its ``kept_*`` facts name the copy that must still be there, unchanged,
    for the move to go ahead (dedup); they are None for purge.
    """

    src: str
    size: int
    mtime_ns: int
    sha1: str | None = None
    reason: str = ""
    group: int | None = None
    kept: str | None = None
    kept_size: int | None = None
    kept_mtime_ns: int | None = None
    kept_sha1: str | None = None


@dataclass
class ApplyReport:
    """What an apply run did: moved paths and cancelled ``(path, why)`` pairs."""

    run_id: str
    moved: list[str] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    recovered: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """Moves that the system refused (a full disk, permissions): the run failed."""


def plan_moves(moves: Iterable[Move]) -> list[Move]:
    """Validate and order a plan: sorted by group then path, never moving a kept file.

    Raises:
        ValueError: a path is both kept and moved, or planned twice (a bug upstream).
    """
    plan = sorted(moves, key=lambda m: (m.group if m.group is not None else -1, m.src))
    srcs = [m.src for m in plan]
    if len(set(srcs)) != len(srcs):
        raise ValueError("a file is planned to move twice")
    kept = {m.kept for m in plan if m.kept is not None}
    if kept & set(srcs):
        raise ValueError(f"plan would move a kept file: {sorted(kept & set(srcs))[:3]}")
    return plan


# --- journal -----------------------------------------------------------------------------


def quarantine_dir(ws: Workspace) -> Path:
    return ws.path(QUARANTINE)


class Journal:
    """Append-only, fsync'd JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size:
            _drop_torn_tail(path)
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run

    def write(self, record: dict[str, Any]) -> None:
        # ensure_ascii keeps surrogate-escaped (non-UTF-8) names as \udcXX: reversible.
        try:
            self._f.write(json.dumps(record, ensure_ascii=True, sort_keys=True) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:  # a full disk: say which file could not be written
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def close(self) -> None:
        self._f.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a crash tore mid-write, once, so it is never read again.

    Only the line being written can tear. Its step is settled from the disk by
    :func:`recover` (an intent that was torn was never acted on; a torn ``done`` leaves
    its intent open), so the fragment carries nothing to keep.
    """
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(max(0, end - 1))
        if f.read(1) == b"\n":
            return
        pos = end
        while pos > 0:
            step = min(pos, 1 << 16)
            f.seek(pos - step)
            block = f.read(step)
            i = block.rfind(b"\n")
            if i >= 0:
                pos = pos - step + i + 1
                break
            pos -= step
        log.warning("%s: dropped a journal line torn by an interrupted run", path)
        f.truncate(pos)
        f.flush()
        os.fsync(f.fileno())


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All records; a line torn by a crash while it was written is skipped."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            # Only a crash mid-write tears a line; its step is settled by recover().
            log.warning("%s:%d: ignoring a torn journal line", path, n)
    return out


def _open_intents(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    settled = {r["id"] for r in records if r.get("op") in ("done", "abort")}
    return [r for r in records if r.get("op") == "intent" and r["id"] not in settled]


def _sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(ws: Workspace) -> int:
    """Settle every intent left open by an interrupted run; return how many.

    Decided from the disk: destination there and source gone → done; source there and
    destination absent → abort (the move never happened); both there (a cross-device
    copy that was not yet unlinked) → finish it if the copy verifies, else drop the copy.
    """
    jpath = quarantine_dir(ws) / JOURNAL
    records = read_journal(jpath)
    todo = _open_intents(records)
    if not todo:
        return 0
    journal = Journal(jpath)
    try:
        for r in todo:
            src, dst = r["src"], r["dst"]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst + PART)
            if r.get("remote") is not None:  # an object in a bucket: its mirror follows it
                journal.write(_recover_remote(ws, r))
                continue
            has_src, has_dst = os.path.lexists(src), os.path.lexists(dst)
            if has_dst and not has_src:
                journal.write({"op": "done", "id": r["id"], "recovered": True})
            elif has_src and not has_dst:
                journal.write({"op": "abort", "id": r["id"], "why": "interrupted before moving"})
            elif has_src and has_dst:
                if r.get("sha1") and _sha1(dst) == r["sha1"] and _sha1(src) == r["sha1"]:
                    os.unlink(src)  # a verified copy sits at dst: finish the move
                    journal.write({"op": "done", "id": r["id"], "recovered": True})
                else:
                    # Never delete a file whose twin does not verify: leave both, say so.
                    log.warning("%s: both %s and %s exist and differ; left both", r["id"],
                                src, dst)
                    journal.write({"op": "abort", "id": r["id"],
                                   "why": "source and destination both exist; left both"})
            else:
                log.warning("%s: neither %s nor %s exists (removed by someone else?)",
                            r["id"], src, dst)
                journal.write({"op": "abort", "id": r["id"], "why": "both paths missing"})
    finally:
        journal.close()
    log.info("recovered %d unfinished move(s) from %s", len(todo), jpath)
    return len(todo)


def _recover_remote(ws: Workspace, r: dict[str, Any]) -> dict[str, Any]:
    """Settle an open move of a bucket's object and its mirrored file: the bucket says
    where the object is (see :func:`weaklabel.storage_quarantine.settle`), the mirror
    is brought to the same side, and the step is closed."""
    from weaklabel import storage_quarantine as sq

    rem, src, dst = r["remote"], r["src"], r["dst"]
    where = sq.settle(rem)
    if where is None:
        log.warning("%s: the bucket holds %s/%s and %s in a state that does not verify; "
                    "left both", r["id"], rem["url"], rem["src"], rem["dst"])
        return {"op": "abort", "id": r["id"], "why": "bucket copy does not verify; left both"}
    # The object is on one side only; the mirrored file moves after it, so it is on the
    # same side or still on the other.
    here, there = (dst, src) if where else (src, dst)
    if os.path.lexists(there) and not os.path.lexists(here):
        _move_file(there, here, r.get("sha1") or _sha1(there))
    elif os.path.lexists(there) and r.get("sha1") and _sha1(there) == r["sha1"] \
            and _sha1(here) == r["sha1"]:
        os.unlink(there)
    if not where:
        return {"op": "abort", "id": r["id"], "why": "interrupted before moving"}
    sq.record_state(ws.root, rem, quarantined=r.get("action") == "quarantine")
    return {"op": "done", "id": r["id"], "recovered": True}


# --- moving ------------------------------------------------------------------------------


def _move_file(src: str, dst: str, sha1: str) -> None:
    """Atomic rename, or copy + fsync + verify + rename + unlink across devices."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.realpath(os.path.dirname(dst)) != os.path.dirname(dst):
        # A folder on the way was replaced by a symlink: the file would land elsewhere.
        raise OSError(errno.ELOOP, f"a folder on the way to {dst} is a symbolic link")
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        part = dst + PART
        try:
            with open(src, "rb") as fi, open(part, "wb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
                fo.flush()
                os.fsync(fo.fileno())
            shutil.copystat(src, part)
        except OSError as err:  # a full disk: leave no half copy behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise OSError(err.errno, err.strerror, part) from exc
        if _sha1(part) != sha1:
            os.unlink(part)
            raise OSError(errno.EIO, f"copy of {src} does not verify") from exc
        os.rename(part, dst)
        _fsync_dir(os.path.dirname(dst))
        os.unlink(src)
    _fsync_dir(os.path.dirname(dst))
    _fsync_dir(os.path.dirname(src))


def _move_both(src: str, dst: str, sha1: str, rem: dict[str, Any] | None) -> None:
    """Move the file; for a bucket's mirror the object first (copy, verify, delete), and
    back again when the file then cannot move, so both stay on the same side."""
    if rem is None:
        _move_file(src, dst, sha1)
        return
    from weaklabel import storage_quarantine as sq

    try:
        sq.move(rem)
    except OSError:
        raise
    except Exception as exc:  # the store's own errors (credentials, network): not moved
        raise OSError(errno.EIO, f"{rem['url']}/{rem['src']}: {exc}") from exc
    try:
        _move_file(src, dst, sha1)
    except OSError:
        sq.move(sq.reverse(rem))
        raise


def _unchanged(path: str, size: int | None, mtime_ns: int | None) -> str | None:
    """None when ``path`` is a regular file with that size and mtime, else why not."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "gone"
    except OSError as exc:
        return f"cannot stat ({exc.strerror})"
    if not os.path.isfile(path) or os.path.islink(path):
        return "no longer a regular file"
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        return "changed since it was examined"
    return None


OUTSIDE = "a folder on the way is a symbolic link, or the path leaves its root"


def checked_quarantine(ws: Workspace) -> str:
    """The resolved quarantine folder; it must be a real folder inside the workspace.

    Raises:
        WeaklabelError: ``WORKSPACE/quarantine`` is a symlink or leads out of it.
    """
    q = quarantine_dir(ws)
    ws_real = os.path.realpath(ws.root)
    if q.is_symlink() or not is_inside(os.path.realpath(q), ws_real):
        raise WeaklabelError(
            f"{q} is a symbolic link or leads out of the workspace; make it a plain "
            "folder (or remove it) so quarantined files stay in the workspace")
    return os.path.join(ws_real, QUARANTINE)


def _restore_paths(r: dict[str, Any], qreal: str, image_root: str | None
                   ) -> tuple[str, str] | str:
    """``(quarantined copy, original)`` of a journal record, both checked to be where
    the record says under their roots with no symlink on the way, the original under
    the workspace's image root (``image_root``, when its inventory names one); else
    why not."""
    rel, run = r.get("rel"), r.get("run")
    src, dst = r.get("dst"), r.get("src")
    if not all(isinstance(v, str) for v in (rel, run, src, dst)):
        return "damaged journal record"
    assert isinstance(rel, str) and isinstance(dst, str) and isinstance(src, str)
    root = r.get("root")
    if not isinstance(root, str):  # journals before the root was recorded
        root = dst[: -len(rel) - 1] if dst.endswith("/" + rel) else ""
    copy = stays_inside(qreal, f"{run}/{rel}")
    orig = stays_inside(root, rel) if root else None
    if copy is None or os.path.realpath(src) != copy:
        return f"quarantined copy {src} is not inside {qreal}; {OUTSIDE}"
    if orig is None or os.path.normpath(dst) not in (orig, os.path.join(
            os.path.normpath(root), *rel.split("/"))):
        return f"original path {dst}: {OUTSIDE}"
    if image_root is not None and not is_inside(orig, image_root):
        return f"original path {dst} is not under the image root {image_root}"
    return copy, orig


def new_run_id(ws: Workspace, stage: str) -> str:
    """``<stage>-<time to the second>``, with ``-2``, ``-3`` … when a folder or a journal
    record has that id already: a run killed before its first move made no folder, and
    the run that settles its intents may start within the same second; sharing its id,
    its moves and the killed run's were one run to ``restore``, which took one file back
    twice."""
    base = f"{stage}-{time.strftime('%Y%m%dT%H%M%S')}"
    used = {r.get("run") for r in read_journal(quarantine_dir(ws) / JOURNAL)}
    run, n = base, 1
    while run in used or (quarantine_dir(ws) / run).exists():
        n += 1
        run = f"{base}-{n}"
    return run


def apply_moves(
    root: Path, ws: Workspace, plan: list[Move], *, stage: str, quiet: bool = True,
    workers: int | None = None,
) -> ApplyReport:
    """Carry out a plan (the caller holds the workspace lock). Never deletes a file.

    Each move is checked first (the source, and a duplicate's kept copy, are still what
    the plan saw), then journalled as an intent *before* the file moves and marked done
    after (:func:`_move_journaled`), so a crash at any point is recovered by the next run.
    On a bucket's mirror the checked moves then go ``workers`` at a time
    (:func:`_move_bucket`, default :data:`~weaklabel.storage_quarantine.MOVE_WORKERS`);
    a root read in place first gets the planned files (and kept copies) written into its
    mirror folder, so they are checked, moved and restored as on a mirrored root.
    """
    from tqdm import tqdm

    recovered = recover(ws)
    run = new_run_id(ws, stage)
    report = ApplyReport(run, recovered=recovered)
    if not plan:
        return report
    qdir = Path(checked_quarantine(ws)) / run
    root_s = os.path.realpath(root)
    from weaklabel import storage_quarantine as sq

    remote = sq.remote_for(root, ws.root)  # a mirror of a bucket: the objects move too
    if remote is not None:
        from weaklabel.storage_inplace import materialize

        wanted = {m.src for m in plan} | {m.kept for m in plan if m.kept is not None}
        materialize(ws.root, root, sorted(wanted), any_status=True)
    journal = Journal(quarantine_dir(ws) / JOURNAL)
    cancelled_groups: dict[int, str] = {}
    checked_kept: set[str] = set()
    outcome: list[str | None] = [None] * len(plan)  # None: moved, else why not
    failed: set[int] = set()
    bucket: list[_Planned] = []
    try:
        for n, m in enumerate(tqdm(plan, desc="quarantine", unit="file",
                                   disable=True if quiet else None,
                                   file=__import__("sys").stderr)):
            if m.group is not None and m.group in cancelled_groups:
                outcome[n] = cancelled_groups[m.group]
                continue
            src = stays_inside(root_s, m.src)
            if src is None:
                outcome[n] = f"not moved: {OUTSIDE}"
                continue
            msg = _kept_problem(m, root_s, checked_kept)
            if msg is not None:
                if m.group is not None:
                    cancelled_groups[m.group] = msg
                outcome[n] = msg
                continue
            sha1, why = _source_problem(m, src)
            if sha1 is None:
                outcome[n] = why
                continue
            rem = None if remote is None else remote.record(m.src, run)
            if isinstance(rem, str):
                outcome[n] = f"not moved: {rem}"
                continue
            dst = os.path.join(os.fspath(qdir), m.src)
            if rem is not None:
                bucket.append(_Planned(n, m, src, dst, sha1, rem))
                continue
            outcome[n] = _move_journaled(journal, ws, m, mid=f"{run}:{n}", run=run,
                                         stage=stage, src=src, dst=dst, root_s=root_s,
                                         sha1=sha1, rem=None)
            if outcome[n] is not None:
                failed.add(n)
        if bucket:
            _move_bucket(journal, ws, bucket, run=run, stage=stage, root_s=root_s,
                         outcome=outcome, failed=failed,
                         workers=workers or sq.MOVE_WORKERS)
    finally:
        journal.close()
    for n, m in enumerate(plan):  # in plan order, whichever move finished first
        res = outcome[n]
        if res is None:
            report.moved.append(m.src)
            continue
        report.cancelled.append((m.src, res))
        if n in failed:
            report.failed.append((m.src, res))
    return report


@dataclass(frozen=True)
class _Planned:
    """A checked move of a bucket's object and its mirrored file, waiting for the pool."""

    n: int
    m: Move
    src: str
    dst: str
    sha1: str
    rem: dict[str, Any]


def _intent(m: Move, *, mid: str, run: str, stage: str, src: str, dst: str, root_s: str,
            sha1: str, rem: dict[str, Any] | None) -> dict[str, Any]:
    return {"op": "intent", "id": mid, "action": "quarantine", "run": run,
            "stage": stage, "src": src, "dst": dst, "rel": m.src, "root": root_s,
            "size": m.size, "mtime_ns": m.mtime_ns, "sha1": sha1,
            "reason": m.reason, **({"remote": rem} if rem else {})}


def _why(exc: OSError, src: str) -> str:
    why = f"not moved: {exc.strerror or exc}"
    if exc.filename and exc.filename != src:
        why += f" ({exc.filename})"
    return why


def _move_bucket(journal: Journal, ws: Workspace, todo: list[_Planned], *, run: str,
                 stage: str, root_s: str, outcome: list[str | None], failed: set[int],
                 workers: int) -> None:
    """The checked bucket moves on a pool of threads
    (:func:`weaklabel.storage_quarantine.move_many`), with the order of
    :func:`_move_journaled` kept per move: the intent is on disk before the object's
    copy starts; after the copy verified and the original is deleted, the mirrored file
    follows (the object goes back when the file cannot), the object state drops the key
    and only then is the move done. A crash leaves at most ``workers`` intents open,
    each settled by :func:`recover` from what the bucket holds."""
    from weaklabel import storage_quarantine as sq

    def before(i: int) -> None:
        p = todo[i]
        journal.write(_intent(p.m, mid=f"{run}:{p.n}", run=run, stage=stage, src=p.src,
                              dst=p.dst, root_s=root_s, sha1=p.sha1, rem=p.rem))

    def after(i: int, exc: BaseException | None) -> None:
        p = todo[i]
        mid = f"{run}:{p.n}"
        if exc is None:
            try:
                _move_file(p.src, p.dst, p.sha1)
            except OSError as err:
                try:
                    sq.move(sq.reverse(p.rem))
                except Exception as back:  # noqa: BLE001 - settled by the next run
                    # The object stays in quarantine, its file in the mirror: the intent
                    # stays open, and the next run's recover() brings the file after it.
                    log.warning("%s: %s, and the object could not go back (%s); the "
                                "next run settles it", mid, err, back)
                    outcome[p.n] = _why(err, p.src)
                    failed.add(p.n)
                    return
                exc = err
        if exc is not None:
            if not isinstance(exc, OSError):  # the store's own errors (credentials, network)
                exc = OSError(errno.EIO, f"{p.rem['url']}/{p.rem['src']}: {exc}")
            journal.write({"op": "abort", "id": mid, "why": str(exc)})
            outcome[p.n] = _why(exc, p.src)
            failed.add(p.n)
            return
        sq.record_state(ws.root, p.rem, quarantined=True)
        journal.write({"op": "done", "id": mid})

    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    sq.move_many([p.rem for p in todo], workers=workers, before=before, after=after,
                 pause=delay)


def _kept_problem(m: Move, root_s: str, checked_kept: set[str]) -> str | None:
    """Why the kept copy of ``m``'s duplicate group no longer stands (its whole group is
    then cancelled), or None. Each kept copy's content is hashed once per run."""
    if m.kept is None:
        return None
    kept = stays_inside(root_s, m.kept) or ""
    why = _unchanged(kept, m.kept_size, m.kept_mtime_ns)
    if why is None and m.kept_sha1 and m.kept not in checked_kept:
        why = None if _sha1(kept) == m.kept_sha1 else "kept copy's content changed"
        checked_kept.add(m.kept)
    return None if why is None else f"group cancelled: kept copy {m.kept} {why}"


def _source_problem(m: Move, src: str) -> tuple[str | None, str]:
    """``(sha1, "")`` when the file to move is still what the plan saw, else
    ``(None, why not)``."""
    why = _unchanged(src, m.size, m.mtime_ns)
    if why is not None:
        return None, f"not moved: {why}"
    try:
        sha1 = _sha1(src)
    except OSError as exc:
        return None, f"not moved: cannot read ({exc.strerror})"
    if m.sha1 is not None and sha1 != m.sha1:
        return None, "not moved: content changed"
    return sha1, ""


def _move_journaled(journal: Journal, ws: Workspace, m: Move, *, mid: str, run: str,
                    stage: str, src: str, dst: str, root_s: str, sha1: str,
                    rem: Any) -> str | None:
    """Journal the intent, move the file (and its object), journal done; None on
    success, else why not (the intent is then aborted in the journal).

    The intent is written and flushed *before* the move: the crash-safety of the
    quarantine rests on this order (see :func:`recover`)."""
    journal.write(_intent(m, mid=mid, run=run, stage=stage, src=src, dst=dst,
                          root_s=root_s, sha1=sha1, rem=rem))
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    try:
        _move_both(src, dst, sha1, rem)
    except OSError as exc:
        journal.write({"op": "abort", "id": mid, "why": str(exc)})
        return _why(exc, src)
    if rem:
        from weaklabel import storage_quarantine as sq

        sq.record_state(ws.root, rem, quarantined=True)
    journal.write({"op": "done", "id": mid})
    return None


# --- restore -----------------------------------------------------------------------------


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    recovered: int = 0


@dataclass(frozen=True)
class RestoreSummary(Summary):
    """What :func:`run_restore` put back, and the ``(path, why)`` pairs it left."""

    restored: tuple[str, ...] = ()
    conflicts: tuple[tuple[str, str], ...] = ()
    recovered: int = 0

    def text(self) -> str:
        out = f"restored {len(self.restored)} file(s)"
        if self.conflicts:
            out += f", {len(self.conflicts)} not restored"
        return out


def quarantined(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Move intents that are done and not yet restored, in journal order."""
    done = {r["id"] for r in records if r.get("op") == "done"}
    restored = {r["of"] for r in records
                if r.get("op") == "intent" and r.get("action") == "restore" and r["id"] in done}
    for r in records:
        if (r.get("op") == "intent" and r.get("action") == "quarantine" and r["id"] in done
                and r["id"] not in restored):
            yield r


def run_restore(ws: Workspace, cfg: Config | None = None, *, force: bool = False,
                progress: bool = True, run: str | None = None) -> StageReport[RestoreSummary]:
    """Put quarantined files back where they were (all runs, or one ``run``).

    A file that has reappeared at its original path is never overwritten: it is reported
    as a conflict and its quarantined copy stays where it is. The stage writes no
    artifact (the journal is its record), so it is never up to date: it runs under
    :meth:`Workspace.stage` for the lock and the timing; ``cfg``, ``force`` and
    ``progress`` are accepted for the contract and change nothing.

    Raises:
        WeaklabelError: the workspace does not exist, or ``run`` is not in the journal.
    """
    if not ws.root.exists():
        raise WeaklabelError(f"workspace {ws.root} does not exist")
    with ws.stage("restore", outputs=(), params={"run": run}, inputs={},
                  summary=RestoreSummary, force=True) as st:
        report = _restore(ws, run)
        st.done(RestoreSummary(tuple(report.restored), tuple(report.conflicts),
                               report.recovered))
    return st.report


def _restore(ws: Workspace, run: str | None) -> RestoreReport:
    """The body of :func:`run_restore`, under its lock."""
    report = RestoreReport(recovered=recover(ws))
    jpath = quarantine_dir(ws) / JOURNAL
    records = read_journal(jpath)
    runs = {r["run"] for r in records if r.get("action") == "quarantine"}
    if run is not None and run not in runs:
        known = ", ".join(sorted(runs)) or "none"
        raise WeaklabelError(f"run {run!r} is not in {jpath}; known runs: {known}")
    todo = [r for r in quarantined(records) if run is None or r["run"] == run]
    if not todo:
        return report
    journal = Journal(jpath)
    stamp = f"restore-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        qreal = checked_quarantine(ws)
        from weaklabel.containment import inventory_root

        bound = inventory_root(os.fspath(ws.root))
        for n, r in enumerate(reversed(todo)):
            paths = _restore_paths(r, qreal, bound)
            if isinstance(paths, str):
                report.conflicts.append((str(r.get("rel")), f"not restored: {paths}"))
                continue
            src, dst = paths  # back from quarantine to the original
            if os.path.lexists(dst):
                report.conflicts.append((r["rel"], "a file is back at the original path; "
                                         f"quarantined copy left at {src}"))
                continue
            if not os.path.lexists(src):
                report.conflicts.append((r["rel"], f"quarantined copy {src} is missing"))
                continue
            back = None
            if r.get("remote") is not None:
                from weaklabel import storage_quarantine as sq

                back = sq.reverse(r["remote"])
                if sq.exists(back, back["dst"]):
                    report.conflicts.append((r["rel"], "an object is back at "
                                             f"{back['url']}/{back['dst']}; quarantined "
                                             f"object left at {back['src']}"))
                    continue
            rid = f"{stamp}:{n}"
            journal.write({"op": "intent", "id": rid, "action": "restore", "of": r["id"],
                           "run": r["run"], "src": src, "dst": dst, "rel": r["rel"],
                           "size": r.get("size"), "sha1": r.get("sha1"),
                           **({"remote": back} if back else {})})
            try:
                _move_both(src, dst, r.get("sha1") or _sha1(src), back)
                if back:
                    sq.record_state(ws.root, back, quarantined=False)
            except OSError as exc:
                journal.write({"op": "abort", "id": rid, "why": str(exc)})
                report.conflicts.append((r["rel"], f"cannot restore: {exc}"))
                continue
            journal.write({"op": "done", "id": rid})
            report.restored.append(r["rel"])
    finally:
        journal.close()
    _prune_empty_dirs(quarantine_dir(ws))
    return report


def _prune_empty_dirs(top: Path) -> None:
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        if Path(dirpath) != top:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
