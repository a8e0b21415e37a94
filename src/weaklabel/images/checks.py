"""Content checks: what a file is, and whether Pillow decodes it completely.

Files are recognised by their first bytes, never by extension, and Pillow has the last
word: :func:`sniff` only names what Pillow cannot open (``html``, ``zip archive``…).
:func:`examine` is the per-file work of the inventory (it runs in worker processes):
open, decode as far as the check needs, hash when asked.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from weaklabel.errors import WeaklabelError
from weaklabel.images.hashes import draft_side, hash_image
from weaklabel.images.walk import open_regular

# Every error class Pillow's plugins raise on bad data, not only OSError.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, TypeError, NotImplementedError, IndexError,
    KeyError, struct.error, EOFError, ZeroDivisionError, OverflowError, MemoryError,
    RuntimeError, AttributeError, AssertionError,
)

# --- content sniffing -------------------------------------------------------------------


def _sniff_image(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG2000"
    if head[:4] == b"8BPS":
        return "PSD"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    return None


_WHAT = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
         "TIFF": "tiff", "JPEG2000": "jpeg 2000", "PSD": "photoshop", "ICO": "icon",
         "AVIF": "avif", "HEIF": "heif"}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis")


def _sniff_other(head: bytes) -> str:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<error"):
        return "svg (vector, not decoded)" if b"<svg" in stripped else "xml"
    if stripped.startswith(b"<svg"):
        return "svg (vector, not decoded)"
    if stripped.startswith((b"{", b"[")):
        return "json or text"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip archive"
    if head[:2] == b"\x1f\x8b":
        return "gzip archive"
    if head[:4] == b"%PDF":
        return "pdf"
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "text"
    return "unknown bytes"


def sniff(head: bytes) -> tuple[str | None, str]:
    """What the first bytes of a file say it is.

    Returns:
        ``(image_format, what)``: an image format name (``JPEG``, ``PNG``…) or None, and
        a short description (``html``, ``zip archive``…) used as the reason for
        non-images.
    """
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        fmt = "AVIF" if brand in (b"avif", b"avis") else "HEIF" if brand in _HEIF_BRANDS \
            else None
        return (fmt, _WHAT[fmt]) if fmt else (None, "video or media container")
    fmt = _sniff_image(head)
    if fmt is not None:
        return fmt, _WHAT[fmt]
    return None, _sniff_other(head)


# Formats this machine may lack a decoder for: "unsupported", not corrupt.
_FEATURE_OF = {"AVIF": "avif", "WEBP": "webp", "JPEG2000": "jpg_2000", "HEIF": None}


def decoder_available(fmt: str) -> bool:
    """Whether this machine's Pillow has a decoder for ``fmt`` (a sniffed format)."""
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


def classify_error(exc: BaseException) -> tuple[str, str]:
    """``(status, reason)`` of a decoder's exception: ``truncated`` or ``decode_error``."""
    msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
    low = msg.lower()
    if isinstance(exc, EOFError) or "truncat" in low or "premature end" in low:
        return "truncated", msg
    return "decode_error", msg


def examine(task: Task) -> dict[str, Any]:
    """Sniff, decode (as far as the check needs) and hash one file.

    Returns a dict with ``path``, ``status``, ``reason``, ``format``, ``width``,
    ``height`` and, when a hash was asked for, ``hash`` (hex), ``thumb`` and
    ``degenerate`` (None or why the hash is meaningless). Never raises for a bad file.
    """
    try:
        f = open_regular(task.abspath, task.rel)
    except OSError as exc:
        out = _blank(task)
        out.update(status="unreadable", reason=f"cannot open: {exc.strerror or exc}")
        out["degenerate"] = "unreadable"
        return out
    with f:
        return examine_open(f, task)


def _blank(task: Task) -> dict[str, Any]:
    return {"path": task.rel, "status": None, "reason": "", "format": None, "width": None,
            "height": None, "hash": None, "degenerate": None, "thumb": None}


def examine_open(f: Any, task: Task) -> dict[str, Any]:
    """:func:`examine` on a file already open for reading (a local file, or an object's
    body read in place): the same result for the same bytes."""
    out = _blank(task)
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
    decode(f, fmt, what, task, out)
    return out


def decode(f: Any, fmt: str | None, what: str, task: Task, out: dict[str, Any]) -> None:
    """Decode the open file ``f`` into ``out`` (status, reason, size, hash); ``fmt`` and
    ``what`` are the sniff's verdict, used only when Pillow cannot open it."""
    from PIL import Image, ImageFile

    # Truncated data must raise, whatever a caller set; put the caller's values back after.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = task.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": the status says it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            _decode_checked(f, fmt, what, task, out)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


