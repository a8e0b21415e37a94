"""Reading and writing the image stages' CSV artifacts (``purge.csv``,
``duplicates.csv``, ``dedup_excluded.csv``): one writer, one checked reader."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import Schema, check_frame
from weaklabel.errors import WeaklabelError
from weaklabel.workspace import atomic_path

if TYPE_CHECKING:
    import pandas as pd


def write_rows_csv(target: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write a CSV artifact atomically (UTF-8, ``\\n`` line ends, quoted as needed)."""
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def read_rows_csv(path: Path, schema: Schema, *, dtype: Any, stage: str) -> pd.DataFrame:
    """A CSV artifact, checked against ``schema``; ``stage`` is the command that
    writes it (named in the error).

    Raises:
        WeaklabelError: the file cannot be read or breaks its contract.
    """
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=dtype, keep_default_na=False, encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise WeaklabelError(f"{path}: cannot read ({exc}); re-run weaklabel {stage}") from exc
    check_frame(df, schema, path)
    return df
