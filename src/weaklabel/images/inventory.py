"""The image inventory: walk a tree once, remember what every file is.

One SQLite database per workspace (``inventory.sqlite``) holds a row per path found
under the image root: size, mtime, inode, content digests, dimensions, format and the
decode status. It is a cache: a file whose size and mtime are unchanged is not read
again, so a re-run over an unchanged million-file tree only walks and stats it.

Paths are relative to the root, POSIX form. In memory they are ``str`` decoded with the
file-system encoding and ``surrogateescape`` (so non-UTF-8 names round-trip); in SQLite
they are the raw bytes (``os.fsencode``) because SQLite text must be valid UTF-8; in CSV
files they go through :func:`display_path`.

Files are recognised by their first bytes, never by extension.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
import stat
import struct
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from weaklabel.containment import is_inside
from weaklabel.errors import WeaklabelError

log = logging.getLogger(__name__)

INVENTORY = "inventory.sqlite"
SCHEMA_VERSION = 6  # 2: JPEG drafts >= hash input; 3: reduce first; 4: no `seen`; 5: 4 KiB partial;
#                    6: a thumbnail beside each hash (near-pair verification)
PARTIAL_BLOCK = 4096  # as jdupes: a page at each end tells most same-size files apart
CHUNK = 1 << 20
MIN_STD = 2.0
"""A decoded image whose grey-level standard deviation (0–255) is below this is
"uniform" (all white, a solid colour, 1×1): its perceptual hash means nothing."""
THUMB_SIDE = 32
"""Side of the grey thumbnail stored beside each hash (``THUMB_SIDE ** 2`` bytes, box
averaged from the same upright, reduced picture the hash saw): dedup verifies candidate
pairs beyond the hash threshold on it (:func:`weaklabel.images.dedup.thumb_agreement`)."""

# Every error class Pillow's plugins raise on bad data, not only OSError.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, TypeError, NotImplementedError, IndexError,
    KeyError, struct.error, EOFError, ZeroDivisionError, OverflowError, MemoryError,
    RuntimeError, AttributeError, AssertionError,
)

# --- content sniffing -------------------------------------------------------------------


def sniff(head: bytes) -> tuple[str | None, str]:
    """What the first bytes of a file say it is.

    Returns:
        ``(image_format, what)``: an image format name (``JPEG``, ``PNG``…) or None, and
        a short description (``html``, ``zip archive``…) used as the reason for
        non-images.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP", "webp"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP", "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF", "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF", "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"):
            return "HEIF", "heif"
        return None, "video or media container"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG2000", "jpeg 2000"
    if head[:4] == b"8BPS":
        return "PSD", "photoshop"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO", "icon"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return None, "html"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<error"):
        if b"<svg" in stripped:
            return None, "svg (vector, not decoded)"
        return None, "xml"
    if stripped.startswith(b"<svg"):
        return None, "svg (vector, not decoded)"
    if stripped.startswith((b"{", b"[")):
        return None, "json or text"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return None, "zip archive"
    if head[:2] == b"\x1f\x8b":
        return None, "gzip archive"
    if head[:4] == b"%PDF":
        return None, "pdf"
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return None, "text"
    return None, "unknown bytes"


# Formats this machine may lack a decoder for: "unsupported", not corrupt.
_FEATURE_OF = {"AVIF": "avif", "WEBP": "webp", "JPEG2000": "jpg_2000", "HEIF": None}


def _decoder_available(fmt: str) -> bool:
    if fmt not in _FEATURE_OF:
        return True
    feature = _FEATURE_OF[fmt]
    if feature is None:
        try:
            import pillow_heif  # noqa: F401
        except ImportError:
            return False
        return True
    from PIL import features

    return bool(features.check(feature))


def check_formats(names: Iterable[str]) -> tuple[str, ...]:
    """``images.formats`` as Pillow format names (upper case, sorted); a name Pillow does
    not read raises a :class:`WeaklabelError` that lists the ones it does."""
    wanted = tuple(sorted({str(n).upper() for n in names}))
    if not wanted:
        return ()
    from PIL import Image

    Image.init()
    readable = set(Image.OPEN)
    unknown = [n for n in wanted if n not in readable]
    if unknown:
        raise WeaklabelError(
            f"images.formats: Pillow reads no format {', '.join(map(repr, unknown))}; "
            f"use names from: {', '.join(sorted(readable))}")
    return wanted


