"""The embed stage: tokens → Word2Vec word vectors (gensim).

With one worker and a fixed seed gensim's training is deterministic, so the same tokens
and config give byte-identical vectors. The token table is streamed once per epoch
(:class:`TokenCorpus`), never held whole in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from weaklabel.config import Config, EmbedConfig, as_dict
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace, atomic_path, atomic_write_text

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)


class TokenCorpus:
    """Restartable iterable over the token lists of ``tokens.parquet`` (batches)."""

    def __init__(self, path: Path, batch_size: int = 20_000) -> None:
        self.path = path
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[str]]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... on damage
            raise WeaklabelError(
                f"{self.path}: cannot read Parquet ({exc}); re-run weaklabel tokenize "
                "--force") from exc
        if "tokens" not in pf.schema_arrow.names:
            raise WeaklabelError(f"{self.path}: no 'tokens' column; re-run weaklabel tokenize")
        for batch in pf.iter_batches(batch_size=self.batch_size, columns=["tokens"]):
            for toks in batch.column(0).to_pylist():
                if toks:
                    yield toks


def train_word2vec(sentences: Iterable[list[str]], *, cfg: EmbedConfig) -> KeyedVectors:
    """Train Word2Vec on token lists and return its KeyedVectors (with counts).

    Raises:
        WeaklabelError: no word occurs ``min_count`` times.
    """
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=cfg.vector_size, window=cfg.window, min_count=cfg.min_count, sg=cfg.sg,
        negative=cfg.negative, seed=cfg.seed, workers=cfg.workers,
    )
    model.build_vocab(sentences)
    if model.corpus_count == 0:  # "lower min_count" cannot help a corpus of no word
        raise WeaklabelError(
            "no post has a token (every caption is empty, emoji or stop words?); check "
            "that the caption column is mapped (--col caption=NAME) and holds text")
    if len(model.wv) == 0:
        raise WeaklabelError(
            f"no word occurs {cfg.min_count}+ times in the tokens; lower embed.min_count "
            "or give more posts"
        )
    model.train(sentences, total_examples=model.corpus_count, epochs=cfg.epochs)
    return model.wv


def save_vectors(kv: KeyedVectors, path: Path) -> None:
    """Save vectors in word2vec binary format (one portable file), atomically."""
    with atomic_path(path) as tmp:
        kv.save_word2vec_format(str(tmp), binary=True)


def load_vectors(path: Path) -> KeyedVectors:
    """Load vectors written by :func:`save_vectors`."""
    from gensim.models import KeyedVectors

    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=True)
    except (OSError, ValueError, EOFError) as exc:
        raise WeaklabelError(f"{path}: cannot read vectors ({exc}); re-run weaklabel embed") \
            from exc


@dataclass(frozen=True)
class EmbedSummary(Summary):
    """What ``embed`` trained: the vocabulary size and the vector dimensions."""

    vocab: int
    vector_size: int

    def text(self) -> str:
        return f"vocabulary {self.vocab} words × {self.vector_size} dims"


EMBED_OUTPUTS = ("vectors.kv", "vocab.csv")


def run_embed(ws: Workspace, cfg: Config, *, force: bool = False,
              progress: bool = True) -> StageReport[EmbedSummary]:
    """Train Word2Vec on the workspace's tokens; write ``vectors.kv`` and ``vocab.csv``.

    The worked example of the stage contract (:mod:`weaklabel.stage`).

    Raises:
        MissingArtifactError: no ``tokens.parquet`` (run ``weaklabel tokenize``).
        WeaklabelError: no word occurs ``embed.min_count`` times.
    """
    tokens = ws.path("tokens.parquet")
    with ws.stage("embed", outputs=EMBED_OUTPUTS, params=as_dict(cfg.embed),
                  inputs={"tokens.parquet": tokens}, summary=EmbedSummary,
                  force=force) as st:
        if st.todo:
            kv = train_word2vec(TokenCorpus(tokens), cfg=cfg.embed)
            save_vectors(kv, ws.path("vectors.kv"))
            write_vocab(kv, ws.path("vocab.csv"))
            st.done(EmbedSummary(vocab=len(kv), vector_size=kv.vector_size),
                    rows=dict.fromkeys(EMBED_OUTPUTS, len(kv)))
    return st.report


def write_vocab(kv: KeyedVectors, path: Path) -> None:
    """``vocab.csv``: ``word,count`` in the vectors' order, atomically."""
    lines = ["word,count"] + [
        f"{_csv_cell(w)},{kv.get_vecattr(w, 'count')}" for w in kv.index_to_key
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_vocab_counts(path: Path) -> dict[str, int]:
    """word → corpus count from ``vocab.csv``."""
    import csv

    out: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != ["word", "count"]:
                raise ValueError(f"header is {reader.fieldnames}, expected word,count")
            for row in reader:
                out[row["word"]] = int(row["count"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeaklabelError(f"{path}: damaged vocabulary ({exc}); re-run weaklabel embed "
                             "--force") from exc
    return out


def _csv_cell(word: str) -> str:
    if any(c in word for c in ',"\n'):
        return '"' + word.replace('"', '""') + '"'
    return word
