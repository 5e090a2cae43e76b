"""What every dataset importer shares: the result record, problem collection, val carving."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, TypeVar

from tqdm import tqdm

from retf_ros.errors import DataFormatError


@dataclass
class ImportResult:
    clips: int = 0
    frames: int = 0
    splits: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong" per skipped file


T = TypeVar("T")


def progress(items: list[T], desc: str) -> Iterable[T]:
    """A tqdm bar on stderr over the files of an import."""
    return tqdm(items, desc=desc, unit="file", file=sys.stderr, leave=False)


class LineError(DataFormatError):
    """A malformed line; ``str`` names the file and the 1-based line number."""

    def __init__(self, path: Path | str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")


def require_some(result: ImportResult, src: Path, what: str) -> None:
    """An import that produced nothing is an error (exit 2), not an empty store."""
    if result.clips == 0:
        detail = f"; first problem: {result.problems[0]}" if result.problems else ""
        raise DataFormatError(f"{src}: no {what} could be imported{detail}")


def carve_validation(train: list[str], group_of: dict[str, int], fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """Hold out whole groups (performers, subjects) of the training list for validation.

    The groups with the highest ids, ``max(1, round(fraction * groups))`` of them, become
    validation, as long as at least one group stays in training. Returns (train, val).
    """
    groups = sorted({group_of[c] for c in train})
    if len(groups) < 2:
        return list(train), []
    count = min(max(1, int(round(fraction * len(groups)))), len(groups) - 1)
    held = set(groups[-count:])
    return [c for c in train if group_of[c] not in held], [c for c in train if group_of[c] in held]


def parse_floats(tokens: list[str], path: Path, line: int, count: int) -> list[float]:
    if len(tokens) != count:
        raise LineError(path, line, f"expected {count} numbers, found {len(tokens)}")
    try:
        return [float(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise LineError(path, line, f"not a number: {bad!r}") from None


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
