"""The select-vs-create battery: one module per test, typed rows, and the verdict rule.

- :mod:`~steering.battery.behavioural`: steering the base along its own reasoning direction (test 1a)
- :mod:`~steering.battery.forced_format`: forcing the reasoning format (test 1b)
- :mod:`~steering.battery.direction`: shift vs base direction with nulls (test 2)
- :mod:`~steering.battery.probe`: probe transfer (test 3)
- :mod:`~steering.battery.sae`: base-SAE coverage and crosscoders (test 5)
- :mod:`~steering.battery.weights`: weight-update geometry (test 6)
- :mod:`~steering.battery.quality`: decoding elicitation and reasoning quality (tests 2 and 7 of docs/design.md)
- :mod:`~steering.battery.rows`: :class:`TestId`, :class:`BatteryRow`
- :mod:`~steering.battery.verdict`: :data:`THRESHOLDS`, :func:`verdict`, :class:`VariantVerdict`

Every test returns :class:`BatteryRow` values; only the behavioural tests decide the verdict.
"""

from steering.battery.behavioural import behavioural_rows, fit_reasoning_vector
from steering.battery.config import BatteryConfig, chance_level
from steering.battery.direction import direction_rows
from steering.battery.forced_format import forced_format_rows
from steering.battery.probe import probe_rows
from steering.battery.quality import QualityConfig, quality_rows, quality_tables
from steering.battery.rows import BatteryRow, TestId, rows_frame
from steering.battery.sae import sae_rows
from steering.battery.verdict import THRESHOLDS, VariantVerdict, Verdict, judge, verdict
from steering.battery.weights import weight_rows

__all__ = [
    "BatteryConfig",
    "chance_level",
    "BatteryRow",
    "TestId",
    "rows_frame",
    "THRESHOLDS",
    "Verdict",
    "VariantVerdict",
    "verdict",
    "judge",
    "fit_reasoning_vector",
    "behavioural_rows",
    "forced_format_rows",
    "direction_rows",
    "probe_rows",
    "sae_rows",
    "weight_rows",
    "QualityConfig",
    "quality_tables",
    "quality_rows",
]
