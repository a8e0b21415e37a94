"""Perceptual hashes: a registry of methods (name → :class:`HashMethod`) and the one
function that hashes a decoded picture the same way for every method.

A hash sees the picture upright (EXIF orientation applied) and in grey, reduced by whole
factors first but never below twice the hash's own input side (:func:`draft_side`).
Beside each hash a 32 × 32 grey thumbnail is kept for verifying candidate pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from weaklabel.errors import WeaklabelError

MIN_STD = 2.0
"""A decoded image whose grey-level standard deviation (0–255) is below this is
"uniform" (all white, a solid colour, 1×1): its perceptual hash means nothing."""
THUMB_SIDE = 32
"""Side of the grey thumbnail stored beside each hash (``THUMB_SIDE ** 2`` bytes, box
averaged from the same upright, reduced picture the hash saw): dedup verifies candidate
pairs beyond the hash threshold on it (:func:`weaklabel.images.dedup.thumb_agreement`)."""


@dataclass(frozen=True)
class HashMethod:
    """One perceptual hash: an imagehash function and the side it resizes a picture to.

    ``input_side(hash_size)`` is that side, or None when the method scales with the
    image's own size (whash), so the picture must not be reduced first.
    """

    name: str
    function: str
    input_side: Callable[[int], int] | None
    own: Callable[[Any, int], Any] | None = None
    """The same hash computed here, bit for bit (a test compares), so that a worker
    never imports what imagehash's own needs (scipy's FFT: 0.38 CPU s a process)."""

    def compute(self, grey: Any, hash_size: int) -> Any:
        """The ``imagehash.ImageHash`` of a grey PIL image."""
        if self.own is not None:
            return self.own(grey, hash_size)
        import imagehash

        return getattr(imagehash, self.function)(grey, hash_size=hash_size)


@functools.lru_cache(maxsize=8)
def _dct_rows(size: int, side: int) -> Any:
    """The first ``size`` rows of the unnormalised DCT-II matrix of length ``side``
    (``scipy.fftpack.dct``'s type 2: ``2 cos(pi k (2n + 1) / 2N)``)."""
    import numpy as np

    n = np.arange(side)
    return 2 * np.cos(np.pi * np.arange(size)[:, None] * (2 * n[None, :] + 1) / (2 * side))


def phash_of(grey: Any, hash_size: int = 8) -> Any:
    """``imagehash.phash`` of a PIL image, bit for bit, by two small matrix products (only
    the 8 × 8 low corner of the DCT is needed) instead of scipy's DCT: as fast a call,
    without importing ``scipy.fftpack`` (0.38 CPU s) in every worker process.

    Where a coefficient ties with the median (symmetry makes coefficients equal or 0:
    a picture 2 px tall, one symmetric about its diagonal), the bit is decided by
    floating-point noise, and the matrix products' noise is not scipy's: such a picture
    (compared after rounding to 1e-6) is hashed by ``imagehash.phash`` itself, so the
    hash is imagehash's on every input.
    """
    import imagehash
    import numpy as np
    from PIL import Image

    side = 4 * hash_size
    small = grey.convert("L").resize((side, side), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    c = _dct_rows(hash_size, side)
    low = np.round(c @ pixels @ c.T, 6)
    median = np.median(low)
    if np.any(low == median):  # a tie: noise decides it, so let scipy's noise decide
        return imagehash.phash(grey, hash_size=hash_size)
    return imagehash.ImageHash(low > median)


def _phash_side(size: int) -> int:
    return 4 * size


def _dhash_side(size: int) -> int:
    return size + 1


def _ahash_side(size: int) -> int:
    return size


HASH_METHODS: dict[str, HashMethod] = {
    "ahash": HashMethod("ahash", "average_hash", _ahash_side),
    "dhash": HashMethod("dhash", "dhash", _dhash_side),
    "phash": HashMethod("phash", "phash", _phash_side, phash_of),
    "whash": HashMethod("whash", "whash", None),
}
"""Registered perceptual hash methods by name."""


def hash_method(name: str) -> HashMethod:
    """The registered method ``name``; a wrong name lists the valid ones.

    Raises:
        WeaklabelError: unknown name.
    """
    try:
        return HASH_METHODS[name]
    except KeyError:
        raise WeaklabelError(
            f"unknown hash method {name!r}; valid: {', '.join(HASH_METHODS)}"
        ) from None


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
    name, size = spec
    side = hash_method(name).input_side
    return 0 if side is None else 2 * side(size)


def hash_key(method: str, hash_size: int) -> str:
    """Inventory key of one hash flavour, e.g. ``phash-8``."""
    hash_method(method)
    if hash_size < 2 or hash_size * hash_size > 64:
        raise WeaklabelError(
            f"hash_size {hash_size} is out of range; use 2 to 8 (at most 64-bit hashes)"
        )
    if method == "whash" and hash_size & (hash_size - 1):
        raise WeaklabelError(f"whash needs a power-of-two hash_size (4 or 8), got {hash_size}")
    return f"{method}-{hash_size}"


_ORIENT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
           6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
"""EXIF orientation → the ``Image.Transpose`` that shows the picture upright."""


def eight_bit(img: Any) -> Any:
    """``img`` with 16-bit or float samples brought to 0–255, for a conversion to L or
    RGB, which clips (a 16-bit grey photo turns white, and every such picture looks
    uniform). Values past 255 are scaled by the bit depth their maximum needs (a 16-bit
    picture by 255/65535, a 12-bit scan stored in 16 bits by 255/4095, not squeezed into
    0–15), floats of at most 1.0 multiplied by 255; any other image is returned as it is.
    (pHash compares frequencies with their median, so a scale changes nothing but the
    rounding.)"""
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    if img.mode not in ("I", "F"):
        return img
    low, high = img.getextrema()
    if high > 255:
        scale = 255 / (2 ** int(high).bit_length() - 1)
        return img.point(lambda v: v * scale)
    if img.mode == "F" and high <= 1.0:
        return img.point(lambda v: v * 255)
    return img


def upright_grey(im: Any, spec: tuple[str, int]) -> Any:
    """The picture the hash sees: reduced (never below :func:`draft_side`), upright,
    grey."""
    from PIL import Image

    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block says nothing about the picture
        orientation = 1
    img = eight_bit(im)
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
    return img.convert("L")


def hash_image(im: Any, spec: tuple[str, int], out: dict[str, Any]) -> None:
    """Set ``out["hash"]`` (hex) and ``out["thumb"]`` of a loaded PIL image, or
    ``out["degenerate"]`` saying why its hash would mean nothing. Never raises."""
    from PIL import Image, ImageStat

    name, size = spec
    try:
        grey = upright_grey(im, spec)
        std = ImageStat.Stat(grey).stddev[0]
        if std < MIN_STD:
            out["degenerate"] = f"uniform image (pixel std {std:.2f} < {MIN_STD})"
            return
        hv = hash_method(name).compute(grey, size)
        bits = hv.hash.flatten()
        if bits.all() or not bits.any():
            out["degenerate"] = "degenerate hash (all bits equal)"
            return
        out["hash"] = str(hv)
        out["thumb"] = grey.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
    except Exception as exc:  # hashing a decodable image should not fail; report, go on
        out["degenerate"] = f"cannot hash: {type(exc).__name__}: {exc}"[:200]
