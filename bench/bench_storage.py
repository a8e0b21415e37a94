"""Object storage and the Dask engine: throughput and memory on a local S3 endpoint.

    PYTHONPATH=src python bench/bench_storage.py                      # defaults below
    PYTHONPATH=src python bench/bench_storage.py --objects 20000 --images 1200

Three measurements, on moto's S3 server (``ThreadedMotoServer``) on 127.0.0.1 and a Dask
``LocalCluster`` of 2 worker processes started here:

- **fetch**: ``--images`` small JPEGs in date folders, synced cold into a workspace
  mirror (objects/s, MB/s), then again warm (listing only: nothing changed);
- **engine**: purge (check + perceptual hash of every image, a fresh inventory) and
  tokenize (Okt over ``--posts`` captions, a fresh token cache) on the local process
  pool vs the Dask LocalCluster, same worker count; artifacts compared byte for byte;
- **inplace**: the same objects synced, purged and deduplicated cold, ``storage.read: mirror``
  (fetch into the workspace, then the folder) against ``in_place`` (list only;
  each worker reads its objects from the endpoint), on the local pool and on Dask;
- **moves**: ``--moves`` objects moved into a quarantine prefix one at a time, then
  16 at a time (``storage_quarantine.move_many``);
- **apply**: ``purge --apply`` of ``--moves`` corrupt objects on a bucket, each read
  mode, ``storage.fetch_workers`` 1 and 16 (the whole run: listing, checks, journal,
  bucket moves, mirrored files);
- **memory**: a tenth, a half and all of ``--objects`` (default 100,000) tiny objects
  in 100 date folders, each count listed, inventoried (``storage/objects.sqlite``) and
  synced cold in a fresh process whose peak RSS is reported: listing pages stream into
  SQLite and the known rows are read back in chunks, so the peak must not grow with the
  count (it follows the pages held in flight, not the bucket).

The endpoint is an in-process Python server, far slower per request than S3 itself:
the objects/s here are a floor for one client, not a property of S3.
Writes a table on stdout and bench/out/storage.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jpeg(seed: int, side: int = 96) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize(
        (side, side * 3 // 4), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def put_many(client: Any, bucket: str, items: list[tuple[str, bytes]]) -> None:
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]),
                    items))


def bench_fetch(client: Any, endpoint: str, n: int, work: Path) -> dict[str, Any]:
    from weaklabel.storage import sync_tree

    items = [(f"img/2019{3 + i % 2:02d}{1 + i % 28:02d}/i{i:06d}.jpg", jpeg(i))
             for i in range(n)]
    put_many(client, "bench", items)
    t0 = time.perf_counter()
    cold = sync_tree("s3://bench/img", work / "fetch_ws", endpoint_url=endpoint)
    t1 = time.perf_counter()
    warm = sync_tree("s3://bench/img", work / "fetch_ws", endpoint_url=endpoint)
    t2 = time.perf_counter()
    return {"objects": n, "prefixes": cold.prefixes, "cold_s": t1 - t0,
            "cold_objects_per_s": cold.fetched / (t1 - t0),
            "cold_mb_per_s": cold.bytes_fetched / 1e6 / (t1 - t0),
            "warm_s": t2 - t1, "warm_fetched": warm.fetched,
            "warm_listed_per_s": warm.listed / (t2 - t1),
            "mirror": cold.mirror}


def bench_engine(mirror: Path, posts: int, work: Path) -> dict[str, Any]:
    from conftest import make_corpus, write_posts_csv  # type: ignore[import-not-found]
    from distributed import LocalCluster

    from weaklabel.config import Config, ImagesConfig, PostsConfig, TokenizeConfig
    from weaklabel.engine import use_engine
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import image_stage, run_purge
    from weaklabel.text.tokens import run_tokenize
    from weaklabel.workspace import Workspace

    rows = make_corpus(per_topic=max(1, posts // 3))
    for r in rows:
        r.update(images="", likes="1", comments="0")
    table = write_posts_csv(work / "posts.csv", rows)
    cfg = Config(images=ImagesConfig(workers=2), posts=PostsConfig(path=str(table)),
                 tokenize=TokenizeConfig(workers=2, chunk_size=250, userdict=None))
    out: dict[str, Any] = {"images": sum(1 for _ in mirror.rglob("*.jpg")),
                           "posts": len(rows)}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        for engine in ("local", "dask"):
            ws = work / f"engine_{engine}"
            with use_engine(engine, scheduler=cluster.scheduler_address):
                t0 = time.perf_counter()
                run_purge(*image_stage(mirror, ws, cfg), progress=False)
                t1 = time.perf_counter()
                # dedup after purge: every ok image hashed (pHash), then the groups.
                run_dedup(Workspace(ws), replace(cfg, images=replace(
                    cfg.images, root=str(mirror))), progress=False)
                out[f"{engine}_dedup_s"] = time.perf_counter() - t1
                out[f"{engine}_dedup_files_per_s"] = out["images"] / out[f"{engine}_dedup_s"]
                # Two rounds: the first also starts each worker's JVM, the second is
                # the steady state (a fresh token cache both times).
                for rnd in (1, 2):
                    shutil.rmtree(ws / "cache", ignore_errors=True)
                    s = time.perf_counter()
                    run_tokenize(Workspace(ws), cfg, force=True, progress=False)
                    out[f"{engine}_tokenize_round{rnd}_s"] = time.perf_counter() - s
            out[f"{engine}_purge_s"] = t1 - t0
            out[f"{engine}_purge_files_per_s"] = out["images"] / (t1 - t0)
            out[f"{engine}_tokenize_posts_per_s"] = len(rows) / out[
                f"{engine}_tokenize_round2_s"]
    finally:
        cluster.close()
    same = all((work / "engine_local" / n).read_bytes() == (work / "engine_dask" / n)
               .read_bytes() for n in ("purge.csv", "duplicates.csv", "tokens.parquet"))
    out["artifacts_identical"] = same
    return out


def bench_inplace(endpoint: str, n: int, work: Path) -> dict[str, Any]:
    """The ``--images`` objects of the fetch part, purged and deduplicated cold in place
    (each worker reads its objects from the endpoint: one GET each, the check, SHA-1 and
    pHash from the same body), on the local pool and on the Dask LocalCluster; against
    fetching into the mirror, then purge and dedup of the folder."""
    from distributed import LocalCluster

    from weaklabel.config import Config, ImagesConfig, StorageConfig
    from weaklabel.engine import use_engine
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import run_purge
    from weaklabel.storage import stage_inputs
    from weaklabel.workspace import Workspace

    out: dict[str, Any] = {"objects": n}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        for engine in ("local", "dask"):
            for read in ("mirror", "in_place"):
                ws = work / f"inplace_{engine}_{read}"
                cfg = Config(workspace=str(ws), images=ImagesConfig(
                    root="s3://bench/img", workers=2), storage=StorageConfig(
                    endpoint_url=endpoint, read=read, cache_dir=str(ws / "cache"),
                    cache_bytes=1 << 30))
                with use_engine(engine, scheduler=cluster.scheduler_address):
                    t0 = time.perf_counter()
                    staged, _ = stage_inputs(cfg, posts=False)
                    t1 = time.perf_counter()
                    run_purge(Workspace(ws), staged, progress=False)
                    run_dedup(Workspace(ws), staged, progress=False)
                    t2 = time.perf_counter()
                out[f"{engine}_{read}_sync_s"] = t1 - t0
                out[f"{engine}_{read}_purge_s"] = t2 - t1
                out[f"{engine}_{read}_objects_per_s"] = n / (t2 - t0)
        same = all(len({(work / f"inplace_{e}_{r}" / name).read_bytes()
                        for e in ("local", "dask") for r in ("mirror", "in_place")}) == 1
                   for name in ("purge.csv", "duplicates.csv"))
        out["purge_csv_identical"] = same
    finally:
        cluster.close()
    return out


def bench_moves(client: Any, endpoint: str, n: int) -> dict[str, Any]:
    """``n`` objects moved into a quarantine prefix (copy, verify, delete) one at a
    time, then ``n`` others 16 at a time (:func:`storage_quarantine.move_many`)."""
    from weaklabel.storage_quarantine import move, move_many

    out: dict[str, Any] = {"objects": n}
    for mode in ("sequential", "parallel"):
        items = [(f"mv/{mode}/2019030{1 + i % 5}/o{i:05d}.bin", jpeg(i, 32))
                 for i in range(n)]
        put_many(client, "bench", items)
        rems = []
        for key, data in items:
            etag = client.head_object(Bucket="bench", Key=key)["ETag"].strip('"')
            rel = key.split("/", 2)[2]
            rems.append({"url": f"s3://bench/mv/{mode}", "endpoint": endpoint, "src": rel,
                         "dst": f".weaklabel-quarantine/run/{rel}", "size": len(data),
                         "etag": etag})
        t0 = time.perf_counter()
        if mode == "sequential":
            for rem in rems:
                move(rem)
            errors: list[Any] = []
        else:
            errors = [e for e in move_many(rems, workers=16) if e is not None]
        dt = time.perf_counter() - t0
        assert not errors, errors[:3]
        out[f"{mode}_s"] = dt
        out[f"{mode}_objects_per_s"] = n / dt
    return out


def bench_apply(client: Any, endpoint: str, n: int, work: Path) -> dict[str, Any]:
    """``purge --apply`` on a bucket: ``n`` corrupt objects (truncated JPEGs), synced and
    checked once, then each read mode's ``--apply`` run timed (listing, the checks before
    each move, the bucket moves with their journal and the mirrored files), with
    ``storage.fetch_workers`` 1 (one move at a time, as before) and 16. Every object
    must end in the quarantine prefix."""
    from weaklabel.config import Config, ImagesConfig, StorageConfig
    from weaklabel.images.purge import run_purge
    from weaklabel.storage import stage_inputs
    from weaklabel.workspace import Workspace

    out: dict[str, Any] = {"objects": n}
    for read in ("mirror", "in_place"):
        for workers in (1, 16):
            prefix = f"ap_{read}_{workers}"
            put_many(client, "bench", [(f"{prefix}/2019030{1 + i % 5}/b{i:05d}.jpg",
                                        jpeg(i, 48)[:300]) for i in range(n)])
            ws = work / prefix
            cfg = Config(workspace=str(ws), images=ImagesConfig(
                root=f"s3://bench/{prefix}", workers=2), storage=StorageConfig(
                endpoint_url=endpoint, read=read, cache_dir=str(ws / "cache"),
                fetch_workers=workers))
            staged, _ = stage_inputs(cfg, posts=False)
            run_purge(Workspace(ws), staged, progress=False)
            t0 = time.perf_counter()
            staged, _ = stage_inputs(cfg, posts=False)
            rep = run_purge(Workspace(ws), staged, progress=False, apply=True)
            dt = time.perf_counter() - t0
            moved = rep.summary.applied.moved if rep.summary.applied else ()
            left = client.list_objects_v2(Bucket="bench", Prefix=f"{prefix}/2019")
            assert len(moved) == n and left.get("KeyCount", 0) == 0, (len(moved), left)
            out[f"{read}_{workers}_s"] = dt
            out[f"{read}_{workers}_objects_per_s"] = n / dt
    return out


def _peak_rss_mib() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries that over from the
    forked copy of the parent (holding the whole moto bucket) across ``exec``."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync_child(url: str, ws: str, endpoint: str, since: str) -> None:
    """In a fresh process: list and inventory ``url`` (from ``since`` on), twice, and
    print the objects, the seconds and the peak RSS (MiB)."""
    from weaklabel.storage import sync_tree

    day = since or None
    t0 = time.perf_counter()
    rep = sync_tree(url, Path(ws), endpoint_url=endpoint, workers=16, since=day, fetch=False)
    t1 = time.perf_counter()
    cold_peak = _peak_rss_mib()
    # Again: the whole listing merged with every known row, nothing new to record.
    warm = sync_tree(url, Path(ws), endpoint_url=endpoint, workers=16, since=day,
                     fetch=False)
    peak = _peak_rss_mib()
    print(json.dumps({"listed": rep.listed, "prefixes": rep.prefixes, "seconds": t1 - t0,
                      "warm_seconds": time.perf_counter() - t1, "warm_listed": warm.listed,
                      "cold_peak_rss_mib": cold_peak, "peak_rss_mib": peak}))


def put_direct(bucket: str, items: Any) -> None:
    """Objects straight into the in-process moto backend the endpoint serves (100,000
    PUTs over HTTP would take longer than the measurement itself)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for key, body in items:
        backend.put_object(bucket, key, body)


