"""``weaklabel dedup``: exact and near-duplicate groups in an image tree.

Three steps, each reusable on its own (compute, group, decide):

1. **Compute** (in the inventory, cached): the size of every file; a partial CRC-32 (first
   and last 4 KiB) only for files whose size collides; a full SHA-1 only where size
   and partial digest collide; a perceptual hash of each decodable image (EXIF orientation
   applied; JPEGs decoded at reduced scale, never below twice the hash's input size,
   see :func:`~weaklabel.images.hashes.draft_side`).
2. **Group**: :func:`find_exact_duplicates` (same size and SHA-1; hard links to one inode
   are one file; zero-byte files are never duplicates); near duplicates in two stages:
   candidate pairs whose perceptual hashes are within ``candidate_radius(threshold)``
   bits (multi-index hashing, :func:`find_near_pairs`, never every pair), of which a
   pair within ``threshold`` is a copy outright and one beyond it only when the stored
   32 × 32 grey thumbnails agree (:func:`thumb_agreement`: the correlation of their
   detail at two scales, brightness, contrast and the broad light gradient taken out,
   at least :data:`MIN_AGREEMENT`), or agree once one is cropped to match the other
   (:func:`aligned_agreement`, at least :data:`MIN_ALIGNED`, or the lower
   :data:`MIN_ALIGNED_CLOSE` for a pair within :func:`close_radius` bits, where the hash
   and the aligned detail are two measures that must both agree). A brightened copy whose
   highlights clip moves pHash by 8–10 bits, a 5–10 % crop by up to 20, as far as some
   unrelated photos of similar light; their detail does not agree. Then connected
   components.
3. **Decide**: :func:`choose_keepers` picks one file to keep per group with the keep
   policy below and, for near groups, guards against chaining: a connected component
   (A~B, B~C, A far from C) is split into *stars*: the best-ranked member is kept and
   takes every member within ``threshold`` of it or verified against it by the
   thumbnails; the best-ranked of the rest starts the next group, and so on. So every
   duplicate is within ``threshold`` of its kept file, or its thumbnails agree with it.
   :func:`merge_groups` then folds exact groups into the near groups they belong to and
   names each pair ``exact`` or ``near``. Which copy enters a data set, with which
   label, is ``sample``'s choice: hygiene knows no labels.

Keep policy (deterministic): the copy attached to the post with the highest engagement
(``likes + sample.comment_weight * comments``; from ``--posts`` or, failing that, the
workspace's ``posts.parquet``; files of no post rank after those of a post), then
the oldest date folder (a path component ``YYYYMMDD``; paths without one rank after),
then the shortest path, then the lexicographically smallest path.

Files excluded from near matching (corrupt per the inventory, undecodable here, uniform
images such as all-white or 1×1, hashes with all bits equal) are listed with the reason
in ``dedup_excluded.csv``: a thousand blank images must not become one group.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.config import Config, resolve_workers, validate_config
from weaklabel.errors import WeaklabelError
from weaklabel.images.checks import check_formats
from weaklabel.images.contracts import DUPLICATES
from weaklabel.images.exact import (  # noqa: F401  the exact half's names, re-exported
    OUTPUTS,
    STORAGE_STATE,
    as_rows,
    choose_keepers,
    date_folder,
    dedup_exact,
    exact_params,
    find_exact_duplicates,
    keep_rank,
    merge_groups,
    one_per_inode,
    split_exact,
    summary_text,
    write_groups,
)
from weaklabel.images.hashes import THUMB_SIDE, hash_key
from weaklabel.images.inventory import open_inventory
from weaklabel.images.purge import Applied, skip_dirs, tree_root
from weaklabel.images.tables import read_rows_csv
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from weaklabel.images.exact import DuplicateRow, FileRow
    from weaklabel.images.quarantine import ApplyReport

log = logging.getLogger(__name__)

# --- near-duplicate search: multi-index hashing -----------------------------------------


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of a uint64 array."""
    import numpy as np

    return np.bitwise_count(x).astype(np.int64)


def band_masks(bits: int, bands: int) -> list[int]:
    """Split ``bits`` into ``bands`` contiguous, near-equal bit ranges; one mask each."""
    edges = [round(i * bits / bands) for i in range(bands + 1)]
    return [((1 << (hi - lo)) - 1) << lo for lo, hi in zip(edges, edges[1:], strict=False)]


