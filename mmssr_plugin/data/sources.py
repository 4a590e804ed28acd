"""The image source of a row, used for the style bins of the selection."""

from __future__ import annotations

import re
from collections.abc import Sequence


def image_source_of(row: dict, written_images: Sequence[str], dataset: str, source_column: str | None) -> str:
    """Configured source column, else the first folder of the first image path, else the dataset name."""
    value = row.get(source_column) if source_column else None
    if value not in (None, ""):
        return str(value)
    if written_images:
        parts = [part for part in re.split(r"[\\/]", written_images[0]) if part not in ("", ".")]
        if len(parts) > 1:
            return parts[0]
    return dataset
