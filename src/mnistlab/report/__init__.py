"""The report: figures drawn from analysis results (matplotlib, Agg) in one HTML page.

`write_report(study, results)` writes `<results>/<study>/report.html`: self-contained
(figures inline as PNG, no external files or CDN), opening offline in any browser.
"""

from mnistlab.report import classic  # noqa: F401  (registers the classical drawers)
from mnistlab.report.figures import draw, drawer
from mnistlab.report.html import REPORT_NAME, write_report

__all__ = ["REPORT_NAME", "draw", "drawer", "write_report"]