def _decode_checked(f: Any, fmt: str | None, what: str, task: Task,
                    out: dict[str, Any]) -> None:
    im = _open_image(f, fmt, what, task, out)
    if im is None:
        return
    with im:
        if not _header_ok(im, fmt, task, out):
            return
        if im.format == "JPEG" and task.hash_spec is None and \
                im.size[0] * im.size[1] <= _SURE_PIXELS and _jpeg_sure(f):
            out["status"] = "ok"  # its markers leave no doubt: Pillow loads it
            return
        if im.format == "PNG" and task.hash_spec is None:
            verdict = check_png_stream(f, text_memory=im.png.text_memory)
            if verdict is not None:
                out.update(status=verdict[0], reason=verdict[1])
                if verdict[0] != "ok":
                    out["degenerate"] = "not decodable"
                return
        _load_frames(im, task, out)


_SURE_PIXELS = 1 << 28
"""Above this many pixels a JPEG is decoded even when its markers are sound: whether
Pillow can allocate the picture is then a question of memory, not of the file."""


def _jpeg_sure(f: Any) -> bool:
    """Whether the JPEG's markers alone show that Pillow loads it
    (:func:`~weaklabel.images.jpeg_stream.jpeg_well_formed`)."""
    from weaklabel.images.jpeg_stream import jpeg_well_formed

    f.seek(0)
    data = f.read()
    f.seek(0)
    return jpeg_well_formed(data)


