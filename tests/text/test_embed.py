"""The embed stage: real gensim Word2Vec on the synthetic corpus."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from weaklabel.config import Config, EmbedConfig
from weaklabel.errors import WeaklabelError
from weaklabel.text.embed import (
    TokenCorpus,
    load_vectors,
    read_vocab_counts,
    run_embed,
    save_vectors,
    train_word2vec,
)
from weaklabel.workspace import Workspace


def test_token_corpus_streams_non_empty_lists_and_restarts(tmp_path: Path) -> None:
    p = tmp_path / "tokens.parquet"
    pd.DataFrame({"post_id": list("abcd"), "tokens": [["x", "y"], [], ["z"], ["x"]],
                  "caption_hash": list("1234")}).to_parquet(p)
    corpus = TokenCorpus(p, batch_size=1)
    assert list(corpus) == [["x", "y"], ["z"], ["x"]]
    assert list(corpus) == list(corpus)  # every epoch sees the same sentences


def test_vectors_separate_the_topics(kv: Any, corpus: list[dict[str, Any]]) -> None:
    assert kv.vector_size == 24
    assert kv.get_vecattr("립스틱", "count") == sum(r["tokens"].count("립스틱") for r in corpus)
    assert kv.similarity("립스틱", "틴트") > kv.similarity("립스틱", "염색")
    assert kv.similarity("젤네일", "매니큐어") > kv.similarity("젤네일", "미용실")


def test_same_seed_same_vectors_other_seed_other_vectors(
        corpus: list[dict[str, Any]], small_embed_cfg: EmbedConfig, kv: Any) -> None:
    sentences = [r["tokens"] for r in corpus]
    again = train_word2vec(sentences, cfg=small_embed_cfg)
    assert again.index_to_key == kv.index_to_key
    assert np.array_equal(again.vectors, kv.vectors)
    other = train_word2vec(sentences, cfg=dataclasses.replace(small_embed_cfg, seed=2))
    assert not np.array_equal(other.vectors, kv.vectors)


def test_min_count_too_high_is_a_user_error() -> None:
    with pytest.raises(WeaklabelError, match=r"no word occurs 5\+ times.*lower embed.min_count"):
        train_word2vec([["a", "b"], ["a"]], cfg=EmbedConfig(min_count=5, vector_size=4))


def test_a_corpus_of_no_token_says_so_not_lower_min_count() -> None:
    # every caption empty or emoji: "lower embed.min_count" could never help
    with pytest.raises(WeaklabelError, match=r"no post has a token \(every caption is "
                                              r"empty, emoji or stop words\?\)"):
        train_word2vec([], cfg=EmbedConfig(min_count=1, vector_size=4))


def test_save_and_load_round_trip(tmp_path: Path, kv: Any) -> None:
    p = tmp_path / "vectors.kv"
    save_vectors(kv, p)
    back = load_vectors(p)
    assert back.index_to_key == kv.index_to_key
    assert np.allclose(back.vectors, kv.vectors)
    assert [x.name for x in tmp_path.iterdir()] == ["vectors.kv"]


def test_damaged_vectors_are_a_user_error(tmp_path: Path) -> None:
    p = tmp_path / "vectors.kv"
    p.write_bytes(b"3 4\nnot vectors")
    with pytest.raises(WeaklabelError, match="cannot read vectors .*re-run weaklabel embed"):
        load_vectors(p)


def test_run_embed_writes_vectors_vocab_and_meta(token_workspace: Path,
                                                 small_embed_cfg: EmbedConfig,
                                                 corpus: list[dict[str, Any]]) -> None:
    ws = Workspace(token_workspace)
    cfg = Config(embed=small_embed_cfg)
    r = run_embed(ws, cfg)
    kv = load_vectors(ws.path("vectors.kv"))
    assert r.summary.vocab == len(kv) == 38 and r.summary.vector_size == 24
    assert not r.up_to_date and r.stage == "embed"
    assert r.outputs == (ws.path("vectors.kv"), ws.path("vocab.csv"))
    assert r.rows == {"vectors.kv": 38, "vocab.csv": 38}
    counts = read_vocab_counts(ws.path("vocab.csv"))
    assert list(counts) == kv.index_to_key
    # the word2vec file keeps no counts: vocab.csv carries the real ones
    assert counts["립스틱"] == sum(r["tokens"].count("립스틱") for r in corpus)
    meta = ws.read_meta("vectors.kv")
    assert meta is not None and meta["params"]["seed"] == 1 and meta["rows"] == 38
    again = run_embed(ws, cfg)
    assert again.up_to_date and again.summary == r.summary and again.rows == r.rows
    redone = run_embed(ws, dataclasses.replace(cfg, embed=dataclasses.replace(
        small_embed_cfg, epochs=2)))  # a changed parameter re-trains
    assert not redone.up_to_date and redone.summary.vocab == 38


def test_vocab_csv_quotes_awkward_words(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    rows = [["a,b", 'say "hi"', "plain"]] * 3
    pd.DataFrame({"post_id": ["1", "2", "3"], "tokens": rows,
                  "caption_hash": ["x", "y", "z"]}).to_parquet(ws.ensure().path("tokens.parquet"))
    run_embed(ws, Config(embed=EmbedConfig(vector_size=4, min_count=1, epochs=1)))
    assert read_vocab_counts(ws.path("vocab.csv")) == {"a,b": 3, 'say "hi"': 3, "plain": 3}


def test_run_embed_without_tokens_says_run_tokenize(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match="tokens.parquet does not exist; run `weaklabel "
                                             "tokenize` first"):
        run_embed(Workspace(tmp_path / "empty"), Config())
    assert not (tmp_path / "empty").exists()


def test_same_tokens_same_seed_give_byte_identical_vectors(
        tmp_path: Path, corpus: list[dict[str, Any]], small_embed_cfg: EmbedConfig,
        token_workspace: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(token_workspace, other)
    cfg = Config(embed=small_embed_cfg)
    run_embed(Workspace(token_workspace), cfg)
    run_embed(Workspace(other), cfg)
    for name in ("vectors.kv", "vocab.csv"):
        assert (token_workspace / name).read_bytes() == (other / name).read_bytes()


@pytest.mark.slow
def test_vectors_are_identical_in_a_fresh_process(token_workspace: Path,
                                                  small_embed_cfg: EmbedConfig) -> None:
    """Python's string hashing differs between processes; the vectors must not."""
    run_embed(Workspace(token_workspace), Config(embed=small_embed_cfg))
    other = token_workspace.parent / "fresh"
    other.mkdir()
    (other / "tokens.parquet").write_bytes((token_workspace / "tokens.parquet").read_bytes())
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from weaklabel.config import Config, EmbedConfig\n"
        "from weaklabel.text.embed import run_embed\n"
        "from weaklabel.workspace import Workspace\n"
        f"cfg = Config(embed=EmbedConfig(**{dataclasses.asdict(small_embed_cfg)!r}))\n"
        "run_embed(Workspace(Path(sys.argv[1])), cfg)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(other)], check=True, timeout=120,
                   env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert (other / "vectors.kv").read_bytes() == (token_workspace / "vectors.kv").read_bytes()
