"""The selection report: figures as JSON-ready data, PNG plots, a self-contained HTML page.

Importing this package loads numpy only; matplotlib and PIL load when a report is written.
``report.authors`` (imported on demand: it needs pyarrow) reports selections from the authors' files.
"""

from mmssr_plugin.report.build import build_and_write_report, report_data_from_manifest
from mmssr_plugin.report.data import (
    ExampleRecord,
    PoolScores,
    PoolView,
    ReportData,
    build_report_data,
    count_report_data,
)
from mmssr_plugin.report.writer import write_report

__all__ = [
    "ExampleRecord",
    "PoolScores",
    "PoolView",
    "ReportData",
    "build_and_write_report",
    "build_report_data",
    "count_report_data",
    "report_data_from_manifest",
    "write_report",
]
