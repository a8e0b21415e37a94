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

from weaklabel.config import Config
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Facts(Summary):
    """The summary of a stage not yet on the contract (it returns a dict or a dataclass):
    its scalar values in order. Goes away when every ``run_*`` returns a StageReport."""

    values: tuple[tuple[str, int | float | str | bool | None], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.values[:8])

    def __getitem__(self, key: str) -> Any:  # for callers that still read by key
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def as_report(stage: str, out: Any, seconds: float) -> StageReport[Any]:
    """``out`` as a :class:`StageReport`: as it is when it already is one, else wrapped
    (the adapter for stages whose owners have not converted them yet)."""
    if isinstance(out, StageReport):
        return out
    import dataclasses

    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        raw = {k: v for k, v in dataclasses.asdict(out).items()
               if isinstance(v, (int, float, str, bool, type(None), dict))}
    else:
        raw = dict(out) if isinstance(out, Mapping) else {"result": str(out)}
    values = tuple((k, v) for k, v in raw.items()
                   if isinstance(v, (int, float, str)) and k != "up_to_date")
    return StageReport(stage, (), {}, Facts(values, raw),
                       up_to_date=bool(raw.get("up_to_date")), elapsed=seconds)


@dataclass
class BuildResult:
    """Every stage run, and why the build stopped early (if it did)."""

    stages: list[StageReport[Any]] = field(default_factory=list)
    stopped: str | None = None

    def report(self, stage: str) -> StageReport[Any] | None:
        """The report of ``stage`` in this build, if it ran."""
        return next((r for r in self.stages if r.stage == stage), None)


def image_root(cfg: Config) -> Path | None:
    """The image root from ``images.root`` or ``posts.image_root``."""
    root = cfg.images.root or cfg.posts.image_root
    return Path(root) if root else None


def run_build(
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
    fetch = None if fetched is None else as_report("fetch", fetched, time.perf_counter() - t0)
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

    root = image_root(cfg)
    if root is not None and not root.is_dir():
        raise WeaklabelError(f"image root {root} is not a folder; fix images.root")
    ws = Workspace(Path(cfg.workspace)).ensure()
    result = BuildResult()

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        r = as_report(name, out, time.perf_counter() - t0)
        result.stages.append(r)
        if on_stage:
            on_stage(r)
        return out

    step("tokenize", lambda: run_tokenize(ws, cfg, force=force, progress=progress))
    step("embed", lambda: run_embed(ws, cfg, force=force, progress=progress))
    step("cluster", lambda: run_cluster(ws, cfg, force=force, progress=progress))
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
        from weaklabel.review.reviewed import write_reviewed

        step("reviewed", lambda: write_reviewed(ws.root))
    step("propagate", lambda: run_propagate(ws, cfg, force=force, progress=progress))
    if root is not None:
        from weaklabel.images.dedup import run_dedup
        from weaklabel.images.purge import run_purge

        # The stages read images.root; posts.image_root is the fallback this sets.
        icfg = dataclasses.replace(cfg, images=dataclasses.replace(cfg.images, root=str(root)))
        step("purge", lambda: run_purge(ws, icfg, force=force, progress=progress))
        step("dedup", lambda: run_dedup(ws, icfg, force=force, progress=progress))
    _dataset_stages(cfg, ws, root, step, force=force, progress=progress)
    if cfg.gold:
        from weaklabel.labels.evaluate import run_eval

        step("eval", lambda: run_eval(ws.path("post_labels.parquet"), Path(cfg.gold or ""),
                                      labelmap=Path(cfg.labelmap or "")))
    return result


def _dataset_stages(cfg: Config, ws: Workspace, root: Path | None, step: Callable[..., Any],
                    *, force: bool, progress: bool) -> None:
    from weaklabel.dataset import export, report, sample

    step("sample", lambda: sample.run_sample(ws, cfg, force=force))
    if root is not None:  # an s3:// root read in place: the sampled images as files
        from weaklabel.storage_inplace import materialize_sample

        materialize_sample(ws.root, root)
    if cfg.output and root is not None:
        out = Path(cfg.output)
        step("export", lambda: export.run_export(ws, out, cfg, image_root=root, force=True))
    step("report", lambda: report.run_report(
        ws, cfg, output=ws.path("report.html"), image_root=root,
        gold=Path(cfg.gold) if cfg.gold else None))
