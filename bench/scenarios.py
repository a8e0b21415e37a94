"""The growth scenarios' set-up, in one home: ``bench/bench_growth.py`` runs them at the
bundled example's full size, ``tests/labels/test_growth.py`` at a small one.

A scenario is a generated corpus (``examples/generate.py``) built with a reviewed label
map, then changed: a new day of posts appended under new ids (:func:`append_day`), or
user-dictionary words added and taken out (:func:`edit_userdict`), then built again; or
the reviewed map used for the first time in a fresh workspace clustered at another K and
KMeans seed (:func:`other_clustering`: a teammate's clone, another ``--k``).
Neither the bench nor the tests are a package: both load this file by path
(:func:`load`).
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The dictionary change: words a person adds after reading the tokens (compounds the
# generator writes) and words they take out again.
ADDED = ("립스틱추천", "네일아트추천")
REMOVED = ("꾸안꾸", "쿠션팩트", "오오티디")


def load(path: Path) -> ModuleType:
    """Import a module from its file (``examples/``, ``bench/`` are not packages)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def generate(folder: Path, *, posts: int, seed: int) -> Path:
    """A generated corpus without images in ``folder``; returns its ``posts.csv``."""
    load(ROOT / "examples/generate.py").generate(folder, posts=posts, seed=seed, images=False)
    return folder / "posts.csv"


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


def growth_config(workspace: Path, posts: Path, userdict: Path, labelmap: Path, *,
                  k: int, workers: int) -> Any:
    """The example config for a text-only scenario: its image roots, gold file and
    output cleared (``with_overrides`` ignores None, so they are replaced here)."""
    from weaklabel.config import load_config, with_overrides

    base = load_config(ROOT / "configs/example.yaml")
    base = replace(base, gold=None, output=None,
                   posts=replace(base.posts, image_root=None),
                   images=replace(base.images, root=None))
    return with_overrides(base, {
        "workspace": str(workspace), "posts.path": str(posts), "labelmap": str(labelmap),
        "cluster.k": k, "seed_keywords": str(ROOT / "examples/seed_keywords.yaml"),
        "tokenize.userdict": str(userdict), "tokenize.workers": workers})


def other_clustering(cfg: Any, workspace: Path, *, k: int, seed: int) -> Any:
    """``cfg`` (from :func:`growth_config`) in a fresh ``workspace`` whose KMeans runs at
    ``k`` with ``seed``: the same words, clustered under other ids."""
    return replace(cfg, workspace=str(workspace),
                   cluster=replace(cfg.cluster, k=k, seed=seed))
