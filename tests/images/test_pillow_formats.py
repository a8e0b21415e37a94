"""purge judges a file by what Pillow decodes: a corpus of valid and broken files of every
format Pillow reads, made here by Pillow itself and damaged in code."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import photo, write
from PIL import Image, ImageFile, features

from weaklabel.config import Config, ImagesConfig
from weaklabel.errors import WeaklabelError
from weaklabel.images.checks import check_formats
from weaklabel.images.purge import image_stage, run_purge


def saved(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def frames(n: int, size: tuple[int, int] = (48, 40)) -> list[Image.Image]:
    return [photo(30 + k, size) for k in range(n)]


def cur_from_ico(data: bytes) -> bytes:
    """A Windows cursor: an icon file with resource type 2 and a hot spot."""
    return data[:2] + struct.pack("<H", 2) + data[4:]


def xpm() -> bytes:
    return (b'/* XPM */\nstatic char *x[] = {\n"4 3 2 1",\n"  c #000000",\n". c #FFFFFF",\n'
            b'" .. ",\n". . ",\n" .. "\n};\n')


def valid_files() -> dict[str, bytes]:
    """One small valid file per format (or flavour) Pillow can write or we can build."""
    rgb = photo(3, (64, 48))
    grey = rgb.convert("L")
    out: dict[str, bytes] = {
        "bmp": saved(rgb, "BMP"),
        "dib": saved(rgb, "DIB"),
        "gif": saved(rgb.convert("P"), "GIF"),
        "gif_anim": saved(frames(3)[0], "GIF", save_all=True, append_images=frames(3)[1:]),
        "icns": saved(photo(4, (64, 64)).convert("RGBA"), "ICNS"),
        "ico": saved(rgb, "ICO", sizes=[(32, 32)]),
        "jpeg": saved(rgb, "JPEG", quality=85),
        "jpeg_progressive": saved(rgb, "JPEG", progressive=True),
        "mpo": saved(frames(2)[0], "MPO", save_all=True, append_images=frames(2)[1:]),
        "pcx": saved(rgb, "PCX"),
        "png": saved(rgb, "PNG"),
        "apng": saved(frames(3)[0], "PNG", save_all=True, append_images=frames(3)[1:]),
        "ppm": saved(rgb, "PPM"),
        "pgm": saved(grey, "PPM"),
        "pbm": saved(grey.convert("1"), "PPM"),
        "pfm": saved(grey.convert("F"), "PPM"),
        "sgi": saved(rgb, "SGI"),
        "spider": saved(grey.convert("F"), "SPIDER"),
        "tga": saved(rgb, "TGA"),
        "tga_rle": saved(rgb, "TGA", compression="tga_rle"),
        "tiff": saved(rgb, "TIFF"),
        "tiff_lzw": saved(rgb, "TIFF", compression="tiff_lzw"),
        "tiff_pages": saved(frames(2)[0], "TIFF", save_all=True, append_images=frames(2)[1:]),
        "xbm": saved(grey.convert("1"), "XBM"),
        "msp": saved(grey.convert("1"), "MSP"),
        "blp": saved(rgb.convert("P"), "BLP"),
        "dds": saved(rgb.convert("RGBA"), "DDS"),
        "qoi": saved(rgb, "QOI"),
        "xpm": xpm(),
    }
    out["cur"] = cur_from_ico(saved(rgb, "ICO", sizes=[(32, 32)], bitmap_format="bmp"))
    if features.check("webp"):
        out["webp"] = saved(rgb, "WEBP", quality=80)
        out["webp_lossless"] = saved(rgb, "WEBP", lossless=True)
        out["webp_anim"] = saved(frames(3)[0], "WEBP", save_all=True,
                                 append_images=frames(3)[1:])
    if features.check("jpg_2000"):
        out["jp2"] = saved(rgb, "JPEG2000")
    if features.check("avif"):
        out["avif"] = saved(rgb, "AVIF")
    return out


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in chunks)


def apng_without(kind: bytes, nth: int) -> bytes:
    """The 3-frame APNG with its ``nth`` chunk of type ``kind`` left out."""
    chunks = _png_chunks(valid_files()["apng"])
    seen = -1
    keep = []
    for t, d in chunks:
        if t == kind:
            seen += 1
            if seen == nth:
                continue
        keep.append((t, d))
    return _png(keep)


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "cut_half": lambda b: b[: len(b) // 2],
    "cut_tail": lambda b: b[: max(1, len(b) - 7)],
    "cut_last_bytes": lambda b: b[: max(1, len(b) - 2)],
    "header_only": lambda b: b[:24],
    "flipped": lambda b: b[: len(b) * 3 // 5] + bytes([b[len(b) * 3 // 5] ^ 0xFF])
    + b[len(b) * 3 // 5 + 1:],
}


def pillow_loads(path: Path) -> bool:
    """The reference: Pillow opens the file and loads every frame, truncation an error."""
    saved_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                for k in range(1, getattr(im, "n_frames", 1)):
                    im.seek(k)
                    im.load()
        return True
    except Exception:
        return False
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved_flag


def statuses(root: Path, tmp_path: Path, **images: object) -> dict[str, tuple[str, str]]:
    import csv

    cfg = Config(images=ImagesConfig(workers=1, **images))  # type: ignore[arg-type]
    res = run_purge(*image_stage(root, tmp_path / "ws", cfg))
    with open(res.outputs[0], newline="", encoding="utf-8") as f:
        return {r["path"]: (r["status"], r["reason"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "images"
    for name, data in valid_files().items():
        write(root / "valid" / f"{name}.bin", data)
        for how, damage in DAMAGE.items():
            write(root / how / f"{name}.bin", damage(data))
    write(root / "apng" / "no_second_fctl.png", apng_without(b"fcTL", 1))
    write(root / "apng" / "no_last_fdat.png", apng_without(b"fdAT", 1))
    write(root / "apng" / "no_actl.png", apng_without(b"acTL", 0))  # a plain PNG then
    return root


def test_every_valid_file_of_every_format_is_ok(corpus: Path, tmp_path: Path) -> None:
    got = statuses(corpus, tmp_path)
    valid = {p: v for p, v in got.items() if p.startswith("valid/")}
    assert len(valid) >= 30
    for path, (status, reason) in sorted(valid.items()):
        assert pillow_loads(corpus / path), f"the corpus itself is wrong: {path}"
        assert status == "ok", f"{path}: {status} ({reason})"


def test_purge_agrees_with_pillow_on_every_damaged_file(corpus: Path, tmp_path: Path) -> None:
    got = statuses(corpus, tmp_path)
    rejected = 0
    for path, (status, reason) in sorted(got.items()):
        loads = pillow_loads(corpus / path)
        assert (status == "ok") == loads, f"{path}: {status} ({reason}); Pillow loads: {loads}"
        if loads:
            assert status != "not_an_image"
        else:
            rejected += 1
    # the damage is real: most damaged files are files Pillow rejects
    assert rejected >= 2 * len(valid_files())


def test_apng_frame_errors_are_caught(corpus: Path, tmp_path: Path) -> None:
    got = statuses(corpus, tmp_path)
    assert got["apng/no_second_fctl.png"][0] == "decode_error"
    assert got["apng/no_last_fdat.png"][0] in ("decode_error", "truncated")
    assert got["apng/no_actl.png"][0] == "ok"


def test_restricted_formats_make_the_rest_unsupported(corpus: Path, tmp_path: Path) -> None:
    got = statuses(corpus, tmp_path, formats=("jpeg", "PNG"))
    assert got["valid/jpeg.bin"][0] == "ok" and got["valid/png.bin"][0] == "ok"
    status, reason = got["valid/tga.bin"]
    assert status == "unsupported" and reason.startswith("TGA: not in images.formats")
    assert got["cut_half/jpeg.bin"][0] == "truncated"


def test_an_unknown_format_name_lists_the_valid_ones() -> None:
    with pytest.raises(WeaklabelError, match="Pillow reads no format 'JPG'; use names from: "):
        check_formats(["JPG"])
    assert check_formats(["png", "jpeg"]) == ("JPEG", "PNG")
