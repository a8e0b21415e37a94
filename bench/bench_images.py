"""Benchmark image hygiene beside the tools a user would otherwise pick, in one run.

    PYTHONPATH=src python bench/bench_images.py                 # 1,500 posts, ~900 px
    PYTHONPATH=src python bench/bench_images.py --posts 300 --many 0
    PYTHONPATH=src python bench/bench_images.py --exact-tree examples/data/images
    PYTHONPATH=src python bench/bench_images.py --exact-tree TREE --reps 5 --evict
    PYTHONPATH=src python bench/bench_images.py --only near-edits --originals 40

The dump is the bundled example generator's (``examples/generate.py --image-size 900``):
realistic-size JPEG/PNG pictures with planted faults listed in ``image_faults.csv``
(exact copies, near copies: resized / re-encoded / brightened, truncated files, HTML or
XML error pages, empty files). Every contender runs on the same tree and is scored on
those planted faults:

- near copies: weaklabel dedup vs imagededup PHash at the same Hamming threshold; a
  planted near pair is found when both files sit in one group; a *false merge* is a
  reported pair of files that no chain of planted copies links;
- exact copies: weaklabel (``dedup --exact-only``'s funnel: sizes, partial hashes,
  SHA-1 where needed) vs jdupes, rmlint and a whole-file SHA-1 loop;
- corrupt files: weaklabel purge vs the ``Image.open().load()`` loop (``--only
  purge-fuzz``: purge's verdict against Pillow's on every format it writes here, each
  file damaged by seeded mutations, disagreements both ways; ``--only pillow-tests
  --pillow-tests DIR``: the same on Pillow's own ``Tests/images``);
- near copies by edit (``--only near-edits`` for this table alone): ``--originals``
  generated scenes, each with 18 planted edits (JPEG q 50/75/95, WebP, PNG, resized to
  0.5 and 0.25, a 160 px thumbnail, 2/5/10 % crops, EXIF orientation with rotated
  pixels, grey, brighter/darker, more/less contrast, a watermark) and hard negatives
  (another scene of the same topic, the same layout in another topic's colours,
  uniform black/white/grey images): recall per edit for weaklabel and imagededup
  PHash at the same threshold, files wrongly merged, time.

``--many N`` adds a tree of N small files (2 % byte copies) for the warm re-run of the
exact funnel against jdupes. Peers are optional (``pip install -e '.[bench]'`` for
imagededup; ``apt-get install jdupes rmlint``); a missing one is reported as such.
"Cold" means a fresh inventory; the OS page cache is warm for every contender alike,
unless ``--evict`` adds rows with the tree's pages evicted before each run.
Writes a table on stdout and bench/out/images.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CORRUPT_FAULTS = ("truncated", "not_an_image", "empty")


LAST_CPU = [0.0]
"""CPU seconds (this process and its waited-for children) of the last timed call: the
machine is shared, so wall time alone is noisy."""


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[..., Any], *a: Any, **kw: Any) -> tuple[float, Any]:
    c, t = _cpu(), time.perf_counter()
    r = fn(*a, **kw)
    wall = time.perf_counter() - t
    LAST_CPU[0] = _cpu() - c
    return wall, r


# --- the dump and its planted faults ---------------------------------------------------------


def generate(out: Path, posts: int, size: int, workers: int) -> Path:
    """The example generator's dump (reused when the marker says it is the same one)."""
    marker = out / ".bench"
    want = f"{posts} {size}"
    if marker.exists() and marker.read_text() == want:
        return out / "images"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "examples" / "generate.py"), str(out),
                    "--posts", str(posts), "--image-size", str(size),
                    "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL)
    marker.write_text(want)
    print(f"generated {posts} posts at ~{size} px in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)
    return out / "images"


class Truth:
    """The planted faults of one dump, and scoring of a tool's answer against them."""

    def __init__(self, faults_csv: Path, files: list[str]) -> None:
        with open(faults_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.near = [(r["path"], r["original"]) for r in rows if r["fault"] == "near_duplicate"]
        self.exact = [(r["path"], r["original"]) for r in rows if r["fault"] == "exact_duplicate"]
        self.corrupt = {r["path"] for r in rows if r["fault"] in CORRUPT_FAULTS}
        self.files = files
        # Files linked by a chain of planted copies belong together; any other pair a
        # tool reports is a false merge.
        parent = {p: p for p in files}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in self.near + self.exact:
            if a in parent and b in parent:
                parent[find(a)] = find(b)
        self.family = {p: find(p) for p in files}

    def score_groups(self, groups: Iterable[Iterable[str]], pairs: list[tuple[str, str]]
                     ) -> tuple[int, int, int]:
        """(planted pairs found, of how many, false merges) for a list of groups."""
        group_of: dict[str, int] = {}
        false = 0
        for gid, g in enumerate(groups):
            members = sorted(set(g))
            for p in members:
                group_of[p] = gid
            fams: dict[str, int] = {}
            for p in members:
                fams[self.family.get(p, p)] = fams.get(self.family.get(p, p), 0) + 1
            n = len(members)
            false += n * (n - 1) // 2 - sum(k * (k - 1) // 2 for k in fams.values())
        found = sum(1 for a, b in pairs if a in group_of and group_of.get(b) == group_of[a])
        return found, len(pairs), false


def rel_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- contenders -----------------------------------------------------------------------------


def seed_load_loop(root: Path, files: list[str]) -> set[str]:
    """The seed's purge: ``Image.open().load()`` per file, one process."""
    from PIL import Image

    bad = set()
    for rel in files:
        try:
            with Image.open(root / rel) as im:
                im.load()
        except Exception:
            bad.add(rel)
    return bad


def seed_sha1_loop(root: Path, files: list[str]) -> list[list[str]]:
    """The seed's exact dedup: a whole-file SHA-1 of every file."""
    by: dict[str, list[str]] = {}
    for rel in files:
        by.setdefault(hashlib.sha1((root / rel).read_bytes()).hexdigest(), []).append(rel)
    return [g for g in by.values() if len(g) > 1 and (root / g[0]).stat().st_size > 0]


def jdupes_groups(root: Path) -> list[list[str]] | None:
    if shutil.which("jdupes") is None:
        return None
    out = subprocess.run(["jdupes", "-r", "-q", str(root)], capture_output=True, text=True,
                         check=True, errors="surrogateescape").stdout
    groups = [[Path(p).relative_to(root).as_posix() for p in block.splitlines() if p]
              for block in out.split("\n\n")]
    return [g for g in groups if len(g) > 1]


def rmlint_groups(root: Path, tmp: Path) -> list[list[str]] | None:
    if shutil.which("rmlint") is None:
        return None
    js = tmp / "rmlint.json"
    subprocess.run(["rmlint", "-T", "df", "-o", f"json:{js}", "--no-followlinks", str(root)],
                   capture_output=True, check=False, cwd=tmp)
    by: dict[str, list[str]] = {}
    for rec in json.loads(js.read_text()):
        if rec.get("type") == "duplicate_file":
            by.setdefault(rec["checksum"], []).append(
                Path(rec["path"]).relative_to(root).as_posix())
    return [g for g in by.values() if len(g) > 1]


def _imagededup_phash() -> Any:
    """imagededup's PHash without torch: its hashing needs numpy, scipy, PyWavelets and
    Pillow only, but the package's ``__init__`` also imports the CNN method (torch,
    torchvision). Those two modules are stood in for by empty ones; the hashing and
    search code measured is imagededup's own, unchanged."""
    import types

    for name, attrs in (("imagededup.utils.models", ("CustomModel", "DEFAULT_MODEL_NAME")),
                        ("imagededup.methods.cnn", ("CNN",))):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            for a in attrs:
                setattr(mod, a, None)
            sys.modules[name] = mod
    from imagededup.methods.hashing import PHash

    return PHash


def imagededup_groups(root: Path, threshold: int, workers: int) -> list[list[str]] | None:
    try:
        PHash = _imagededup_phash()
    except ImportError:
        return None
    import logging

    logging.getLogger("imagededup").setLevel(logging.ERROR)
    ph = PHash(verbose=False)
    enc = ph.encode_images(image_dir=str(root), recursive=True, num_enc_workers=workers)
    dups = ph.find_duplicates(encoding_map=enc, max_distance_threshold=threshold,
                              num_dist_workers=workers)
    # imagededup answers "file -> its neighbours"; its groups are the connected parts
    parent = {k: k for k in dups}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, vs in dups.items():
        for v in vs:
            parent.setdefault(v, v)
            parent[find(k)] = find(v)
    comp: dict[str, list[str]] = {}
    for k in parent:
        comp.setdefault(find(k), []).append(Path(k).as_posix())
    return [g for g in comp.values() if len(g) > 1]


def near_dump_rows(root: Path, truth: Truth, cfg: Any, threshold: int, workers: int, tmp: Path,
                   res: dict[str, Any], row: Callable[..., None]) -> None:
    """The near-copy rows of the dump: weaklabel dedup cold and warm, imagededup PHash at
    the same threshold, each scored on the planted near copies."""
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import image_stage

    t, d = timed(lambda: run_dedup(*image_stage(root, tmp / "dedup", cfg), progress=False))
    f, n, false = truth.score_groups(weaklabel_groups(d.outputs[0]), truth.near)
    row("near copies", "weaklabel dedup", f"{f}/{n}", t, f"{false} false merges")
    res.update(wl_dedup_s=t, wl_dedup_cpu=LAST_CPU[0], wl_near_found=f, wl_near_false=false)
    t2, _ = timed(lambda: run_dedup(*image_stage(root, tmp / "dedup", cfg), progress=False))
    row("near copies", "weaklabel dedup (warm)", f"{f}/{n}", t2)
    res["wl_dedup_warm_s"] = t2
    t, g = timed(imagededup_groups, root, threshold, workers)
    if g is None:
        row("near copies", "imagededup PHash", "-", None, "not installed")
        return
    f, n, false = truth.score_groups(g, truth.near)
    row("near copies", f"imagededup PHash (<= {threshold} bits)", f"{f}/{n}", t,
        f"{false} false merges")
    res.update(imagededup_s=t, imagededup_cpu=LAST_CPU[0], imagededup_near_found=f,
               imagededup_near_false=false)


def weaklabel_groups(csv_path: Path, kinds: tuple[str, ...] = ("exact", "near")
                     ) -> list[list[str]]:
    by: dict[str, list[str]] = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["kind"] in kinds:
                by.setdefault(r["group"], [r["kept"]]).append(r["duplicate"])
    return list(by.values())


def many_files(out: Path, n: int) -> Path:
    """``n`` small distinct files (2 % byte copies) for the 100,000-file warm re-run."""
    marker = out / ".bench"
    if marker.exists() and marker.read_text() == str(n):
        return out / "tree"
    shutil.rmtree(out, ignore_errors=True)
    tree = out / "tree"
    for k in range(n):
        d = tree / f"2019{1 + k % 12:02d}{1 + k % 28:02d}"
        if k % 1000 == 0 or not d.exists():
            d.mkdir(parents=True, exist_ok=True)
        body = (b"x" * (k % 4096)) + k.to_bytes(8, "big") if k % 50 else b"copy-%d" % (k % 7)
        (d / f"{k}.jpg").write_bytes(body)
    marker.write_text(str(n))
    return tree


# --- exact duplicates only, beside jdupes and rmlint -------------------------------------------


def _median_run(fn: Callable[[], Any], reps: int, before: Callable[[], Any] | None = None
                ) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``reps`` calls (the machine is shared); ``before``
    runs untimed ahead of each (removing the last run's workspace, for a cold run)."""
    runs = []
    for _ in range(reps):
        if before is not None:
            before()
        wall, out = timed(fn)
        runs.append((wall, LAST_CPU[0], out))
    runs.sort(key=lambda r: r[0])
    wall, cpu, out = runs[len(runs) // 2]
    return wall, sorted(r[1] for r in runs)[len(runs) // 2], out


def _dup_files(groups: list[list[str]] | None) -> int | None:
    return None if groups is None else sum(len(set(g)) - 1 for g in groups)


def tree_files(tree: Path) -> list[bytes]:
    """Every regular file under ``tree`` (raw bytes paths, no symlink followed)."""
    out, stack = [], [os.fsencode(tree)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    out.append(e.path)
    return out


def evict(files: list[bytes]) -> None:
    """Drop every file's pages from the page cache (``POSIX_FADV_DONTNEED``: clean pages
    only, so the tree is synced once before the first round). Folders, inodes and
    dentries stay cached: only a root's ``drop_caches`` empties those, for every user
    of a shared machine."""
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_share(files: list[bytes]) -> float:
    """The share of the files' pages in the page cache (``mincore`` of a mapping of
    each, through libc), to check that :func:`evict` worked on this file system."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    page, held, total = mmap.PAGESIZE, 0, 0
    for p in files:
        size = os.path.getsize(p)
        if size == 0:
            continue
        n = (size + page - 1) // page
        fd = os.open(p, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap {os.fsdecode(p)}")
            try:
                vec = ctypes.create_string_buffer(n)
                if libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore {os.fsdecode(p)}")
                held += sum(b & 1 for b in vec.raw[:n])
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
        total += n
    return held / total if total else 0.0


def exact_bench(tree: Path, workers: int, reps: int, evicted: bool = False) -> None:
    """``dedup --exact-only`` on ``tree`` as a library call and as the command, cold (a
    fresh inventory) and warm, beside jdupes and rmlint: median of ``reps`` runs.

    ``evicted``: also the command cold, the floor, jdupes and rmlint each with the
    tree's pages evicted from the page cache just before it runs (:func:`evict`; what
    a first run over a freshly copied or mounted dump meets), in the same rounds."""
    from weaklabel.config import Config, ImagesConfig
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import image_stage

    cfg = Config(images=ImagesConfig(workers=workers))
    tmp = Path(tempfile.mkdtemp(prefix="wl-exact-"))
    wl = str(ROOT / ".venv" / "bin" / "weaklabel")
    n_files = sum(len(f) for _, _, f in os.walk(tree))
    rows: list[tuple[str, float, float, int | None]] = []
    try:
        def lib() -> list[list[str]]:
            ws = tmp / "lib"
            return weaklabel_groups(run_dedup(*image_stage(tree, ws, cfg), progress=False,
                                              exact_only=True).outputs[0], ("exact",))

        # An installed package has its .pyc files: without them (a machine that sets
        # PYTHONDONTWRITEBYTECODE, an edited source) every run would compile weaklabel
        # again, ~0.08 CPU s. So the command runs without that setting, and once untimed.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

        def cli() -> list[list[str]]:
            ws = tmp / "cli"
            subprocess.run([wl, "dedup", str(tree), "-w", str(ws), "-q", "--exact-only",
                            "-j", str(workers)], check=True, capture_output=True, env=env)
            return weaklabel_groups(ws / "duplicates.csv", ("exact",))

        cli()

        def cold(ws: str) -> Callable[[], None]:
            return lambda: shutil.rmtree(tmp / ws, ignore_errors=True)  # a new inventory

        def floor() -> None:
            # interpreter + walk + a 4 KiB read of each same-size file (exact_floor.py)
            subprocess.run([sys.executable, str(ROOT / "bench" / "exact_floor.py"),
                            str(tree)], check=True, capture_output=True)

        contenders: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, bool]] = [
            ("weaklabel run_dedup(exact_only) cold", lib, cold("lib"), False),
            ("weaklabel run_dedup(exact_only) warm", lib, None, False),  # on the cold run's
            ("weaklabel dedup --exact-only cold", cli, cold("cli"), False),
            ("weaklabel dedup --exact-only warm", cli, None, False),
            ("pure-Python floor (exact_floor.py)", floor, None, False),
            ("jdupes -r", lambda: jdupes_groups(tree), None, False),
            ("rmlint -T df", lambda: rmlint_groups(tree, tmp), None, False)]
        files: list[bytes] = []
        if evicted:
            files = tree_files(tree)
            os.sync()  # only clean pages can be evicted
            contenders += [
                ("weaklabel dedup --exact-only cold, evicted", cli, cold("cli"), True),
                ("pure-Python floor, evicted", floor, None, True),
                ("jdupes -r, evicted", lambda: jdupes_groups(tree), None, True),
                ("rmlint -T df, evicted", lambda: rmlint_groups(tree, tmp), None, True)]
        # Interleaved, one run of each contender a round: the load of a shared machine
        # drifts over minutes, and would otherwise favour whichever ran in a calm one.
        runs: dict[str, list[tuple[float, float, Any]]] = {n: [] for n, *_ in contenders}
        resident: list[float] = []
        for _ in range(reps):
            for name, fn, before, ev in contenders:
                if before is not None:
                    before()
                if ev:
                    evict(files)
                    if not resident:  # once: does eviction work on this file system?
                        resident.append(resident_share(files))
                        print(f"after eviction {resident[0]:.1%} of the tree's pages are "
                              "in the page cache", file=sys.stderr)
                wall, out = timed(fn)
                runs[name].append((wall, LAST_CPU[0], out))
        for name, done in runs.items():
            walls, cpus = sorted(r[0] for r in done), sorted(r[1] for r in done)
            rows.append((name, walls[reps // 2], cpus[reps // 2], _dup_files(done[0][2])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"exact duplicates, {n_files:,} files under {tree}, {workers} worker(s), "
          f"median of {reps} interleaved runs, load average {os.getloadavg()[0]:.1f} at "
          f"the end" + (f"; evicted: {resident[0]:.1%} of the pages still cached after "
                        "eviction" if resident else "") + "\n")
    print(f"| {'tool':40} | {'seconds':>8} | {'CPU s':>8} | {'copies found':>12} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|{'-' * 14}|")
    for name, wall, cpu, dups in rows:
        found = "-" if dups is None else f"{dups:,}"
        print(f"| {name:40} | {wall:8.3f} | {cpu:8.3f} | {found:>12} |")


# --- near duplicates by edit type, beside imagededup -------------------------------------------

EDITS = ("jpeg_q50", "jpeg_q75", "jpeg_q95", "webp", "png", "resize_0.5", "resize_0.25",
         "thumb_160", "crop_2", "crop_5", "crop_10", "exif_rotate", "grey", "brighter",
         "darker", "more_contrast", "less_contrast", "watermark")
"""Edits planted for every original: each is a copy a user wants grouped with it."""
NEGATIVES = ("similar_scene", "recoloured", "uniform")
"""Files that must stay apart: another picture of the same topic, the same layout drawn in
another topic's colours, and all-black / all-white / all-grey images."""


def _generator() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("wl_generate", ROOT / "examples" / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("wl_generate", mod)
    spec.loader.exec_module(mod)
    return mod


def _save(img: Any, path: Path, fmt: str, **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)


def _edit(img: Any, edit: str, rng: Any, path: Path) -> None:
    """Write ``img`` with ``edit`` applied to ``path`` (its suffix set by the caller)."""
    from PIL import Image, ImageDraw, ImageEnhance

    w, h = img.size
    if edit.startswith("jpeg_q"):
        _save(img, path, "JPEG", quality=int(edit[6:]))
    elif edit == "webp":
        _save(img, path, "WEBP", quality=80)
    elif edit == "png":
        _save(img, path, "PNG", compress_level=1)
    elif edit.startswith("resize_"):
        f = float(edit[7:])
        _save(img.resize((max(1, round(w * f)), max(1, round(h * f))),
                         Image.Resampling.LANCZOS), path, "JPEG", quality=85)
    elif edit == "thumb_160":
        t = img.copy()
        t.thumbnail((160, 160), Image.Resampling.LANCZOS)
        _save(t, path, "JPEG", quality=85)
    elif edit.startswith("crop_"):
        frac = int(edit[5:]) / 100  # that share of each side's length goes, unevenly
        left, top = rng.uniform(0.2, 0.8) * frac * w, rng.uniform(0.2, 0.8) * frac * h
        box = (round(left), round(top), round(left + (1 - frac) * w),
               round(top + (1 - frac) * h))
        _save(img.crop(box), path, "JPEG", quality=85)
    elif edit == "exif_rotate":
        # Stored sideways (or upside down) with the EXIF tag that shows it upright.
        tag = int(rng.choice([3, 6, 8]))
        stored = img.transpose({3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                                8: Image.Transpose.ROTATE_270}[tag])
        exif = Image.Exif()
        exif[0x0112] = tag
        _save(stored, path, "JPEG", quality=85, exif=exif.tobytes())
    elif edit == "grey":
        _save(img.convert("L"), path, "JPEG", quality=85)
    elif edit in ("brighter", "darker"):
        f = rng.uniform(1.15, 1.3) if edit == "brighter" else rng.uniform(0.7, 0.85)
        _save(ImageEnhance.Brightness(img).enhance(f), path, "JPEG", quality=85)
    elif edit in ("more_contrast", "less_contrast"):
        f = rng.uniform(1.2, 1.4) if edit == "more_contrast" else rng.uniform(0.65, 0.8)
        _save(ImageEnhance.Contrast(img).enhance(f), path, "JPEG", quality=85)
    elif edit == "watermark":
        # A small semi-opaque caption and logo in a corner, as a reposting account adds.
        over = Image.new("RGBA", img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(over)
        s = max(8, min(w, h) // 18)
        x0, y0 = (round(w * 0.62), round(h * 0.9)) if rng.random() < 0.5 else (
            round(w * 0.04), round(h * 0.04))
        d.rectangle([x0, y0, x0 + 2 * s, y0 + s], fill=(255, 255, 255, 150))
        d.text((x0 + 2 * s + s // 3, y0), "@daily_repost", fill=(255, 255, 255, 190),
               font_size=s)
        _save(Image.alpha_composite(img.convert("RGBA"), over).convert("RGB"), path,
              "JPEG", quality=85)
    else:
        raise ValueError(edit)


def near_edits_tree(out: Path, originals: int, size: int) -> tuple[Path, list[dict[str, str]]]:
    """``originals`` generated ~``size`` px scenes, each with every edit in :data:`EDITS`
    and the hard negatives of :data:`NEGATIVES`; returns the tree and its truth rows
    (``path``, ``role``: original / edit / negative, ``kind``, ``family``)."""
    import numpy as np
    from PIL import Image

    marker, truth_csv = out / ".bench", out / "truth.csv"
    want = f"near-edits {originals} {size} v1"
    tree = out / "images"
    if marker.exists() and marker.read_text() == want:
        with open(truth_csv, newline="", encoding="utf-8") as f:
            return tree, list(csv.DictReader(f))
    shutil.rmtree(out, ignore_errors=True)
    gen = _generator()
    rows: list[dict[str, str]] = []
    seed = 11
    topics = len(gen.TOPICS)
    t0 = time.perf_counter()
    for k in range(originals):
        topic = k % topics
        fam = f"o{k:03d}"
        rng = np.random.default_rng([seed, k])
        img = gen.draw_image(seed, k, 0, topic, size)
        p = tree / fam / "original.jpg"
        _save(img, p, "JPEG", quality=90)
        rows.append({"path": p.relative_to(tree).as_posix(), "role": "original",
                     "kind": "original", "family": fam})
        for edit in EDITS:
            ext = {"webp": ".webp", "png": ".png"}.get(edit, ".jpg")
            p = tree / fam / f"{edit}{ext}"
            _edit(img, edit, rng, p)
            rows.append({"path": p.relative_to(tree).as_posix(), "role": "edit", "kind": edit,
                         "family": fam})
        # hard negatives, each its own family
        p = tree / "neg" / f"{fam}_similar_scene.jpg"
        _save(gen.draw_image(seed, 10_000 + k, 0, topic, size), p, "JPEG", quality=90)
        rows.append({"path": p.relative_to(tree).as_posix(), "role": "negative",
                     "kind": "similar_scene", "family": f"{fam}-similar"})
        name, other = gen.TOPICS[topic], gen.TOPICS[(topic + 5) % topics]
        saved = gen._PALETTES[name]
        gen._PALETTES[name] = gen._PALETTES[other]  # same drawing calls, other colours
        try:
            recol = gen.draw_image(seed, k, 0, topic, size)
        finally:
            gen._PALETTES[name] = saved
        p = tree / "neg" / f"{fam}_recoloured.jpg"
        _save(recol, p, "JPEG", quality=90)
        rows.append({"path": p.relative_to(tree).as_posix(), "role": "negative",
                     "kind": "recoloured", "family": f"{fam}-recoloured"})
    for value, name in ((0, "black"), (255, "white"), (128, "grey")):
        for side, fmt in ((size, "JPEG"), (160, "PNG")):
            p = tree / "neg" / f"uniform_{name}_{side}.{fmt.lower().replace('jpeg', 'jpg')}"
            _save(Image.new("RGB", (side, side * 3 // 4), (value,) * 3), p, fmt)
            rows.append({"path": p.relative_to(tree).as_posix(), "role": "negative",
                         "kind": "uniform", "family": p.stem})
    with open(truth_csv, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, ["path", "role", "kind", "family"])
        wr.writeheader()
        wr.writerows(rows)
    marker.write_text(want)
    print(f"near-edits tree: {len(rows)} files in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
    return tree, rows


def score_edits(groups: Iterable[Iterable[str]], rows: list[dict[str, str]]
                ) -> tuple[dict[str, tuple[int, int]], dict[str, int], int]:
    """Per edit kind ``(found, planted)`` (an edit is found when it shares a group with
    its original); per kind the files wrongly merged (in a group with a file of another
    family); and the reported pairs of files from different families."""
    family = {r["path"]: r["family"] for r in rows}
    kind = {r["path"]: r["kind"] for r in rows}
    group_of: dict[str, int] = {}
    wrong: dict[str, int] = {}
    false_pairs = 0
    for gid, g in enumerate(groups):
        members = sorted(set(g))
        for p in members:
            group_of[p] = gid
        fams = [family.get(p, p) for p in members]
        for p, f in zip(members, fams, strict=True):
            if any(o != f for o in fams):
                wrong[kind.get(p, "?")] = wrong.get(kind.get(p, "?"), 0) + 1
        false_pairs += sum(1 for a, b in combinations(fams, 2) if a != b)
    originals = {r["family"]: r["path"] for r in rows if r["role"] == "original"}
    found: dict[str, tuple[int, int]] = {}
    for r in rows:
        if r["role"] != "edit":
            continue
        f, n = found.get(r["kind"], (0, 0))
        o = originals[r["family"]]
        hit = r["path"] in group_of and group_of.get(o) == group_of[r["path"]]
        found[r["kind"]] = (f + int(hit), n + 1)
    return found, wrong, false_pairs


def near_edits_bench(out: Path, originals: int, size: int, threshold: int | None,
                     workers: int) -> dict[str, Any]:
    """Recall per edit kind and false merges, weaklabel dedup beside imagededup PHash at
    the same Hamming threshold, on :func:`near_edits_tree`; prints a table."""
    from weaklabel.config import Config, ImagesConfig
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import image_stage

    tree, rows = near_edits_tree(out, originals, size)
    icfg = ImagesConfig(workers=workers)
    thr = icfg.near_threshold if threshold is None else threshold
    cfg = Config(images=ImagesConfig(workers=workers, near_threshold=thr))
    tmp = Path(tempfile.mkdtemp(prefix="wl-edits-"))
    res: dict[str, Any] = {"files": len(rows), "originals": originals, "threshold": thr}
    try:
        t, d = timed(lambda: run_dedup(*image_stage(tree, tmp / "ws", cfg), progress=False))
        wl = score_edits(weaklabel_groups(d.outputs[0]), rows)
        res["weaklabel"] = {"seconds": t, "cpu": LAST_CPU[0], "found": wl[0], "false": wl[1],
                            "false_pairs": wl[2]}
        t, g = timed(imagededup_groups, tree, thr, workers)
        if g is not None:
            idd = score_edits(g, rows)
            res["imagededup"] = {"seconds": t, "cpu": LAST_CPU[0], "found": idd[0],
                                 "false": idd[1], "false_pairs": idd[2]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tools = [k for k in ("weaklabel", "imagededup") if k in res]
    print(f"near copies by edit, {len(rows)} files ({originals} originals at ~{size} px, "
          f"{len(EDITS)} edits each, hard negatives), pHash <= {thr} bits, {workers} workers\n")
    print("| edit | " + " | ".join(f"{t} found" for t in tools) + " | "
          + " | ".join(f"{t} files wrongly merged" for t in tools) + " |")
    print("|---" * (1 + 2 * len(tools)) + "|")
    for kind in (*EDITS, *NEGATIVES, "original"):
        found = [res[t]["found"].get(kind) for t in tools]
        false = [res[t]["false"].get(kind, 0) for t in tools]
        if all(f is None for f in found) and not any(false):
            continue
        cells = [("" if f is None else f"{f[0]}/{f[1]}") for f in found]
        print(f"| {kind} | " + " | ".join(cells) + " | "
              + " | ".join(str(x) for x in false) + " |")
    total = [(sum(f for f, _ in res[t]["found"].values()),
              sum(n for _, n in res[t]["found"].values()),
              sum(res[t]["false"].values())) for t in tools]
    print("| **all** | " + " | ".join(f"{f}/{n}" for f, n, _ in total) + " | "
          + " | ".join(str(x) for *_, x in total) + " |")
    print("| pairs across families | " + " | ".join("" for _ in tools) + " | "
          + " | ".join(str(res[t]["false_pairs"]) for t in tools) + " |")
    print()
    for t in tools:
        print(f"{t}: {res[t]['seconds']:.2f} s, {res[t]['cpu']:.2f} CPU s")
    return res


def crop_look_bench(out: Path, originals: int, size: int, side: int = 64) -> dict[str, Any]:
    """A second look for crops, measured before building it: every pair within 12 pHash
    bits that is a 5 or 10 % crop and its original, or two files of different scenes,
    scored by the best normalised cross-correlation of detail (the grey picture less a
    9 px box blur) of one picture against a window of the other, over scales 0.84-1.0
    and every whole-pixel offset, at ``side`` px. Prints each kind's score range."""
    import imagehash
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    from PIL import Image, ImageOps
    from scipy.ndimage import uniform_filter

    tree, rows = near_edits_tree(out, originals, size)
    fam = {r["path"]: r["family"] for r in rows}
    kind = {r["path"]: r["kind"] for r in rows}
    grey, phash = {}, {}
    for r in rows:
        if r["kind"] == "uniform":
            continue
        with Image.open(tree / r["path"]) as im:
            im.draft("L", (side * 3, side * 3))
            g = ImageOps.exif_transpose(im).convert("L")
        grey[r["path"]], phash[r["path"]] = g, int(str(imagehash.phash(g)), 16)

    def detail(a: Any, axes: tuple[int, ...]) -> Any:
        d = a - uniform_filter(a, axes, mode="reflect")
        d = d.reshape(len(d), -1) if d.ndim == 3 else d.reshape(1, -1)
        d = d - d.mean(axis=1, keepdims=True)
        n = np.linalg.norm(d, axis=1, keepdims=True)
        return d / np.where(n < 1e-6, 1.0, n)

    def best(a: Any, b: Any) -> float:
        """``b`` as a crop of ``a``: its best correlation with a window of ``a``."""
        t = detail(np.asarray(b.resize((side, side), Image.Resampling.BOX), float), (9, 9))[0]
        top = -1.0
        for s in np.linspace(0.84, 1.0, 9):
            big = round(side / s)
            w = sliding_window_view(np.asarray(a.resize((big, big), Image.Resampling.BILINEAR),
                                               float), (side, side)).reshape(-1, side, side)
            top = max(top, float((detail(w, (1, 9, 9)) @ t).max()))
        return top

    scores: dict[str, list[float]] = {}
    t0 = _cpu()
    pairs = 0
    for a, b in combinations(sorted(grey), 2):
        if (phash[a] ^ phash[b]).bit_count() > 12:
            continue
        ks = {kind[a], kind[b]}
        if fam[a] == fam[b] and "original" in ks and ks & {"crop_5", "crop_10"}:
            label = (ks - {"original"}).pop()
        elif fam[a] != fam[b] and (phash[a] ^ phash[b]).bit_count() > 6:
            label = "different scenes beyond 6 bits"
        else:
            continue
        scores.setdefault(label, []).append(max(best(grey[a], grey[b]), best(grey[b], grey[a])))
        pairs += 1
    cpu = _cpu() - t0
    print(f"crop second look at {side} px, {pairs} pairs within 12 bits, "
          f"{cpu / max(pairs, 1) * 1e3:.0f} CPU ms a pair\n")
    print("| pairs | n | lowest | median | highest |\n|---|---|---|---|---|")
    for label, v in sorted(scores.items()):
        print(f"| {label} | {len(v)} | {min(v):.3f} | {float(np.median(v)):.3f} | {max(v):.3f} |")
    return {k: sorted(v) for k, v in scores.items()}


def _thumb_hashes(thumb: bytes) -> tuple[int, int]:
    """dHash and wHash (8 × 8) of a stored 32 × 32 thumbnail: measures a second check
    could use without reading the file again."""
    import imagehash
    from PIL import Image

    im = Image.frombytes("L", (32, 32), thumb)
    return int(str(imagehash.dhash(im)), 16), int(str(imagehash.whash(im)), 16)


def near_measures(tree: Path, family: dict[str, str], label: Callable[[str, str], str | None],
                  workers: int) -> dict[str, list[dict[str, float]]]:
    """Every pair within the candidate radius that ``label`` names, with each measure a
    rule could use: pHash bits as dedup stores it and as imagededup computes it
    (``imagehash.phash`` of the whole decoded picture), the plain and the aligned
    thumbnail agreement, and dHash / wHash bits of the thumbnails."""
    import imagehash
    import numpy as np
    from PIL import Image, ImageOps

    from weaklabel.images import dedup as D
    from weaklabel.images.checks import Task, examine

    rels = sorted(family)
    seen = {}
    for rel in rels:
        p = tree / rel
        r = examine(Task(str(p), rel, p.stat().st_size, True, ("phash", 8), 10**9))
        if r["hash"] is not None:
            seen[rel] = r
    paths = sorted(seen)
    hashes = np.array([int(seen[p]["hash"], 16) for p in paths], dtype=np.uint64)
    thumbs = np.array([np.frombuffer(seen[p]["thumb"], np.uint8) for p in paths])
    detail = [D.thumb_detail(thumbs, b) for b in D.DETAIL_BLOCKS]
    ci, cj, cd = D.find_near_pairs(hashes, D.candidate_radius(6))
    keep = [k for k, (a, b) in enumerate(zip(ci.tolist(), cj.tolist(), strict=True))
            if label(paths[a], paths[b]) is not None]
    ci, cj, cd = ci[keep], cj[keep], cd[keep]
    agree = D.thumb_agreement(detail, ci, cj)
    aligned = D.aligned_agreement(thumbs, ci, cj)
    plain: dict[int, int] = {}
    thash: dict[int, tuple[int, int]] = {}
    for k in {*ci.tolist(), *cj.tolist()}:
        with Image.open(tree / paths[k]) as im:
            plain[k] = int(str(imagehash.phash(ImageOps.exif_transpose(im).convert("L"))), 16)
        thash[k] = _thumb_hashes(seen[paths[k]]["thumb"])
    out: dict[str, list[dict[str, float]]] = {}
    for a, b, d, ag, al in zip(ci.tolist(), cj.tolist(), cd.tolist(), agree.tolist(),
                               aligned.tolist(), strict=True):
        name = label(paths[a], paths[b])
        assert name is not None
        out.setdefault(name, []).append({
            "phash": d, "plain phash": (plain[a] ^ plain[b]).bit_count(), "agreement": ag,
            "aligned": al, "thumb dhash": (thash[a][0] ^ thash[b][0]).bit_count(),
            "thumb whash": (thash[a][1] ^ thash[b][1]).bit_count(),
            "pair": f"{paths[a]} {paths[b]}"})
    return out


MEASURES = ("phash", "plain phash", "agreement", "aligned", "thumb dhash", "thumb whash")


def near_measures_bench(edits_dir: Path, originals: int, size: int, dump: Path,
                        example: Path, workers: int) -> dict[str, Any]:
    """Distributions of every measure (:func:`near_measures`) for the pairs the near rule
    must join (5 and 10 % crops and their originals) and the pairs it must not (different
    scenes; the same drawing in other colours; the 900 px dump's and the bundled example's
    unrelated pictures), and how many of each the rule of :mod:`weaklabel.images.dedup`
    (within ``close_radius`` bits and aligned at ``MIN_ALIGNED_CLOSE``, or aligned at
    ``MIN_ALIGNED``, or plain agreement) accepts beyond the threshold."""
    import numpy as np

    from weaklabel.images import dedup as D

    tree, rows = near_edits_tree(edits_dir, originals, size)
    fam = {r["path"]: r["family"] for r in rows if r["kind"] != "uniform"}
    kind = {r["path"]: r["kind"] for r in rows}

    def edits_label(a: str, b: str) -> str | None:
        ks = {kind[a], kind[b]}
        if fam[a] == fam[b]:
            if "original" in ks and ks & {"crop_5", "crop_10"}:
                return f"near-edits: {(ks - {'original'}).pop()} / its original"
            return None
        if "recoloured" in ks and fam[a].split("-")[0] == fam[b].split("-")[0]:
            return "near-edits: recoloured drawing / a file of its scene"
        return "near-edits: files of different scenes"

    sets = [(tree, fam, edits_label)]
    for root, title in ((dump, "900 px dump"), (example, "bundled example")):
        faults = root.parent / "image_faults.csv"
        if not faults.exists():
            print(f"({title}: {root} not generated, skipped)", file=sys.stderr)
            continue
        truth = Truth(faults, rel_files(root))
        sets.append((root, truth.family,
                     lambda a, b, t=truth, n=title: (f"{n}: unrelated" if t.family[a]
                                                     != t.family[b] else None)))
    res: dict[str, Any] = {}
    for root, family, label in sets:
        res.update(near_measures(root, family, label, workers))
    thr = 6
    close = D.close_radius(thr)

    def joined(x: dict[str, float], close_bar: float) -> bool:
        return x["agreement"] >= D.MIN_AGREEMENT or x["aligned"] >= (
            close_bar if x["phash"] <= close else D.MIN_ALIGNED)

    print(f"pairs {thr + 1}-{D.candidate_radius(thr)} pHash bits apart (beyond the threshold "
          f"{thr}, within the candidate search); joined: plain agreement >= "
          f"{D.MIN_AGREEMENT}, or aligned >= {D.MIN_ALIGNED}; now also, within {close} bits, "
          f"aligned >= {D.MIN_ALIGNED_CLOSE}\n")
    print("| pairs | n | " + " | ".join(MEASURES) + f" | within {close} bits: n, aligned "
          "| joined before → now |")
    print("|---" * (len(MEASURES) + 4) + "|")
    for name, every in sorted(res.items()):
        items = [x for x in every if x["phash"] > thr]
        if not items:
            continue
        cells = []
        for m in MEASURES:
            v = np.array([x[m] for x in items], float)
            fmt = "{:.0f}" if m.endswith("hash") else "{:.3f}"
            cells.append(f"{fmt.format(v.min())}–{fmt.format(np.median(v))}–"
                         f"{fmt.format(v.max())}")
        near = np.array([x["aligned"] for x in items if x["phash"] <= close])
        within = (f"{len(near)}, {near.min():.3f}–{np.median(near):.3f}–{near.max():.3f}"
                  if len(near) else "0")
        before = sum(joined(x, D.MIN_ALIGNED) for x in items)
        now = sum(joined(x, D.MIN_ALIGNED_CLOSE) for x in items)
        print(f"| {name} | {len(items)} | " + " | ".join(cells)
              + f" | {within} | {before} → {now} |")
    print("\n(min–median–max; bits for the hashes)")
    return res


# --- corrupt files: purge beside the seed loop, and its JPEG verdict on damaged files -------


def purge_bench(root: Path, files: list[str], truth: Truth, workers: int, reps: int) -> None:
    """``run_purge`` cold (a fresh inventory) with ``workers`` and with one worker, beside
    the seed's ``Image.open().load()`` loop: median of ``reps``, wall and CPU seconds."""
    from weaklabel.config import Config, ImagesConfig
    from weaklabel.images.purge import image_stage, run_purge

    tmp = Path(tempfile.mkdtemp(prefix="wl-purge-"))
    rows = []
    try:
        def purge(w: int) -> set[str]:
            ws = tmp / f"ws{w}"
            shutil.rmtree(ws, ignore_errors=True)
            p = run_purge(*image_stage(root, ws, Config(images=ImagesConfig(workers=w))),
                          progress=False)
            with open(p.outputs[0], newline="", encoding="utf-8") as fh:
                return {r["path"] for r in csv.DictReader(fh) if r["status"] != "ok"}

        for name, fn in ((f"weaklabel purge, {workers} workers", lambda: purge(workers)),
                         ("weaklabel purge, 1 worker", lambda: purge(1)),
                         ("Image.open().load() loop", lambda: seed_load_loop(root, files))):
            wall, cpu, bad = _median_run(fn, reps)
            rows.append((name, wall, cpu, len(truth.corrupt & bad), len(bad - truth.corrupt)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"corrupt files, {len(files):,} files under {root}, median of {reps}\n")
    print(f"| {'tool':34} | {'seconds':>8} | {'CPU s':>8} | found | valid flagged |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 10}|-------|---------------|")
    for name, wall, cpu, hit, false in rows:
        print(f"| {name:34} | {wall:8.2f} | {cpu:8.2f} | {hit}/{len(truth.corrupt)} | {false} |")
    seed = rows[-1]
    for name, wall, cpu, *_ in rows[:-1]:
        print(f"{name}: {seed[2] / cpu:.2f}x the seed loop in CPU, {seed[1] / wall:.2f}x by "
              "the clock")


_SEGMENT = {0xC0: "SOF0", 0xC2: "SOF2", 0xC4: "DHT", 0xD8: "SOI", 0xD9: "EOI", 0xDA: "SOS",
            0xDB: "DQT", 0xDD: "DRI", 0xE0: "APP0", 0xE1: "APP1", 0xEE: "APP14", 0xFE: "COM"}
_DATA = ("byte flipped", "byte set to 0xFF", "byte set to 0x00", "run overwritten")


def _damage_kind(what: str, base: str, jd: Any) -> str:
    """A row of the damage table for one variant name of ``jpeg_damage.damaged``."""
    def seg(code: str) -> str:
        c = int(code, 16)
        return "RST" if 0xD0 <= c <= 0xD7 else _SEGMENT.get(c, code)

    head, _, at = what.partition("@")
    if head == "cut":
        size = tuple(int(x) for x in base.rsplit("-", 1)[1].split("x"))
        data = jd.base_file(base.rsplit("-", 1)[0], size, seed=list(jd.BASES).index(
            base.rsplit("-", 1)[0]) + 1)
        return "cut in the headers" if int(at) < jd.header_end(data) + 8 else \
            "cut in the entropy data"
    if head.startswith("cut-"):
        return "cut in the last 8 bytes"
    if head.startswith("head^"):
        return "header byte flipped"
    if head.startswith("data"):
        return "entropy data: " + _DATA[int(head[4:])]
    if head.startswith("marker"):
        return f"{seg(head[6:8])} marker code replaced"
    if head.startswith(("drop", "twice")):
        return f"{seg(head[-2:])} segment " + ("removed" if head[0] == "d" else "repeated")
    if head.startswith("insert"):
        return "marker inserted in the entropy data"
    return head


def _test_module(name: str) -> Any:
    """A corpus module of ``tests/images`` (not a package), imported as pytest does:
    its folder on ``sys.path``, so the corpora can import each other."""
    import importlib

    folder = str(ROOT / "tests" / "images")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def jpeg_damage_bench(scale: int) -> None:
    """Per kind of damage: how many files Pillow loads, how many of those the marker walk
    judges without decoding, and whether purge's status ever differs from Pillow's."""
    import warnings

    jd = _test_module("jpeg_damage")
    from weaklabel.images.checks import Task, examine
    from weaklabel.images.jpeg_stream import jpeg_well_formed

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="wl-jpeg-"))
    p = tmp / "x.jpg"
    kinds: dict[str, list[int]] = {}  # kind -> variants, Pillow loads, walk sure, false sure,
    cpu = {"pillow": 0.0, "walk": 0.0, "examine": 0.0}  # purge differs
    try:
        for name, data in jd.corpus(scale):
            kind = _damage_kind(name.split(":", 1)[1], name.split(":", 1)[0], jd)
            c = _cpu()
            loads = jd.pillow_loads(data)
            cpu["pillow"] += _cpu() - c
            c = _cpu()
            sure = jpeg_well_formed(data)
            cpu["walk"] += _cpu() - c
            p.write_bytes(data)
            c = _cpu()
            status = examine(Task(str(p), "x.jpg", len(data), True, None, 89_478_485))["status"]
            cpu["examine"] += _cpu() - c
            k = kinds.setdefault(kind, [0, 0, 0, 0, 0])
            k[0] += 1
            k[1] += loads
            k[2] += sure
            k[3] += sure and not loads
            k[4] += (status == "ok") != loads
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(k[0] for k in kinds.values())
    print(f"purge's JPEG verdict beside Image.open().load() on {total:,} damaged JPEGs "
          f"({len(jd.BASES)} kinds of valid file)\n")
    print("| damage | files | Pillow loads | judged without decoding | sure but Pillow rejects "
          "| purge differs from Pillow |")
    print("|---|---|---|---|---|---|")
    for kind, (n, loads, sure, false, differ) in sorted(kinds.items()):
        print(f"| {kind} | {n} | {loads} | {sure} | {false} | {differ} |")
    tot = [sum(k[i] for k in kinds.values()) for i in range(5)]
    print(f"| **all** | {tot[0]} | {tot[1]} | {tot[2]} | {tot[3]} | {tot[4]} |")
    print(f"\nCPU s: Image.open().load() {cpu['pillow']:.2f}, marker walk {cpu['walk']:.2f}, "
          f"purge's examine {cpu['examine']:.2f}")


def pillow_tests_bench(root: Path, workers: int) -> None:
    """Pillow's own test images (``Tests/images`` of its source distribution: ``pip
    download --no-deps --no-binary :all: pillow==VERSION``, unpacked) judged by ``weaklabel
    purge`` and by the oracle of ``tests/images/purge_fuzz.py`` (Pillow opens the file and
    loads every frame under purge's settings, 20 s a file at most): how many Pillow loads,
    the statuses purge gives, disagreements both ways."""
    import ast
    import signal
    import warnings

    pf = _test_module("purge_fuzz")
    warnings.simplefilter("ignore")

    def too_slow(*_: object) -> None:
        raise TimeoutError("the oracle took over 20 s")

    signal.signal(signal.SIGALRM, too_slow)
    loads: dict[str, tuple[bool | None, str]] = {}
    for rel in rel_files(root):
        if (root / rel).is_symlink():
            continue
        signal.alarm(20)
        try:
            loads[rel] = pf.oracle(root / rel)
        except TimeoutError as exc:
            loads[rel] = (None, str(exc))
        finally:
            signal.alarm(0)
    ws = Path(tempfile.mkdtemp(prefix="wl-pillow-tests-"))
    try:
        c = _cpu()
        t = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "weaklabel"), "purge", str(root), "-w",
                        str(ws), "-q", "-j", str(workers)], check=True, capture_output=True)
        secs, cpu = time.perf_counter() - t, _cpu() - c
        with open(ws / "purge.csv", newline="", encoding="utf-8") as f:
            got = {r["path"]: r["status"] for r in csv.DictReader(f)}
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    # Image.open(path) tries the plugin of the file's extension first and registers it
    # there and then, so in one process the verdict can depend on the files opened before
    # (after a .tga, TGA's lenient check claims pillow.ico): a disagreement is judged
    # again in a fresh process, as a user's Image.open(path).load() would be.
    fresh = 0
    for rel, (ok, _) in loads.items():
        if ok is not None and ok != (got.get(rel) == "ok"):
            code = ("import sys; sys.path.insert(0, sys.argv[1]); import purge_fuzz as pf; "
                    "print(repr(pf.oracle(sys.argv[2])))")
            out = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests" / "images"),
                                  str(root / rel)], capture_output=True, text=True, timeout=60)
            again = ast.literal_eval(out.stdout.strip())
            if again != loads[rel]:
                loads[rel] = again
                fresh += 1
    table: dict[tuple[str, str], int] = {}
    wrong = []
    for rel, (ok, why) in sorted(loads.items()):
        status = got.get(rel, "missing")
        verdict = "loads" if ok else ("rejects" if ok is False else "too slow")
        table[(verdict, status)] = table.get((verdict, status), 0) + 1
        if ok is not None and ok != (status == "ok"):
            wrong.append(f"{rel}: purge {status}; Pillow {'loads it' if ok else why}")
    print(f"Pillow's own test images under {root}: {len(loads):,} files, purge in {secs:.1f} s "
          f"({cpu:.1f} CPU s, {workers} workers)\n")
    print("| Pillow | purge's status | files |\n|---|---|---|")
    for (verdict, status), n in sorted(table.items()):
        print(f"| {verdict} | {status} | {n} |")
    print(f"\ndisagreements: {len(wrong)} ({fresh} verdicts of the oracle that changed in a "
          "fresh process)")
    for line in wrong:
        print("disagreement:", line)


def purge_fuzz_bench(sizes: tuple[tuple[int, int], ...], instances: int, seed: int) -> None:
    """Differential fuzzing: every file of ``tests/images/purge_fuzz.py``'s corpus judged
    by purge's ``examine`` and by the oracle (Pillow opens it and loads every frame under
    purge's settings); one line per format x mutation, disagreements both ways."""
    import warnings

    pf = _test_module("purge_fuzz")
    from weaklabel.images.checks import Task, examine

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="wl-fuzz-"))
    cells: dict[tuple[str, str], list[int]] = {}  # files, Pillow loads, purge ok,
    wrong: list[str] = []  # loadable called corrupt, rejected called ok
    cpu = {"oracle": 0.0, "purge": 0.0}
    try:
        for kind, what, name, data in pf.corpus(seed=seed, sizes=sizes, instances=instances):
            p = tmp / name
            p.write_bytes(data)
            c = _cpu()
            loads, why = pf.oracle(p)
            cpu["oracle"] += _cpu() - c
            c = _cpu()
            got = examine(Task(str(p), name, len(data), True, None, pf.MAX_PIXELS))
            cpu["purge"] += _cpu() - c
            p.unlink()
            ok = got["status"] == "ok"
            cell = cells.setdefault((kind, what), [0, 0, 0, 0, 0])
            cell[0] += 1
            cell[1] += loads
            cell[2] += ok
            cell[3] += loads and not ok
            cell[4] += ok and not loads
            if ok != loads:
                wrong.append(f"{name}: purge {got['status']} ({got['reason']}); "
                             f"Pillow {'loads' if loads else why}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = [sum(c[i] for c in cells.values()) for i in range(5)]
    print(f"purge beside the oracle on {total[0]:,} files ({len({k for k, _ in cells})} kinds "
          f"of valid file at {', '.join(f'{w}x{h}' for w, h in sizes)}, {instances} seeded "
          f"instances of each mutation)\n")
    print(f"| {'format':18} | {'mutation':22} | files | Pillow loads | purge ok "
          "| loadable called corrupt | rejected called ok |")
    print(f"|{'-' * 20}|{'-' * 24}|-------|--------------|----------|"
          "-------------------------|--------------------|")
    for (kind, what), (n, loads, ok, bad, lax) in cells.items():
        print(f"| {kind:18} | {what:22} | {n:5} | {loads:12} | {ok:8} | {bad:23} | {lax:18} |")
    by_what: dict[str, list[int]] = {}
    for (_, what), c in cells.items():
        row = by_what.setdefault(what, [0] * 5)
        for i in range(5):
            row[i] += c[i]
    print("\n| mutation | files | Pillow loads | loadable called corrupt | rejected called ok |")
    print("|---|---|---|---|---|")
    for what, (n, loads, _, bad, lax) in by_what.items():
        print(f"| {what} | {n} | {loads} | {bad} | {lax} |")
    print(f"| **all** | {total[0]} | {total[1]} | {total[3]} | {total[4]} |")
    print(f"\nCPU s: oracle {cpu['oracle']:.2f}, purge's examine {cpu['purge']:.2f}")
    for line in wrong[:40]:
        print("disagreement:", line)
    out = Path("bench/out/purge_fuzz.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"files": total[0], "pillow_loads": total[1],
                               "loadable_called_corrupt": total[3],
                               "rejected_called_ok": total[4], "disagreements": wrong,
                               "cpu": cpu}, indent=1))


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--posts", type=int, default=1500)
    ap.add_argument("--size", type=int, default=900, help="typical image side in px")
    ap.add_argument("--dir", type=Path, default=Path("bench/out/photos"))
    ap.add_argument("--threshold", type=int, default=None,
                    help="Hamming threshold for both near-duplicate tools (default: config)")
    ap.add_argument("--many", type=int, default=100_000,
                    help="files in the warm exact re-run tree (0: skip)")
    ap.add_argument("--hashes", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--exact-tree", type=Path, default=None,
                    help="only the exact-duplicate table, on this tree")
    ap.add_argument("--reps", type=int, default=3, help="runs per contender (--exact-tree)")
    ap.add_argument("--evict", action="store_true",
                    help="--exact-tree: also the command cold, the floor, jdupes and rmlint "
                         "each with the tree evicted from the page cache (POSIX_FADV_DONTNEED)"
                         " just before it runs, in the same interleaved rounds")
    ap.add_argument("--only", choices=("near-edits", "near-dump", "near-measures", "purge",
                                       "purge-fuzz", "jpeg-damage", "crop-look",
                                       "pillow-tests"),
                    default=None,
                    help="near-edits: only the per-edit near-duplicate table; near-dump: "
                         "only the near-copy rows of the dump; near-measures: every measure of "
                         "the crop and unrelated pairs a near rule could use; purge: only "
                         "the corrupt-file rows; purge-fuzz: purge's verdict against "
                         "Pillow's on every format, damaged by seeded mutations "
                         "(tests/images/purge_fuzz.py); jpeg-damage: purge's JPEG verdict against "
                         "Pillow's on the damaged corpus of tests/images/jpeg_damage.py; "
                         "crop-look: a second look for cropped copies, scored on the "
                         "near-edits tree; pillow-tests: purge against Pillow on Pillow's "
                         "own test images (--pillow-tests)")
    ap.add_argument("--pillow-tests", type=Path, default=None,
                    help="pillow-tests: the Tests/images folder of Pillow's unpacked sdist")
    ap.add_argument("--damage-scale", type=int, default=1,
                    help="jpeg-damage: 1 for the whole corpus, n to sample about 1/n")
    ap.add_argument("--fuzz-instances", type=int, default=3,
                    help="purge-fuzz: seeded instances of each mutation of each file")
    ap.add_argument("--fuzz-sizes", default="61x47,901x677",
                    help="purge-fuzz: sizes of the valid files, WxH,WxH")
    ap.add_argument("--originals", type=int, default=40,
                    help="scenes in the near-edits tree, each with every edit (0: skip)")
    args = ap.parse_args()
    if args.only == "near-edits":
        from weaklabel.config import resolve_workers as _rw

        res = near_edits_bench(args.dir.parent / f"edits{args.originals}", args.originals,
                               args.size, args.threshold, _rw(args.workers))
        out = Path("bench/out/images_edits.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
        return
    if args.only == "near-measures":
        from weaklabel.config import resolve_workers as _rw

        generate(args.dir, args.posts, args.size, _rw(args.workers))
        res = near_measures_bench(args.dir.parent / f"edits{args.originals}", args.originals,
                                  args.size, args.dir / "images", ROOT / "examples" / "data"
                                  / "images", _rw(args.workers))
        Path("bench/out/images_measures.json").write_text(json.dumps(res, indent=1))
        return
    if args.only == "crop-look":
        crop_look_bench(args.dir.parent / f"edits{args.originals}", args.originals, args.size)
        return
    if args.only == "jpeg-damage":
        jpeg_damage_bench(args.damage_scale)
        return
    if args.only == "pillow-tests":
        from weaklabel.config import resolve_workers as _rw

        if args.pillow_tests is None:
            ap.error("--only pillow-tests needs --pillow-tests DIR (Pillow's Tests/images)")
        pillow_tests_bench(args.pillow_tests.resolve(), _rw(args.workers))
        return
    if args.only == "purge-fuzz":
        purge_fuzz_bench(tuple(tuple(int(v) for v in z.split("x"))  # type: ignore[misc]
                               for z in args.fuzz_sizes.split(",")), args.fuzz_instances, 9)
        return
    if args.only == "purge":
        from weaklabel.config import resolve_workers as _rw

        w = _rw(args.workers)
        root = generate(args.dir, args.posts, args.size, w).resolve()
        purge_bench(root, rel_files(root), Truth(args.dir / "image_faults.csv",
                                                 rel_files(root)), w, args.reps)
        return
    if args.exact_tree is not None:
        from weaklabel.config import resolve_workers as _rw

        exact_bench(args.exact_tree.resolve(), _rw(args.workers), args.reps, args.evict)
        return

    import numpy as np

    from weaklabel.config import Config, ImagesConfig, resolve_workers
    from weaklabel.images.dedup import find_near_duplicates, run_dedup
    from weaklabel.images.purge import image_stage, run_purge

    workers = resolve_workers(args.workers)
    icfg = ImagesConfig(workers=workers)
    threshold = icfg.near_threshold if args.threshold is None else args.threshold
    cfg = Config(images=ImagesConfig(workers=workers, near_threshold=threshold))
    root = generate(args.dir, args.posts, args.size, workers).resolve()
    files = rel_files(root)
    truth = Truth(args.dir / "image_faults.csv", files)
    res: dict[str, Any] = {"files": len(files), "workers": workers, "threshold": threshold,
                           "planted_near": len(truth.near), "planted_exact": len(truth.exact),
                           "planted_corrupt": len(truth.corrupt)}
    # check, tool, recall, wall seconds, CPU seconds, note
    table: list[tuple[str, str, str, float | None, float | None, str]] = []

    def row(check: str, tool: str, recall: str, secs: float | None, note: str = "") -> None:
        table.append((check, tool, recall, secs, None if secs is None else LAST_CPU[0], note))

    tmp = Path(tempfile.mkdtemp(prefix="wl-bench-"))
    try:
        near_dump_rows(root, truth, cfg, threshold, workers, tmp, res, row)
        if args.only == "near-dump":
            for check, tool, recall, secs, cpu, note in table:
                print(f"| {check} | {tool} | {recall} | {secs or 0:.2f} | {cpu or 0:.2f} "
                      f"| {note} |")
            if "imagededup_cpu" in res:
                cpu_ratio = res["imagededup_cpu"] / res["wl_dedup_cpu"]
                print(f"near: imagededup / weaklabel, CPU {cpu_ratio:.2f}, wall "
                      f"{res['imagededup_s'] / res['wl_dedup_s']:.2f} (target >= 3)")
            return

        # exact duplicates
        def exact(ws: Path) -> list[list[str]]:
            plain = Config(images=ImagesConfig(workers=workers))
            run = run_dedup(*image_stage(root, ws, plain), progress=False, exact_only=True)
            return weaklabel_groups(run.outputs[0], ("exact",))

        t, g = timed(exact, tmp / "exact")
        f, n, false = truth.score_groups(g, truth.exact)
        row("exact copies", "weaklabel dedup --exact-only", f"{f}/{n}", t,
            f"{false} false merges")
        res["wl_exact_cold_s"] = t
        t, _ = timed(exact, tmp / "exact")
        row("exact copies", "weaklabel dedup --exact-only (warm)", f"{f}/{n}", t)
        res["wl_exact_warm_s"] = t
        for name, fn in (("jdupes -r", lambda: jdupes_groups(root)),
                         ("rmlint -T df", lambda: rmlint_groups(root, tmp)),
                         ("whole-file SHA-1 loop", lambda: seed_sha1_loop(root, files))):
            t, g = timed(fn)
            if g is None:
                row("exact copies", name, "-", None, "not installed")
                continue
            f, n, false = truth.score_groups(g, truth.exact)
            row("exact copies", name, f"{f}/{n}", t, f"{false} false merges")
            res[f"{name.split()[0]}_exact_s"] = t

        # corrupt files
        t, p = timed(lambda: run_purge(*image_stage(root, tmp / "purge", cfg), progress=False))
        with open(p.outputs[0], newline="", encoding="utf-8") as fh:
            flagged = {r["path"] for r in csv.DictReader(fh) if r["status"] != "ok"}
        hit = len(truth.corrupt & flagged)
        row("corrupt files", "weaklabel purge", f"{hit}/{len(truth.corrupt)}", t,
            f"{len(flagged - truth.corrupt)} valid files flagged")
        res["wl_purge_s"] = t
        t2, _ = timed(lambda: run_purge(*image_stage(root, tmp / "purge", cfg), progress=False))
        row("corrupt files", "weaklabel purge (warm)", "", t2)
        t, bad = timed(seed_load_loop, root, files)
        hit = len(truth.corrupt & bad)
        row("corrupt files", "Image.open().load() loop", f"{hit}/{len(truth.corrupt)}", t,
            f"{len(bad - truth.corrupt)} valid files flagged")
        res["seed_load_s"] = t

        # exact funnel, warm, on many files
        if args.many:
            tree = many_files(args.dir.parent / f"many{args.many}", args.many)

            def funnel(ws: Path) -> None:
                run_dedup(*image_stage(tree, ws, Config(images=ImagesConfig(workers=workers))),
                          progress=False, exact_only=True)

            t, _ = timed(funnel, tmp / "many")
            row(f"exact, {args.many:,} files", "weaklabel dedup --exact-only (cold)", "", t)
            res["many_cold_s"] = t
            t, _ = timed(funnel, tmp / "many")
            row(f"exact, {args.many:,} files", "weaklabel dedup --exact-only (warm)", "", t)
            res["many_warm_s"] = t
            if shutil.which("jdupes"):
                t, _ = timed(subprocess.run, ["jdupes", "-r", "-q", str(tree)],
                             capture_output=True, check=True)
                row(f"exact, {args.many:,} files", "jdupes -r", "", t)
                res["many_jdupes_s"] = t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if args.hashes:
        rng = np.random.default_rng(0)
        hashes = rng.integers(0, 2**63, args.hashes, dtype=np.int64).astype(np.uint64) \
            * np.uint64(2) + rng.integers(0, 2, args.hashes).astype(np.uint64)
        plant = rng.integers(0, args.hashes, args.hashes // 100)
        flips = np.uint64(1) << rng.integers(0, 64, len(plant)).astype(np.uint64)
        hashes[rng.integers(0, args.hashes, len(plant))] = hashes[plant] ^ flips
        t, comps = timed(find_near_duplicates, hashes, 6)
        row(f"near search, {args.hashes:,} hashes", "weaklabel multi-index", "", t,
            f"{len(comps)} groups")
        res["near_search_s"] = t

    print(f"{len(files)} files ({args.posts} posts, ~{args.size} px), {workers} workers, "
          f"threshold {threshold}\n")
    print(f"| {'check':24} | {'tool':38} | {'recall':>8} | {'seconds':>8} | {'CPU s':>8} "
          "| note |")
    print(f"|{'-' * 26}|{'-' * 40}|{'-' * 10}|{'-' * 10}|{'-' * 10}|------|")
    for check, tool, recall, secs, cpu, note in table:
        s = f"{secs:8.2f}" if secs is not None else f"{'-':>8}"
        c = f"{cpu:8.2f}" if cpu is not None else f"{'-':>8}"
        print(f"| {check:24} | {tool:38} | {recall:>8} | {s} | {c} | {note} |")
    ratios = {}
    if "imagededup_s" in res:
        ratios["near: imagededup time / weaklabel time (target >= 3)"] = (
            res["imagededup_s"] / res["wl_dedup_s"])
    ratios["purge: seed loop time / weaklabel time (target >= 3)"] = (
        res["seed_load_s"] / res["wl_purge_s"])
    if "jdupes_exact_s" in res:
        ratios["exact cold: weaklabel time / jdupes time (target <= 2)"] = (
            res["wl_exact_cold_s"] / res["jdupes_exact_s"])
    if "many_jdupes_s" in res:
        ratios[f"exact warm, {args.many:,} files: weaklabel / jdupes (target <= 2)"] = (
            res["many_warm_s"] / res["many_jdupes_s"])
    print()
    for k, v in ratios.items():
        print(f"{k:66} {v:6.2f}")
    res["table"] = table
    res["ratios"] = ratios
    if args.originals:
        print()
        res["near_edits"] = near_edits_bench(args.dir.parent / f"edits{args.originals}",
                                             args.originals, args.size, args.threshold,
                                             workers)
    out = Path("bench/out/images.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
