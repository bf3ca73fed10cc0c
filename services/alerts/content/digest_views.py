"""Display strings of one stored weekly digest (:func:`digest_view`), for every channel.

The digest's content (:mod:`services.alerts.digest`) keeps up to 50 rows a list with the true
counts; the view shows fewer — :data:`DIGEST_TABLE_ROWS` dossiers a list, the first
:data:`LATENESS_TABLE_ROWS` units, officers or fields by overrun and :data:`FORECAST_UNITS`
units of the forecast — and counts the rest ("… và 5 đơn vị khác"). A section the stored row
does not have (written by an older version) is None and left out, never shown as "none".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final

from services.alerts.content.formatting import (
    capitalise,
    officer_label,
    percent,
    short_time,
    status_name,
    vn_number,
)
from shared.vocabulary import (
    DISCREPANCY_STATUS_LABELS,
    KIND_LABELS,
    KPI_LABELS,
    KPI_TARGETS,
    REWRITTEN_FIELD_LABELS,
)

DIGEST_TABLE_ROWS: Final = 100  # dossiers per digest list; the rest are counted
LATENESS_TABLE_ROWS: Final = 10  # units, officers or fields per accountability table
FORECAST_UNITS: Final = 10  # units of the month's forecast
DECIDING_ROWS: Final = 10  # deciding dossiers listed per unit
ON_TIME_TARGET: Final = KPI_TARGETS["on_time_pct"]
# What each kind of row is called when counting the rows left out.
NOUNS: Final[Mapping[str, str]] = {
    "units": "đơn vị",
    "officers": "cán bộ",
    "fields": "lĩnh vực",
}


def _week(value: Any) -> tuple[str, date | None]:
    """``2026-W48`` → (``48/2026``, its Monday); anything else is shown as it is."""
    text = str(value or "")
    year, _, week = text.partition("-W")
    if year.isdigit() and week.isdigit():
        try:
            return f"{int(week)}/{year}", date.fromisocalendar(int(year), int(week), 1)
        except ValueError:
            pass
    return text or "(không rõ tuần)", None


def _days(period: Any) -> str:
    """``{"from": "2026-11-23", "to": "2026-11-29"}`` → ``23/11 – 29/11/2026`` ("" if unknown)."""
    if not isinstance(period, Mapping):
        return ""
    try:
        first = date.fromisoformat(str(period.get("from")))
        last = date.fromisoformat(str(period.get("to")))
    except ValueError:
        return ""
    return f"{first:%d/%m} – {last:%d/%m/%Y}"


def _count(value: Any) -> str:
    """A count, or "—" when the digest lacks it (never a misleading 0)."""
    return str(value) if _is_int(value) else "—"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _table(
    entries: Any,
    row: Callable[[Mapping[str, Any]], dict[str, Any]],
    *,
    total: Any = None,
    shown: int = DIGEST_TABLE_ROWS,
) -> dict[str, Any]:
    """At most ``shown`` rows, and how many were left out of the ``total`` (the stored rows
    when the content does not say)."""
    entries = [entry for entry in entries or [] if isinstance(entry, Mapping)]
    count = max(total, len(entries)) if _is_int(total) else len(entries)
    rows = [row(entry) for entry in entries[:shown]]
    return {"count": count, "rows": rows, "hidden": count - len(rows)}


# ---- the discrepancy lists -----------------------------------------------------------------


def _dossier_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the late, stalled or returned-but-open table."""
    status = entry.get("status")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "procedure": entry.get("procedure_name") or "(chưa rõ thủ tục)",
        "due": short_time(entry.get("due_at")) or "—",
        "status": status_name(status) if status is not None else "—",
        "last_activity": short_time(entry.get("last_activity_at")) or "—",
    }


def _mismatch_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the other-mismatches table."""
    kind = str(entry.get("kind") or "")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "kind": KIND_LABELS.get(kind, kind),
        "since": short_time(entry.get("since")) or "—",
    }


def _rewritten_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A dossier whose dates were edited: which date, from what to what, since when seen."""
    field = str(entry.get("field") or "")
    before = short_time(entry.get("before")) or "—"
    after = short_time(entry.get("after")) or "—"
    label = capitalise(REWRITTEN_FIELD_LABELS.get(field, "một ngày của hồ sơ"))
    status = str(entry.get("status") or "")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "procedure": entry.get("procedure_name") or "(chưa rõ thủ tục)",
        "field": label,
        "before": before,
        "after": after,
        "seen": short_time(entry.get("after_seen_at")) or "—",
        "state": DISCREPANCY_STATUS_LABELS.get(status, "—"),
        "change": f"{label}: {before} → {after}",
    }


# ---- KPIs ------------------------------------------------------------------------------------


