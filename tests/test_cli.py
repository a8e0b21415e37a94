"""The command line: exit codes, files written, one-line errors, and a cheap --help."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

Cli = Callable[..., Any]
CheckError = Callable[..., str]

TEXT_COMMANDS = ("tokenize", "embed", "cluster", "propagate", "eval")
HEAVY = ("konlpy", "jpype", "gensim", "sklearn", "PIL", "imagehash", "numpy", "pandas",
         "pyarrow", "yaml", "kiwipiepy", "tqdm", "isal", "fsspec", "dask", "starlette",
         "uvicorn",
         # typer draws help and usage errors with rich only when asked to (we do not), and
         # typer >= 0.29 builds a pydantic validator for every parameter of every run.
         "rich", "pydantic")
"""Libraries a start-up must not load: each costs tens of ms to seconds of CPU."""
EMBED_FLAGS = ("--vector-size", "24", "--min-count", "2", "--epochs", "10", "--seed", "1", "-q")
SEED_KEYWORDS = "lips: [립스틱, 틴트]\nhair: [염색, 미용실]\nnails: [젤네일, 매니큐어]\n"


def _tok(cli: Cli, posts: Path, ws: Path, userdict: Path, *extra: object) -> Any:
    return cli("tokenize", posts, "-w", ws, "--userdict", userdict, "-j", "1", *extra)


# --- help, version -----------------------------------------------------------------------


def _loaded_after(*runs: list[str], watch: tuple[str, ...] = HEAVY) -> Any:
    """Run the app on each argument list in a fresh interpreter; the exit codes, the
    output and which of ``watch`` ended up in ``sys.modules``."""
    code = (
        "import json, sys\n"
        "from weaklabel.cli import app\n"
        "codes = []\n"
        f"for args in {list(runs)!r}:\n"
        "    try:\n"
        "        app(args, prog_name='weaklabel')\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        f"print(json.dumps([codes, [m for m in {watch!r} if m in sys.modules]]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    codes, loaded = json.loads(res.stdout.strip().splitlines()[-1])
    return codes, loaded, res


def test_help_imports_no_heavy_library() -> None:
    commands = ("dedup", "purge", "restore", "sample", "export", "report", "build",
                *TEXT_COMMANDS)
    codes, loaded, res = _loaded_after(["--help"], *[[c, "--help"] for c in commands],
                                       ["review", "serve", "--help"])
    assert codes == [0] * (len(commands) + 2)
    assert "Usage: weaklabel" in res.stdout
    assert "Example: weaklabel dedup" in res.stdout
    assert loaded == []


def test_exact_dedup_start_up_imports_no_heavy_library(tmp_path: Path) -> None:
    """``dedup --exact-only`` reads bytes only: no image, table, storage or rich library."""
    (tmp_path / "tree" / "d").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "tree" / "d" / name).write_bytes(b"same bytes")
    ws = tmp_path / "ws"
    codes, loaded, res = _loaded_after(
        ["dedup", "--exact-only", str(tmp_path / "tree"), "-w", str(ws), "-q", "-j", "1"],
        watch=(*HEAVY, "weaklabel.storage", *OTHER_COMMANDS["dedup"],
               # registries the config check needs only for a setting off its default
               "weaklabel.dataset.export", "weaklabel.text.tokenizer",
               "weaklabel.labels.sources"))
    assert codes == [0], res.stderr
    assert "1 exact" in res.stdout
    assert (ws / "duplicates.csv").is_file()
    assert loaded == []


CLI_MODULES = ("weaklabel.cli_images", "weaklabel.cli_dataset", "weaklabel.cli_review")
OTHER_COMMANDS = {
    "dedup": ("weaklabel.cli_dataset", "weaklabel.cli_review"),
    "sample": ("weaklabel.cli_images", "weaklabel.cli_review"),
    "review": ("weaklabel.cli_images", "weaklabel.cli_dataset"),
    "tokenize": CLI_MODULES,
}
"""Per command, the command modules its run must not import (built lazily)."""


@pytest.mark.parametrize("command", list(OTHER_COMMANDS))
def test_an_invoked_command_imports_only_its_own_module(command: str) -> None:
    args = [command, "queue", "--help"] if command == "review" else [command, "--help"]
    codes, loaded, res = _loaded_after(args, watch=CLI_MODULES)
    assert codes == [0]
    assert f"Usage: weaklabel {' '.join(args[:-1])}" in res.stdout
    assert sorted(loaded) == sorted(set(CLI_MODULES) - set(OTHER_COMMANDS[command]))


@pytest.mark.parametrize("width", [60, 80, 100])
def test_lazy_help_lists_every_command_as_built_commands_would(width: int) -> None:
    """``--help`` lists every command from its docstring without building it; the same
    words, cut at the same place, as click's listing of the built commands."""
    import typer.main
    from typer._click import Context

    from weaklabel.cli import COMMANDS, app

    group = typer.main.get_command(app)
    ctx = Context(group, info_name="weaklabel", terminal_width=width, max_content_width=width)
    lazy = group.get_help(ctx)
    assert group.commands.built == {}  # type: ignore[attr-defined]
    built = {name: group.commands[name] for name in COMMANDS}  # type: ignore[attr-defined]
    assert group.commands.built == built  # type: ignore[attr-defined]
    assert group.get_help(ctx) == lazy
    listed = lazy.split("Commands:\n")[1].splitlines()
    assert [line.split()[0] for line in listed] == list(COMMANDS)
    assert "  dedup      Find exact (SHA-1) and near" in lazy


