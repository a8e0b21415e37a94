"""Pipeline config: defaults, YAML loading with validation, overrides."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from weaklabel.config import (
    Config,
    as_dict,
    load_config,
    resolve_workers,
    with_overrides,
)
from weaklabel.errors import WeaklabelError


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.embed.workers == 1 and cfg.embed.seed == 42
    assert cfg.tokenize.workers == 0  # decided at run time, never at import


def test_yaml_values_are_coerced(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path, """\
workspace: out
posts:
  path: data/posts.csv
  columns:
    caption: text
tokenize:
  keep_pos: Noun, Hashtag
  stem: false
embed:
  seed: 7
propagate:
  min_confidence: 1
sample:
  quotas:
    lips: 50
export:
  split: [0.9, 0.1]
"""))
    assert cfg.workspace == "out"
    assert cfg.posts.path == "data/posts.csv" and cfg.posts.columns.caption == "text"
    assert cfg.posts.columns.post_id == "post_id"  # untouched siblings keep defaults
    assert cfg.tokenize.keep_pos == ("Noun", "Hashtag") and cfg.tokenize.stem is False
    assert cfg.embed.seed == 7 and cfg.embed.vector_size == 100
    assert cfg.propagate.min_confidence == 1.0
    assert isinstance(cfg.propagate.min_confidence, float)
    assert cfg.sample.quotas == {"lips": 50}
    assert cfg.export.split == (0.9, 0.1)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(_cfg(tmp_path, "# all defaults\n")) == Config()


@pytest.mark.parametrize("text, match", [
    ("embedd: {}\n", "unknown setting 'embedd'; did you mean 'embed'? valid: cluster, embed, "
     "engine, eval, export"),
    ("colour: red\n", "unknown setting 'colour'; valid: cluster"),
    ("embed:\n  sed: 1\n", "unknown setting 'sed'; did you mean 'seed'? valid: epochs, min_count"),
    ("embed:\n  seed: x\n", "embed.seed must be a whole number, got 'x'"),
    ("embed:\n  seed: true\n", "embed.seed must be a whole number, got True"),
    ("embed:\n  seed: 1.5\n", "embed.seed must be a whole number, got 1.5"),
    ("tokenize:\n  stem: 1\n", "tokenize.stem must be true or false, got 1"),
    ("propagate:\n  k: [1]\n", "propagate.k must be a whole number"),
    ("propagate:\n  min_confidence: high\n", "propagate.min_confidence must be a number"),
    ("embed: 3\n", "embed must be a mapping of settings, got 3"),
    ("sample:\n  quotas: [1]\n", "sample.quotas must be a mapping"),
    ("tokenize:\n  keep_pos: 3\n", "tokenize.keep_pos must be a list"),
    ("workspace: [a]\n", "workspace must be text"),
    ("- a\n", "must be a mapping of settings"),
])
def test_bad_settings_are_named(tmp_path: Path, text: str, match: str) -> None:
    p = _cfg(tmp_path, text)
    with pytest.raises(WeaklabelError) as e:
        load_config(p)
    assert match in str(e.value)
    assert str(p) in str(e.value)


def test_yaml_key_traps_reach_the_config(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match=r"cfg.yaml:2: key 'no' is read by YAML as False"):
        load_config(_cfg(tmp_path, "sample:\n  no: 1\n"))


def test_overrides_take_precedence_and_none_is_ignored(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path, "embed:\n  seed: 7\n  epochs: 3\n"))
    out = with_overrides(cfg, {"embed.seed": 9, "embed.epochs": None, "workspace": "w",
                               "posts.columns.caption": "text"})
    assert out.embed.seed == 9 and out.embed.epochs == 3
    assert out.workspace == "w" and out.posts.columns.caption == "text"
    assert cfg.embed.seed == 7  # frozen: the original is untouched


def test_configs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().embed.seed = 1  # type: ignore[misc]


def test_as_dict_is_json_able() -> None:
    d = as_dict(Config())
    assert json.loads(json.dumps(d)) == json.loads(json.dumps(d, sort_keys=True))
    assert d["embed"]["seed"] == 42 and d["tokenize"]["keep_pos"] == ("Noun", "Hashtag", "Alpha")


def test_resolve_workers() -> None:
    assert resolve_workers(3) == 3
    assert resolve_workers(0) >= 1


def test_config_errors_name_the_line(tmp_path: Path) -> None:
    p = _cfg(tmp_path, "workspace: build\nembed:\n  seed: 3\n  epoch: 5\n")
    with pytest.raises(WeaklabelError, match=r"cfg.yaml:4: embed: unknown setting 'epoch'; "
                                             r"did you mean 'epochs'\? valid: epochs"):
        load_config(p)
    p = _cfg(tmp_path, "embed:\n  seed: 3\n  epochs: many\n")
    with pytest.raises(WeaklabelError, match=r"cfg.yaml:3: embed.epochs must be a whole "
                                             r"number, got 'many'"):
        load_config(p)


def test_post_id_and_caption_on_one_column_is_named(tmp_path: Path) -> None:
    # `--col post_id=caption` read every caption as its post's id, without a word
    p = _cfg(tmp_path, "posts:\n  columns:\n    post_id: text\n    caption: text\n")
    with pytest.raises(WeaklabelError, match=r"cfg.yaml:3: posts.columns.post_id must name "
                                             r"another column than posts.columns.caption"):
        load_config(p)
    from weaklabel.config import validate_config

    with pytest.raises(WeaklabelError, match=r"posts.columns.caption must name another "
                                             r"column than posts.columns.post_id"):
        validate_config(with_overrides(Config(), {"posts.columns.caption": "post_id"}))
