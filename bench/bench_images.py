"""Benchmark image hygiene against the naive approach, measured in the same run.

    PYTHONPATH=src python bench/bench_images.py --n 3000

Generates N JPEG/PNG images of 640-1280 px (planted exact duplicates, near duplicates
and truncated files) in --dir (reused when it already holds N files), then times:

- purge (cold inventory, warm re-run) vs naive ``Image.open().load()`` per file;
- exact dedup (size funnel, partial hash, SHA-1) vs naive whole-file SHA-1 per file;
- perceptual hashing (draft decode in workers) vs naive ``imagehash.phash`` on a full
  decode in one process;
- near-duplicate search over 1,000,000 synthetic 64-bit hashes.

Naive figures are measured on a sample of at most --naive files (they are slow), as
files/second. "Cold" means a fresh inventory; the OS page cache is warm for every
contender alike. Writes a table on stdout and bench/out/images.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _make(args: tuple[int, str]) -> None:
    import numpy as np
    from PIL import Image

    k, out = args
    rng = np.random.default_rng(k)
    w, h = int(rng.integers(640, 1281)), int(rng.integers(640, 1281))
    small = (rng.random((int(rng.integers(4, 12)), int(rng.integers(4, 12)), 3)) * 255)
    im = Image.fromarray(small.astype("uint8")).resize((w, h), Image.Resampling.BILINEAR)
    noise = rng.integers(0, 20, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255).astype("uint8"))
    day = f"2019{1 + k % 12:02d}{1 + k % 28:02d}"
    d = Path(out) / day
    d.mkdir(parents=True, exist_ok=True)
    kind = k % 50
    if kind == 0:  # truncated upload
        p = d / f"{k}.jpg"
        im.save(p, "JPEG", quality=85)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind in (1, 2) and k >= 5:  # near duplicate of image k-5 (resized / re-encoded)
        prev = _image(k - 5)  # an ordinary image (k % 50 is 46 or 47)
        prev = prev.resize((prev.width * 3 // 4, prev.height * 3 // 4)) if kind == 1 else prev
        prev.save(d / f"{k}.jpg", "JPEG", quality=70)
    elif kind in (3, 4):  # exact duplicate of an earlier file
        src = _path(k - 3, out)
        if src.exists():
            shutil.copyfile(src, d / f"{k}{src.suffix}")
        else:
            im.save(d / f"{k}.jpg", "JPEG", quality=85)
    elif k % 5 == 0:
        im.save(d / f"{k}.png", "PNG", compress_level=1)
    else:
        im.save(d / f"{k}.jpg", "JPEG", quality=85)


def _image(k: int):  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(k)
    w, h = int(rng.integers(640, 1281)), int(rng.integers(640, 1281))
    small = (rng.random((int(rng.integers(4, 12)), int(rng.integers(4, 12)), 3)) * 255)
    im = Image.fromarray(small.astype("uint8")).resize((w, h), Image.Resampling.BILINEAR)
    noise = rng.integers(0, 20, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255)
                           .astype("uint8"))


def _path(k: int, out: str) -> Path:
    day = f"2019{1 + k % 12:02d}{1 + k % 28:02d}"
    ext = ".png" if (k % 5 == 0 and k % 50 > 4) else ".jpg"
    return Path(out) / day / f"{k}{ext}"


def generate(n: int, out: Path) -> list[Path]:
    marker = out / ".bench-n"
    if marker.exists() and marker.read_text() == str(n):
        return sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".bench-n")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.perf_counter()
    with multiprocessing.Pool() as pool:
        # sources before their copies: exact copies refer to k-3
        for lo in range(0, n, 500):
            pool.map(_make, [(k, str(out)) for k in range(lo, min(n, lo + 500))], chunksize=8)
    marker.write_text(str(n))
    print(f"generated {n} files in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".bench-n")


def timed(fn, *a, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    r = fn(*a, **kw)
    return time.perf_counter() - t, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dir", type=Path, default=Path("bench/out/images"))
    ap.add_argument("--naive", type=int, default=800, help="files in the naive samples")
    ap.add_argument("--hashes", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()

    import imagehash
    import numpy as np
    from PIL import Image

    from weaklabel.config import Config, ImagesConfig, resolve_workers
    from weaklabel.images.dedup import find_near_duplicates, run_dedup
    from weaklabel.images.inventory import open_inventory
    from weaklabel.images.purge import run_purge

    files = generate(args.n, args.dir)
    n = len(files)
    workers = resolve_workers(args.workers)
    cfg = Config(images=ImagesConfig(workers=workers))
    sample = random.Random(0).sample(files, min(args.naive, n))
    res: dict[str, float] = {"files": n, "workers": workers}

    # naive baselines (one process)
    def naive_sha1() -> None:
        for p in sample:
            hashlib.sha1(p.read_bytes()).hexdigest()

    def naive_load() -> None:
        for p in sample:
            try:
                with Image.open(p) as im:
                    im.load()
            except Exception:
                pass

    def naive_phash() -> None:
        for p in sample:
            try:
                with Image.open(p) as im:
                    imagehash.phash(im)
            except Exception:
                pass

    for name, fn in (("naive_sha1", naive_sha1), ("naive_load", naive_load),
                     ("naive_phash", naive_phash)):
        t, _ = timed(fn)
        res[f"{name}_fps"] = len(sample) / t

    tmp = Path(tempfile.mkdtemp(prefix="wl-bench-"))
    try:
        t, _ = timed(run_purge, args.dir, tmp / "purge", cfg)
        res["purge_cold_fps"] = n / t
        res["purge_cold_s"] = t
        t, _ = timed(run_purge, args.dir, tmp / "purge", cfg)
        res["purge_warm_s"] = t

        def exact(ws: Path) -> None:
            with open_inventory(ws, root=args.dir, max_pixels=cfg.images.max_pixels) as inv:
                inv.scan(args.dir, check=False, hash_spec=None,
                         max_pixels=cfg.images.max_pixels, workers=workers)
                inv.digest_collisions(args.dir, workers=workers)

        t, _ = timed(exact, tmp / "exact")
        res["exact_cold_fps"] = n / t
        t, _ = timed(exact, tmp / "exact")
        res["exact_warm_s"] = t

        def phash_only(ws: Path) -> None:
            with open_inventory(ws, root=args.dir, max_pixels=cfg.images.max_pixels) as inv:
                inv.scan(args.dir, check=True, hash_spec=("phash", 8),
                         max_pixels=cfg.images.max_pixels, workers=workers)

        t, _ = timed(phash_only, tmp / "phash")
        res["phash_cold_fps"] = n / t

        t, d = timed(run_dedup, args.dir, tmp / "dedup", cfg)
        res["dedup_cold_fps"] = n / t
        res["dedup_cold_s"] = t
        res["dedup_groups"] = d.groups
        res["dedup_exact_rows"] = d.exact
        res["dedup_near_rows"] = d.near
        t, _ = timed(run_dedup, args.dir, tmp / "dedup", cfg)
        res["dedup_warm_s"] = t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, args.hashes, dtype=np.int64).astype(np.uint64) * np.uint64(2) \
        + rng.integers(0, 2, args.hashes).astype(np.uint64)
    plant = rng.integers(0, args.hashes, args.hashes // 100)
    flips = np.uint64(1) << rng.integers(0, 64, len(plant)).astype(np.uint64)
    hashes[rng.integers(0, args.hashes, len(plant))] = hashes[plant] ^ flips
    t, comps = timed(find_near_duplicates, hashes, 6)
    res["near_search_1m_s"] = t
    res["near_search_groups"] = len(comps)

    res["peak_rss_mb_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["peak_rss_mb_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    speed = {
        "exact dedup vs naive sha1": (res["exact_cold_fps"] / res["naive_sha1_fps"], 5),
        "purge vs naive load": (res["purge_cold_fps"] / res["naive_load_fps"], 3),
        "phash vs naive phash": (res["phash_cold_fps"] / res["naive_phash_fps"], 2),
        "purge warm vs cold": (res["purge_cold_s"] / res["purge_warm_s"], 50),
        "dedup warm vs cold": (res["dedup_cold_s"] / res["dedup_warm_s"], 50),
    }
    print(f"{'measure':34} {'value':>12}")
    for k, v in res.items():
        print(f"{k:34} {v:12.1f}" if isinstance(v, float) else f"{k:34} {v:12}")
    print(f"\n{'speed-up':34} {'x':>8} {'target':>8}")
    for k, (x, target) in speed.items():
        print(f"{k:34} {x:8.1f} {target:8}  {'ok' if x >= target else 'MISSED'}")
    print(f"{'1M-hash near search (s)':34} {res['near_search_1m_s']:8.1f} {'<60':>8}  "
          f"{'ok' if res['near_search_1m_s'] < 60 else 'MISSED'}")
    res["speedups"] = {k: round(x, 2) for k, (x, _) in speed.items()}  # type: ignore[assignment]
    out = Path("bench/out/images.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
