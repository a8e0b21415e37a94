"""The one text-table formatter: widths in terminal cells, so Hangul columns line up."""

from __future__ import annotations

from weaklabel.dataset.export import format_counts
from weaklabel.tables import display_width, format_table


def test_display_width_counts_hangul_as_two_cells() -> None:
    assert display_width("입술") == 4
    assert display_width("lips") == 4
    assert display_width("") == 0


def test_format_table_pads_by_display_width() -> None:
    text = format_table(["label", "n"], [["입술", "3"], ["nails", "12"]])
    assert text.splitlines() == ["label   n", "입술    3", "nails  12"]
    assert len({display_width(line) for line in text.splitlines()}) == 1


def test_export_counts_use_the_same_table() -> None:
    lines = format_counts({"train": {"입술": 3, "nails": 1}, "val": {"입술": 1}}).splitlines()
    assert lines[0].split() == ["label", "train", "val", "total"]
    assert lines[-1].split() == ["(total)", "4", "1", "5"]
    assert len({display_width(line) for line in lines}) == 1
