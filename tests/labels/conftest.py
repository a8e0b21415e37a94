"""Shared set-up of the label tests on real text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def draft_workspace(tmp_path: Path) -> Callable[..., tuple[Any, Any, Any]]:
    """``make(posts, config, keywords) -> (ws, cfg, labelmap)``: a workspace under
    ``tmp_path`` with ``posts`` tokenized (user dictionary ``userdict/``, one worker),
    embedded and clustered by the bench ``config``, and the keyword-seeded draft of
    ``keywords`` loaded as the label map, as a new user would start."""

    def make(posts: Path, config: Path, keywords: Path) -> tuple[Any, Any, Any]:
        from weaklabel.config import load_config, with_overrides
        from weaklabel.contracts import WORD_CLUSTERS
        from weaklabel.labels.cluster import run_cluster
        from weaklabel.labels.labelmap import load_labelmap
        from weaklabel.text.embed import run_embed
        from weaklabel.text.tokens import run_tokenize
        from weaklabel.workspace import Workspace

        cfg = with_overrides(load_config(config), {
            "workspace": str(tmp_path / "ws"), "posts.path": str(posts),
            "seed_keywords": str(keywords),
            "tokenize.userdict": str(ROOT / "userdict"), "tokenize.workers": 1})
        ws = Workspace(Path(cfg.workspace)).ensure()
        run_tokenize(ws, cfg, progress=False)
        run_embed(ws, cfg)
        run_cluster(ws, cfg)
        known = set(ws.read("word_clusters.parquet", WORD_CLUSTERS)["cluster"].astype(int))
        return ws, cfg, load_labelmap(ws.path("labelmap.draft.yaml"), known_clusters=known)

    return make


@pytest.fixture
def chatbot_draft(draft_workspace: Callable[..., tuple[Any, Any, Any]]
                  ) -> tuple[Any, Any, Any, Any]:
    """``(ws, cfg, labelmap, gold)``: :func:`draft_workspace` over the bundled 4,000
    chatbot questions with the chatbot bench's config and seed keywords; ``gold`` has
    ``post_id`` and ``gold`` columns."""
    import pandas as pd

    data = ROOT / "tests/data/chatbot_sample.csv"  # bundled: CI has no ../shared
    gold = pd.read_csv(data, dtype=str).rename(columns={"id": "post_id", "label": "gold"})
    ws, cfg, labelmap = draft_workspace(data, ROOT / "bench/chatbot/config.yaml",
                                        ROOT / "bench/chatbot/seed_keywords.yaml")
    return ws, cfg, labelmap, gold