def test_a_mistyped_command_is_a_usage_error_with_a_suggestion() -> None:
    codes, loaded, res = _loaded_after(["dedpu"], watch=CLI_MODULES)
    assert codes == [2] and loaded == []
    assert "Error: No such command 'dedpu'. Did you mean 'dedup'?" in res.stderr


def test_every_default_passes_its_own_check() -> None:
    """The config check skips a default's registry check (a registry import costs a
    start-up): so every default must pass it, with the real registries."""
    from weaklabel.config import SETTINGS, Config, _get, validate_config, with_overrides

    checked = set()
    for key, rule in SETTINGS.items():
        present, value = _get(Config(), key)
        assert present, key
        if rule.check is not None and value is not None:
            rule.check(value)
            checked.add(key)
    assert {"tokenize.tokenizer", "propagate.sources", "propagate.combine", "export.formats",
            "export.link", "images.formats"} <= checked
    # an explicit, non-default value still meets the registry
    from weaklabel.errors import WeaklabelError

    with pytest.raises(WeaklabelError, match="tokenize.tokenizer must be one of"):
        validate_config(with_overrides(Config(), {"tokenize.tokenizer": "okt2"}))
    with pytest.raises(WeaklabelError, match="export.link"):
        validate_config(with_overrides(Config(), {"export.link": "move"}))


def test_usage_error_loads_no_rich_and_ends_in_one_error_line(tmp_path: Path) -> None:
    codes, loaded, res = _loaded_after(["dedup", "--threshold", "x", str(tmp_path)])
    assert codes == [2]
    assert loaded == []
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert errors[0].startswith("Error: Invalid value for '--threshold': 'x' ")


def test_version(cli: Cli) -> None:
    from weaklabel import __version__

    res = cli("--version")
    assert res.exit_code == 0
    assert res.stdout == f"weaklabel {__version__}\n"


@pytest.mark.parametrize("command", TEXT_COMMANDS)
def test_every_command_help_has_an_example(cli: Cli, command: str) -> None:
    res = cli(command, "--help")
    assert res.exit_code == 0
    assert f"Example: weaklabel {command}" in res.stdout


