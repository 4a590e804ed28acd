"""The report page's lists: the registered subsets, the selected samples and the excluded or
failed samples (the first ones, with a link to the file holding all)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from mmssr_plugin.report.html_parts import fmt, table
from mmssr_plugin.report.listing import failure_rows


def file_link(path: str) -> str:
    """A link to a local file (as given when it is not absolute)."""
    target = Path(path)
    href = target.as_uri() if target.is_absolute() else path
    return f'<a href="{escape(href)}">{escape(path)}</a>'


def subsets_block(d: dict[str, Any]) -> str:
    """The registered dataset names and subset files, for the top of the page."""
    subsets = d.get("subsets") or []
    if not subsets:
        return ""
    rows = "".join(
        f"<li>registered dataset <b>{escape(part['name'])}</b>: {fmt(part.get('rows'))} rows in "
        f"{file_link(str(part['path']))}</li>"
        for part in subsets
    )
    return f"<ul class=\"subsets\">{rows}</ul>"


def selected_section(d: dict[str, Any]) -> str:
    """The selected samples: id, dataset row, the capability that picked it, score, style bins."""
    listing = d.get("selected_samples") or {}
    rows = listing.get("rows") or []
    if not rows:
        return "<p>No sample was selected.</p>"
    body = table(
        ["uid", "dataset", "row", "picked by", "score", "expected", "style bins"],
        [[r["uid"], r["dataset"], r["row"], r["capability"] or "-",
          "-" if r["score"] is None else r["score"], "-" if r["expected"] is None else r["expected"],
          "; ".join(r["style_bins"]) or "-"] for r in rows],
    )
    more = listing.get("rows_left_out") or 0
    tail = (f'<p class="note">{more} more selected samples are in the subset files and '
            "report.json.</p>") if more else ""
    return (f'<p class="note">{listing["total"]} samples, in pool order.</p>'
            f'<div class="scroll">{body}</div>{tail}')


def failures_section(d: dict[str, Any]) -> str:
    """The excluded or failed samples: dataset, row, uid, image and reason."""
    failures = d.get("failures") or {}
    total = failures.get("total") or 0
    where = f" All of them: {file_link(failures['file'])}." if failures.get("file") else ""
    if not total:
        return f"<p>No sample was excluded or failed.{where}</p>"
    shown = failures.get("rows") or []
    body = table(["dataset", "row", "uid", "image", "reason"], failure_rows(shown))
    return (f'<p class="note">{total} samples excluded by validation or failed at scoring; the '
            f"first {len(shown)} are listed.{where}</p><div class=\"scroll\">{body}</div>")
