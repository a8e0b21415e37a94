"""Shared fixtures for the text/label tests: tiny generated inputs, written in tmp_path.

No ``__init__.py`` anywhere under ``tests/``: every test file has a unique basename, and
helpers reach tests through fixtures (never ``from conftest import``), so pytest's default
import mode and ``--import-mode=importlib`` both work.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Words Okt splits unless the user dictionary holds them (쿠션팩트 → 쿠션 + 팩트).
USER_WORDS = ("데일리룩", "쿠션팩트", "꾸안꾸")
STOP_WORDS = ("오늘",)

# Captions that break naive readers: dictionary words, emoji, hashtags, an empty one,
# commas, quotes and newlines inside a caption, a URL and a mention, Latin words.
TRICKY_POSTS: list[dict[str, str]] = [
    {"post_id": "p1", "caption": "오늘의 데일리룩 😍 #꾸안꾸 #데일리룩",
     "images": "20190303/p1_1.jpg|20190303/p1_2.jpg", "likes": "12", "comments": "3"},
    {"post_id": "p2", "caption": '쿠션팩트 "인생템", 진짜 추천\n둘째 줄 https://x.co/a @friend',
     "images": "20190303/p2_1.jpg", "likes": "1,234", "comments": ""},
    {"post_id": "p3", "caption": "", "images": "", "likes": "", "comments": "0"},
    {"post_id": "p4", "caption": "립스틱 발색 ㅋㅋㅋㅋㅋ 💄💄💄💄", "images": "20190304/p4_1.png",
     "likes": "7", "comments": "1"},
    {"post_id": "p5", "caption": "Lipstick LOVE 쿠션팩트, 데일리룩", "images": "",
     "likes": "0", "comments": "2"},
]
POST_FIELDS = ("post_id", "caption", "images", "likes", "comments")

# A synthetic corpus: three topics, each with its own words, plus words every topic uses.
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "lips": ("립스틱", "틴트", "립밤", "입술", "발색", "글로스", "코랄", "레드", "립라이너",
             "촉촉"),
    "hair": ("염색", "펌", "헤어", "미용실", "단발", "앞머리", "샴푸", "트리트먼트", "고데기",
             "탈색"),
    "nails": ("네일", "젤네일", "매니큐어", "손톱", "네일아트", "큐티클", "패디", "네일샵", "파츠",
              "글리터"),
}
COMMON_WORDS = ("데일리룩", "추천", "후기", "쿠션팩트", "꾸안꾸", "기분", "주말", "선물")


def make_corpus(per_topic: int = 150, *, seed: int = 0) -> list[dict[str, Any]]:
    """``per_topic`` posts per topic: 4–7 topic words and 2 common words, shuffled.

    Returns dicts with ``post_id``, ``topic`` (the gold label), ``tokens`` and
    ``caption`` (the tokens joined by spaces), in a fixed order for a fixed seed.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for topic, words in TOPIC_WORDS.items():
        for i in range(per_topic):
            toks = [words[j] for j in rng.integers(0, len(words), rng.integers(4, 8))]
            toks += [COMMON_WORDS[j] for j in rng.integers(0, len(COMMON_WORDS), 2)]
            rng.shuffle(toks)
            rows.append({"post_id": f"{topic}{i:04d}", "topic": topic, "tokens": toks,
                         "caption": " ".join(toks)})
    return rows