def test_usage_error_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    res = cli("tokenize", tmp_path / "missing.csv", "-w", tmp_path / "ws")
    assert res.exit_code == 2
    assert "Invalid value for 'posts'" in res.stderr
    assert not (tmp_path / "ws").exists()


# --- tokenize ----------------------------------------------------------------------------


@pytest.mark.jvm
def test_tokenize_writes_artifacts_then_is_up_to_date(
        cli: Cli, tmp_path: Path, tricky_csv: Path, userdict_dir: Path) -> None:
    ws = tmp_path / "ws"
    res = _tok(cli, tricky_csv, ws, userdict_dir)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("tokenized 5 posts (5 new, 0 from cache, 1 without tokens, "
                                 "0 rejected), 4 images in ")
    assert res.stdout.rstrip().endswith(
        f"→ {ws}/posts.parquet, {ws}/post_images.parquet, {ws}/tokens.parquet")
    for name in ("posts.parquet", "post_images.parquet", "tokens.parquet",
                 "tokens.parquet.meta.json", "tokenize.rejects.csv"):
        assert (ws / name).is_file(), name
    tokens = pd.read_parquet(ws / "tokens.parquet").set_index("post_id")["tokens"]
    assert {"데일리룩", "꾸안꾸"} <= set(tokens["p1"])
    assert {"쿠션팩트", "데일리룩", "lipstick", "love"} <= set(tokens["p5"])
    assert "오늘" not in set(tokens["p1"])  # a stop word

    again = _tok(cli, tricky_csv, ws, userdict_dir)
    assert again.exit_code == 0
    assert again.stdout == ("tokenize up to date: tokenized 5 posts (5 new, 0 from cache, "
                            "1 without tokens, 0 rejected), 4 images\n")

    forced = _tok(cli, tricky_csv, ws, userdict_dir, "--force", "-q")
    assert forced.exit_code == 0
    assert "(0 new, 5 from cache," in forced.stdout
    assert forced.stderr == ""  # --quiet: no progress bar, no info logs


@pytest.mark.jvm
@pytest.mark.parametrize("kind", ["cp949", "utf-8-sig", "jsonl", "parquet", "tsv"])
def test_tokenize_reads_every_table_form(cli: Cli, tmp_path: Path, userdict_dir: Path,
                                         kind: str) -> None:
    caps = {"a": "쿠션팩트, \"인생템\"", "b": "데일리룩 #꾸안꾸\n둘째 줄", "c": ""}
    if kind in ("cp949", "utf-8-sig"):
        posts = tmp_path / "posts.csv"
        df = pd.DataFrame({"post_id": list(caps), "caption": list(caps.values())})
        df.to_csv(posts, index=False, encoding=kind)
    elif kind == "tsv":
        posts = tmp_path / "posts.tsv"
        pd.DataFrame({"post_id": list(caps), "caption": ["쿠션팩트, 인생템", "데일리룩", ""]}) \
            .to_csv(posts, index=False, sep="\t")
        caps = {"a": "쿠션팩트, 인생템", "b": "데일리룩", "c": ""}
    elif kind == "jsonl":
        posts = tmp_path / "posts.jsonl"
        posts.write_text("".join(json.dumps({"post_id": k, "caption": v}, ensure_ascii=False)
                                 + "\n" for k, v in caps.items()), encoding="utf-8")
    else:
        posts = tmp_path / "posts.parquet"
        pd.DataFrame({"post_id": list(caps), "caption": list(caps.values())}).to_parquet(posts)
    res = _tok(cli, posts, tmp_path / "ws", userdict_dir)
    assert res.exit_code == 0, res.output
    back = pd.read_parquet(tmp_path / "ws" / "posts.parquet")
    assert dict(zip(back["post_id"], back["caption"], strict=True)) == caps
    tokens = pd.read_parquet(tmp_path / "ws" / "tokens.parquet").set_index("post_id")["tokens"]
    assert "쿠션팩트" in set(tokens["a"])


