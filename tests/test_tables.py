"""The house table module: the text-table formatter (widths in terminal cells, so Hangul
columns line up) and the one CSV writer and reader."""

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


def test_one_csv_writer_and_reader_for_every_csv_artifact(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from weaklabel.contracts import Schema
    from weaklabel.errors import WeaklabelError
    from weaklabel.images import tables as image_tables
    from weaklabel.tables import read_rows_csv, write_rows_csv

    target = tmp_path / "t.csv"
    write_rows_csv(target, ["path", "reason"], [["a,b.jpg", "입술"], ["c.jpg", ""]])
    assert target.read_bytes() == 'path,reason\n"a,b.jpg",입술\nc.jpg,\n'.encode()
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left beside
    schema = Schema("t", (("path", "str"), ("reason", "str")))
    df = read_rows_csv(target, schema, dtype=str, stage="purge")
    assert df["reason"].tolist() == ["입술", ""]
    target.write_text("path\nx\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match="lacks column"):
        read_rows_csv(target, schema, dtype=str, stage="purge")
    # the image stages' old import path is the same function, for one release
    assert image_tables.write_rows_csv is write_rows_csv
    assert image_tables.read_rows_csv is read_rows_csv
