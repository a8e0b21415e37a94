"""CLI commands for the data set: ``sample``, ``export``, ``report``.

``cli.py`` lists them in its command table and builds one when it is invoked. Only typer
and the standard library are imported at module level; pandas and PIL load inside the
library calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from weaklabel.cli_common import (
    ConfigOpt,
    ForceOpt,
    PathOrURL,
    QuietOpt,
    WorkspaceOpt,
    echo_report,
    local_image_root,
    not_an_artifact,
    resolve_config,
    setup_logging,
    workspace_of,
)
from weaklabel.errors import UsageError, WeaklabelError

LabelmapOpt = Annotated[
    Path | None,
    typer.Option("--labelmap", "-l", exists=True, dir_okay=False,
                 help="The label map (display names, background label) (default: config)."),
]
ImageRootOpt = Annotated[
    str | None,
    typer.Option("--image-root", callback=PathOrURL(file_okay=False),
                 help="Where image paths point, a folder or s3://bucket/prefix (default: "
                      "images.root or posts.image_root)."),
]


def _usage(parse: Any, value: Any) -> Any:
    """Run an option's parser; its complaint is a usage error (exit 2)."""
    try:
        return parse(value)
    except UsageError:
        raise
    except WeaklabelError as exc:
        raise UsageError(str(exc)) from None


def parse_quotas(items: list[str] | None) -> dict[str, int]:
    """``["lips=200", "nails=50"]`` (or ``["lips=200,nails=50"]``) → ``{"lips": 200,
    "nails": 50}``; a label given twice is an error, not the last one silently."""
    out: dict[str, int] = {}
    flat = []
    for item in items or []:
        parts = item.split(",")
        flat += parts if len(parts) > 1 and all("=" in p for p in parts) else [item]
    for item in flat:
        label, sep, n = item.strip().rpartition("=")
        if label in out:
            raise UsageError(f"--quota {label}= is given twice ({out[label]} and {n}); keep one")
        if not sep or not label:
            raise UsageError(f"--quota {item!r} must look like LABEL=N, e.g. lips=200")
        try:
            out[label] = int(n)
        except ValueError:
            raise UsageError(f"--quota {item!r}: {n!r} is not a whole number") from None
        if out[label] < 0:
            raise UsageError(f"--quota {item!r}: use a whole number >= 0")
    return out


