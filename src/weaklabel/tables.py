"""The house's tables for people and for files: the one aligned text table of the
commands' output (the sample funnel, the export counts: the first column left-aligned,
the others right-aligned, widths measured in terminal cells so Hangul lines up), and the
one CSV writer and checked reader of the CSV artifacts (``purge.csv``,
``duplicates.csv``, ``dedup_excluded.csv``, ``export.rejects.csv``, ``dataset.csv``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import Schema, check_frame
from weaklabel.errors import WeaklabelError
from weaklabel.workspace import atomic_path

if TYPE_CHECKING:
    import pandas as pd


def display_width(text: str) -> int:
    """Display width in a terminal: Hangul and other wide characters take two cells."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``heads`` and ``rows`` as aligned lines, two spaces between columns.

    Example:
        >>> print(format_table(["label", "n"], [["입술", "3"], ["nails", "12"]]))
        label   n
        입술    3
        nails  12
    """
    width = [max(display_width(h), *(display_width(r[i]) for r in rows))
             for i, h in enumerate(heads)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0] + " " * (width[0] - display_width(cells[0]))
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], width[1:],
                                                               strict=True))])

    return "\n".join(line(r) for r in [heads, *rows])


def write_rows_csv(target: Path, header: Sequence[str],
                   rows: Sequence[Sequence[Any]]) -> None:
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
