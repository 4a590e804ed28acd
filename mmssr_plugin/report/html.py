"""The report as one self-contained HTML page: plots and thumbnails are ``data:`` URIs, all text
goes through ``html.escape``, and nothing refers outside the page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from mmssr_plugin.report.model import ReportData
from mmssr_plugin.report.plots import MAX_BARS, bars_png, score_histograms_png, style_source_heatmap_png
from mmssr_plugin.report.thumbnails import thumbnail_uri

SECTIONS = (
    ("summary", "Summary"),
    ("capabilities", "Capabilities"),
    ("style-bins", "Style x source bins"),
    ("sources", "Image sources"),
    ("validation", "Validation"),
    ("scoring", "Scoring"),
    ("examples", "Examples"),
    ("configuration", "Configuration"),
    ("fingerprint", "Scorer fingerprint"),
)

_CSS = """
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


def render_html(data: ReportData) -> str:
    """The whole page for ``data``."""
    d = data.to_dict()
    nav = "".join(f'<a href="#{sid}">{escape(name)}</a>' for sid, name in SECTIONS)
    body = "\n".join(
        _section(sid, name, render(d))
        for (sid, name), render in zip(SECTIONS, _RENDERERS)
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(d['title'])}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(d['title'])}</h1><nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _section(sid: str, name: str, content: str) -> str:
    return f'<section id="{sid}">\n<h2>{escape(name)}</h2>\n{content}\n</section>'


def _summary(d: dict[str, Any]) -> str:
    sizes = d["sizes"]
    kpis = [
        ("pool (valid samples)", sizes["pool"]),
        ("excluded by validation", sizes["excluded"]),
        ("budget K", sizes["budget"]),
        ("subset", sizes["subset"]),
        ("shortfall", sizes["shortfall"]),
    ]
    out = ['<div class="kpis">']
    out += [
        f'<div class="kpi"><b>{escape(_fmt(value))}</b><span>{escape(label)}</span></div>'
        for label, value in kpis
    ]
    out.append("</div>")
    out.append(f'<p class="note">method {escape(d["method"])}; selection key '
               f'{escape(d["key"] or "-")}</p>')
    if sizes["shortfall"] > 0:
        reason = sizes["shortfall_reason"] or "no reason recorded"
        out.append(f'<div class="alert">Shortfall of {sizes["shortfall"]} samples: '
                   f'{escape(reason)}</div>')
    if sizes["exhausted"]:
        out.append(f'<p>Capabilities that ran out of eligible samples: '
                   f'{escape(", ".join(sizes["exhausted"]))}</p>')
    return "\n".join(out)


def _capabilities(d: dict[str, Any]) -> str:
    caps = d["capabilities"]
    if not caps:
        return '<p class="note">No scores: the random method does not score samples.</p>'
    headers = ["capability", "picked", "mean score pool", "mean score subset"]
    headers += [f"score {label}" for label in caps[0]["labels"]]
    expected = _has_expected(d)

    def mean(value: float | None) -> Any:
        return value if expected else _Num("n/a")

    rows = [
        [c["id"], c["picked"], mean(c["mean_expected_pool"]), mean(c["mean_expected_subset"]),
         *(_Num(f"{s} / {p}") for p, s in zip(c["pool"], c["subset"]))]
        for c in caps
    ]
    return "\n".join([
        _CAPABILITY_NOTE + (_MEAN_NOTE if expected else _NO_MEAN_NOTE),
        _img(score_histograms_png(caps), "score distributions per capability, pool vs subset"),
        '<div class="scroll">' + _table(headers, rows) + "</div>",
    ])


_CAPABILITY_NOTE = (
    '<p class="note">Score distribution (argmax digit 0..5, or missing: failed, not scored or no '
    "digit answer) as a share of the pool and of the subset; the table gives subset / pool "
    "counts. "
)
_MEAN_NOTE = "Mean scores are expected scores over scored samples.</p>"
_NO_MEAN_NOTE = "Mean scores are n/a: the scores hold the answered digit only, no expected score.</p>"


def _has_expected(d: dict[str, Any]) -> bool:
    """False when the scores hold no expected score (the authors' score files)."""
    return (d["scoring"] or {}).get("expected_available", True) is not False


def _style_bins(d: dict[str, Any]) -> str:
    bins = d["style_bins"]
    if not bins:
        return '<p class="note">No style bins: the random method does not style samples.</p>'
    matrix = bins["matrix"]
    left_out = matrix["sources_left_out"]
    note = (f'<p class="note">{bins["covered"]} of {bins["total"]} bins are in the subset. A '
            "sample with several styles counts in each of its bins. The grid shows the "
            f"{len(matrix['sources'])} largest sources"
            f"{f' ({left_out} smaller ones left out)' if left_out else ''}; the bars the "
            f"{min(MAX_BARS, len(bins['rows']))} largest bins.</p>")
    return "\n".join([
        note,
        _img(style_source_heatmap_png(matrix), "style x source grid of subset shares"),
        _img(bars_png(bins["rows"], "largest style + source bins: subset / pool"),
             "largest style x source bins"),
        _count_rows(bins, ["style", "source"]),
    ])


def _sources(d: dict[str, Any]) -> str:
    sources = d["sources"]
    return "\n".join([
        f'<p class="note">{sources["total"]} image sources in the pool.</p>',
        _img(bars_png(sources["rows"], "image sources: subset / pool"), "image sources"),
        _count_rows(sources, ["source"]),
    ])


def _count_rows(facts: dict[str, Any], columns: list[str]) -> str:
    rows = [[r[c] for c in columns] + [r["pool"], r["subset"], _share(r["subset"], r["pool"])]
            for r in facts["rows"]]
    table = _table(columns + ["pool", "subset", "subset %"], rows)
    more = facts["rows_left_out"]
    tail = f'<p class="note">{more} smaller rows left out.</p>' if more else ""
    return f'<div class="scroll">{table}</div>{tail}'


