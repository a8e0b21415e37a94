"""Text-pipeline benchmark: posts per second and peak memory per stage.

Generates N posts without images (default 100,000) with the bundled example generator,
then runs each stage as its own `weaklabel` process and reports wall time, posts per
second and peak RSS; tokenize with 1 and with 2 worker processes on the same table (each
worker's JVM warms up for about 10 s, so small tables understate the gain); Kiwi beside
Okt on the same captions (one worker each, and each tokenizer's rate on one core); a re-run of
tokenize on the unchanged table (up-to-date check) and a forced re-run served from the
token cache; and KNN prediction against a plain matrix multiply of the same vectors.

``--only propagate-100k`` times the text pipeline (tokenize, embed, cluster, propagate) on
the same generated posts with the discriminative second stage on (the defaults) and off
(seeds+KNN: sources keyword, knn, prototype, combined by the blend and calibrated on
held-out seeds as the full pipeline is), each propagate a fresh
``--force`` run, and reports what the second stage adds to the whole text pipeline, in
CPU seconds (the machine is shared; wall time is printed beside). ``--fresh`` rebuilds the
text stages in a new workspace (else an up-to-date one is reused with the CPU figures
saved when its stages last ran); ``--logistic`` adds the full pipeline with the
self-trained logistic regression, the second stage before ``nb_em``.

Usage: python bench/bench_text.py [--posts 100000] [--workers-subset N]
       [--only knn|tokenizers|propagate-100k] [--fresh] [--logistic]
Writes bench/out/text.json (text_knn.json, text_tokenizers.json, text_propagate.json with
--only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WEAKLABEL = [sys.executable, "-m", "weaklabel.cli"]


def run(args: list[str]) -> tuple[float, float]:
    """Run one weaklabel command; wall seconds and the process tree's peak RSS in MiB."""
    dt, peak, _ = run_cpu(args)
    return dt, peak


def run_cpu(args: list[str]) -> tuple[float, float, float]:
    """Run one weaklabel command; wall seconds, the process tree's peak RSS in MiB and its
    CPU seconds (user + system of every process it waited for). On a shared machine the
    CPU seconds are the figure that does not grow with the other users' load."""
    cmd = [sys.executable, "-c",
           "import resource, sys, runpy; sys.argv=['weaklabel']+sys.argv[1:];\n"
           "try:\n from weaklabel.cli import main; main()\n"
           "except SystemExit as e:\n code=e.code\n"
           "else:\n code=0\n"
           "r=max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
           "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
           "print(f'PEAK_KB {r}', file=sys.stderr); sys.exit(code)", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"weaklabel {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    peak = next((int(line.split()[1]) for line in p.stderr.splitlines()
                 if line.startswith("PEAK_KB")), 0)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, peak / 1024, cpu


