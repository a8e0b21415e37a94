"""The weaklabel command line: one command per stage, each one library call.

Heavy libraries (KoNLPy and its JVM, gensim, scikit-learn, Pillow) are imported inside
the library functions, so ``weaklabel --help`` answers at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from weaklabel import __version__
from weaklabel.cli_common import (
    CommandSpec,
    ConfigOpt,
    ForceOpt,
    LazyGroup,
    PathOrURL,
    QuietOpt,
    WorkersOpt,
    WorkspaceOpt,
    echo_report,
    fail,
    resolve_config,
    setup_logging,
    workspace_of,
)
from weaklabel.errors import UsageError, WeaklabelError

COMMANDS: dict[str, CommandSpec] = {
    # in the order ``weaklabel --help`` lists them
    "tokenize": ("weaklabel.cli", "tokenize"),
    "embed": ("weaklabel.cli", "embed"),
    "cluster": ("weaklabel.cli", "cluster"),
    "propagate": ("weaklabel.cli", "propagate"),
    "eval": ("weaklabel.cli", "eval_"),
    "build": ("weaklabel.cli", "build"),
    "purge": ("weaklabel.cli_images", "purge"),
    "dedup": ("weaklabel.cli_images", "dedup"),
    "restore": ("weaklabel.cli_images", "restore"),
    "sample": ("weaklabel.cli_dataset", "sample"),
    "export": ("weaklabel.cli_dataset", "export"),
    "report": ("weaklabel.cli_dataset", "report"),
    "review": ("weaklabel.cli_review", "review_app"),
}
"""Every command: name → where its function (or command group) lives. A run builds
only the command it invokes, and imports only that command's module (``--help`` reads
the docstrings of all)."""


class _Commands(LazyGroup):
    table = COMMANDS


app = typer.Typer(
    cls=_Commands,
    name="weaklabel",
    help="Build labeled image data sets by weak supervision from Korean post captions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rendering them with rich imports rich, markdown-it and
    # pygments, 0.2 CPU s before the first line, for the same words in boxes.
    rich_markup_mode=None,
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"weaklabel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Build labeled image data sets by weak supervision from Korean post captions."""


# Kept words change with the tokenizer, so switching re-runs tokenize and what follows.
TokenizerOpt = Annotated[str | None, typer.Option(
    "--tokenizer", metavar="okt|kiwi|regex",
    help="Tokenizer (tokenize.tokenizer): okt (default, needs Java), kiwi (no JVM) or the "
         "regex baseline.")]


def _cols(cols: list[str] | None) -> dict[str, str]:
    out = {}
    for item in cols or []:
        if "=" not in item:
            raise UsageError(f"--col {item!r} must look like LOGICAL=NAME, e.g. caption=text")
        logical, name = item.split("=", 1)
        from weaklabel.posts import LOGICAL

        if logical not in LOGICAL:
            raise UsageError(
                f"--col {item!r}: {logical!r} is not a posts column; valid: {', '.join(LOGICAL)}"
            )
        out[f"posts.columns.{logical}"] = name
    return out