def choose_bands(n: int, threshold: int, bits: int = 64) -> int:
    """Number of bands ``m`` (≥ threshold + 1) minimising the estimated search cost.

    Pigeonhole: two hashes within ``t`` bits agree exactly on at least ``m - t`` of ``m``
    bands, so each of the C(m, m - t) combinations of ``m - t`` bands is one exact-match
    table. ``m = t + 1`` is classic multi-index hashing (t + 1 tables of single bands);
    more bands give longer keys (fewer false candidates) at the cost of more tables,
    which pays off once there are hundreds of thousands of hashes.
    """
    best, best_cost = threshold + 1, math.inf
    for m in range(threshold + 1, min(bits, threshold + 12) + 1):
        tables = math.comb(m, m - threshold)
        if tables > 2000:
            break
        key_bits = bits * (m - threshold) / m
        cost = tables * (n * 8 + n * n / 2 ** key_bits)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _pairs_of_unique(uniq: np.ndarray, threshold: int, bits: int,
                     bands: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i < j) of distinct hashes within ``threshold`` bits, and distances."""
    import numpy as np

    n = len(uniq)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n < 2 or threshold <= 0:
        return empty
    if threshold >= bits:  # everything matches everything: the search degenerates
        i, j = np.triu_indices(n, 1)
        return i.astype(np.int64), j.astype(np.int64), popcount(uniq[i] ^ uniq[j])
    m = bands or choose_bands(n, threshold, bits)
    if m < threshold + 1:
        raise ValueError(f"need at least threshold + 1 = {threshold + 1} bands, got {m}")
    masks = band_masks(bits, m)
    found_i, found_j, found_d = [], [], []
    idx = np.arange(n)
    for combo in combinations(range(m), m - threshold):
        mask = np.uint64(sum(masks[c] for c in combo))
        keys = uniq & mask
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        lengths = np.diff(np.r_[starts, n])
        run_end = np.repeat(starts + lengths, lengths)
        pos = idx[run_end - idx > 1]
        d = 1
        while pos.size:  # pair each position with the one d further on in its run
            a, b = order[pos], order[pos + d]
            dist = popcount(uniq[a] ^ uniq[b])
            ok = dist <= threshold
            if ok.any():
                found_i.append(np.minimum(a[ok], b[ok]))
                found_j.append(np.maximum(a[ok], b[ok]))
                found_d.append(dist[ok])
            d += 1
            pos = pos[run_end[pos] - pos > d]
    if not found_i:
        return empty
    i, j, dd = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    _, first = np.unique(i * n + j, return_index=True)
    return i[first], j[first], dd[first]


def find_near_pairs(hashes: np.ndarray, threshold: int, *, bits: int = 64,
                    bands: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` with Hamming distance ≤ ``threshold``, without all-pairs.

    Args:
        hashes: uint64 array of perceptual hashes.
        threshold: largest Hamming distance that counts as a near duplicate.
        bits: hash width (``hash_size ** 2``).
        bands: force a band count (default: :func:`choose_bands`).

    Returns:
        ``(i, j, distance)`` int64 arrays, sorted by ``(i, j)``.
    """
    import numpy as np

    hashes = np.asarray(hashes, dtype=np.uint64)
    uniq, inverse = np.unique(hashes, return_inverse=True)
    ui, uj, ud = _pairs_of_unique(uniq, threshold, bits, bands)
    members: list[np.ndarray] = [np.zeros(0, np.int64)] * len(uniq)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
    members = [order[bounds[k]:bounds[k + 1]] for k in range(len(uniq))]
    out_i, out_j, out_d = [], [], []
    for k in range(len(uniq)):  # identical hashes: distance 0
        g = members[k]
        if len(g) > 1:
            a, b = np.triu_indices(len(g), 1)
            out_i.append(g[a])
            out_j.append(g[b])
            out_d.append(np.zeros(len(a), np.int64))
    for a, b, d in zip(ui.tolist(), uj.tolist(), ud.tolist(), strict=False):
        ga, gb = members[a], members[b]
        x, y = np.meshgrid(ga, gb, indexing="ij")
        out_i.append(x.ravel())
        out_j.append(y.ravel())
        out_d.append(np.full(x.size, d, np.int64))
    if not out_i:
        return (np.zeros(0, np.int64),) * 3
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order2 = np.lexsort((hi, lo))
    return lo[order2], hi[order2], d[order2]


def brute_force_pairs(hashes: np.ndarray, threshold: int) -> set[tuple[int, int, int]]:
    """All-pairs reference for tests and the benchmark."""
    import numpy as np

    h = np.asarray(hashes, dtype=np.uint64)
    out = set()
    for i in range(len(h)):
        d = popcount(h[i + 1:] ^ h[i])
        for k in np.flatnonzero(d <= threshold):
            out.add((i, i + 1 + int(k), int(d[k])))
    return out


