"""The evaluation page: one self-contained HTML file (tables, confusion matrices per capability,
a calibration plot as a ``data:`` PNG) and its JSON twin, both byte-stable for the same inputs.

The look and the table, image and section helpers are the selection report's.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from mmssr_plugin.evaluation.comparison import OVERALL, score_table, style_table
from mmssr_plugin.evaluation.metrics import SCORE_LEVELS
from mmssr_plugin.report.html_parts import PAGE_CSS, Num, img, json_block, section, table
from mmssr_plugin.report.plots import render_png
from mmssr_plugin.report.writer import write_page_pair

HTML_NAME = "evaluation.html"
JSON_NAME = "evaluation.json"
SCORER_COLORS = ("#1f5b99", "#d0702c", "#2e7d4f", "#8e44ad", "#c0392b", "#5b6575")
_EXTRA_CSS = """
.matrices { display: flex; flex-wrap: wrap; gap: 18px; }
.matrices caption { text-align: left; font-weight: 600; padding: 2px 0; }
td.num { white-space: nowrap; }
td.cell { text-align: right; font-variant-numeric: tabular-nums; min-width: 34px; }
"""


def evaluation_json(document: dict[str, Any]) -> str:
    """The canonical JSON text of an evaluation: sorted keys, no NaN, trailing newline."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_evaluation(out_dir: str | Path, document: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``evaluation.html`` and ``evaluation.json`` into ``out_dir`` (created if needed)."""
    return write_page_pair(out_dir, (HTML_NAME, render_page(document)),
                           (JSON_NAME, evaluation_json(document)))


