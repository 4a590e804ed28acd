"""The selection report: figures as JSON-ready data, PNG plots, a self-contained HTML page.

Importing this package loads numpy only; matplotlib and PIL load when a report is written.
"""

from .build import build_and_write_report, report_data_from_manifest
from .data import ReportData, build_report_data
from .writer import write_report

__all__ = [
    "ReportData",
    "build_and_write_report",
    "build_report_data",
    "report_data_from_manifest",
    "write_report",
]
