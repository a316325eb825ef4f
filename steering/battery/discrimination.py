"""How well each battery test separates the organism's select controls from its create controls.

``scripts/seeds.py --discrimination`` writes ``steering/battery/discrimination.json`` from
``elicit run`` on several organism seeds: per statistic, the AUROC of select controls (sft, dpo,
rl, dpo_conf, sft_long, new_format) against create controls (create, create_far) with a 95% bootstrap
interval over (seed, variant) items, and the seeds it came from. The report writes the table
into ``report.json`` (``discrimination``) and ``report.md``, and labels every test whose
interval does not lie above 0.5 as *descriptive*: it is reported, and no reader should take it
as evidence for select or create.

    >>> table = load_discrimination()
    >>> role("behavioural:steering", table)
    'decides'
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probes.errors import ElicitError
from steering.battery.rows import TestId

__all__ = ["DISCRIMINATION_FILE", "Discrimination", "load_discrimination", "role", "DECIDING"]

#: The table shipped with the kit (regenerate with ``python scripts/seeds.py --discrimination``).
DISCRIMINATION_FILE = Path(__file__).with_name("discrimination.json")
#: The tests the behavioural verdict reads (the others are reported beside it).
DECIDING = (TestId.STEERING.value, TestId.FORCED_FORMAT.value)


@dataclass(frozen=True)
class Discrimination:
    """One statistic's separation of select from create controls on the organism."""

    statistic: str
    test: str
    what: str
    auroc: float
    auroc_lo: float
    auroc_hi: float
    discriminates: bool
    n_select: int
    n_create: int
    seeds: tuple[int, ...]

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["seeds"] = list(self.seeds)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}


def load_discrimination(path: str | Path | None = None) -> dict[str, Discrimination]:
    """``statistic -> Discrimination`` from ``path`` (default: the table shipped with the kit).

    A missing file gives ``{}`` (the report then says the tests are not calibrated); a file that
    is not such a table is an error naming the fix."""
    p = Path(path) if path is not None else DISCRIMINATION_FILE
    if not p.exists():
        return {}
    try:
        doc = json.loads(p.read_text())
        seeds = tuple(int(s) for s in doc["seeds"])
        return {
            name: Discrimination(
                statistic=name,
                test=str(e["test"]),
                what=str(e.get("what", "")),
                auroc=_num(e["auroc"]),
                auroc_lo=_num(e["auroc_lo"]),
                auroc_hi=_num(e["auroc_hi"]),
                discriminates=bool(e["discriminates"]),
                n_select=int(e["n_select"]),
                n_create=int(e["n_create"]),
                seeds=seeds,
            )
            for name, e in doc["statistics"].items()
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ElicitError(
            f"{str(p)!r} is not a discrimination table ({type(err).__name__}: {err}). Regenerate it with "
            "`python scripts/seeds.py --seeds 0 1 2 3 --train 0 1 --discrimination PATH`."
        ) from None


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def role(test: str, table: dict[str, Discrimination]) -> str:
    """How the report labels a test: ``decides`` (read by the verdict), ``discriminates`` (its
    AUROC interval on the organism lies above 0.5), ``descriptive`` (it does not), or
    ``not calibrated`` (the table has no statistic of that test)."""
    if test in DECIDING:
        return "decides"
    own = [d for d in table.values() if d.test == test]
    if not own:
        return "not calibrated"
    return "discriminates" if any(d.discriminates for d in own) else "descriptive"