def tokenize(
    posts: Annotated[str | None, typer.Argument(
        callback=PathOrURL(dir_okay=False),
        help="Posts table: CSV, TSV, JSON lines or Parquet; a path or s3://bucket/key.")
    ] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    encoding: Annotated[str | None, typer.Option(
        help="Text encoding of a CSV/JSONL table (default: detect UTF-8/UTF-8-BOM/CP949).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv|tsv|jsonl|parquet.")] = None,
    col: Annotated[list[str] | None, typer.Option(
        help="Map a column: LOGICAL=NAME (post_id, caption, images, likes, comments, "
             "created_at). Repeatable.")] = None,
    links: Annotated[str | None, typer.Option(
        callback=PathOrURL(dir_okay=False), help="Link table post_id,image instead of the "
                                                   "images column (path or s3:// URL).")
    ] = None,
    userdict: Annotated[Path | None, typer.Option(
        file_okay=False, help="User dictionary folder (default: userdict).")] = None,
    tokenizer: TokenizerOpt = None,
    workers: WorkersOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Tokenize captions with Okt + the user dictionary (nouns and hashtags).

    Example: weaklabel tokenize examples/data/posts.csv -w build
    """
    setup_logging(quiet)
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "posts.path": posts, "posts.encoding": encoding,
        "posts.format": fmt, "posts.links": links,
        "tokenize.userdict": str(userdict) if userdict else None,
        "tokenize.tokenizer": tokenizer, "tokenize.workers": workers, **_cols(col)})
    if cfg.posts.path is None:
        raise UsageError("no posts table given; pass POSTS or set posts.path in the config")
    from weaklabel.storage import stage_inputs
    from weaklabel.text.tokens import run_tokenize

    cfg, _ = stage_inputs(cfg, images=False)  # an s3:// table: its workspace copy
    echo_report(run_tokenize(workspace_of(cfg), cfg, force=force, progress=not quiet))


def embed(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: 42).")] = None,
    vector_size: Annotated[int | None, typer.Option(
        min=2, help="Dimensions of a word vector (default: 100).")] = None,
    window: Annotated[int | None, typer.Option(
        min=1, help="Context words on each side (default: 5).")] = None,
    min_count: Annotated[int | None, typer.Option(
        min=1, help="Ignore words seen fewer times (default: 3).")] = None,
    epochs: Annotated[int | None, typer.Option(
        min=1, help="Passes over the tokens (default: 15).")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train Word2Vec word vectors on the tokens.

    Example: weaklabel embed -w build --epochs 15
    """
    setup_logging(quiet)
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None, "embed.seed": seed,
        "embed.vector_size": vector_size, "embed.window": window,
        "embed.min_count": min_count, "embed.epochs": epochs})
    from weaklabel.text.embed import run_embed

    echo_report(run_embed(workspace_of(cfg), cfg, force=force, progress=not quiet))


def cluster(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    k: Annotated[int | None, typer.Option("--k", min=2, help="Number of clusters.")] = None,
    k_range: Annotated[str | None, typer.Option(
        "--k-range", help="Try every K in A:B and keep the best silhouette.")] = None,
    seed_keywords: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="YAML mapping each label to a list of keywords: pre-assigns clusters.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cluster word vectors with KMeans and write a label-map draft.

    Example: weaklabel cluster -w build --k-range 20:40 --seed-keywords examples/seed_keywords.yaml
    """
    setup_logging(quiet)
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None, "cluster.k": k,
        "cluster.k_range": k_range,
        "seed_keywords": str(seed_keywords) if seed_keywords else None})
    from weaklabel.labels.cluster import parse_k_range, run_cluster

    if k_range is not None:
        parse_k_range(k_range)  # a bad range is a usage error, before any work

    r = run_cluster(workspace_of(cfg), cfg, force=force, progress=not quiet)
    for row in r.summary.scores:
        typer.echo(f"k={row.k:<4} inertia={row.inertia:.1f}  silhouette={row.silhouette:.4f}")
    echo_report(r)


def propagate(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    labelmap: Annotated[Path | None, typer.Option(
        "--labelmap", "-l", dir_okay=False, help="The reviewed label map (YAML).")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Neighbours in the KNN vote.")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Keep a propagated label only when its confidence (its "
        "estimated probability of being right) reaches this; default: the one "
        "threshold that maximises the expected macro-F1.")] = None,
    target_precision: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Keep only the labels estimated (from held-out seeds, not "
        "gold) to be this precise; 0: off.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Seed labels from the label map's words, propagate them by KNN, carry them to images.

    Example: weaklabel propagate -w build --labelmap examples/labelmap.yaml
    """
    setup_logging(quiet)
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "labelmap": str(labelmap) if labelmap else None, "propagate.k": k,
        "propagate.min_confidence": min_confidence,
        "propagate.target_precision": target_precision})
    from weaklabel.labels.propagate import run_propagate

    echo_report(run_propagate(workspace_of(cfg), cfg, force=force, progress=not quiet))


