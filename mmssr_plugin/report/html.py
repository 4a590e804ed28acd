"""The report as one self-contained HTML page: plots and thumbnails are ``data:`` URIs, all text
goes through ``html.escape``, and nothing refers outside the page."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from mmssr_plugin.report.html_lists import failures_section, selected_section, subsets_block
from mmssr_plugin.report.html_parts import PAGE_CSS, Num, fmt, img, json_block, section, share, table
from mmssr_plugin.report.model import ReportData
from mmssr_plugin.report.plots import MAX_BARS, bars_png, score_histograms_png, style_source_heatmap_png
from mmssr_plugin.report.thumbnails import thumbnail_uri

SECTIONS = (
    ("summary", "Summary"),
    ("selected", "Selected samples"),
    ("failures", "Excluded and failed samples"),
    ("capabilities", "Capabilities"),
    ("style-bins", "Style x source bins"),
    ("sources", "Image sources"),
    ("validation", "Validation"),
    ("scoring", "Scoring"),
    ("examples", "Examples"),
    ("configuration", "Configuration"),
    ("fingerprint", "Scorer fingerprint"),
)



def render_html(data: ReportData) -> str:
    """The whole page for ``data``."""
    d = data.to_dict()
    nav = "".join(f'<a href="#{sid}">{escape(name)}</a>' for sid, name in SECTIONS)
    body = "\n".join(
        section(sid, name, render(d))
        for (sid, name), render in zip(SECTIONS, _RENDERERS)
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(d['title'])}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(d['title'])}</h1><nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _summary(d: dict[str, Any]) -> str:
    sizes = d["sizes"]
    kpis = [
        ("pool (valid samples)", sizes["pool"]),
        ("excluded by validation", sizes["excluded"]),
        ("budget K", sizes["budget"]),
        ("subset", sizes["subset"]),
        ("shortfall", sizes["shortfall"]),
    ]
    out = [subsets_block(d), '<div class="kpis">']
    out += [
        f'<div class="kpi"><b>{escape(fmt(value))}</b><span>{escape(label)}</span></div>'
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
        return value if expected else Num("n/a")

    rows = [
        [c["id"], c["picked"], mean(c["mean_expected_pool"]), mean(c["mean_expected_subset"]),
         *(Num(f"{s} / {p}") for p, s in zip(c["pool"], c["subset"]))]
        for c in caps
    ]
    return "\n".join([
        _CAPABILITY_NOTE + (_MEAN_NOTE if expected else _NO_MEAN_NOTE),
        img(score_histograms_png(caps), "score distributions per capability, pool vs subset"),
        '<div class="scroll">' + table(headers, rows) + "</div>",
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
        img(style_source_heatmap_png(matrix), "style x source grid of subset shares"),
        img(bars_png(bins["rows"], "largest style + source bins: subset / pool"),
             "largest style x source bins"),
        _count_rows(bins, ["style", "source"]),
    ])


def _sources(d: dict[str, Any]) -> str:
    sources = d["sources"]
    return "\n".join([
        f'<p class="note">{sources["total"]} image sources in the pool.</p>',
        img(bars_png(sources["rows"], "image sources: subset / pool"), "image sources"),
        _count_rows(sources, ["source"]),
    ])


def _count_rows(facts: dict[str, Any], columns: list[str]) -> str:
    rows = [[r[c] for c in columns] + [r["pool"], r["subset"], share(r["subset"], r["pool"])]
            for r in facts["rows"]]
    rendered = table(columns + ["pool", "subset", "subset %"], rows)
    more = facts["rows_left_out"]
    tail = f'<p class="note">{more} smaller rows left out.</p>' if more else ""
    return f'<div class="scroll">{rendered}</div>{tail}'


def _validation(d: dict[str, Any]) -> str:
    reasons = d["excluded_by_reason"]
    if not reasons:
        return "<p>No sample was excluded by validation.</p>"
    return ('<p class="note">Samples per problem kind; a sample with several kinds counts in '
            "each.</p>" + table(["problem", "samples"], list(reasons.items())))


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
        out.append(table(["reason", "samples"], list(scoring["failures_by_reason"].items())))
    if files is not None:
        out.append("<h3>Score files</h3>")
        out.append(table(
            ["file", "lines", "unparseable", "missing idx", "unknown idx"],
            [[f["file"], f["lines"], f["unparseable"], f["missing"], f["unknown"]] for f in files],
        ))
    out.append("<h3>Answers that were not a digit (score left missing)</h3>")
    out.append(table(["capability", "samples"], list(scoring["non_digit"].items())))
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
        f'<div>expected {escape("n/a" if ex["expected"] is None else fmt(ex["expected"]))}</div>'
        f"<div>{badge}</div><div>{escape(ex['source'])}</div><div>{escape(where)}</div></div></div>"
        f'<div class="meta" title="{escape(ex["uid"])}">{escape(ex["uid"])}</div>'
        f'<div class="meta" title="{escape(path or "")}">{escape(path or "no image")}'
        f"{escape(image_note)}</div>"
        f'<div class="turns">{turns}</div></div>'
    )


def _configuration(d: dict[str, Any]) -> str:
    return json_block(d["config"])


def _fingerprint(d: dict[str, Any]) -> str:
    if d["scorer_fingerprint"] is None:
        return '<p class="note">No scorer (random method).</p>'
    evaluation = d.get("scorer_evaluation")
    link = "" if not evaluation else (
        f'<p>Evaluation of this scorer against held-out teacher labels: <a href="'
        f'{escape(Path(evaluation["page"]).as_uri())}">{escape(evaluation["page"])}</a></p>')
    return link + json_block(d["scorer_fingerprint"])


_RENDERERS: tuple[Callable[[dict[str, Any]], str], ...] = (
    _summary, selected_section, failures_section, _capabilities, _style_bins, _sources,
    _validation, _scoring, _examples, _configuration, _fingerprint,
)
