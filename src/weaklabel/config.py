"""Pipeline configuration: frozen dataclasses with documented defaults.

Precedence: a CLI flag > the YAML config file (``configs/*.yaml``) > these defaults.
Relative paths in a config are relative to the current working directory.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from weaklabel.errors import WeaklabelError


@dataclass(frozen=True)
class ColumnsConfig:
    """The user's column names for each logical posts column."""

    post_id: str = "post_id"
    caption: str = "caption"
    images: str = "images"
    likes: str = "likes"
    comments: str = "comments"
    created_at: str = "created_at"


@dataclass(frozen=True)
class PostsConfig:
    """Where the posts table is and how to read it."""

    path: str | None = None
    format: str | None = None  # csv | jsonl | parquet; None: from the file name
    encoding: str | None = None  # None: detect UTF-8 / UTF-8-BOM / CP949
    image_sep: str = "|"
    links: str | None = None  # optional link table post_id,image
    image_root: str | None = None  # where the images column's relative paths point
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)


@dataclass(frozen=True)
class TokenizeConfig:
    """Okt tokenization. ``workers=0`` means one per core, decided at run time."""

    tokenizer: str = "okt"
    userdict: str | None = None  # None: ./userdict when it exists, else no dictionary
    keep_pos: tuple[str, ...] = ("Noun", "Hashtag", "Alpha")
    stem: bool = True
    min_length: int = 1
    workers: int = 0
    chunk_size: int = 250  # captions per task sent to a worker: small tasks balance the JIT warm-up


@dataclass(frozen=True)
class EmbedConfig:
    """gensim Word2Vec. One worker and a fixed seed make vectors reproducible."""

    vector_size: int = 100
    window: int = 5
    min_count: int = 3
    epochs: int = 15
    sg: int = 1
    negative: int = 5
    seed: int = 42
    workers: int = 1


@dataclass(frozen=True)
class ClusterConfig:
    """KMeans over the L2-normalised vectors of the most frequent words."""

    k: int = 40
    k_range: str | None = None  # "A:B": try every K in [A, B] and keep the best silhouette
    top_words: int = 3000
    seed: int = 42
    n_init: int = 4


@dataclass(frozen=True)
class PropagateConfig:
    """Keyword seeding and KNN propagation."""

    k: int = 15
    min_confidence: float = 0.5
    seed_margin: float = 1.0
    cluster_word_weight: float = 0.5
    cluster_word_similarity: float = 0.5  # a cluster word must be this close to a keyword
    idf: bool = True
    center: bool = True  # subtract the mean word vector before averaging
    balance: bool = True  # divide KNN votes by each label's seed count
    prototype_weight: float = 0.5  # share of the keyword-centroid vote in the blend
    prototype_temperature: float = 0.05  # softmax temperature of that vote
    cv_folds: int = 5
    seed: int = 42
    # The discriminative second stage (labels/sources.py): which sources vote, how
    # their votes combine (auto: by held-out seeds), at most how many self-training
    # rounds (the held-out seeds pick how many), the confidence a label needs to be
    # learnt from, the classifier's regularisation and sample cap, the share of seeds
    # held out to choose by, and a target precision (0: keep min_confidence).
    compounds: bool = True  # a token containing a keyword counts for it (미니스커트: 스커트)
    sources: tuple[str, ...] = ("keyword", "knn", "prototype", "classifier")
    combine: str = "auto"
    rounds: int = 3
    self_train_confidence: float = 0.7
    classifier_c: float = 1.0
    classifier_max_posts: int = 30_000
    holdout: float = 0.2
    target_precision: float = 0.0


@dataclass(frozen=True)
class ImagesConfig:
    """Image hygiene: purge and dedup."""

    root: str | None = None
    workers: int = 0
    hash_method: str = "phash"
    hash_size: int = 8
    near_threshold: int = 6
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb limit


@dataclass(frozen=True)
class SampleConfig:
    """Top-engagement sampling per label."""

    per_label: int = 1000
    quotas: dict[str, int] = field(default_factory=dict)
    comment_weight: float = 2.0
    min_confidence: float = 0.0
    per_post: int = 1
    balance: bool = False
    include_background: bool = True


@dataclass(frozen=True)
class ExportConfig:
    """Data-set export."""

    formats: tuple[str, ...] = ("imagefolder", "manifest", "csv")
    split: tuple[float, ...] = (0.8, 0.1, 0.1)
    seed: int = 42
    link: str = "hardlink"
    source_prefix: str | None = None
    job_name: str = "weaklabel"
    creation_date: str | None = None  # manifest creation-date (ISO); None: newest created_at


@dataclass(frozen=True)
class Config:
    """The whole pipeline's configuration."""

    workspace: str = "build"
    labelmap: str | None = None
    seed_keywords: str | None = None
    gold: str | None = None
    output: str | None = None
    posts: PostsConfig = field(default_factory=PostsConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    propagate: PropagateConfig = field(default_factory=PropagateConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


@dataclass(frozen=True)
class _At:
    """Where a setting is: the file, the line of its key, its dotted name."""

    file: str
    line: int | None = None
    dotted: str = ""

    def child(self, key: object, line: int | None) -> _At:
        name = f"{self.dotted}.{key}" if self.dotted else str(key)
        return _At(self.file, line or self.line, name)

    @property
    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.place}: {self.dotted}" if self.dotted else self.place


def _coerce(value: Any, annotation: Any, where: _At) -> Any:
    """Coerce a YAML value to a dataclass field's type, or raise a clear error."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if is_dataclass(annotation):
        return _build(annotation, value, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise WeaklabelError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise WeaklabelError(f"{where} must be a mapping, got {value!r}")
        lines = getattr(value, "key_lines", {})
        return {str(k): _coerce(v, args[1], where.child(k, lines.get(k)))
                for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise WeaklabelError(f"{where} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WeaklabelError(f"{where} must be a whole number, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WeaklabelError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise WeaklabelError(f"{where} must be text, got {value!r}")
        return value
    return value


def _build(cls: Any, data: Any, where: _At) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise WeaklabelError(f"{where} must be a mapping of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    lines = getattr(data, "key_lines", {})
    kwargs = {}
    for key, value in data.items():
        at = where.child(key, lines.get(key))
        if key not in names:
            section = f"{where.dotted}: " if where.dotted else ""
            raise WeaklabelError(
                f"{at.place}: {section}unknown setting {key!r}; valid: "
                f"{', '.join(sorted(names))}"
            )
        kwargs[key] = _coerce(value, hints[key], at)
    return cls(**kwargs)


def load_config(path: Path | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and validate it."""
    if path is None:
        return Config()
    from weaklabel.yamlio import load_yaml

    data = load_yaml(Path(path))
    return _build(Config, data or {}, _At(str(path)))


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply dotted overrides (``"embed.seed": 3``); ``None`` values are ignored.

    Example:
        >>> with_overrides(Config(), {"embed.seed": 3}).embed.seed
        3
    """
    for dotted, value in overrides.items():
        if value is None:
            continue
        parts = dotted.split(".")
        cfg = _set(cfg, parts, value)
    return cfg


def _set(obj: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return replace(obj, **{parts[0]: value})
    child = getattr(obj, parts[0])
    return replace(obj, **{parts[0]: _set(child, parts[1:], value)})


def as_dict(obj: Any) -> Any:
    """A dataclass config as plain JSON-able data (for artifact meta)."""
    return dataclasses.asdict(obj)


def resolve_workers(n: int) -> int:
    """``0`` means one worker per available core (decided at call time, not import)."""
    import os

    if n > 0:
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
