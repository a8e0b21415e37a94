"""CosineKNN's blocked top-k against a brute-force stable sort, on real post vectors.

Real vectors: Word2Vec (gensim) trained on the real chatbot questions of
``tests/data/chatbot_sample.csv``, tokenised by the regex baseline. Short questions repeat, so many
posts share one vector exactly: ties at the k-th neighbour are the common case, and the
rule (higher similarity first, then the lower training row) must hold in every block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import EmbedConfig
from weaklabel.labels.knn import GROUP, CosineKNN, top_k_columns
from weaklabel.labels.propagate import CosineKNN as FromPropagate
from weaklabel.labels.propagate import post_vectors
from weaklabel.text.embed import train_word2vec
from weaklabel.text.tokenizer import make_tokenizer
from weaklabel.text.userdict import UserDict

# bundled real text: a clean clone on CI has no ../shared
CHATBOT = Path(__file__).resolve().parents[1] / "data/chatbot_sample.csv"


@pytest.fixture(scope="module")
def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    toks = make_tokenizer("regex", UserDict((), frozenset())).tokenize(rows["text"].tolist())
    kv = train_word2vec(toks, cfg=EmbedConfig(vector_size=32, min_count=2, epochs=3, seed=1))
    x, has = post_vectors(toks, kv)
    return x[has], rows["label"].to_numpy()[has]


def _reference(xq: np.ndarray, xs: np.ndarray, k: int, own: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
    sims = xq @ xs.T
    if own is not None:
        hit = np.nonzero(own >= 0)[0]
        sims[hit, own[hit]] = -2.0
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(sims, idx, axis=1)


def test_the_real_vectors_have_ties() -> None:
    # the point of the tie tests below: exact duplicates are common in real posts
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False)
    assert rows["text"].duplicated().sum() > 20  # 27 in the bundled 4,000-question sample


@pytest.mark.parametrize("k, chunk", [(15, 4096), (15, 7), (1, 50), (40, 3)])
def test_neighbours_match_a_stable_sort_of_every_row(
        real_vectors: tuple[np.ndarray, np.ndarray], k: int, chunk: int) -> None:
    x, y = real_vectors
    assert len(x) > 3200
    xs, ys = x[:2400], y[:2400]
    xq = x[1600:3200]  # 800 queries are training rows themselves
    own = np.full(len(xq), -1)
    own[:800] = np.arange(1600, 2400)
    knn = CosineKNN(k, chunk=chunk).fit(xs, ys.tolist())
    for self_index in (None, own):
        idx, sim = knn.neighbours(xq, self_index=self_index)
        ref_idx, ref_sim = _reference(xq, xs, k, self_index)
        assert np.array_equal(sim, ref_sim)
        assert np.array_equal(idx, ref_idx)
    # a post never finds itself when left out
    idx, _ = knn.neighbours(xq, self_index=own)
    assert not (idx[:800] == own[:800, None]).any()


def test_votes_match_a_brute_force_vote(real_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = real_vectors
    xs, ys, xq = x[:2500], y[:2500].tolist(), x[2500:]
    knn = CosineKNN(15, balance=True, chunk=11).fit(xs, ys)
    classes = sorted(set(ys))
    idx, sim = _reference(xq, xs, 15, None)
    counts = {c: ys.count(c) for c in classes}
    expected = np.zeros((len(xq), len(classes)))
    for i in range(len(xq)):
        for j, s in zip(idx[i], sim[i], strict=True):
            expected[i, classes.index(ys[j])] += 1.0 / (1.0 - float(s) + 1e-3) / counts[ys[j]]
    expected /= expected.sum(axis=1, keepdims=True)
    proba = knn.predict_proba(xq)
    assert knn.classes_.tolist() == classes
    assert np.allclose(proba, expected, rtol=1e-12, atol=0)
    assert knn.predict(xq).tolist() == [classes[i] for i in expected.argmax(axis=1)]


def test_all_equal_similarities_fall_back_to_the_sort() -> None:
    # every column ties: the bound prunes nothing, the block is sorted instead
    sims = np.zeros((5, GROUP * 40), dtype=np.float32)
    sims[2, 700] = 0.5
    idx, vals = top_k_columns(sims, 3)
    assert idx.tolist()[0] == [0, 1, 2]
    assert idx.tolist()[2] == [700, 0, 1]
    assert vals[2].tolist() == [0.5, 0.0, 0.0]


def test_fewer_training_posts_than_k_and_the_old_import() -> None:
    assert FromPropagate is CosineKNN  # propagate.py keeps the name importable
    xs = np.eye(3, dtype=np.float32)
    knn = CosineKNN(15).fit(xs, ["a", "b", "b"])
    proba = knn.predict_proba(np.array([[1.0, 0.0, 0.0]], dtype=np.float32))
    assert proba.shape == (1, 2) and proba[0, 0] > proba[0, 1]
    assert knn.predict_proba(np.zeros((0, 3), dtype=np.float32)).shape == (0, 2)