# --- perceptual hash methods ----------------------------------------------------------

HASH_METHODS = ("ahash", "dhash", "phash", "whash")
"""Registered perceptual hash methods (imagehash functions of the same name)."""


def get_hash_method(name: str) -> Callable[..., Any]:
    """The imagehash function called ``name``; a wrong name lists the valid ones."""
    if name not in HASH_METHODS:
        raise WeaklabelError(
            f"unknown hash method {name!r}; valid: {', '.join(HASH_METHODS)}"
        )
    import imagehash

    return getattr(imagehash, "average_hash" if name == "ahash" else name)


def draft_side(spec: tuple[str, int] | None) -> int | None:
    """Smallest side a JPEG may be reduced to before hashing with ``spec``.

    Twice the side the hash resizes to (phash: ``4 * hash_size``; dhash: ``hash_size +
    1``; ahash: ``hash_size``), so the final resize still averages several decoded pixels;
    at exactly the hash's input size a DCT-scaled decode moves pHash by up to 2 more
    bits. ``0``: no reduction (whash scales with the image's own size). None: no hash
    wanted, any reduction will do.
    """
    if spec is None:
        return None
    method, size = spec
    side = {"phash": 4 * size, "dhash": size + 1, "ahash": size}.get(method)
    return 0 if side is None else 2 * side


def hash_key(method: str, hash_size: int) -> str:
    """Inventory key of one hash flavour, e.g. ``phash-8``."""
    get_hash_method(method)
    if hash_size < 2 or hash_size * hash_size > 64:
        raise WeaklabelError(
            f"hash_size {hash_size} is out of range; use 2 to 8 (at most 64-bit hashes)"
        )
    if method == "whash" and hash_size & (hash_size - 1):
        raise WeaklabelError(f"whash needs a power-of-two hash_size (4 or 8), got {hash_size}")
    return f"{method}-{hash_size}"


# --- per-file work (runs in worker processes) -------------------------------------------


@dataclass(frozen=True)
class Task:
    """One file to examine. ``hash_spec`` is ``(method, hash_size)`` or None."""

    abspath: str
    rel: str
    size: int
    check: bool
    hash_spec: tuple[str, int] | None
    max_pixels: int
    formats: tuple[str, ...] = ()
    """Pillow format names wanted (empty: every format Pillow reads); others are
    ``unsupported``."""


