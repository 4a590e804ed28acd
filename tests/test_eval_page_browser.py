"""evaluation.html in a real headless browser: the calibration plot decodes, nothing logs to the
console, every section renders offline."""

from __future__ import annotations

from test_curate import mmssr
from test_eval_scorer import DEMO, FAKE, write_labels
from test_report_browser import (
    _body_data,
    _chromium,
    _console_lines,
    _probed,
    pytestmark,  # noqa: F401 -- skipped where chromium is absent
)


def test_evaluation_page_renders(tmp_path, demo_data):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data)
    status, _, err = mmssr("eval-scorer", "--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO,
                           "--scorer", FAKE, "--scorer", "name=twin,backend=fake", "--output-dir", tmp_path / "out")
    assert status == 0, err
    page = tmp_path / "probed.html"
    page.write_text(_probed((tmp_path / "out" / "evaluation.html").read_text()))
    run = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _body_data(run.stdout) == {"images": "1", "broken-images": "0", "errors": "0"}
    consoles = _console_lines(run.stderr)
    assert consoles and all("mmssr-probe done" in line for line in consoles), consoles
    for section in ("held-out", "scores", "styles", "confusion", "calibration", "scorers"):
        assert f'id="{section}"' in run.stdout
    assert run.stdout.count("<caption>twin</caption>") == 3
