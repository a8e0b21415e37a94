"""``weaklabel export``: the sample as an ImageFolder tree, a Ground Truth manifest and a CSV.

Splits are stratified by label and decided per *unit*: an image, or every sampled image
of one exact/near duplicate group (``duplicates.csv``), so no group straddles train and
val/test. Within a label the units are ordered by ``sha1(seed, first image path)`` and
cut by the fractions (largest remainder; train gets at least one unit), so a seed gives
the same split whatever the row order.

Label indices follow the sorted label ids, the order torchvision's ``ImageFolder``
gives the same folders, so ``classes.json``, the manifest and the tree agree.

The manifest's ``creation-date`` must not change from run to run; it is, in order: the
``--creation-date`` option, the newest ``created_at`` in ``posts.parquet``, the newest
date folder (``YYYYMMDD``) among the exported images, else ``1970-01-01T00:00:00``.
The run time is written only to the ledger ``OUT/.weaklabel-export.json``.

Safety: the export is built in a hidden folder beside ``OUT`` and moved in at the end,
so a failed run leaves ``OUT`` as it was. A non-empty ``OUT`` is refused; with
``--force`` only files listed in the ledger of an earlier export are replaced, and any
other file in ``OUT`` makes the export stop before it writes anything.

Containment: only images that the inventory (``purge``/``dedup``) saw as ``ok`` files
under the image root are exported, and each is checked again when it is linked or
copied (reached without following a symlink, a regular file, the same size, time and
inode as inventoried). Every image left out is listed in ``export.rejects.csv``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel import __version__
from weaklabel.containment import display_path
from weaklabel.dataset.contracts import DATASET, EXPORT_REJECTS, LEDGER, SAMPLE, SPLITS
from weaklabel.errors import WeaklabelError
from weaklabel.images.exact import is_date
from weaklabel.stage import StageReport, Summary
from weaklabel.tables import format_table, write_rows_csv
from weaklabel.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.config import Config, ExportConfig

log = logging.getLogger(__name__)

FORMATS = ("imagefolder", "manifest", "csv")
LINK_MODES = ("hardlink", "copy", "symlink")
DEFAULT_CREATION_DATE = "1970-01-01T00:00:00.000000"
_FALLBACK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I)
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
IMAGEFOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff",
                          ".webp")
"""The extensions torchvision's ``ImageFolder`` takes by default (its ``IMG_EXTENSIONS``)."""
_USUAL_EXTENSION = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "TIFF": ".tif",
                    "PPM": ".ppm", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}
"""The extension given to an image whose name does not say its format; any other format
gets the first of Pillow's extensions for it, in sorted order."""


# --- pure functions ------------------------------------------------------------------------


def parse_split(value: str | Sequence[float]) -> tuple[float, ...]:
    """Split fractions (train[, val[, test]]) from ``"0.8,0.1,0.1"`` or a sequence.

    Raises:
        WeaklabelError: not 1–3 numbers, a negative one, or a sum other than 1.
    """
    if isinstance(value, str):
        try:
            parts = tuple(float(v) for v in value.split(",") if v.strip())
        except ValueError as exc:
            raise WeaklabelError(f"--split {value!r} must be numbers like 0.8,0.1,0.1") from exc
    else:
        parts = tuple(float(v) for v in value)
    if not 1 <= len(parts) <= len(SPLITS):
        raise WeaklabelError(f"split {value!r} needs 1 to 3 fractions (train,val,test)")
    if any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise WeaklabelError(
            f"split fractions {', '.join(map(str, parts))} must be >= 0 and add up to 1")
    return parts


def allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Cut ``n`` units by ``fractions`` (largest remainder); train gets at least one.

    Example:
        >>> allocate(10, (0.8, 0.1, 0.1))
        [8, 1, 1]
    """
    raw = [n * f for f in fractions]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    if n and fractions[0] > 0 and counts[0] == 0:
        j = max(range(1, len(counts)), key=lambda i: (counts[i], -i))
        counts[j] -= 1
        counts[0] += 1
    return counts


def _unit_hash(seed: int, key: str) -> str:
    return hashlib.sha1(f"{seed}\0{key}".encode("utf-8", "surrogateescape")).hexdigest()


def assign_splits(
    df: pd.DataFrame,
    *,
    fractions: Sequence[float],
    seed: int,
    groups: Mapping[str, int] | None = None,
) -> pd.Series:
    """A split name per row of ``df`` (``image``, ``label``), stratified by label.

    Args:
        df: one row per image.
        fractions: train, val, test shares (see :func:`parse_split`).
        seed: the shuffle seed; the result depends on it, never on row order.
        groups: image → duplicate group id; the sampled images of a group form one unit
            and share a split. A unit counts under its most frequent label (ties: the
            smallest label id).

    Returns:
        Split names aligned with ``df.index``.
    """
    import pandas as pd

    groups = groups or {}
    unit_of = [f"g{groups[i]}" if i in groups else f"i{i}" for i in df["image"]]
    members: dict[str, list[tuple[str, str]]] = {}
    for u, img, lab in zip(unit_of, df["image"], df["label"], strict=True):
        members.setdefault(u, []).append((img, lab))
    by_label: dict[str, list[tuple[str, str]]] = {}
    for u, items in members.items():
        votes: dict[str, int] = {}
        for _, lab in items:
            votes[lab] = votes.get(lab, 0) + 1
        lab = min(votes, key=lambda k: (-votes[k], k))
        by_label.setdefault(lab, []).append((_unit_hash(seed, min(i for i, _ in items)), u))
    split_of: dict[str, str] = {}
    for _lab, units in by_label.items():
        units.sort()
        counts = allocate(len(units), fractions)
        pos = 0
        for name, c in zip(SPLITS, counts, strict=False):
            for _, u in units[pos:pos + c]:
                split_of[u] = name
            pos += c
    return pd.Series([split_of[u] for u in unit_of], index=df.index, dtype=object)


def check_label_dirname(label: str) -> None:
    """Raise :class:`WeaklabelError` when ``label`` cannot safely be a folder name.

    Refused: empty, ``.``/``..``, a path separator, NUL or another control character,
    a leading dot, a trailing dot or space, ``<>:"|?*`` and Windows-reserved names
    (``CON``, ``NUL``, ``COM1``…), and names over 255 bytes.
    """
    why = None
    if not label or not label.strip():
        why = "it is empty"
    elif label in (".", ".."):
        why = "it is a relative folder reference"
    elif "/" in label or "\\" in label:
        why = "it contains a path separator"
    elif any(ord(c) < 32 or ord(c) == 127 for c in label):
        why = "it contains a control character"
    elif label.startswith("."):
        why = "a leading dot makes a hidden folder"
    elif label.endswith((".", " ")):
        why = "Windows drops a trailing dot or space"
    elif _BAD_NAME_CHARS.search(label):
        why = 'it contains one of <>:"|?*'
    elif _WINDOWS_RESERVED.match(label):
        why = "it is a reserved device name on Windows"
    elif len(label.encode("utf-8", "surrogateescape")) > 255:
        why = "it is longer than 255 bytes"
    if why:
        raise WeaklabelError(
            f"label {label!r} cannot be a folder name ({why}); rename it in the label map "
            "and re-run weaklabel propagate")


def _date_of(path: str) -> str | None:
    for part in path.split("/")[:-1]:
        if is_date(part):
            return part
    return None


@functools.cache  # once per format, not once per image of a million
def format_extensions(fmt: str) -> tuple[str, ...]:
    """Pillow's extensions for the format ``fmt`` (``JPEG`` → ``.jfif .jpe .jpeg .jpg``),
    sorted; an MPO (a phone camera's multi-picture JPEG) also takes JPEG's."""
    from PIL import Image

    fmts = {fmt, "JPEG"} if fmt == "MPO" else {fmt}
    return tuple(sorted(e for e, f in Image.registered_extensions().items() if f in fmts))


def format_extension(name: str, fmt: str | None) -> str:
    """The extension to append to ``name`` so that it says the image's real format
    ``fmt``, or ``""`` when its own extension (case-insensitive) is one of the format's,
    or the format is unknown. Of a format ImageFolder takes, only the extensions it
    takes count (a JPEG's ``.jfif`` or ``.jpe`` would be skipped).

    Example:
        >>> format_extension("abc123", "JPEG"), format_extension("x.png", "JPEG")
        ('.jpg', '.jpg')
        >>> format_extension("x.JPEG", "JPEG"), format_extension("x.jfif", "JPEG")
        ('', '.jpg')
    """
    if not fmt:
        return ""
    exts = format_extensions(fmt)
    taken = tuple(e for e in exts if e in IMAGEFOLDER_EXTENSIONS) or exts
    if not exts or os.path.splitext(name)[1].lower() in taken:
        return ""
    return _USUAL_EXTENSION.get(fmt, taken[0])


def base_name(image: str, fmt: str | None = None) -> str:
    """``<date>_<basename>`` (or ``<folders>_<basename>``), made safe as a file name.

    When ``fmt`` (the image's Pillow format, read from its bytes) is given and the
    name's extension is not one of that format's, the format's usual extension is
    appended, so that loaders that go by the extension (torchvision's ``ImageFolder``,
    Keras) take the image and the original name stays visible.

    Example:
        >>> base_name("20190303/a.jpg")
        '20190303_a.jpg'
        >>> base_name("20190303/a.png", "JPEG")
        '20190303_a.png.jpg'
    """
    parts = display_path(image).split("/")
    prefix = _date_of(image) or "_".join(p for p in parts[:-1] if p not in ("", "."))
    name = f"{prefix}_{parts[-1]}" if prefix else parts[-1]
    name = _BAD_NAME_CHARS.sub("_", unicodedata.normalize("NFC", name)).lstrip(". ") or "image"
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 32:  # no extension a viewer knows: cut it as part of the name
        stem, ext = name, ""
    added = format_extension(name, fmt)
    if added:
        stem, ext = stem + ext, added
        name = stem + ext
    while len(name.encode()) > 200:
        stem = stem[:-1]
        name = stem + ext
    return name


def file_names(images: Sequence[str], formats: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """A unique file name per image of one folder (case-insensitive: safe on macOS).

    Images are named in two passes, each in sorted order (see :func:`base_name`;
    ``formats`` maps an image to its real format): first those whose name keeps its
    extension, then those that get one added, so that ``d/a.jpg`` keeps ``d_a.jpg``
    and a JPEG ``d/a`` is the one renamed. A name taken already gets the first 8 hex
    digits of the image path's SHA-1 before its extension.
    """
    formats = formats or {}
    out: dict[str, str] = {}
    taken: set[str] = set()
    named = {img: base_name(img, formats.get(img)) for img in images}
    for img in sorted(images, key=lambda i: (named[i] != base_name(i), i)):
        name = named[img]
        if name.casefold() in taken:
            stem, ext = os.path.splitext(name)
            h = hashlib.sha1(img.encode("utf-8", "surrogateescape")).hexdigest()
            name = f"{stem}_{h[:8]}{ext}"
            n = 2
            while name.casefold() in taken:
                name = f"{stem}_{h[:8]}_{n}{ext}"
                n += 1
        taken.add(name.casefold())
        out[img] = name
    return out


def escape_cell(value: Any) -> Any:
    """Prefix text a spreadsheet would run as a formula with ``'`` (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def creation_date_from(posts: pd.DataFrame | None, images: Sequence[str]) -> str:
    """The manifest's ``creation-date`` default (see the module docstring)."""
    import pandas as pd

    if posts is not None and "created_at" in posts and posts["created_at"].notna().any():
        with contextlib.suppress(ValueError, TypeError):
            ts = pd.to_datetime(posts["created_at"].dropna().astype(str), errors="coerce",
                                utc=True, format="mixed")
            if ts.notna().any():
                return ts.max().tz_convert(None).strftime("%Y-%m-%dT%H:%M:%S.%f")
    dates = [d for d in (_date_of(i) for i in images) if d]
    if dates:
        d = max(dates)
        return f"{d[:4]}-{d[4:6]}-{d[6:]}T00:00:00.000000"
    return DEFAULT_CREATION_DATE


def parse_creation_date(text: str) -> str:
    """Validate an ISO date or date-time and give it in Ground Truth's form."""
    from datetime import datetime, timezone

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WeaklabelError(
            f"--creation-date {text!r} is not an ISO date such as 2019-07-31T00:00:00"
        ) from exc
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


def manifest_line(
    *, source_ref: str, job: str, index: int, class_name: str, confidence: float,
    creation_date: str, split: str, human: bool = False,
) -> str:
    """One SageMaker Ground Truth image-classification output line (JSON, no newline)."""
    obj = {
        "source-ref": source_ref,
        job: index,
        f"{job}-metadata": {
            "class-name": class_name,
            "confidence": round(float(confidence), 4),
            "human-annotated": "yes" if human else "no",
            "type": "groundtruth/image-classification",
            "job-name": f"labeling-job/{job}",
            "creation-date": creation_date,
        },
        "split": split,
    }
    return json.dumps(obj, ensure_ascii=False)


def plan_export(
    sample: pd.DataFrame,
    *,
    fractions: Sequence[float],
    seed: int,
    groups: Mapping[str, int] | None = None,
    formats: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The sample with ``split``, ``label_index`` and ``path`` (relative to OUT), sorted.

    ``formats`` (image → Pillow format, from the inventory) gives each file name an
    extension that says its real format (see :func:`base_name`).

    Raises:
        WeaklabelError: a label that cannot be a folder name.
    """
    labels = sorted(set(sample["label"]))
    for lab in labels:
        check_label_dirname(lab)
    index = {lab: i for i, lab in enumerate(labels)}
    df = sample.assign(split=assign_splits(sample, fractions=fractions, seed=seed,
                                           groups=groups),
                       label_index=sample["label"].map(index).astype("int64"))
    paths: dict[str, str] = {}
    for (split, lab), g in df.groupby(["split", "label"], sort=True):
        for img, name in file_names(list(g["image"]), formats).items():
            paths[img] = f"{split}/{lab}/{name}"
    df = df.assign(path=df["image"].map(paths),
                   _s=df["split"].map({s: i for i, s in enumerate(SPLITS)}))
    df = df.sort_values(["_s", "label", "image"], kind="mergesort").drop(columns="_s")
    return df.reset_index(drop=True)


def count_imagefolder_skips(images: Sequence[str], paths: Sequence[str],
                            formats: Mapping[str, str]) -> dict[str, int]:
    """How many exported images torchvision's ``ImageFolder`` skips by default (their
    file name's extension is not in :data:`IMAGEFOLDER_EXTENSIONS`), per format. An
    image in a format ImageFolder takes is never among them: :func:`base_name` gives it
    one of that format's extensions ImageFolder takes.

    Example:
        >>> count_imagefolder_skips(["a.gif", "b"], ["train/x/a.gif", "train/x/b.jpg"],
        ...                         {"a.gif": "GIF", "b": "JPEG"})
        {'GIF': 1}
    """
    counts: dict[str, int] = {}
    for img, path in zip(images, paths, strict=True):
        ext = os.path.splitext(path)[1].lower()
        if not path or ext in IMAGEFOLDER_EXTENSIONS:
            continue
        fmt = formats.get(img)
        key = fmt if fmt is not None else f"unknown format as {ext or 'no extension'}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# --- files ---------------------------------------------------------------------------------


def place_file(root: Path | str, image: str, dst: Path, mode: str,
               expect: tuple[int, int, int, int]) -> str:
    """Hard-link, copy or symlink the image ``root/image`` to ``dst``, after checking it
    at this very moment; return the mode actually used.

    The file is reached folder by folder without following a symlink
    (:func:`~weaklabel.containment.open_beneath`), must be a regular file and must be
    the one the inventory saw: ``expect`` is its ``(size, mtime_ns, ino, dev)``. A
    hard link is checked again after it is made (same inode); a copy is read from the
    checked descriptor. A hard link that the file system refuses (another device, too
    many links, not supported) falls back to a copy.

    Raises:
        Escape: the file cannot be used; nothing is left at ``dst``.
    """
    from weaklabel.containment import Escape, open_beneath, open_file_beneath, stat_beneath

    with open_beneath(os.fspath(root), image) as (dir_fd, name):
        st = stat_beneath(dir_fd, name)
        _same(st, expect)
        if mode == "symlink":
            target = os.path.join(os.path.realpath(root), *image.split("/"))
            os.symlink(target, dst)
            return "symlink"
        if mode == "hardlink":
            try:
                os.link(name, dst, src_dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in _FALLBACK_ERRNOS:
                    raise
            else:
                got = os.lstat(dst)
                if (got.st_ino, got.st_dev) != (expect[2], expect[3]):
                    os.unlink(dst)  # swapped between the check and the link
                    raise Escape("changed while it was linked; re-run weaklabel purge")
                return "hardlink"
        fd = open_file_beneath(dir_fd, name)
        try:
            _same(os.fstat(fd), expect)
            with open(fd, "rb", closefd=False) as fi, open(dst, "xb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
    return "copy"


def _same(st: os.stat_result, expect: tuple[int, int, int, int]) -> None:
    from weaklabel.containment import Escape

    if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev) != tuple(expect):
        raise Escape("changed since the inventory saw it (size, time or inode); re-run "
                     "weaklabel purge")


def read_ledger(out: Path) -> dict[str, Any] | None:
    """The ledger of an earlier export in ``out``, or None."""
    p = out / LEDGER
    if not p.is_file() or p.is_symlink():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "weaklabel" else None


def _safe_rel(rel: Any) -> str | None:
    """A ledger entry as a relative path that stays inside OUT, else None."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\x00" in rel:
        return None
    norm = os.path.normpath(rel)
    if norm.startswith("..") or os.path.isabs(norm) or norm == ".":
        return None
    return norm


def _files_in(out: Path) -> list[str]:
    """Every non-folder entry under ``out`` (symlinks not followed), relative, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(out):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)
                dirnames.remove(d)
        for f in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, f), out))
    return sorted(found)


def preflight_out(out: Path, *, force: bool) -> dict[str, Any] | None:
    """Check that ``out`` may be written; return the earlier ledger to clear, if any.

    Raises:
        WeaklabelError: ``out`` is a file or symlink, is not empty (without ``force``),
            or holds files no earlier export wrote.
    """
    if out.is_symlink():
        raise WeaklabelError(f"export folder {out} is a symbolic link; give the real folder")
    if out.exists() and not out.is_dir():
        raise WeaklabelError(f"export folder {out} is a file; pick an empty folder")
    if not out.exists():
        return None
    present = _files_in(out)
    if not present:
        return None
    if not force:
        raise WeaklabelError(
            f"export folder {out} is not empty; pick an empty folder, or pass --force to "
            "replace an earlier weaklabel export there")
    ledger = read_ledger(out)
    if ledger is None:
        raise WeaklabelError(
            f"export folder {out} is not empty and holds no earlier weaklabel export "
            f"({LEDGER}); pick an empty folder")
    listed = {_safe_rel(r) for r in ledger.get("files", [])} | {LEDGER}
    stray = [p for p in present if os.path.normpath(p) not in listed]
    if stray:
        raise WeaklabelError(
            f"export folder {out} holds {len(stray)} file(s) weaklabel did not write, e.g. "
            f"{display_path(stray[0])!r}; move them away or pick an empty folder")
    return ledger


def _ledger_files(out: Path, ledger: Mapping[str, Any]) -> list[str]:
    """The files an earlier export listed in its ledger that sit inside ``out`` (never
    through a folder replaced by a link out of OUT), its ledger last."""
    root = os.path.realpath(out)
    found: list[str] = []
    for rel in [*ledger.get("files", []), LEDGER]:
        norm = _safe_rel(rel)
        if norm is None:
            continue
        p = os.path.join(out, norm)
        parent = os.path.realpath(os.path.dirname(p))
        if parent != root and not parent.startswith(root + os.sep):
            continue
        if os.path.lexists(p) and (os.path.islink(p) or not os.path.isdir(p)):
            found.append(norm)
    return found


def _prune_dirs(out: Path, ledger: Mapping[str, Any]) -> None:
    """Remove the folders an earlier export made that are empty now."""
    dirs = [d for d in (_safe_rel(r) for r in ledger.get("dirs", [])) if d]
    for d in sorted(dirs, key=lambda s: -s.count(os.sep)):
        with contextlib.suppress(OSError):
            p = os.path.join(out, d)
            if not os.path.islink(p):
                os.rmdir(p)


def _move_files(src: Path, dst: Path, rels: Sequence[str], done: list[str]) -> None:
    """Rename each ``src/rel`` to ``dst/rel`` (folders made as needed, once each), never
    over an existing path; ``done`` collects what moved, for the caller to undo."""
    made: set[Path] = set()
    for rel in rels:
        target = dst / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        if os.path.lexists(target):
            raise WeaklabelError(f"{target} appeared while the export was written; OUT is "
                                 "left as it was, move it away and run export again")
        os.rename(src / rel, target)
        done.append(rel)


OWNER = ".weaklabel-owner"
"""The marker inside a staging or aside folder beside OUT: ``{"host": …, "pid": …}`` of
the run that made it. Never exported."""


def _make_owned_dir(p: Path) -> None:
    """Make the folder ``p`` (it must not exist) with its :data:`OWNER` marker."""
    import socket

    p.mkdir()
    with open(p / OWNER, "x", encoding="utf-8") as f:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)


def _dead_leftover(p: Path) -> bool:
    """True when the folder ``p`` was made by an export run of this host that is gone:
    its :data:`OWNER` marker names this host and a pid, the same as in its name, that no
    longer runs. A folder with no such marker (a user's own, a live run's on another host
    sharing OUT's parent over NFS) is never a leftover."""
    import socket

    from weaklabel.wsbase import _pid_alive, parse_pid

    pid = parse_pid(p.name.rpartition("-")[2])
    marker = p / OWNER
    if pid is None or p.is_symlink() or not p.is_dir() or marker.is_symlink():
        return False
    try:
        owner = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(owner, dict) and owner.get("host") == socket.gethostname()
            and owner.get("pid") == pid and not _pid_alive(pid))


def _remove_dead_staging(parent: Path, name: str) -> None:
    """Remove the hidden staging folders beside OUT of export runs that died (kill -9,
    power loss) before their swap: a whole data set of links or copies each, which no
    later run would otherwise clean. Only folders :func:`_dead_leftover` owns are
    touched: a live run's (another workspace exporting to the same OUT) is left alone."""
    for p in parent.glob(f".{glob.escape(name)}.weaklabel-tmp-*"):
        if _dead_leftover(p):
            shutil.rmtree(p, ignore_errors=True)
            log.info("removed %s, left by an interrupted export", p)


def _swap_in(staging: Path, out: Path, old: Mapping[str, Any] | None) -> int:
    """Replace the earlier export in ``out`` by the staged one, file by file.

    The earlier export's files move aside first (beside ``out``), then the staged
    files move in; if anything fails (a folder where a file goes, a full
    disk, Ctrl-C) the new files move back out and the earlier ones back in, so OUT
    is as it was. Only when every file is in are the earlier files removed.

    Returns:
        The number of earlier files replaced.
    """
    parent = out.absolute().parent
    for stale in parent.glob(f".{glob.escape(out.name)}.weaklabel-old-*"):
        # an earlier export moved aside by a run killed during its swap: OUT's ledger
        # lists what that run moved in, so this copy is nobody's any more
        if _dead_leftover(stale):
            shutil.rmtree(stale, ignore_errors=True)
    aside = parent / f".{out.name}.weaklabel-old-{os.getpid()}"
    if aside.exists():
        shutil.rmtree(aside)  # our own leftover from a crashed run with this pid
    _make_owned_dir(aside)
    old_files = _ledger_files(out, old) if old is not None else []
    new_files = sorted((r for r in _files_in(staging) if r != OWNER),
                       key=lambda r: (r != LEDGER, r))
    moved_aside: list[str] = []
    moved_in: list[str] = []
    try:
        # A kill -9 part-way must leave OUT a re-run can replace: a ledger listing every
        # file there. So the old ledger goes aside last and the new one comes in first
        # (until the stage records it done, a re-run exports again).
        _move_files(out, aside, old_files, moved_aside)
        out.mkdir(parents=True, exist_ok=True)
        _move_files(staging, out, new_files, moved_in)
    except BaseException:
        for rel in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.rename(out / rel, staging / rel)
        for rel in reversed(moved_aside):
            with contextlib.suppress(OSError):
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.rename(aside / rel, out / rel)
        if not any(f != OWNER for _, _, fs in os.walk(aside) for f in fs):
            # every earlier file is back
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if old is not None:
        _prune_dirs(out, old)
    shutil.rmtree(aside, ignore_errors=True)  # the earlier export's own files
    shutil.rmtree(staging, ignore_errors=True)  # only empty folders are left in it
    return len(moved_aside)


def _cell(v: Any) -> Any:
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return repr(round(v, 6))
    return escape_cell(v)


REJECTS_KEPT = 100
"""Rejected images the summary (and the meta) lists; ``export.rejects.csv`` has all."""


@dataclass(frozen=True)
class ExportSummary(Summary):
    """What ``export`` wrote: the folder, the images per split and label, how each file
    got there (hard link, copy, symbolic link), the images left out, the manifest's
    creation date and how many files of an earlier export were replaced."""

    out: str
    images: int
    formats: tuple[str, ...] = ()
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    links: Mapping[str, int] = field(default_factory=dict)
    missing: int = 0
    rejects: tuple[tuple[str, str], ...] = ()
    """The first :data:`REJECTS_KEPT` (image, reason) pairs left out."""
    creation_date: str = DEFAULT_CREATION_DATE
    replaced: int = 0
    imagefolder_skips: Mapping[str, int] = field(default_factory=dict)
    """Exported images per format that ImageFolder's default extensions leave out (see
    :func:`count_imagefolder_skips`); they are exported as they are, not converted."""

    def text(self) -> str:
        links = ", ".join(f"{n} {k}" for k, n in sorted(self.links.items()))
        skipped = sum(self.imagefolder_skips.values())
        return (f"exported {self.images} images ({', '.join(self.formats)}"
                f"{'; ' + links if links else ''})"
                f"{f'; {skipped} in a format ImageFolder skips' if skipped else ''}")


@dataclass
class _Plan:
    """The rows to export and what goes with them (see :func:`_prepare`)."""

    rows: pd.DataFrame
    classes: list[str]
    names: dict[str, str]
    creation_date: str
    expect: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    """Image → Pillow format, as the inventory found it."""


def _inventoried(ws: Workspace, root: Path, images: list[str], *,
                 formats: dict[str, str] | None = None,
                 ) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, str]]:
    """What the inventory saw of each image (see :func:`inventoried_ok`), or an error
    that says which command makes the inventory."""
    from weaklabel.containment import Escape, inventoried_ok

    try:
        return inventoried_ok(os.fspath(ws.root), os.fspath(root), images, formats=formats)
    except Escape as exc:
        raise WeaklabelError(
            f"cannot verify the sampled images: {exc}; run `weaklabel purge {root} -w "
            f"{ws.root}` first, so that export links only files it checked") from None


def _images_identity(ws: Workspace, root: Path) -> str:
    """A digest of what the inventory holds for the sampled images (size, time, inode,
    or why not): a picture replaced under the same name since the last export changes
    it, where the sample, purge.csv and duplicates.csv stay the same."""
    import hashlib

    images = sorted(set(ws.read("sample.parquet", SAMPLE)["image"].astype(str)))
    try:
        ok, why = _inventoried(ws, root, images)
    except WeaklabelError:
        return "no inventory"  # export itself says what to run
    h = hashlib.sha1()
    for img in images:
        h.update(f"{img}\0{ok.get(img)}\0{why.get(img)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _load_optional(ws: Workspace) -> tuple[Any, Any]:
    from weaklabel.contracts import POSTS
    from weaklabel.dataset.sample import read_duplicates

    posts = ws.read("posts.parquet", POSTS) if ws.path("posts.parquet").exists() else None
    dups = (read_duplicates(ws.path("duplicates.csv"))
            if ws.path("duplicates.csv").exists() else None)
    return posts, dups


EXPORT_READS = ("duplicates.csv", "posts.parquet", "purge.csv", "reviewed_labels.parquet",
                "reviewed_images.parquet")
"""Workspace artifacts export reads when present (beside the required sample)."""


def run_export(ws: Workspace, cfg: Config, *, force: bool = False,
               progress: bool = True) -> StageReport[ExportSummary]:
    """Export ``sample.parquet`` into the folder ``cfg.output`` in ``cfg.export.formats``.

    The export folder is an output outside the workspace: it is up to date when the
    inputs (the sample, and ``duplicates.csv``, ``posts.parquet``, ``purge.csv``, the
    reviewed labels and the label map when present), the settings (``cfg.export``, the
    image root) and the folder's meta (``OUT.meta.json`` beside it) agree and the
    folder still holds its ledger. A stale export this workspace made is replaced;
    one made elsewhere only with ``force``, which also re-exports when up to date.
    Only files an earlier ledger lists are ever replaced (see :func:`preflight_out`).

    Images come from ``images.root`` (else ``posts.image_root``), display names from
    ``cfg.labelmap``; ``progress`` is the contract's and changes nothing.

    Raises:
        WeaklabelError: no ``output``; no image root for the ImageFolder format; see
            :func:`preflight_out`, :func:`check_label_dirname`, :func:`parse_split`.
    """
    from weaklabel.config import as_dict, image_root_of, validate_config

    validate_config(cfg)  # formats, link mode, split, job name, prefix: checked there once
    if not cfg.output:
        raise WeaklabelError("no export folder: pass OUT or set output in the config")
    out, root = Path(cfg.output), image_root_of(cfg)
    if "imagefolder" in cfg.export.formats and root is None:
        raise WeaklabelError("no image root: pass --image-root or set images.root in the "
                             "config (the ImageFolder format copies the image files)")
    if root is not None and not root.is_dir():
        raise WeaklabelError(f"image root {root} is not a folder")
    inputs: dict[str, Path | str] = {"sample.parquet": ws.path("sample.parquet")}
    inputs.update({n: ws.path(n) for n in EXPORT_READS if ws.path(n).exists()})
    if cfg.labelmap is not None:
        inputs["labelmap"] = Path(cfg.labelmap)
    if root is not None and ws.path("sample.parquet").exists():
        inputs["images"] = _images_identity(ws, root)
    params = {"export": as_dict(cfg.export), "workspace": str(ws.root.absolute()),
              "image_root": str(root.absolute()) if root else None,
              "names": "real-format-extension"}  # an export named the older way re-runs
    ledger = read_ledger(out) if out.is_dir() and not out.is_symlink() else None
    ours = ledger is not None and ledger.get("workspace") == params["workspace"]
    # The lock first: never while dedup --apply moves files, never into a workspace
    # that cannot take the rejects file after the whole data set is written.
    with ws.stage("export", outputs=(out, "export.rejects.csv"), params=params,
                  inputs=inputs, summary=ExportSummary, force=force or ledger is None) as st:
        if st.todo:
            summary = export_sample(ws, cfg, out, root, replace=force or ours)
            st.done(summary, rows={out.name: summary.images,
                                   "export.rejects.csv": summary.missing})
    return st.report


def export_sample(ws: Workspace, cfg: Config, out: Path, root: Path | None, *,
                  replace: bool) -> ExportSummary:
    """Build the export in a hidden folder beside ``out``, move it in, write the
    rejects; the work of :func:`run_export` under its lock.

    Args:
        replace: an earlier weaklabel export in ``out`` may be replaced.
    """
    ecfg = cfg.export
    formats = tuple(dict.fromkeys(ecfg.formats))
    fractions = parse_split(ecfg.split)
    old = preflight_out(out, force=replace)
    if root is not None:
        ro, oo = os.path.realpath(root), os.path.realpath(out)
        if oo == ro or oo.startswith(ro + os.sep):
            log.warning("%s is inside the image root; purge and dedup will see the exported "
                        "copies as images", out)
    p = _prepare(ws, cfg, root, formats=formats, fractions=fractions)
    out_parent = out.absolute().parent
    out_parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging(out_parent, out.name)
    staging = out_parent / f".{out.name}.weaklabel-tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)  # our own leftover from a crashed run with this pid
    try:
        _make_owned_dir(staging)
        written, dirs, links = _write_files(staging, p, ecfg, root, formats)
        skips = (count_imagefolder_skips(list(p.rows["image"]), list(p.rows["path"]),
                                         p.formats) if "imagefolder" in formats else {})
        counts: dict[str, dict[str, int]] = {}
        for (split, lab), n in p.rows.groupby(["split", "label"], sort=True).size().items():
            counts.setdefault(str(split), {})[str(lab)] = int(n)
        ledger = {
            "tool": "weaklabel", "version": __version__,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": {"formats": list(formats), "split": list(fractions), "seed": ecfg.seed,
                       "link": ecfg.link, "source_prefix": ecfg.source_prefix,
                       "job_name": ecfg.job_name, "creation_date": p.creation_date},
            "workspace": str(ws.root.absolute()),
            "image_root": str(Path(root).absolute()) if root else None,
            "counts": counts, "links": links, "missing": len(p.missing),
            "imagefolder_skips": skips,
            "files": sorted(written), "dirs": sorted(dirs),
        }
        with open(staging / LEDGER, "w", encoding="utf-8") as f:
            json.dump(ledger, f, ensure_ascii=False, indent=2)
        replaced = _swap_in(staging, out, old)
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging)
        raise
    if "manifest" in formats and ecfg.manifest_url:
        upload_manifest(out / "manifest.jsonl", ecfg.manifest_url, cfg)
    missing = sorted(p.missing)
    write_rows_csv(ws.path("export.rejects.csv"), EXPORT_REJECTS.names,
                   [[display_path(i), reason] for i, reason in missing])
    for i, reason in missing[:5]:
        log.warning("%s: %s", display_path(i), reason)
    if skips:
        log.warning("%d exported image(s) in a format torchvision's ImageFolder skips by "
                    "default (%s): pass is_valid_file or an extensions list to ImageFolder, "
                    "or convert them", sum(skips.values()),
                    ", ".join(f"{k} {n}" for k, n in skips.items()))
    return ExportSummary(out=str(out), images=len(p.rows), formats=formats, counts=counts,
                         links=links, missing=len(missing),
                         rejects=tuple((i, r) for i, r in missing[:REJECTS_KEPT]),
                         creation_date=p.creation_date, replaced=replaced,
                         imagefolder_skips=skips)


def _prepare(ws: Workspace, cfg: Config, root: Path | None, *, formats: tuple[str, ...],
             fractions: tuple[float, ...]) -> _Plan:
    """The planned rows (split, label index, path), less the images the inventory did
    not check, with each row's human-annotated flag; the classes and display names."""
    from weaklabel.dataset.sample import group_map
    from weaklabel.review.reviewed import human_annotated

    ecfg = cfg.export
    sample = ws.read("sample.parquet", SAMPLE)
    if sample.empty:  # a data set of no image helps nobody: say why before any folder
        raise WeaklabelError(
            f"{ws.path('sample.parquet')} holds no image, nothing to export; sample with "
            "--per-label 1 or more (sample.per_label), and see sample_funnel.csv for what "
            "each filter left out")
    posts, dups = _load_optional(ws)
    names: dict[str, str] = {}
    if cfg.labelmap is not None:
        from weaklabel.labels.labelmap import load_labelmap

        names = {lab.id: lab.name for lab in load_labelmap(cfg.labelmap).labels}
    expect: dict[str, tuple[int, int, int, int]] = {}
    unverified: dict[str, str] = {}
    kinds: dict[str, str] = {}  # image → Pillow format; `formats` are the export's
    if root is not None:  # first: each file's name says the format the inventory found
        expect, unverified = _inventoried(ws, Path(root), list(sample["image"]),
                                          formats=kinds)
    plan = plan_export(sample, fractions=fractions, seed=ecfg.seed,
                       groups=group_map(dups) if dups is not None else None,
                       formats=kinds)
    cdate = (parse_creation_date(ecfg.creation_date) if ecfg.creation_date
             else creation_date_from(posts, list(plan["image"])))
    p = _Plan(plan, sorted(set(sample["label"])), names, cdate, formats=kinds)
    if root is not None:
        p.expect = expect
        p.missing = sorted(unverified.items())
        if p.missing and len(p.missing) == len(plan):
            raise WeaklabelError(
                f"none of the {len(plan)} sampled images exists under {root} as a "
                f"file the inventory checked (e.g. {display_path(p.missing[0][0])}: "
                f"{p.missing[0][1]}); check --image-root")
        plan = plan[plan["image"].isin(list(p.expect))].reset_index(drop=True)
    if "imagefolder" not in formats:
        plan = plan.assign(path="")
    p.rows = plan.assign(human=human_annotated(plan["image"], plan["label"], plan["post_id"],
                                               ws.root))
    return p


def _write_files(staging: Path, p: _Plan, ecfg: ExportConfig, root: Path | None,
                 formats: tuple[str, ...]) -> tuple[list[str], set[str], dict[str, int]]:
    """Every file of the export into ``staging``: the images, ``classes.json``, the
    manifest and the CSV. Returns the files written, the folders made and the count
    per link mode; images that fail their check move from ``p.rows`` to ``p.missing``."""
    written: list[str] = []
    dirs: set[str] = set()
    links: dict[str, int] = {}
    if "imagefolder" in formats:
        assert root is not None
        written, dirs, links = _place_images(staging, p, root, ecfg.link)
    with open(staging / "classes.json", "w", encoding="utf-8") as f:
        json.dump({str(i): {"label": lab, "name": p.names.get(lab, lab)}
                   for i, lab in enumerate(p.classes)}, f, ensure_ascii=False, indent=2)
        f.write("\n")
    written.append("classes.json")
    if "manifest" in formats:
        _write_manifest(staging / "manifest.jsonl", p, ecfg)
        written.append("manifest.jsonl")
    if "csv" in formats:
        rows = [[_cell(v) for v in (r.split, r.label, int(r.label_index), display_path(r.path),
                                     display_path(r.image), r.post_id, float(r.confidence),
                                     r.likes, r.comments, "yes" if r.human else "no")]
                for r in p.rows.itertuples(index=False)]
        write_rows_csv(staging / "dataset.csv", DATASET.names, rows)
        written.append("dataset.csv")
    return written, dirs, links


def _place_images(staging: Path, p: _Plan, root: Path, link: str
                  ) -> tuple[list[str], set[str], dict[str, int]]:
    """Link or copy each planned image into ``staging`` (see :func:`place_file`)."""
    from weaklabel.containment import Escape, fs_form

    written: list[str] = []
    dirs: set[str] = set()
    links: dict[str, int] = {}
    placed = []
    for img, rel in zip(p.rows["image"], p.rows["path"], strict=True):
        dst = staging / rel
        if str(Path(rel).parent) not in dirs:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dirs.update({Path(rel).parts[0], str(Path(rel).parent)})
        try:
            used = place_file(root, fs_form(img), dst, link, p.expect[img])
        except Escape as exc:
            p.missing.append((img, str(exc)))
            placed.append(False)
            continue
        placed.append(True)
        links[used] = links.get(used, 0) + 1
        written.append(rel)
    p.rows = p.rows[placed].reset_index(drop=True)
    p.missing.sort()
    return written, dirs, links


def _write_manifest(target: Path, p: _Plan, ecfg: ExportConfig) -> None:
    prefix, job = ecfg.source_prefix, ecfg.job_name
    with open(target, "w", encoding="utf-8", newline="\n") as f:
        for r in p.rows.itertuples(index=False):
            if prefix:
                ref = f"{prefix.rstrip('/')}/{display_path(r.image)}"
            else:
                ref = r.path or display_path(r.image)
            f.write(manifest_line(
                source_ref=ref, job=job, index=int(r.label_index),
                class_name=p.names.get(r.label, r.label), confidence=r.confidence,
                creation_date=p.creation_date, split=r.split, human=bool(r.human)) + "\n")


def upload_manifest(manifest: Path, url: str, cfg: Config) -> None:
    """Upload the written manifest to the object ``url`` (``export.manifest_url``): it
    appears whole or not at all (see :func:`weaklabel.storage.put_file`)."""
    from weaklabel.storage import put_file

    put_file(manifest, url, endpoint_url=cfg.storage.endpoint_url,
             setting="export.manifest_url")
    log.info("uploaded %s → %s", manifest, url)


def format_counts(counts: Mapping[str, Mapping[str, int]]) -> str:
    """Per label × split counts as an aligned text table with totals."""
    splits = [s for s in SPLITS if s in counts]
    labels = sorted({lab for c in counts.values() for lab in c})
    rows = [[lab, *(str(counts[s].get(lab, 0)) for s in splits),
             str(sum(counts[s].get(lab, 0) for s in splits))] for lab in labels]
    rows.append(["(total)", *(str(sum(counts[s].values())) for s in splits),
                 str(sum(sum(c.values()) for c in counts.values()))])
    heads = ["label", *splits, "total"]
    return format_table(heads, rows)