def _open(path: str, rel: str | None = None) -> Any:
    """Open a regular file for reading without following a symlink swapped in since,
    at the end or (given ``rel``, the path under the root) on the way."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    if rel is not None:
        from weaklabel.containment import opened_inside

        if not opened_inside(fd, path, rel):
            os.close(fd)
            raise OSError(errno.ELOOP, "a folder on the way became a symbolic link")
    return os.fdopen(fd, "rb")


def _classify(exc: BaseException) -> tuple[str, str]:
    msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
    low = msg.lower()
    if isinstance(exc, EOFError) or "truncat" in low or "premature end" in low:
        return "truncated", msg
    return "decode_error", msg


def examine(task: Task) -> dict[str, Any]:
    """Sniff, decode (as far as the check needs) and hash one file.

    Returns a dict with ``path``, ``status``, ``reason``, ``format``, ``width``,
    ``height`` and, when a hash was asked for, ``hash`` (hex) and ``degenerate``
    (None or why the hash is meaningless). Never raises for a bad file.
    """
    out: dict[str, Any] = {"path": task.rel, "status": None, "reason": "", "format": None,
                           "width": None, "height": None, "hash": None, "degenerate": None,
                           "thumb": None}
    try:
        f = _open(task.abspath, task.rel)
    except OSError as exc:
        out.update(status="unreadable", reason=f"cannot open: {exc.strerror or exc}")
        out["degenerate"] = "unreadable"
        return out
    with f:
        try:
            head = f.read(64)
        except OSError as exc:
            out.update(status="unreadable", reason=f"cannot read: {exc.strerror or exc}")
            out["degenerate"] = "unreadable"
            return out
        if not head:
            out.update(status="empty", reason="zero bytes", degenerate="empty file")
            return out
        fmt, what = sniff(head)
        out["format"] = fmt
        f.seek(0)
        # Pillow has the last word: the sniff only names what Pillow cannot open.
        _decode(f, fmt, what, task, out)
    return out


def _decode(f: Any, fmt: str | None, what: str, task: Task, out: dict[str, Any]) -> None:
    from PIL import Image, ImageFile

    # Truncated data must raise, whatever a caller set; put the caller's values back after.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = task.max_pixels
    try:
        _decode_checked(f, fmt, what, task, out)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


def _decode_checked(f: Any, fmt: str | None, what: str, task: Task,
                    out: dict[str, Any]) -> None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": the status says it
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(f)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            out.update(status="decompression_bomb",
                       reason=f"header claims more than {task.max_pixels} pixels ({exc})"[:200],
                       degenerate="decompression bomb")
            return
        except Image.UnidentifiedImageError as exc:
            if fmt is None:
                out.update(status="not_an_image", reason=what, degenerate="not an image")
                return
            if not _decoder_available(fmt):
                out.update(status="unsupported",
                           reason=f"{fmt}: no decoder for this format installed here")
            else:
                out.update(status="decode_error", reason=f"{fmt} header: {exc}"[:200])
            out["degenerate"] = "not decodable"
            return
        except DECODE_ERRORS as exc:
            out.update(zip(("status", "reason"), _classify(exc), strict=False))
            out["degenerate"] = "not decodable"
            return
        except Exception as exc:  # a plugin bug on a hostile file must not stop the run
            out.update(status="decode_error",
                       reason=f"unexpected {type(exc).__name__}: {exc}"[:200],
                       degenerate="not decodable")
            return
        with im:
            w, h = im.size
            out.update(width=w, height=h, format=im.format or fmt)
            if task.formats and im.format not in task.formats:
                out.update(status="unsupported", degenerate="format not wanted",
                           reason=f"{im.format}: not in images.formats "
                                  f"({', '.join(task.formats)})")
                return
            # Checked from the header, before a single pixel is allocated.
            if w * h > task.max_pixels:
                out.update(status="decompression_bomb",
                           reason=f"{w}x{h} = {w * h} pixels > limit {task.max_pixels}",
                           degenerate="decompression bomb")
                return
            if w <= 0 or h <= 0:
                out.update(status="decode_error", reason=f"invalid size {w}x{h}",
                           degenerate="not decodable")
                return
            if im.format == "PNG" and task.hash_spec is None:
                verdict = check_png_stream(f)
                if verdict is not None:
                    out.update(status=verdict[0], reason=verdict[1])
                    if verdict[0] != "ok":
                        out["degenerate"] = "not decodable"
                    return
            try:
                if im.format == "JPEG":
                    # Reduced-scale DCT decode: every byte of entropy data is still
                    # parsed (so truncation and bad markers raise), at up to 1/64 the
                    # pixels; never smaller than the hash's own input needs.
                    side = draft_side(task.hash_spec)
                    if side is None:
                        im.draft("L", (max(1, w // 8), max(1, h // 8)))
                    elif side:
                        im.draft("L", (side, side))
                im.load()
                if task.hash_spec is not None:
                    _hash_into(im, task.hash_spec, out)  # of the first frame
                # Pillow opens an animation at its first frame; a broken later frame
                # (an APNG missing an fcTL chunk) only raises when reached.
                for k in range(1, getattr(im, "n_frames", 1)):
                    im.seek(k)
                    im.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                out.update(status="decompression_bomb", reason=str(exc)[:200],
                           degenerate="decompression bomb", hash=None, thumb=None)
                return
            except DECODE_ERRORS as exc:
                out.update(zip(("status", "reason"), _classify(exc), strict=False))
                out.update(degenerate="not decodable", hash=None, thumb=None)
                return
            except Exception as exc:
                out.update(status="decode_error",
                           reason=f"unexpected {type(exc).__name__}: {exc}"[:200],
                           degenerate="not decodable", hash=None, thumb=None)
                return
            out["status"] = "ok"


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_png_stream(f: Any) -> tuple[str, str] | None:
    """Check a PNG without building its pixels: every chunk's CRC, the zlib stream of
    the image data to its end, its exact inflated size and every row's filter byte.

    That is everything a full decode checks short of un-filtering the rows, at about a
    third of the time. Returns ``(status, reason)``, or None for an interlaced or
    unusual file, which the caller decodes in full instead.
    """
    import struct
    import zlib

    inflate_lib: Any
    try:  # ISA-L inflates about 1.6x faster than zlib, and inflating is most of the cost
        from isal import isal_zlib as inflate_lib
    except ImportError:  # pragma: no cover - a platform without isal wheels
        inflate_lib = zlib
    inflate_error: type[Exception] = inflate_lib.error

    f.seek(0)
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        return None
    stride = expected = 0
    inflater = inflate_lib.decompressobj()
    total = 0
    seen_idat = False

    def rows_ok(piece: bytes, start: int) -> bool:
        first = (-start) % stride
        return all(b <= 4 for b in piece[first::stride])

    while True:
        head = f.read(8)
        if len(head) < 8:
            if seen_idat and inflater.eof:
                break  # all image data is there; Pillow needs no IEND, neither do we
            return ("truncated", "PNG: file ends before IEND")
        length, ctype = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            return ("decode_error", f"PNG: chunk {ctype!r} claims {length} bytes")
        data = f.read(length)
        crc = f.read(4)
        if len(data) < length or len(crc) < 4:
            if seen_idat and inflater.eof:
                break  # only a chunk after the complete image data is cut, as Pillow sees
            return ("truncated", f"PNG: file ends inside chunk {ctype!r}")
        if zlib.crc32(ctype + data) != struct.unpack(">I", crc)[0]:
            return ("decode_error", f"PNG: CRC mismatch in chunk {ctype!r}")
        if ctype == b"IHDR":
            if length != 13:
                return None
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
            if interlace or color not in _PNG_CHANNELS:
                return None
            stride = 1 + (w * depth * _PNG_CHANNELS[color] + 7) // 8
            expected = stride * h
        elif ctype == b"IDAT":
            if not stride:
                return None
            seen_idat = True
            try:
                piece = inflater.decompress(data)
            except inflate_error as exc:
                return ("decode_error", f"PNG: image data does not inflate ({exc})")
            if total + len(piece) > expected:
                return ("decode_error", "PNG: more image data than its size needs")
            if not rows_ok(piece, total):
                return ("decode_error", "PNG: invalid row filter type")
            total += len(piece)
        elif ctype == b"acTL":
            return None  # an animation: every frame is decoded in full instead
        elif ctype == b"IEND":
            break
    if not seen_idat:
        return ("decode_error", "PNG: no image data")
    try:
        rest = inflater.flush()
    except inflate_error as exc:
        return ("decode_error", f"PNG: image data does not inflate ({exc})")
    if rest and not rows_ok(rest, total):
        return ("decode_error", "PNG: invalid row filter type")
    total += len(rest)
    if not inflater.eof or total < expected:
        return ("truncated", f"PNG: image data ends early ({total} of {expected} bytes)")
    return ("ok", "")


_ORIENT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
           6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
"""EXIF orientation → the ``Image.Transpose`` that shows the picture upright."""


def _hash_into(im: Any, spec: tuple[str, int], out: dict[str, Any]) -> None:
    from PIL import Image, ImageStat

    method, size = spec
    try:
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:  # a damaged EXIF block says nothing about the picture
            orientation = 1
        img = im
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGBA").convert("RGB") if "A" in img.mode or img.mode == "P" \
                else img.convert("RGB")
        # Shrink by whole factors first, never below twice the hash's input: a box
        # average is as good a start for the hash's own resize and ~10x cheaper than
        # resizing a full PNG or TIFF.
        side = draft_side(spec)
        factor = min(img.size) // side if side else 1
        if factor >= 2:
            img = img.reduce(factor)
        if orientation in _ORIENT:
            img = img.transpose(getattr(Image.Transpose, _ORIENT[orientation]))
        grey = img.convert("L")
        std = ImageStat.Stat(grey).stddev[0]
        if std < MIN_STD:
            out["degenerate"] = f"uniform image (pixel std {std:.2f} < {MIN_STD})"
            return
        hv = get_hash_method(method)(grey, hash_size=size)
        bits = hv.hash.flatten()
        if bits.all() or not bits.any():
            out["degenerate"] = "degenerate hash (all bits equal)"
            return
        out["hash"] = str(hv)
        out["thumb"] = grey.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
    except Exception as exc:  # hashing a decodable image should not fail; report, go on
        out["degenerate"] = f"cannot hash: {type(exc).__name__}: {exc}"[:200]


def partial_digest(path: str, size: int, rel: str | None = None) -> tuple[str, str | None]:
    """SHA-1 of the first and last 4 KiB (and the size); also the full SHA-1 when those
    cover the whole file, so a small file is read once."""
    h = hashlib.sha1(str(size).encode())
    with _open(path, rel) as f:
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
    with _open(path, rel) as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _digest_job(job: tuple[str, str, int, str]) -> tuple[str, str | None, str | None, str]:
    rel, abspath, size, kind = job
    try:
        if kind == "partial":
            part, full = partial_digest(abspath, size, rel)
            return rel, part, full, ""
        return rel, None, full_digest(abspath, rel), ""
    except OSError as exc:
        return rel, None, None, f"cannot read: {exc.strerror or exc}"


# --- walking ---------------------------------------------------------------------------


class Entry(NamedTuple):
    """One path found by :func:`walk`.

    ``kind`` is ``file`` (a regular file to examine) or ``problem`` (reported and
    skipped: symlink, unreadable folder, FIFO…) with ``status`` and ``reason`` set.
    A named tuple, not a dataclass: a walk makes one per file, a million a day.
    """

    rel: str
    abspath: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    dev: int = 0
    status: str = ""
    reason: str = ""


def _symlink_problem(rel: str, abspath: str, root_real: str) -> Entry:
    try:
        os.stat(abspath)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Entry(rel, abspath, "problem", status="skipped", reason="symlink loop")
        return Entry(rel, abspath, "problem", status="skipped",
                     reason=f"dangling symlink ({exc.strerror})")
    real = os.path.realpath(abspath)
    if not is_inside(real, root_real):
        return Entry(rel, abspath, "problem", status="skipped",
                     reason="symlink leaves the image root (not followed)")
    return Entry(rel, abspath, "problem", status="skipped",
                 reason="symlink (not followed; its target is listed under its own path)")


_SPECIAL = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
            (stat.S_ISBLK, "block device"))


def walk(root: Path, *, skip: Iterable[Path] = ()) -> Iterator[Entry]:
    """Every path under ``root``, depth first in name order, without following symlinks.

    Folders in ``skip`` (the workspace and its quarantine) are left out; everything
    else that is not a regular file is yielded as a ``problem`` entry, never dropped.
    """
    root_s = os.fspath(root)
    root_real = os.path.realpath(root_s)
    skip_ids = set()
    for p in skip:
        try:
            st = os.stat(p)
            skip_ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    stack: list[tuple[str, str]] = [("", root_s)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(rel_dir or ".", abs_dir, "problem", status="unreadable",
                        reason=f"cannot list folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                yield Entry(rel, e.path, "problem", status="unreadable",
                            reason=f"cannot stat: {exc.strerror or exc}")
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                yield _symlink_problem(rel, e.path, root_real)
            elif stat.S_ISDIR(mode):
                if (st.st_dev, st.st_ino) in skip_ids:
                    log.info("skipping %s: it is the workspace", e.path)
                    continue
                subdirs.append((rel, e.path))
            elif stat.S_ISREG(mode):
                yield Entry(rel, e.path, "file", st.st_size, st.st_mtime_ns, st.st_ino,
                            st.st_dev)
            else:
                what = next((n for test, n in _SPECIAL if test(mode)), "special file")
                yield Entry(rel, e.path, "problem", status="unreadable",
                            reason=f"not a regular file ({what})")
        stack.extend(reversed(subdirs))


def display_path(rel: str) -> str:
    """A path for CSV/terminal output: undecodable bytes become ``\\xNN``.

    Example:
        >>> display_path(os.fsdecode(b"a/\\xff.jpg"))
        'a/\\\\xff.jpg'
    """
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _key(rel: str) -> bytes:
    return os.fsencode(rel)


# --- the SQLite inventory ----------------------------------------------------------------

_DDL = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,      -- os.fsencode(relative POSIX path)
    kind TEXT NOT NULL,         -- file | problem
    size INTEGER, mtime_ns INTEGER, ino INTEGER, dev INTEGER,
    sha1 TEXT, partial TEXT,
    width INTEGER, height INTEGER, format TEXT,
    status TEXT, reason TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_size ON files(size);
CREATE TABLE IF NOT EXISTS hashes (
    path BLOB NOT NULL, method TEXT NOT NULL,
    hash TEXT, degenerate TEXT,
    thumb BLOB,                 -- THUMB_SIDE^2 grey bytes, beside a hash
    PRIMARY KEY (path, method)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Inventory:
    """The SQLite inventory of one workspace (WAL mode, batched transactions)."""

    def __init__(self, path: Path, *, root: Path, max_pixels: int,
                 formats: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.formats = tuple(formats)
        self._changed = False
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_DDL)
        except sqlite3.DatabaseError as exc:
            raise WeaklabelError(
                f"{self.path}: not a usable inventory ({exc}); delete it to rebuild"
            ) from exc
        self._bind(os.path.realpath(root), max_pixels)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _bind(self, root_real: str, max_pixels: int) -> None:
        """Reset what no longer holds: another root, schema or decode limit."""
        version = self._meta("schema")
        if version is not None and version != str(SCHEMA_VERSION):
            # Columns may differ between versions; the rows are reset below anyway.
            self.db.execute("DROP TABLE IF EXISTS hashes")
            self.db.executescript(_DDL)
        self.db.execute("BEGIN")
        old_root = self._meta("root")
        if version != str(SCHEMA_VERSION) or old_root != json.dumps(root_real):
            if old_root is not None:
                log.warning("inventory was built for %s; starting a new one for %s",
                            json.loads(old_root), root_real)
            self.db.execute("DELETE FROM files")
            self.db.execute("DELETE FROM hashes")
        wanted = json.dumps(sorted(self.formats))
        if self._meta("max_pixels") != str(max_pixels) or self._meta("formats") != wanted:
            self.db.execute("UPDATE files SET status=NULL, reason=NULL WHERE kind='file'")
            self.db.execute("DELETE FROM hashes")
        self._set_meta("formats", wanted)
        self._set_meta("schema", str(SCHEMA_VERSION))
        self._set_meta("root", json.dumps(root_real))
        self._set_meta("max_pixels", str(max_pixels))
        self.db.execute("COMMIT")

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
        from tqdm import tqdm

        key = None if hash_spec is None else hash_key(*hash_spec)
        known = self._known(key)
        self._changed = False
        counts = {"seen": 0, "read": 0, "removed": 0}
        bar = tqdm(desc="inventory", unit="file", disable=True if quiet else None,
                   file=sys.stderr, dynamic_ncols=True)
        pool = _Pool(workers)
        try:
            buf: list[Entry] = []
            for entry in walk(root, skip=skip):
                buf.append(entry)
                if len(buf) >= batch:
                    self._scan_batch(buf, known, check, hash_spec, key, max_pixels, pool,
                                     counts, bar)
                    buf = []
            if buf:
                self._scan_batch(buf, known, check, hash_spec, key, max_pixels, pool, counts,
                                 bar)
        finally:
            pool.close()
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
                    max_pixels: int, pool: _Pool, counts: dict[str, int], bar: Any) -> None:
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
            if (old is not None and old[0] == "file" and old[1] == e.size
                    and old[2] == e.mtime_ns):
                status, has_hash = old[5], old[6]
                if (old[3], old[4]) != (e.ino, e.dev):  # same content, new inode (copied back)
                    moved.append((e.ino, e.dev, k))
            else:
                status, has_hash = None, 0
                new.append((k, e.size, e.mtime_ns, e.ino, e.dev))
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
        for res in pool.imap(examine, tasks):
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
        self.db.execute("COMMIT")

    # -- the exact-duplicate funnel ----------------------------------------------------

    def digest_collisions(self, root: Path, *, workers: int, quiet: bool = True) -> dict[str, int]:
        """Fill ``partial`` then ``sha1`` only where needed to find exact duplicates.

        Files of a unique size (counting hard links to one inode once) are never read;
        same-size files get a partial hash (first + last 4 KiB); only files whose size
        and partial hash collide get a full, chunked SHA-1. Zero-byte files are skipped.
        Reading and SHA-1 release the GIL, so ``workers`` threads share the work with no
        process to start.
        """
        counts = {"partial": 0, "full": 0}
        if self._meta("funnel") == "done":
            return counts  # no file came, went or changed since the last complete funnel
        for stage in ("partial", "full"):
            if stage == "partial":
                sql = ("SELECT path, size FROM files WHERE kind='file' AND size > 0 "
                       "AND partial IS NULL AND size IN (SELECT size FROM files "
                       "WHERE kind='file' AND size > 0 GROUP BY size "
                       "HAVING COUNT(DISTINCT ino || ':' || dev) > 1)")
            else:
                sql = ("SELECT path, size FROM files WHERE kind='file' AND size > 0 "
                       "AND sha1 IS NULL AND partial IS NOT NULL AND (size, partial) IN "
                       "(SELECT size, partial FROM files WHERE kind='file' AND "
                       "partial IS NOT NULL GROUP BY size, partial "
                       "HAVING COUNT(DISTINCT ino || ':' || dev) > 1)")
            base = os.fspath(root)
            jobs = [(os.fsdecode(p), os.path.join(base, os.fsdecode(p)), size, stage)
                    for p, size in self.db.execute(sql)]
            counts[stage] = len(jobs)
            self._run_digests(jobs, workers, quiet, stage)
        self._set_meta("funnel", "done")
        return counts

    def _run_digests(self, jobs: list[tuple[str, str, int, str]], workers: int, quiet: bool,
                     stage: str) -> None:
        from tqdm import tqdm

        if not jobs:
            return
        # Threads pay off only when there is real reading to share out.
        to_read = sum(min(size, 2 * PARTIAL_BLOCK) if kind == "partial" else size
                      for _, _, size, kind in jobs)
        if workers > 1 and len(jobs) > 1 and to_read > 16 * CHUNK:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as ex:
                results = list(tqdm(ex.map(_digest_job, jobs, chunksize=64), total=len(jobs),
                                    desc=f"sha1 ({stage})", unit="file",
                                    disable=True if quiet else None, file=sys.stderr))
        else:
            results = [_digest_job(j) for j in jobs]
        self.db.execute("BEGIN")
        self.db.executemany("UPDATE files SET status='unreadable', reason=? WHERE path=?",
                            [(err, _key(rel)) for rel, _, _, err in results if err])
        self.db.executemany("UPDATE files SET partial=? WHERE path=?",
                            [(part, _key(rel)) for rel, part, _, _ in results
                             if part is not None])
        self.db.executemany("UPDATE files SET sha1=? WHERE path=?",
                            [(full, _key(rel)) for rel, _, full, _ in results
                             if full is not None])
        self.db.execute("COMMIT")


def _map_part(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` over one partition, on an engine's worker."""
    return [fn(x) for x in items]


