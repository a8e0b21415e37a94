"""``weaklabel build``: every stage in order from one config.

Each stage skips itself when its inputs and parameters are unchanged (the sidecar
meta), so a second build is quick and an interrupted one resumes. The build stops after
``cluster`` when the configured label map does not exist yet: a person must review
the draft first.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weaklabel.config import Config, image_root_of
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageFn, StageReport, Summary
from weaklabel.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchSummary(Summary):
    """What ``build`` fetched from object storage before the stages (``fetch`` is not a
    command: it mirrors ``s3://…`` inputs into the workspace)."""

    listed: int = 0
    fetched: int = 0
    prefixes: int = 0
    bytes: int = 0
    removed: int = 0
    rejected: int = 0
    posts_path: str | None = None
    posts_links: str | None = None

    def text(self) -> str:
        return (f"{self.fetched} of {self.listed} objects fetched ({self.bytes} bytes), "
                f"{self.removed} removed, {self.rejected} rejected")


@dataclass(frozen=True)
class ReviewedSummary(Summary):
    """What the reviewers' decisions became (``reviewed_labels.parquet`` and
    ``reviewed_images.parquet``)."""

    posts: int
    images: int
    decisions: int

    def text(self) -> str:
        return (f"{self.decisions} decisions: {self.posts} reviewed posts, "
                f"{self.images} image verdicts")


def _fetch_report(fetched: Mapping[str, Any], seconds: float) -> StageReport[FetchSummary]:
    """:func:`~weaklabel.storage.stage_inputs`'s summary as the build's first report."""
    known = {f.name for f in dataclasses.fields(FetchSummary)}
    summary = FetchSummary(**{k: v for k, v in fetched.items() if k in known})
    return StageReport("fetch", (), {}, summary, up_to_date=not summary.fetched,
                       elapsed=seconds)


def _reviewed_report(ws: Workspace) -> StageReport[ReviewedSummary]:
    """Materialise the reviewers' decisions (:func:`~weaklabel.review.reviewed.write_reviewed`)
    and report it like a stage."""
    from weaklabel.review.reviewed import write_reviewed

    t0 = time.perf_counter()
    res = write_reviewed(ws.root)
    outputs = tuple(ws.path(n) for n in ("reviewed_labels.parquet", "reviewed_images.parquet"))
    return StageReport("reviewed", outputs,
                       {"reviewed_labels.parquet": res.posts,
                        "reviewed_images.parquet": res.images},
                       ReviewedSummary(res.posts, res.images, res.decisions),
                       up_to_date=res.up_to_date, elapsed=time.perf_counter() - t0)


@dataclass
class BuildResult:
    """Every stage run, and why the build stopped early (if it did)."""

    stages: list[StageReport[Any]] = field(default_factory=list)
    stopped: str | None = None

    def report(self, stage: str) -> StageReport[Any] | None:
        """The report of ``stage`` in this build, if it ran."""
        return next((r for r in self.stages if r.stage == stage), None)


def build_all(
    cfg: Config, *, force: bool = False, progress: bool = True,
    on_stage: Callable[[StageReport[Any]], None] | None = None,
) -> BuildResult:
    """Run tokenize → embed → cluster → propagate → purge → dedup → sample → export
    → report (→ eval with a gold file), skipping what is up to date.

    Raises:
        WeaklabelError: a bad setting (before any stage starts), a stage's bad input, or
            a config without a posts table.
    """
    from weaklabel.config import validate_config

    validate_config(cfg)  # every setting, before any stage starts
    if not cfg.posts.path:
        raise WeaklabelError("the config has no posts.path; set it to your posts table")
    from weaklabel.config import resolve_workers
    from weaklabel.engine import use_engine
    from weaklabel.storage import stage_inputs

    t0 = time.perf_counter()
    cfg, fetched = stage_inputs(cfg, progress=progress)  # s3://… inputs into the workspace
    fetch = None if fetched is None else _fetch_report(fetched, time.perf_counter() - t0)
    if fetch is not None and on_stage:
        on_stage(fetch)
    with use_engine(cfg.engine.name, scheduler=cfg.engine.scheduler,
                    workers=resolve_workers(cfg.engine.workers)):
        result = _run_stages(cfg, force=force, progress=progress, on_stage=on_stage)
    if fetch is not None:
        result.stages.insert(0, fetch)
    return result


def _run_stages(cfg: Config, *, force: bool, progress: bool,
                on_stage: Callable[[StageReport[Any]], None] | None) -> BuildResult:
    from weaklabel.labels.cluster import run_cluster
    from weaklabel.labels.propagate import run_propagate
    from weaklabel.text.embed import run_embed
    from weaklabel.text.tokens import run_tokenize

    root = image_root_of(cfg)
    if root is not None and not root.is_dir():
        raise WeaklabelError(f"image root {root} is not a folder; fix images.root")
    ws = Workspace(Path(cfg.workspace)).ensure()
    result = BuildResult()

    def note(r: StageReport[Any]) -> None:
        result.stages.append(r)
        if on_stage:
            on_stage(r)

    def step(fn: StageFn[Any], c: Config = cfg) -> None:
        note(fn(ws, c, force=force, progress=progress))

    for fn in (run_tokenize, run_embed, run_cluster):
        step(fn)
    if not cfg.labelmap or not Path(cfg.labelmap).is_file():
        target = cfg.labelmap or "labelmap.yaml"
        result.stopped = (
            f"review {ws.path('labelmap.draft.yaml')} (assign clusters to labels, check the "
            f"keywords), save it as {target}"
            + ("" if cfg.labelmap else " and set `labelmap:` in the config")
            + ", then run the build again"
        )
        return result
    from weaklabel.review.store import DECISIONS_DB

    if ws.path(DECISIONS_DB).exists():  # reviewers' decisions become gold for propagate
        note(_reviewed_report(ws))
    step(run_propagate)
    if root is not None:
        from weaklabel.images.dedup import run_dedup
        from weaklabel.images.purge import run_purge

        # The stages read images.root; posts.image_root is the fallback this sets.
        icfg = dataclasses.replace(cfg, images=dataclasses.replace(cfg.images, root=str(root)))
        step(run_purge, icfg)
        step(run_dedup, icfg)
    from weaklabel.dataset.export import run_export
    from weaklabel.dataset.report import run_report
    from weaklabel.dataset.sample import run_sample

    step(run_sample)
    if root is not None:  # an s3:// root read in place: the sampled images as files
        from weaklabel.storage_inplace import materialize_sample

        materialize_sample(ws.root, root)
    if cfg.output and root is not None:
        step(run_export)
    step(run_report)
    if cfg.gold:
        from weaklabel.labels.evaluate import run_eval

        step(run_eval)
    return result
