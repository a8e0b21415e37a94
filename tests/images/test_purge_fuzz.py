"""Differential fuzzing: purge's verdict is Pillow's on a seeded corpus of every format
Pillow writes here, each file damaged a dozen ways (tests/images/purge_fuzz.py; the
bench runs thousands more with ``--only purge-fuzz``)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import purge_fuzz as pf
import pytest
from conftest import write

from weaklabel.config import Config, ImagesConfig
from weaklabel.images.purge import image_stage, run_purge


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, str]]]:
    """The corpus as real files in a tree: ``(root, {path: (kind, mutation)})``."""
    root = tmp_path_factory.mktemp("fuzz") / "images"
    made: dict[str, tuple[str, str]] = {}
    for kind, what, name, data in pf.corpus(seed=9, sizes=((61, 47),), instances=2):
        write(root / kind / name, data)
        made[f"{kind}/{name}"] = (kind, what)
    return root, made


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on damaged EXIF and TIFF tags
def test_purge_and_pillow_agree_on_every_fuzzed_file(
        fuzzed: tuple[Path, dict[str, tuple[str, str]]], tmp_path: Path) -> None:
    root, made = fuzzed
    res = run_purge(*image_stage(root, tmp_path / "ws", Config(images=ImagesConfig(workers=1))),
                    progress=False)
    with open(res.outputs[0], newline="", encoding="utf-8") as f:
        got = {r["path"]: (r["status"], r["reason"]) for r in csv.DictReader(f)}
    assert sorted(got) == sorted(made)
    wrong, loads = [], Counter[bool]()
    for path, (status, reason) in sorted(got.items()):
        ok, why = pf.oracle(root / path)
        loads[ok] += 1
        if ok != (status == "ok"):
            wrong.append(f"{path} ({made[path][1]}): purge {status} ({reason}); "
                         f"Pillow {'loads it' if ok else why}")
        if ok:  # sniffing never names a loadable file
            assert status != "not_an_image", path
    assert wrong == []
    # the corpus tests both verdicts, every kind of file, every mutation
    assert len(got) > 400
    assert loads[True] > len(got) // 4 and loads[False] > len(got) // 4
    assert {k for k, _ in made.values()} == set(pf.MAKERS)
    assert {w for _, w in made.values()} == {"valid", *pf.MUTATIONS}


def test_every_valid_file_loads_and_every_mutation_changes_the_bytes(
        fuzzed: tuple[Path, dict[str, tuple[str, str]]]) -> None:
    root, made = fuzzed
    valid = {made[p][0]: (root / p).read_bytes() for p in made if made[p][1] == "valid"}
    assert len(valid) == len(pf.MAKERS)
    for kind in valid:
        assert pf.oracle(root / kind / f"{kind}-61x47-valid")[0], kind
    for path, (kind, what) in made.items():
        if what != "valid":
            assert (root / path).read_bytes() != valid[kind], path


def test_units_are_the_chunks_and_segments_of_the_file() -> None:
    png = pf.MAKERS["png_text_after"](1, (61, 47))
    types = [t for _, _, t in pf.units(png)]
    assert types[0] == b"IHDR" and types[-1] == b"IEND"
    assert types.count(b"IDAT") > 1 and types.index(b"tEXt") > types.index(b"IDAT")
    jpeg = pf.MAKERS["jpeg_restart"](1, (61, 47))
    spans = pf.units(jpeg)
    assert [t for _, _, t in spans][:2] == [b"\xe0", b"\xdb"] and b"\xda" in [
        t for _, _, t in spans]
    assert spans[-1][1] == len(jpeg) - 2  # the scan's data runs to EOI
    webp = pf.MAKERS["webp_anim"](1, (61, 47))
    assert [t for _, _, t in pf.units(webp)][:2] == [b"VP8X", b"ANIM"]


PNG_KINDS = tuple(k for k in pf.MAKERS if k.startswith(("png", "apng")))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tiny_pngs_where_the_zlib_stream_ends_with_the_pixels(tmp_path: Path) -> None:
    """A 7 x 3 PNG's pixels end a few bytes before its zlib stream does, so damage there
    is where an inflater that reads ahead (ISA-L) and Pillow's zlib part ways: the fuzz
    found three such files Pillow loads that purge called corrupt."""
    from weaklabel.images.checks import Task, examine

    wrong, loads = [], Counter[bool]()
    for _, what, name, data in pf.corpus(seed=41, sizes=((7, 3),), instances=10,
                                         kinds=PNG_KINDS):
        p = write(tmp_path / name, data)
        ok, why = pf.oracle(p)
        loads[ok] += 1
        got = examine(Task(str(p), name, len(data), True, None, pf.MAX_PIXELS))
        if ok != (got["status"] == "ok"):
            wrong.append(f"{name} ({what}): purge {got['status']} ({got['reason']}); "
                         f"Pillow {'loads it' if ok else why}")
    assert wrong == []
    assert loads[True] > 300 and loads[False] > 300
