"""The side-by-side tables of an evaluation (scores per capability, styles), as text cells that
the command prints and the page shows; every figure carries the sample count behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OVERALL = "overall"
SCORE_FIGURES = ("agreement", "MAE", "Spearman", "no digit")


def score_table(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows: each capability, then all pooled; per scorer: agreement, MAE, Spearman, no digit."""
    scorers = document["scorers"]
    headers = ["capability", "teacher-scored"]
    headers += [f"{s['name']}: {figure}" for s in scorers for figure in SCORE_FIGURES]
    rows = []
    for cap_id in [cap["id"] for cap in document["capabilities"]] + [OVERALL]:
        figures = [s["overall"] if cap_id == OVERALL else s["capabilities"][cap_id] for s in scorers]
        row = [cap_id, str(figures[0]["samples"]) if figures else "-"]
        for f in figures:
            n = f["answered"]
            rho = f"{f['spearman']:.3f}" if f["spearman"] is not None else f"n/a, {f['spearman_undefined']}"
            row += [
                _figure(f["agreement"], "{:.3f}", n),
                _figure(f["mae"], "{:.2f}", n),
                f"{rho} (n={n})",
                _percent(f["non_digit_share"], f["non_digit"], f["samples"]),
            ]
        rows.append(row)
    return headers, rows


def style_table(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows: every style the teacher or a styler named, then all styles pooled (micro average);
    per scorer: precision (n = its predictions) and recall (n = the teacher's)."""
    scorers = document["scorers"]
    headers = ["style", "teacher"] + [f"{s['name']}: {what}" for s in scorers for what in ("precision", "recall")]
    if not scorers:
        return headers, []
    names = [
        style for style, counts in scorers[0]["styles"]["per_style"].items()
        if counts["teacher"] or any(s["styles"]["per_style"][style]["predicted"] for s in scorers)
    ]
    rows = []
    for style in names + [OVERALL]:
        counts = [s["styles"]["overall" if style == OVERALL else "per_style"] for s in scorers]
        counts = [c if style == OVERALL else c[style] for c in counts]
        row = [style, str(counts[0]["teacher"])]
        for c in counts:
            row += [_figure(c["precision"], "{:.3f}", c["predicted"]), _figure(c["recall"], "{:.3f}", c["teacher"])]
        rows.append(row)
    return headers, rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned plain-text lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(headers)] + [line(row) for row in rows]


def _figure(value: float | None, spec: str, n: int) -> str:
    return f"{'n/a' if value is None else spec.format(value)} (n={n})"


def _percent(value: float | None, part: int, whole: int) -> str:
    return f"{'n/a' if value is None else f'{100 * value:.1f}%'} ({part}/{whole})"
