"""The tokenize stage: cache keys, the token cache, and run_tokenize on real Okt."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, TokenizeConfig
from weaklabel.errors import WeaklabelError
from weaklabel.text.normalize import NORMALIZER_VERSION
from weaklabel.text.tokens import TokenCache, caption_keys
from weaklabel.text.userdict import load_userdict
from weaklabel.workspace import Workspace, file_digest


def tokenize_table(posts: Path, ws: Workspace, cfg: Config, **kw: Any) -> Any:
    """run_tokenize on ``posts`` (the table's path goes in the config, as in a build)."""
    import dataclasses

    from weaklabel.text.tokens import run_tokenize

    cfg = dataclasses.replace(cfg, posts=dataclasses.replace(cfg.posts, path=str(posts)))
    return run_tokenize(ws, cfg, **kw)

ARTIFACTS = ("posts.parquet", "post_images.parquet", "tokens.parquet")
KEYS_PINNED = ["5a04514f8a0e7fa2eaf0", "686483805ac47ca14e03"]

_captions = st.lists(st.one_of(st.text(max_size=20), st.just("\ud800 lone surrogate")),
                     max_size=8)


@settings(max_examples=150, deadline=None)
@given(_captions, st.text(min_size=1, max_size=10))
def test_caption_keys_are_stable_and_per_caption(captions: list[str], digest: str) -> None:
    keys = caption_keys(captions, digest)
    assert keys == caption_keys(list(captions), digest)  # same input, same keys
    assert keys == [k for c in captions for k in caption_keys([c], digest)]  # no batch effect
    assert all(len(k) == 20 and int(k, 16) >= 0 for k in keys)
    assert len(set(keys)) == len(set(captions))  # distinct captions, distinct keys


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=20), st.text(max_size=5), st.text(max_size=5))
def test_caption_keys_depend_on_the_settings(caption: str, d1: str, d2: str) -> None:
    same = caption_keys([caption], d1) == caption_keys([caption], d2)
    assert same == (d1 == d2)


def test_caption_keys_are_pinned() -> None:
    """A changed key silently invalidates every user's cache: pin one."""
    assert caption_keys(["데일리룩 #꾸안꾸", ""], "abc") == KEYS_PINNED


def test_token_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.sqlite"
    cache = TokenCache(path)
    items = [(f"k{i}", [f"w{i}", "데일리룩"]) for i in range(2000)] + [("empty", [])]
    cache.put_many(items)
    cache.close()
    cache = TokenCache(path)  # committed: survives a reopen
    got = cache.get_many([k for k, _ in items] + ["missing", "k0"])
    cache.close()
    assert got == dict(items)


# --- run_tokenize (real Okt) -------------------------------------------------------------


def _cfg(userdict: Path, **tok: Any) -> Config:
    return Config(tokenize=TokenizeConfig(userdict=str(userdict), workers=1, **tok))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["post_id", "caption", "images", "likes", "comments"])
        w.writeheader()
        w.writerows(rows)
    return path


def _tokens(ws: Path) -> dict[str, list[str]]:
    df = pd.read_parquet(ws / "tokens.parquet")
    return {p: list(t) for p, t in zip(df["post_id"], df["tokens"], strict=True)}


@pytest.fixture
def tricky_rows() -> list[dict[str, str]]:
    return [
        {"post_id": "p1", "caption": "오늘의 데일리룩 😍 #꾸안꾸 #데일리룩",
         "images": "20190303/p1_1.jpg|20190303/p1_2.jpg", "likes": "12", "comments": "3"},
        {"post_id": "p2", "caption": '쿠션팩트 "인생템", 진짜 추천\n둘째 줄', "images": "a/b.jpg",
         "likes": "1,234", "comments": ""},
        {"post_id": "p3", "caption": "", "images": "", "likes": "", "comments": "0"},
        {"post_id": "p4", "caption": "립스틱 발색 ㅋㅋㅋㅋㅋ 💄💄", "images": "", "likes": "7",
         "comments": "1"},
    ]