def _kpi_rows(kpis: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each KPI against its target; one the digest lacks shows as unknown, not as failed."""
    rows = []
    for key, target in KPI_TARGETS.items():
        raw = kpis.get(key)
        value = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        rows.append(
            {
                "label": KPI_LABELS[key],
                "value": percent(value),
                "target": f"{target}%",
                "mark": "" if value is None else "✓" if value >= target else "✗",
                "met": "unknown" if value is None else "yes" if value >= target else "no",
            }
        )
    return rows


# ---- late dossiers: where the time went (contract §7) ----------------------------------------


def _group_row(entry: Mapping[str, Any], label: str) -> dict[str, Any]:
    hours = entry.get("overrun_working_hours")
    return {
        "label": label,
        "late": _count(entry.get("late_dossiers")),
        "hours": vn_number(hours) if isinstance(hours, int | float) else "—",
        "without_apology": _count(entry.get("without_apology")),
        "late_apology": _count(entry.get("late_apology")),
    }


def _unit_group(entry: Mapping[str, Any]) -> dict[str, Any]:
    code, name = str(entry.get("key") or ""), entry.get("label")
    return _group_row(entry, f"{name} ({code})" if name and name != code else code)


def _officer_group(entry: Mapping[str, Any]) -> dict[str, Any]:
    return _group_row(entry, officer_label(entry.get("label"), entry.get("key")) or "—")


def _field_group(entry: Mapping[str, Any]) -> dict[str, Any]:
    return _group_row(entry, str(entry.get("label") or entry.get("key") or "—"))


_GROUP_ROWS: Final[Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "units": _unit_group,
    "officers": _officer_group,
    "fields": _field_group,
}


def _lateness(stored: Any) -> dict[str, Any] | None:
    """The accountability tables: units and officers by overrun, the late dossiers per field."""
    if not isinstance(stored, Mapping):
        return None
    hours = stored.get("overrun_working_hours")
    view: dict[str, Any] = {
        "period": _days(stored.get("period")),
        "total": _count(stored.get("total")),
        "hours": vn_number(hours) if isinstance(hours, int | float) else "—",
        "without_apology": _count(stored.get("without_apology")),
        "late_apology": _count(stored.get("late_apology")),
    }
    for name, row in _GROUP_ROWS.items():
        group = stored.get(name)
        group = group if isinstance(group, Mapping) else {}
        table = _table(group.get("items"), row, total=group.get("count"), shown=LATENESS_TABLE_ROWS)
        view[name] = {**table, "noun": NOUNS[name]}
    return view


# ---- the month's forecast --------------------------------------------------------------------


def _verdict(outlook: str, deciding: int, undecided: Any) -> str:
    """What the month's outlook means for the unit, as the board says it."""
    if outlook == "at_risk":
        return f"Chỉ cần {deciding} hồ sơ sau trễ hạn là dưới {ON_TIME_TARGET}%:"
    if outlook == "under":
        return f"Đã dưới {ON_TIME_TARGET}%, kể cả khi mọi hồ sơ còn chờ xong đúng hạn."
    if outlook == "safe" and undecided:
        return f"Vẫn đạt {ON_TIME_TARGET}%, kể cả khi mọi hồ sơ còn chờ trễ hạn."
    if outlook == "safe":
        return "Không còn hồ sơ nào chờ: giữ mức hiện tại."
    return "Chưa có hồ sơ có hạn trả."


def _forecast_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    code, name = str(entry.get("unit_code") or ""), entry.get("unit_name")
    deciding = _table(
        entry.get("deciding"),
        lambda each: {
            "code": str(each.get("dossier_code") or ""),
            "due": short_time(each.get("due_at")) or "—",
            "holder": officer_label(each.get("responsible_name"), each.get("responsible"))
            or "chưa rõ người giữ",
        },
        total=entry.get("deciding_count"),
        shown=DECIDING_ROWS,
    )
    outlook = str(entry.get("outlook") or "")
    return {
        "unit": f"{name} ({code})" if name else code,
        "unit_name": str(name or code),
        "now": percent(entry.get("on_time_pct")),
        "best": percent(entry.get("on_time_pct_best")),
        "worst": percent(entry.get("on_time_pct_worst")),
        "undecided": _count(entry.get("undecided")),
        "outlook": outlook,
        "verdict": _verdict(outlook, deciding["count"], entry.get("undecided")),
        "deciding": deciding,
    }


def _forecast(stored: Any) -> dict[str, Any] | None:
    """Each unit's month: on time so far, best and worst case, the dossiers that decide it."""
    if not isinstance(stored, Mapping):
        return None
    period = stored.get("period")
    month = ""
    if isinstance(period, Mapping) and isinstance(period.get("to"), str):
        month = f"{period['to'][5:7]}/{period['to'][:4]}"
    table = _table(
        stored.get("units"), _forecast_row, total=stored.get("count"), shown=FORECAST_UNITS
    )
    return {"month": month, "period": _days(period), "target": ON_TIME_TARGET, **table}


# ---- one digest ------------------------------------------------------------------------------


def digest_view(content: Mapping[str, Any]) -> dict[str, Any]:
    """Display strings of one weekly digest content."""
    week, monday = _week(content.get("week"))
    stored_kpis = content.get("kpis")
    kpis: Mapping[str, Any] = stored_kpis if isinstance(stored_kpis, Mapping) else {}
    stored_totals = content.get("totals")
    totals: Mapping[str, Any] = stored_totals if isinstance(stored_totals, Mapping) else {}
    unit_name, unit_code = content.get("unit_name"), content.get("unit_code")
    period = ""
    if monday is not None:
        sunday = date.fromordinal(monday.toordinal() + 6)
        period = f"{monday:%d/%m} – {sunday:%d/%m/%Y}"

    def listed(name: str, row: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        return _table(content.get(name), row, total=totals.get(name))

    return {
        "unit": f"{unit_name} ({unit_code})" if unit_name and unit_code else unit_name or unit_code,
        "unit_name": str(unit_name or unit_code or "(chưa rõ đơn vị)"),
        "week": week,
        "period": period,
        "data_period": _days(content.get("period")),
        "monday": monday,
        "late": listed("late", _dossier_row),
        "stalled": listed("stalled", _dossier_row),
        "returned_open": listed("returned_open", _dossier_row),
        "mismatches": listed("mismatches", _mismatch_row),
        "rewritten": listed("rewritten", _rewritten_row) if "rewritten" in content else None,
        "kpis": _kpi_rows(kpis),
        "received": _count(kpis.get("received")),
        "without_due_date": _count(kpis.get("without_due_date")),
        "lateness": _lateness(content.get("lateness")),
        "forecast": _forecast(content.get("forecast")),
    }
