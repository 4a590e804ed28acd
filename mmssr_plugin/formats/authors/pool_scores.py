"""The authors' score files matched to their pool: the score matrix, each sample's styles, counts.

Plain arrays and records only: turning styles and sources into the sampler's style bins is the
selection's job (``style_bins_from_codes`` in :mod:`mmssr_plugin.selection`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.pool import CHUNK_CHARS, Pool, read_pool
from mmssr_plugin.formats.authors.score_files import (
    LoadedFile,
    load_score_files,
    score_file_paths,
)

_SCORE_VALUES = np.array([0, 1, 2, 3, 4, 5, np.nan], dtype=np.float32)  # by int8 code; -1 -> NaN


@dataclass(frozen=True)
class FileStats:
    """Counts from one score file.

    Attributes:
        name: capability id, or ``"style"``.
        path: the file.
        lines: records in the file.
        unparseable: lines with a pool idx whose response is not usable (not a score 0..5 for a
            capability; no recognised style for ``style``).
        missing: pool samples with no line in the file.
        unknown: lines whose idx is not in the pool.
        unmatched: style only: comma-separated pieces that match no style (summed over pool lines).
    """

    name: str
    path: Path
    lines: int
    unparseable: int
    missing: int
    unknown: int
    unmatched: int = 0


@dataclass(frozen=True, eq=False)
class SampleStyles:
    """Each pool sample's styles, as codes into the distinct answers of ``style.jsonl``.

    Attributes:
        answers: the distinct style tuples; the last one is ``()`` (no response).
        codes: int64 ``[N]``, per pool sample the index of its styles in ``answers``.
    """

    answers: tuple[tuple[str, ...], ...]
    codes: np.ndarray

    def per_sample(self) -> list[tuple[str, ...]]:
        """The styles of every sample, in pool order (may be empty)."""
        return [self.answers[code] for code in self.codes.tolist()]


@dataclass
class AuthorsScores:
    """Everything read from a score folder for the pool's samples.

    Attributes:
        capabilities: capability ids, the column order of ``scores``.
        scores: float32 ``[N, C]``, NaN where missing or unparseable.
        styles: each sample's styles (no style: an empty tuple).
        files: per-file counts, capabilities first then ``style``.
    """

    capabilities: tuple[str, ...]
    scores: np.ndarray
    styles: SampleStyles
    files: list[FileStats]


def read_scores(score_dir: str | Path, pool: Pool, capabilities: Sequence[str]) -> AuthorsScores:
    """Read ``<capability>.jsonl`` for each capability and ``style.jsonl`` against a pool.

    Raises:
        AuthorsFormatError: missing files, malformed lines, or a duplicate idx in a file.
    """
    paths = score_file_paths(score_dir, capabilities)
    return assemble_scores(pool, capabilities, load_score_files(paths))


def read_pool_and_scores(
    pool_path: str | Path, score_dir: str | Path, capabilities: Sequence[str], chunk_chars: int = CHUNK_CHARS
) -> tuple[Pool, AuthorsScores]:
    """``read_pool`` and ``read_scores`` at once: the score files are parsed in a second thread.

    Arrow's JSON reader releases the GIL, so on two cores the score files cost little extra wall
    time on top of streaming the pool.

    Raises:
        AuthorsFormatError: as ``read_pool`` and ``read_scores`` (a pool error is raised first).
    """
    paths = score_file_paths(score_dir, capabilities)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmssr-scores") as executor:
        loading = executor.submit(load_score_files, paths, stop)
        try:
            pool = read_pool(pool_path, chunk_chars)
        except BaseException:
            stop.set()
            raise
        loaded = loading.result()
    return pool, assemble_scores(pool, capabilities, loaded)


def assemble_scores(pool: Pool, capabilities: Sequence[str], loaded: Sequence[LoadedFile]) -> AuthorsScores:
    """Match loaded files to the pool: the score matrix, each sample's styles and per-file counts.

    Raises:
        AuthorsFormatError: a duplicate idx in a file.
    """
    n = len(pool)
    scores = np.full((n, len(capabilities)), np.nan, dtype=np.float32)
    column_of = {cap: j for j, cap in enumerate(capabilities)}
    matched: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    files: list[FileStats] = []
    styles: SampleStyles | None = None
    for file in loaded:
        if id(file.idx) not in matched:
            matched[id(file.idx)] = _match_pool(file.idx, pool, file.path)
        positions, in_pool = matched[id(file.idx)]
        if n and not len(positions):
            raise AuthorsFormatError(
                f"{file.path}: 0 of its {len(file.idx)} idx values match the pool's {n} samples "
                f"(pool idx {int(pool.idx.min())}..{int(pool.idx.max())}, file idx "
                f"{int(file.idx.min())}..{int(file.idx.max())}): are these scores of another pool?"
            )
        codes = file.codes[in_pool]
        counts = dict(lines=len(file.idx), missing=n - len(positions), unknown=len(file.idx) - len(positions))
        if file.name == "style":
            has_style = np.array([bool(answer.styles) for answer in file.styles])
            unmatched = np.array([answer.unmatched for answer in file.styles], dtype=np.int64)
            response = np.full(n, len(file.styles) - 1, dtype=np.int64)  # "no response" by default
            response[positions] = codes
            styles = SampleStyles(tuple(answer.styles for answer in file.styles), response)
            counts.update(unparseable=int((~has_style[codes]).sum()), unmatched=int(unmatched[codes].sum()))
        else:
            scores[positions, column_of[file.name]] = _SCORE_VALUES[codes]
            counts.update(unparseable=int((codes < 0).sum()))
        files.append(FileStats(name=file.name, path=file.path, **counts))
    if styles is None or len(files) != len(capabilities) + 1:
        raise AuthorsFormatError("score files were not all loaded")  # only after a cancelled load
    return AuthorsScores(tuple(capabilities), scores, styles, files)


def _match_pool(idx: np.ndarray, pool: Pool, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Map a file's idx to pool positions.

    Returns:
        ``(positions, in_pool)``: pool positions of the lines whose idx is in the pool, and the
        mask of those lines.

    Raises:
        AuthorsFormatError: if an idx occurs twice in the file.
    """
    where = pool.positions(idx)
    in_pool = where >= 0
    positions = where[in_pool]
    seen = np.bincount(positions, minlength=len(pool))
    duplicate = None
    if len(positions) and seen.max() > 1:
        duplicate = int(pool.idx[int(np.argmax(seen > 1))])
    else:
        outside, counts = np.unique(idx[~in_pool], return_counts=True)
        if len(counts) and counts.max() > 1:
            duplicate = int(outside[int(np.argmax(counts > 1))])
    if duplicate is not None:
        lines = np.flatnonzero(idx == duplicate)[:2] + 1
        raise AuthorsFormatError(f"{path}: duplicate idx {duplicate} (lines {lines[0]} and {lines[1]})")
    return positions, in_pool
