"""The tokenize stage: posts table → ``posts``, ``post_images`` and ``tokens`` artifacts.

Streams the table in chunks, tokenises only captions the token cache has not seen
(keyed by caption and tokenizer settings, including the user dictionary's digest), and
spreads the rest over spawned worker processes — a JVM cannot be forked, so each worker
starts its own Okt once. The cache is a SQLite file committed per chunk: a run that is
interrupted resumes where it stopped, and a re-run over an unchanged table reads every
caption's tokens from it.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from weaklabel.config import Config, as_dict, resolve_workers
from weaklabel.contracts import POST_IMAGES, POSTS, TOKENS, check_frame
from weaklabel.text.normalize import NORMALIZER_VERSION
from weaklabel.text.tokenizer import Tokenizer, make_tokenizer, okt_can_load, tokenizer_version
from weaklabel.text.userdict import UserDict, load_userdict
from weaklabel.workspace import Workspace, atomic_path, digest_json, file_digest

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

            self.pool = mp.get_context("spawn").Pool(
                max(1, self.workers), initializer=_init_worker, initargs=self.args
            )
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
    return {"tokenizer": t.tokenizer, "version": tokenizer_version(t.tokenizer),
            "keep_pos": list(t.keep_pos), "stem": t.stem,
            "min_length": t.min_length, "userdict": userdict.digest,
            "normalizer": NORMALIZER_VERSION}


def run_tokenize(
    posts_path: Path, workspace: Workspace, cfg: Config, *, force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Read, validate and tokenise the posts table; write the three text artifacts.

    Returns a summary dict (posts, images, tokenized now, from cache, rejects, vocab).

    Raises:
        WeaklabelError: bad posts table, user dictionary or workspace.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    t0 = time.perf_counter()
    posts_path = Path(posts_path)
    from weaklabel.posts import check_table_file

    check_table_file(posts_path, "posts table")
    if cfg.posts.links:
        check_table_file(Path(cfg.posts.links), "link table")
    userdict = load_userdict(resolve_userdict(cfg.tokenize.userdict))
    settings = tokenizer_settings(cfg, userdict)
    cap = cfg.tokenize.max_caption_chars
    params = {"tokenize": settings, "posts": as_dict(cfg.posts), "max_caption_chars": cap}
    inputs = {"posts": file_digest(posts_path)}
    if cfg.posts.links:
        inputs["links"] = file_digest(Path(cfg.posts.links))
    ws = workspace.ensure()
    with ws.lock("tokenize"):
        if not force and all(
            ws.is_up_to_date(n, params=params, inputs=inputs)
            for n in ("tokens.parquet", "posts.parquet", "post_images.parquet")
        ):
            meta = ws.read_meta("tokens.parquet") or {}
            log.info("tokens are up to date (%s posts); use --force to redo", meta.get("rows"))
            return {"up_to_date": True, **(meta.get("summary") or {})}
        sdigest = digest_json(settings)
        cache = TokenCache(ws.path("cache/tokens.sqlite"))
        workers = resolve_workers(cfg.tokenize.workers)
        runner = _Runner(cfg.tokenize.tokenizer, userdict,
                         {"keep_pos": cfg.tokenize.keep_pos, "stem": cfg.tokenize.stem,
                          "min_length": cfg.tokenize.min_length},
                         workers, cfg.tokenize.chunk_size)
        summary: dict[str, Any] = {"posts": 0, "images": 0, "tokenized": 0, "cached": 0,
                                   "rejects": 0, "empty": 0, "truncated": 0,
                                   "workers": workers}
        empty_captions = 0
        rejects: list[tuple[str, str]] = []
        schemas = {
            "posts.parquet": pa.schema([("post_id", pa.string()), ("caption", pa.string()),
                                        ("likes", pa.int64()), ("comments", pa.int64()),
                                        ("created_at", pa.string())]),
            "post_images.parquet": pa.schema([("post_id", pa.string()), ("image", pa.string())]),
            "tokens.parquet": pa.schema([("post_id", pa.string()),
                                         ("tokens", pa.list_(pa.string())),
                                         ("caption_hash", pa.string())]),
        }
        from weaklabel.posts import iter_posts

        bar = tqdm(desc="tokenize", unit=" posts", disable=None if progress else True,
                   leave=False)  # None: no bar when stderr is not a terminal
        failed = True
        try:
            with ExitStack() as stack:
                tmp = {n: stack.enter_context(atomic_path(ws.path(n))) for n in schemas}
                writers = {n: stack.enter_context(pq.ParquetWriter(tmp[n], schemas[n]))
                           for n in schemas}
                for posts, images in iter_posts(posts_path, cfg.posts):
                    posts, cut = truncate_captions(posts, cap)
                    rejects.extend(cut)
                    summary["truncated"] += len(cut)
                    caps = posts["caption"].tolist()
                    empty_captions += sum(1 for c in caps if not c.strip())
                    keys = caption_keys(caps, sdigest)
                    known = cache.get_many(keys)
                    summary["cached"] += sum(1 for k in keys if k in known)
                    todo = list(dict.fromkeys(k for k in keys if k not in known))
                    by_key = dict(zip(keys, caps, strict=True))
                    results = runner.run([by_key[k] for k in todo])
                    fresh = []
                    errors: dict[str, str] = {}
                    for k, (toks, err) in zip(todo, results, strict=True):
                        if toks is None:
                            errors[k] = err
                        else:
                            known[k] = toks
                            fresh.append((k, toks))
                    cache.put_many(fresh)
                    rejects.extend((pid, errors[k]) for pid, k
                                   in zip(posts["post_id"], keys, strict=True) if k in errors)
                    token_lists = [known.get(k, []) for k in keys]
                    summary["tokenized"] += len(fresh)
                    summary["empty"] += sum(1 for t in token_lists if not t)
                    tokens = posts[["post_id"]].assign(
                        tokens=pd.Series(token_lists, dtype=object, index=posts.index),
                        caption_hash=pd.Series(keys, dtype=object, index=posts.index))
                    for name, frame, schema in (("posts.parquet", posts, POSTS),
                                                ("post_images.parquet", images, POST_IMAGES),
                                                ("tokens.parquet", tokens, TOKENS)):
                        check_frame(frame, schema, ws.path(name))
                        writers[name].write_table(pa.Table.from_pandas(
                            frame[schema.names], schema=schemas[name], preserve_index=False))
                    summary["posts"] += len(posts)
                    summary["images"] += len(images)
                    bar.update(len(posts))
                for w in writers.values():
                    w.close()
            failed = False
        finally:
            bar.close()
            runner.close(failed=failed)
            cache.close()
        summary["rejects"] = len(rejects)
        if summary["posts"] and empty_captions == summary["posts"]:
            col = cfg.posts.columns.caption
            log.warning("every caption in %s is empty: is %r the caption column? map yours "
                        "with --col caption=NAME", posts_path, col)
            summary["warning"] = f"every caption is empty (column {col!r})"
        _write_rejects(ws.path("tokenize.rejects.csv"), rejects)
        elapsed = time.perf_counter() - t0
        for name in schemas:
            ws.write_meta(name, stage="tokenize", params=params, inputs=inputs,
                          rows=summary["posts"] if name != "post_images.parquet"
                          else summary["images"], elapsed=elapsed,
                          extra={"summary": summary})
    summary["elapsed_s"] = round(elapsed, 2)
    return summary


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