@pytest.mark.jvm
def test_writes_three_artifacts_with_meta(tmp_path: Path, userdict_dir: Path,
                                         tricky_rows: list[dict[str, str]]) -> None:
    posts = _write(tmp_path / "posts.csv", tricky_rows)
    ws = Workspace(tmp_path / "ws")
    s = tokenize_table(posts, ws, _cfg(userdict_dir), progress=False)
    assert {k: getattr(s.summary, k) for k in ("posts", "images", "tokenized", "cached",
                                               "empty", "rejects")} == \
        {"posts": 4, "images": 3, "tokenized": 4, "cached": 0, "empty": 1, "rejects": 0}
    for name in ARTIFACTS:
        assert ws.path(name).is_file()
        meta = ws.read_meta(name)
        assert meta is not None and meta["stage"] == "tokenize"
        assert meta["params"]["tokenize"]["userdict"] == load_userdict(userdict_dir).digest
        assert meta["params"]["tokenize"]["normalizer"] == NORMALIZER_VERSION
        assert meta["inputs"]["posts"] == file_digest(posts)
        assert meta["rows"] == s.rows[name] == (3 if name == "post_images.parquet" else 4)
    toks = _tokens(ws.root)
    assert "데일리룩" in toks["p1"] and "꾸안꾸" in toks["p1"]
    assert "쿠션팩트" in toks["p2"]
    assert toks["p3"] == []
    posts_df = pd.read_parquet(ws.path("posts.parquet"))
    assert posts_df["caption"].tolist()[1] == '쿠션팩트 "인생템", 진짜 추천\n둘째 줄'
    assert posts_df["likes"].tolist()[:2] == [12, 1234]
    rejects = ws.path("tokenize.rejects.csv").read_text(encoding="utf-8")
    assert rejects.strip() == "post_id,error"


@pytest.mark.jvm
def test_rerun_is_up_to_date_and_one_changed_caption_is_retokenized(
        tmp_path: Path, userdict_dir: Path, tricky_rows: list[dict[str, str]]) -> None:
    posts = _write(tmp_path / "posts.csv", tricky_rows)
    ws = Workspace(tmp_path / "ws")
    cfg = _cfg(userdict_dir)
    tokenize_table(posts, ws, cfg, progress=False)
    first = ws.path("tokens.parquet").read_bytes()
    assert tokenize_table(posts, ws, cfg, progress=False).up_to_date

    tricky_rows[3]["caption"] = "헤어 염색 #탈색"
    _write(posts, tricky_rows)
    s = tokenize_table(posts, ws, cfg, progress=False)
    assert not s.up_to_date
    assert (s.summary.tokenized, s.summary.cached) == (1, 3)
    assert _tokens(ws.root)["p4"][:2] == ["헤어", "염색"]
    assert ws.path("tokens.parquet").read_bytes() != first


@pytest.mark.jvm
def test_changing_the_user_dictionary_retokenizes(
        tmp_path: Path, userdict_dir: Path, tricky_rows: list[dict[str, str]]) -> None:
    posts = _write(tmp_path / "posts.csv", tricky_rows)
    ws = Workspace(tmp_path / "ws")
    tokenize_table(posts, ws, _cfg(userdict_dir), progress=False)
    (userdict_dir / "more.txt").write_text("인생템\n", encoding="utf-8")
    s = tokenize_table(posts, ws, _cfg(userdict_dir), progress=False)
    assert (s.summary.tokenized, s.summary.cached) == (4, 0)
    assert "인생템" in _tokens(ws.root)["p2"]


@pytest.mark.jvm
def test_tokens_parquet_is_byte_identical_across_runs(
        tmp_path: Path, userdict_dir: Path, tricky_rows: list[dict[str, str]]) -> None:
    posts = _write(tmp_path / "posts.csv", tricky_rows)
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    cfg = _cfg(userdict_dir)
    tokenize_table(posts, a, cfg, progress=False)
    tokenize_table(posts, b, cfg, progress=False)
    s = tokenize_table(posts, a, cfg, force=True, progress=False)  # every caption from cache
    assert (s.summary.tokenized, s.summary.cached) == (0, 4)
    for name in ARTIFACTS:
        assert a.path(name).read_bytes() == b.path(name).read_bytes(), name


@pytest.mark.jvm
def test_a_bad_table_keeps_the_previous_artifacts_whole(
        tmp_path: Path, userdict_dir: Path, tricky_rows: list[dict[str, str]]) -> None:
    posts = _write(tmp_path / "posts.csv", tricky_rows)
    ws = Workspace(tmp_path / "ws")
    tokenize_table(posts, ws, _cfg(userdict_dir), progress=False)
    before = {n: ws.path(n).read_bytes() for n in ARTIFACTS}
    tricky_rows.append({"post_id": "p1", "caption": "중복", "images": "", "likes": "",
                        "comments": ""})
    _write(posts, tricky_rows)
    with pytest.raises(WeaklabelError, match=r"row 5: post_id 'p1' appears twice"):
        tokenize_table(posts, ws, _cfg(userdict_dir), progress=False)
    assert {n: ws.path(n).read_bytes() for n in ARTIFACTS} == before
    assert not [p for p in ws.root.iterdir() if p.name.endswith(".tmp")]


