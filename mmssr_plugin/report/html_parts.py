"""Building blocks of the plugin's self-contained HTML pages: the style sheet, sections, tables,
embedded PNGs and JSON blocks (the selection report and the scorer evaluation share them)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

PAGE_CSS = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d9dee6; --accent: #1f5b99; --soft: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--ink);
       background: #fff; }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); background: var(--soft); }
header h1 { margin: 0 0 6px; font-size: 20px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; font-size: 13px; }
main { max-width: 1240px; padding: 0 28px 40px; }
section { margin-top: 26px; }
h2 { font-size: 17px; border-bottom: 2px solid var(--accent); padding-bottom: 3px; }
h3 { font-size: 15px; margin: 22px 0 4px; }
h4 { font-size: 13px; margin: 10px 0 6px; color: var(--muted); font-weight: 600; }
p.note { color: var(--muted); margin: 4px 0 10px; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.kpi b { display: block; font-size: 20px; }
.kpi span { color: var(--muted); font-size: 12px; }
.alert { border-left: 4px solid #c0392b; background: #fdf1ef; padding: 8px 12px; margin: 10px 0; }
img.plot { max-width: 100%; height: auto; border: 1px solid var(--line); }
.scroll { max-height: 420px; overflow: auto; display: inline-block; }
pre { background: var(--soft); padding: 10px; overflow: auto; font-size: 12px; max-height: 360px; }
.ex { border: 1px solid var(--line); border-radius: 6px; padding: 8px; min-width: 0; }
.ex .head { display: flex; gap: 10px; }
.ex .thumb { flex: 0 0 96px; width: 96px; height: 96px; display: flex; align-items: center;
             justify-content: center; background: var(--soft); color: var(--muted);
             font-size: 11px; text-align: center; }
.ex .facts { min-width: 0; font-size: 12px; color: var(--muted); }
.ex .facts div { margin-bottom: 3px; }
.ex .meta { font-size: 11px; color: var(--muted); white-space: nowrap; overflow: hidden;
            text-overflow: ellipsis; margin-top: 4px; }
.badge { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 11px;
         color: #fff; background: #7a8494; }
.badge.in { background: #2e7d4f; }
.score { font-weight: 700; font-size: 20px; color: var(--ink); margin-right: 6px; }
.turns { max-height: 9em; overflow: auto; font-size: 12px; margin-top: 4px;
         border-top: 1px dashed var(--line); padding-top: 3px; }
.turns p { margin: 2px 0; white-space: pre-wrap; word-break: break-word; }
.turns .role { font-weight: 600; color: var(--accent); }
"""


def section(sid: str, name: str, content: str) -> str:
    """A page section with an id (for the navigation) and a heading."""
    return f'<section id="{sid}">\n<h2>{escape(name)}</h2>\n{content}\n</section>'


def json_block(value: Any) -> str:
    """``value`` as indented, sorted JSON in a ``<pre>`` block."""
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def img(png: bytes, alt: str) -> str:
    """A PNG embedded as a ``data:`` URI."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img class="plot" src="{uri}" alt="{escape(alt)}">'


class Num(str):
    """Text shown right-aligned like a number (e.g. ``"3 / 12"``)."""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; numbers (and :class:`Num` text) are right-aligned."""
    def cell(tag: str, value: Any) -> str:
        numeric = isinstance(value, (int, float, Num)) and not isinstance(value, bool)
        klass = ' class="num"' if numeric else ""
        return f"<{tag}{klass}>{escape(fmt(value))}</{tag}>"

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def share(part: int, whole: int) -> Num | None:
    """``part`` as a percentage of ``whole`` (None when ``whole`` is 0)."""
    return Num(f"{100.0 * part / whole:.1f}") if whole else None


def fmt(value: Any) -> str:
    """A cell value as text: floats rounded, a dash for None."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)