def _components(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comp: dict[int, list[int]] = {}
    for x in range(n):
        comp.setdefault(find(x), []).append(x)
    return [c for c in comp.values() if len(c) > 1]


def find_near_duplicates(hashes: np.ndarray, threshold: int, *, bits: int = 64) -> list[list[int]]:
    """Connected components (≥ 2 members) of the near-duplicate graph, as index lists.

    Identical hashes are merged first, so a thousand copies cost one search entry.
    """
    import numpy as np

    hashes = np.asarray(hashes, dtype=np.uint64)
    uniq, inverse = np.unique(hashes, return_inverse=True)
    ui, uj, _ = _pairs_of_unique(uniq, threshold, bits, None)
    ucomp = _components(len(uniq), zip(ui.tolist(), uj.tolist(), strict=False))
    label = np.arange(len(uniq))
    for c in ucomp:
        label[c] = min(c)
    item_label = label[inverse]
    order = np.argsort(item_label, kind="stable")
    sl = item_label[order]
    starts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1]])
    groups = np.split(order, starts[1:])
    return sorted((sorted(g.tolist()) for g in groups if len(g) > 1), key=lambda g: g[0])


# --- verifying candidates beyond the threshold -------------------------------------------

MIN_AGREEMENT = 0.88
"""Least :func:`thumb_agreement` for a candidate pair beyond the hash threshold. Planted
brightened copies (pHash 8–10 bits apart) agree at 0.91–0.96; unrelated photos of
similar light within 14 bits at most 0.73 on ``bench/bench_images.py``'s 900 px dump and
0.86 on the bundled example's 160 px pictures."""

DETAIL_BLOCKS = (4, 8)
"""Detail scales compared: the thumbnail less its 4 × 4 and its 8 × 8 block means. A copy
agrees at both; a look-alike of similar light and layout rarely agrees at the finer."""

MIN_DETAIL = 1.0
"""Least standard deviation (grey levels) of a thumbnail's detail: a nearly flat picture
has only noise to correlate, so it is never verified, only matched by its hash."""


def candidate_radius(threshold: int, bits: int = 64) -> int:
    """Hamming radius of the candidate search: twice the threshold (verified beyond it)."""
    return min(bits - 1, 2 * threshold)


