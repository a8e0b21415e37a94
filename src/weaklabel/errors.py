"""The one exception type the CLI turns into a one-line error and exit code 1."""

from __future__ import annotations

from collections.abc import Iterable


class WeaklabelError(Exception):
    """A user's mistake or bad input: says what, where and how to fix it, in one line."""


class MissingArtifactError(WeaklabelError):
    """A stage needs an artifact that an earlier stage has not written yet."""

    def __init__(self, path: object, made_by: str) -> None:
        super().__init__(f"{path} does not exist; run `weaklabel {made_by}` first")
        self.path = path
        self.made_by = made_by


class UsageError(WeaklabelError):
    """A command-line option or argument that cannot be used: exit code 2, not 1."""


class ReviewNeeded(WeaklabelError):
    """The data moved under a reviewed file (a label map's clusters): a person must look
    again. The CLI exits with code 3, as a build does while the label map is missing."""


def closest(word: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The option a mistyped ``word`` most likely means, for a "did you mean" (difflib's
    ratio at least ``cutoff``), or None.

    Example:
        >>> closest("keywrods", ["name", "keywords", "clusters"])
        'keywords'
    """
    import difflib

    hits = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return hits[0] if hits else None
