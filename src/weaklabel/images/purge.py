"""``weaklabel purge``: find corrupt files in an image tree, quarantine them on request.

Each file gets one status (see :data:`weaklabel.images.contracts.PURGE_STATUSES`):

- ``ok``: Pillow opens it and decodes it completely, every frame of an animation.
- ``empty``: zero bytes.
- ``not_an_image``: no Pillow plugin opens it, whatever the name says (an HTML error
  page, S3 error XML, a zip, random bytes); the reason says what the bytes look like.
  Content sniffing only names the file: it never overrules Pillow, so TGA, PCX, PPM,
  DDS, QOI or ICNS files (no magic number, or one sniffing does not know) are judged
  by decoding them like any other.
- ``truncated``: the data ends before the image does (a failed upload).
- ``decode_error``: the decoder rejects the data.
- ``decompression_bomb``: the header claims more pixels than ``images.max_pixels``;
  decided from the header, before any pixel is allocated.
- ``unsupported``: a real image in a format this machine has no decoder for, or one
  outside ``images.formats`` when the user restricts them.
- ``unreadable``: permissions, or not a regular file (FIFO, socket, device).
- ``skipped``: a symlink (never followed) or a folder that changed during the walk
  (swapped for a symlink, or reached through one: not followed).

Only the first five are corrupt and are quarantined by ``--apply``; the others are
reported and left alone, since the file itself may be fine.

A JPEG is not decoded when its markers leave no doubt (libjpeg only warns about damaged
entropy-coded data, so Pillow loads such a file; what it rejects is a damaged frame
around the data: :mod:`weaklabel.images.jpeg_stream`); any other JPEG is decoded at 1/8
scale (``draft``), where libjpeg still parses every entropy-coded byte. A PNG is checked
by its chunk stream, inflated as far as Pillow's decoder reads, then its chunks up to
IEND walked as Pillow's ``load()`` walks them; image data that does not inflate, or a
chunk after the pixels that Pillow parses (text, EXIF, colour), sends it to the full
decode instead: a fast path only ever says what it is sure of. Other formats are fully
decoded. The tests and ``bench/bench_images.py --only purge-fuzz`` hold all of it
against ``Image.open()``, ``load()`` and ``seek`` of every frame on every format
Pillow writes here, damaged by seeded mutations.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from weaklabel.config import Config, resolve_workers, validate_config
from weaklabel.errors import WeaklabelError
from weaklabel.images.checks import check_formats
from weaklabel.images.contracts import CORRUPT_STATUSES, PURGE, PURGE_STATUSES
from weaklabel.images.inventory import open_inventory
from weaklabel.images.tables import read_rows_csv, write_rows_csv
from weaklabel.images.walk import display_path
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.images.quarantine import ApplyReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied(Summary):
    """What ``--apply`` did: the quarantine run, the moved paths and the ``(path, why)``
    pairs not moved (``failed``: the system refused, so the run failed)."""

    run_id: str = ""
    moved: tuple[str, ...] = ()
    cancelled: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    recovered: int = 0

    @classmethod
    def of(cls, report: ApplyReport) -> Applied:
        return cls(report.run_id, tuple(report.moved),
                   tuple((p, w) for p, w in report.cancelled),
                   tuple((p, w) for p, w in report.failed), report.recovered)


@dataclass(frozen=True)
class PurgeSummary(Summary):
    """What :func:`run_purge` found and did."""

    files: int = 0
    corrupt: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    scan: Mapping[str, int] = field(default_factory=dict)
    applied: Applied | None = None

    def text(self) -> str:
        out = f"purge: {self.files} files checked, {self.corrupt} corrupt"
        if self.applied is not None:
            out += f", {len(self.applied.moved)} quarantined"
        return out


def image_stage(root: Path | str, workspace: Path | str,
                cfg: Config | None = None) -> tuple[Workspace, Config]:
    """The workspace and config to run ``purge`` or ``dedup`` on ``root`` (the config's
    ``images.root`` set to it), for a notebook or a test.

    Example:
        >>> report = run_purge(*image_stage("images/", "build"))  # doctest: +SKIP
    """
    cfg = cfg or Config()
    cfg = dataclasses.replace(cfg, images=dataclasses.replace(cfg.images, root=str(root)))
    return Workspace(Path(workspace)), cfg


def tree_root(cfg: Config) -> Path:
    """``images.root`` as a folder, or a :class:`WeaklabelError` saying how to set it."""
    if not cfg.images.root:
        raise WeaklabelError("no image root: set images.root in the config "
                             "(or pass ROOT to the command)")
    root = Path(cfg.images.root)
    if not root.is_dir():
        raise WeaklabelError(f"image root {root} is not a folder; fix images.root")
    return root


def find_corrupt(files: pd.DataFrame) -> pd.DataFrame:
    """Rows of an inventory frame whose status is corrupt (to be quarantined).

    Args:
        files: columns ``path``, ``status`` (at least), one row per path.

    Returns:
        The corrupt rows, sorted by path.
    """
    out = files[files["status"].isin(CORRUPT_STATUSES)]
    return out.sort_values("path", kind="mergesort").reset_index(drop=True)


def count_statuses(files: pd.DataFrame) -> dict[str, int]:
    """Count per status, every status listed (zero included), in a fixed order."""
    vc = files["status"].value_counts()
    return {s: int(vc.get(s, 0)) for s in PURGE_STATUSES}


def read_purge(path: Path) -> pd.DataFrame:
    """``purge.csv`` (path, status, reason), checked against its contract."""
    return read_rows_csv(path, PURGE, dtype=str, stage="purge")


def skip_dirs(ws: Workspace) -> list[Path]:
    """Folders the walk must not enter: the workspace (and so its quarantine)."""
    return [ws.root]


def run_purge(
    ws: Workspace,
    cfg: Config,
    *,
    force: bool = False,
    progress: bool = True,
    apply: bool = False,
) -> StageReport[PurgeSummary]:
    """Check every file under ``cfg.images.root``; write ``purge.csv``; quarantine
    corrupt files if ``apply``.

    Up to date: never. An image tree has no digest until it is walked, and the walk is
    the stage: the inventory (SQLite, keyed by path, size, mtime and inode) already
    makes a re-run check only new or changed files, so the stage always runs, under
    :meth:`Workspace.stage` for the lock, the timing and the meta. ``force`` is accepted
    for the contract and changes nothing.

    Args:
        ws: the workspace (inventory, CSV, quarantine live here).
        cfg: pipeline config; ``cfg.images`` is used (root, workers, max_pixels, formats).
        progress: a progress bar on stderr.
        apply: move corrupt files into quarantine (default: report only).

    Raises:
        WeaklabelError: no or a missing image root, a bad setting, a locked workspace.
    """
    cfg = validate_config(cfg)  # a bad limit must not quarantine everything
    root = tree_root(cfg)
    ws.ensure()
    icfg = cfg.images
    formats = check_formats(icfg.formats)
    params = {"max_pixels": icfg.max_pixels, "formats": list(formats), "apply": apply}
    with ws.stage("purge", outputs=("purge.csv",), params=params,
                  inputs={"root": str(root.resolve())}, summary=PurgeSummary,
                  force=True) as st, \
            open_inventory(ws.root, root=root, max_pixels=icfg.max_pixels,
                           formats=formats) as inv:
        scan = inv.scan(root, check=True, hash_spec=None, max_pixels=icfg.max_pixels,
                        workers=resolve_workers(icfg.workers), quiet=not progress,
                        skip=skip_dirs(ws))
        files = inv.frame()
        counts = count_statuses(files)
        write_rows_csv(ws.path("purge.csv"), PURGE.names, [
            [display_path(p), s, r or ""]
            for p, s, r in zip(files["path"], files["status"], files["reason"], strict=False)
        ])
        corrupt = find_corrupt(files)
        applied = None
        if apply:
            # Only --apply moves files: a report-only run never imports the quarantine.
            from weaklabel.images.quarantine import Move, apply_moves, plan_moves

            plan = plan_moves(
                Move(src=p, size=int(s), mtime_ns=int(t), reason=f"{st_}: {r}")
                for p, s, t, st_, r in zip(corrupt["path"], corrupt["size"],
                                           corrupt["mtime_ns"], corrupt["status"],
                                           corrupt["reason"], strict=False)
            )
            applied = Applied.of(apply_moves(root, ws, plan, stage="purge",
                                             quiet=not progress,
                                             workers=cfg.storage.fetch_workers))
        st.done(PurgeSummary(len(files), len(corrupt), counts, scan, applied),
                rows={"purge.csv": len(files)})
    return st.report
