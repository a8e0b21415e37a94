"""The tokenize stage with ``--tokenizer kiwi``: real kiwipiepy, no JVM.

The tokenizer's name and its library/model version are tokenize parameters, so choosing
another tokenizer re-tokenises (and so re-runs every stage downstream).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from weaklabel.config import Config, PostsConfig, TokenizeConfig, load_config
from weaklabel.text.tokenizer import tokenizer_version
from weaklabel.text.tokens import run_tokenize
from weaklabel.workspace import Workspace


def _tokens(ws: Path) -> dict[str, list[str]]:
    df = pd.read_parquet(ws / "tokens.parquet")
    return {p: list(t) for p, t in zip(df["post_id"], df["tokens"], strict=True)}


def test_cli_tokenize_with_kiwi(cli: Callable[..., Any], tricky_csv: Path,
                                userdict_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = cli("tokenize", tricky_csv, "-w", ws, "--userdict", userdict_dir,
              "--tokenizer", "kiwi", "-q")
    assert res.exit_code == 0, res.output
    toks = _tokens(ws)
    assert "데일리룩" in toks["p1"] and "꾸안꾸" in toks["p1"]  # user words whole
    assert "쿠션팩트" in toks["p2"]
    assert toks["p3"] == []
    meta = json.loads((ws / "tokens.parquet.meta.json").read_text("utf-8"))
    params = meta["params"]["tokenize"]
    assert params["tokenizer"] == "kiwi"
    assert params["version"] == tokenizer_version("kiwi") != ""
    again = cli("tokenize", tricky_csv, "-w", ws, "--userdict", userdict_dir,
                "--tokenizer", "kiwi", "-q")
    assert again.exit_code == 0 and "up to date" in again.stdout


def test_switching_the_tokenizer_retokenizes(tricky_csv: Path, userdict_dir: Path,
                                             tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    posts = PostsConfig(path=str(tricky_csv))
    regex = Config(posts=posts,
                   tokenize=TokenizeConfig(userdict=str(userdict_dir), tokenizer="regex"))
    kiwi = Config(posts=posts,
                  tokenize=TokenizeConfig(userdict=str(userdict_dir), tokenizer="kiwi"))
    run_tokenize(ws, regex, progress=False)
    before = _tokens(ws.root)
    r = run_tokenize(ws, kiwi, progress=False)
    assert not r.up_to_date
    s = r.summary
    assert s.cached == 0 and s.tokenized == s.posts  # the key holds the tokenizer
    assert _tokens(ws.root) != before
    assert run_tokenize(ws, kiwi, progress=False).up_to_date is True


def test_two_kiwi_workers_give_the_same_tokens_as_one(
        tmp_path: Path, userdict_dir: Path, corpus: list[dict[str, Any]]) -> None:
    rows = pd.DataFrame([{"post_id": r["post_id"], "caption": r["caption"]}
                         for r in corpus[::8]])
    posts = tmp_path / "posts.csv"
    rows.to_csv(posts, index=False)
    out = {}
    for w in (1, 2):
        ws = Workspace(tmp_path / f"ws{w}")
        cfg = Config(posts=PostsConfig(path=str(posts)),
                     tokenize=TokenizeConfig(userdict=str(userdict_dir), tokenizer="kiwi",
                                             workers=w, chunk_size=10))
        s = run_tokenize(ws, cfg, progress=False).summary
        assert s.workers == w and s.tokenized == len(rows)
        out[w] = ws.path("tokens.parquet").read_bytes()
    assert len(rows) >= 2 * 10  # enough batches for the process pool to be used
    assert out[1] == out[2]


def test_the_config_chooses_kiwi(tmp_path: Path, cli: Callable[..., Any],
                                 assert_cli_error: Callable[..., str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("tokenize:\n  tokenizer: kiwi\n", encoding="utf-8")
    assert load_config(path).tokenize.tokenizer == "kiwi"
    assert Config().tokenize.tokenizer == "okt"  # Okt stays the default
    res = cli("tokenize", path, "-w", tmp_path / "ws", "--tokenizer", "mecab")
    assert_cli_error(res, "tokenize.tokenizer must be one of kiwi, okt, regex", exit_code=2)
