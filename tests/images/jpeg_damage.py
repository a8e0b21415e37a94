"""A corpus of damaged JPEGs, made by code, to hold purge's JPEG verdict against Pillow's.

Shared by ``tests/images/test_jpeg_stream.py`` (a sample) and ``bench/bench_images.py
--only jpeg-damage`` (all of it). Every damage kind that could change Pillow's verdict:
cut at every kind of offset (inside each header segment, inside the entropy-coded data,
in the last bytes), bytes flipped in the headers and in the entropy data, marker codes
replaced, segments removed or repeated, markers inserted into the data, bytes after EOI.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image

BASES: dict[str, dict[str, object]] = {
    "baseline": {"quality": 85},
    "progressive": {"quality": 85, "progressive": True},
    "grey": {"quality": 80, "mode": "L"},
    "restart_blocks": {"quality": 85, "restart_marker_blocks": 3},
    "progressive_restart": {"quality": 85, "progressive": True, "restart_marker_rows": 1},
    "444_exif_comment": {"quality": 92, "subsampling": 0, "comment": b"hello",
                         "exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"},
    "optimized": {"quality": 70, "optimize": True},
    "cmyk": {"quality": 85, "mode": "CMYK"},
    "progressive_grey": {"quality": 75, "progressive": True, "mode": "L"},
}
"""How each valid file of the corpus is saved by Pillow (``mode`` converts first)."""

_CODES = (0x00, 0x01, 0x13, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC8, 0xC9, 0xCC, 0xD0, 0xD3,
          0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xE0, 0xE1, 0xEE, 0xFE, 0xFF)
"""Marker codes swapped in for real ones: each segment type, RST, SOI/EOI, DNL, DAC,
arithmetic and lossless SOFs, reserved and fill bytes."""


def picture(seed: int, size: tuple[int, int], noise_max: int = 40) -> Image.Image:
    """Smooth colour with noise, so every block has AC coefficients (and PNG rows
    differ); the fuzz corpus (purge_fuzz.py) uses it with ``noise_max`` 32."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = Image.fromarray((rng.random((5, 6, 3)) * 255).astype("uint8"))
    base = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(0, noise_max, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype("uint8"))


def base_file(name: str, size: tuple[int, int] = (77, 53), seed: int = 1) -> bytes:
    """One valid JPEG of :data:`BASES` (odd sides: partial MCUs on both axes)."""
    kw = dict(BASES[name])
    im = picture(seed, size)
    mode = kw.pop("mode", None)
    if mode:
        im = im.convert(str(mode))
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker code, start, end)`` of every marker segment, RST and EOI, in order
    (a scan's entropy-coded data is part of its SOS segment's span)."""
    out = [(0xD8, 0, 2)]
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        code = data[pos + 1]
        if code == 0xD9:
            out.append((code, pos, pos + 2))
            break
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if code == 0xDA:
            k = end
            while k + 1 < len(data):
                if data[k] == 0xFF and data[k + 1] != 0:
                    if 0xD0 <= data[k + 1] <= 0xD7:
                        out.append((data[k + 1], k, k + 2))
                        k += 2
                        continue
                    break
                k += 1
            out.append((code, pos, end))
            pos = k
            continue
        out.append((code, pos, end))
        pos = end
    return out


def header_end(data: bytes) -> int:
    """Offset just past the first SOS segment's header."""
    return next(e for c, _, e in segments(data) if c == 0xDA)


def damaged(data: bytes, *, seed: int, scale: int = 1) -> Iterator[tuple[str, bytes]]:
    """``(what, bytes)`` variants of one valid JPEG; ``scale`` > 1 samples fewer."""
    rng = np.random.default_rng(seed)
    n, head = len(data), header_end(data)
    segs = segments(data)
    # cut: every header offset, the entropy data evenly, the last bytes
    for cut in range(0, head + 8, scale):
        yield f"cut@{cut}", data[:cut]
    for cut in range(head + 8, n - 8, max(1, (n - head) // (40 // scale))):
        yield f"cut@{cut}", data[:cut]
    for k in range(1, 9):
        yield f"cut-{k}", data[:n - k]
    # header bytes flipped
    for at in range(2, head, scale):
        for x in (0x01, 0x80, 0xFF) if scale == 1 else (int(rng.integers(1, 256)),):
            b = bytearray(data)
            b[at] ^= x
            yield f"head^{x:02x}@{at}", bytes(b)
    # entropy data: flipped bytes, 0xFF / 0x00 planted, runs overwritten
    for k in range(120 // scale):
        b = bytearray(data)
        at = int(rng.integers(head, n - 2))
        kind = k % 4
        if kind == 0:
            b[at] ^= int(rng.integers(1, 256))
        elif kind == 1:
            b[at] = 0xFF
        elif kind == 2:
            b[at] = 0x00
        else:
            run = int(rng.integers(1, 24))
            b[at:at + run] = bytes([int(rng.integers(0, 256))]) * len(b[at:at + run])
        yield f"data{kind}@{at}", bytes(b)
    # marker codes replaced, segments removed and repeated
    for code, start, end in segs:
        for new in _CODES[::scale]:
            if new != code:
                b = bytearray(data)
                b[start + 1] = new
                yield f"marker{code:02x}->{new:02x}@{start}", bytes(b)
        if code not in (0xD8, 0xD9) and not 0xD0 <= code <= 0xD7:
            yield f"drop{code:02x}@{start}", data[:start] + data[end:]
            yield f"twice{code:02x}@{start}", data[:end] + data[start:end] + data[end:]
    # markers planted inside the entropy data; fill bytes; bytes after EOI
    for k, mark in enumerate((b"\xff\xd0", b"\xff\xd9", b"\xff\xd8", b"\xff\x13",
                              b"\xff\xc4\x00\x02", b"\xff\xda", b"\xff\xff")):
        at = int(rng.integers(head + 1, n - 2))
        yield f"insert{k}@{at}", data[:at] + mark + data[at:]
    eoi = n - 2
    yield "fill-before-eoi", data[:eoi] + b"\xff\xff" + data[eoi:]
    yield "junk-after-eoi", data + b"trailing junk"
    yield "jpeg-after-eoi", data + data
    yield "no-eoi", data[:eoi]
    yield "eoi-only-data", data[:head] + b"\xff\xd9"


def corpus(scale: int = 1) -> Iterator[tuple[str, bytes]]:
    """Every base file of :data:`BASES` (at two sizes when ``scale`` is 1) and its
    damaged variants, ``(name, bytes)``."""
    sizes = [(77, 53), (16, 8)] if scale == 1 else [(77, 53)]
    for k, name in enumerate(BASES):
        for size in sizes:
            data = base_file(name, size, seed=k + 1)
            tag = f"{name}-{size[0]}x{size[1]}"
            yield f"{tag}:valid", data
            for what, b in damaged(data, seed=k, scale=scale):
                yield f"{tag}:{what}", b


def pillow_loads(data: bytes) -> bool:
    """Pillow's verdict: ``Image.open().load()`` succeeds (truncated data raises)."""
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:
        return False
    return True
