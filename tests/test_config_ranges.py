"""Every setting's range is checked once, before any stage starts (issue 7, case 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from weaklabel.cli import app
from weaklabel.config import SETTINGS, Config, load_config, validate_config, with_overrides
from weaklabel.errors import WeaklabelError


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text, match", [
    ("images:\n  max_pixels: -1\n", r"cfg.yaml:2: images.max_pixels must be a whole number "
                                    r"from 10000 to \d+, got -1"),
    ("workspace: w\ncluster:\n  k: -5\n", r"cfg.yaml:3: cluster.k must be a whole number "
                                          r"from 2 to 100000, got -5"),
    ("embed:\n  vector_size: -1\n", r"cfg.yaml:2: embed.vector_size must be a whole number "
                                    r"from 2 to 10000, got -1"),
    ("propagate:\n  k: 0\n", r"cfg.yaml:2: propagate.k must be a whole number from 1"),
    ("propagate:\n  min_confidence: .nan\n", r"propagate.min_confidence must be a number "
                                             r"from 0 to 1, got nan"),
    ("sample:\n  comment_weight: .inf\n", r"sample.comment_weight must be a number"),
    ("images:\n  hash_method: md5\n", r"images.hash_method must be one of ahash, dhash"),
    ("images:\n  hash_size: 4\n  near_threshold: 16\n",
     r"cfg.yaml:3: images.near_threshold must be below 16 for 16-bit hashes"),
    ("export:\n  split: [0.5, 0.2]\n", r"export.split must be 1 to 3 fractions"),
    ("export:\n  link: teleport\n", r"export.link must be one of hardlink, copy, symlink"),
    ("export:\n  source_prefix: \"s3://b/\\nx\"\n", r"export.source_prefix must be a URI"),
    # "s3://" alone made every manifest source-ref "s3:///…", an object of no bucket
    ("export:\n  source_prefix: \"s3://\"\n", r"export.source_prefix must be a URI"),
    ("cluster:\n  k_range: '9:3'\n", r"cluster.k_range must be A:B with 2 <= A <= B"),
    ("cluster:\n  k_range: 9:3\n", r"cluster.k_range must look like A:B .*quote it"),
    ("tokenize:\n  tokenizer: mecab\n", r"tokenize.tokenizer must be one of kiwi, okt, regex"),
    ("posts:\n  encoding: klingon\n", r"posts.encoding must be a text encoding"),
    ("sample:\n  quotas: {lips: -3}\n", r"sample.quotas 'lips' is -3"),
    ("posts:\n  path: \"a\\0b.csv\"\n", r"posts.path must be a file or folder path"),
    ("output: ''\n", r"output must be a file or folder path"),
])
def test_a_bad_value_names_file_line_key_and_range(tmp_path: Path, text: str,
                                                   match: str) -> None:
    with pytest.raises(WeaklabelError, match=match):
        load_config(_cfg(tmp_path, text))


def test_the_table_names_only_real_settings_and_the_defaults_pass() -> None:
    cfg = Config()
    for key in SETTINGS:
        obj = cfg
        for part in key.split("."):
            assert part in {f.name for f in dataclasses.fields(obj)}, key
            obj = getattr(obj, part)
    assert validate_config(cfg) is cfg


def _leaves(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        t = getattr(cls(), f.name)
        if dataclasses.is_dataclass(t):
            out += _leaves(type(t), f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_every_setting_has_a_line_in_the_table() -> None:
    missing = [k for k in _leaves(Config) if k not in SETTINGS]
    assert not missing, f"add a line to weaklabel.config.SETTINGS for {missing}"


@pytest.mark.parametrize("key", [k for k, c in SETTINGS.items()
                                 if c.kind in (int, float) and c.lo is not None])
def test_one_below_the_range_is_refused(key: str) -> None:
    rule = SETTINGS[key]
    assert rule.lo is not None
    low = rule.lo - 1 if rule.kind is int else rule.lo - 0.5
    with pytest.raises(WeaklabelError, match=rf"^command-line options: {key} must be"):
        validate_config(with_overrides(Config(), {key: rule.kind(low)}),
                        source="command-line options")
    if rule.hi is not None:
        with pytest.raises(WeaklabelError, match=rf"{key} must be"):
            validate_config(with_overrides(Config(), {key: rule.kind(rule.hi + 1)}))


def test_purge_apply_with_a_bad_limit_moves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "img"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    cfg = _cfg(tmp_path, "images:\n  max_pixels: -1\n")
    r = CliRunner().invoke(app, ["purge", str(root), "-w", str(tmp_path / "ws"), "-c",
                                 str(cfg), "--apply"])
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: ") and "images.max_pixels" in r.stderr
    assert "Traceback" not in r.output and (root / "a.jpg").exists()
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("bad", ["cluster:\n  k: -5\n", "embed:\n  vector_size: -1\n",
                                 "propagate:\n  k: 0\n"])
def test_build_fails_before_tokenize_on_a_bad_setting(tmp_path: Path, bad: str) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,caption\n1,립스틱\n", encoding="utf-8")
    ws = tmp_path / "ws"
    cfg = _cfg(tmp_path, f"workspace: {ws}\nposts:\n  path: {posts}\n{bad}")
    r = CliRunner().invoke(app, ["build", "-c", str(cfg), "-q"])
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"Error: {cfg}:")
    assert not ws.exists()  # no stage started: not even the workspace


def test_cli_flags_are_validated_with_the_file(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "images:\n  hash_size: 4\n")
    root = tmp_path / "img"
    root.mkdir()
    r = CliRunner().invoke(app, ["dedup", str(root), "-w", str(tmp_path / "ws"), "-c", str(cfg),
                                 "--threshold", "20"])
    assert r.exit_code == 2  # the file is fine on its own: the flag is the usage error
    assert r.stderr.startswith("Error: command-line option: images.near_threshold must be "
                               "below 16 for 16-bit hashes")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True), st.text(max_size=12))
_keys = st.sampled_from(sorted({k.split(".")[0] for k in SETTINGS} | {"x"}))
_sub = st.sampled_from(sorted({k.split(".")[-1] for k in SETTINGS} | {"y"}))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, st.one_of(_scalars, st.dictionaries(_sub, _scalars, max_size=4)),
                       max_size=4))
def test_any_config_gives_a_config_or_one_error_line(tmp_path: Path, data: dict) -> None:  # type: ignore[type-arg]
    import yaml

    p = _cfg(tmp_path, yaml.safe_dump(data, allow_unicode=True))
    try:
        cfg = load_config(p)
    except WeaklabelError as exc:
        assert "\n" not in str(exc)  # one line to print
        assert str(p) in str(exc)
    else:
        assert validate_config(cfg) is cfg
