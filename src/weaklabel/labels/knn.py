"""Cosine k-nearest neighbours on unit vectors: one blocked matrix multiply, then top-k.

The similarity block of ``rows`` queries × ``m`` training posts is one float32 matrix
multiply. Choosing each row's ``k`` best columns is the part that used to cost 6× the
multiply (``np.argpartition`` over all ``m`` columns of every row). Here the columns are
cut into groups of :data:`GROUP` columns: the ``k``-th largest group maximum ``t`` is a lower
bound of the row's ``k``-th best similarity (the ``k`` best group maxima are ``k``
different columns), so only groups whose maximum reaches ``t``, and in them only
columns reaching ``t``, can be neighbours. That leaves a few dozen candidates a row,
sorted exactly. Neighbours are ordered by similarity, ties by the lower training
index — the order of a stable sort of the whole row — so the result does not depend
on the block size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

GROUP = 64  # columns per group: one group maximum per 256 bytes of a similarity row
EXCLUDED = -2.0  # below any cosine: a left-out training post is never a neighbour


def top_k_columns(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest entries of every row, best first, ties by lower column.

    ``sims`` is a C-contiguous float32 block whose width is a multiple of :data:`GROUP`
    (pad with ``-inf``), ``1 <= k`` and at least ``k`` entries of each row finite.

    Returns:
        ``(columns, values)``, both ``rows × k``; exactly the first ``k`` columns of
        ``np.argsort(-sims, axis=1, kind="stable")`` and their values.
    """
    import numpy as np

    r, width = sims.shape
    size = GROUP  # columns a group; fewer when the row is short, so the bound prunes
    while size > 1 and width // size < 8 * k:
        size //= 2
    ngroups = width // size
    if ngroups <= k:  # a short row: sorting it is cheap
        return _sorted_top(sims, k)
    # Group j is the strided set of columns j, j + ngroups, j + 2·ngroups, …: its maxima
    # for all groups are `size` element-wise maxima of contiguous rows (fast), where
    # contiguous groups would be one tiny reduction per group (20× slower).
    blocks = sims.reshape(r, size, ngroups)
    gmax = blocks.max(axis=1)
    t = np.partition(gmax, ngroups - k, axis=1)[:, ngroups - k]
    gr, gi = np.nonzero(gmax >= t[:, None])
    if len(gr) > 8 * k * r:  # many equal similarities (duplicate posts): sort the block
        return _sorted_top(sims, k)
    cand = blocks[gr, :, gi]  # (groups kept) × size
    pr, pc = np.nonzero(cand >= t[gr, None])
    rows = gr[pr]
    cols = gi[pr] + pc * ngroups
    vals = cand[pr, pc]
    # by row, then similarity descending, then column ascending
    order = np.lexsort((cols, -vals, rows))
    counts = np.bincount(rows, minlength=r)
    starts = np.cumsum(counts) - counts
    pick = order[starts[:, None] + np.arange(k)]
    return cols[pick], vals[pick]


def _sorted_top(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    cols = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return cols, np.take_along_axis(sims, cols, axis=1)


class CosineKNN:
    """k-nearest-neighbour classifier on unit vectors, distance-weighted votes.

    Cosine similarity of unit vectors is one matrix multiply, done in row blocks so
    memory stays bounded (:func:`top_k_columns` picks the neighbours); a vote weighs
    ``1 / (1 - cos + eps)``. With ``balance`` each class's votes are divided by its
    number of training posts: keyword seeds are not a sample of the true label mix (a
    vague background topic gets few seeds), and without this correction the best-seeded
    label swallows the neighbourhood. Follows the scikit-learn estimator interface
    (``fit``, ``predict_proba``, ``predict``).

    Example:
        >>> knn = CosineKNN(15).fit(seed_vectors, seed_labels)
        >>> proba = knn.predict_proba(post_vectors)  # rows × len(knn.classes_)
    """

    def __init__(self, k: int = 15, *, balance: bool = True, chunk: int = 4096,
                 eps: float = 1e-3) -> None:
        self.k = k
        self.balance = balance
        self.chunk = chunk
        self.eps = eps

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"k": self.k, "balance": self.balance, "chunk": self.chunk, "eps": self.eps}

    def set_params(self, **params: Any) -> CosineKNN:
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, x: np.ndarray, y: Sequence[str], *, weight: np.ndarray | None = None
            ) -> CosineKNN:
        """``weight``: each training post's vote multiplier (default 1)."""
        import numpy as np

        self.classes_, self._y = np.unique(np.asarray(y, dtype=object), return_inverse=True)
        self._w = None if weight is None else np.asarray(weight, dtype=np.float64)
        self._x = np.ascontiguousarray(x, dtype=np.float32)
        # the transposed training matrix padded to whole column groups; the padding's
        # similarities are set to -inf, so it is never chosen
        m, d = self._x.shape
        width = -(-max(m, 1) // GROUP) * GROUP
        xt = np.zeros((d, width), dtype=np.float32)
        xt[:, :m] = self._x.T
        self._xt = xt
        return self

    def neighbours(self, x: np.ndarray, *, self_index: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Each query's ``k`` nearest training rows, best first (ties: lower row), and
        their cosine similarities; ``self_index[i]`` (a training row, or -1) is left out
        of query ``i``'s neighbours (similarity :data:`EXCLUDED`)."""
        import numpy as np

        n, m = len(x), len(self._x)
        k = min(self.k, m)
        width = self._xt.shape[1]
        xq = np.ascontiguousarray(x, dtype=np.float32)
        idx = np.empty((n, k), dtype=np.int64)
        sim = np.empty((n, k), dtype=np.float32)
        # Rows per block so one similarity block stays near `chunk` × 4096 floats
        # (64 MiB by default) whatever the number of training posts.
        rows = max(1, (self.chunk * 4096) // width)
        buf = np.empty((min(rows, max(n, 1)), width), dtype=np.float32)
        for s in range(0, n, rows):
            q = xq[s : s + rows]
            block = buf[: len(q)]
            np.matmul(q, self._xt, out=block)
            block[:, m:] = -np.inf
            if self_index is not None:
                own = np.asarray(self_index[s : s + rows])
                hit = np.nonzero(own >= 0)[0]
                block[hit, own[hit]] = EXCLUDED
            idx[s : s + len(q)], sim[s : s + len(q)] = top_k_columns(block, k)
        return idx, sim

    def predict_proba(self, x: np.ndarray, *, self_index: np.ndarray | None = None
                      ) -> np.ndarray:
        """Vote shares per class. ``self_index[i]`` (a training row, or -1) is left out
        of query ``i``'s neighbours, so a training post does not vote for itself."""
        import numpy as np

        n = len(x)
        ncls = len(self.classes_)
        if n == 0:
            return np.zeros((0, ncls))
        idx, sim = self.neighbours(x, self_index=self_index)
        top = sim.astype(np.float64)
        w = np.where(top > -1.5, 1.0 / (1.0 - top + self.eps), 0.0)  # EXCLUDED: no vote
        weight = self._w
        if weight is not None:
            w = w * weight[idx]
        cls = self._y[idx]
        # one weighted count per (query, class), summed in neighbour order
        flat = (np.arange(n)[:, None] * ncls + cls).ravel()
        out: np.ndarray = np.bincount(flat, weights=w.ravel(), minlength=n * ncls).astype(
            np.float64).reshape(n, ncls)
        if self.balance:
            out /= np.bincount(self._y, minlength=ncls)
        out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
