"""Data contracts of the image-hygiene artifacts (purge, dedup, quarantine).

The CSV artifacts hold paths relative to the image root in POSIX form. A path that is
not valid UTF-8 is written with each undecodable byte as ``\\xNN`` (Python's
``backslashreplace``), see :func:`weaklabel.images.walk.display_path`; a path with
a newline or comma is quoted by the CSV writer. Rows are sorted so the same tree and
config give byte-identical files. Hygiene knows no labels: the label-conflict report
belongs to ``sample`` (:data:`weaklabel.dataset.contracts.LABEL_CONFLICTS`).
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
"""Every status a file can get. ``skipped``: a symlink (not followed), a folder changed
during the walk (not followed) or the workspace."""

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
"""One row per duplicate file, per pair: ``kind`` is ``exact`` (byte-identical to the kept
file, or to the near copy the reason names; ``distance`` 0) or ``near`` (perceptual-hash
Hamming ``distance`` of the kept file, within the threshold). Dropping every ``exact``
row loses no picture; ``near`` rows are the ones to review."""

DEDUP_EXCLUDED = Schema(
    "dedup_excluded",
    (("path", "str"), ("reason", "str")),
    key=("path",), sort=("path",),
)
"""Files left out of near-duplicate matching (corrupt, uniform image, degenerate hash)."""

CSV_ARTIFACTS = {
    "purge.csv": PURGE,
    "duplicates.csv": DUPLICATES,
    "dedup_excluded.csv": DEDUP_EXCLUDED,
}
