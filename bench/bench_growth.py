"""A reviewed label map as the corpus grows, at the bundled example's full size (issue 12).

Scenario ``growth``: the bundled 5,000 posts (``examples/generate.py``, seed 7) are built
with the reviewed ``examples/labelmap.yaml`` (its first use pins the clusters it names,
``labelmap.pin.json``); then a new day of 1,000 posts (another seed, new post ids) is
appended and ``build`` runs again: tokenize, Word2Vec and KMeans re-run on the grown
corpus. Scenario ``userdict``: the same first build, then user-dictionary words are added
and removed and ``build`` runs again. Scenario ``otherk``: the same first build, then the
same posts and map in a fresh workspace clustered at another K with another seed (a
teammate's clone, a ``--k-range`` that picks another K): the map's first use there, found
by its recorded ``cluster_words``.

Reported per scenario: whether the rebuild went on or stopped with exit 3 (and its
message), the share of the earlier seed posts that keep the same label, the share of
earlier seeds still seeds, and seed coverage before and after. Without images: only the
text stages matter here.

Usage: python bench/bench_growth.py [--posts 5000] [--new 1000] [--scenario growth userdict otherk]
Writes bench/out/growth.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

# The scenarios' set-up is shared with tests/labels/test_growth.py; a script's own folder
# is on sys.path, so the sibling module imports as it is.
from scenarios import (
    ADDED,
    REMOVED,
    ROOT,
    append_day,
    edit_userdict,
    generate,
    growth_config,
    other_clustering,
)

HERE = Path(__file__).resolve().parent


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

    from weaklabel.errors import ReviewNeeded
    from weaklabel.pipeline import build_all

    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    posts = root / "posts.csv"
    shutil.copy(generate(root / "day1", posts=n_posts, seed=7), posts)
    userdict = root / "userdict"
    shutil.copytree(ROOT / "userdict", userdict)
    cfg = growth_config(root / "ws", posts, userdict, ROOT / "examples/labelmap.yaml",
                        k=k, workers=2)
    t0 = time.perf_counter()
    first = build_all(cfg, progress=False)
    res: dict[str, Any] = {"posts": n_posts, "first_build_s": round(time.perf_counter() - t0, 1),
                           "first_stopped": first.stopped}
    if first.stopped:
        return res
    before = pd.read_parquet(root / "ws/post_labels.parquet")
    ws = root / "ws"
    if name == "otherk":
        ws = root / "ws_otherk"
        cfg = other_clustering(cfg, ws, k=k - 5, seed=cfg.cluster.seed + 1)
        res["other_k"] = k - 5
    elif name == "growth":
        res["appended"] = append_day(posts, generate(root / "day2", posts=n_new, seed=11))
    else:
        edit_userdict(userdict)
        res["userdict_added"], res["userdict_removed"] = list(ADDED), list(REMOVED)
    t0 = time.perf_counter()
    try:
        grown = build_all(cfg, progress=False)
    except ReviewNeeded as exc:
        res.update(outcome="exit 3", message=str(exc))
        return res
    res["rebuild_s"] = round(time.perf_counter() - t0, 1)
    if grown.stopped:
        res.update(outcome="stopped", message=grown.stopped)
        return res
    after = pd.read_parquet(ws / "post_labels.parquet")
    from weaklabel.workspace import Workspace

    meta = Workspace(ws).read_meta("post_labels.parquet") or {}
    res.update(outcome="continued", **seed_figures(before, after),
               seed_share_after=round(float((after["source"] == "seed").mean()), 4),
               cluster_drift=(meta.get("summary") or {}).get("cluster_drift"))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--k", type=int, default=40, help="clusters (the example config's 40)")
    ap.add_argument("--scenario", nargs="+", choices=("growth", "userdict", "otherk"),
                    default=["growth", "userdict", "otherk"])
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
