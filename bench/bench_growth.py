"""A reviewed label map as the corpus grows, at the bundled example's full size (issue 12).

Scenario ``growth``: the bundled 5,000 posts (``examples/generate.py``, seed 7) are built
with the reviewed ``examples/labelmap.yaml`` (its first use pins the clusters it names,
``labelmap.pin.json``); then a new day of 1,000 posts (another seed, new post ids) is
appended and ``build`` runs again: tokenize, Word2Vec and KMeans re-run on the grown
corpus. Scenario ``userdict``: the same first build, then user-dictionary words are added
and removed and ``build`` runs again.

Reported per scenario: whether the rebuild went on or stopped with exit 3 (and its
message), the share of the earlier seed posts that keep the same label, the share of
earlier seeds still seeds, and seed coverage before and after. Without images: only the
text stages matter here.

Usage: python bench/bench_growth.py [--posts 5000] [--new 1000] [--scenario growth userdict]
Writes bench/out/growth.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The dictionary change of scenario `userdict`: words a person adds after reading the
# tokens (compounds the generator writes) and words they take out again.
ADDED = ("립스틱추천", "네일아트추천")
REMOVED = ("꾸안꾸", "쿠션팩트", "오오티디")


def append_day(posts: Path, day: Path) -> int:
    """Append ``day``'s posts to ``posts`` under new ids (``n…``); returns the count."""
    rows = list(csv.DictReader(day.open(encoding="utf-8")))
    with posts.open("a", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        for r in rows:
            w.writerow({**r, "post_id": "n" + r["post_id"][1:]})
    return len(rows)


def edit_userdict(folder: Path) -> None:
    """Add :data:`ADDED` and take :data:`REMOVED` out of a copied user dictionary."""
    for path in folder.glob("*.txt"):
        if path.name == "stopwords.txt":
            continue
        lines = path.read_text("utf-8").splitlines()
        path.write_text("\n".join(ln for ln in lines if ln.strip() not in REMOVED) + "\n",
                        "utf-8")
    (folder / "added.txt").write_text("\n".join(ADDED) + "\n", "utf-8")


def seed_figures(before: Any, after: Any) -> dict[str, float]:
    """How the earlier seed posts fare after the rebuild."""
    seeds = before[before["source"] == "seed"].set_index("post_id")
    after = after.set_index("post_id").loc[seeds.index]
    return {
        "seeds_before": int(len(seeds)),
        "seed_share_before": round(float((before["source"] == "seed").mean()), 4),
        "same_label": round(float((after["label"] == seeds["label"]).mean()), 4),
        "still_seeded_same": round(float(((after["source"] == "seed")
                                          & (after["label"] == seeds["label"])).mean()), 4),
    }


def scenario(name: str, out: Path, n_posts: int, n_new: int, k: int) -> dict[str, Any]:
    import pandas as pd

    from weaklabel.config import load_config, with_overrides
    from weaklabel.errors import ReviewNeeded
    from weaklabel.pipeline import run_build

    sys.path.insert(0, str(ROOT / "examples"))
    from generate import generate  # type: ignore[import-not-found]

    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    generate(root / "day1", posts=n_posts, seed=7, images=False)
    posts = root / "posts.csv"
    shutil.copy(root / "day1/posts.csv", posts)
    userdict = root / "userdict"
    shutil.copytree(ROOT / "userdict", userdict)
    base = load_config(ROOT / "configs/example.yaml")
    base = replace(base, gold=None, output=None,
                   posts=replace(base.posts, image_root=None),
                   images=replace(base.images, root=None))
    cfg = with_overrides(base, {
        "workspace": str(root / "ws"), "posts.path": str(posts),
        "labelmap": str(ROOT / "examples/labelmap.yaml"), "cluster.k": k,
        "seed_keywords": str(ROOT / "examples/seed_keywords.yaml"),
        "tokenize.userdict": str(userdict), "tokenize.workers": 2})
    t0 = time.perf_counter()
    first = run_build(cfg, progress=False)
    res: dict[str, Any] = {"posts": n_posts, "first_build_s": round(time.perf_counter() - t0, 1),
                           "first_stopped": first.stopped}
    if first.stopped:
        return res
    before = pd.read_parquet(root / "ws/post_labels.parquet")
    if name == "growth":
        res["appended"] = append_day(posts, _day2(root, n_new, generate))
    else:
        edit_userdict(userdict)
        res["userdict_added"], res["userdict_removed"] = list(ADDED), list(REMOVED)
    t0 = time.perf_counter()
    try:
        grown = run_build(cfg, progress=False)
    except ReviewNeeded as exc:
        res.update(outcome="exit 3", message=str(exc))
        return res
    res["rebuild_s"] = round(time.perf_counter() - t0, 1)
    if grown.stopped:
        res.update(outcome="stopped", message=grown.stopped)
        return res
    after = pd.read_parquet(root / "ws/post_labels.parquet")
    from weaklabel.workspace import Workspace

    meta = Workspace(root / "ws").read_meta("post_labels.parquet") or {}
    res.update(outcome="continued", **seed_figures(before, after),
               seed_share_after=round(float((after["source"] == "seed").mean()), 4),
               cluster_drift=(meta.get("summary") or {}).get("cluster_drift"))
    return res


def _day2(root: Path, n_new: int, generate: Any) -> Path:
    generate(root / "day2", posts=n_new, seed=11, images=False)
    return root / "day2/posts.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--k", type=int, default=40, help="clusters (the example config's 40)")
    ap.add_argument("--scenario", nargs="+", choices=("growth", "userdict"),
                    default=["growth", "userdict"])
    ap.add_argument("--out", type=Path, default=HERE / "out/growth")
    args = ap.parse_args(argv)
    results = {}
    for name in args.scenario:
        results[name] = r = scenario(name, args.out, args.posts, args.new, args.k)
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "message"))
        if "message" in r:
            print(f"  {r['message']}")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out/growth.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