def thumb_detail(thumbs: np.ndarray, blocks: int = 4) -> np.ndarray:
    """Each thumbnail's detail: the grey levels less their ``blocks × blocks`` block means
    (so brightness and the broad light gradient go), scaled to unit length (so contrast
    goes); rows whose detail is flatter than :data:`MIN_DETAIL` are all zero.

    Args:
        thumbs: ``(n, side * side)`` uint8 grey thumbnails.
    """
    import numpy as np

    n = len(thumbs)
    if n == 0:
        return np.zeros(thumbs.shape, np.float64)
    side = int(round(math.sqrt(thumbs.shape[1])))
    t = thumbs.astype(np.float64).reshape(n, blocks, side // blocks, blocks, side // blocks)
    detail = (t - t.mean(axis=(2, 4), keepdims=True)).reshape(n, -1)
    norm = np.linalg.norm(detail, axis=1)
    flat = norm < MIN_DETAIL * math.sqrt(max(detail.shape[1], 1))
    norm[flat] = 1.0
    detail /= norm[:, None]
    detail[flat] = 0.0
    return detail


def thumb_agreement(detail: np.ndarray | Sequence[np.ndarray], i: np.ndarray,
                    j: np.ndarray) -> np.ndarray:
    """Correlation of the details (:func:`thumb_detail`) of pairs ``(i[k], j[k])``, -1…1;
    0 when either is flat. ``detail`` may be a sequence of detail arrays (one per scale,
    :data:`DETAIL_BLOCKS`): then the least of the correlations counts."""
    import numpy as np

    if isinstance(detail, np.ndarray):
        return np.einsum("ij,ij->i", detail[i], detail[j])
    return np.min([np.einsum("ij,ij->i", d[i], d[j]) for d in detail], axis=0)


CROP_FRACTIONS = (0.0, 0.03, 0.06, 0.1)
"""Share of a side a copy may have lost to a crop, for :func:`aligned_agreement`: each
side is tried whole or cut by these shares, split between its two ends as
:data:`CROP_OFFSETS` says."""

CROP_OFFSETS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Where a cut of :data:`CROP_FRACTIONS` falls: the share of it taken from the start of
the side (0: all from the start, 1: all from the end)."""

MIN_ALIGNED = 0.94
"""Least :func:`aligned_agreement` for a pair beyond the hash threshold whose thumbnails
do not agree as they are. Higher than :data:`MIN_AGREEMENT`: of ~500 crop windows the
best one is taken, so look-alikes score higher by chance (unrelated pictures 11–12 bits
apart reach 0.924 among the bundled example's 160 px drawings and 0.932 on the 900 px
dump)."""

MIN_ALIGNED_CLOSE = 0.90
"""Least :func:`aligned_agreement` for a pair within :func:`close_radius` bits: two
independent measures must both say "near" (the hash's signs of the broad light, and the
aligned detail), so the bar on the second can be lower than :data:`MIN_ALIGNED`, which
stands alone out to the candidate radius. Unrelated pictures within 10 bits reach at most
0.891 (bundled example) and 0.836 (900 px dump), drawings recoloured in another palette
0.883; 10 % crops of ~900 px scenes that close to their original score 0.914–0.967
(``bench/bench_images.py --only near-measures``)."""


def close_radius(threshold: int, bits: int = 64) -> int:
    """Hamming radius within which a pair counts on :data:`MIN_ALIGNED_CLOSE`: 10 bits of
    64 (scaled for shorter hashes), where plain pHash still places most 10 % crops (23 of
    40 ~900 px scenes) and no unrelated picture of the benchmarks scores high once
    aligned; never beyond the candidate search, and no band at all when the threshold
    already reaches it (a pair within the threshold needs no second look)."""
    return min(candidate_radius(threshold, bits), max(threshold, round(bits * 10 / 64)))


@functools.lru_cache(maxsize=4)
def _window_matrices(side: int) -> np.ndarray:
    """``(windows, side, side)``: row ``r`` of matrix ``w`` samples one thumbnail axis
    (bilinear) at output position ``r`` of window ``w`` of :data:`CROP_FRACTIONS`, so a
    window of thumbnail ``T`` is ``M[y] @ T @ M[x].T``; window 0 is the whole axis."""
    import numpy as np

    mats = []
    rows = np.arange(side)
    for f in CROP_FRACTIONS:
        for o in (0.0,) if f == 0 else CROP_OFFSETS:
            pos = o * f * side + (rows + 0.5) * (1 - f) - 0.5
            base = np.floor(pos)
            m = np.zeros((side, side))
            np.add.at(m, (rows, np.clip(base, 0, side - 1).astype(np.intp)), 1 - (pos - base))
            np.add.at(m, (rows, np.clip(base + 1, 0, side - 1).astype(np.intp)), pos - base)
            mats.append(m)
    return np.array(mats)


def _quadratic(q: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``||A[y] @ u[p, x]||²`` for every ``p, y, x``, given ``q[y] = A[y].T @ A[y]``:
    the sum of ``q[y] * (u[p, x] @ u[p, x].T)``, without forming any ``A[y] @ u``."""
    import numpy as np

    p, k = u.shape[:2]
    gram = np.matmul(u, u.transpose(0, 1, 3, 2)).reshape(p * k, -1)
    return (q.reshape(len(q), -1) @ gram.T).reshape(len(q), p, k).transpose(1, 0, 2)


def aligned_agreement(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, *,
                      chunk: int = 64) -> np.ndarray:
    """:func:`thumb_agreement` of pairs ``(i[k], j[k])`` once one picture is cropped to
    match the other: the best over every window of :data:`CROP_FRACTIONS` at each of
    :data:`CROP_OFFSETS` per axis (resampled to the full thumbnail, bilinear), either
    picture being the cropped copy's source, the whole picture excluded. A crop of
    5–10 % moves pHash by up to 20 bits and scatters the plain detail correlation;
    aligned, the copy's detail agrees again.

    Every window's correlation comes from small matrix products, no window is built:
    the fixed picture's detail has zero mean in each block and unit length, so the
    correlation is the window's dot product with it over the length of the window's own
    detail, and both are linear or quadratic forms of the thumbnail.

    Args:
        thumbs: ``(n, side * side)`` uint8 grey thumbnails.
        i, j: index arrays of the pairs.
        chunk: pairs at a time (bounds memory).
    """
    import numpy as np

    n_pairs = len(i)
    out = np.full(n_pairs, -1.0)
    if n_pairs == 0:
        return out
    side = int(round(math.sqrt(thumbs.shape[1])))
    m = _window_matrices(side)
    k = len(m)
    q = np.matmul(m.transpose(0, 2, 1), m)  # window rows' Gram matrices
    floor = (MIN_DETAIL ** 2) * side * side
    blocks = []
    for b in DETAIL_BLOCKS:
        sums = np.kron(np.eye(b), np.ones((1, side // b)))  # (b, side): block sums
        cy = np.matmul(sums[None], m)
        blocks.append((sums, np.matmul(cy.transpose(0, 2, 1), cy), (side // b) ** 2))
    used, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
    ref = [thumb_detail(thumbs[used], b) for b in DETAIL_BLOCKS]
    i, j = inverse[:n_pairs], inverse[n_pairs:]
    thumbs = thumbs[used]
    for start in range(0, n_pairs, chunk):
        a_idx, b_idx = i[start:start + chunk], j[start:start + chunk]
        best = np.full(len(a_idx), -1.0)
        for src, dst in ((a_idx, b_idx), (b_idx, a_idx)):
            p = len(src)
            t = thumbs[src].astype(np.float64).reshape(p, 1, side, side)
            u = np.matmul(t, m.transpose(0, 2, 1)[None])  # (p, kx, side, side): T @ M[x].T
            sq = _quadratic(q, u)  # (p, ky, kx): sum of squares of each window
            scores = []
            for (sums, qb, cells), r in zip(blocks, ref, strict=True):
                var = sq - _quadratic(qb, np.matmul(u, sums.T)) / cells
                g = np.matmul(m.transpose(0, 2, 1)[None],
                              r[dst].reshape(p, 1, side, side))  # (p, ky, side, side)
                num = np.matmul(g.reshape(p, k, -1), u.reshape(p, k, -1).transpose(0, 2, 1))
                ok = var >= floor
                scores.append(np.where(ok, num / np.sqrt(np.where(ok, var, 1.0)), 0.0))
            score = np.min(scores, axis=0)
            score[:, 0, 0] = -1.0  # the whole picture: thumb_agreement's own answer
            best = np.maximum(best, score.reshape(p, -1).max(axis=1))
        out[start:start + chunk] = best
    return out


# --- the stage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DedupSummary(Summary):
    """What :func:`run_dedup` found and did: groups, duplicate rows by kind, files left
    out of the near search, the walk's counts and what ``apply`` moved."""

    groups: int = 0
    exact: int = 0
    near: int = 0
    excluded: int = 0
    scan: Mapping[str, int] = field(default_factory=dict)
    applied: Applied | None = None

    def text(self) -> str:
        return summary_text(self.groups, self.exact, self.near, self.excluded,
                            None if self.applied is None else len(self.applied.moved))


def read_duplicates(path: Path) -> pd.DataFrame:
    """``duplicates.csv`` (group, kind, kept, duplicate, distance, reason), checked."""
    return read_rows_csv(path, DUPLICATES, dtype={"kind": str, "kept": str,
                                                  "duplicate": str, "reason": str},
                         stage="dedup")


def engagement_from_posts(posts: pd.DataFrame, post_images: pd.DataFrame,
                          comment_weight: float) -> dict[str, float]:
    """Per image: the highest engagement of the posts it belongs to."""
    p = posts[["post_id", "likes", "comments"]].copy()
    p["eng"] = (p["likes"].astype("Float64").fillna(0)
                + comment_weight * p["comments"].astype("Float64").fillna(0))
    m = post_images[["post_id", "image"]].merge(p[["post_id", "eng"]], on="post_id")
    return {str(k): float(v) for k, v in m.groupby("image")["eng"].max().items()}


def _hash_to_int(h: str) -> int:
    return int(h, 16)


@dataclass(frozen=True)
class NearSearch:
    """Near-duplicate settings: the hash's name and width, the Hamming threshold."""

    method: str = "phash"
    bits: int = 64
    threshold: int = 6


def _aligned_bar(d: np.ndarray, close: int) -> np.ndarray:
    """Least aligned agreement for pairs ``d`` bits apart: :data:`MIN_ALIGNED_CLOSE`
    within ``close`` bits, :data:`MIN_ALIGNED` beyond."""
    import numpy as np

    return np.where(d <= close, MIN_ALIGNED_CLOSE, MIN_ALIGNED)


def _near_groups(cand: Sequence[FileRow], rank: Callable[[str], Any], near: NearSearch
                 ) -> tuple[list[tuple[str, list[tuple[str, int]]]],
                            dict[str, tuple[float, bool]]]:
    """Near groups (kept, duplicates) over rows with a hash and thumb, and for each
    duplicate verified beyond the threshold its thumbnail agreement and whether the
    thumbnails had to be aligned for a crop (:func:`aligned_agreement`)."""
    import numpy as np

    paths = [r["path"] for r in cand]
    hashes = np.array([_hash_to_int(r["hash"]) for r in cand], dtype=np.uint64)
    hash_of = dict(zip(paths, hashes.tolist(), strict=False))
    side2 = THUMB_SIDE * THUMB_SIDE
    thumbs = np.array([np.frombuffer(t, np.uint8) if isinstance(t, bytes)
                       and len(t) == side2 else np.zeros(side2, np.uint8)
                       for t in (r["thumb"] for r in cand)], dtype=np.uint8).reshape(-1, side2)
    detail = [thumb_detail(thumbs, b) for b in DETAIL_BLOCKS]
    index_of = {p: k for k, p in enumerate(paths)}
    threshold = near.threshold
    ci, cj, cd = find_near_pairs(hashes, candidate_radius(threshold, near.bits), bits=near.bits)
    far = cd > threshold
    # Within the threshold a pair is a copy outright: only the far ones are verified.
    agree = np.ones(len(ci))
    agree[far] = thumb_agreement(detail, ci[far], cj[far])
    # Beyond the threshold and unlike as they are: maybe a crop; align the thumbnails.
    unsure = far & (agree < MIN_AGREEMENT)
    sure = ~far | (agree >= MIN_AGREEMENT)
    # Aligning costs ~1 ms a pair: only where it can matter. An unsure pair inside a
    # component the sure pairs already make cannot change the components; of those,
    # only the ones with the component's first kept file are asked for by the stars
    # (verify() aligns any other it is asked for, one by one).
    label = np.arange(len(paths))
    for c in _components(len(paths), zip(ci[sure].tolist(), cj[sure].tolist(), strict=True)):
        label[c] = c[0]
    aligned = np.full(len(ci), -1.0)
    bridge = unsure & (label[ci] != label[cj])
    aligned[bridge] = aligned_agreement(thumbs, ci[bridge], cj[bridge])
    close = close_radius(threshold, near.bits)
    ok = sure | (aligned >= _aligned_bar(cd, close))
    comps = _components(len(paths), zip(ci[ok].tolist(), cj[ok].tolist(), strict=False))
    first = np.full(len(paths), -1)
    for c in comps:
        first[c] = min(c, key=lambda x: rank(paths[x]))
    asked = unsure & ~bridge & ((first[ci] == cj) | (first[cj] == ci))
    aligned[asked] = aligned_agreement(thumbs, ci[asked], cj[asked])
    ok |= asked & (aligned >= _aligned_bar(cd, close))
    # far pair -> (score, whether it needed aligning), or None: not a copy
    decided = far & (sure | bridge | asked)
    checked: dict[tuple[int, int], tuple[float, bool] | None] = {
        (a, b): None if not good else (r, False) if r >= MIN_AGREEMENT else (al, True)
        for a, b, r, al, good in zip(ci[decided].tolist(), cj[decided].tolist(),
                                     agree[decided].tolist(), aligned[decided].tolist(),
                                     ok[decided].tolist(), strict=True)}

    def dist(a: str, b: str) -> int:
        return int((hash_of[a] ^ hash_of[b]).bit_count())

    def verify(a: str, b: str) -> tuple[float, bool] | None:
        """The thumbnails' verdict on a pair beyond the threshold. A pair the candidate
        search did not reach (a crop of a crop's kept copy, say: linked by a chain) is
        checked here, on its thumbnails alone."""
        key = (min(index_of[a], index_of[b]), max(index_of[a], index_of[b]))
        if key not in checked:
            ia, ib = np.array([key[0]]), np.array([key[1]])
            r = float(thumb_agreement(detail, ia, ib)[0])
            al = -1.0 if r >= MIN_AGREEMENT else float(aligned_agreement(thumbs, ia, ib)[0])
            bar = float(_aligned_bar(np.array([dist(a, b)]), close)[0])
            checked[key] = (r, False) if r >= MIN_AGREEMENT else (
                (al, True) if al >= bar else None)
        return checked[key]

    def linked(a: str, b: str) -> bool:
        return dist(a, b) <= threshold or verify(a, b) is not None

    kept = choose_keepers([[paths[i] for i in c] for c in comps], rank,
                          distance=dist, threshold=threshold, linked=linked)
    verified = {d: v for k, ds in kept for d, hd in ds if hd > threshold
                and (v := verify(k, d)) is not None}
    return kept, verified


def find_groups(files: pd.DataFrame | Iterable[FileRow], rank: Callable[[str], Any], *,
                near: NearSearch | None) -> tuple[list[DuplicateRow], dict[str, str]]:
    """The rows of ``duplicates.csv`` and the files left out, from inventory rows.

    Pure: a notebook holding :meth:`Inventory.frame` (or :meth:`Inventory.rows`)
    reproduces ``duplicates.csv`` with it (and :func:`display_path` on the paths).

    Args:
        files: inventory rows of kind ``file`` (``path``, ``size``, ``dev``, ``ino``,
            ``sha1``, ``status``, and for near search ``hash``, ``degenerate``,
            ``thumb``), as a DataFrame or rows.
        rank: the keep policy (:func:`keep_rank`).
        near: near-duplicate settings; None for exact duplicates only.

    Returns:
        ``(rows, excluded)``: :data:`DuplicateRow` rows, and path → why it was left out.
    """
    exact_kept, aliases, cand, excluded = split_exact(files, rank)
    if near is None:
        return merge_groups(exact_kept, [], aliases), excluded
    exact_dups = {d for _, ds in exact_kept for d, _ in ds}
    near_items = []
    for r in cand:
        if r["path"] in exact_dups:
            continue
        if r["status"] != "ok":
            excluded[r["path"]] = f"{r['status']}: cannot decode here"
        elif isinstance(r["degenerate"], str):
            excluded[r["path"]] = r["degenerate"]
        if r["status"] == "ok" and r["hash"] is not None:
            near_items.append(r)
    near_kept: list[tuple[str, list[tuple[str, int]]]] = []
    verified: dict[str, tuple[float, bool]] = {}
    if near.threshold > 0:
        near_kept, verified = _near_groups(near_items, rank, near)
    rows = merge_groups(exact_kept, near_kept, aliases, method=near.method, verified=verified)
    return rows, excluded


def _engagement(ws: Workspace, cfg: Config, posts: Path | None) -> dict[str, float]:
    """Per image, its best post's engagement: from ``posts`` or the workspace's own."""
    if posts is not None:
        from weaklabel.posts import read_posts

        p_df, pi_df = read_posts(Path(posts), cfg.posts)
        return engagement_from_posts(p_df, pi_df, cfg.sample.comment_weight)
    if ws.path("posts.parquet").exists() and ws.path("post_images.parquet").exists():
        # The workspace's own posts (from tokenize): a copy some post uses always
        # outranks an unreferenced one.
        from weaklabel.contracts import POST_IMAGES, POSTS

        return engagement_from_posts(ws.read("posts.parquet", POSTS),
                                     ws.read("post_images.parquet", POST_IMAGES),
                                     cfg.sample.comment_weight)
    return {}


def _near_settings(cfg: Config) -> NearSearch:
    icfg = cfg.images
    hash_key(icfg.hash_method, icfg.hash_size)
    bits = icfg.hash_size ** 2
    if not 0 <= icfg.near_threshold < bits:
        raise WeaklabelError(
            f"near threshold {icfg.near_threshold} is out of range for {bits}-bit hashes; "
            f"use 0 to {bits - 1} (0 = exact duplicates only)")
    return NearSearch(icfg.hash_method, bits, icfg.near_threshold)


def _write_groups(ws: Workspace, rows: list[DuplicateRow], excluded: dict[str, str]) -> Path:
    write_groups(str(ws.root), rows, excluded)
    return ws.path("duplicates.csv")


def _quarantine(root: Path, ws: Workspace, files: Sequence[FileRow], rows: list[DuplicateRow],
                quiet: bool, workers: int | None = None) -> ApplyReport:
    from weaklabel.images.quarantine import Move, apply_moves, plan_moves

    sha = {r["path"]: r["sha1"] for r in files}
    info = {r["path"]: (int(r["size"]), int(r["mtime_ns"])) for r in files}

    def digest(p: str) -> str | None:
        return sha.get(p) if isinstance(sha.get(p), str) else None

    plan = plan_moves(
        Move(src=d, size=info[d][0], mtime_ns=info[d][1], sha1=digest(d),
             reason=f"{kind} duplicate of {k}: {why}", group=g, kept=k,
             kept_size=info[k][0], kept_mtime_ns=info[k][1], kept_sha1=digest(k))
        for g, kind, k, d, _dist, why in rows
    )
    return apply_moves(root, ws, plan, stage="dedup", quiet=quiet, workers=workers)


def run_dedup(
    ws: Workspace,
    cfg: Config,
    *,
    force: bool = False,
    progress: bool = True,
    posts: Path | None = None,
    apply: bool = False,
    exact_only: bool = False,
) -> StageReport[DedupSummary]:
    """Find exact and near duplicates under ``cfg.images.root``; write
    ``duplicates.csv`` and ``dedup_excluded.csv``; quarantine duplicates if ``apply``.
    Labels play no part: ``sample`` decides which copy of a group to keep with which
    label.

    Up to date: never, as :func:`~weaklabel.images.purge.run_purge`: the tree has no
    digest before the walk, and the inventory makes a re-run hash only new or changed
    files. The stage still runs under :meth:`Workspace.stage` (lock, timing, metas);
    ``force`` changes nothing.

    Args:
        ws: the workspace.
        cfg: pipeline config (``images``: root, hash_method, hash_size, near_threshold,
            workers, max_pixels; ``sample.comment_weight``; ``posts`` for ``posts``).
        progress: progress bars on stderr.
        posts: a posts table for the keep policy's engagement (default: the
            workspace's own posts, if tokenize made them).
        apply: move duplicates into quarantine (default: report only).
        exact_only: byte-identical copies only: no file is decoded or hashed, only
            sizes and, where they collide, partial and full SHA-1 digests are read.

    Raises:
        WeaklabelError: no image root, bad hash settings, unreadable posts, a locked
            workspace.
    """
    cfg = validate_config(cfg)  # a bad limit must not quarantine everything
    icfg = cfg.images
    root = tree_root(cfg)
    near = _near_settings(cfg)
    key = hash_key(icfg.hash_method, icfg.hash_size)
    ws.ensure()
    workers = resolve_workers(icfg.workers)
    formats = check_formats(icfg.formats)
    engagement = _engagement(ws, cfg, posts)
    rank = keep_rank(engagement)
    if exact_only:
        params = exact_params(str(posts) if posts else None, apply,
                              cfg.sample.comment_weight if engagement else None)
    else:
        params = {"hash_method": icfg.hash_method, "hash_size": icfg.hash_size,
                  "formats": list(formats),
                  "near_threshold": near.threshold, "max_pixels": icfg.max_pixels,
                  "comment_weight": cfg.sample.comment_weight,
                  "posts": str(posts) if posts else None, "apply": apply,
                  "exact_only": exact_only}
    if exact_only and not apply and not os.path.exists(ws.path(STORAGE_STATE)):
        # The lean path (weaklabel.images.exact), the command's too: bytes only, the
        # inventory read and written once. A bucket read in place and --apply (which
        # needs every listed file's row) take the general path below.
        summary, n_rows, elapsed = dedup_exact(os.fspath(ws.root), os.fspath(root), rank=rank,
                                             workers=workers, progress=progress,
                                             params=params)
        return StageReport("dedup", tuple(ws.path(o) for o in OUTPUTS), n_rows,
                           DedupSummary(**summary), elapsed=elapsed)
    with ws.stage("dedup", outputs=("duplicates.csv", "dedup_excluded.csv"), params=params,
                  inputs={"root": str(root.resolve())}, summary=DedupSummary,
                  force=True) as st, \
            open_inventory(ws.root, root=root, max_pixels=icfg.max_pixels,
                           formats=formats) as inv:
        scan = inv.scan(root, check=not exact_only,
                        hash_spec=None if exact_only else (icfg.hash_method, icfg.hash_size),
                        max_pixels=icfg.max_pixels, workers=workers, quiet=not progress,
                        skip=skip_dirs(ws))
        scan.update(inv.digest_collisions(root, workers=workers, quiet=not progress))
        # Plain rows, no DataFrame: --exact-only must not pay for importing pandas.
        files = [r for r in inv.rows(None if exact_only else key, duplicates_only=exact_only)
                 if r["kind"] == "file"]
        out_rows, excluded = find_groups(files, rank, near=None if exact_only else near)
        _write_groups(ws, out_rows, excluded)
        n_exact = sum(1 for r in out_rows if r[1] == "exact")
        applied = None
        if apply:
            applied = Applied.of(_quarantine(root, ws, files, out_rows, not progress,
                                             cfg.storage.fetch_workers))
        st.done(DedupSummary(len({r[0] for r in out_rows}), n_exact, len(out_rows) - n_exact,
                             len(excluded), scan, applied),
                rows={"duplicates.csv": len(out_rows), "dedup_excluded.csv": len(excluded)})
    return st.report
