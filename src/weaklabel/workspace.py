"""The workspace: artifact paths, atomic writes, sidecar meta and up-to-date checks.

Every artifact is written to a temporary file beside its target and renamed into place,
so an interrupted stage never leaves a half-written file that a later stage (or Make)
would trust. Beside each artifact ``NAME`` sits ``NAME.meta.json``: tool version,
parameters, content hashes of the inputs, row count and elapsed time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from weaklabel import __version__, wsbase
from weaklabel.contracts import Schema, conform
from weaklabel.errors import MissingArtifactError, WeaklabelError

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.stage import StageReport, StageRun, Summary

S = TypeVar("S", bound="Summary")

log = logging.getLogger(__name__)

# Which command writes each artifact, so a missing one can be named with its cure.
MADE_BY = {
    "posts.parquet": "tokenize",
    "post_images.parquet": "tokenize",
    "tokens.parquet": "tokenize",
    "vectors.kv": "embed",
    "vocab.csv": "embed",
    "word_clusters.parquet": "cluster",
    "clusters.csv": "cluster",
    "labelmap.draft.yaml": "cluster",
    "post_labels.parquet": "propagate",
    "keyword_labels.parquet": "propagate",
    "image_labels.parquet": "propagate",
    "inventory.sqlite": "purge` or `weaklabel dedup",
    "purge.csv": "purge",
    "duplicates.csv": "dedup",
    "dedup_excluded.csv": "dedup",
    "label_conflicts.csv": "sample",
    "sample.parquet": "sample",
    "sample_funnel.csv": "sample",
    "export.rejects.csv": "export",
}


def file_digest(path: Path, *, algorithm: str = "sha1", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's content, read in chunks (never whole into memory)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def digest_json(obj: Any) -> str:
    """Stable SHA-1 of a JSON-serialisable object (keys sorted)."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha1(data).hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    with wsbase.atomic_target(os.fspath(target)) as tmp:
        yield Path(tmp)


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(df: pd.DataFrame, target: Path, schema: Schema) -> pd.DataFrame:
    """Check ``df`` against ``schema``, sort it, and write it atomically as Parquet."""
    out = conform(df, schema, target)
    with atomic_path(target) as tmp:
        out.to_parquet(tmp, index=False)
    return out


def read_parquet(path: Path, schema: Schema, *, made_by: str | None = None) -> pd.DataFrame:
    """Read a Parquet artifact and check it against ``schema``."""
    import pandas as pd

    if not path.exists():
        raise MissingArtifactError(path, made_by or MADE_BY.get(path.name, "the stage before"))
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise WeaklabelError(f"{path}: cannot read Parquet ({exc}); re-run the stage") from exc
    from weaklabel.contracts import check_frame

    for col, kind in schema.columns:  # Parquet gives nullable ints back as float64
        if kind == "Int64" and col in df.columns and df[col].dtype.kind == "f":
            vals = df[col].dropna()
            if (vals == vals.round()).all():
                df[col] = df[col].astype("Int64")
    check_frame(df, schema, path)
    return df