def render_page(document: dict[str, Any]) -> str:
    """The whole page of an evaluation document."""
    sections = (
        ("held-out", "Held-out labels", _held_out(document)),
        ("scores", "Scores, scorers side by side", _scores(document)),
        ("styles", "Styles", _styles(document)),
        ("confusion", "Confusion matrices: teacher vs scorer", _confusion(document)),
        ("calibration", "Calibration: expected score vs teacher score", _calibration(document)),
        ("scorers", "Scorers", _scorers(document)),
    )
    nav = "".join(f'<a href="#{sid}">{escape(name.split(":")[0])}</a>' for sid, name, _ in sections)
    body = "\n".join(section(sid, name, content) for sid, name, content in sections)
    title = escape(document["title"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>{PAGE_CSS}{_EXTRA_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{title}</h1><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _held_out(d: dict[str, Any]) -> str:
    source = d["held_out"]
    kpis = [("held-out samples", source["samples"]), ("capabilities", len(d["capabilities"])),
            ("scorers", len(d["scorers"])), ("min digit mass", d["min_digit_mass"])]
    facts = [
        ["source", source["kind"]],
        ["validation split", source["val_split"] or "-"],
        ["label files", ", ".join(source["labels"])],
        ["pool", f"{source['dataset']} in {source['dataset_dir']}"],
        ["labelled samples", str(source["labelled_samples"])],
        ["labelled but not in the pool", str(source["not_in_dataset"])],
        ["labelled but unusable", ", ".join(f"{k}: {v}" for k, v in source["unusable"].items()) or "0"],
        ["validation records matching no labelled sample", str(source["val_records_unmatched"])],
        ["capabilities (keyword)", ", ".join(f"{c['id']} ({c['keyword']})" for c in d["capabilities"])],
    ]
    return "\n".join([
        '<div class="kpis">' + "".join(
            f'<div class="kpi"><b>{escape(str(value))}</b><span>{escape(label)}</span></div>'
            for label, value in kpis) + "</div>",
        table(["fact", "value"], facts),
    ])


_SCORES_NOTE = (
    '<p class="note">A score counts as answered when the scorer\'s probability mass on the digits '
    "0..5 reaches the minimum digit mass; agreement (argmax digit = teacher score), MAE (of the "
    "argmax digit) and Spearman (expected score vs teacher score, average ranks for ties) are over "
    "the answered samples, n each; no digit is the share of teacher-scored samples that were not "
    "answered. The overall row pools every sample and capability.</p>"
)


def _scores(d: dict[str, Any]) -> str:
    headers, rows = score_table(d)
    return _SCORES_NOTE + '<div class="scroll">' + table(headers, _numeric(rows)) + "</div>"


def _styles(d: dict[str, Any]) -> str:
    headers, rows = style_table(d)
    if not rows or d["scorers"][0]["styles"]["samples"] == 0:
        return '<p class="note">No held-out sample has teacher styles.</p>'
    samples = d["scorers"][0]["styles"]["samples"]
    note = (f'<p class="note">Over the {samples} held-out samples with teacher styles: precision '
            "over the samples the styler named a style for, recall over those the teacher named it "
            "for (n each); overall sums every style.</p>")
    answers = "".join(f"<li>{escape(s['name'])}: {s['styles']['no_style_answer']} answers named no known style</li>"
                      for s in d["scorers"])
    return note + table(headers, _numeric(rows)) + f"<ul>{answers}</ul>"


def _confusion(d: dict[str, Any]) -> str:
    out = ['<p class="note">Rows: the teacher\'s score; columns: the scorer\'s argmax digit, or no '
           "digit answer; n: teacher-scored samples of the row. Shade: share of the row.</p>"]
    for cap in d["capabilities"] + [{"id": OVERALL, "keyword": "all capabilities pooled"}]:
        out.append(f"<h3>{escape(cap['id'])} <small>({escape(cap['keyword'])})</small></h3>")
        tables = [
            _matrix(s["name"], (s["overall"] if cap["id"] == OVERALL else s["capabilities"][cap["id"]])["confusion"])
            for s in d["scorers"]
        ]
        out.append('<div class="matrices">' + "".join(tables) + "</div>")
    return "\n".join(out)


def _matrix(name: str, confusion: list[list[int]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ["teacher \\ scorer", *map(str, range(SCORE_LEVELS)), "no digit", "n"])
    body = []
    for level, row in enumerate(confusion):
        total = sum(row)
        cells = []
        for count in row:
            alpha = count / total if total else 0.0
            color = "#fff" if alpha > 0.55 else "var(--ink)"
            cells.append(f'<td class="cell" style="background: rgba(31, 91, 153, {alpha:.2f}); '
                         f'color: {color}">{count}</td>')
        body.append(f"<tr><th>{level}</th>{''.join(cells)}<td class=\"cell\">{total}</td></tr>")
    return (f"<table><caption>{escape(name)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _calibration(d: dict[str, Any]) -> str:
    panels = [(c["id"], [s["capabilities"][c["id"]]["calibration"] for s in d["scorers"]]) for c in d["capabilities"]]
    panels.append((OVERALL, [s["overall"]["calibration"] for s in d["scorers"]]))
    names = [s["name"] for s in d["scorers"]]
    headers = ["teacher score"] + [f"{name}: mean expected" for name in names]
    rows = [
        [level] + [Num(_mean_cell(points[level])) for points in panels[-1][1]]
        for level in range(SCORE_LEVELS)
    ]
    return "\n".join([
        '<p class="note">Mean expected score of the answered samples per teacher score; a '
        "calibrated scorer follows the diagonal. The table gives the pooled points with their n.</p>",
        img(calibration_png(panels, names), "calibration: mean expected score per teacher score"),
        table(headers, rows),
    ])


def calibration_png(panels: list[tuple[str, list[list[dict[str, Any]]]]], names: list[str]) -> bytes:
    """Small multiples, one panel per capability: each scorer's mean expected score per teacher
    score (points with samples only), over the diagonal."""
    cols = min(4, max(len(panels), 1))
    rows = -(-len(panels) // cols)

    def draw(fig: Any) -> None:
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for slot, ax in enumerate(axes.flat):
            if slot >= len(panels):
                ax.set_visible(False)
                continue
            title, per_scorer = panels[slot]
            ax.plot([0, 5], [0, 5], color="#b0b7c3", linewidth=0.8, linestyle="--")
            for i, (name, points) in enumerate(zip(names, per_scorer)):
                shown = [p for p in points if p["mean_expected"] is not None]
                ax.plot([p["teacher"] for p in shown], [p["mean_expected"] for p in shown], marker="o",
                        markersize=3, linewidth=1.2, color=SCORER_COLORS[i % len(SCORER_COLORS)], label=name)
            ax.set_title(title)
            ax.set_xlim(-0.3, 5.3)
            ax.set_ylim(-0.3, 5.3)
            ax.set_xticks(range(SCORE_LEVELS))
            ax.grid(color="#e5e5e5", linewidth=0.6)
            ax.set_axisbelow(True)
            if slot % cols == 0:
                ax.set_ylabel("mean expected score")
            if slot >= len(panels) - cols:
                ax.set_xlabel("teacher score")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside upper center", ncols=min(len(handles), 4), frameon=False)

    return render_png(draw, (2.8 * cols, 2.4 * rows + 0.5))


def _scorers(d: dict[str, Any]) -> str:
    return "\n".join(
        f"<h3>{escape(s['name'])} <small>(identity {escape(s['identity_key'])})</small></h3>"
        + json_block(s["identity"])
        for s in d["scorers"]
    )


def _mean_cell(point: dict[str, Any]) -> str:
    mean = point["mean_expected"]
    return f"{'n/a' if mean is None else f'{mean:.2f}'} (n={point['samples']})"


def _numeric(rows: list[list[str]]) -> list[list[Any]]:
    """Every cell but the first as right-aligned text."""
    return [[row[0], *map(Num, row[1:])] for row in rows]
