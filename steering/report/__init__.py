"""The select-vs-create report: :func:`run_report` runs the battery and writes ``report.md``,
``report.json`` (:data:`SCHEMA`), the result tables and the figures.

- :mod:`~steering.report.run`: the steps (plan tasks, run the battery, judge, write)
- :mod:`~steering.report.schema`: ``report.json`` and table writing
- :mod:`~steering.report.markdown`: ``report.md``
"""

from steering.report.run import Report, run_report
from steering.report.schema import SCHEMA

__all__ = ["Report", "run_report", "SCHEMA"]
