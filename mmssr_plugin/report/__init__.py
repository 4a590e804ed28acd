"""The selection report: figures as JSON-ready data, PNG plots, a self-contained HTML page.

``model`` holds the report's content and inputs, ``figures`` and ``examples`` count them from
arrays, ``samples`` and ``build`` adapt a stage selection (samples + score table + manifest),
``authors`` a selection from the authors' files; ``html``, ``plots`` and ``thumbnails`` render,
``writer`` writes ``report.html`` + ``report.json``. Importing this package loads numpy only;
matplotlib and PIL load when a report is written. ``report.authors`` is imported on demand (it
needs pyarrow).
"""

from mmssr_plugin.report.build import build_and_write_report, report_data_from_manifest
from mmssr_plugin.report.figures import count_report_data
from mmssr_plugin.report.model import ExampleRecord, PoolScores, PoolView, ReportData, SelectionFacts
from mmssr_plugin.report.samples import build_report_data
from mmssr_plugin.report.writer import write_report

__all__ = [
    "ExampleRecord",
    "PoolScores",
    "PoolView",
    "ReportData",
    "SelectionFacts",
    "build_and_write_report",
    "build_report_data",
    "count_report_data",
    "report_data_from_manifest",
    "write_report",
]
