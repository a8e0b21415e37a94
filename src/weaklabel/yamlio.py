"""YAML for hand-edited files: line numbers on every mapping, no silent surprises.

PyYAML's safe loader silently keeps the last of two duplicate keys, reads the keys
``no``, ``yes``, ``on``, ``off`` and ``null`` as booleans or None and the number ``010``
as octal 8 (YAML 1.1). In a label map or a config each is a mistake a person cannot
see, so this loader rejects them with the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weaklabel.errors import WeaklabelError


class LineDict(dict[Any, Any]):
    """A dict that remembers the 1-based line of each key and of itself."""

    line: int = 0
    key_lines: dict[Any, int]


def _loader(path: Path, id_keys: Mapping[str, str]) -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        parents: list[Any]

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> LineDict:
        loader.flatten_mapping(node)
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        parents = loader.__dict__.setdefault("parents", [])
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                shown = key_node.value
                if len(parents) == 1 and parents[0] in id_keys:
                    # "quote it" would only lead to "'1.5' is not a cluster id"
                    raise WeaklabelError(
                        f"{path}:{line}: {parents[0]} key {shown!r} is read by YAML as "
                        f"{key!r}; a whole-number {id_keys[parents[0]]} is expected "
                        "there, e.g. 3:")
                raise WeaklabelError(
                    f"{path}:{line}: key {shown!r} is read by YAML as {key!r}; "
                    f"quote it: '{shown}':"
                )
            if key in out:
                raise WeaklabelError(
                    f"{path}:{line}: duplicate key {key!r} (first on line "
                    f"{out.key_lines[key]}); merge the two entries"
                )
            parents.append(key)
            try:
                out[key] = loader.construct_object(value_node, deep=True)
            finally:
                parents.pop()
            out.key_lines[key] = line
        return out

    def construct_int(loader: Any, node: Any) -> int:
        value = loader.construct_yaml_int(node)
        sign = "-" if str(node.value).startswith("-") else ""
        text = str(node.value).replace("_", "").lstrip("+-")
        # YAML 1.1 reads 010 as octal 8, which nobody means (007 is 7 either way); its
        # base-60 1:20 is left to the settings that take text such as k_range A:B
        octal = len(text) > 1 and text[0] == "0" and text[1:].isdigit()
        if octal and int(sign + text, 10) != value:
            meant = sign + (text.lstrip("0") or "0")
            raise WeaklabelError(
                f"{path}:{node.start_mark.line + 1}: {node.value} is read by YAML as the "
                f"octal number {value}; write {meant} for the number {meant}, or quote it "
                f"('{node.value}') for text")
        return int(value)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    return Loader


def load_yaml(path: Path, *, id_keys: Mapping[str, str] | None = None) -> Any:
    """Parse a YAML file with line-aware mappings; errors name the file and line.

    ``id_keys``: top-level keys whose mapping is keyed by whole-number ids → what the
    ids are (a label map's ``{"cluster_words": "cluster id"}``), so a key YAML reads as
    a float is named as such.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise WeaklabelError(f"{path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise WeaklabelError(f"{path} is not UTF-8 text; save it as UTF-8") from exc
    except OSError as exc:
        raise WeaklabelError(f"cannot read {path}: {exc.strerror}") from exc
    if len(text) > MAX_CHARS:
        raise WeaklabelError(
            f"{path} is {len(text):,} characters; a hand-edited YAML file may have at most "
            f"{MAX_CHARS:,}; split it or check that it is the right file")
    loader = _loader(path, id_keys or {})(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    except RecursionError:
        raise WeaklabelError(f"{path}: YAML nested too deeply; flatten it") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        fix = ("YAML indents with spaces, never tabs: replace the tab by spaces"
               if "'\\t'" in str(exc.problem) else "check indentation and quoting")
        raise WeaklabelError(f"{path}:{line}: invalid YAML: {exc.problem}; {fix}") from exc
    except yaml.YAMLError as exc:
        raise WeaklabelError(f"{path}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


MAX_CHARS = 16 * 1024 * 1024
"""Largest hand-edited YAML file read (a label map of 100,000 keywords is ~2 MB)."""
MAX_NODES = 1_000_000
"""Most values a YAML document may hold once its aliases are expanded."""


def _check_size(root: Any, path: Path) -> None:
    """Refuse an alias bomb (``&a [*b, *b, …]`` nine levels deep expands to billions of
    values from a few lines) and a recursive alias, before anything is built.

    Sizes are counted on the node graph, each shared node once, so the check itself
    stays cheap whatever the expanded size.
    """
    import yaml

    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            kids = _children(node)
            total = 1 + sum(size[id(k)] for k in kids)
            size[key] = total
            if total > MAX_NODES:
                line = node.start_mark.line + 1
                raise WeaklabelError(
                    f"{path}:{line}: this YAML expands to more than {MAX_NODES:,} values "
                    "(aliases *name repeated inside each other); write the values out "
                    "instead of nesting aliases")
            continue
        if key in size:
            continue
        if key in active:
            line = node.start_mark.line + 1
            raise WeaklabelError(f"{path}:{line}: a YAML alias refers to itself; remove the "
                                 "recursive alias")
        active.add(key)
        stack.append((node, True))
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
