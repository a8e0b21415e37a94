"""Data contracts: every artifact's columns, dtypes, key and sort order, in one place.

The "no label" sentinel is :data:`ABSTAIN`, the empty string, everywhere: in post labels,
image labels, evaluation and exports. A label id can never be empty (the label map
rejects it), so the sentinel cannot collide with a real label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from weaklabel.errors import WeaklabelError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ABSTAIN = ""
"""The label of a post or image that has none (abstained, no tokens, no seed)."""

STORAGE_STATE = "storage/objects.sqlite"
"""A bucket's object state in the workspace (listing, ETags, what is read in place)."""
STORAGE_MIRROR = "storage/mirror"
"""Where a bucket's images are mirrored as files, one folder per image root."""

SOURCES = ("seed", "knn", "reviewed", "none")
"""Where a post label came from: a keyword seed, propagation (``knn``: the combined vote of
the labelling sources; the name is kept from when KNN was the only one), a person's
review (``reviewed_labels.parquet``), or nowhere (abstain)."""

LABEL_SOURCES = ("keyword", "knn", "prototype", "classifier")
"""The labelling sources whose own votes ``post_labels`` keeps as ``label_<source>``."""


@dataclass(frozen=True)
class Schema:
    """Columns (name → kind), unique key and sort order of one artifact.

    Kinds: ``str``, ``str?`` (nullable text), ``int`` (no nulls), ``Int64`` (nullable
    integer), ``float``, ``list[str]``.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()
    defaults: tuple[tuple[str, object], ...] = ()
    """Columns that may be missing (an older artifact, a hand-made frame) and their fill."""

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]


POSTS = Schema(
    "posts",
    (("post_id", "str"), ("caption", "str"), ("likes", "Int64"), ("comments", "Int64"),
     ("created_at", "str?")),
    key=("post_id",),
)
POST_IMAGES = Schema(
    "post_images", (("post_id", "str"), ("image", "str")), key=("post_id", "image")
)
TOKENS = Schema(
    "tokens", (("post_id", "str"), ("tokens", "list[str]"), ("caption_hash", "str")),
    key=("post_id",),
)
WORD_CLUSTERS = Schema(
    "word_clusters",
    (("word", "str"), ("cluster", "int"), ("count", "int"), ("similarity", "float")),
    key=("word",), sort=("cluster", "word"),
)
POST_LABELS = Schema(
    "post_labels",
    (("post_id", "str"), ("label", "str"), ("confidence", "float"), ("source", "str"),
     ("evidence", "str"), ("top_label", "str"),
     *((f"label_{s}", "str") for s in LABEL_SOURCES)),
    key=("post_id",), sort=("post_id",),
    defaults=tuple((f"label_{s}", ABSTAIN) for s in LABEL_SOURCES),
)
"""``label_<source>``: that source's own top label, :data:`ABSTAIN` where it abstained or
did not run; the review queue ranks their disagreement."""
REVIEWED_LABELS = Schema(
    "reviewed_labels", (("post_id", "str"), ("label", "str")), key=("post_id",),
)
"""``WORKSPACE/reviewed_labels.parquet``, written by review: a person's label per post;
:data:`ABSTAIN` means "none of the labels"."""
IMAGE_LABELS = Schema(
    "image_labels",
    (("image", "str"), ("post_id", "str"), ("label", "str"), ("confidence", "float"),
     ("likes", "Int64"), ("comments", "Int64")),
    key=("image", "post_id"), sort=("image", "post_id"),
)
GOLD = Schema("gold", (("post_id", "str"), ("label", "str")), key=("post_id",))
LABELS_CSV = Schema("labels", (("post_id", "str"), ("label", "str")), key=("post_id",))
"""A labels file given as CSV (e.g. another tool's output) to ``weaklabel eval``."""

@dataclass(frozen=True)
class StageIO:
    """One stage's place in the house: what it reads and what it writes.

    Names without a folder are workspace artifacts; ``cfg.<key>`` names a path the
    config gives (the posts table, the label map, the image root, the output folder).
    An output outside the workspace (``cfg.output``: the exported data set) gets its
    meta beside it (``OUT.meta.json``) and, inside it, the ledger of the files it holds;
    ``cfg.eval.labels`` defaults to the workspace's ``post_labels.parquet`` and
    ``cfg.report.output`` to ``report.html``.
    """

    stage: str
    run: str  # the module and function a notebook calls
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


STAGES = (
    StageIO("tokenize", "weaklabel.text.tokens.run_tokenize",
            ("cfg.posts.path", "cfg.posts.links", "cfg.tokenize.userdict"),
            ("posts.parquet", "post_images.parquet", "tokens.parquet",
             "tokenize.rejects.csv", "cache/tokens.sqlite")),
    StageIO("embed", "weaklabel.text.embed.run_embed",
            ("tokens.parquet",), ("vectors.kv", "vocab.csv")),
    StageIO("cluster", "weaklabel.labels.cluster.run_cluster",
            ("vectors.kv", "vocab.csv", "cfg.seed_keywords"),
            ("word_clusters.parquet", "clusters.csv", "labelmap.draft.yaml")),
    StageIO("reviewed", "weaklabel.review.reviewed.write_reviewed",
            ("review/decisions.sqlite",),
            ("reviewed_labels.parquet", "reviewed_images.parquet")),
    StageIO("propagate", "weaklabel.labels.propagate.run_propagate",
            ("tokens.parquet", "vectors.kv", "word_clusters.parquet", "post_images.parquet",
             "posts.parquet", "reviewed_labels.parquet", "cfg.labelmap"),
            ("post_labels.parquet", "keyword_labels.parquet", "image_labels.parquet",
             "labelmap.pin.json")),
    StageIO("purge", "weaklabel.images.purge.run_purge",
            ("cfg.images.root",), ("inventory.sqlite", "purge.csv")),
    StageIO("dedup", "weaklabel.images.dedup.run_dedup",
            ("cfg.images.root", "inventory.sqlite"),
            ("inventory.sqlite", "duplicates.csv", "dedup_excluded.csv")),
    StageIO("sample", "weaklabel.dataset.sample.run_sample",
            ("image_labels.parquet", "purge.csv", "duplicates.csv", "dedup_excluded.csv",
             "reviewed_images.parquet", "cfg.labelmap"),
            ("sample.parquet", "sample_funnel.csv", "label_conflicts.csv")),
    StageIO("export", "weaklabel.dataset.export.run_export",
            ("sample.parquet", "duplicates.csv", "posts.parquet", "purge.csv",
             "reviewed_labels.parquet", "reviewed_images.parquet", "inventory.sqlite",
             "cfg.labelmap", "cfg.images.root"),
            ("cfg.output", "export.rejects.csv")),
    StageIO("report", "weaklabel.dataset.report.run_report",
            ("posts.parquet", "post_labels.parquet", "keyword_labels.parquet",
             "image_labels.parquet", "reviewed_images.parquet", "purge.csv",
             "duplicates.csv", "sample.parquet", "clusters.csv", "review/decisions.sqlite",
             "cfg.labelmap", "cfg.gold", "cfg.images.root"),
            ("cfg.report.output", "thumbs/")),
    StageIO("eval", "weaklabel.labels.evaluate.run_eval",
            ("cfg.eval.labels", "cfg.eval.baseline", "cfg.gold", "cfg.labelmap"), ()),
)
"""Every stage in build order with its inputs and outputs: the newcomer's map of the
house (README "How it works" shows the same). ``workspace.MADE_BY`` must agree."""


def arrow_schema(schema: Schema) -> pa.Schema:
    """The pyarrow schema of ``schema``, for writers that stream Parquet partition by
    partition (the contract is stated once, here)."""
    import pyarrow as pa

    kinds = {"str": pa.string(), "str?": pa.string(), "int": pa.int64(),
             "Int64": pa.int64(), "float": pa.float64(), "list[str]": pa.list_(pa.string())}
    return pa.schema([(col, kinds[kind]) for col, kind in schema.columns])


def _valid_mask(s: pd.Series, kind: str) -> pd.Series:
    """Boolean mask of the cells of ``s`` that are of ``kind`` (vectorised where it can)."""
    import pandas as pd
    from pandas.api import types as t

    if kind == "int":
        # Per cell, so a nullable Int64 column names its first missing value, not row 0.
        return ~s.isna() if t.is_integer_dtype(s) else s.map(_is_int)
    if kind == "Int64":
        if t.is_integer_dtype(s):
            return pd.Series(True, index=s.index)
        return s.map(lambda v: _is_int(v) or bool(pd.isna(v)))
    if kind == "float":
        if t.is_float_dtype(s) or t.is_integer_dtype(s):
            return pd.Series(True, index=s.index)
        return s.map(_is_number)  # an object column: find the first non-number
    if kind == "str":
        return s.map(lambda v: isinstance(v, str))
    if kind == "str?":
        return s.map(lambda v: isinstance(v, str) or v is None or bool(pd.isna(v)))
    return s.map(  # list[str]
        lambda v: hasattr(v, "__iter__") and not isinstance(v, str)
        and all(isinstance(x, str) for x in v)
    )


def _is_number(v: object) -> bool:
    import numpy as np

    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_int(v: object) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_frame(df: pd.DataFrame, schema: Schema, where: Path | str) -> None:
    """Raise :class:`WeaklabelError` if ``df`` breaks ``schema``.

    The message names the file, the column and the first bad rows.
    """
    fill_defaults(df, schema)
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise WeaklabelError(
            f"{where}: {schema.name} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(schema.names)}"
        )
    for col, kind in schema.columns:
        ok = _valid_mask(df[col], kind) if len(df) else None
        if ok is not None and not bool(ok.all()):
            pos = [int(i) for i in (~ok.to_numpy(dtype=bool)).nonzero()[0][:3]]
            raise WeaklabelError(
                f"{where}: column {col!r} of {schema.name} must be {kind}; "
                f"bad value at {_rows(pos)}: {df[col].iloc[pos[0]]!r}"
            )
    if schema.key and len(df):
        dup = df.duplicated(list(schema.key), keep=False)
        if dup.any():
            pos = [int(i) for i in dup.to_numpy().nonzero()[0][:3]]
            raise WeaklabelError(
                f"{where}: key {', '.join(schema.key)} of {schema.name} repeats at {_rows(pos)}"
            )


def fill_defaults(df: pd.DataFrame, schema: Schema) -> None:
    """Add, in place, each missing column that ``schema`` gives a default."""
    for col, value in schema.defaults:
        if col not in df.columns:
            df[col] = value


def _rows(positions: list[int]) -> str:
    """1-based data-row numbers (the header is not a row), as a person counts them."""
    nums = [str(p + 1) for p in positions]
    return ("row " if len(nums) == 1 else "rows ") + ", ".join(nums)


def conform(df: pd.DataFrame, schema: Schema, where: Path | str) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return it with the schema's columns, sorted."""
    if any(c not in df.columns for c, _ in schema.defaults):
        df = df.copy()
    check_frame(df, schema, where)
    out = df[schema.names]
    if schema.sort:
        out = out.sort_values(list(schema.sort), kind="mergesort")
    return out.reset_index(drop=True)