BAD_TABLES: list[tuple[str, bytes, list[str]]] = [
    ("missing_column.csv", "id,text,likes\n1,립스틱,3\n".encode(),
     ["missing column 'post_id'", "the table has: id, text, likes"]),
    ("empty.csv", b"", ["the file is empty"]),
    ("header_only.csv", b"post_id,caption\n", ["the posts table has no rows"]),
    ("undecodable.csv", b"post_id,caption\n1,ok\n2,\xff\xfe\xfa\xff\n",
     ["undecodable.csv: line 3", "neither UTF-8 nor CP949"]),
    ("duplicate.csv", "post_id,caption\na,립스틱\nb,틴트\na,헤어\n".encode(),
     ["row 3: post_id 'a' appears twice"]),
    ("likes.csv", "post_id,caption,likes\na,립스틱,12\nb,틴트,많음\n".encode(),
     ["row 2: likes must be a whole number, got '많음'"]),
    ("escape.csv", b"post_id,caption,images\na,x,ok.jpg|../x.jpg\n",
     ["row 1: image path '../x.jpg' escapes the image root"]),
    ("absolute.csv", b"post_id,caption,images\na,x,/srv/x.jpg\n",
     ["row 1: image path '/srv/x.jpg' is absolute"]),
    ("bad.jsonl", b'{"post_id": 1, "caption": "a"}\nnot json\n', ["bad.jsonl:2: invalid JSON"]),
    ("bad.parquet", b"PAR1 broken", ["not a readable Parquet file"]),
    ("posts.xlsx", b"PK", ["cannot tell the table format"]),
]


@pytest.mark.parametrize("name, content, fragments", BAD_TABLES,
                         ids=[b[0] for b in BAD_TABLES])
def test_tokenize_bad_input_is_one_line_and_leaves_nothing(
        cli: Cli, tmp_path: Path, userdict_dir: Path, assert_cli_error: CheckError,
        no_artifacts: Callable[[Path], None], name: str, content: bytes,
        fragments: list[str]) -> None:
    posts = tmp_path / name
    posts.write_bytes(content)
    res = _tok(cli, posts, tmp_path / "ws", userdict_dir)
    assert_cli_error(res, *fragments)
    no_artifacts(tmp_path / "ws")


def test_tokenize_column_mapping_errors(cli: Cli, tmp_path: Path, userdict_dir: Path,
                                        assert_cli_error: CheckError) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\n1,립스틱\n", encoding="utf-8")
    assert_cli_error(_tok(cli, posts, tmp_path / "ws", userdict_dir, "--col", "caption"),
                     "--col 'caption' must look like LOGICAL=NAME", exit_code=2)
    assert_cli_error(_tok(cli, posts, tmp_path / "ws", userdict_dir, "--col", "text=caption"),
                     "'text' is not a posts column; valid: post_id, caption", exit_code=2)
    assert_cli_error(_tok(cli, posts, tmp_path / "ws", tmp_path / "no_dict"),
                     "user dictionary folder", "does not exist")


@pytest.mark.jvm
def test_tokenize_column_mapping(cli: Cli, tmp_path: Path, userdict_dir: Path) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\n1,쿠션팩트 추천\n", encoding="utf-8")
    res = _tok(cli, posts, tmp_path / "ws", userdict_dir, "--col", "post_id=id",
               "--col", "caption=text")
    assert res.exit_code == 0, res.output
    tokens = pd.read_parquet(tmp_path / "ws" / "tokens.parquet")
    assert list(tokens["tokens"][0]) == ["쿠션팩트", "추천"]


# --- embed, cluster, propagate, eval -----------------------------------------------------


def test_embed_on_an_empty_workspace_says_run_tokenize(
        cli: Cli, tmp_path: Path, assert_cli_error: CheckError) -> None:
    ws = tmp_path / "empty"
    res = cli("embed", "-w", ws)
    assert_cli_error(res, f"{ws}/tokens.parquet does not exist; run `weaklabel tokenize` first")
    assert not ws.exists()


