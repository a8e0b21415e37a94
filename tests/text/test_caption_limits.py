"""Hostile captions: one huge caption is cut and counted; an all-empty column is warned
about (issue 7, cases 5 and 6). Real Okt."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.config import Config, TokenizeConfig
from weaklabel.text.tokens import truncate_captions
from weaklabel.workspace import Workspace


def tokenize_table(posts: Path, ws: Workspace, cfg: Config, **kw: Any) -> Any:
    """run_tokenize on ``posts`` (the table's path goes in the config, as in a build)."""
    import dataclasses

    from weaklabel.text.tokens import run_tokenize

    cfg = dataclasses.replace(cfg, posts=dataclasses.replace(cfg.posts, path=str(posts)))
    return run_tokenize(ws, cfg, **kw)


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "caption"])
        w.writerows(rows)
    return path


def test_truncate_captions_cuts_only_the_long_ones() -> None:
    posts = pd.DataFrame({"post_id": ["a", "b"], "caption": ["짧은 글", "x" * 50]})
    out, rows = truncate_captions(posts, 10)
    assert out["caption"].tolist() == ["짧은 글", "x" * 10]
    assert rows == [("b", "caption truncated from 50 to 10 characters "
                          "(tokenize.max_caption_chars)")]
    assert posts["caption"].iloc[1] == "x" * 50  # the input frame is not changed


@pytest.mark.jvm
def test_a_50_mb_caption_is_cut_and_counted_in_the_rejects(tmp_path: Path,
                                                           userdict_dir: Path) -> None:
    huge = "립스틱 데일리룩 " * 2_200_000  # 50 MB of UTF-8
    assert len(huge.encode()) > 50_000_000
    posts = _write(tmp_path / "posts.csv", [("p1", "오늘의 립스틱 추천"), ("p2", huge)])
    ws = Workspace(tmp_path / "ws")
    cfg = Config(tokenize=TokenizeConfig(userdict=str(userdict_dir), workers=1))
    s = tokenize_table(posts, ws, cfg, progress=False)
    assert s.summary.posts == 2 and s.summary.truncated == 1 and s.summary.rejects == 1
    rejects = pd.read_csv(ws.path("tokenize.rejects.csv"))
    assert rejects["post_id"].tolist() == ["p2"]
    assert f"caption truncated from {len(huge):,} to 20,000 characters" in rejects["error"][0]
    stored = pd.read_parquet(ws.path("posts.parquet")).set_index("post_id")["caption"]
    assert len(stored["p2"]) == 20_000
    tokens = pd.read_parquet(ws.path("tokens.parquet")).set_index("post_id")["tokens"]
    assert "립스틱" in list(tokens["p2"])


@pytest.mark.jvm
def test_an_all_empty_caption_column_is_warned_about(tmp_path: Path, userdict_dir: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    posts = _write(tmp_path / "posts.csv", [("p1", ""), ("p2", "  ")])
    cfg = Config(tokenize=TokenizeConfig(userdict=str(userdict_dir), workers=1))
    with caplog.at_level(logging.WARNING):
        s = tokenize_table(posts, Workspace(tmp_path / "ws"), cfg, progress=False)
    assert s.summary.warning == "every caption is empty (column 'caption')"
    assert any("every caption in" in r.message and "--col caption=NAME" in r.message
               for r in caplog.records)
