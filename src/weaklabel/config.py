"""Pipeline configuration: frozen dataclasses with documented defaults.

Precedence: a CLI flag > the YAML config file (``configs/*.yaml``) > these defaults.
Relative paths in a config are relative to the current working directory.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from weaklabel.errors import WeaklabelError, closest


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
    # Longer captions are cut (and counted in the rejects): one 50 MB caption must not
    # stall Okt for minutes. Real captions are far shorter (Instagram allows 2,200).
    max_caption_chars: int = 20_000


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
    min_confidence: float | None = None  # None: the expected-F1 threshold (threshold_scope)
    # The default keep rule's scope: "global", one expected-macro-F1 threshold for every
    # label (what is kept is more confident than what abstains), or "per_label", each
    # label's own expected-F1 threshold (README, "Calibration").
    threshold_scope: str = "global"
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
    # held out to choose by, and a target precision (0: off, see min_confidence).
    compounds: bool = True  # a token containing a keyword counts for it (미니스커트: 스커트)
    sources: tuple[str, ...] = ("keyword", "knn", "prototype", "classifier")
    combine: str = "auto"
    rounds: int = 3
    self_train_confidence: float = 0.7
    self_train_share: float = 0.0  # > 0: each label's most confident share instead
    # The second stage's model (labels/sources.py, ClassifierSource): "nb_em", a
    # multinomial Naive Bayes fitted by EM over every post (Nigam et al. 2000: a few
    # labels, many unlabelled texts), or "logistic", a logistic regression self-trained
    # round by round on the pipeline's confident labels (classifier_c, _max_posts).
    classifier_model: str = "nb_em"
    # nb_em's second view: the tokenizer's tokens beside the char n-grams, at this share
    # of their weight (0: char n-grams only); and its keyword expansion, a second round
    # the held-out seeds take or leave: each label's this many purest words of the first
    # fit's vote become weak seeds (0: off). See labels/sources.py.
    classifier_token_weight: float = 0.5
    classifier_expand: int = 10
    classifier_c: float = 1.0
    classifier_max_posts: int = 30_000
    holdout: float = 0.2
    # the calibration's keyword-held-out run sees at most this many posts (a sample)
    calibration_max_posts: int = 40_000
    target_precision: float = 0.0
    # A reviewed correction (a person changed the label shown) is learnt from with this
    # weight (its vote as a KNN neighbour, the classifier's sample weight): it sits where
    # the pipeline was wrong. Keyword seeds and confirmed labels weigh 1.
    reviewed_weight: float = 5.0
    # Reviewed posts take part in what the held-out seeds choose (combiner, rounds,
    # calibration). Off: that choice is made on keyword seeds only, as with no reviews,
    # so a review moves the labels near it, not the whole build's rounds and coverage.
    reviews_choose: bool = False
    # A reviewed label holds for the unreviewed posts with the same token list ("tokens";
    # the same text to every source, review/reviewed.py:spread_reviews), or only for the
    # reviewed post ("none"). With no reviews nothing spreads.
    reviews_spread: str = "none"
    # The Naive Bayes stage takes a correction's words this many times its weight off the
    # label the reviewer was shown (0: off): the correction says they mislead towards it.
    reviewed_against: float = 0.0
    # A label word stops seeding a label when its reviewed seeds put its precision (Beta
    # prior 2:1, review/reviewed.py:audit_keywords) below this (0: off): a correction
    # indicts the keyword that seeded it, and its other seeds go to the other sources.
    reviewed_keywords: float = 0.0
    # A confirmed review (the reviewer kept the label shown) is learnt from with this
    # weight, as reviewed_weight is a correction's: a confirmation is one more right seed
    # where a correction marks where the sources were wrong, so it may weigh less.
    reviewed_confirm_weight: float = 1.0
    # A correction reaches its look-alikes (0 look-alikes: off): the k nearest non-seed,
    # unreviewed posts of a corrected post (cosine of the post vectors, at least
    # correction_spread_similarity) whose vote tops at the label the reviewer rejected.
    # "vote": their vote for that label is cut by correction_spread_weight (a share);
    # "seed": they are learnt from as weak seeds of the reviewer's label, weighing
    # correction_spread_weight. A confirmation reaches no one. See labels/propagate.py.
    correction_spread: str = "none"
    correction_spread_k: int = 8
    correction_spread_similarity: float = 0.7
    correction_spread_weight: float = 0.5


@dataclass(frozen=True)
class ReviewConfig:
    """Human review (``weaklabel review``)."""

    # The queue's order (review/triage.py, README "Review"): "default", likely-wrong
    # first; "audit", one seed per disputed label word interleaved at the top;
    # "coverage", the keyword seeds counted as already reviewed in the diversity;
    # "confident", suspicion ranked with how little out-of-fold probability (confident
    # learning, review/confident.py) the shown label gets; "cl", that probability alone;
    # "cl-no-density", that probability alone without density in the priority.
    queue: str = "default"


@dataclass(frozen=True)
class ImagesConfig:
    """Image hygiene: purge and dedup."""

    root: str | None = None
    workers: int = 0
    hash_method: str = "phash"
    hash_size: int = 8
    near_threshold: int = 6
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb limit
    formats: tuple[str, ...] = ()  # Pillow format names to accept (JPEG, PNG…); () = all


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
    manifest_url: str | None = None  # s3://bucket/key: also upload the manifest there


@dataclass(frozen=True)
class ReportConfig:
    """The HTML report (``weaklabel report``)."""

    output: str | None = None  # the HTML file; None: WORKSPACE/report.html
    thumb_size: int = 128  # thumbnail edge in pixels


@dataclass(frozen=True)
class EvalConfig:
    """``weaklabel eval``: which labels are scored against ``gold``, beside which baseline."""

    labels: str | None = None  # post_labels.parquet or a CSV; None: WORKSPACE/post_labels.parquet
    baseline: str | None = None  # None: keyword_labels.parquet beside post_labels.parquet


@dataclass(frozen=True)
class StorageConfig:
    """Object storage (``s3://…`` inputs): where the endpoint is and what to list."""

    endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL, else the AWS default
    since: str | None = None  # YYYYMMDD: list only date folders from that day on
    fetch_workers: int = 16  # parallel listings and fetches (network-bound threads)
    # mirror: fetch every new object into the workspace, stages read that folder (one
    # machine or a shared file system); in_place: list and inventory only, each worker
    # reads its objects from the store itself (remote Dask workers, no shared disk).
    read: str = "mirror"
    cache_dir: str | None = None  # in_place: each worker's object cache; None: ~/.cache
    cache_bytes: int = 1 << 30  # the cache's bound (LRU by bytes); 0: no cache


@dataclass(frozen=True)
class EngineConfig:
    """Where per-partition work runs: ``local`` process pools or a ``dask`` cluster."""

    name: str = "local"
    scheduler: str = "local"  # tcp://HOST:8786, or local: a LocalCluster for the run
    workers: int = 0  # LocalCluster worker processes; 0: one per core


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
    storage: StorageConfig = field(default_factory=StorageConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass(frozen=True)
class _At:
    """Where a setting is: the file, the line of its key, its dotted name."""

    file: str
    line: int | None = None
    dotted: str = ""
    seen: dict[str, int] | None = field(default=None, compare=False)  # dotted key → line

    def child(self, key: object, line: int | None) -> _At:
        name = f"{self.dotted}.{key}" if self.dotted else str(key)
        if line is not None and self.seen is not None:
            self.seen[name] = line
        return _At(self.file, line or self.line, name, self.seen)

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
            close = closest(str(key), sorted(names), cutoff=0.7)
            hint = f"did you mean {close!r}? " if close else ""
            raise WeaklabelError(
                f"{at.place}: {section}unknown setting {key!r}; {hint}valid: "
                f"{', '.join(sorted(names))}"
            )
        kwargs[key] = _coerce(value, hints[key], at)
    return cls(**kwargs)


def load_config(path: Path | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and validate it:
    the type of every setting while reading, then the range of each (:data:`SETTINGS`).

    Raises:
        WeaklabelError: one line naming the file, the line, the key and what is allowed.
    """
    if path is None:
        return Config()
    from weaklabel.yamlio import load_yaml

    data = load_yaml(Path(path))
    lines: dict[str, int] = {}
    cfg = _build(Config, data or {}, _At(str(path), seen=lines))
    return validate_config(cfg, source=str(path), lines=lines)


# --- ranges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """What one setting may be: a type, an inclusive range, a set of choices, or a
    function that raises :class:`WeaklabelError` (its message says what is allowed).

    ``none`` allows None (the setting's "decide for me" value).
    """

    kind: type | tuple[type, ...]
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    check: Any = None  # Callable[[Any], None]
    none: bool = False

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = "a whole number" if self.kind is int else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{what} from {_num(self.lo)} to {_num(self.hi)}"
        if self.lo is not None:
            return f"{what} >= {_num(self.lo)}"
        if self.hi is not None:
            return f"{what} <= {_num(self.hi)}"
        return what


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _choices(module: str, name: str) -> Any:
    """A check that the value is one of a registry's names, imported when checked."""
    def check(value: Any) -> None:
        import importlib

        valid = tuple(getattr(importlib.import_module(module), name))
        if value not in valid:
            raise WeaklabelError(f"must be one of {', '.join(sorted(valid))}")
    return check


def _each_of(module: str, name: str) -> Any:
    """A check that a list is non-empty and each item is one of a registry's names."""
    one = _choices(module, name)

    def check(value: Any) -> None:
        if not value:
            raise WeaklabelError("must list at least one name")
        for v in value:
            one(v)
    return check


def _one_of_or_auto(module: str, name: str) -> Any:
    """A check that the value is ``auto`` or one of a registry's names."""
    one = _choices(module, name)

    def check(value: Any) -> None:
        if value != "auto":
            try:
                one(value)
            except WeaklabelError as exc:
                raise WeaklabelError(f"{exc} (or auto)") from None
    return check


def _pillow_formats(value: tuple[str, ...]) -> None:
    if not value:  # every format: nothing to look up, so no image module at start-up
        return
    from weaklabel.images.inventory import check_formats

    try:
        check_formats(value)
    except WeaklabelError as exc:
        raise WeaklabelError("must be Pillow format names; "
                             + str(exc).removeprefix("images.formats: ")) from None


def _queue_order(value: str) -> None:
    from weaklabel.review.triage import QUEUE_ORDERS

    if value.lower() not in QUEUE_ORDERS:
        close = closest(value.lower(), QUEUE_ORDERS)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise WeaklabelError(f"must be one of {', '.join(QUEUE_ORDERS)}{hint}")


def _check_k_range(value: str) -> None:
    try:
        a, b = (int(x) for x in value.split(":"))
    except ValueError:
        raise WeaklabelError("must look like A:B with whole numbers, e.g. 10:40 (quote it "
                             "in YAML: '10:40')") from None
    if not 2 <= a <= b <= 100_000:
        raise WeaklabelError("must be A:B with 2 <= A <= B <= 100000")


def _check_split(value: tuple[float, ...]) -> None:
    if not 1 <= len(value) <= 3 or any(not math.isfinite(v) or v < 0 for v in value) \
            or abs(sum(value) - 1.0) > 1e-6:
        raise WeaklabelError("must be 1 to 3 fractions (train, val, test), each >= 0, "
                             "adding up to 1, e.g. [0.8, 0.1, 0.1]")


def _check_formats(value: tuple[str, ...]) -> None:
    from weaklabel.dataset.export import FORMATS  # the registry; export checks nothing again

    bad = [v for v in value if v not in FORMATS]
    if not value or bad:
        raise WeaklabelError(f"must be a non-empty list of {', '.join(FORMATS)} "
                             f"(unknown: {', '.join(map(str, bad)) or 'none given'})")


def _check_link(value: str) -> None:
    from weaklabel.dataset.export import LINK_MODES

    if value not in LINK_MODES:
        raise WeaklabelError(f"must be one of {', '.join(LINK_MODES)}")


def _check_prefix(value: str) -> None:
    import re

    # "s3://" alone made every source-ref "s3:///20190301/a.jpg", which names no object
    if not re.match(r"^[a-z][a-z0-9+.-]*://[^/\x00-\x1f\x7f][^\x00-\x1f\x7f]*$", value):
        raise WeaklabelError("must be a URI such as s3://bucket/path, without newlines or "
                             "control characters")


def _check_job(value: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})", value):
        raise WeaklabelError("must be 1-63 letters, digits or hyphens (a SageMaker "
                             "labeling-job name)")


def _check_date(value: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WeaklabelError("must be an ISO date such as 2019-07-31T00:00:00") from None


def _check_encoding(value: str) -> None:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise WeaklabelError("must be a text encoding such as utf-8, cp949, euc-kr") from None


def _check_text(value: str) -> None:
    if not value.strip() or any(ord(c) < 32 for c in value):
        raise WeaklabelError("must be non-empty text without newlines or control characters")


def _check_path(value: str) -> None:
    if not value.strip() or "\x00" in value or "\n" in value:
        raise WeaklabelError("must be a file or folder path (not empty, no NUL or newline)")


def _check_since(value: str) -> None:
    import datetime

    try:
        datetime.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise WeaklabelError("must be a day as YYYYMMDD, e.g. 20190303") from None
    if len(value) != 8:
        raise WeaklabelError("must be a day as YYYYMMDD, e.g. 20190303")


def _check_url(value: str) -> None:
    if not value.startswith(("http://", "https://")) or any(c in value for c in " \n\x00"):
        raise WeaklabelError("must be an http(s) URL, e.g. http://127.0.0.1:9000")


def _check_object_url(value: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s]+/[^\x00-\x1f\x7f]*[^/]", value):
        raise WeaklabelError("must name an object, e.g. s3://bucket/exports/manifest.jsonl")


def _check_scheduler(value: str) -> None:
    if value != "local" and not value.startswith(("tcp://", "tls://")):
        raise WeaklabelError("must be tcp://HOST:8786 or local")


def _check_sep(value: str) -> None:
    if not value or len(value) > 8 or any(ord(c) < 32 and c != "\t" for c in value):
        raise WeaklabelError("must be 1 to 8 characters, no newline (e.g. |)")


def _check_keep_pos(value: tuple[str, ...]) -> None:
    if not value:
        raise WeaklabelError("must list at least one part of speech, e.g. [Noun, Hashtag]")


def _check_quotas(value: dict[str, int]) -> None:
    for label, n in value.items():
        if not 0 <= n <= 1_000_000_000:
            raise WeaklabelError(f"{label!r} is {n}; use a whole number from 0 to 1000000000")


_WORKERS = Check(int, 0, 1024)
_SEED = Check(int, 0, 2**32 - 1)
_SHARE = Check(float, 0.0, 1.0)

_PATH = Check(str, check=_check_path, none=True)
_BOOL = Check(bool)

SETTINGS: dict[str, Check] = {
    # Extend with one line per new setting: "section.key": Check(type, lo, hi, ...).
    "workspace": Check(str, check=_check_path),
    "labelmap": _PATH,
    "seed_keywords": _PATH,
    "gold": _PATH,
    "output": _PATH,
    "posts.path": _PATH,
    "posts.links": _PATH,
    "posts.image_root": _PATH,
    "posts.format": Check(str, choices=("csv", "tsv", "jsonl", "parquet"), none=True),
    "posts.encoding": Check(str, check=_check_encoding, none=True),
    "posts.image_sep": Check(str, check=_check_sep),
    "posts.columns.post_id": Check(str, check=_check_text),
    "posts.columns.caption": Check(str, check=_check_text),
    "posts.columns.images": Check(str, check=_check_text),
    "posts.columns.likes": Check(str, check=_check_text),
    "posts.columns.comments": Check(str, check=_check_text),
    "posts.columns.created_at": Check(str, check=_check_text),
    "tokenize.tokenizer": Check(str, check=_choices("weaklabel.text.tokenizer", "TOKENIZERS")),
    "tokenize.userdict": _PATH,
    "tokenize.keep_pos": Check(tuple, check=_check_keep_pos),
    "tokenize.stem": _BOOL,
    "tokenize.min_length": Check(int, 1, 100),
    "tokenize.workers": _WORKERS,
    "tokenize.chunk_size": Check(int, 1, 1_000_000),
    "tokenize.max_caption_chars": Check(int, 100, 10_000_000),
    "embed.vector_size": Check(int, 2, 10_000),
    "embed.window": Check(int, 1, 1_000),
    "embed.min_count": Check(int, 1, 1_000_000_000),
    "embed.epochs": Check(int, 1, 10_000),
    "embed.sg": Check(int, 0, 1),
    "embed.negative": Check(int, 0, 100),
    "embed.seed": _SEED,
    "embed.workers": Check(int, 1, 1024),
    "cluster.k": Check(int, 2, 100_000),
    "cluster.k_range": Check(str, check=_check_k_range, none=True),
    "cluster.top_words": Check(int, 2, 100_000_000),
    "cluster.seed": _SEED,
    "cluster.n_init": Check(int, 1, 1_000),
    "propagate.k": Check(int, 1, 10_000),
    "propagate.min_confidence": Check(float, 0.0, 1.0, none=True),
    "propagate.threshold_scope": Check(str, choices=("global", "per_label")),
    "propagate.seed_margin": Check(float, 0.0, 1_000.0),
    "propagate.cluster_word_weight": Check(float, 0.0, 100.0),
    "propagate.cluster_word_similarity": Check(float, -1.0, 1.0),
    "propagate.prototype_weight": _SHARE,
    "propagate.prototype_temperature": Check(float, 1e-6, 100.0),
    "propagate.idf": _BOOL,
    "propagate.center": _BOOL,
    "propagate.balance": _BOOL,
    "propagate.cv_folds": Check(int, 0, 100),
    "propagate.seed": _SEED,
    "propagate.compounds": _BOOL,
    "propagate.sources": Check(tuple, check=_each_of("weaklabel.labels.sources", "SOURCES")),
    "propagate.combine": Check(str, check=_one_of_or_auto("weaklabel.labels.sources",
                                                          "COMBINERS")),
    "propagate.rounds": Check(int, 0, 20),
    "propagate.self_train_confidence": _SHARE,
    "propagate.self_train_share": _SHARE,
    "propagate.classifier_model": Check(str, choices=("nb_em", "logistic")),
    "propagate.classifier_c": Check(float, 1e-6, 1e6),
    "propagate.classifier_token_weight": Check(float, 0.0, 10.0),
    "propagate.classifier_expand": Check(int, 0, 1000),
    "propagate.classifier_max_posts": Check(int, 100, 100_000_000),
    # At least one seed is learnt from and at least one held out: 0 < holdout < 1.
    "propagate.holdout": Check(float, 0.01, 0.9),
    "propagate.calibration_max_posts": Check(int, 1_000, 100_000_000),
    # 0: off (min_confidence, else each label's expected-F1 threshold); else the precision
    # to aim for.
    "propagate.target_precision": _SHARE,
    "propagate.reviewed_weight": Check(float, 1.0, 1_000.0),
    "propagate.reviews_choose": _BOOL,
    "propagate.reviews_spread": Check(str, choices=("none", "tokens")),
    "propagate.reviewed_against": Check(float, 0.0, 1_000.0),
    # above 0.5 one correction alone (posterior 2/4) would indict a word: the prior's promise
    "propagate.reviewed_keywords": Check(float, 0.0, 0.5),
    "propagate.reviewed_confirm_weight": Check(float, 0.1, 1_000.0),
    "propagate.correction_spread": Check(str, choices=("none", "vote", "seed")),
    "propagate.correction_spread_k": Check(int, 0, 1_000),
    "propagate.correction_spread_similarity": Check(float, -1.0, 1.0),
    # a weak seed weighs less than a keyword seed; a vote cut is a share of the vote
    "propagate.correction_spread_weight": Check(float, 0.0, 1.0),
    "review.queue": Check(str, check=_queue_order),
    "images.root": _PATH,
    "images.workers": _WORKERS,
    "images.hash_method": Check(str, choices=("ahash", "dhash", "phash", "whash")),
    "images.hash_size": Check(int, 2, 8),
    "images.near_threshold": Check(int, 0, 63),
    # A limit under 100x100 pixels would call every photo a bomb and quarantine it.
    "images.max_pixels": Check(int, 10_000, 2**40),
    "images.formats": Check(tuple, check=_pillow_formats),
    "sample.per_label": Check(int, 0, 1_000_000_000),
    "sample.quotas": Check(dict, check=_check_quotas),
    "sample.comment_weight": Check(float, 0.0, 1_000_000.0),
    "sample.min_confidence": _SHARE,
    "sample.per_post": Check(int, 0, 1_000_000),
    "sample.balance": _BOOL,
    "sample.include_background": _BOOL,
    "export.formats": Check(tuple, check=_check_formats),
    "export.split": Check(tuple, check=_check_split),
    "export.seed": _SEED,
    "export.link": Check(str, check=_check_link),
    "export.source_prefix": Check(str, check=_check_prefix, none=True),
    "export.job_name": Check(str, check=_check_job),
    "export.creation_date": Check(str, check=_check_date, none=True),
    "export.manifest_url": Check(str, check=_check_object_url, none=True),
    "storage.endpoint_url": Check(str, check=_check_url, none=True),
    "storage.since": Check(str, check=_check_since, none=True),
    "storage.fetch_workers": Check(int, 1, 256),
    "storage.read": Check(str, choices=("mirror", "in_place")),
    "storage.cache_dir": Check(str, none=True),
    "storage.cache_bytes": Check(int, 0, 1 << 50),
    "engine.name": Check(str, choices=("local", "dask")),
    "engine.scheduler": Check(str, check=_check_scheduler),
    "engine.workers": _WORKERS,
    "report.output": _PATH,
    "report.thumb_size": Check(int, 32, 512),
    "eval.labels": _PATH,
    "eval.baseline": _PATH,
}
"""Every setting's allowed values, checked once by :func:`validate_config` before any
stage starts. Settings not listed here are checked for their type only."""


def _get(cfg: Any, dotted: str) -> tuple[bool, Any]:
    obj = cfg
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False, None
        obj = getattr(obj, part)
    return True, obj


@functools.lru_cache(maxsize=1)
def _defaults() -> Config:
    return Config()


def _is_default(key: str, value: Any) -> bool:
    """Whether ``value`` is the setting's documented default. A default passes its own
    check (a test runs every check on every default), so its check is not run again: a
    registry check imports its module (export's formats, the tokenizers, the label
    sources), which ``dedup --exact-only`` on defaults must not pay for."""
    present, default = _get(_defaults(), key)
    return present and type(value) is type(default) and value == default


def validate_config(cfg: Config, *, source: str = "config",
                    lines: dict[str, int] | None = None) -> Config:
    """Check every setting of :data:`SETTINGS` (and the ones that depend on each other).

    Raises:
        WeaklabelError: ``FILE:LINE: KEY must be …, got …`` for the first bad setting.
    """
    lines = lines or {}

    def fail(key: str, why: str, value: Any) -> WeaklabelError:
        line = lines.get(key)
        place = f"{source}:{line}" if line else source
        return WeaklabelError(f"{place}: {key} {why}, got {value!r}; fix it in the config")

    for key, rule in SETTINGS.items():
        present, value = _get(cfg, key)
        if not present or (value is None and rule.none):
            continue
        kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
        if rule.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
            raise fail(key, f"must be {rule.allowed()}", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(key, f"must be {rule.allowed()}", value)
        if rule.choices and value not in rule.choices:
            raise fail(key, f"must be {rule.allowed()}", value)
        if isinstance(value, (int, float)) and (
                (rule.lo is not None and value < rule.lo)
                or (rule.hi is not None and value > rule.hi)):
            raise fail(key, f"must be {rule.allowed()}", value)
        if rule.check is not None and not _is_default(key, value):
            try:
                rule.check(value)
            except WeaklabelError as exc:
                raise fail(key, str(exc), value) from None
    bits = cfg.images.hash_size ** 2
    if cfg.images.near_threshold >= bits:
        raise fail("images.near_threshold", f"must be below {bits} for {bits}-bit hashes "
                   f"(images.hash_size {cfg.images.hash_size})", cfg.images.near_threshold)
    if cfg.images.hash_method == "whash" and cfg.images.hash_size & (cfg.images.hash_size - 1):
        raise fail("images.hash_size", "must be 2, 4 or 8 for whash",
                   cfg.images.hash_size)
    cols = cfg.posts.columns
    if cols.post_id == cols.caption:  # the caption would be read as every post's id
        key = ("posts.columns.post_id" if cols.post_id != ColumnsConfig().post_id
               else "posts.columns.caption")
        raise fail(key, "must name another column than "
                   + ("posts.columns.caption" if key.endswith("post_id")
                      else "posts.columns.post_id")
                   + " (map both: --col post_id=ID --col caption=TEXT)", cols.post_id)
    return cfg


def image_root_of(cfg: Config) -> Path | None:
    """The image root: ``images.root``, else ``posts.image_root``, else None."""
    root = cfg.images.root or cfg.posts.image_root
    return Path(root) if root else None


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


def resolve(path: Path | None, overrides: dict[str, Any]) -> Config:
    """Load the config file, apply CLI overrides and validate the result, once.

    Raises:
        WeaklabelError: a bad setting in the file.
        UsageError: a bad command-line option (exit code 2).
    """
    cfg = with_overrides(load_config(path), overrides)
    try:
        return validate_config(cfg, source="command-line option")
    except WeaklabelError as exc:  # the file passed on its own: a flag is wrong
        from weaklabel.errors import UsageError

        raise UsageError(str(exc).replace("; fix it in the config", "")) from None


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