class Workspace:
    """A folder of artifacts with sidecar meta.

    Example:
        >>> ws = Workspace(Path("build"))
        >>> ws.path("tokens.parquet")
        PosixPath('build/tokens.parquet')
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def ensure(self) -> Workspace:
        wsbase.ensure_dir(os.fspath(self.root))
        return self

    def require(self, name: str) -> Path:
        """Path of an artifact that must exist; otherwise say which command makes it."""
        p = self.path(name)
        if not p.exists():
            raise MissingArtifactError(p, MADE_BY.get(name, "the stage before"))
        return p

    def read(self, name: str, schema: Schema) -> pd.DataFrame:
        return read_parquet(self.require(name), schema)

    def write(self, name: str, df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
        return write_parquet(df, self.path(name), schema)

    # --- sidecar meta -----------------------------------------------------------------

    def target(self, name: str | Path) -> Path:
        """An artifact's path: a name is inside the workspace, a :class:`Path` is taken
        as it is (an output folder elsewhere, such as the exported data set)."""
        return name if isinstance(name, Path) else self.path(name)

    def meta_path(self, name: str | Path) -> Path:
        t = self.target(name)
        return t.with_name(f"{t.name}.meta.json")

    def write_meta(
        self,
        name: str | Path,
        *,
        stage: str,
        params: Mapping[str, Any],
        inputs: Mapping[str, str],
        rows: int | None = None,
        elapsed: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write ``NAME.meta.json``: what made the artifact and from what."""
        atomic_write_text(self.meta_path(name), wsbase.meta_text(
            stage=stage, params=params, inputs=inputs, rows=rows, elapsed=elapsed,
            extra=extra))

    def read_meta(self, name: str | Path) -> dict[str, Any] | None:
        p = self.meta_path(name)
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_up_to_date(
        self, name: str | Path, *, params: Mapping[str, Any], inputs: Mapping[str, str]
    ) -> bool:
        """True when ``name`` exists and was made from the same inputs and parameters."""
        meta = self.read_meta(name)
        return (
            meta is not None
            and self.target(name).exists()
            and meta.get("version") == __version__
            and digest_json(meta.get("params")) == digest_json(dict(params))
            and meta.get("inputs") == dict(inputs)
        )

    def remove_stale_tmp(self) -> list[Path]:
        """Remove ``.NAME.PID.tmp`` files of runs that died (kill -9, power loss).

        Only files of processes that no longer exist are touched, so a live writer's
        temporary file is safe even outside the lock.
        """
        return [Path(p) for p in wsbase.remove_stale_tmp(os.fspath(self.root))]

    def check_writable(self) -> None:
        """Fail before any work when no new file can be made in the workspace (a
        read-only or full file system), rather than after the work is done."""
        wsbase.check_writable(os.fspath(self.root))

    def input_digest(self, name: str) -> str:
        """Content hash of an artifact used as an input (recorded in the next meta)."""
        return file_digest(self.require(name))

    @contextlib.contextmanager
    def lock(self, what: str = "workspace") -> Iterator[None]:
        """Refuse a second concurrent run on the same workspace (advisory file lock)."""
        with wsbase.workspace_lock(os.fspath(self.root), what):
            yield

    # --- the stage contract -----------------------------------------------------------

    @contextlib.contextmanager
    def stage(
        self,
        name: str,
        *,
        outputs: Sequence[str | Path],
        params: Mapping[str, Any],
        inputs: Mapping[str, Path | str],
        summary: type[S],
        force: bool = False,
    ) -> Iterator[StageRun[S]]:
        """Run one stage's body under the contract (see :mod:`weaklabel.stage`).

        Takes the workspace lock (when there are outputs), hashes ``inputs`` (a
        :class:`Path` is read and hashed; a ``str`` is a digest the stage computed
        itself), and decides
        up-to-date: every output exists and its meta records the same tool version,
        ``params`` and input digests, and a summary of type ``summary``. Then the
        yielded run has ``todo`` False and its report is the previous run's. Otherwise
        the outputs' old metas are removed first (a stage stopped half-way is never up
        to date), the body runs and calls ``run.done(...)``, and one meta per output is
        written with its rows, the elapsed time and the summary.

        Raises:
            MissingArtifactError: an input file does not exist (names its command).
            RuntimeError: the body finished without calling ``done`` (a bug).
        """
        from weaklabel.stage import StageReport, StageRun

        t0 = time.perf_counter()
        targets = tuple(self.target(o) for o in outputs)
        for key, p in inputs.items():
            if isinstance(p, Path) and not p.exists():
                if p.name in MADE_BY or key in MADE_BY:
                    raise MissingArtifactError(p, MADE_BY.get(p.name, MADE_BY.get(key, "")))
                # a file the user names (the label map, a dictionary), which no stage makes
                raise WeaklabelError(f"{p} does not exist; check the {key!r} setting (the "
                                     "config or its command-line option)")
        # A stage that writes nothing (eval) only reads files written atomically: it
        # takes no lock, so it neither waits for a build nor creates the workspace.
        with self.lock(name) if outputs else contextlib.nullcontext():
            digests = {k: file_digest(v) if isinstance(v, Path) else v
                       for k, v in inputs.items()}
            previous = None if force else self._previous(name, outputs, targets, params,
                                                         digests, summary)
            run = StageRun(name, targets, summary, todo=previous is None, previous=previous)
            if previous is not None:
                log.info("%s is up to date; use --force to redo", name)
                run._report = StageReport(name, targets, previous.rows, previous.summary,
                                          up_to_date=True,
                                          elapsed=time.perf_counter() - t0)
                yield run
                return
            for o in outputs:
                with contextlib.suppress(FileNotFoundError):
                    self.meta_path(o).unlink()
            yield run
            if run.summary is None:
                raise RuntimeError(f"stage {name} finished without calling done()")
            elapsed = time.perf_counter() - t0
            for o, t in zip(outputs, targets, strict=True):
                self.write_meta(o, stage=name, params=params, inputs=digests,
                                rows=run.rows.get(t.name), elapsed=elapsed,
                                extra={**run.meta, "summary": run.summary.to_meta()})
            run._report = StageReport(name, targets, dict(run.rows), run.summary,
                                      up_to_date=False, elapsed=time.perf_counter() - t0)

    def _previous(self, name: str, outputs: Sequence[str | Path], targets: Sequence[Path],
                  params: Mapping[str, Any], inputs: Mapping[str, str],
                  summary: type[S]) -> StageReport[S] | None:
        """The report of the run that made the outputs, if they are up to date."""
        from weaklabel.stage import StageReport

        if not all(self.is_up_to_date(o, params=params, inputs=inputs) for o in outputs):
            return None
        metas = [self.read_meta(o) or {} for o in outputs]
        found = summary.from_meta(metas[0].get("summary")) if metas else None
        if found is None:
            return None
        rows = {t.name: m["rows"] for t, m in zip(targets, metas, strict=True)
                if isinstance(m.get("rows"), int)}
        return StageReport(name, tuple(targets), rows, found, up_to_date=True)
