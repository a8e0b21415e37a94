"""Data contracts of the data-set artifacts (sample, export).

``sample.parquet`` holds one row per sampled image: an image is sampled for one label
only, even when two posts share it. Rows are sorted by label, then rank (1 = the most
engaging image of its label). ``score`` is ``likes + comment_weight * comments`` with a
missing count read as 0.

The export writes into the folder a person names (``OUT``), never into the workspace:

- ``OUT/<split>/<label>/<file>``: the ImageFolder tree;
- ``OUT/manifest.jsonl``: SageMaker Ground Truth image-classification output lines;
- ``OUT/classes.json``: label index → label id and display name;
- ``OUT/dataset.csv``: one row per image (:data:`DATASET`), spreadsheet-safe;
- ``OUT/.weaklabel-export.json``: the ledger of every file the export wrote, the run time
  and the parameters (the only place a timestamp lives).
"""

from __future__ import annotations

from weaklabel.contracts import Schema

SAMPLE = Schema(
    "sample",
    (("image", "str"), ("post_id", "str"), ("label", "str"), ("confidence", "float"),
     ("likes", "Int64"), ("comments", "Int64"), ("score", "float"), ("rank", "int")),
    key=("image",), sort=("label", "rank"),
)

FUNNEL_STEPS = ("labelled", "after_purge", "after_dedup", "after_confidence",
                "after_per_post", "sampled")
"""Columns of ``sample_funnel.csv`` after ``label``: images per label after each filter."""

SAMPLE_FUNNEL = Schema(
    "sample_funnel",
    (("label", "str"),) + tuple((s, "int") for s in FUNNEL_STEPS) + (("quota", "int"),),
    key=("label",),
)
"""One row per label plus a last row ``label == "(total)"``; ``quota`` is the cap applied
(after ``--balance``)."""

SPLITS = ("train", "val", "test")
"""Split names, in the order of the ``--split`` fractions."""

DATASET = Schema(
    "dataset",
    (("split", "str"), ("label", "str"), ("label_index", "int"), ("path", "str"),
     ("source", "str"), ("post_id", "str"), ("confidence", "float"), ("likes", "Int64"),
     ("comments", "Int64"), ("human_annotated", "str")),
    key=("source",),
)
"""``OUT/dataset.csv``: ``path`` is relative to OUT (empty without the ImageFolder
format); ``source`` is the image path relative to the image root. Rows are in split order
(train, val, test), then label, then source. ``human_annotated`` is ``yes`` when a
reviewer confirmed the image's label (``weaklabel review``), else ``no``."""

EXPORT_REJECTS = Schema(
    "export_rejects", (("image", "str"), ("reason", "str")), key=("image",), sort=("image",),
)
"""``WORKSPACE/export.rejects.csv``: sampled images that could not be exported."""

LEDGER = ".weaklabel-export.json"
"""The export's ledger file inside OUT."""

LABEL_CONFLICTS = Schema(
    "label_conflicts",
    (("group", "int"), ("image", "str"), ("post_id", "str"), ("label", "str"),
     ("confidence", "float")),
    key=("group", "image", "post_id"), sort=("group", "image", "post_id"),
)
"""``label_conflicts.csv`` (written by ``sample``): every labelled image of a duplicate
group whose images carry two or more different labels; ``group`` is the id in
``duplicates.csv``."""
