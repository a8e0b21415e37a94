"""Real category names with ``/`` go through ``cluster --seed-keywords`` into a draft that
``propagate`` takes as it is written (issue 12, item 5): the draft keeps the name for
people and a folder-safe id for files, and the labels come out under those ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from weaklabel.labels.labelmap import load_labelmap

SEEDS = ("원피스/스커트: [립스틱, 틴트, 발색]\n"
         "IT/과학: [염색, 헤어, 미용실]\n"
         "교통/건축/국토: [네일, 젤네일, 손톱]\n")


def test_a_seeded_draft_with_slashes_is_accepted_as_written(
        cli: Callable[..., Any], embedded_workspace: Path, tmp_path: Path) -> None:
    kw = tmp_path / "kw.yaml"
    kw.write_text(SEEDS, encoding="utf-8")
    res = cli("cluster", "-w", embedded_workspace, "--seed-keywords", kw, "--k", 6, "-q")
    assert res.exit_code == 0, res.output
    draft = embedded_workspace / "labelmap.draft.yaml"
    text = draft.read_text("utf-8")
    assert "원피스/스커트" in text and "IT/과학" in text  # the names, as the user wrote them
    lm = load_labelmap(draft)
    names = {lab.name for lab in lm.labels}
    assert {"원피스/스커트", "IT/과학", "교통/건축/국토"} <= names
    assert not any("/" in i for i in lm.ids)  # ids name folders: no separator in them
    res = cli("propagate", "-w", embedded_workspace, "--labelmap", draft, "-q")
    assert res.exit_code == 0, res.output
    labels = pd.read_parquet(embedded_workspace / "post_labels.parquet")
    ids = {lm.id_of()[n] for n in ("원피스/스커트", "IT/과학", "교통/건축/국토")}
    seeded = set(labels.loc[labels["source"] == "seed", "label"])
    assert ids <= seeded  # every slash-named label got its seeds, under its id
