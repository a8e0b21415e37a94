"""Benchmark the data-set stages' pure functions on synthetic tables.

    PYTHONPATH=src python bench/bench_dataset.py --images 1000000

Times, on N labelled image rows (8 labels, 2 images per post, 5 % shared images,
10 % in duplicate groups):

- ``sample_images``: resolve, purge, dedup, confidence, per-post, top-k (the whole funnel);
- ``plan_export``: stratified group-aware split and collision-free file names for the
  sampled rows (``--per-label`` per label);
- a naive top-k baseline (per-label Python sort over dict rows) on the same data.

Prints a table and writes bench/out/dataset.json. No files are exported.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def make(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    posts = n // 2
    post = np.repeat(np.arange(posts), 2)[:n]
    day = 20190101 + (post % 28)
    pairs = enumerate(zip(day, post, strict=True))
    image = np.array([f"{d}/{p}_{i % 2}.jpg" for i, (d, p) in pairs])
    shared = rng.random(n) < 0.05
    image[shared] = image[rng.integers(0, n, shared.sum())]
    labels = np.array(["eye", "lips", "face", "hair", "cosmetics", "swatch", "nails", "other"])
    lab_post = labels[rng.integers(0, len(labels), posts)]
    lab_post[rng.random(posts) < 0.3] = ""
    df = pd.DataFrame({
        "image": image, "post_id": post.astype(str), "label": lab_post[post],
        "confidence": rng.random(n).round(3),
        "likes": pd.array(rng.integers(0, 500, n), dtype="Int64"),
        "comments": pd.array(rng.integers(0, 50, n), dtype="Int64"),
    })
    uniq = pd.unique(df["image"])
    purge = pd.DataFrame({"path": uniq, "status": np.where(rng.random(len(uniq)) < 0.01,
                                                          "truncated", "ok")})
    dup_idx = rng.choice(len(uniq), size=len(uniq) // 10, replace=False)
    half = len(dup_idx) // 2
    dups = pd.DataFrame({"group": np.arange(half), "kept": uniq[dup_idx[:half]],
                         "duplicate": uniq[dup_idx[half:2 * half]]})
    return df, purge, dups


def naive_top(df, per_label: int, w: float):  # type: ignore[no-untyped-def]
    rows = df.to_dict(orient="records")
    by: dict[str, list[dict]] = {}
    for r in rows:
        if r["label"]:
            r["score"] = (r["likes"] or 0) + w * (r["comments"] or 0)
            by.setdefault(r["label"], []).append(r)
    return {k: sorted(v, key=lambda r: (-r["score"], -r["confidence"], r["image"]))[:per_label]
            for k, v in by.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--per-label", type=int, default=10_000)
    args = ap.parse_args()

    from weaklabel.dataset.export import plan_export
    from weaklabel.dataset.sample import group_map, sample_images

    t = time.perf_counter()
    df, purge, dups = make(args.images)
    gen = time.perf_counter() - t
    results = {"images": args.images, "per_label": args.per_label, "generate_s": round(gen, 2)}

    t = time.perf_counter()
    res = sample_images(df, purge=purge, duplicates=dups, per_label=args.per_label,
                        per_post=1, min_confidence=0.2)
    results["sample_s"] = round(time.perf_counter() - t, 2)
    results["sampled"] = len(res.sample)

    t = time.perf_counter()
    plan = plan_export(res.sample, fractions=(0.8, 0.1, 0.1), seed=42,
                       groups=group_map(dups))
    results["plan_export_s"] = round(time.perf_counter() - t, 2)
    results["planned"] = len(plan)

    t = time.perf_counter()
    naive_top(df, args.per_label, 2.0)
    results["naive_topk_s"] = round(time.perf_counter() - t, 2)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    for k, v in results.items():
        print(f"{k:<16}{v}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "dataset.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
