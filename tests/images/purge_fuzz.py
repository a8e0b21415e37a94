"""Differential fuzzing of purge against Pillow: valid files of every format Pillow writes
here, damaged by seeded mutations, each judged by purge and by the oracle.

Shared by ``tests/images/test_purge_fuzz.py`` (a seeded few hundred files) and
``bench/bench_images.py --only purge-fuzz`` (a few thousand). Nothing is downloaded:
every valid file is drawn and saved by Pillow here, every damaged one made from it.

The oracle is what purge promises (README, "Image hygiene"): Pillow opens the file and
loads every frame, with truncated data an error (``LOAD_TRUNCATED_IMAGES`` off), the
decompression-bomb rule at ``images.max_pixels`` (its warning an error), and Pillow's
``UserWarning`` s (corrupt EXIF and the like) ignored, as purge does.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, features

MAX_PIXELS = 89_478_485  # images.max_pixels' default, Pillow's own limit


def oracle(path: Path | str, max_pixels: int = MAX_PIXELS) -> tuple[bool, str]:
    """``(loads, why)``: whether Pillow opens ``path`` and loads every frame under the
    settings purge runs with; ``why`` is the exception when it does not."""
    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                for k in range(1, getattr(im, "n_frames", 1)):
                    im.seek(k)
                    im.load()
        return True, ""
    except Exception as exc:  # the oracle's verdict, whatever Pillow raised
        return False, f"{type(exc).__name__}: {exc}"[:160]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


# --- valid files -----------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """Smooth colour with noise: every JPEG block has AC data, PNG rows differ."""
    from jpeg_damage import picture as noisy

    return noisy(seed, size, noise_max=32)


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x0112] = 1  # orientation
    ex[0x010F] = "weaklabel"  # make
    return ex.tobytes()


def _anim(fmt: str, seed: int, size: tuple[int, int], **kw: object) -> bytes:
    frames = [picture(seed + k, size) for k in range(3)]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)


MAKERS: dict[str, Callable[[int, tuple[int, int]], bytes]] = {
    "jpeg": lambda s, z: _save(picture(s, z), "JPEG", quality=85),
    "jpeg_progressive": lambda s, z: _save(picture(s, z), "JPEG", quality=85, progressive=True),
    "jpeg_grey": lambda s, z: _save(picture(s, z).convert("L"), "JPEG", quality=80),
    "jpeg_cmyk": lambda s, z: _save(picture(s, z).convert("CMYK"), "JPEG", quality=85),
    "jpeg_exif_icc": lambda s, z: _save(picture(s, z), "JPEG", quality=90, exif=_exif(),
                                        icc_profile=_icc()),
    "jpeg_restart": lambda s, z: _save(picture(s, z), "JPEG", quality=85,
                                       restart_marker_rows=1),
    "mpo": lambda s, z: _anim("MPO", s, z),
    "png": lambda s, z: _save(picture(s, z), "PNG"),
    "png_la": lambda s, z: _save(picture(s, z).convert("LA"), "PNG"),
    "png_1bit": lambda s, z: _save(picture(s, z).convert("1"), "PNG"),
    "png_16bit": lambda s, z: _save(picture(s, z).convert("I;16"), "PNG"),
    "png_palette": lambda s, z: _save(picture(s, z).convert("P"), "PNG"),
    "png_rgba": lambda s, z: _save(picture(s, z).convert("RGBA"), "PNG"),
    "png_interlaced": lambda s, z: _interlaced(picture(s, z)),
    "png_text_after": lambda s, z: _text_after(_save(picture(s, z), "PNG")),
    "apng": lambda s, z: _anim("PNG", s, z),
    "gif": lambda s, z: _save(picture(s, z).convert("P"), "GIF"),
    "gif_anim": lambda s, z: _anim("GIF", s, z),
    "webp": lambda s, z: _save(picture(s, z), "WEBP", quality=80),
    "webp_lossless": lambda s, z: _save(picture(s, z), "WEBP", lossless=True),
    "webp_anim": lambda s, z: _anim("WEBP", s, z),
    "bmp": lambda s, z: _save(picture(s, z), "BMP"),
    "tiff": lambda s, z: _save(picture(s, z), "TIFF"),
    "tiff_lzw": lambda s, z: _save(picture(s, z), "TIFF", compression="tiff_lzw"),
    "tiff_deflate": lambda s, z: _save(picture(s, z), "TIFF", compression="tiff_adobe_deflate"),
    "tiff_jpeg": lambda s, z: _save(picture(s, z), "TIFF", compression="jpeg"),
    "tiff_pages": lambda s, z: _anim("TIFF", s, z),
    "ico": lambda s, z: _save(picture(s, z), "ICO", sizes=[(min(z), min(z))] if min(z) <= 256
                              else [(256, 256)]),
    "tga": lambda s, z: _save(picture(s, z), "TGA"),
    "ppm": lambda s, z: _save(picture(s, z), "PPM"),
    "pgm": lambda s, z: _save(picture(s, z).convert("L"), "PPM"),
    "pbm": lambda s, z: _save(picture(s, z).convert("1"), "PPM"),
    "pcx": lambda s, z: _save(picture(s, z), "PCX"),
    "qoi": lambda s, z: _save(picture(s, z), "QOI"),
    # fully decoded by purge, so only its sniff and error handling are on trial here
    "tga_rle": lambda s, z: _save(picture(s, z), "TGA", compression="tga_rle"),
    "sgi": lambda s, z: _save(picture(s, z), "SGI"),
    "dds": lambda s, z: _save(picture(s, z).convert("RGBA"), "DDS"),
    "icns": lambda s, z: _save(picture(s, (64, 64)).convert("RGBA"), "ICNS"),
    "blp": lambda s, z: _save(picture(s, z).convert("P"), "BLP"),
    "xbm": lambda s, z: _save(picture(s, z).convert("1"), "XBM"),
    "msp": lambda s, z: _save(picture(s, z).convert("1"), "MSP"),
    "pfm": lambda s, z: _save(picture(s, z).convert("F"), "PPM"),
}
if not features.check("webp"):  # pragma: no cover - every wheel has it
    for _k in ("webp", "webp_lossless", "webp_anim"):
        MAKERS.pop(_k)
if features.check("jpg_2000"):
    MAKERS["jp2"] = lambda s, z: _save(picture(s, z), "JPEG2000")
    MAKERS["j2k"] = lambda s, z: _save(picture(s, z), "JPEG2000", no_jp2=True)
# Last, so that every other kind keeps its seeds: chunks after the pixels that Pillow's
# load() reads whole and only stores (tEXt, eXIf) or skips (tIME, a private chunk), which
# purge judges without decoding (checks._READ_AFTER_PIXELS).
MAKERS["png_stored_after"] = lambda s, z: _text_after(
    _save(picture(s, z), "PNG"),
    _chunk(b"tEXt", b"Comment\x00made by a camera")
    + _chunk(b"tIME", b"\x07\xea\x0c\x02\x03\x0f\x00")
    + _chunk(b"eXIf", _exif()[len(b"Exif\x00\x00"):])
    + _chunk(b"vpAg", b"\x00\x00\x00\x3d\x00\x00\x00\x2f\x00"))


def _interlaced(im: Image.Image) -> bytes:
    """An Adam7 PNG: Pillow does not write them, so the rows are laid out here."""
    import zlib

    a = np.asarray(im.convert("RGB"))
    h, w, _ = a.shape
    raw = bytearray()
    for y0, x0, dy, dx in ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4),
                           (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)):
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 6)) + chunk(b"IEND", b""))


def _chunk(t: bytes, d: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))


def _text_after(png: bytes, after: bytes | None = None) -> bytes:
    """The PNG's image data in 1 KiB IDAT chunks, then text and time chunks before IEND,
    as cameras and editors write them (Pillow's own writer puts text first); ``after``:
    other chunks there instead."""
    import zlib

    if after is None:
        after = (_chunk(b"tEXt", b"Comment\x00made by a camera")
                 + _chunk(b"zTXt", b"Description\x00\x00" + zlib.compress(b"a long caption " * 20))
                 + _chunk(b"tIME", b"\x07\xea\x0c\x02\x03\x0f\x00"))
    pos, idat, before = 8, b"", b""
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        t, d = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        if t == b"IDAT":
            idat += d
        elif t != b"IEND":
            before += _chunk(t, d)
        pos += 12 + n
    return (png[:8] + before + b"".join(_chunk(b"IDAT", idat[k:k + 1024])
                                        for k in range(0, len(idat), 1024))
            + after + _chunk(b"IEND", b""))


# --- structure: chunks and segments to repeat or remove ---------------------------------------


def units(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(start, end, type)`` of the file's chunks (PNG, RIFF) or marker segments (JPEG,
    each scan's data included); empty for a format without such units."""
    out: list[tuple[int, int, bytes]] = []
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 12 <= len(data):
            (n,) = struct.unpack(">I", data[pos:pos + 4])
            out.append((pos, min(len(data), pos + 12 + n), data[pos + 4:pos + 8]))
            pos += 12 + n
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        pos = 12
        while pos + 8 <= len(data):
            (n,) = struct.unpack("<I", data[pos + 4:pos + 8])
            end = min(len(data), pos + 8 + n + (n & 1))
            out.append((pos, end, data[pos:pos + 4]))
            pos = end
    elif data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xD9:
            end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
            if data[pos + 1] == 0xDA:  # the scan's data runs to the next non-RST marker
                k = end
                while k + 1 < len(data) and not (
                        data[k] == 0xFF and data[k + 1] != 0 and not 0xD0 <= data[k + 1] <= 0xD7):
                    k += 1
                end = k
            out.append((pos, end, data[pos + 1:pos + 2]))
            pos = end
    return out


# --- mutations -------------------------------------------------------------------------------

MUTATIONS = ("cut", "cut after header", "cut inside a unit", "cut in last bytes",
             "byte flipped: header", "byte flipped: middle", "byte flipped: tail",
             "512 bytes zeroed", "bytes removed", "bytes inserted",
             "unit repeated", "unit removed", "trailing garbage", "second half replaced")
"""Row names of the fuzz table. A *unit* is a chunk (PNG, WebP), a marker segment
(JPEG) or, in other formats, a run of 1–64 bytes."""


def mutate(data: bytes, other: bytes, what: str, rng: np.random.Generator) -> bytes:
    """One seeded mutation of ``data``; ``other`` is a valid file of the same format."""
    n = len(data)
    if what == "cut":
        return data[:int(rng.integers(1, n))]
    if what == "cut after header":
        lo = min(8, n - 1)
        return data[:int(rng.integers(lo, max(lo + 1, min(n, 96))))]
    if what == "cut inside a unit":
        start, end = _unit(data, rng) or (n // 2, n)
        return data[:int(rng.integers(start + 1, max(start + 2, end)))]
    if what == "cut in last bytes":
        return data[:n - int(rng.integers(1, min(9, n)))]
    if what.startswith("byte flipped"):
        lo, hi = {"header": (0, min(n, 64)), "middle": (n // 4, 3 * n // 4),
                  "tail": (max(0, n - 64), n)}[what.split(": ")[1]]
        at = int(rng.integers(lo, hi))
        b = bytearray(data)
        b[at] ^= int(rng.integers(1, 256))
        return bytes(b)
    if what == "512 bytes zeroed":
        at = int(rng.integers(0, max(1, n - 512)))
        return data[:at] + bytes(min(512, n - at)) + data[at + 512:]
    if what in ("bytes removed", "bytes inserted"):  # a transfer that lost or gained bytes
        at, run = int(rng.integers(n // 8, n - 1)), int(rng.integers(1, 4097))
        if what == "bytes removed":
            return data[:at] + data[at + run:]
        return data[:at] + rng.integers(0, 256, run, dtype=np.uint8).tobytes() + data[at:]
    if what in ("unit repeated", "unit removed"):
        unit = _unit(data, rng)
        if unit:
            start, end = unit
        else:
            start = int(rng.integers(0, n - 1))
            end = min(n, start + int(rng.integers(1, 65)))
        if what == "unit repeated":
            return data[:end] + data[start:end] + data[end:]
        return data[:start] + data[end:]
    if what == "trailing garbage":
        return data + rng.integers(0, 256, int(rng.integers(1, 2049)), dtype=np.uint8).tobytes()
    if what == "second half replaced":
        return data[:n // 2] + other[len(other) // 2:]
    raise ValueError(what)


def _unit(data: bytes, rng: np.random.Generator) -> tuple[int, int] | None:
    """A unit of ``data``, its type drawn first (so a file of 180 IDAT chunks and one
    tEXt has its tEXt drawn as often as its IDATs), then one unit of that type."""
    us = units(data)
    if not us:
        return None
    types = sorted({t for _, _, t in us})
    kind = types[int(rng.integers(0, len(types)))]
    of = [(a, b) for a, b, t in us if t == kind]
    return of[int(rng.integers(0, len(of)))]


def corpus(*, seed: int, sizes: tuple[tuple[int, int], ...], instances: int,
           kinds: tuple[str, ...] | None = None) -> Iterator[tuple[str, str, str, bytes]]:
    """``(kind, mutation, name, bytes)`` for every kind of :data:`MAKERS` (or ``kinds``),
    every size, the valid file (mutation ``valid``) and ``instances`` seeded mutations
    of each :data:`MUTATIONS`."""
    for k, kind in enumerate(kinds or tuple(MAKERS)):
        make = MAKERS[kind]
        for z, size in enumerate(sizes):
            tag = f"{kind}-{size[0]}x{size[1]}"
            data = make(seed + 10 * k + z, size)
            other = make(seed + 10 * k + z + 5, size)
            yield kind, "valid", f"{tag}-valid", data
            rng = np.random.default_rng([seed, k, z])
            for m, what in enumerate(MUTATIONS):
                for i in range(instances):
                    yield kind, what, f"{tag}-m{m}-{i}", mutate(data, other, what, rng)
