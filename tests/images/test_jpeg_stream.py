"""purge's JPEG check without decoding: Pillow's verdict on every damaged file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import jpeg_damage as jd
import pytest

from weaklabel.images.checks import Task, examine
from weaklabel.images.jpeg_stream import jpeg_well_formed


def verdict(data: bytes, tmp_path: Path) -> str:
    p = tmp_path / "x.jpg"
    p.write_bytes(data)
    return str(examine(Task(str(p), "x.jpg", len(data), True, None, 89_478_485))["status"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on damaged EXIF blocks
def test_purge_gives_pillows_verdict_on_a_damaged_corpus(tmp_path: Path) -> None:
    """Cut, flipped, re-marked JPEGs (baseline, progressive, restart markers, grey,
    CMYK): wherever the marker walk is sure, Pillow loads the file, and purge's status
    is ok exactly when Pillow's ``Image.open().load()`` succeeds."""
    sure = Counter[bool]()
    loads = Counter[bool]()
    checked = 0
    for name, data in jd.corpus(scale=6):
        pillow = jd.pillow_loads(data)
        fast = jpeg_well_formed(data)
        assert pillow or not fast, name  # never sure of a file Pillow rejects
        assert (verdict(data, tmp_path) == "ok") == pillow, name
        sure[fast] += 1
        loads[pillow] += 1
        checked += 1
    assert checked > 2000
    assert loads[False] > checked // 3 and loads[True] > checked // 4  # both verdicts tested
    assert sure[True] > loads[True] // 3  # many loadable files are judged without decoding


@pytest.mark.parametrize("base", sorted(jd.BASES))
def test_every_valid_kind_is_judged_without_decoding(base: str) -> None:
    for size in ((77, 53), (16, 8), (8, 8), (1, 1)):
        data = jd.base_file(base, size)
        assert jd.pillow_loads(data)
        assert jpeg_well_formed(data), (base, size)


def test_damaged_entropy_data_loads_and_is_judged_ok_without_decoding(tmp_path: Path) -> None:
    """libjpeg only warns about bad entropy-coded data: Pillow loads such a file, so it is
    ok; a byte flipped into 0xFF before a non-zero byte is a marker, and then decoded."""
    data = jd.base_file("baseline", (120, 90))
    head = jd.header_end(data)
    flipped = 0
    for at in range(head + 5, len(data) - 4, 7):
        b = bytearray(data)
        b[at] ^= 0x5A
        if 0xFF in b[at - 1:at + 1]:
            continue
        damaged = bytes(b)
        assert jpeg_well_formed(damaged), at
        assert jd.pillow_loads(damaged), at
        flipped += 1
    assert flipped > 50


@pytest.mark.parametrize(("what", "make"), [
    ("trailing bytes", lambda d: d + b"junk"),
    ("no EOI", lambda d: d[:-2]),
    ("cut in the data", lambda d: d[: len(d) * 2 // 3]),
    ("unknown marker in the data", lambda d: d[:-40] + b"\xff\x13" + d[-40:]),
    ("12-bit SOF", lambda d: d.replace(b"\xff\xc0\x00\x11\x08", b"\xff\xc0\x00\x11\x0c", 1)),
    ("arithmetic SOF", lambda d: d.replace(b"\xff\xc0", b"\xff\xc9", 1)),
])
def test_what_the_walk_is_not_sure_of_is_decoded(what: str, make: object,
                                                 tmp_path: Path) -> None:
    data = make(jd.base_file("baseline", (120, 90)))  # type: ignore[operator]
    assert not jpeg_well_formed(data), what
    expect = "ok" if jd.pillow_loads(data) else ("truncated", "decode_error")
    got = verdict(data, tmp_path)
    assert got == expect if expect == "ok" else got in expect, what
