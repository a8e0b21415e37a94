"""The stage contract: every stage is ``run_<stage>(ws, cfg, *, force, progress) ->
StageReport``, and one :meth:`Workspace.stage` context does the scaffolding.

How to write a stage
--------------------

1. Give the stage a frozen summary dataclass, a subclass of :class:`Summary`, holding
   what a person wants to know afterwards (counts, a score), and a one-line
   :meth:`Summary.text`. Values are JSON-able: numbers, text, bools, None, tuples of
   them, mappings of text to them.
2. Write the work as pure functions on in-memory data (no paths), then one
   ``run_<stage>`` that reads, calls them, and writes its outputs atomically inside
   ``Workspace.stage``::

       def run_embed(ws: Workspace, cfg: Config, *, force: bool = False,
                     progress: bool = True) -> StageReport[EmbedSummary]:
           with ws.stage("embed", outputs=("vectors.kv", "vocab.csv"),
                         params=as_dict(cfg.embed),
                         inputs={"tokens.parquet": ws.path("tokens.parquet")},
                         summary=EmbedSummary, force=force) as st:
               if st.todo:                      # False when up to date: body skipped
                   kv = train_word2vec(...)
                   save_vectors(kv, ws.path("vectors.kv"))
                   st.done(EmbedSummary(vocab=len(kv), vector_size=kv.vector_size),
                           rows={"vectors.kv": len(kv), "vocab.csv": len(kv)})
           return st.report

   The context takes the workspace lock, hashes the inputs, decides up-to-date (then
   ``st.report`` is the previous run's report, rebuilt from the metas), times the work
   and, on success, writes every output's ``NAME.meta.json`` with the rows and the
   summary. An exception inside leaves the old outputs' metas removed, so a half-done
   stage is never taken for up to date and a re-run finishes it.
3. Every setting comes from the typed :class:`~weaklabel.config.Config`; defaults live
   only in ``config.py``. Options a command adds (a label map, an output folder) are
   config keys the CLI overrides, so ``build``, a notebook and the command agree.
4. The CLI prints ``format_report(report)``; ``build`` prints
   ``format_report(report, table=True)``. Neither reads a summary by string key.
5. Three ends of the line show the contract's corners. An output outside the workspace
   (``export``'s folder) is a :class:`~pathlib.Path` in ``outputs``: its meta sits
   beside it. A view whose inputs no meta can hash (``report``: image files, a live
   review database) passes ``force=True`` and is redrawn every time. A stage that
   writes nothing (``eval``) has no outputs: it is never up to date and takes no lock.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from weaklabel.config import Config
    from weaklabel.workspace import Workspace

S = TypeVar("S", bound="Summary")
S_co = TypeVar("S_co", bound="Summary", covariant=True)


@dataclass(frozen=True)
class Summary:
    """Base of every stage's summary: a frozen dataclass of typed, JSON-able facts.

    Subclasses add fields and override :meth:`text`. :meth:`to_meta` and
    :meth:`from_meta` carry a summary through the artifact's meta, so an up-to-date
    stage reports what the run that made its outputs found.
    """

    def text(self) -> str:
        """One line for a person; by default ``name value`` for each scalar field."""
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.facts())

    def facts(self) -> list[tuple[str, int | float | str | bool]]:
        """The scalar fields (not None) in declaration order."""
        out: list[tuple[str, int | float | str | bool]] = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float, str, bool)):
                out.append((f.name, v))
        return out

    def to_meta(self) -> dict[str, Any]:
        """JSON-able form for the meta; None fields are left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_meta(cls: type[S], data: Any) -> S | None:
        """Rebuild from :meth:`to_meta`'s output; None when it does not fit this class
        (an older meta), which makes the stage run again."""
        if not isinstance(data, Mapping):
            return None
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            kwargs[f.name] = _revive(data[f.name], hints.get(f.name))
        try:
            return cls(**kwargs)
        except TypeError:  # a required field is missing
            return None


def _revive(value: Any, annotation: Any) -> Any:
    """JSON value → the field's type: lists become tuples, mappings of nested summary
    dataclasses become those dataclasses."""
    if annotation is None:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
        kw = {f.name: value[f.name] for f in fields(annotation) if f.name in value}
        return annotation(**kw)  # type: ignore[operator]
    if origin is tuple and isinstance(value, list):
        inner = args[0] if args else None
        return tuple(_revive(v, inner) for v in value)
    if args and type(None) in args:  # X | None
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _revive(value, inner[0])
    return value


@dataclass(frozen=True)
class StageReport(Generic[S_co]):
    """What one stage did (or found already done).

    Attributes:
        stage: the stage's name (``embed``), also the command's.
        outputs: every artifact the stage wrote, in the stage's order.
        rows: artifact file name → row count (words, posts, images…).
        summary: the stage's typed summary.
        up_to_date: True when nothing was redone (inputs and parameters unchanged).
        elapsed: seconds this call took (the check alone when up to date).
    """

    stage: str
    outputs: tuple[Path, ...]
    rows: Mapping[str, int]
    summary: S_co
    up_to_date: bool = False
    elapsed: float = 0.0


def format_report(report: StageReport[Any], *, table: bool = False) -> str:
    """The one printer of a :class:`StageReport`, used by every command and ``build``.

    Args:
        table: one aligned row for ``build`` (stage, state, seconds, summary); else the
            command's line: what was done, how long it took and where it went.
    """
    text = report.summary.text()
    if table:
        state = "up to date" if report.up_to_date else "done"
        return f"{report.stage:<10} {state:<11} {report.elapsed:6.1f}s  {text}"
    if report.up_to_date:
        return f"{report.stage} up to date: {text}"
    where = ", ".join(str(p) for p in report.outputs)
    return f"{text} in {report.elapsed:.2f}s → {where}" if where else \
        f"{text} in {report.elapsed:.2f}s"


class StageFn(Protocol[S_co]):
    """The shape of every ``run_<stage>`` function."""

    def __call__(self, ws: Workspace, cfg: Config, *, force: bool = ...,
                 progress: bool = ...) -> StageReport[S_co]: ...


@dataclass
class StageRun(Generic[S]):
    """Yielded by :meth:`Workspace.stage`: the body checks :attr:`todo`, does the
    work and calls :meth:`done`; afterwards :attr:`report` holds the result."""

    name: str
    outputs: tuple[Path, ...]
    summary_type: type[S]
    todo: bool
    previous: StageReport[S] | None = None
    summary: S | None = None
    rows: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    _report: StageReport[S] | None = None

    def done(self, summary: S, *, rows: Mapping[str, int] | None = None,
             meta: Mapping[str, Any] | None = None) -> None:
        """Record the work's summary and each output's row count (by file name).

        ``meta``: further keys for every output's meta, before ``summary`` (the keys a
        stage wrote before it was on the contract, so its metas stay as they were)."""
        if not isinstance(summary, self.summary_type):
            raise TypeError(f"stage {self.name} reports a {type(summary).__name__}, "
                            f"not a {self.summary_type.__name__}")
        self.summary = summary
        self.rows = dict(rows or {})
        self.meta = dict(meta or {})

    @property
    def report(self) -> StageReport[S]:
        if self._report is None:
            raise RuntimeError(f"stage {self.name}: the report exists after the with block")
        return self._report
