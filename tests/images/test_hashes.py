"""hashes: weaklabel's own pHash is imagehash's, bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from conftest import photo
from PIL import Image

from weaklabel.images.hashes import HASH_METHODS, phash_of


def _pictures() -> dict[str, Image.Image]:
    """Photo-like pictures, the example generator's drawings at two sizes, and the
    symmetric pictures whose DCT has exact zeros (where rounding noise would decide)."""
    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from examples.generate import draw_image

    pics: dict[str, Image.Image] = {f"photo{k}": photo(k) for k in range(12)}
    for k in range(12):
        pics[f"drawing{k}"] = draw_image(7, k, 0, k % 13, 160 if k % 2 else 600)
    ramp = np.linspace(0, 255, 200)
    pics["horizontal ramp"] = Image.fromarray(np.tile(ramp, (150, 1)).astype(np.uint8))
    pics["vertical ramp"] = Image.fromarray(np.tile(ramp[:150, None], (1, 200)).astype(np.uint8))
    pics["two halves"] = Image.fromarray(
        np.r_[np.zeros((64, 128)), np.full((64, 128), 255)].astype(np.uint8))
    pics["centred box"] = Image.fromarray(np.pad(np.full((40, 40), 255), 44).astype(np.uint8))
    pics["checkerboard"] = Image.fromarray(
        ((np.indices((128, 128)).sum(0) // 16 % 2) * 255).astype(np.uint8))
    rng = np.random.default_rng(5)
    for w in (56, 17, 90):  # 2 px tall: the DCT's other rows are noise around the median
        pics[f"{w}x2"] = Image.fromarray(rng.integers(0, 256, (2, w)).astype(np.uint8))
    for k in range(8):  # equal coefficient pairs: ties at the median
        a = rng.integers(0, 256, (32, 32)).astype(float)
        pics[f"diagonal symmetric {k}"] = Image.fromarray(((a + a.T) / 2).astype(np.uint8))
    u = rng.integers(0, 256, 32).astype(float)
    pics["outer product"] = Image.fromarray((np.outer(u, u) / 255).astype(np.uint8))
    return pics


@pytest.mark.parametrize("hash_size", [8, 4])
def test_phash_of_is_imagehash_phash_bit_for_bit(hash_size: int) -> None:
    """On photos, drawings and symmetric pictures (gradients, halves, a centred box,
    a checkerboard) the matrix-product pHash equals imagehash.phash exactly."""
    for name, pic in _pictures().items():
        grey = pic.convert("L")
        assert str(phash_of(grey, hash_size)) == str(imagehash.phash(grey, hash_size)), name


def test_the_registered_phash_is_the_own_one() -> None:
    """dedup hashes with the registered method: phash goes through phash_of."""
    method = HASH_METHODS["phash"]
    assert method.own is phash_of
    grey = photo(3).convert("L")
    assert str(method.compute(grey, 8)) == str(imagehash.phash(grey))