def _validation(d: dict[str, Any]) -> str:
    reasons = d["excluded_by_reason"]
    if not reasons:
        return "<p>No sample was excluded by validation.</p>"
    return ('<p class="note">Samples per problem kind; a sample with several kinds counts in '
            "each.</p>" + _table(["problem", "samples"], list(reasons.items())))


def _scoring(d: dict[str, Any]) -> str:
    scoring = d["scoring"]
    if scoring is None:
        return '<p class="note">Not scored (random method).</p>'
    files = scoring.get("score_files")
    if files is None:
        facts = (f"<p>{scoring['scored']} samples scored, {scoring['failed']} failed or not "
                 f"scored; {scoring['style_unmatched']} style answers had unmatched text.</p>")
    else:
        facts = (f"<p>{scoring['scored']} samples have a usable score for at least one "
                 f"capability, {scoring['failed']} have none. Style answers: "
                 f"{scoring['style_unparseable']} lines without a recognised style, "
                 f"{scoring['style_unmatched_pieces']} unmatched pieces.</p>")
    out = [facts]
    if scoring["failures_by_reason"]:
        out.append("<h3>Failures by reason</h3>")
        out.append(_table(["reason", "samples"], list(scoring["failures_by_reason"].items())))
    if files is not None:
        out.append("<h3>Score files</h3>")
        out.append(_table(
            ["file", "lines", "unparseable", "missing idx", "unknown idx"],
            [[f["file"], f["lines"], f["unparseable"], f["missing"], f["unknown"]] for f in files],
        ))
    out.append("<h3>Answers that were not a digit (score left missing)</h3>")
    out.append(_table(["capability", "samples"], list(scoring["non_digit"].items())))
    return "\n".join(out)


def _examples(d: dict[str, Any]) -> str:
    if not d["examples"]:
        return '<p class="note">No examples: the random method does not score samples.</p>'
    thumbs: dict[str, str | None] = {}
    out = [_EXAMPLES_NOTE]
    for cap, ends in d["examples"].items():
        out.append(f"<h3>{escape(cap)}</h3>")
        for end, label in (("top", "highest"), ("bottom", "lowest")):
            out.append(f"<h4>{label} scored</h4>")
            cards = [_example(ex, thumbs) for ex in ends[end]]
            out.append('<div class="cards">' + "".join(cards) + "</div>" if cards
                       else '<p class="note">No scored sample.</p>')
    return "\n".join(out)


_EXAMPLES_NOTE = (
    '<p class="note">Highest and lowest scored samples of the pool per capability (argmax digit, '
    "then expected score, then pool order).</p>"
)


def _example(ex: dict[str, Any], thumbs: dict[str, str | None]) -> str:
    path = ex["image"]
    if path is not None and path not in thumbs:
        thumbs[path] = thumbnail_uri(path)
    uri = thumbs.get(path) if path is not None else None
    if uri:
        thumb = f'<img src="{uri}" alt="{escape(path)}" title="{escape(path)}">'
    else:
        thumb = escape("no image" if path is None else "image unavailable")
    badge = '<span class="badge in">in subset</span>' if ex["selected"] else \
        '<span class="badge">not picked</span>'
    turns = "".join(
        f'<p><span class="role">{"user" if i % 2 == 0 else "assistant"}:</span> {escape(text)}</p>'
        for i, text in enumerate(ex["turns"])
    )
    if ex["turns_left_out"]:
        turns += f'<p class="meta">... {ex["turns_left_out"]} more turns</p>'
    image_note = f" (+{ex['n_images'] - 1} more images)" if ex["n_images"] > 1 else ""
    where = f"{ex['dataset']} row {ex['row']}"
    return (
        f'<div class="ex"><div class="head"><div class="thumb">{thumb}</div><div class="facts">'
        f'<div><span class="score">{ex["score"]}</span></div>'
        f'<div>expected {escape("n/a" if ex["expected"] is None else _fmt(ex["expected"]))}</div>'
        f"<div>{badge}</div><div>{escape(ex['source'])}</div><div>{escape(where)}</div></div></div>"
        f'<div class="meta" title="{escape(ex["uid"])}">{escape(ex["uid"])}</div>'
        f'<div class="meta" title="{escape(path or "")}">{escape(path or "no image")}'
        f"{escape(image_note)}</div>"
        f'<div class="turns">{turns}</div></div>'
    )


def _configuration(d: dict[str, Any]) -> str:
    return _json_block(d["config"])


def _fingerprint(d: dict[str, Any]) -> str:
    if d["scorer_fingerprint"] is None:
        return '<p class="note">No scorer (random method).</p>'
    return _json_block(d["scorer_fingerprint"])


_RENDERERS: tuple[Callable[[dict[str, Any]], str], ...] = (
    _summary, _capabilities, _style_bins, _sources, _validation, _scoring, _examples,
    _configuration, _fingerprint,
)


def _json_block(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def _img(png: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img class="plot" src="{uri}" alt="{escape(alt)}">'


class _Num(str):
    """Text shown right-aligned like a number (e.g. ``"3 / 12"``)."""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(tag: str, value: Any) -> str:
        numeric = isinstance(value, (int, float, _Num)) and not isinstance(value, bool)
        klass = ' class="num"' if numeric else ""
        return f"<{tag}{klass}>{escape(_fmt(value))}</{tag}>"

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _share(part: int, whole: int) -> _Num | None:
    return _Num(f"{100.0 * part / whole:.1f}") if whole else None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)
