"""purge: statuses, and proof that the reduced decode catches what a full decode does."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

import pytest
from conftest import bomb_png, jpeg_bytes, photo, png_bytes, write
from PIL import Image, ImageFile

from weaklabel.images.checks import DECODE_ERRORS, Task, examine
from weaklabel.images.purge import image_stage, run_purge


def status_of(data: bytes, tmp_path: Path, name: str = "x.jpg") -> dict[str, object]:
    p = write(tmp_path / name, data)
    return examine(Task(str(p), name, len(data), True, None, 89_478_485))


def full_decode_fails(data: bytes) -> bool:
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (*DECODE_ERRORS, Image.DecompressionBombError):
        return True
    return False


def test_statuses_of_the_fixture_tree(tree: Path, tmp_path: Path) -> None:
    res = run_purge(*image_stage(tree, tmp_path / "ws"))
    with open(res.outputs[0], newline="", encoding="utf-8") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    expect = {
        "20190303/a.jpg": "ok", "misc/jpeg_named.png": "ok", "misc/noext": "ok",
        "bad/trunc.jpg": "truncated", "bad/trunc.png": "truncated",
        "bad/error.jpg": "not_an_image", "bad/s3.jpg": "not_an_image",
        "bad/archive.jpg": "not_an_image", "bad/random.jpg": "not_an_image",
        "bad/empty.jpg": "empty", "bad/bomb.png": "decompression_bomb",
        "fifo.jpg": "unreadable", "links_loop": "skipped", "escape.jpg": "skipped",
        "odd/new\nline.jpg": "ok", "odd/caf\\xe9.jpg": "ok", "odd/-leading.jpg": "ok",
    }
    for path, status in expect.items():
        assert rows[path]["status"] == status, path
    assert rows["bad/error.jpg"]["reason"] == "html"
    assert rows["bad/s3.jpg"]["reason"] == "xml"
    assert list(rows) == sorted(rows, key=lambda p: p.encode())  # sorted, one row per path
    assert res.summary.counts["truncated"] == 2 and res.summary.corrupt == 9


def test_bomb_is_caught_from_the_header_with_the_config_limit(tmp_path: Path) -> None:
    small_bomb = bomb_png(5000, 5000)  # 25 Mpx: under Pillow's limit, over ours
    p = write(tmp_path / "b.png", small_bomb)
    out = examine(Task(str(p), "b.png", len(small_bomb), True, None, 10_000_000))
    assert out["status"] == "decompression_bomb"
    assert "10000000 pixels" in str(out["reason"])


def test_a_bomb_reason_names_the_claimed_pixels_and_the_configured_limit(
        tmp_path: Path) -> None:
    # past twice the limit Pillow raises, naming its own doubled limit
    data = bomb_png()
    p = write(tmp_path / "b.png", data)
    out = examine(Task(str(p), "b.png", len(data), True, None, 89_478_485))
    assert out["status"] == "decompression_bomb"
    assert out["reason"] == ("header claims 10000000000 pixels > limit 89478485 pixels "
                             "(images.max_pixels)")


def test_an_unidentified_header_reason_names_no_file_object(tmp_path: Path) -> None:
    data = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 200
    p = write(tmp_path / "x.avif", data)
    out = examine(Task(str(p), "x.avif", len(data), True, None, 89_478_485))
    if out["status"] == "unsupported":
        pytest.skip("this Pillow has no AVIF decoder")
    assert out["status"] == "decode_error"
    assert out["reason"] == "AVIF header: cannot identify image file"


@pytest.mark.parametrize("progressive", [False, True])
def test_reduced_jpeg_decode_catches_every_truncation_the_full_decode_catches(
    tmp_path: Path, progressive: bool
) -> None:
    data = jpeg_bytes(photo(3, (480, 360)), quality=85, progressive=progressive)
    cuts = sorted({*range(200, len(data), max(1, len(data) // 60)), len(data) - 1,
                   len(data) - 2, len(data) - 3})
    caught_by_full = 0
    for cut in cuts:
        damaged = data[:cut]
        if full_decode_fails(damaged):
            caught_by_full += 1
            out = status_of(damaged, tmp_path)
            assert out["status"] in ("truncated", "decode_error"), (cut, out)
    assert caught_by_full > len(cuts) // 2


def test_reduced_decode_catches_corrupted_bytes_the_full_decode_catches(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    data = jpeg_bytes(photo(4, (400, 300)), quality=90)
    caught = 0
    for k in range(60):
        b = bytearray(data)
        start = int(rng.integers(600, len(b) - 200))
        b[start:start + int(rng.integers(1, 40))] = rng.integers(0, 256, 1).tobytes() * 8
        if full_decode_fails(bytes(b)):
            caught += 1
            assert status_of(bytes(b), tmp_path)["status"] != "ok", k
        else:
            # and where a full decode passes, the reduced one must not invent a problem
            assert status_of(bytes(b), tmp_path)["status"] in ("ok", "truncated", "decode_error")
    assert caught > 0


def test_truncated_png_at_many_cut_points(tmp_path: Path) -> None:
    data = png_bytes(photo(5, (160, 120)))
    for cut in range(60, len(data) - 1, max(1, len(data) // 40)):
        if full_decode_fails(data[:cut]):
            assert status_of(data[:cut], tmp_path, "x.png")["status"] in (
                "truncated", "decode_error"), cut


def test_checks_ignore_a_callers_load_truncated_images(tmp_path: Path) -> None:
    data = jpeg_bytes(photo(6))
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        assert status_of(data[: len(data) // 2], tmp_path)["status"] == "truncated"
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


@pytest.mark.parametrize("exc", [SyntaxError("bad"), ValueError("x"), TypeError("x"),
                                 IndexError("x"), struct.error("x"), EOFError(),
                                 NotImplementedError("x"), KeyError("x")])
def test_every_pillow_error_class_becomes_a_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    buf = io.BytesIO()  # a BMP: JPEGs and PNGs are mostly checked without load()
    photo(1, (32, 32)).save(buf, "BMP")
    data = buf.getvalue()

    def boom(self: object) -> None:
        raise exc

    monkeypatch.setattr(Image.Image, "load", boom)
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    out = status_of(data, tmp_path, "x.bmp")
    assert out["status"] in ("decode_error", "truncated")


def test_unsupported_format_is_not_corrupt(tmp_path: Path) -> None:
    heif = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    out = status_of(heif, tmp_path, "x.heic")
    assert out["status"] in ("unsupported", "decode_error")
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        assert out["status"] == "unsupported"


def _png_variants(tmp_path: Path) -> list[bytes]:
    import io

    out = []
    for mode, size in (("RGB", (160, 120)), ("RGBA", (64, 48)), ("L", (50, 31)),
                       ("P", (40, 40)), ("1", (33, 17))):
        im = photo(8, size).convert(mode)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def test_png_stream_check_agrees_with_the_full_decode_on_damaged_files(tmp_path: Path) -> None:
    """The PNG fast path (zlib stream, size, filter bytes) must catch every file the
    full decode rejects, and pass every file the full decode accepts (a damaged IDAT
    checksum or zlib trailer included: Pillow loads those)."""
    import numpy as np

    from weaklabel.images.checks import check_png_stream

    rng = np.random.default_rng(11)
    checked = caught = unsure = 0
    for data in _png_variants(tmp_path):
        variants = [data[:cut] for cut in range(40, len(data), max(1, len(data) // 25))]
        for _ in range(25):
            b = bytearray(data)
            at = int(rng.integers(33, len(b) - 12))
            b[at] ^= int(rng.integers(1, 256))
            variants.append(bytes(b))
        variants.append(data)
        for v in variants:
            import io

            verdict = check_png_stream(io.BytesIO(v))
            checked += 1
            unsure += verdict is None  # image data that does not inflate: decoded in full
            if full_decode_fails(v):
                caught += 1
                assert verdict is None or verdict[0] in ("truncated", "decode_error"), (
                    len(v), verdict)
                assert status_of(v, tmp_path, "x.png")["status"] in ("truncated", "decode_error")
            else:  # what Pillow loads is ok: no stricter verdict of our own
                assert verdict in (("ok", ""), None), (len(v), verdict)
                assert status_of(v, tmp_path, "x.png")["status"] == "ok"
    assert caught > checked // 2
    assert unsure < caught // 2  # most damage is still judged without building pixels


def test_interlaced_png_falls_back_to_the_full_decode(tmp_path: Path) -> None:
    import io
    import struct
    import zlib

    from weaklabel.images.checks import check_png_stream

    data = bytearray(png_bytes(photo(9, (64, 64))))
    data[28] = 1  # IHDR's interlace byte: Adam7 (its rows are laid out differently)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    data = bytes(data)
    assert check_png_stream(io.BytesIO(data)) is None
    # ... so the verdict is the full decode's, whatever it is
    full = "decode_error" if full_decode_fails(data) else "ok"
    assert status_of(data, tmp_path, "x.png")["status"] in (
        (full,) if full == "ok" else ("decode_error", "truncated"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize(("after", "verdict"), [
    (_chunk(b"tEXt", b"Comment\x00made by a camera") + _chunk(b"IEND", b""), "ok"),
    (_chunk(b"tEXt", b"Comment\x00made by a camera" * 4)[:-9], "truncated"),
    (_chunk(b"prVt", b"x" * 100)[:-30], "truncated"),  # a private chunk, cut
    (_chunk(b"IDAT", b"x" * 100)[:-30], "truncated"),  # surplus image data, cut
    (_chunk(b"IDAT", b"x" * 100) + _chunk(b"IEND", b""), "ok"),
    (_chunk(b"zTXt", b"Comment\x00\x01" + b"x") + _chunk(b"IEND", b""), "decode_error"),
    (_chunk(b"\x00\x01\x02\x03", b"xx"), "ok"),  # Pillow's walk stops at a bad type
    (_chunk(b"IEND", b"")[:5], "ok"),  # the last bytes cut: no chunk header to read
], ids=["text", "text-cut", "private-cut", "idat-cut", "idat-surplus", "ztxt-bad-method",
        "bad-type", "iend-cut"])
def test_chunks_after_the_pixels_are_read_as_pillow_reads_them(
        after: bytes, verdict: str, tmp_path: Path) -> None:
    """Pillow's load() walks the chunks after the image data up to IEND: one the file
    cuts short, or a text chunk it cannot parse, fails the load (found by the fuzz of
    tests/images/purge_fuzz.py: such PNGs were called ok)."""
    data = png_bytes(photo(12, (61, 47)))
    body = data[:-12]  # without IEND
    assert data[-12:] == _chunk(b"IEND", b"")
    v = body + after
    assert ("ok" if not full_decode_fails(v) else "bad") == ("ok" if verdict == "ok" else "bad")
    assert status_of(v, tmp_path, "x.png")["status"] == verdict


def _fast_verdict(data: bytes) -> tuple[str, str] | None:
    """What the PNG check says without decoding, None where it leaves the file to the
    full decode."""
    from weaklabel.images.checks import check_png_stream

    return check_png_stream(io.BytesIO(data))


@pytest.mark.parametrize(("after", "fast"), [
    (_chunk(b"tEXt", b"Comment\x00made by a camera"), "ok"),
    (_chunk(b"tIME", b"\x07\xea\x0c\x02\x03\x0f\x00"), "ok"),
    (_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x00"), "ok"),
    (_chunk(b"tEXt", b"no separator, \xff latin-1 bytes"), "ok"),
    (_chunk(b"zTXt", b"Comment\x00\x00" + b"x\x9c\x03\x00\x00\x00\x00\x01"), None),
    (_chunk(b"iTXt", b"Comment\x00\x00\x00\x00\x00text"), None),
    (_chunk(b"gAMA", b"\x00\x00"), None),  # Pillow: "Truncated gAMA chunk"
    (_chunk(b"pHYs", b"\x00" * 9), None),
], ids=["tEXt", "tIME", "eXIf", "tEXt-odd", "zTXt", "iTXt", "gAMA-short", "pHYs"])
def test_chunks_pillow_only_stores_after_the_pixels_need_no_decode(
        after: bytes, fast: str | None, tmp_path: Path) -> None:
    """Text, time and EXIF chunks after the image data (as cameras write them) are
    judged by the chunk walk, at a third of a full decode's cost; chunks whose Pillow
    handler inflates or checks what it reads are still decoded in full."""
    data = png_bytes(photo(12, (61, 47)))
    v = data[:-12] + after + data[-12:]
    verdict = _fast_verdict(v)
    assert (verdict[0] if verdict else None) == fast
    assert fast is None or not full_decode_fails(v)  # Pillow loads what is judged ok
    cut = data[:-12] + after[:-6]  # the chunk cut short, no IEND
    assert full_decode_fails(cut)
    verdict = _fast_verdict(cut)
    assert verdict is None if fast is None else verdict[0] == "truncated"
    for d in (v, cut):  # and purge, fast or not, says what Pillow says
        assert (status_of(d, tmp_path, "x.png")["status"] == "ok") == (not full_decode_fails(d))


def test_text_beyond_pillows_memory_bound_is_decoded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow fails a PNG whose text adds up past ``MAX_TEXT_MEMORY`` (64 MiB): a file
    that large with text after its pixels goes to the full decode, which says so."""
    from PIL import PngImagePlugin

    data = png_bytes(photo(12, (61, 47)))
    v = data[:-12] + _chunk(b"tEXt", b"Comment\x00" + b"x" * 100) * 3 + data[-12:]
    assert _fast_verdict(v) == ("ok", "")
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 250)  # smaller than the file
    assert _fast_verdict(v) is None
    assert full_decode_fails(v)
    assert status_of(v, tmp_path, "x.png")["status"] == "decode_error"


@pytest.mark.parametrize("before", [
    _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 9_990)),
    _chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + zlib.compress(b"a" * 9_990)),
], ids=["zTXt", "iTXt"])
def test_text_after_the_pixels_counts_on_top_of_compressed_text_before_them(
        before: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's open counts zTXt and iTXt before the image data at their inflated size,
    so a file far smaller than ``MAX_TEXT_MEMORY`` can reach it there, and one tEXt
    after the pixels then fails load() ("Too much memory used in text chunks"; with
    the real 64 MiB bound a 67 KB file does it)."""
    from PIL import PngImagePlugin

    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 10_000)
    data = png_bytes(photo(12, (8, 6)))
    at = 33  # just past IHDR
    v = data[:at] + before + data[at:-12] + _chunk(b"tEXt", b"Note\x00" + b"x" * 20) \
        + data[-12:]
    assert len(v) < 10_000
    assert full_decode_fails(v)
    assert status_of(v, tmp_path, "x.png")["status"] == "decode_error"
    # without the text after the pixels Pillow loads it, and so does purge's fast path
    ok = data[:at] + before + data[at:]
    assert not full_decode_fails(ok)
    assert status_of(ok, tmp_path, "y.png")["status"] == "ok"
