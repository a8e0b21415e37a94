"""Storage settings on a local image root: what does not apply is said, not ignored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from weaklabel.config import load_config
from weaklabel.storage import stage_inputs


def test_since_on_a_local_root_says_the_root_is_checked_whole(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # `build --since 20190305` on a local dump ran every day without a word
    root = tmp_path / "공백 있는 images"
    (root / "20190301").mkdir(parents=True)
    cfg_file = tmp_path / "build.yaml"
    cfg_file.write_text(f"workspace: {tmp_path / 'ws'}\nimages:\n  root: file://{root}\n"
                        "storage:\n  since: '20190305'\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="weaklabel.storage"):
        cfg, fetched = stage_inputs(load_config(cfg_file), posts=False)
    assert fetched is None and cfg.images.root == str(root)  # file:// is a local path
    assert [r.getMessage() for r in caplog.records] == [
        f"storage.since 20190305 limits the listing of an s3:// image root only; the local "
        f"root file://{root} is checked whole (files unchanged since the last run are not "
        "read again)"]


@pytest.mark.parametrize("url, what", [("s3://photos", "a bucket"),
                                       ("s3://photos/tables/", "a folder")])
def test_a_table_url_without_a_key_is_named_before_any_request(
        tmp_path: Path, url: str, what: str) -> None:
    # it asked for AWS credentials, which could not make a bucket a table
    from weaklabel.errors import WeaklabelError

    cfg_file = tmp_path / "build.yaml"
    cfg_file.write_text(f"workspace: {tmp_path / 'ws'}\nposts:\n  path: {url}\n",
                        encoding="utf-8")
    with pytest.raises(WeaklabelError, match=f"posts.path {url} names {what}, not a table; "
                                             "give the object's key, e.g. s3://photos/"):
        stage_inputs(load_config(cfg_file), images=False)
