"""Builds straight from object storage on the Dask engine, against real parts.

A real S3 endpoint over HTTP on 127.0.0.1 (moto's ``ThreadedMotoServer``) and a real Dask
``LocalCluster`` with two worker processes, both started and stopped here. The same dump
built from the bucket on Dask and from a local folder on the process pool must give the
same bytes; a re-run after one more day fetches only that day's objects.
"""

from __future__ import annotations

import io
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weaklabel.config import load_config
from weaklabel.errors import WeaklabelError
from weaklabel.pipeline import build_all

BUCKET = "photos"
DAYS = ("20190303", "20190304", "20190305")


class _Requests(logging.Handler):
    """Every request line the endpoint logs (werkzeug logs one per request)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))  # colours

    def gets(self, prefix: str) -> list[str]:
        """Object keys read (GET or HEAD, once per request) under ``prefix``."""
        out = []
        for line in self.lines:
            if '"GET /' in line or '"HEAD /' in line:
                path = re.split('"(?:GET|HEAD) ', line, maxsplit=1)[1].split(" ", 1)[0]
                path = path.split("?", 1)[0]
                key = path.split("/", 2)[2] if path.count("/") >= 2 else ""
                if key.startswith(prefix):
                    out.append(key)
        return out

    def clear(self) -> None:
        self.lines.clear()


class Served:
    """The bytes of every response body the endpoint sent: ``(method, key, bytes)``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int]] = []

    def app(self, inner: Any) -> Any:
        def counted(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            path = environ.get("PATH_INFO", "")
            key = path.split("/", 2)[2] if path.count("/") >= 2 else ""
            body = inner(environ, start_response)
            n = 0
            try:
                for chunk in body:
                    n += len(chunk)
                    yield chunk
            finally:
                if hasattr(body, "close"):
                    body.close()
                self.items.append((environ["REQUEST_METHOD"], key, n))
        return counted

    def gets(self, prefix: str) -> list[tuple[str, int]]:
        """``(key, bytes)`` of every GET of an object (key without the bucket) under
        ``prefix``, in key order."""
        return sorted((k, n) for m, k, n in list(self.items) if m == "GET"
                      and k.startswith(prefix))

    def clear(self) -> None:
        self.items.clear()


def _counting_server(port: int, served: Served) -> Any:
    """moto's ThreadedMotoServer, its WSGI app wrapped to count the bytes it sends."""
    from moto.server import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        ThreadedMotoServer,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Counting(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = served.app(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Counting(ip_address="127.0.0.1", port=port, verbose=False)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A moto S3 server on a free port of 127.0.0.1, the bucket made, credentials set;
    ``requests`` holds the request lines, ``served`` the bytes of each response."""
    import os

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = Served()
    server = _counting_server(port, served)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)  # the config names the endpoint
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    handler = _Requests()
    wz = logging.getLogger("werkzeug")
    level = wz.level
    wz.setLevel(logging.INFO)
    wz.addHandler(handler)
    try:
        yield {"endpoint": endpoint, "client": client, "requests": handler, "served": served}
    finally:
        wz.removeHandler(handler)
        wz.setLevel(level)
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A LocalCluster of two worker processes; the build joins it by its tcp:// address."""
    import dask
    from distributed import LocalCluster

    # as weaklabel's own LocalCluster: no worker profiler (engine.py says why)
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def photo(seed: int) -> bytes:
    """A small JPEG whose picture (and bytes) depend on ``seed`` only."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((48, 40), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_dump(root: Path, corpus: list[dict[str, Any]]) -> dict[str, Any]:
    """Posts spread over three days, one image each; planted faults and copies.

    Day 3 holds two byte copies of day-1 images and one truncated file.
    """
    images: dict[str, bytes] = {}
    rows = []
    for i, r in enumerate(corpus):
        day = DAYS[i % 3]
        key = f"{day}/{r['post_id']}.jpg"
        images[key] = photo(i)
        rows.append((r["post_id"], r["caption"], key, i % 50, i % 7, day))
    day1 = sorted(k for k in images if k.startswith(DAYS[0]))
    copies = {f"{DAYS[2]}/copy_a.jpg": day1[0], f"{DAYS[2]}/copy_b.jpg": day1[5]}
    for new, old in copies.items():
        images[new] = images[old]
    images[f"{DAYS[1]}/broken.jpg"] = photo(999)[:300]
    images[f"{DAYS[2]}/broken2.jpg"] = photo(998)[:300]
    for key, data in images.items():
        (root / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "images" / key).write_bytes(data)
    return {"images": images, "rows": rows, "copies": copies}


def write_posts(path: Path, rows: list[tuple[Any, ...]], days: tuple[str, ...]) -> None:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "caption", "images", "likes", "comments"])
        for pid, cap, img, likes, comments, day in rows:
            if day in days:
                w.writerow([pid, cap, img, likes, comments])


def config(tmp: Path, name: str, *, posts: str, root: str, labelmap: Path,
           extra: str = "") -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(
        f"workspace: {tmp / name}\nlabelmap: {labelmap}\noutput: {tmp / name / 'dataset'}\n"
        f"posts:\n  path: {posts}\n  image_root: {root}\n"
        f"images:\n  root: {root}\n  workers: 2\n"
        "tokenize:\n  workers: 2\n  chunk_size: 64\n"
        "embed:\n  vector_size: 24\n  epochs: 5\n  min_count: 2\ncluster:\n  k: 6\n"
        "export:\n  link: copy\n  source_prefix: s3://photos/review\n" + extra,
        encoding="utf-8")
    return p


def tree(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under ``folder`` but the export's marker (its sidecar meta, with
    the time it was written)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".weaklabel-export.json"}


ARTIFACTS = ("post_labels.parquet", "image_labels.parquet", "duplicates.csv", "purge.csv",
             "sample.parquet", "tokens.parquet")


def upload(client: Any, base: Path, keys: list[str]) -> None:
    for key in keys:
        client.put_object(Bucket=BUCKET, Key=f"review/{key}",
                          Body=(base / "images" / key).read_bytes())


@pytest.mark.jvm
@pytest.mark.slow
def test_s3_on_dask_equals_local_and_a_new_day_fetches_only_itself(
        tmp_path: Path, corpus: list[dict[str, Any]], keyword_labelmap: Path,
        s3: dict[str, Any], dask_scheduler: str) -> None:
    import pandas as pd

    dump = make_dump(tmp_path / "dump", corpus)
    first_days = DAYS[:2]
    old = sorted(k for k in dump["images"] if k.split("/")[0] in first_days)
    new = sorted(k for k in dump["images"] if k.split("/")[0] == DAYS[2])
    client, reqs = s3["client"], s3["requests"]
    upload(client, tmp_path / "dump", old)
    posts2 = tmp_path / "posts2.csv"
    write_posts(posts2, dump["rows"], first_days)
    client.put_object(Bucket=BUCKET, Key="tables/posts.csv", Body=posts2.read_bytes())

    # The local build: a folder holding the first two days, the local process pool.
    local_root = tmp_path / "local_images"
    for key in old:
        (local_root / key).parent.mkdir(parents=True, exist_ok=True)
        (local_root / key).write_bytes(dump["images"][key])
    local = build_all(load_config(config(tmp_path, "local", posts=str(posts2),
                                         root=str(local_root), labelmap=keyword_labelmap)),
                      progress=False)
    assert local.stopped is None

    # The same dump from the bucket, per-partition work on the Dask cluster.
    remote_cfg = config(
        tmp_path, "remote", posts=f"s3://{BUCKET}/tables/posts.csv",
        root=f"s3://{BUCKET}/review", labelmap=keyword_labelmap,
        extra=f"storage:\n  endpoint_url: {s3['endpoint']}\n"
              f"engine:\n  name: dask\n  scheduler: {dask_scheduler}\n")
    reqs.clear()
    remote = build_all(load_config(remote_cfg), progress=False)
    assert remote.stopped is None
    stages = {r.stage: r.summary for r in remote.stages}
    assert stages["fetch"].listed == len(old) and stages["fetch"].fetched == len(old)
    assert stages["fetch"].prefixes == 2  # one listing per date folder
    assert sorted(reqs.gets("review/")) == [f"review/{k}" for k in old]  # one GET each
    for name in ARTIFACTS:
        assert (tmp_path / "remote" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name
    dataset = tree(tmp_path / "remote" / "dataset")
    assert dataset == tree(tmp_path / "local" / "dataset")
    manifest = dataset["manifest.jsonl"].decode()
    assert manifest.count('"source-ref": "s3://photos/review/2019030') == \
        len(manifest.splitlines()) > 0
    purge = pd.read_csv(tmp_path / "remote" / "purge.csv")
    assert f"{DAYS[1]}/broken.jpg" in set(purge["path"])

    # One more day: only its objects are fetched, and its copies of day-1 images are found.
    upload(client, tmp_path / "dump", new)
    posts3 = tmp_path / "posts3.csv"
    write_posts(posts3, dump["rows"], DAYS)
    client.put_object(Bucket=BUCKET, Key="tables/posts.csv", Body=posts3.read_bytes())
    reqs.clear()
    again = build_all(load_config(remote_cfg), progress=False)
    assert again.stopped is None
    fetched = sorted(reqs.gets("review/"))
    assert fetched == [f"review/{k}" for k in new]
    summary = {r.stage: r.summary for r in again.stages}["fetch"]
    assert summary.fetched == len(new) and summary.listed == len(old) + len(new)
    dups = pd.read_csv(tmp_path / "remote" / "duplicates.csv")
    exact = {frozenset((r.kept, r.duplicate)) for r in dups.itertuples() if r.kind == "exact"}
    for copy, original in dump["copies"].items():  # a new day's copy of an old day's image
        assert frozenset((copy, original)) in exact, (copy, original, exact)
    labels = pd.read_parquet(tmp_path / "remote" / "image_labels.parquet")
    assert set(new) - {f"{DAYS[2]}/broken2.jpg"} <= set(labels["image"]) | set(
        dump["copies"])


@pytest.mark.slow
def test_since_lists_only_days_from_then_and_keeps_older_ones(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage import sync_tree

    client = s3["client"]
    for day in DAYS:
        client.put_object(Bucket=BUCKET, Key=f"since/{day}/a.jpg", Body=photo(int(day)))
    url = f"s3://{BUCKET}/since"
    first = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (first.prefixes, first.listed, first.fetched) == (3, 3, 3)
    client.put_object(Bucket=BUCKET, Key=f"since/{DAYS[2]}/b.jpg", Body=photo(5))
    client.put_object(Bucket=BUCKET, Key=f"since/{DAYS[0]}/late.jpg", Body=photo(6))
    later = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"], since=DAYS[2])
    assert (later.prefixes, later.listed, later.fetched, later.removed) == (1, 2, 1, 0)
    mirror = Path(later.mirror)
    assert sorted(tree(mirror)) == sorted(f"{d}/a.jpg" for d in DAYS) + [f"{DAYS[2]}/b.jpg"]
    # A changed object (new ETag) is fetched again; a deleted one leaves the mirror.
    client.put_object(Bucket=BUCKET, Key=f"since/{DAYS[2]}/a.jpg", Body=photo(7))
    client.delete_object(Bucket=BUCKET, Key=f"since/{DAYS[2]}/b.jpg")
    third = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"], since=DAYS[2])
    assert (third.fetched, third.removed) == (1, 1)
    assert (mirror / DAYS[2] / "a.jpg").read_bytes() == photo(7)
    assert not (mirror / DAYS[2] / "b.jpg").exists()
    assert (mirror / DAYS[0] / "a.jpg").is_file()  # an unlisted old day stays known
    # A day folder deleted whole is gone from the mirror too (not one listed empty:
    # the bucket lists no such prefix at all); an older day before ``since`` stays.
    for key in (f"since/{DAYS[1]}/a.jpg",):
        client.delete_object(Bucket=BUCKET, Key=key)
    fourth = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"], since=DAYS[1])
    assert fourth.removed == 1
    assert not (mirror / DAYS[1] / "a.jpg").exists()
    assert (mirror / DAYS[0] / "a.jpg").is_file()
    fifth = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (fifth.removed, fifth.fetched) == (0, 1)  # the late file of the first day
    assert sorted(tree(mirror)) == [f"{DAYS[0]}/a.jpg", f"{DAYS[0]}/late.jpg",
                                    f"{DAYS[2]}/a.jpg"]


@pytest.mark.slow
def test_keys_that_cannot_be_paths_are_rejected_not_fetched(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage import sync_tree

    client = s3["client"]
    client.put_object(Bucket=BUCKET, Key="hostile/20190303/../../escape.jpg", Body=b"x")
    client.put_object(Bucket=BUCKET, Key="hostile/20190303/ok.jpg", Body=photo(1))
    rep = sync_tree(f"s3://{BUCKET}/hostile", tmp_path, endpoint_url=s3["endpoint"])
    assert rep.fetched == 1 and rep.rejected == 1
    assert not list(tmp_path.rglob("escape.jpg"))


@pytest.mark.slow
def test_a_key_no_file_system_takes_is_a_reject_and_the_rest_is_fetched(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage import sync_tree

    client = s3["client"]
    url = f"s3://{BUCKET}/longkey"
    long = "20190303/" + "a" * 300 + ".jpg"  # S3 takes 1,024 bytes a key
    client.put_object(Bucket=BUCKET, Key=f"longkey/{long}", Body=b"x")
    client.put_object(Bucket=BUCKET, Key="longkey/20190303/x/y.jpg", Body=photo(2))
    client.put_object(Bucket=BUCKET, Key="longkey/20190303/ok.jpg", Body=photo(1))
    rep = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (rep.fetched, rep.rejected) == (2, 1)
    assert rep.rejects[0][0] == long and "longer than" in rep.rejects[0][1]
    # A later day adds an object named like a folder the mirror holds: the two cannot
    # both be files, so one is a reject, as on a first sync, and the sync goes on.
    client.put_object(Bucket=BUCKET, Key="longkey/20190303/x", Body=photo(3))
    client.put_object(Bucket=BUCKET, Key="longkey/20190304/new.jpg", Body=photo(4))
    again = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    fresh = sync_tree(url, tmp_path / "fresh", endpoint_url=s3["endpoint"])
    mirror, other = Path(again.mirror), Path(fresh.mirror)
    assert tree(mirror) == tree(other)
    assert not list(mirror.rglob("*.part"))  # no temporary left where a folder was
    assert (mirror / "20190304" / "new.jpg").read_bytes() == photo(4)
    assert sorted(k for k, _ in again.rejects) == sorted(k for k, _ in fresh.rejects)
    assert sync_tree(url, tmp_path, endpoint_url=s3["endpoint"]).fetched == 0


@pytest.mark.slow
def test_a_missing_bucket_is_one_error(tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage import sync_tree

    with pytest.raises(WeaklabelError, match="no such bucket or prefix"):
        sync_tree("s3://no-such-bucket/x", tmp_path, endpoint_url=s3["endpoint"])


def test_bad_storage_and_engine_settings_name_the_key(tmp_path: Path) -> None:
    from weaklabel.config import Config, EngineConfig, StorageConfig, validate_config

    with pytest.raises(WeaklabelError, match="storage.since must be a day as YYYYMMDD"):
        validate_config(Config(storage=StorageConfig(since="2019-03-03")))
    with pytest.raises(WeaklabelError, match="engine.scheduler must be tcp://HOST:8786"):
        validate_config(Config(engine=EngineConfig(name="dask", scheduler="8786")))
    with pytest.raises(WeaklabelError, match="engine.name must be one of"):
        validate_config(Config(engine=EngineConfig(name="spark")))


def test_unreachable_scheduler_is_one_error() -> None:
    from weaklabel.engine import use_engine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WeaklabelError, match="cannot reach the Dask scheduler"), \
            use_engine("dask", scheduler=f"tcp://127.0.0.1:{port}"):
        pass


# --- s3:// for the single-stage commands and the manifest's target ------------------------

LABELMAP = """\
version: 1
labels:
  lips:
    name: 입술
    clusters: [0]
  other:
    name: 기타
    background: true
    clusters: [1]
"""


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from weaklabel.cli import app

    return CliRunner().invoke(app, list(args))


def _small_dump(base: Path) -> dict[str, bytes]:
    """Two days of photos, a byte copy across the days and a truncated file."""
    images = {f"{d}/p{i}.jpg": photo(100 + i) for i, d in enumerate(DAYS[:2] * 3)}
    images[f"{DAYS[1]}/copy.jpg"] = images[f"{DAYS[0]}/p0.jpg"]
    images[f"{DAYS[0]}/broken.jpg"] = photo(7)[:200]
    for key, data in images.items():
        (base / key).parent.mkdir(parents=True, exist_ok=True)
        (base / key).write_bytes(data)
    return images


def _put_tree(client: Any, prefix: str, images: dict[str, bytes]) -> None:
    for key, data in images.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data)


@pytest.mark.slow
def test_purge_dedup_and_export_take_s3_urls_and_match_the_local_run(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import pandas as pd

    from weaklabel.contracts import IMAGE_LABELS, POST_LABELS, POSTS
    from weaklabel.workspace import Workspace

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])  # the standard way
    local_root = tmp_path / "local_images"
    images = _small_dump(local_root)
    _put_tree(s3["client"], "cli", images)
    posts = tmp_path / "posts.csv"
    keys = sorted(images)
    posts.write_text("post_id,caption,images,likes,comments\n" + "".join(
        f"q{i},립스틱 {i},{k},{i},0\n" for i, k in enumerate(keys)), encoding="utf-8")
    s3["client"].put_object(Bucket=BUCKET, Key="tables/cli.csv", Body=posts.read_bytes())
    lm = tmp_path / "labelmap.yaml"
    lm.write_text(LABELMAP, encoding="utf-8")

    for name, root, table in (("local", str(local_root), str(posts)),
                              ("remote", f"s3://{BUCKET}/cli", f"s3://{BUCKET}/tables/cli.csv")):
        ws = tmp_path / name
        r = _cli("purge", root, "-w", str(ws), "-q")
        assert r.exit_code == 0, r.output
        r = _cli("dedup", root, "-w", str(ws), "--posts", table, "--exact-only", "-q")
        assert r.exit_code == 0, r.output
        # Labels as propagate writes them, so sample and export have something to take.
        w = Workspace(ws)
        ids = [f"q{i}" for i in range(len(keys))]
        w.write("posts.parquet", pd.DataFrame({
            "post_id": ids, "caption": ids, "likes": pd.array(range(len(keys)), dtype="Int64"),
            "comments": pd.array([0] * len(keys), dtype="Int64"),
            "created_at": ["2019-03-03 10:00:00"] * len(keys)}), POSTS)
        w.write("post_labels.parquet", pd.DataFrame({
            "post_id": ids, "label": ["lips"] * len(keys), "confidence": [0.9] * len(keys),
            "source": ["seed"] * len(keys), "evidence": [""] * len(keys),
            "top_label": ["lips"] * len(keys)}), POST_LABELS)
        w.write("image_labels.parquet", pd.DataFrame({
            "post_id": ids, "image": keys, "label": ["lips"] * len(keys),
            "confidence": [0.9] * len(keys), "likes": pd.array(range(len(keys)), dtype="Int64"),
            "comments": pd.array([0] * len(keys), dtype="Int64")}), IMAGE_LABELS)
        r = _cli("sample", "-w", str(ws), "-l", str(lm), "-q")
        assert r.exit_code == 0, r.output
        extra = (["--manifest-url", f"s3://{BUCKET}/exports/{name}/manifest.jsonl"]
                 if name == "remote" else ["--source-prefix", f"s3://{BUCKET}/cli"])
        r = _cli("export", str(tmp_path / f"{name}_out"), "-w", str(ws), "-l", str(lm),
                 "--image-root", root, "--link", "copy", *extra, "-q")
        assert r.exit_code == 0, r.output

    for artifact in ("purge.csv", "duplicates.csv", "sample.parquet"):
        assert (tmp_path / "remote" / artifact).read_bytes() == \
            (tmp_path / "local" / artifact).read_bytes(), artifact
    dups = pd.read_csv(tmp_path / "remote" / "duplicates.csv")
    assert {(r.kept, r.duplicate) for r in dups.itertuples()} == \
        {(f"{DAYS[1]}/copy.jpg", f"{DAYS[0]}/p0.jpg")}  # the more engaging post's copy kept
    assert f"{DAYS[0]}/broken.jpg" in set(pd.read_csv(tmp_path / "remote" / "purge.csv")["path"])
    assert tree(tmp_path / "remote_out") == tree(tmp_path / "local_out")
    # The manifest's object in the bucket: the exported file's bytes, refs to the originals.
    manifest = (tmp_path / "remote_out" / "manifest.jsonl").read_bytes()
    uploaded = s3["client"].get_object(Bucket=BUCKET, Key="exports/remote/manifest.jsonl")
    assert uploaded["Body"].read() == manifest
    refs = [json.loads(line)["source-ref"] for line in manifest.decode().splitlines()]
    assert refs and all(ref.startswith(f"s3://{BUCKET}/cli/2019030") for ref in refs)
    for ref in refs:  # every ref names an object that is there
        s3["client"].head_object(Bucket=BUCKET, Key=ref.split("/", 3)[3])


@pytest.mark.jvm
@pytest.mark.slow
def test_tokenize_reads_the_posts_table_from_the_bucket(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,caption,images,likes,comments\n"
                     "a,오늘의 립스틱 #데일리룩,20190303/a.jpg,3,1\n"
                     "b,네일 젤 컬러 추천,20190303/b.jpg,5,0\n", encoding="utf-8")
    s3["client"].put_object(Bucket=BUCKET, Key="tables/tok.csv", Body=posts.read_bytes())
    r = _cli("tokenize", str(posts), "-w", str(tmp_path / "local"), "-q", "-j", "1")
    assert r.exit_code == 0, r.output
    r = _cli("tokenize", f"s3://{BUCKET}/tables/tok.csv", "-w", str(tmp_path / "remote"),
             "-q", "-j", "1")
    assert r.exit_code == 0, r.output
    for name in ("tokens.parquet", "posts.parquet", "post_images.parquet"):
        assert (tmp_path / "remote" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name


def _error(r: Any) -> str:
    assert r.exit_code == 1, r.output
    # The endpoint's own request log shares the stream; the error is the one last line.
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert errors == lines[-1:], r.output
    return errors[0]


@pytest.mark.slow
def test_storage_mistakes_are_one_line_each(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    ws = str(tmp_path / "ws")
    assert "no such bucket" in _error(_cli("purge", "s3://no-such-bucket/x", "-w", ws, "-q"))
    assert "no such object; check posts.path" in _error(
        _cli("tokenize", f"s3://{BUCKET}/tables/none.csv", "-w", ws, "-q"))
    line = _error(_cli("dedup", "s3:///nobucket", "-w", ws, "-q"))
    assert "is not a storage URL" in line and "s3://BUCKET/PREFIX" in line
    # No credentials anywhere (variables, profile files, instance metadata).
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = _error(_cli("purge", f"s3://{BUCKET}/cli", "-w", ws, "-q"))
    assert "no valid AWS credentials" in line and "AWS_ACCESS_KEY_ID" in line


def test_a_missing_s3_extra_says_what_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    # fsspec made unimportable, as on an install without the extra.
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('fsspec', 's3fs'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from weaklabel.cli import main\n"
            f"sys.argv = ['weaklabel', 'purge', 's3://photos/x', '-w', {str(tmp_path)!r}]\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "Error: s3://photos/x: reading object storage needs fsspec and s3fs; install them "
        "with: pip install 'weaklabel[s3]'"]


def test_manifest_url_must_name_an_object() -> None:
    from weaklabel.config import Config, ExportConfig, validate_config

    with pytest.raises(WeaklabelError, match="export.manifest_url must name an object"):
        validate_config(Config(export=ExportConfig(manifest_url="s3://bucket/")))


# --- the quarantine in the bucket --------------------------------------------------------

QPREFIX = ".weaklabel-quarantine"


def _keys(client: Any, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            key = o["Key"]
            out[key[len(prefix):]] = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return out


@pytest.mark.slow
def test_purge_apply_on_a_bucket_quarantines_objects_and_restore_brings_them_back(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from weaklabel.images.quarantine import JOURNAL, read_journal
    from weaklabel.storage import mirror_dir

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    client, reqs = s3["client"], s3["requests"]
    images = _small_dump(tmp_path / "dump")
    _put_tree(client, "q1", images)
    url, ws = f"s3://{BUCKET}/q1", tmp_path / "ws"
    broken = f"{DAYS[0]}/broken.jpg"
    r = _cli("purge", url, "-w", str(ws), "--apply", "-q")
    assert r.exit_code == 0, r.output
    assert "quarantined 1 file(s)" in r.output
    run = read_journal(ws / "quarantine" / JOURNAL)[0]["run"]
    bucket = _keys(client, "q1/")
    assert broken not in bucket  # moved: copied, verified, then deleted
    assert bucket[f"{QPREFIX}/{run}/{broken}"] == images[broken]
    assert {k: v for k, v in bucket.items() if not k.startswith(QPREFIX)} == \
        {k: v for k, v in images.items() if k != broken}
    mirror = mirror_dir(ws, url)
    assert not (mirror / broken).exists()  # the mirror follows the bucket
    assert (ws / "quarantine" / run / broken).read_bytes() == images[broken]

    # A second run neither fetches anything nor sees the quarantine prefix as images.
    reqs.clear()
    r = _cli("purge", url, "-w", str(ws), "-q")
    assert r.exit_code == 0, r.output
    assert reqs.gets("q1/") == []
    assert broken not in set(pd.read_csv(ws / "purge.csv")["path"])
    assert not any(p.startswith(QPREFIX) for p in pd.read_csv(ws / "purge.csv")["path"])

    r = _cli("restore", "-w", str(ws), "-q")
    assert r.exit_code == 0, r.output
    assert "restored 1 file(s)" in r.output
    assert _keys(client, "q1/") == images  # back at its key, the quarantine prefix empty
    assert (mirror / broken).read_bytes() == images[broken]
    reqs.clear()
    r = _cli("purge", url, "-w", str(ws), "-q")
    assert r.exit_code == 0, r.output
    assert reqs.gets("q1/") == []  # the restored object is known again: not fetched
    assert broken in set(pd.read_csv(ws / "purge.csv")["path"])

    # Restore never overwrites an object that reappeared at the original key.
    r = _cli("purge", url, "-w", str(ws), "--apply", "-q")
    assert r.exit_code == 0, r.output
    client.put_object(Bucket=BUCKET, Key=f"q1/{broken}", Body=b"someone else's")
    r = _cli("restore", "-w", str(ws), "-q")
    assert r.exit_code == 1
    assert "an object is back at" in r.output
    assert client.get_object(Bucket=BUCKET, Key=f"q1/{broken}")["Body"].read() == \
        b"someone else's"
    run2 = [x for x in read_journal(ws / "quarantine" / JOURNAL)
            if x.get("action") == "quarantine"][-1]["run"]
    assert _keys(client, f"q1/{QPREFIX}/")[f"{run2}/{broken}"] == images[broken]


@pytest.mark.slow
def test_an_interrupted_bucket_move_is_settled_by_the_next_run(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from weaklabel.images.quarantine import JOURNAL, Journal, read_journal
    from weaklabel.storage import mirror_dir

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    client = s3["client"]
    images = _small_dump(tmp_path / "dump")
    images[f"{DAYS[1]}/broken2.jpg"] = photo(8)[:150]
    _put_tree(client, "q2", images)
    url, ws = f"s3://{BUCKET}/q2", tmp_path / "ws"
    jpath = ws / "quarantine" / JOURNAL

    # kill -9 while both moves (on the pool, in parallel) wait between their journal
    # intents and the moves: two intents open at once, both settled by the next run.
    code = ("import sys\nfrom weaklabel.cli import main\n"
            f"sys.argv = ['weaklabel', 'purge', {url!r}, '-w', {str(ws)!r}, '--apply', '-q']\n"
            "main()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={
        **os.environ, "WEAKLABEL_MOVE_DELAY": "30"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (jpath.exists() and jpath.read_text().count('"intent"') == 2):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_keys(client, f"q2/{QPREFIX}/")) == 0  # killed before the object moved

    # A crash between the bucket's copy and its delete: the copy verified, the original
    # and its mirrored file still there.
    mirror = mirror_dir(ws, url)
    half = f"{DAYS[1]}/broken2.jpg"
    run = "purge-19990101T000000"
    client.copy_object(Bucket=BUCKET, Key=f"q2/{QPREFIX}/{run}/{half}",
                       CopySource={"Bucket": BUCKET, "Key": f"q2/{half}"})
    etag = client.head_object(Bucket=BUCKET, Key=f"q2/{half}")["ETag"].strip('"')
    import hashlib

    j = Journal(jpath)
    j.write({"op": "intent", "id": f"{run}:0", "action": "quarantine", "run": run,
             "stage": "purge", "src": os.path.realpath(mirror / half),
             "dst": os.path.join(os.path.realpath(ws / "quarantine"), run, half), "rel": half,
             "root": os.path.realpath(mirror), "size": len(images[half]),
             "mtime_ns": (mirror / half).stat().st_mtime_ns,
             "sha1": hashlib.sha1(images[half]).hexdigest(), "reason": "truncated",
             "remote": {"url": url, "endpoint": s3["endpoint"], "src": half,
                        "dst": f"{QPREFIX}/{run}/{half}", "size": len(images[half]),
                        "etag": etag}})
    j.close()

    r = _cli("purge", url, "-w", str(ws), "--apply", "-q")
    assert r.exit_code == 0, r.output
    records = read_journal(jpath)
    opened = {x["id"] for x in records if x["op"] == "intent"}
    settled = {x["id"] for x in records if x["op"] in ("done", "abort")}
    assert opened == settled  # every step closed
    assert [x["op"] for x in records if x["id"] == f"{run}:0"] == ["intent", "done"]
    bucket = _keys(client, "q2/")
    assert f"{DAYS[0]}/broken.jpg" not in bucket and half not in bucket
    quarantined = {k.split("/", 2)[2] for k in bucket if k.startswith(QPREFIX)}
    assert quarantined == {f"{DAYS[0]}/broken.jpg", half}
    assert not (mirror / half).exists() and (ws / "quarantine" / run / half).is_file()

    r = _cli("restore", "-w", str(ws), "-q")
    assert r.exit_code == 0, r.output
    assert _keys(client, "q2/") == images
    assert (mirror / half).read_bytes() == images[half]


@pytest.mark.slow
def test_a_prefix_is_synced_page_by_page_against_the_known_rows(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage import PAGE, sync_tree

    client, reqs = s3["client"], s3["requests"]
    n = 2 * PAGE + 500  # three listing pages in one date folder
    bodies = {f"{DAYS[0]}/o{i:05d}.bin": f"v1 {i}".encode() for i in range(n)}
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: client.put_object(Bucket=BUCKET, Key=f"paged/{kv[0]}",
                                                 Body=kv[1]), bodies.items()))
    url = f"s3://{BUCKET}/paged"
    reqs.clear()
    first = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (first.listed, first.fetched, first.removed) == (n, n, 0)
    lists = [ln for ln in reqs.lines if "list-type=2" in ln and "prefix=paged/2019" in ln]
    assert len(lists) == 3  # one request per page, never one listing of all
    # Changes on every page, at both ends of a page and past the last known key.
    keys = sorted(bodies)
    deleted = [keys[0], keys[PAGE - 1], keys[PAGE], keys[-1]]
    changed = [keys[1], keys[PAGE + 1], keys[2 * PAGE + 3]]
    added = [f"{DAYS[0]}/o{n + 7:05d}.bin", f"{DAYS[0]}/o{PAGE:05d}a.bin"]
    for key in deleted:
        client.delete_object(Bucket=BUCKET, Key=f"paged/{key}")
        del bodies[key]
    for key in changed + added:
        bodies[key] = f"v2 {key}".encode()
        client.put_object(Bucket=BUCKET, Key=f"paged/{key}", Body=bodies[key])
    again = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (again.listed, again.fetched, again.removed) == \
        (len(bodies), len(changed) + len(added), len(deleted))
    assert tree(Path(again.mirror)) == bodies
    warm = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert (warm.fetched, warm.removed) == (0, 0)


@pytest.mark.slow
def test_an_inventory_only_sync_records_objects_and_a_later_sync_fetches_them(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    import sqlite3

    from weaklabel.storage import STATE, sync_tree

    client, reqs = s3["client"], s3["requests"]
    for i, day in enumerate(DAYS):
        client.put_object(Bucket=BUCKET, Key=f"inv/{day}/a.jpg", Body=photo(40 + i))
    url = f"s3://{BUCKET}/inv"
    reqs.clear()
    rep = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"], fetch=False)
    assert (rep.listed, rep.fetched) == (3, 0) and reqs.gets("inv/") == []
    with sqlite3.connect(tmp_path / STATE) as db:
        rows = db.execute("SELECT key, size FROM objects WHERE url=? ORDER BY key",
                          (url,)).fetchall()
    assert rows == [(f"{d}/a.jpg", len(photo(40 + i))) for i, d in enumerate(DAYS)]
    full = sync_tree(url, tmp_path, endpoint_url=s3["endpoint"])
    assert full.fetched == 3 and sorted(reqs.gets("inv/")) == [f"inv/{d}/a.jpg" for d in DAYS]


def big_jpeg(seed: int) -> bytes:
    """A JPEG of noise larger than the first ranged read (HEAD_BYTES)."""
    import numpy as np
    from PIL import Image

    from weaklabel.storage_inplace import HEAD_BYTES

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (320, 400, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=95)
    assert len(buf.getvalue()) > 2 * HEAD_BYTES
    return buf.getvalue()


def bomb_png(seed: int) -> bytes:
    """A PNG whose header claims 20000 x 20000 pixels (over Pillow's limit), with more
    data behind it than the first ranged read."""
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    from weaklabel.storage_inplace import HEAD_BYTES

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (240, 240, 3), dtype=np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", 20000, 20000) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    assert len(data) > 2 * HEAD_BYTES
    return bytes(data)


def _cache_total(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith("."))


@pytest.mark.jvm
@pytest.mark.slow
def test_in_place_on_dask_reads_each_object_once_and_equals_the_local_build(
        tmp_path: Path, corpus: list[dict[str, Any]], keyword_labelmap: Path,
        s3: dict[str, Any], dask_scheduler: str) -> None:
    """Dask workers read the objects from the bucket themselves (no file of the image
    root on the driver's disk but the sampled images export copies): every object's
    bytes are sent once, a large one in two ranged reads, a header-decided one only its
    head; a re-run and a fresh workspace on a warm cache fetch nothing; the artifacts
    are the local build's bytes."""
    import pandas as pd

    from weaklabel.storage import mirror_dir
    from weaklabel.storage_inplace import HEAD_BYTES

    dump = make_dump(tmp_path / "dump", corpus)
    images = dict(dump["images"])
    big, bomb = f"{DAYS[0]}/big.jpg", f"{DAYS[1]}/bomb.png"
    images[big], images[bomb] = big_jpeg(1), bomb_png(2)
    client, served = s3["client"], s3["served"]
    local_root = tmp_path / "local_images"
    for key, data in images.items():
        (local_root / key).parent.mkdir(parents=True, exist_ok=True)
        (local_root / key).write_bytes(data)
        client.put_object(Bucket=BUCKET, Key=f"inplace/{key}", Body=data)
    posts = tmp_path / "posts.csv"
    write_posts(posts, dump["rows"], DAYS)
    client.put_object(Bucket=BUCKET, Key="tables/inplace.csv", Body=posts.read_bytes())

    local = build_all(load_config(config(tmp_path, "local", posts=str(posts),
                                         root=str(local_root), labelmap=keyword_labelmap)),
                      progress=False)
    assert local.stopped is None

    cache = tmp_path / "cache"

    def remote(name: str, cache_bytes: int = 1 << 30, cache: Path = cache) -> Path:
        return config(tmp_path, name, posts=f"s3://{BUCKET}/tables/inplace.csv",
                      root=f"s3://{BUCKET}/inplace", labelmap=keyword_labelmap,
                      extra=f"storage:\n  endpoint_url: {s3['endpoint']}\n  read: in_place\n"
                            f"  cache_dir: {cache}\n  cache_bytes: {cache_bytes}\n"
                            f"engine:\n  name: dask\n  scheduler: {dask_scheduler}\n")

    served.clear()
    first = build_all(load_config(remote("remote")), progress=False)
    assert first.stopped is None
    got: dict[str, list[int]] = {}
    for key, n in served.gets("inplace/"):
        got.setdefault(key.split("/", 1)[1], []).append(n)
    want = {k: [len(v)] for k, v in images.items()}
    want[big] = sorted([HEAD_BYTES, len(images[big]) - HEAD_BYTES])  # head, then the rest
    want[bomb] = [HEAD_BYTES]  # the header decided: the rest never read
    assert {k: sorted(v) for k, v in got.items()} == want
    for name in ARTIFACTS:
        assert (tmp_path / "remote" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name
    assert tree(tmp_path / "remote" / "dataset") == tree(tmp_path / "local" / "dataset")
    purge = pd.read_csv(tmp_path / "remote" / "purge.csv").set_index("path")
    assert purge.loc[bomb, "status"] == "decompression_bomb"
    assert purge.loc[big, "status"] == "ok"
    # The driver holds only the sampled images, as files, not the image root.
    sampled = set(pd.read_parquet(tmp_path / "remote" / "sample.parquet")["image"])
    mirror = mirror_dir(tmp_path / "remote", f"s3://{BUCKET}/inplace")
    on_disk = {p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file()}
    assert on_disk == sampled and len(on_disk) < len(images)
    held = _cache_total(cache)
    assert held == sum(len(v) + 20 for k, v in images.items() if k != bomb)

    # A re-run: the inventory knows every object, nothing is read.
    served.clear()
    again = build_all(load_config(remote("remote")), progress=False)
    assert again.stopped is None
    assert served.gets("inplace/") == []
    # A fresh workspace on the warm cache: only the head the cache never holds.
    served.clear()
    fresh = build_all(load_config(remote("fresh")), progress=False)
    assert fresh.stopped is None
    assert served.gets("inplace/") == [(f"inplace/{bomb}", HEAD_BYTES)]
    for name in ARTIFACTS:
        assert (tmp_path / "fresh" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name

    # A bound smaller than the images: entries are evicted, the bound holds, and each
    # object is still read once (purge alone, in a fresh workspace and cache).
    from weaklabel.engine import use_engine
    from weaklabel.images.purge import run_purge
    from weaklabel.storage import stage_inputs
    from weaklabel.workspace import Workspace

    bound = 8 * len(images[f"{DAYS[0]}/{corpus[0]['post_id']}.jpg"]) + len(images[big])
    cache = tmp_path / "small_cache"
    cfg, _ = stage_inputs(load_config(remote("small", bound, cache)), posts=False)
    served.clear()
    with use_engine("dask", scheduler=dask_scheduler):
        run_purge(Workspace(Path(cfg.workspace)), cfg, progress=False)
    assert 0 < _cache_total(cache) <= bound
    assert len(list(cache.iterdir())) < len(images)  # some were evicted
    assert sorted(k for k, _ in served.gets("inplace/")) == sorted(
        [f"inplace/{k}" for k in images] + [f"inplace/{big}"])
    assert (tmp_path / "small" / "purge.csv").read_bytes() == \
        (tmp_path / "local" / "purge.csv").read_bytes()


@pytest.mark.slow
def test_bucket_moves_in_parallel_are_journalled_first_and_all_verified(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from weaklabel.images.quarantine import Journal, read_journal
    from weaklabel.storage_quarantine import move_many

    client = s3["client"]
    url = f"s3://{BUCKET}/par"
    bodies = {f"{DAYS[i % 3]}/o{i:03d}.bin": f"body {i}".encode() * (1 + i % 5)
              for i in range(60)}
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda kv: client.put_object(Bucket=BUCKET, Key=f"par/{kv[0]}",
                                                 Body=kv[1]), bodies.items()))
    taken = f"{DAYS[0]}/o000.bin"  # something already sits at this one's destination
    client.put_object(Bucket=BUCKET, Key=f"par/{QPREFIX}/run/{taken}", Body=b"other")
    rems = []
    for key, data in sorted(bodies.items()):
        etag = client.head_object(Bucket=BUCKET, Key=f"par/{key}")["ETag"].strip('"')
        rems.append({"url": url, "endpoint": s3["endpoint"], "src": key,
                     "dst": f"{QPREFIX}/run/{key}", "size": len(data), "etag": etag})
    journal = Journal(tmp_path / "journal.jsonl")
    open_now: set[int] = set()
    most = 0

    def before(i: int) -> None:
        nonlocal most
        journal.write({"op": "intent", "id": i})
        open_now.add(i)
        most = max(most, len(open_now))

    def after(i: int, exc: BaseException | None) -> None:
        journal.write({"op": "abort" if exc else "done", "id": i})
        open_now.discard(i)

    errors = move_many(rems, workers=8, before=before, after=after)
    journal.close()
    records = read_journal(tmp_path / "journal.jsonl")
    first = {}
    for n, r in enumerate(records):
        first.setdefault((r["id"], r["op"]), n)
    for i in range(len(rems)):  # each move's intent is on disk before its end
        end = first.get((i, "done"), first.get((i, "abort")))
        assert end is not None and first[(i, "intent")] < end
    assert 1 < most <= 8  # moves overlapped, never more than the pool
    failed = [rems[i]["src"] for i, e in enumerate(errors) if e is not None]
    assert failed == [taken] and "already exists" in str(errors[0])
    left = _keys(client, "par/")
    assert left[taken] == bodies[taken] and left[f"{QPREFIX}/run/{taken}"] == b"other"
    for key, data in bodies.items():
        if key != taken:
            assert key not in left and left[f"{QPREFIX}/run/{key}"] == data


@pytest.mark.slow
def test_purge_in_place_reports_from_the_bucket_and_apply_moves_the_corrupt_object(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    """On the local pool too: purge reads the objects in place (one GET each, nothing
    written under the mirror); --apply writes only the planned file into the mirror,
    checks it, moves the object to the quarantine prefix, and restore brings it back."""
    import pandas as pd

    from weaklabel.images.quarantine import JOURNAL, read_journal
    from weaklabel.storage import mirror_dir

    client, served = s3["client"], s3["served"]
    images = _small_dump(tmp_path / "dump")
    _put_tree(client, "ip1", images)
    url, ws = f"s3://{BUCKET}/ip1", tmp_path / "ws"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"storage:\n  endpoint_url: {s3['endpoint']}\n  read: in_place\n"
                   f"  cache_dir: {tmp_path / 'cache'}\nimages:\n  workers: 2\n",
                   encoding="utf-8")
    served.clear()
    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "-q")
    assert r.exit_code == 0, r.output
    assert served.gets("ip1/") == sorted((f"ip1/{k}", len(v)) for k, v in images.items())
    purge = pd.read_csv(ws / "purge.csv").set_index("path")
    assert purge.loc[f"{DAYS[0]}/broken.jpg", "status"] == "truncated"
    assert set(purge.index) == set(images)
    assert not any(p.is_file() for p in mirror_dir(ws, url).rglob("*"))
    served.clear()
    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "-q")
    assert r.exit_code == 0, r.output
    assert served.gets("ip1/") == []  # a re-run reads nothing again
    served.clear()
    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "--apply", "-q")
    assert r.exit_code == 0, r.output
    assert "quarantined 1 file(s)" in r.output
    broken = f"{DAYS[0]}/broken.jpg"
    # Only the planned object was read again, if the cache did not hold it: the other
    # objects' checks came from the inventory.
    assert [k for k, _ in served.gets("ip1/")] in ([], [f"ip1/{broken}"])
    run = read_journal(ws / "quarantine" / JOURNAL)[0]["run"]
    bucket = _keys(client, "ip1/")
    assert broken not in bucket
    assert bucket[f"{QPREFIX}/{run}/{broken}"] == images[broken]
    assert {k: v for k, v in bucket.items() if not k.startswith(QPREFIX)} == \
        {k: v for k, v in images.items() if k != broken}
    assert not any(p.is_file() for p in mirror_dir(ws, url).rglob("*"))
    assert (ws / "quarantine" / run / broken).read_bytes() == images[broken]

    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "-q")
    assert r.exit_code == 0, r.output
    assert broken not in set(pd.read_csv(ws / "purge.csv")["path"])

    r = _cli("restore", "-w", str(ws), "-q")
    assert r.exit_code == 0, r.output
    assert "restored 1 file(s)" in r.output
    assert _keys(client, "ip1/") == images  # back at its key, the quarantine prefix empty
    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "-q")
    assert r.exit_code == 0, r.output
    purge = pd.read_csv(ws / "purge.csv").set_index("path")
    assert purge.loc[broken, "status"] == "truncated"


def test_an_s3_image_root_from_the_config_is_synced_not_taken_for_a_path(
        tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """export and report take the image root from the config when no --image-root is
    given; an s3:// root there is the bucket's, mirrored into the workspace."""
    from weaklabel.cli_common import local_image_root
    from weaklabel.config import Config, with_overrides

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    images = {"20190301/a.jpg": photo(1), "20190302/b.jpg": photo(2)}
    _put_tree(s3["client"], "cfgroot", images)
    cfg = with_overrides(Config(), {"workspace": str(tmp_path / "ws"),
                                    "images.root": f"s3://{BUCKET}/cfgroot"})
    local = local_image_root(cfg, None)
    assert local.images.root and not local.images.root.startswith("s3:")
    assert tree(Path(local.images.root)) == images


def test_the_local_cluster_runs_its_workers_without_the_profiler() -> None:
    """The profiler's sys._current_frames() can deadlock with thread starts (engine.py):
    weaklabel's own LocalCluster turns it off in every worker process."""
    import dask

    from weaklabel.engine import use_engine

    with use_engine("dask", scheduler="local", workers=1) as eng:
        assert eng is not None
        seen = eng.client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    assert seen and set(seen.values()) == {False}


def test_a_mistyped_storage_scheme_names_the_one_it_likely_means() -> None:
    from weaklabel.storage import open_fs

    with pytest.raises(WeaklabelError, match=r"s4:// is not a storage scheme fsspec knows "
                                             r".*; did you mean s3://\?"):
        open_fs("s4://bucket/x")
    with pytest.raises(WeaklabelError, match=r"qq:// .*; use s3://BUCKET/PREFIX"):
        open_fs("qq://bucket/x")


def test_settling_a_finished_move_leaves_an_object_uploaded_since_at_its_source(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    from weaklabel.storage_quarantine import settle

    client = s3["client"]
    key, dst = f"{DAYS[0]}/x.jpg", f"{QPREFIX}/run/{DAYS[0]}/x.jpg"
    client.put_object(Bucket=BUCKET, Key=f"st/{key}", Body=b"the original")
    etag = client.head_object(Bucket=BUCKET, Key=f"st/{key}")["ETag"].strip('"')
    rem = {"url": f"s3://{BUCKET}/st", "endpoint": s3["endpoint"], "src": key, "dst": dst,
           "size": len(b"the original"), "etag": etag}
    # the move copied, verified and deleted, then died before journalling 'done';
    # since then someone uploaded a new picture at the original key
    client.copy_object(Bucket=BUCKET, Key=f"st/{dst}",
                       CopySource={"Bucket": BUCKET, "Key": f"st/{key}"})
    client.delete_object(Bucket=BUCKET, Key=f"st/{key}")
    client.put_object(Bucket=BUCKET, Key=f"st/{key}", Body=b"a newer upload")
    assert settle(rem) is True
    assert client.get_object(Bucket=BUCKET, Key=f"st/{key}")["Body"].read() == \
        b"a newer upload"
    # an interrupted move of the same object (copy verified, original still there)
    # is finished: the original goes
    client.put_object(Bucket=BUCKET, Key=f"st/{key}", Body=b"the original")
    assert settle(rem) is True
    assert f"st/{key}" not in {o["Key"] for o in client.list_objects_v2(
        Bucket=BUCKET, Prefix="st/").get("Contents", [])}


def test_an_object_rewritten_at_the_same_size_is_not_materialized_for_export(
        tmp_path: Path, s3: dict[str, Any]) -> None:
    """Read in place, export fetches the sampled objects again; one replaced since the
    inventory examined it (same size, other bytes) must not reach the data set."""
    import os
    import sqlite3

    from weaklabel.storage import mirror_dir
    from weaklabel.storage_inplace import materialize

    client = s3["client"]
    images = _small_dump(tmp_path / "dump")
    _put_tree(client, "ip2", images)
    url, ws = f"s3://{BUCKET}/ip2", tmp_path / "ws"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"storage:\n  endpoint_url: {s3['endpoint']}\n  read: in_place\n"
                   "  cache_bytes: 0\n", encoding="utf-8")  # no cache: export fetches again
    r = _cli("purge", url, "-w", str(ws), "-c", str(cfg), "-q")
    assert r.exit_code == 0, r.output
    root = mirror_dir(ws, url)
    db = sqlite3.connect(ws / "inventory.sqlite")
    ok = sorted(os.fsdecode(p) for (p,) in db.execute(
        "SELECT path FROM files WHERE status='ok' AND sha1 IS NOT NULL"))
    db.close()
    assert len(ok) >= 2
    changed, kept = ok[0], ok[1]
    client.put_object(Bucket=BUCKET, Key=f"ip2/{changed}",
                      Body=b"NOT AN IMAGE".ljust(len(images[changed]), b"x"))
    assert materialize(ws, root, [changed, kept]) == 1
    assert (root / kept).read_bytes() == images[kept]
    assert not (root / changed).exists()