def sample(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    labelmap: LabelmapOpt = None,
    per_label: Annotated[int | None, typer.Option(
        "--per-label", "-n", min=0, help="Images per label (default: 1000).")] = None,
    quota: Annotated[list[str] | None, typer.Option(
        "--quota", help="LABEL=N: this label's number instead of --per-label. "
                        "Repeatable.")] = None,
    balance: Annotated[bool | None, typer.Option(
        "--balance/--no-balance", help="Cap every label at the smallest one.")] = None,
    background: Annotated[bool | None, typer.Option(
        "--background/--no-background",
        help="Sample the label map's background label too (default: yes).")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Leave out images whose label confidence is lower.")] = None,
    per_post: Annotated[int | None, typer.Option(
        min=0, help="At most this many images of one post (0: no limit) (default: 1).")] = None,
    comment_weight: Annotated[float | None, typer.Option(
        min=0.0, help="Engagement = likes + W * comments (default: 2).")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pick the most engaging images of each label; write WORKSPACE/sample.parquet.

    Corrupt files, duplicates, low-confidence labels and extra images of a post go first.

    A table shows per label how many images each of those filters removed.

    Example: weaklabel sample -w build --per-label 500 --quota nails=200 --no-background
    """
    setup_logging(quiet)
    from weaklabel.config import with_overrides
    from weaklabel.dataset.sample import format_funnel, run_sample

    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "labelmap": str(labelmap) if labelmap else None,
        "sample.per_label": per_label, "sample.balance": balance,
        "sample.include_background": background, "sample.min_confidence": min_confidence,
        "sample.per_post": per_post, "sample.comment_weight": comment_weight})
    quotas = parse_quotas(quota)
    if quotas:
        cfg = with_overrides(cfg, {"sample.quotas": {**cfg.sample.quotas, **quotas}})
    report = run_sample(workspace_of(cfg), cfg, force=force)
    if report.summary.funnel:
        typer.echo(format_funnel(report.summary.funnel_frame()))
    echo_report(report)


def export(
    out: Annotated[Path | None, typer.Argument(
        metavar="OUT",
        help="Export folder: missing or empty (default: the config's output).")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="Comma list of imagefolder, manifest, csv (default: all).")] = None,
    link: Annotated[str | None, typer.Option(
        help="hardlink (copy across file systems), copy or symlink (default: hardlink).")
    ] = None,
    source_prefix: Annotated[str | None, typer.Option(
        help="Manifest source-ref = PREFIX/<image path>, e.g. s3://bucket/download.")] = None,
    manifest_url: Annotated[str | None, typer.Option(
        help="Also upload the manifest to this object, e.g. "
             "s3://bucket/exports/manifest.jsonl (whole or not at all).")] = None,
    split: Annotated[str | None, typer.Option(
        help="train,val,test fractions (default: 0.8,0.1,0.1).")] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed (default: 42).")] = None,
    job_name: Annotated[str | None, typer.Option(
        help="Ground Truth job name: the manifest's label key (default: weaklabel).")] = None,
    creation_date: Annotated[str | None, typer.Option(
        help="Manifest creation-date (ISO) (default: newest post created_at).")] = None,
    image_root: ImageRootOpt = None,
    labelmap: LabelmapOpt = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Export again even when up to date, and replace an earlier "
                        "export that another workspace made in OUT (only the files its "
                        "ledger lists; any other file stops the export).")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Export the sample: ImageFolder tree, Ground Truth manifest, CSV.

    Writes OUT/<split>/<label>/<file>, OUT/manifest.jsonl, OUT/classes.json, OUT/dataset.csv.

    Splits are stratified by label; a duplicate group never straddles two splits.

    OUT must be missing or empty, or hold an earlier export of this workspace (replaced
    when stale); --force replaces any earlier export's own files.

    Example: weaklabel export -w build dataset/ --image-root download --split 0.8,0.1,0.1
    """
    setup_logging(quiet)
    from weaklabel.dataset.export import format_counts, parse_split, run_export

    # formats and link mode are checked once, by the config's validation
    formats = None if fmt is None else tuple(f.strip() for f in fmt.split(",") if f.strip())
    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "labelmap": str(labelmap) if labelmap else None,
        "output": str(out) if out is not None else None,
        "export.formats": formats, "export.link": link, "export.source_prefix": source_prefix,
        "export.manifest_url": manifest_url,
        "export.split": _usage(parse_split, split) if split is not None else None,
        "export.seed": seed, "export.job_name": job_name,
        "export.creation_date": creation_date})
    if not cfg.output:
        raise UsageError("no export folder given; pass OUT or set output in the config")
    if cfg.export.manifest_url and "manifest" not in cfg.export.formats:
        raise UsageError("--manifest-url needs the manifest format; add manifest to --format")
    cfg = local_image_root(cfg, image_root, quiet=quiet, sample_files=True)
    r = run_export(workspace_of(cfg), cfg, force=force, progress=not quiet)
    s = r.summary
    typer.echo(format_counts(s.counts))
    echo_report(r)
    if cfg.export.manifest_url and not r.up_to_date:
        typer.echo(f"uploaded {s.out}/manifest.jsonl → {cfg.export.manifest_url}")
    if s.replaced and not r.up_to_date:
        typer.echo(f"replaced {s.replaced} file(s) of the earlier export")
    if s.missing:
        typer.echo(f"{s.missing} source image(s) missing or unverified, not exported; see "
                   f"{cfg.workspace}/export.rejects.csv", err=True)


def report(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", dir_okay=False,
        help="HTML file to write (default: report.output, else WORKSPACE/report.html).")
    ] = None,
    gold: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Gold CSV post_id,label: add eval metrics.")] = None,
    image_root: ImageRootOpt = None,
    labelmap: LabelmapOpt = None,
    thumb_size: Annotated[int | None, typer.Option(
        min=32, max=512, help="Thumbnail edge in pixels (default: 128).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Write one self-contained HTML report of the workspace.

    Funnel, labels, confidence, contact sheets, clusters, purge, duplicates, eval (--gold).

    Everything is inline (CSS, SVG, thumbnails): the page works offline.

    Example: weaklabel report -w build --image-root download -o build/report.html
    """
    setup_logging(quiet)
    from weaklabel.dataset.report import run_report

    cfg = resolve_config(config, {
        "workspace": str(workspace) if workspace else None,
        "labelmap": str(labelmap) if labelmap else None,
        "gold": str(gold) if gold else None,
        "report.output": str(output) if output else None, "report.thumb_size": thumb_size})
    cfg = local_image_root(cfg, image_root, quiet=quiet, sample_files=True)
    if output is not None:
        not_an_artifact(output, workspace_of(cfg), what="report", example="report.html",
                        stage="report")
    r = run_report(workspace_of(cfg), cfg, progress=not quiet)
    s = r.summary
    typer.echo(f"thumbnails: {s.made} made, {s.cached} cached, {s.failed} unreadable")
    if s.not_run:
        typer.echo(f"not run yet: {', '.join(s.not_run)}")
    typer.echo(f"wrote {s.path} ({s.bytes // 1024} KiB)")