def eval_(
    labels: Annotated[Path | None, typer.Argument(
        exists=True, dir_okay=False, help="post_labels.parquet (or a CSV post_id,label) "
        "(default: eval.labels, else WORKSPACE/post_labels.parquet).")] = None,
    gold: Annotated[Path | None, typer.Argument(
        exists=True, dir_okay=False, help="Gold CSV post_id,label (default: gold).")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    baseline: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Labels to compare with (default: "
        "keyword_labels.parquet beside LABELS).")] = None,
    labelmap: Annotated[Path | None, typer.Option(
        "--labelmap", "-l", exists=True, dir_okay=False,
        help="The label map, so gold may name labels by display name (IT/과학).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score labels against gold: precision, recall, F1, coverage, per subset.

    Example: weaklabel eval build/post_labels.parquet examples/data/gold.csv
    """
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "eval.labels": str(labels) if labels else None, "gold": str(gold) if gold else None,
        "eval.baseline": str(baseline) if baseline else None,
        "labelmap": str(labelmap) if labelmap else None})
    from weaklabel.labels.evaluate import format_report, run_eval

    m = run_eval(workspace_of(cfg), cfg).summary.metrics
    typer.echo(json.dumps(m, ensure_ascii=False) if as_json else format_report(dict(m)))


def build(
    config: Annotated[Path, typer.Option(
        "--config", "-c", exists=True, dir_okay=False, help="The data set's YAML config.")],
    workspace: WorkspaceOpt = None,
    workers: WorkersOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="YYYYMMDD",
        help="Object storage: list only date folders from this day on (storage.since); "
             "older days are what the workspace holds.")] = None,
    engine: Annotated[str | None, typer.Option(
        "--engine", metavar="local|dask",
        help="Where per-partition work runs (engine.name): local process pools or Dask.")
    ] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="tcp://HOST:8786|local",
        help="The Dask scheduler (engine.scheduler); local starts a LocalCluster.")] = None,
    tokenizer: TokenizerOpt = None,
) -> None:
    """Run every stage from one config, skipping what is up to date.

    Paths in the config may be s3:// (or any fsspec) URLs.

    Example: weaklabel build --config configs/example.yaml
    """
    setup_logging(quiet)
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "tokenize.workers": workers, "images.workers": workers,
        "storage.since": since, "engine.name": engine, "engine.scheduler": scheduler,
        "engine.workers": workers, "tokenize.tokenizer": tokenizer})
    from weaklabel.pipeline import build_all
    from weaklabel.stage import StageReport, format_report

    def show(r: StageReport[Any]) -> None:
        typer.echo(format_report(r, table=True), err=quiet)

    res = build_all(cfg, force=force, progress=not quiet, on_stage=show)
    if res.stopped:
        typer.echo(f"build stopped: {res.stopped}", err=True)
        raise typer.Exit(3)
    typer.echo(f"\nworkspace: {cfg.workspace}")
    from weaklabel.dataset.export import ExportSummary, format_counts
    from weaklabel.dataset.report import ReportSummary
    from weaklabel.labels.evaluate import EvalSummary

    for r in res.stages:
        s = r.summary
        if isinstance(s, ExportSummary):
            typer.echo(f"data set:  {cfg.output}  (images per label and split)")
            typer.echo(format_counts(s.counts))
        elif isinstance(s, ReportSummary):
            typer.echo(f"report:    {s.path}")
        elif isinstance(s, EvalSummary):
            typer.echo(f"eval:      macro-F1 {s.macro_f1:.3f}, accuracy {s.accuracy:.3f} on "
                       f"{s.coverage:.1%} of posts labelled (gold: {cfg.gold})")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except WeaklabelError as exc:  # raised outside a command
        raise SystemExit(fail(str(exc)).exit_code) from None


if __name__ == "__main__":
    main()