def write_posts_csv(path: Path, rows: Sequence[dict[str, Any]], *, encoding: str = "utf-8",
                    fields: Sequence[str] = POST_FIELDS) -> Path:
    """Write posts with the csv module (quoting captions with commas, quotes, newlines)."""
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def okt_jvm() -> None:
    """Start the process's one JVM with the user dictionary (a few seconds, once).

    Tests marked ``jvm`` use it so the start-up is paid in setup, not in one test's time.
    """
    from weaklabel.text.tokenizer import okt_with_userdict
    from weaklabel.text.userdict import UserDict

    okt_with_userdict(UserDict(USER_WORDS, frozenset(STOP_WORDS)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("jvm") is not None and hasattr(item, "fixturenames") \
                and "okt_jvm" not in item.fixturenames:
            item.fixturenames.insert(0, "okt_jvm")


@pytest.fixture
def userdict_dir(tmp_path: Path) -> Path:
    """A user dictionary folder: the three words and one stop word."""
    d = tmp_path / "userdict"
    d.mkdir()
    (d / "neologisms.txt").write_text(
        "# words Okt must keep whole\n" + "\n".join(USER_WORDS) + "\n", encoding="utf-8")
    (d / "stopwords.txt").write_text("\n".join(STOP_WORDS) + "\n", encoding="utf-8")
    return d


@pytest.fixture
def tricky_csv(tmp_path: Path) -> Path:
    return write_posts_csv(tmp_path / "posts.csv", TRICKY_POSTS)


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    return make_corpus()


@pytest.fixture(scope="session")
def topic_words() -> dict[str, tuple[str, ...]]:
    """The corpus's words per topic (the gold label)."""
    return TOPIC_WORDS


@pytest.fixture(scope="session")
def small_embed_cfg() -> Any:
    from weaklabel.config import EmbedConfig

    return EmbedConfig(vector_size=24, window=5, min_count=2, epochs=10, seed=1)


@pytest.fixture(scope="session")
def kv(corpus: list[dict[str, Any]], small_embed_cfg: Any) -> Any:
    """Real gensim KeyedVectors trained on the synthetic corpus (about a second)."""
    from weaklabel.text.embed import train_word2vec

    return train_word2vec([r["tokens"] for r in corpus], cfg=small_embed_cfg)


def _write_token_workspace(root: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """The three tokenize artifacts for ``rows``, written without a JVM."""
    import pandas as pd

    from weaklabel.contracts import POST_IMAGES, POSTS, TOKENS
    from weaklabel.workspace import Workspace

    ws = Workspace(root).ensure()
    ids = [r["post_id"] for r in rows]
    ws.write("posts.parquet", pd.DataFrame({
        "post_id": ids, "caption": [r["caption"] for r in rows],
        "likes": pd.array(list(range(len(rows))), dtype="Int64"),
        "comments": pd.array([i % 5 for i in range(len(rows))], dtype="Int64"),
        "created_at": [None] * len(rows)}), POSTS)
    ws.write("post_images.parquet", pd.DataFrame({
        "post_id": ids + ids[:10], "image": [f"img/{i}_1.jpg" for i in ids]
        + [f"img/{i}_2.jpg" for i in ids[:10]]}, dtype=object), POST_IMAGES)
    ws.write("tokens.parquet", pd.DataFrame({
        "post_id": ids, "tokens": [list(r["tokens"]) for r in rows],
        "caption_hash": [f"h{i}" for i in range(len(rows))]}), TOKENS)
    return root


@pytest.fixture(scope="session")
def _embedded_template(tmp_path_factory: pytest.TempPathFactory,
                       corpus: list[dict[str, Any]], small_embed_cfg: Any) -> Path:
    """A workspace with tokens (from the corpus) and real vectors, built once."""
    from weaklabel.config import Config
    from weaklabel.text.embed import run_embed
    from weaklabel.workspace import Workspace

    root = _write_token_workspace(tmp_path_factory.mktemp("template") / "ws", corpus)
    run_embed(Workspace(root), Config(embed=small_embed_cfg))
    return root


@pytest.fixture
def token_workspace(tmp_path: Path, corpus: list[dict[str, Any]]) -> Path:
    """A fresh workspace holding only the tokenize artifacts of the corpus."""
    return _write_token_workspace(tmp_path / "tokens_ws", corpus)


@pytest.fixture
def embedded_workspace(tmp_path: Path, _embedded_template: Path) -> Path:
    """A private copy of a workspace with tokens, vectors.kv and vocab.csv."""
    dst = tmp_path / "ws"
    shutil.copytree(_embedded_template, dst)
    return dst


@pytest.fixture
def write_labelmap(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to ``tmp_path/labelmap.yaml`` and return its path."""

    def write(text: str, name: str = "labelmap.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p

    return write


KEYWORD_LABELMAP = """\
version: 1
labels:
  lips:
    name: 입술
    keywords: [립스틱, 틴트]
  hair:
    name: 헤어
    keywords: [염색, 미용실]
  nails:
    name: 네일
    keywords: [젤네일, 매니큐어]
"""


STAGE_LABELMAP = """\
version: 1
labels:
  lips:
    name: 입술 화장
    clusters: [0]
    keywords: [립스틱]
  nails:
    name: 네일
    clusters: [1]
    keywords: [네일]
  other:
    name: 기타
    background: true
    clusters: [2]
"""


@pytest.fixture
def stage_labelmap() -> str:
    """The label map of the data-set and review workspaces (``tests/dataset``,
    ``tests/review``): clusters 0-2 of their ``clusters.csv``, a keyword per label for
    the review queue's seeds, and the background label the sample leaves out."""
    return STAGE_LABELMAP


@pytest.fixture
def keyword_labelmap(write_labelmap: Callable[[str], Path]) -> Path:
    return write_labelmap(KEYWORD_LABELMAP)


@pytest.fixture
def gold_csv(tmp_path: Path, corpus: list[dict[str, Any]]) -> Path:
    p = tmp_path / "gold.csv"
    lines = ["post_id,label"] + [f"{r['post_id']},{r['topic']}" for r in corpus]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Invoke ``weaklabel.cli.app`` in-process; returns typer's Result (stdout/stderr apart)."""
    from typer.testing import CliRunner

    from weaklabel.cli import app

    def invoke(*args: Any) -> Any:
        return CliRunner().invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def assert_cli_error() -> Callable[..., str]:
    """Check a user error: exit 1 (2 for a usage error), one ``Error: …`` line on stderr,
    no traceback."""

    def check(result: Any, *fragments: str, exit_code: int = 1) -> str:
        assert result.exit_code == exit_code, (result.exit_code, result.output,
                                               result.exception)
        assert "Traceback" not in result.output
        assert result.stdout == ""
        # Lines as a terminal shows them: a progress bar erased with "\r" leaves nothing.
        lines = [seg.split("\r")[-1] for seg in result.stderr.split("\n")]
        lines = [ln for ln in lines if ln.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: "), lines[0]
        for frag in fragments:
            assert frag in lines[0], (frag, lines[0])
        return lines[0]

    return check


@pytest.fixture
def no_artifacts() -> Callable[[Path], None]:
    """Assert a workspace holds no table or vector artifact and no temporary file."""

    def check(ws: Path) -> None:
        if not ws.exists():
            return
        left = [p.name for p in ws.iterdir()
                if p.suffix in (".parquet", ".kv", ".tmp") or p.name.endswith(".meta.json")
                or p.name.endswith(".csv")]
        assert left == [], left

    return check
