"""The files one selection writes, named from its method, budget and key before anything runs, so
they can be checked first: the subset per dataset, ``failures`` and the report folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmssr_plugin.data.sample import DatasetSpec
from mmssr_plugin.data.subsets import subset_name
from mmssr_plugin.selection.config import SelectionConfig


@dataclass(frozen=True)
class SelectionOutputs:
    """Names and paths of what a selection writes.

    Attributes:
        names: dataset name -> registry name of its subset.
        subset_paths: dataset name -> the subset file (as ``data.subsets`` writes it).
        failures_path: the excluded and failed samples, one JSON object a line.
        report_dir: folder of report.html + report.json.
    """

    names: dict[str, str]
    subset_paths: dict[str, Path]
    failures_path: Path
    report_dir: Path

    @classmethod
    def of(cls, selection: SelectionConfig, specs: Sequence[DatasetSpec], output_dir: Path,
           key: str) -> SelectionOutputs:
        """The outputs of a selection with these settings, datasets and key."""
        tag = f"{selection.method}_{selection.budget_tag()}_{key[:8]}"
        names = {s.name: subset_name(s.name, selection.method, selection.budget_tag(), key[:8])
                 for s in specs}
        return cls(
            names=names,
            subset_paths={name: output_dir / f"{subset}.json" for name, subset in names.items()},
            failures_path=output_dir / f"failures_{tag}.jsonl",
            report_dir=output_dir / f"report_{tag}",
        )

    def files(self) -> list[Path]:
        """Every file path written directly (the report folder's files are checked when written)."""
        return [*self.subset_paths.values(), self.failures_path]