class _Pool:
    """``workers`` processes, or plain in-process calls for one worker."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: Any = None

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        from weaklabel.engine import current

        eng = current()
        if eng is not None and items:  # the Dask engine: chunks of files on the cluster
            size = max(1, min(256, -(-len(items) // (eng.workers * 4))))
            parts = [items[i : i + size] for i in range(0, len(items), size)]
            return (r for part in eng.imap(_map_part, parts, fn) for r in part)
        if self.workers == 1 or len(items) < 8:
            return map(fn, items)
        if self._pool is None:
            import multiprocessing

            self._pool = multiprocessing.get_context().Pool(self.workers)
        chunk = max(1, min(64, len(items) // (self.workers * 8)))
        return self._pool.imap(fn, items, chunksize=chunk)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None


def open_inventory(ws_root: Path, *, root: Path, max_pixels: int,
                   formats: tuple[str, ...] = ()) -> Inventory:
    """Open (create) ``WORKSPACE/inventory.sqlite`` bound to the image ``root``; statuses
    are reset when ``max_pixels`` or the wanted ``formats`` change."""
    Path(ws_root).mkdir(parents=True, exist_ok=True)
    return Inventory(Path(ws_root) / INVENTORY, root=root, max_pixels=max_pixels,
                     formats=formats)
