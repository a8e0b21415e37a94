"""The tokenize stage: posts table → ``posts``, ``post_images`` and ``tokens`` artifacts.

Streams the table in chunks, tokenises only captions the token cache has not seen
(keyed by caption and tokenizer settings, including the user dictionary's digest), and
spreads the rest over spawned worker processes — a JVM cannot be forked, so each worker
starts its own Okt once. The cache is a SQLite file committed per chunk: a run that is
interrupted resumes where it stopped, and a re-run over an unchanged table reads every
caption's tokens from it.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.config import Config, as_dict, resolve_workers
from weaklabel.contracts import POST_IMAGES, POSTS, TOKENS, check_frame
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.text.normalize import NORMALIZER_VERSION
from weaklabel.text.tokenizer import (
    Tokenizer,
    make_tokenizer,
    okt_can_load,
    output_settings,
)
from weaklabel.text.userdict import UserDict, load_userdict
from weaklabel.workspace import Workspace, atomic_path, digest_json

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

TOKEN_SEP = "\x1f"  # unit separator: normalisation strips control characters from words


def tokenize_captions(captions: Sequence[str], *, tokenizer: Tokenizer) -> list[list[str]]:
    """Tokenise captions with ``tokenizer`` (pure apart from the tokenizer's JVM)."""
    return tokenizer.tokenize(captions)


def caption_keys(captions: Iterable[str], settings_digest: str) -> list[str]:
    """Cache key of each caption: SHA-1 of the tokenizer settings and the caption."""
    prefix = settings_digest.encode() + b"\0"
    return [hashlib.sha1(prefix + c.encode("utf-8", "surrogatepass")).hexdigest()[:20]
            for c in captions]


class TokenCache:
    """SQLite map from caption key to its tokens; committed per chunk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, tokens TEXT)")

    def get_many(self, keys: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), 900):  # SQLite's bound-parameter limit
            part = uniq[i : i + 900]
            q = f"SELECT key, tokens FROM tokens WHERE key IN ({','.join('?' * len(part))})"
            for k, t in self.db.execute(q, part):
                out[k] = t.split(TOKEN_SEP) if t else []
        return out

    def put_many(self, items: Iterable[tuple[str, list[str]]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?)",
                ((k, TOKEN_SEP.join(t)) for k, t in items),
            )

    def close(self) -> None:
        self.db.close()


# --- worker processes -------------------------------------------------------------------

_worker_tokenizer: Tokenizer | None = None


def _init_worker(name: str, userdict: UserDict, kwargs: dict[str, Any]) -> None:
    global _worker_tokenizer
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it and terminates the
    # pool; a worker interrupted inside a JVM call would crash the JVM instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_tokenizer = make_tokenizer(name, userdict, **kwargs)
    # The JVM and tokenizer are permanent: keep the collector from rescanning them.
    gc.collect()
    gc.freeze()


def _work(captions: list[str]) -> list[tuple[list[str] | None, str]]:
    assert _worker_tokenizer is not None
    return _tokenize_safe(_worker_tokenizer, captions)


def _dask_work(captions: list[str], args: tuple[str, UserDict, dict[str, Any]]
               ) -> list[tuple[list[str] | None, str]]:
    """One chunk on a Dask worker: its tokenizer is made once per worker process."""
    global _worker_tokenizer, _worker_args
    if _worker_tokenizer is None or _worker_args != args:
        if args[0] == "okt" and not okt_can_load(args[1]):
            raise RuntimeError("this Dask worker's Okt holds another user dictionary; "
                               "restart the workers (Okt words cannot be taken out)")
        _worker_tokenizer = make_tokenizer(args[0], args[1], **args[2])
        _worker_args = args
    return _tokenize_safe(_worker_tokenizer, captions)


_worker_args: tuple[str, UserDict, dict[str, Any]] | None = None


def _tokenize_safe(tok: Tokenizer, captions: list[str]) -> list[tuple[list[str] | None, str]]:
    try:
        return [(t, "") for t in tok.tokenize(captions)]
    except Exception:  # one bad caption must not sink its batch: retry one by one
        out: list[tuple[list[str] | None, str]] = []
        for c in captions:
            try:
                out.append((tok.tokenize([c])[0], ""))
            except Exception as exc:  # noqa: BLE001 - recorded in the rejects file
                out.append((None, f"{type(exc).__name__}: {exc}"[:200]))
        return out


class _Runner:
    """Tokenises batches in-process (1 worker) or in a lazily started spawn pool."""

    def __init__(self, name: str, userdict: UserDict, kwargs: dict[str, Any],
                 workers: int, batch: int) -> None:
        self.args = (name, userdict, kwargs)
        self.workers = workers
        self.batch = batch
        self.pool: Any = None
        self.local: Tokenizer | None = None
        # In this process only if its JVM has no word of another dictionary in it.
        self.local_ok = name != "okt" or okt_can_load(userdict)

    def run(self, captions: list[str]) -> list[tuple[list[str] | None, str]]:
        if not captions:
            return []
        from weaklabel.engine import current

        eng = current()
        if eng is not None:  # the Dask engine: every chunk on the cluster
            parts = [captions[i : i + self.batch] for i in range(0, len(captions), self.batch)]
            done: list[tuple[list[str] | None, str]] = []
            for res in eng.imap(_dask_work, parts, self.args):
                done.extend(res)
            return done
        if self.local_ok and (self.workers <= 1 or len(captions) < 2 * self.batch):
            if self.local is None:
                self.local = make_tokenizer(self.args[0], self.args[1], **self.args[2])
            return _tokenize_safe(self.local, captions)
        if self.pool is None:
            import multiprocessing as mp
            import signal
            import threading

            # Workers start with SIGINT ignored (an ignored signal survives exec), so a
            # Ctrl-C while one is still starting up cannot print its traceback; the
            # parent handles it and terminates the pool. Only the main thread may.
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                self.pool = mp.get_context("spawn").Pool(
                    max(1, self.workers), initializer=_init_worker, initargs=self.args
                )
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
        parts = [captions[i : i + self.batch] for i in range(0, len(captions), self.batch)]
        out: list[tuple[list[str] | None, str]] = []
        for res in self.pool.imap(_work, parts):
            out.extend(res)
        return out

    def close(self, *, failed: bool = False) -> None:
        if self.pool is not None:
            if failed:  # interrupted or an error: do not wait for queued batches
                self.pool.terminate()
            else:
                self.pool.close()
            self.pool.join()


def resolve_userdict(folder: str | None) -> str | None:
    """The configured dictionary folder, or ``./userdict`` when none is configured and it
    exists; without either, tokenize runs with no dictionary and says so."""
    if folder is not None:
        return folder
    if Path("userdict").is_dir():
        return "userdict"
    log.warning("no user dictionary (./userdict not found): brand names and neologisms "
                "may be split; pass --userdict DIR or set tokenize.userdict")
    return None


def tokenizer_settings(cfg: Config, userdict: UserDict) -> dict[str, Any]:
    t = cfg.tokenize
    return {**output_settings(t.tokenizer, t.keep_pos, t.stem, t.min_length, userdict),
            "normalizer": NORMALIZER_VERSION}


@dataclass(frozen=True)
class TokenizeSummary(Summary):
    """What ``tokenize`` read and did: posts and images, captions tokenised now or found
    in the cache, posts without tokens, rejected or cut captions, worker processes."""

    posts: int = 0
    images: int = 0
    tokenized: int = 0
    cached: int = 0
    rejects: int = 0
    empty: int = 0
    truncated: int = 0
    workers: int = 0
    warning: str | None = None

    def text(self) -> str:
        return (f"tokenized {self.posts} posts ({self.tokenized} new, {self.cached} from "
                f"cache, {self.empty} without tokens, {self.rejects} rejected), "
                f"{self.images} images")


TEXT_OUTPUTS = {"posts.parquet": POSTS, "post_images.parquet": POST_IMAGES,
                "tokens.parquet": TOKENS}
"""The tokenize stage's tables and their contracts, in the order they are written."""


@dataclass
class Partition:
    """What one chunk of the posts table gives: its three tables, the cache entries it
    made, its rejects and its counts. :func:`tokenize_partition` makes one; the
    stage merges them in order (:class:`_TableSink`, :func:`merge_counts`)."""

    posts: pd.DataFrame
    images: pd.DataFrame
    tokens: pd.DataFrame
    fresh: list[tuple[str, list[str]]]
    rejects: list[tuple[str, str]]
    counts: TokenizeSummary
    empty_captions: int


Lookup = Callable[[Sequence[str]], dict[str, list[str]]]
Tokenize = Callable[[list[str]], list[tuple[list[str] | None, str]]]


def tokenize_partition(posts: pd.DataFrame, images: pd.DataFrame, *, settings_digest: str,
                       max_chars: int, lookup: Lookup, tokenize: Tokenize) -> Partition:
    """Tokenise one chunk of posts: the captions ``lookup`` does not know go to
    ``tokenize`` (a local tokenizer, a process pool or a Dask cluster), once each.

    Pure apart from the two callables: the same chunk and the same answers give the
    same tables, wherever it runs.
    """
    import pandas as pd

    posts, cut = truncate_captions(posts, max_chars)
    caps = posts["caption"].tolist()
    keys = caption_keys(caps, settings_digest)
    known = lookup(keys)
    cached = sum(1 for k in keys if k in known)
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    by_key = dict(zip(keys, caps, strict=True))
    fresh: list[tuple[str, list[str]]] = []
    errors: dict[str, str] = {}
    for k, (toks, err) in zip(todo, tokenize([by_key[k] for k in todo]), strict=True):
        if toks is None:
            errors[k] = err
        else:
            known[k] = toks
            fresh.append((k, toks))
    rejects = cut + [(pid, errors[k]) for pid, k in zip(posts["post_id"], keys, strict=True)
                     if k in errors]
    token_lists = [known.get(k, []) for k in keys]
    tokens = posts[["post_id"]].assign(
        tokens=pd.Series(token_lists, dtype=object, index=posts.index),
        caption_hash=pd.Series(keys, dtype=object, index=posts.index))
    counts = TokenizeSummary(
        posts=len(posts), images=len(images), tokenized=len(fresh),
        cached=cached,
        empty=sum(1 for t in token_lists if not t), truncated=len(cut))
    return Partition(posts, images, tokens, fresh, rejects, counts,
                     empty_captions=sum(1 for c in caps if not c.strip()))


def merge_counts(a: TokenizeSummary, b: TokenizeSummary) -> TokenizeSummary:
    """The counts of two partitions together (the merge step's arithmetic)."""
    return dataclasses.replace(a, **{f: getattr(a, f) + getattr(b, f) for f in (
        "posts", "images", "tokenized", "cached", "empty", "truncated")})


class _TableSink:
    """The three Parquet files of the stage, written partition by partition, each
    checked against its contract; renamed into place only when all are complete."""

    def __init__(self, ws: Workspace, stack: ExitStack) -> None:
        import pyarrow.parquet as pq

        from weaklabel.contracts import arrow_schema

        self.ws = ws
        self.schemas = {n: arrow_schema(s) for n, s in TEXT_OUTPUTS.items()}
        tmp = {n: stack.enter_context(atomic_path(ws.path(n))) for n in TEXT_OUTPUTS}
        self.writers = {n: stack.enter_context(pq.ParquetWriter(tmp[n], self.schemas[n]))
                        for n in TEXT_OUTPUTS}

    def write(self, part: Partition) -> None:
        import pyarrow as pa

        frames = {"posts.parquet": part.posts, "post_images.parquet": part.images,
                  "tokens.parquet": part.tokens}
        for name, schema in TEXT_OUTPUTS.items():
            frame = frames[name]
            check_frame(frame, schema, self.ws.path(name))
            self.writers[name].write_table(pa.Table.from_pandas(
                frame[schema.names], schema=self.schemas[name], preserve_index=False))

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def run_tokenize(ws: Workspace, cfg: Config, *, force: bool = False,
                 progress: bool = True) -> StageReport[TokenizeSummary]:
    """Read, validate and tokenise the posts table (``posts.path``); write
    ``posts.parquet``, ``post_images.parquet``, ``tokens.parquet`` and the rejects.

    Raises:
        WeaklabelError: no, or a bad, posts table, user dictionary or workspace.
    """
    if not cfg.posts.path:
        raise WeaklabelError("no posts table given; pass POSTS or set posts.path in the "
                             "config")
    posts_path = Path(cfg.posts.path)
    from weaklabel.posts import check_table_file

    check_table_file(posts_path, "posts table")
    inputs: dict[str, Path | str] = {"posts": posts_path}
    if cfg.posts.links:
        check_table_file(Path(cfg.posts.links), "link table")
        inputs["links"] = Path(cfg.posts.links)
    userdict = load_userdict(resolve_userdict(cfg.tokenize.userdict))
    settings = tokenizer_settings(cfg, userdict)
    params = {"tokenize": settings, "posts": as_dict(cfg.posts),
              "max_caption_chars": cfg.tokenize.max_caption_chars}
    with ws.ensure().stage("tokenize", outputs=tuple(TEXT_OUTPUTS), params=params,
                           inputs=inputs, summary=TokenizeSummary, force=force) as st:
        if st.todo:
            summary = _tokenize_table(ws, cfg, posts_path, userdict, settings,
                                      progress=progress)
            st.done(summary, rows={"posts.parquet": summary.posts,
                                   "post_images.parquet": summary.images,
                                   "tokens.parquet": summary.posts})
    return st.report


def _tokenize_table(ws: Workspace, cfg: Config, posts_path: Path, userdict: UserDict,
                    settings: dict[str, Any], *, progress: bool) -> TokenizeSummary:
    """Stream the table through :func:`tokenize_partition` and merge the partitions."""
    from tqdm import tqdm

    from weaklabel.posts import iter_posts

    t = cfg.tokenize
    workers = resolve_workers(t.workers)
    runner = _Runner(t.tokenizer, userdict, {"keep_pos": t.keep_pos, "stem": t.stem,
                                             "min_length": t.min_length},
                     workers, t.chunk_size)
    cache = TokenCache(ws.path("cache/tokens.sqlite"))
    sdigest = digest_json(settings)
    total = TokenizeSummary(workers=workers)
    empty_captions = 0
    rejects: list[tuple[str, str]] = []
    bar = tqdm(desc="tokenize", unit=" posts", disable=None if progress else True,
               leave=False)  # None: no bar when stderr is not a terminal
    failed = True
    try:
        with ExitStack() as stack:
            sink = _TableSink(ws, stack)
            for posts, images in iter_posts(posts_path, cfg.posts):
                part = tokenize_partition(posts, images, settings_digest=sdigest,
                                          max_chars=t.max_caption_chars,
                                          lookup=cache.get_many, tokenize=runner.run)
                cache.put_many(part.fresh)
                sink.write(part)
                total = merge_counts(total, part.counts)
                rejects.extend(part.rejects)
                empty_captions += part.empty_captions
                bar.update(part.counts.posts)
            sink.close()
        failed = False
    finally:
        bar.close()
        runner.close(failed=failed)
        cache.close()
    _write_rejects(ws.path("tokenize.rejects.csv"), rejects)
    total = dataclasses.replace(total, rejects=len(rejects))
    if total.posts and empty_captions == total.posts:
        col = cfg.posts.columns.caption
        log.warning("every caption in %s is empty: is %r the caption column? map yours "
                    "with --col caption=NAME", posts_path, col)
        total = dataclasses.replace(total, warning=f"every caption is empty (column {col!r})")
    return total


def truncate_captions(posts: Any, limit: int) -> tuple[Any, list[tuple[str, str]]]:
    """Cut captions longer than ``limit`` characters; return the posts and one reject
    row ``(post_id, why)`` per cut caption.

    One 50 MB caption would keep Okt busy for many minutes with no output; real captions
    are far shorter than any sane limit, so a cut caption is a broken row, not a post.
    """
    lengths = posts["caption"].str.len()
    long = lengths > limit
    if not long.any():
        return posts, []
    rows = [(str(pid), f"caption truncated from {n:,} to {limit:,} characters "
                       "(tokenize.max_caption_chars)")
            for pid, n in zip(posts.loc[long, "post_id"], lengths[long], strict=True)]
    posts = posts.copy()
    posts.loc[long, "caption"] = posts.loc[long, "caption"].str.slice(0, limit)
    return posts, rows


def _write_rejects(path: Path, rejects: list[tuple[str, str]]) -> None:
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "error"])
        w.writerows(rejects)
