"""What the self-trained classifier learns from: each label's most confident share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.labels.sources import self_train_rows


def test_a_global_cut_starves_the_labels_whose_votes_run_flat() -> None:
    # label 0 votes sharply (0.9), labels 1 and 2 flatly (0.4-0.5): a 0.7 cut learns
    # label 0 alone, the per-label share learns the top half of every label
    cur = np.array([0] * 6 + [1] * 6 + [2] * 4)
    conf = np.r_[np.full(6, 0.9), np.linspace(0.4, 0.5, 6), np.linspace(0.35, 0.45, 4)]
    free = np.ones(len(cur), dtype=bool)
    cut = self_train_rows(free, cur, conf, 3, share=0.0, confidence=0.7)
    assert set(cur[cut].tolist()) == {0}
    half = self_train_rows(free, cur, conf, 3, share=0.5, confidence=0.7)
    assert np.bincount(cur[half], minlength=3).tolist() == [6, 3, 2]  # ties at 0.9 all in
    # the kept ones are each label's most confident
    for c in (1, 2):
        rows = cur == c
        assert conf[half & rows].min() > conf[~half & rows].max()


def test_rows_not_free_or_without_a_label_are_never_learnt() -> None:
    cur = np.array([0, 0, -1, 1, 1, 1])
    conf = np.array([0.9, 0.8, 0.9, 0.7, 0.6, 0.5])
    free = np.array([True, False, True, True, True, True])
    got = self_train_rows(free, cur, conf, 2, share=1.0, confidence=0.0)
    assert got.tolist() == [True, False, False, True, True, True]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), st.floats(0.0, 1.0), st.booleans()),
                min_size=1, max_size=60),
       st.floats(0.05, 1.0))
def test_every_label_keeps_about_its_share(rows: list[tuple[int, float, bool]],
                                           share: float) -> None:
    cur = np.array([r[0] for r in rows])
    conf = np.array([r[1] for r in rows])
    free = np.array([r[2] for r in rows])
    got = self_train_rows(free, cur, conf, 4, share=share, confidence=0.7)
    assert not (got & ~free).any() and not (got & (cur < 0)).any()
    for c in range(4):
        rows_c = free & (cur == c)
        if rows_c.any():  # at least one, at least the share (ties at the cut go in)
            assert got[rows_c].sum() >= max(1, int(np.floor(share * rows_c.sum() - 1e-9)))
