"""Data contracts of the image-hygiene artifacts (purge, dedup, quarantine).

The CSV artifacts hold paths relative to the image root in POSIX form. A path that is
not valid UTF-8 is written with each undecodable byte as ``\\xNN`` (Python's
``backslashreplace``), see :func:`weaklabel.images.inventory.display_path`; a path with
a newline or comma is quoted by the CSV writer. Rows are sorted so the same tree and
config give byte-identical files.

``image_labels_dedup.parquet`` uses the shared :data:`weaklabel.contracts.IMAGE_LABELS`
schema.
"""

from __future__ import annotations

from weaklabel.contracts import Schema

PURGE_STATUSES = (
    "ok",
    "empty",
    "not_an_image",
    "truncated",
    "decode_error",
    "decompression_bomb",
    "unsupported",
    "unreadable",
    "skipped",
)
"""Every status a file can get. ``skipped``: a symlink (not followed) or the workspace."""

CORRUPT_STATUSES = ("empty", "not_an_image", "truncated", "decode_error", "decompression_bomb")
"""Statuses that ``purge --apply`` quarantines. ``unsupported`` and ``unreadable`` are
reported but never moved: the file may be fine, this machine just cannot read it."""

PURGE = Schema(
    "purge",
    (("path", "str"), ("status", "str"), ("reason", "str")),
    key=("path",), sort=("path",),
)
DUPLICATES = Schema(
    "duplicates",
    (("group", "int"), ("kind", "str"), ("kept", "str"), ("duplicate", "str"),
     ("distance", "int"), ("reason", "str")),
    key=("duplicate",), sort=("group", "duplicate"),
)
"""One row per duplicate file; ``kind`` is ``exact`` (same SHA-1 as the kept file) or
``near`` (perceptual-hash Hamming ``distance`` within the threshold of the kept file)."""

DEDUP_EXCLUDED = Schema(
    "dedup_excluded",
    (("path", "str"), ("reason", "str")),
    key=("path",), sort=("path",),
)
"""Files left out of near-duplicate matching (corrupt, uniform image, degenerate hash)."""

LABEL_CONFLICTS = Schema(
    "label_conflicts",
    (("group", "int"), ("image", "str"), ("post_id", "str"), ("label", "str"),
     ("confidence", "float")),
    key=("group", "image", "post_id"), sort=("group", "image", "post_id"),
)
"""Duplicate groups whose images carry two or more different (non-abstain) labels."""

CSV_ARTIFACTS = {
    "purge.csv": PURGE,
    "duplicates.csv": DUPLICATES,
    "dedup_excluded.csv": DEDUP_EXCLUDED,
    "label_conflicts.csv": LABEL_CONFLICTS,
}
