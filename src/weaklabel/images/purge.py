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
- ``skipped``: a symlink (never followed) or a folder that could not be listed.

Only the first five are corrupt and are quarantined by ``--apply``; the others are
reported and left alone, since the file itself may be fine.

JPEGs are decoded at 1/8 scale (``draft``): libjpeg still parses every entropy-coded
byte, so it catches what a full decode catches at a fraction of the pixels (the tests
prove it on truncated and damaged files). Other formats are fully decoded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from weaklabel.config import Config, as_dict, resolve_workers, validate_config
from weaklabel.errors import WeaklabelError
from weaklabel.images.checks import check_formats
from weaklabel.images.contracts import CORRUPT_STATUSES, PURGE, PURGE_STATUSES
from weaklabel.images.inventory import open_inventory
from weaklabel.images.quarantine import ApplyReport, Move, apply_moves, plan_moves
from weaklabel.images.tables import read_rows_csv, write_rows_csv
from weaklabel.images.walk import display_path
from weaklabel.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    """What :func:`run_purge` found and did."""

    counts: dict[str, int]
    corrupt: int
    csv: Path
    applied: ApplyReport | None = None
    scan: dict[str, int] = field(default_factory=dict)


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
    root: Path,
    workspace: Path,
    cfg: Config | None = None,
    *,
    apply: bool = False,
    quiet: bool = True,
) -> PurgeResult:
    """Check every file under ``root``; write ``purge.csv``; quarantine corrupt files if
    ``apply``.

    Args:
        root: the image root (date folders and files).
        workspace: the workspace folder (inventory, CSV, quarantine live here).
        cfg: pipeline config; ``cfg.images`` is used (workers, max_pixels).
        apply: move corrupt files into quarantine (default: report only).
        quiet: no progress bar.

    Raises:
        WeaklabelError: the root is missing or the workspace is locked by another run.
    """
    cfg = validate_config(cfg or Config())  # a bad limit must not quarantine everything
    root = Path(root)
    if not root.is_dir():
        raise WeaklabelError(f"image root {root} is not a folder")
    ws = Workspace(workspace).ensure()
    icfg = cfg.images
    workers = resolve_workers(icfg.workers)
    formats = check_formats(icfg.formats)
    started = time.perf_counter()
    with ws.lock("purge"), open_inventory(ws.root, root=root, max_pixels=icfg.max_pixels,
                                        formats=formats) as inv:
        scan = inv.scan(root, check=True, hash_spec=None, max_pixels=icfg.max_pixels,
                        workers=workers, quiet=quiet, skip=skip_dirs(ws))
        files = inv.frame()
        counts = count_statuses(files)
        target = ws.path("purge.csv")
        write_rows_csv(target, PURGE.names, [
            [display_path(p), s, r or ""]
            for p, s, r in zip(files["path"], files["status"], files["reason"], strict=False)
        ])
        corrupt = find_corrupt(files)
        ws.write_meta("purge.csv", stage="purge",
                      params={"max_pixels": icfg.max_pixels, "formats": list(formats),
                              "apply": apply},
                      inputs={"root": str(root.resolve())}, rows=len(files),
                      elapsed=time.perf_counter() - started,
                      extra={"counts": counts, "scan": scan, "config": as_dict(icfg)})
        result = PurgeResult(counts, len(corrupt), target, scan=scan)
        if apply:
            plan = plan_moves(
                Move(src=p, size=int(s), mtime_ns=int(t), reason=f"{st}: {r}")
                for p, s, t, st, r in zip(corrupt["path"], corrupt["size"],
                                          corrupt["mtime_ns"], corrupt["status"],
                                          corrupt["reason"], strict=False)
            )
            result.applied = apply_moves(root, ws, plan, stage="purge", quiet=quiet)
    return result