def test_missing_table_and_userdict(tmp_path: Path, userdict_dir: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(WeaklabelError, match="posts table .* does not exist"):
        tokenize_table(tmp_path / "nope.csv", ws, _cfg(userdict_dir), progress=False)
    posts = _write(tmp_path / "posts.csv", [{"post_id": "a", "caption": "x"}])
    with pytest.raises(WeaklabelError, match="user dictionary folder .* does not exist"):
        tokenize_table(posts, ws, _cfg(tmp_path / "no_dict"), progress=False)
    assert not ws.root.exists()


@pytest.mark.jvm
@pytest.mark.slow
def test_two_workers_give_the_same_tokens_as_one(tmp_path: Path, userdict_dir: Path,
                                                corpus: list[dict[str, Any]]) -> None:
    rows = [{"post_id": r["post_id"], "caption": r["caption"]} for r in corpus[::8]]
    posts = _write(tmp_path / "posts.csv", rows)
    one = Workspace(tmp_path / "one")
    two = Workspace(tmp_path / "two")
    s1 = tokenize_table(posts, one, _cfg(userdict_dir, chunk_size=10), progress=False)
    two_cfg = Config(tokenize=TokenizeConfig(userdict=str(userdict_dir), workers=2,
                                             chunk_size=10))
    s2 = tokenize_table(posts, two, two_cfg, progress=False)
    assert s1.summary.workers == 1 and s2.summary.workers == 2
    assert len(rows) >= 2 * 10  # enough batches for the process pool to be used
    assert s2.summary.tokenized == s1.summary.tokenized == len(rows)
    assert one.path("tokens.parquet").read_bytes() == two.path("tokens.parquet").read_bytes()


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_leaves_no_half_files_and_a_rerun_finishes(
    tmp_path: Path, userdict_dir: Path, corpus: list[dict[str, Any]], workers: int
) -> None:
    """SIGINT to the whole process group mid-run (as a terminal's Ctrl-C does): exit 130
    with one line, no temporary or half-written artifact, no JVM crash report; the same
    command then finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    rows = [{"post_id": f"{r['post_id']}-{k}", "caption": f"{r['caption']} {k}"}
            for k in range(12) for r in corpus]
    posts = _write(tmp_path / "posts.csv", rows)
    ws = tmp_path / "ws"
    cmd = [sys.executable, "-m", "weaklabel.cli", "tokenize", str(posts), "-w", str(ws),
           "-j", str(workers), "--userdict", str(userdict_dir)]
    # A terminal's Ctrl-C reaches a program whose SIGINT is at its default; a shell's
    # background job starts with it ignored (and Python keeps an inherited SIG_IGN).
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, cwd=tmp_path,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (ws / "cache").exists() and time.time() < deadline:  # work has started
        time.sleep(0.1)
    time.sleep(2.0)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (out, err)
    assert err.strip().splitlines() == ["Error: interrupted; re-run the same command to finish"]
    assert out == ""
    assert not list(ws.glob(".*.tmp")) and not list(ws.glob("*.parquet"))
    assert not list(tmp_path.glob("hs_err_pid*.log"))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(ws / "tokens.parquet")) == len(rows)


def test_lock_removes_temporary_files_of_dead_runs_only(tmp_path: Path) -> None:
    import os

    ws = Workspace(tmp_path / "ws").ensure()
    dead = _dead_pid()
    stale = ws.path(f".tokens.parquet.{dead}.tmp")
    live = ws.path(f".posts.parquet.{os.getppid()}.tmp")
    other = ws.path(".notes.tmp")
    huge = ws.path(".notes.99999999999999999999.tmp")  # no pid: not ours, and no crash
    for f in (stale, live, other, huge):
        f.write_bytes(b"x")
    with ws.lock("test"):
        pass
    assert not stale.exists()
    assert live.exists() and other.exists() and huge.exists()


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.jvm
def test_a_second_dictionary_in_one_process_gives_its_own_tokens(
        tmp_path: Path, userdict_dir: Path) -> None:
    """Okt's dictionary only grows: after a run with word X, a run whose dictionary lacks
    X must still split X (it is tokenized in a fresh process), as a fresh process does."""
    rows = [{"post_id": "1", "caption": "오늘 쿠션팩트 추천"}]
    posts = _write(tmp_path / "posts.csv", rows)
    big = tmp_path / "big"
    big.mkdir()
    (big / "words.txt").write_text("쿠션팩트\n", encoding="utf-8")
    small = tmp_path / "small"
    small.mkdir()
    (small / "words.txt").write_text("데일리룩\n", encoding="utf-8")
    tokenize_table(posts, Workspace(tmp_path / "a"), _cfg(big), progress=False)
    assert _tokens(tmp_path / "a")["1"] == ["오늘", "쿠션팩트", "추천"]
    tokenize_table(posts, Workspace(tmp_path / "b"), _cfg(small), progress=False)
    assert _tokens(tmp_path / "b")["1"] == ["오늘", "쿠션", "팩트", "추천"]
