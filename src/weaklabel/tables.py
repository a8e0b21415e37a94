"""The one aligned text table of the commands' output (the sample funnel, the export
counts): the first column left-aligned, the others right-aligned, widths measured in
terminal cells so Hangul lines up."""

from __future__ import annotations

from collections.abc import Sequence


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