def test_embed_failure_leaves_no_vectors(cli: Cli, token_workspace: Path,
                                         assert_cli_error: CheckError) -> None:
    assert_cli_error(cli("embed", "-w", token_workspace, "--min-count", "100000"),
                     "no word occurs 100000+ times in the tokens; lower embed.min_count")
    left = sorted(p.name for p in token_workspace.iterdir())
    assert left == [".lock", "post_images.parquet", "posts.parquet", "tokens.parquet"]


def test_embed_twice_with_the_same_seed_is_byte_identical(
        cli: Cli, tmp_path: Path, token_workspace: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(token_workspace, other)
    for ws in (token_workspace, other):
        res = cli("embed", "-w", ws, *EMBED_FLAGS)
        assert res.exit_code == 0, res.output
        assert res.stdout.startswith("vocabulary 38 words × 24 dims in ")
    assert (token_workspace / "vectors.kv").read_bytes() == (other / "vectors.kv").read_bytes()
    assert (token_workspace / "vocab.csv").read_bytes() == (other / "vocab.csv").read_bytes()
    again = cli("embed", "-w", token_workspace, *EMBED_FLAGS)
    assert again.exit_code == 0
    assert again.stdout == "embed up to date: vocabulary 38 words × 24 dims\n"


def test_cluster_writes_the_draft(cli: Cli, tmp_path: Path, embedded_workspace: Path) -> None:
    kw = tmp_path / "seed_keywords.yaml"
    kw.write_text(SEED_KEYWORDS, encoding="utf-8")
    res = cli("cluster", "-w", embedded_workspace, "--k", "4", "--seed-keywords", kw, "-q")
    assert res.exit_code == 0, res.output
    assert "4 clusters of 38 words, 3 pre-assigned" in res.stdout
    for name in ("word_clusters.parquet", "clusters.csv", "labelmap.draft.yaml"):
        assert (embedded_workspace / name).is_file()


def test_a_seeded_draft_with_slashes_in_label_names_is_accepted_as_written(
        cli: Cli, tmp_path: Path, embedded_workspace: Path,
        corpus: list[dict[str, Any]]) -> None:
    kw = tmp_path / "seed_keywords.yaml"
    kw.write_text("입술/립: [립스틱, 틴트]\n헤어/미용: [염색, 미용실]\n"
                  "네일|아트: [젤네일, 매니큐어]\n", encoding="utf-8")
    assert cli("cluster", "-w", embedded_workspace, "--k", "4", "--seed-keywords", kw,
               "-q").exit_code == 0
    draft = embedded_workspace / "labelmap.draft.yaml"
    text = draft.read_text("utf-8")
    assert '"입술_립":\n    name: "입술/립"' in text and '"네일_아트":' in text
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", draft, "-q")
    assert res.exit_code == 0, res.output
    labels = pd.read_parquet(embedded_workspace / "post_labels.parquet")
    assert set(labels["label"]) - {""} == {"입술_립", "헤어_미용", "네일_아트"}
    # a gold file that names labels as a person does scores against the ids
    names = {"lips": "입술/립", "hair": "헤어/미용", "nails": "네일|아트"}
    gold = tmp_path / "gold.csv"
    gold.write_text("post_id,label\n" + "".join(f"{r['post_id']},{names[r['topic']]}\n"
                                                for r in corpus), encoding="utf-8")
    res = cli("eval", embedded_workspace / "post_labels.parquet", gold, "--labelmap", draft,
              "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["accuracy"] > 0.9 and not m["gold_labels_never_predicted"]


@pytest.mark.parametrize("args, fragments", [
    (("--k", "100"), ["cannot make 100 clusters from 38 words"]),
    (("--k-range", "9"), ["cluster.k_range must look like A:B", "got '9'"]),
])
def test_cluster_errors(cli: Cli, embedded_workspace: Path, assert_cli_error: CheckError,
                        args: tuple[str, ...], fragments: list[str]) -> None:
    usage = args[0] == "--k-range"  # an option that cannot be used: exit 2
    assert_cli_error(cli("cluster", "-w", embedded_workspace, *args), *fragments,
                     exit_code=2 if usage else 1)
    assert not (embedded_workspace / "clusters.csv").exists()


@pytest.fixture
def clustered_workspace(cli: Cli, embedded_workspace: Path) -> Path:
    res = cli("cluster", "-w", embedded_workspace, "--k", "3", "-q")
    assert res.exit_code == 0, res.output
    return embedded_workspace


LABELMAP_ERRORS: list[tuple[str, str, list[str]]] = [
    ("unknown_cluster", "labels:\n  lips:\n    clusters: [0, 7]\n",
     [":3: cluster 7 of 'lips' does not exist (clusters.csv has 0..2)"]),
    ("claimed_twice", "labels:\n  lips:\n    clusters: [0, 1]\n  hair:\n    clusters: [1]\n",
     [":5: cluster 1 is claimed by 'hair' and by 'lips' (line 3)"]),
    ("no_key", "labels:\n  no:\n    keywords: [립스틱]\n",
     [":2: key 'no' is read by YAML as False; quote it: 'no':"]),
    ("duplicate_key", "labels:\n  lips:\n    keywords: [a]\n  lips:\n    keywords: [b]\n",
     [":4: duplicate key 'lips' (first on line 2)"]),
    ("typo", "labels:\n  lips:\n    keyword: [립스틱]\n",
     [":3: unknown key 'keyword' in label 'lips'; did you mean 'keywords'?"]),
    ("empty_label", "labels:\n  lips:\n    name: 입술\n  hair:\n    keywords: [염색]\n",
     [":2: label 'lips' has no clusters and no keywords"]),
]


@pytest.mark.parametrize("name, text, fragments", LABELMAP_ERRORS,
                         ids=[e[0] for e in LABELMAP_ERRORS])
def test_propagate_labelmap_errors(cli: Cli, clustered_workspace: Path,
                                   write_labelmap: Callable[..., Path],
                                   assert_cli_error: CheckError, name: str, text: str,
                                   fragments: list[str]) -> None:
    lm = write_labelmap(text, name=f"{name}.yaml")
    res = cli("propagate", "-w", clustered_workspace, "--labelmap", lm)
    line = assert_cli_error(res, *fragments)
    assert line.startswith(f"Error: {lm}:")
    assert not (clustered_workspace / "post_labels.parquet").exists()


def test_propagate_without_a_labelmap(cli: Cli, embedded_workspace: Path,
                                      assert_cli_error: CheckError) -> None:
    assert_cli_error(cli("propagate", "-w", embedded_workspace),
                     "no label map given; pass --labelmap FILE")


def test_propagate_and_eval(cli: Cli, embedded_workspace: Path, keyword_labelmap: Path,
                            gold_csv: Path) -> None:
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", keyword_labelmap,
              "--k", "5", "-q")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("450 posts: ")
    assert "460/460 images labelled" in res.stdout or "/460 images labelled" in res.stdout
    for name in ("post_labels.parquet", "keyword_labels.parquet", "image_labels.parquet"):
        assert (embedded_workspace / name).is_file()

    res = cli("eval", embedded_workspace / "post_labels.parquet", gold_csv, "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["posts"] == 450 and m["coverage"] > 0.9 and m["macro_f1"] > 0.9
    assert m["subsets"]["keyword_baseline"]["coverage"] < m["coverage"]

    text = cli("eval", embedded_workspace / "post_labels.parquet", gold_csv)
    assert text.exit_code == 0
    assert text.stdout.startswith("posts 450  coverage ")
    assert "keyword_baseline" in text.stdout


def test_eval_errors(cli: Cli, tmp_path: Path, assert_cli_error: CheckError) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("post_id,label\n1,a\n", encoding="utf-8")
    gold = tmp_path / "gold.csv"
    gold.write_text("post_id,label\n1,a\n2,\n", encoding="utf-8")
    assert_cli_error(cli("eval", labels, gold), "row 2 has an empty gold label")
    gold.write_text("post_id,label\n9,a\n", encoding="utf-8")
    assert_cli_error(cli("eval", labels, gold), "no post_id of", "are they the same data set?")
    broken = tmp_path / "post_labels.parquet"
    broken.write_bytes(b"junk")
    assert_cli_error(cli("eval", broken, gold), "cannot read Parquet")
    gold.write_text("", encoding="utf-8")
    assert_cli_error(cli("eval", labels, gold), f"{gold}: the gold file is empty")
    gold.write_text("post_id,label\n1,a\n2,b,extra,cells\n", encoding="utf-8")
    assert_cli_error(cli("eval", labels, gold), f"{gold}: malformed CSV", "line 3")
    gold.write_text("post_id,label\n1,a\n1,b\n", encoding="utf-8")
    assert_cli_error(cli("eval", labels, gold), "key post_id of gold repeats at rows 1, 2")
    other = tmp_path / "vocab.csv"
    other.write_text("word,count\n립,3\n", encoding="utf-8")
    gold.write_text("post_id,label\n1,a\n", encoding="utf-8")
    assert_cli_error(cli("eval", other, gold), f"{other}: labels lacks column(s) post_id, label")


def test_damaged_artifacts_say_which_command_to_rerun(
        cli: Cli, token_workspace: Path, assert_cli_error: CheckError) -> None:
    (token_workspace / "tokens.parquet").write_bytes(b"PAR1 not really")
    assert_cli_error(cli("embed", "-w", token_workspace, "--force"),
                     "tokens.parquet: cannot read Parquet", "re-run weaklabel tokenize")


def test_an_unwritable_output_is_one_line(cli: Cli, embedded_workspace: Path,
                                          assert_cli_error: CheckError) -> None:
    (embedded_workspace / "vocab.csv").write_text("word,count\n립,many\n", encoding="utf-8")
    assert_cli_error(cli("cluster", "-w", embedded_workspace, "--force"),
                     "vocab.csv: damaged vocabulary", "re-run weaklabel embed")
    target = Path("/proc/weaklabel-report.html")
    assert_cli_error(cli("report", "-w", embedded_workspace, "-o", target),
                     "cannot read or write", "/proc/")


# --- the whole text pipeline on real Okt -------------------------------------------------


@pytest.mark.jvm
@pytest.mark.slow
def test_pipeline_end_to_end(cli: Cli, tmp_path: Path, userdict_dir: Path,
                             corpus: list[dict[str, Any]], gold_csv: Path) -> None:
    posts = tmp_path / "posts.csv"
    pd.DataFrame({"post_id": [r["post_id"] for r in corpus],
                  "caption": [r["caption"] for r in corpus]}).to_csv(posts, index=False)
    ws = tmp_path / "ws"
    kw = tmp_path / "seed_keywords.yaml"
    kw.write_text(SEED_KEYWORDS, encoding="utf-8")

    for args in (("tokenize", posts, "-w", ws, "--userdict", userdict_dir, "-j", "1", "-q"),
                 ("embed", "-w", ws, *EMBED_FLAGS),
                 ("cluster", "-w", ws, "--k", "3", "--seed-keywords", kw, "-q"),
                 ("propagate", "-w", ws, "--labelmap", ws / "labelmap.draft.yaml", "-q")):
        res = cli(*args)
        assert res.exit_code == 0, (args[0], res.output)
    res = cli("eval", ws / "post_labels.parquet", gold_csv, "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["coverage"] > 0.9 and m["macro_f1"] > 0.9, m