def bomb_reason(exc: BaseException, limit: int) -> str:
    """The reason of a ``decompression_bomb`` Pillow raised: the pixels the header claims
    against ``images.max_pixels`` (Pillow's own message names twice that limit, where it
    raises instead of warning)."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    claimed = f"{int(m.group(1))} pixels >" if m else "more pixels than the"
    return f"header claims {claimed} limit {limit} pixels (images.max_pixels)"


def _open_image(f: Any, fmt: str | None, what: str, task: Task, out: dict[str, Any]) -> Any:
    """``Image.open(f)``, or None with the verdict in ``out``."""
    from PIL import Image

    try:
        return Image.open(f)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        out.update(status="decompression_bomb", reason=bomb_reason(exc, task.max_pixels),
                   degenerate="decompression bomb")
    except Image.UnidentifiedImageError as exc:
        if fmt is None:
            out.update(status="not_an_image", reason=what, degenerate="not an image")
            return None
        if not decoder_available(fmt):
            out.update(status="unsupported",
                       reason=f"{fmt}: no decoder for this format installed here")
        else:
            # Pillow names the file object it was given (<_io.BufferedReader name=7>)
            why = re.sub(r" <[^<>]*>$", "", str(exc))
            out.update(status="decode_error", reason=f"{fmt} header: {why}"[:200])
        out["degenerate"] = "not decodable"
    except DECODE_ERRORS as exc:
        out.update(zip(("status", "reason"), classify_error(exc), strict=False))
        out["degenerate"] = "not decodable"
    except Exception as exc:  # a plugin bug on a hostile file must not stop the run
        out.update(status="decode_error",
                   reason=f"unexpected {type(exc).__name__}: {exc}"[:200],
                   degenerate="not decodable")
    return None


def _header_ok(im: Any, fmt: str | None, task: Task, out: dict[str, Any]) -> bool:
    """Size and format from the header, before a single pixel is allocated."""
    w, h = im.size
    out.update(width=w, height=h, format=im.format or fmt)
    if task.formats and im.format not in task.formats:
        out.update(status="unsupported", degenerate="format not wanted",
                   reason=f"{im.format}: not in images.formats ({', '.join(task.formats)})")
        return False
    if w * h > task.max_pixels:
        out.update(status="decompression_bomb",
                   reason=f"{w}x{h} = {w * h} pixels > limit {task.max_pixels}",
                   degenerate="decompression bomb")
        return False
    if w <= 0 or h <= 0:
        out.update(status="decode_error", reason=f"invalid size {w}x{h}",
                   degenerate="not decodable")
        return False
    return True


def _load_frames(im: Any, task: Task, out: dict[str, Any]) -> None:
    """Decode every frame (the first at reduced scale for a JPEG), hash the first."""
    from PIL import Image

    w, h = im.size
    try:
        if im.format == "JPEG":
            # Reduced-scale DCT decode: every byte of entropy data is still parsed (so
            # truncation and bad markers raise), at up to 1/64 the pixels; never
            # smaller than the hash's own input needs.
            side = draft_side(task.hash_spec)
            if side is None:
                im.draft("L", (max(1, w // 8), max(1, h // 8)))
            elif side:
                im.draft("L", (side, side))
        im.load()
        if task.hash_spec is not None:
            hash_image(im, task.hash_spec, out)  # of the first frame
        # Pillow opens an animation at its first frame; a broken later frame (an APNG
        # missing an fcTL chunk) only raises when reached.
        for k in range(1, getattr(im, "n_frames", 1)):
            im.seek(k)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        out.update(status="decompression_bomb", reason=bomb_reason(exc, task.max_pixels),
                   degenerate="decompression bomb", hash=None, thumb=None)
        return
    except DECODE_ERRORS as exc:
        out.update(zip(("status", "reason"), classify_error(exc), strict=False))
        out.update(degenerate="not decodable", hash=None, thumb=None)
        return
    except Exception as exc:
        out.update(status="decode_error",
                   reason=f"unexpected {type(exc).__name__}: {exc}"[:200],
                   degenerate="not decodable", hash=None, thumb=None)
        return
    out["status"] = "ok"


# --- PNG without pixels -----------------------------------------------------------------

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inflate_lib() -> Any:
    try:  # ISA-L inflates about 1.6x faster than zlib, and inflating is most of the cost
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - a platform without isal wheels
        return zlib


class _FileEnds(Exception):
    """The file ends before the chunk being read does (the message says where)."""


def _next_chunk(f: Any, end: int, crc: bool) -> tuple[bytes, bytes, tuple[str, str] | None]:
    """``(type, data, None)``, or ``(type, b"", verdict)`` for a chunk that is bad.

    As Pillow reads: an IDAT chunk the file cuts short (or whose length field claims
    more than the file holds) yields the bytes that are there, since the pixels may
    need no more. The CRC is checked only when ``crc`` (the chunks before the image
    data, which Pillow checks when it opens the file); Pillow never checks those of
    IDAT or later chunks, so a file whose only fault is such a checksum is ``ok``.

    Raises:
        _FileEnds: the file ends first (outside an IDAT chunk's data).
    """
    head = f.read(8)
    if len(head) < 8:
        raise _FileEnds("PNG: file ends before IEND")
    length, ctype = struct.unpack(">I4s", head)
    if ctype == b"IDAT":
        return ctype, f.read(max(0, min(length, end - f.tell()))), None
    if length > 0x7FFFFFFF:
        return ctype, b"", ("decode_error", f"PNG: chunk {ctype!r} claims {length} bytes")
    data = f.read(length)
    check = f.read(4)
    if len(data) < length or len(check) < 4:
        raise _FileEnds(f"PNG: file ends inside chunk {ctype!r}")
    if crc and zlib.crc32(ctype + data) != struct.unpack(">I", check)[0]:
        return ctype, b"", ("decode_error", f"PNG: CRC mismatch in chunk {ctype!r}")
    return ctype, data, None


class _ImageData:
    """A PNG's image data, inflated piece by piece, its size and row filters checked."""

    def __init__(self) -> None:
        self.lib = _inflate_lib()
        self.inflater = self.lib.decompressobj()
        self.stride = self.expected = self.total = 0
        self.seen = False

    def header(self, data: bytes) -> bool:
        """Read IHDR; False for an interlaced or unusual file (decoded in full)."""
        if len(data) != 13:
            return False
        w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
        if interlace or color not in _PNG_CHANNELS:
            return False
        self.stride = 1 + (w * depth * _PNG_CHANNELS[color] + 7) // 8
        self.expected = self.stride * h
        return True

    def _rows_ok(self, piece: bytes) -> bool:
        first = (-self.total) % self.stride
        return max(piece[first::self.stride], default=0) <= 4

    @property
    def full(self) -> bool:
        """Every byte the pixels need is here: Pillow stops reading at this point."""
        return self.seen and self.total >= self.expected

    def feed(self, data: bytes) -> bool:
        """One IDAT chunk; False when it does not inflate or a row's filter is bad.

        False means "not sure", not "corrupt": where in the stream an inflater notices
        damage is its own affair (ISA-L reads ahead of the output asked for, and on a
        small PNG it met an invalid distance past the last byte Pillow's zlib
        inflates, so files Pillow loads were called corrupt). The full decode decides.
        """
        self.seen = True
        try:
            # No further than the pixels' last byte: Pillow's decoder stops there, so
            # surplus data and the zlib trailer's checksum never count.
            piece = self.inflater.decompress(data, self.expected - self.total)
        except self.lib.error:
            return False
        if not self._rows_ok(piece):
            return False
        self.total += len(piece)
        return True

    def finish(self) -> tuple[str, str]:
        if not self.seen:
            return ("decode_error", "PNG: no image data")
        if self.total < self.expected:
            return ("truncated",
                    f"PNG: image data ends early ({self.total} of {self.expected} bytes)")
        return ("ok", "")


def check_png_stream(f: Any, *, text_memory: int = 0) -> tuple[str, str] | None:
    """Check a PNG without building its pixels, as far as Pillow's own decoder reads:
    the zlib stream of the image data up to the last byte the pixels need, and every
    row's filter byte; the file may end, or its data be damaged, after that point.

    That is everything a full decode checks short of un-filtering the rows, at about a
    third of the time, and the same verdict: what Pillow loads is ``ok`` (a bad IDAT
    checksum, a damaged zlib trailer or surplus data included). Returns ``(status,
    reason)``, or None for an interlaced or unusual file, one whose image data does not
    inflate, or one with chunks after the pixels that Pillow parses: the caller decodes
    those in full instead. ``text_memory`` is what Pillow's open already counted
    towards ``MAX_TEXT_MEMORY`` (``im.png.text_memory``: text before the image data,
    zTXt and iTXt at their inflated size), which text after the pixels adds to.
    """
    end = f.seek(0, 2)
    f.seek(0)
    if f.read(8) != PNG_SIGNATURE:
        return None
    idat = _ImageData()
    while not idat.full:
        try:
            ctype, data, bad = _next_chunk(f, end, crc=not idat.seen)
        except _FileEnds as cut:
            return ("truncated", str(cut))
        if bad is not None:
            return bad
        if ctype == b"IHDR":
            if not idat.header(data):
                return None
        elif ctype == b"IDAT":
            if not idat.stride:
                return None
            if not idat.feed(data):
                return None  # damaged image data: the full decode has the last word
            if not idat.full and f.tell() >= end:
                return ("truncated", "PNG: file ends inside chunk b'IDAT'")
            f.read(4)  # its CRC, which Pillow never checks
        elif ctype == b"acTL":
            return None  # an animation: every frame is decoded in full instead
        elif idat.seen and ctype in (b"DDAT", b"fdAT"):
            return None  # more image data to Pillow, in a chunk this check does not read
        elif idat.seen or ctype == b"IEND":
            break  # the image data ended before the pixels did
    verdict = idat.finish()
    return _after_pixels(f, end, text_memory) if verdict[0] == "ok" else verdict


_CHUNK_TYPE = re.compile(rb"\w\w\w\w")  # Pillow's is_cid: other bytes end its walk


_READ_AFTER_PIXELS = frozenset((b"tEXt", b"eXIf"))
"""Chunks whose Pillow handler, after the pixels, only reads the chunk whole and stores
it uncompressed (``PngStream.chunk_tEXt``: split at the first NUL, Latin-1, which
decodes any byte; ``chunk_eXIf``: the bytes as they are), so the file's length alone
decides, as for a chunk without a handler (``tIME``, private chunks). tEXt also counts
towards Pillow's ``MAX_TEXT_MEMORY``, on top of the text before the pixels (compressed
text there counted inflated, so a small file can already be at the bound).
Compressed text (zTXt, iTXt: inflated, bounded), colour and other chunks whose handler
checks what it reads (iCCP, PLTE, tRNS, gAMA, cHRM, sRGB, pHYs…) send the file to the
full decode."""


def _after_pixels(f: Any, end: int, text_memory: int) -> tuple[str, str] | None:
    """The chunks after the pixels, walked as Pillow's ``load_end`` walks them up to
    IEND: a chunk the file cuts short fails the load (``Truncated File Read``), and so
    may a chunk whose handler checks or inflates what it reads, so a file with one of
    those after its image data is decoded in full instead (None); chunks Pillow skips or
    only stores (:data:`_READ_AFTER_PIXELS`) are walked here. ``f`` sits just past the
    CRC of the IDAT chunk where the pixels were complete; ``text_memory`` is Pillow's
    count of the text before them."""
    from PIL.PngImagePlugin import MAX_TEXT_MEMORY, PngStream

    while True:
        head = f.read(8)
        if len(head) < 8:
            return ("ok", "")  # Pillow's walk stops at a short chunk header
        (length,) = struct.unpack(">I", head[:4])
        ctype = head[4:]
        if ctype == b"IEND" or not _CHUNK_TYPE.fullmatch(ctype):
            return ("ok", "")
        if ctype in _READ_AFTER_PIXELS:
            if ctype == b"tEXt" and text_memory + (end - f.tell()) > MAX_TEXT_MEMORY:
                return None  # the rest of the file, as text, could pass Pillow's bound
        elif ctype != b"IDAT" and hasattr(PngStream, f"chunk_{ctype.decode('ascii')}"):
            return None
        if f.tell() + length > end:
            return ("truncated", f"PNG: file ends inside chunk {ctype!r}, after the pixels")
        f.seek(length + 4, 1)  # the data and its CRC, which Pillow never checks here
