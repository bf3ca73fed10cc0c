"""What this month will cost: the on-time share's best and worst case, and the dossiers that
decide it (``forecast`` of each item of ``GET /api/v1/kpis``; the board's "Dự báo tháng này").
Pure: no I/O, no clock.

For a unit and a KPI period (by default this month up to today), measured at *now*:

- **Today's share** is the item's ``on_time_pct``, unchanged: QĐ 766 counts a dossier with no
  end yet as on time until it is past due.
- **Undecided** dossiers are those of that share that have no end yet and are due from now
  (not yet past due; at its due date itself a dossier is on time) until the end of the month
  the period's last day is in (Vietnam time; exclusive). Which way each goes is not known yet;
  every other dossier is decided: ended, open past due (late whatever happens), or due after
  the month ends (on time for this month's figure). Dossiers not received yet are not guessed.
- **Best case** (``on_time_pct_best``): every undecided dossier ends on time — the share stays
  today's. **Worst case** (``on_time_pct_worst``): every one ends late (after its due date, or
  still open when the month ends). Both are ``percent(on time, with a due date)``, the
  formula of ``on_time_pct``, with the same denominator; null when nothing has a due date.
- **Deciding** (``deciding``): the fewest undecided dossiers whose lateness, the others ending
  on time, takes the share under the 98 % target — under as the board judges it, the share
  rounded to two decimals below 98. Any k of them weigh the same, so these are the k due
  first (by due date, then code): the first ones that must not slip. Each is
  ``{"dossier_code", "due_at" (ISO 8601, Vietnam time), "responsible"}`` (the dossier's holder).
  It is empty in three cases, told apart by the two shares: nothing to count (best null),
  under target already (best < 98: even all on time cannot reach it), or safe (worst ≥ 98:
  even all late keep it).

A period whose month is over (``to`` before this month) has nothing undecided: best = worst =
today's share and ``deciding`` is empty. A past stretch of this month (a week already over)
still has its open dossiers due before the month ends as undecided.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from services.reconciler.kpis.formulas import Undecided, UnitKpis, percent
from shared.vocabulary import KPI_TARGETS, local_iso

ON_TIME_TARGET: Final = KPI_TARGETS["on_time_pct"]  # 98
Outlook = Literal["empty", "under", "safe", "at_risk"]


@dataclass(frozen=True, slots=True)
class Forecast:
    on_time_pct: float | None  # today's share: the item's on_time_pct
    on_time_pct_best: float | None
    on_time_pct_worst: float | None
    undecided: int  # how many are still to be decided
    deciding: tuple[Undecided, ...]  # the first of them due; empty unless "at_risk"

    @property
    def outlook(self) -> Outlook:
        """``empty`` (nothing to count), ``under`` (under target even if all end on time),
        ``safe`` (at target even if all end late) or ``at_risk`` (``deciding`` decides)."""
        best, worst = self.on_time_pct_best, self.on_time_pct_worst
        if best is None or worst is None:
            return "empty"
        if best < ON_TIME_TARGET:
            return "under"
        return "safe" if worst >= ON_TIME_TARGET else "at_risk"


def deciding_count(kpis: UnitKpis, undecided: int, *, target: int = ON_TIME_TARGET) -> int:
    """How many undecided dossiers (the first due) decide the target: the fewest whose lateness
    takes the share under it; 0 unless the unit is at risk (best ≥ target > worst).

    ``undecided`` must count dossiers ``kpis`` counts on time: the worst case takes them off
    the on-time count, nothing else moves.
    """
    on_time, whole = kpis.on_time, kpis.with_due_date
    if undecided > on_time:
        raise ValueError(f"{undecided} undecided dossiers but only {on_time} on time")
    best, worst = percent(on_time, whole), percent(on_time - undecided, whole)
    if best is None or worst is None or not best >= target > worst:
        return 0
    # The share falls as more are late: the first count that takes it under the target.
    return bisect_left(
        range(undecided + 1), True, key=lambda late: _under(on_time - late, whole, target)
    )


def forecast(
    kpis: UnitKpis,
    undecided: int,
    earliest: Iterable[Undecided],
    *,
    target: int = ON_TIME_TARGET,
) -> Forecast:
    """The forecast of a unit that counted ``kpis`` and ``undecided`` dossiers still to be
    decided, given at least the first :func:`deciding_count` of those by due date then code
    (``earliest``; more are harmless): only they can be named, so only they are read."""
    count = deciding_count(kpis, undecided, target=target)
    first = sorted(earliest, key=lambda each: (each.due_at, each.dossier_code))
    if len(first) < count:
        raise ValueError(f"{count} deciding dossiers but only {len(first)} given")
    best = percent(kpis.on_time, kpis.with_due_date)
    worst = percent(kpis.on_time - undecided, kpis.with_due_date)
    return Forecast(kpis.on_time_pct, best, worst, undecided, tuple(first[:count]))


def _under(part: int, whole: int, target: int) -> bool:
    share = percent(part, whole)
    return share is not None and share < target


def forecast_read(found: Forecast) -> dict[str, Any]:
    """``forecast`` of an item of ``GET /kpis``: the two shares and the deciding dossiers."""
    return {
        "on_time_pct_best": found.on_time_pct_best,
        "on_time_pct_worst": found.on_time_pct_worst,
        "deciding": [
            {
                "dossier_code": each.dossier_code,
                "due_at": local_iso(each.due_at),
                "responsible": each.responsible,
            }
            for each in found.deciding
        ],
    }
