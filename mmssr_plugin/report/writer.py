"""Writing ``report.html`` and its JSON twin ``report.json`` atomically."""

from __future__ import annotations

import json
from pathlib import Path

from mmssr_plugin.report.model import ReportData
from mmssr_plugin.utils.files import atomic_write_text

HTML_NAME = "report.html"
JSON_NAME = "report.json"


def report_json(data: ReportData) -> str:
    """The canonical JSON text of ``data``: sorted keys, no NaN, trailing newline."""
    return json.dumps(data.to_dict(), indent=1, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def write_report(out_dir: str | Path, data: ReportData) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out_dir`` (created if needed).

    Both files depend on ``data`` only (no timestamps), so two runs on the same selection give
    byte-identical files.

    Returns:
        ``(html_path, json_path)``.
    """
    from mmssr_plugin.report.html import render_html

    return write_page_pair(out_dir, (HTML_NAME, render_html(data)), (JSON_NAME, report_json(data)))


def write_page_pair(
    out_dir: str | Path, html: tuple[str, str], json_twin: tuple[str, str]
) -> tuple[Path, Path]:
    """Write an HTML page and its JSON twin (each ``(file name, text)``) into ``out_dir``.

    The JSON is written first, so a page on disk always has its twin. Returns the two paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / json_twin[0], out / html[0]
    atomic_write_text(json_path, json_twin[1])
    atomic_write_text(html_path, html[1])
    return html_path, json_path