def knn_compare(ws: Path) -> dict[str, float]:
    """KNN prediction against a plain matrix multiply of the same post vectors (half the
    posts train, half query), and scikit-learn's brute-force cosine KNN."""
    import numpy as np
    import pandas as pd

    from weaklabel.labels.propagate import CosineKNN, post_vectors
    from weaklabel.text.embed import load_vectors

    kv = load_vectors(ws / "vectors.kv")
    toks = pd.read_parquet(ws / "tokens.parquet")["tokens"].map(list).tolist()
    x, has = post_vectors(toks, kv)
    x = x[has]
    rng = np.random.default_rng(0)
    train = x[: len(x) // 2]
    y = rng.integers(0, 8, len(train)).astype(str)
    query = x[len(x) // 2:]
    t0 = time.perf_counter()
    for s in range(0, len(query), 4096):
        query[s:s + 4096] @ train.T
    mm = time.perf_counter() - t0
    t0 = time.perf_counter()
    CosineKNN(15).fit(train, y).predict_proba(query)
    knn = time.perf_counter() - t0
    t0 = time.perf_counter()
    from sklearn.neighbors import KNeighborsClassifier

    KNeighborsClassifier(15, metric="cosine", weights="distance", algorithm="brute",
                         n_jobs=1).fit(train, y).predict_proba(query)
    skl = time.perf_counter() - t0
    print(f"KNN {len(query)}×{len(train)}: matmul {mm:.2f}s, CosineKNN {knn:.2f}s "
          f"({knn / mm:.1f}×), sklearn cosine {skl:.2f}s ({skl / mm:.1f}×)", flush=True)
    return {"matmul_s": round(mm, 2), "cosine_knn_s": round(knn, 2),
            "ratio_to_matmul": round(knn / mm, 2), "sklearn_cosine_s": round(skl, 2),
            "train": len(train), "query": len(query)}


def second_stage_cost(ws: Path, posts: str, n: int, *, fresh: bool = False,
                      logistic: bool = False) -> dict[str, Any]:
    """Tokenize (2 workers), embed and cluster once (an up-to-date workspace is reused
    unless ``fresh``), then propagate twice with ``--force``: seeds+KNN only, and the full
    pipeline. Each stage's CPU seconds (its process tree's user + system time) and wall
    seconds (the work as its meta records it, not the process start). An up-to-date text
    stage costs nothing now, so its figures are the ones saved when it last ran
    (``<ws>.cpu.json``). The share is the full pipeline's extra propagate CPU over the
    seeds+KNN text pipeline's CPU: the machine is shared, and wall time grows with the
    other users' load while CPU time does not. With ``logistic`` the full pipeline runs a
    third time with the self-trained logistic regression as its classifier."""
    import shutil

    if fresh and ws.exists():
        shutil.rmtree(ws)
    saved_path = ws.parent / f"{ws.name}.cpu.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() and not fresh else {}
    seed_kw = str(ROOT / "examples/seed_keywords.yaml")
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    for stage, extra in (("tokenize", [posts, "-j", "2"]), ("embed", []),
                         ("cluster", ["--seed-keywords", seed_kw])):
        meta = ws / {"tokenize": "tokens.parquet", "embed": "vectors.kv",
                     "cluster": "word_clusters.parquet"}[stage]
        dt, _, used = run_cpu([stage, *extra, "-w", str(ws), "-q"])
        got = json.loads(Path(f"{meta}.meta.json").read_text())
        stamp = got.get("written_at")
        if saved.get(stage, {}).get("written_at") == stamp:  # up to date: as it last ran
            cpu[stage], wall[stage] = saved[stage]["cpu_s"], saved[stage]["wall_s"]
            note = "(up to date: as last run)"
        else:
            cpu[stage] = round(used, 1)
            wall[stage] = round(float(got.get("elapsed_s") or dt), 1)
            saved[stage] = {"written_at": stamp, "cpu_s": cpu[stage], "wall_s": wall[stage]}
            note = ""
        print(f"{stage:<28}{cpu[stage]:8.1f} CPU s {wall[stage]:8.1f}s wall {note}", flush=True)
    saved_path.write_text(json.dumps(saved, indent=2))
    labelmap = str(ws / "labelmap.draft.yaml")
    off = ws.parent / "seeds_knn.yaml"
    off.write_text("propagate:\n  sources: [keyword, knn, prototype]\n  combine: blend\n",
                   "utf-8")
    variants: list[tuple[str, list[str]]] = [("propagate seeds+KNN", ["-c", str(off)]),
                                             ("propagate full", [])]
    if logistic:  # the second stage as it was: self-trained logistic regression
        lr = ws.parent / "logistic.yaml"
        lr.write_text("propagate:\n  classifier_model: logistic\n", "utf-8")
        variants.append(("propagate full (logistic)", ["-c", str(lr)]))
    peaks = {}
    for name, cfg in variants:
        _, peak, used = run_cpu(["propagate", "-w", str(ws), "-q", "--force", "--labelmap",
                                 labelmap, *cfg])
        meta = json.loads((ws / "post_labels.parquet.meta.json").read_text())
        cpu[name], wall[name] = round(used, 1), round(float(meta["elapsed_s"]), 1)
        peaks[name] = round(peak)
        print(f"{name:<28}{cpu[name]:8.1f} CPU s {wall[name]:8.1f}s wall {peak:8.0f} MiB",
              flush=True)
    text = ("tokenize", "embed", "cluster")
    base = sum(cpu[s] for s in text) + cpu["propagate seeds+KNN"]
    extra = cpu["propagate full"] - cpu["propagate seeds+KNN"]
    share = extra / base
    base_wall = sum(wall[s] for s in text) + wall["propagate seeds+KNN"]
    extra_wall = wall["propagate full"] - wall["propagate seeds+KNN"]
    load = os.getloadavg()[0]
    if logistic:
        more = cpu["propagate full (logistic)"] - cpu["propagate seeds+KNN"]
        print(f"with the logistic classifier the second stage adds {more:.1f} CPU s "
              f"({more / base:.0%})", flush=True)
    print(f"text pipeline seeds+KNN {base:.1f} CPU s; the second stage adds {extra:.1f} CPU s "
          f"({share:.0%}) for {n} posts (wall: {base_wall:.1f}s, +{extra_wall:.1f}s, "
          f"{extra_wall / base_wall:.0%}; load average now {load:.1f})", flush=True)
    return {"stages_cpu_s": cpu, "stages_s": wall, "peak_mib": peaks,
            "pipeline_seeds_knn_cpu_s": round(base, 1),
            "second_stage_extra_cpu_s": round(extra, 1), "second_stage_share": round(share, 3),
            "pipeline_seeds_knn_s": round(base_wall, 1),
            "second_stage_extra_s": round(extra_wall, 1),
            "second_stage_share_wall": round(extra_wall / base_wall, 3),
            "load_average": round(load, 1), "posts": n,
            **({"second_stage_share_logistic": round(
                (cpu["propagate full (logistic)"] - cpu["propagate seeds+KNN"]) / base, 3)}
               if logistic else {})}


def per_core_rates(posts_csv: Path, n: int) -> dict[str, float]:
    """Captions per second of each tokenizer in this process on the first ``n`` captions
    (the same ones), after a warm-up batch: the tokenizers' own speed on one core."""
    import pandas as pd

    from weaklabel.text.tokenizer import make_tokenizer
    from weaklabel.text.userdict import load_userdict

    caps = pd.read_csv(posts_csv, dtype=str, keep_default_na=False)["caption"].head(n).tolist()
    ud = load_userdict(ROOT / "userdict")
    rates = {}
    for name in ("okt", "kiwi"):
        tok = make_tokenizer(name, ud)
        tok.tokenize(caps[:2000])  # JIT / caches warm
        t0 = time.perf_counter()
        tok.tokenize(caps)
        rates[f"{name}_posts_per_s"] = round(len(caps) / (time.perf_counter() - t0), 1)
    rates["kiwi_vs_okt"] = round(rates["kiwi_posts_per_s"] / rates["okt_posts_per_s"], 2)
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--workers-subset", type=int, default=0,
                    help="posts for the 1-vs-2-worker comparison (0: all)")
    ap.add_argument("--out", type=Path, default=HERE / "out/text")
    ap.add_argument("--only", choices=("knn", "tokenizers", "propagate-100k"), default=None,
                    help="knn: only the KNN comparison, on vectors of --knn-tokenizer tokens; "
                         "tokenizers: only Kiwi beside Okt in this process; propagate-100k: "
                         "the text pipeline with the second stage on and off")
    ap.add_argument("--fresh", action="store_true",
                    help="propagate-100k: rebuild the text stages in a new workspace")
    ap.add_argument("--logistic", action="store_true",
                    help="propagate-100k: also the full pipeline with the logistic classifier")
    ap.add_argument("--knn-tokenizer", default="regex",
                    help="tokenizer of the vectors for --only knn (the shape is what counts)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "examples"))
    from generate import generate  # type: ignore[import-not-found]

    out = args.out
    data = out / f"data{args.posts}"
    if not (data / "posts.csv").exists():
        t0 = time.perf_counter()
        generate(data, posts=args.posts, seed=11, images=False)
        print(f"generated {args.posts} posts in {time.perf_counter() - t0:.1f}s")
    posts = str(data / "posts.csv")
    res: dict[str, dict[str, float]] = {}
    if args.only == "knn":
        ws = out / f"ws_knn_{args.knn_tokenizer}"
        for cmd in (["tokenize", posts, "--tokenizer", args.knn_tokenizer], ["embed"]):
            run([*cmd, "-w", str(ws), "-q"])
        res["knn"] = knn_compare(ws)
        return _write(res, "text_knn.json")
    if args.only == "propagate-100k":
        res.update(second_stage_cost(out / "ws_propagate", posts, args.posts,
                                     fresh=args.fresh, logistic=args.logistic))
        return _write(res, "text_propagate.json")
    if args.only == "tokenizers":
        res["tokenizer_per_core"] = per_core_rates(Path(posts), args.workers_subset or 20_000)
        print(res["tokenizer_per_core"], flush=True)
        return _write(res, "text_tokenizers.json")

    def record(name: str, n: int, dt: float, peak: float) -> None:
        res[name] = {"seconds": round(dt, 2), "posts_per_s": round(n / dt, 1),
                     "peak_mib": round(peak, 1)}
        print(f"{name:<28}{dt:8.1f}s {n / dt:10.0f} posts/s {peak:8.0f} MiB", flush=True)

    # tokenize with 1 vs 2 workers on a subset (fresh workspaces, no cache)
    import pandas as pd

    args.workers_subset = args.workers_subset or args.posts
    sub = out / f"subset{args.workers_subset}.csv"
    if not sub.exists():
        pd.read_csv(posts, dtype=str, keep_default_na=False).head(
            args.workers_subset).to_csv(sub, index=False)
    for w in (1, 2):
        ws = out / f"ws_sub_w{w}"
        subprocess.run(["rm", "-rf", str(ws)], check=True)
        dt, peak = run(["tokenize", str(sub), "-w", str(ws), "-j", str(w), "-q"])
        record(f"tokenize {w} worker(s)", args.workers_subset, dt, peak)
    # Kiwi beside Okt: one worker each on the same captions, fresh workspaces (the JVM's
    # start and warm-up are part of Okt's figure, as a user pays them), then the pure
    # per-core rate of each tokenizer in this process, start-up excluded.
    ws = out / "ws_sub_kiwi"
    subprocess.run(["rm", "-rf", str(ws)], check=True)
    dt, peak = run(["tokenize", str(sub), "-w", str(ws), "-j", "1", "-q", "--tokenizer", "kiwi"])
    record("tokenize kiwi 1 worker", args.workers_subset, dt, peak)
    res["kiwi_vs_okt_1_worker"] = {"ratio": round(res["tokenize 1 worker(s)"]["seconds"] / dt,
                                                  2)}
    res["tokenizer_per_core"] = per_core_rates(sub, min(args.workers_subset, 20_000))
    print(f"  kiwi vs okt, 1 worker: {res['kiwi_vs_okt_1_worker']['ratio']}× faster; "
          f"per core in-process: {res['tokenizer_per_core']}")
    res["tokenize_speedup_2_vs_1"] = {
        "ratio": round(res["tokenize 1 worker(s)"]["seconds"]
                       / res["tokenize 2 worker(s)"]["seconds"], 2)}
    print(f"  2 workers vs 1: {res['tokenize_speedup_2_vs_1']['ratio']}×")

    ws = out / "ws"
    subprocess.run(["rm", "-rf", str(ws)], check=True)
    n = args.posts
    total = 0.0
    dt, peak = run(["tokenize", posts, "-w", str(ws), "-j", "2", "-q"])
    record("tokenize (2 workers)", n, dt, peak)
    total += dt
    dt2, peak2 = run(["tokenize", posts, "-w", str(ws), "-q"])
    record("tokenize re-run (up to date)", n, dt2, peak2)
    dt3, peak3 = run(["tokenize", posts, "-w", str(ws), "-q", "--force"])
    record("tokenize --force (cache)", n, dt3, peak3)
    res["tokenize_rerun_speedup"] = {"up_to_date": round(dt / dt2, 1),
                                     "from_cache": round(dt / dt3, 1)}
    print(f"  re-run speed-up: {res['tokenize_rerun_speedup']}")
    seed_kw = str(ROOT / "examples/seed_keywords.yaml")
    for stage, extra in (("embed", []), ("cluster", ["--seed-keywords", seed_kw])):
        dt, peak = run([stage, "-w", str(ws), "-q", *extra])
        record(stage, n, dt, peak)
        total += dt
    labelmap = ws / "labelmap.draft.yaml"
    dt, peak = run(["propagate", "-w", str(ws), "-q", "--labelmap", str(labelmap)])
    record("propagate", n, dt, peak)
    total += dt
    res["text_pipeline_total"] = {"seconds": round(total, 1)}
    print(f"text pipeline total: {total:.1f}s for {n} posts")

    res["knn"] = knn_compare(ws)
    return _write(res, "text.json")


def _write(res: dict[str, Any], name: str) -> int:
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / name).write_text(json.dumps(res, indent=2))
    print(f"→ {HERE / 'out' / name}  (cores: {os.cpu_count()}, "
          f"{resource.getpagesize()} B pages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