def bench_memory(endpoint: str, n: int, work: Path) -> dict[str, Any]:
    """``n`` tiny objects in 100 date folders; a tenth, a half and all of them listed and
    inventoried, each in a fresh process (``--since`` picks the last days)."""
    import subprocess

    days = 100
    put_direct("bench", ((f"mem/{20190000 + i % days}/o{i:07d}.bin", b"x" * 16)
                         for i in range(n)))
    out: dict[str, Any] = {}
    for share in (10, 50, 100):
        since = str(20190000 + days - share) if share < days else ""
        res = subprocess.run(
            [sys.executable, __file__, "--child", "s3://bench/mem", str(work / f"mem{share}"),
             endpoint, since], check=True, capture_output=True, text=True, env={**os.environ})
        r = json.loads(res.stdout.strip().splitlines()[-1])
        r["listed_per_s"] = r["listed"] / r["seconds"]
        r["warm_listed_per_s"] = r["warm_listed"] / r["warm_seconds"]
        out[str(r["listed"])] = r
        print(f"memory  {r['listed']:>7} objects in {r['prefixes']} date folders listed + "
              f"inventoried in {r['seconds']:.1f}s ({r['listed_per_s']:.0f} obj/s), again "
              f"{r['warm_seconds']:.1f}s ({r['warm_listed_per_s']:.0f} obj/s); peak RSS "
              f"{r['peak_rss_mib']:.0f} MiB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--posts", type=int, default=1500)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--only", choices=("fetch", "engine", "inplace", "moves", "apply",
                                       "memory"),
                    action="append",
                    help="Run only these parts (repeatable; default: all).")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _sync_child(*args.child)
        return
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="bench")
    work = Path(tempfile.mkdtemp(prefix="bench_storage_"))
    result: dict[str, Any] = {}
    try:
        parts = args.only or ["fetch", "engine", "inplace", "moves", "apply", "memory"]
        if "fetch" in parts or "engine" in parts:
            result["fetch"] = f = bench_fetch(client, endpoint, args.images, work)
            print(f"fetch   {f['objects']} objects in {f['prefixes']} date folders: cold "
                  f"{f['cold_objects_per_s']:.0f} obj/s ({f['cold_mb_per_s']:.2f} MB/s); warm "
                  f"re-run {f['warm_s']:.2f}s, {f['warm_fetched']} fetched "
                  f"({f['warm_listed_per_s']:.0f} listed/s)", flush=True)
        if "engine" in parts:
            result["engine"] = e = bench_engine(Path(f["mirror"]), args.posts, work)
            report_engine(e)
        if "inplace" in parts:
            if "fetch" not in result:
                result["fetch"] = bench_fetch(client, endpoint, args.images, work)
            result["inplace"] = ip = bench_inplace(endpoint, args.images, work)
            for engine in ("local", "dask"):
                print(f"{engine:<6}  {args.images} objects purged + deduplicated cold: mirror "
                      f"{ip[f'{engine}_mirror_objects_per_s']:.0f} obj/s (sync "
                      f"{ip[f'{engine}_mirror_sync_s']:.1f}s + purge, dedup "
                      f"{ip[f'{engine}_mirror_purge_s']:.1f}s), in place "
                      f"{ip[f'{engine}_in_place_objects_per_s']:.0f} obj/s (list "
                      f"{ip[f'{engine}_in_place_sync_s']:.1f}s + read, purge, dedup "
                      f"{ip[f'{engine}_in_place_purge_s']:.1f}s)", flush=True)
            print(f"        purge.csv, duplicates.csv identical: {ip['purge_csv_identical']}",
                  flush=True)
        if "moves" in parts:
            result["moves"] = mv = bench_moves(client, endpoint, args.moves)
            print(f"moves   {mv['objects']} bucket moves (copy, verify, delete): one at a "
                  f"time {mv['sequential_objects_per_s']:.0f} obj/s, 16 at a time "
                  f"{mv['parallel_objects_per_s']:.0f} obj/s", flush=True)
        if "apply" in parts:
            result["apply"] = a = bench_apply(client, endpoint, args.moves, work)
            for read in ("mirror", "in_place"):
                print(f"apply   purge --apply, {a['objects']} corrupt objects, read: {read}: "
                      f"one move at a time {a[f'{read}_1_objects_per_s']:.0f} obj/s, 16 at a "
                      f"time {a[f'{read}_16_objects_per_s']:.0f} obj/s", flush=True)
        if "memory" in parts:
            result["memory"] = bench_memory(endpoint, args.objects, work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = "storage" + ("_" + "_".join(args.only) if args.only else "")
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def report_engine(e: dict[str, Any]) -> None:
    for engine in ("local", "dask"):
        print(f"{engine:<6}  purge {e[f'{engine}_purge_files_per_s']:.0f} files/s; dedup "
              f"{e[f'{engine}_dedup_files_per_s']:.0f} files/s; tokenize "
              f"{e[f'{engine}_tokenize_posts_per_s']:.0f} posts/s (first round "
              f"{e[f'{engine}_tokenize_round1_s']:.1f}s with JVM start)")
    print(f"        artifacts identical: {e['artifacts_identical']}", flush=True)


if __name__ == "__main__":
    main()
